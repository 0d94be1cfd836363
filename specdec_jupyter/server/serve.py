"""Running the app in the foreground with uvicorn: one banner line, Ctrl-C stops it cleanly."""

from __future__ import annotations

import os
from collections.abc import Sequence

from ..manager import EngineManager
from .app import SpecDecServer, create_app
from .served import ServedModels


def serve(
    host: str = "127.0.0.1",
    port: int = 1234,
    *,
    api_key: str | None = None,
    folders: Sequence[str | os.PathLike[str]] = (),
    manager: EngineManager | None = None,
) -> None:
    """Serve until Ctrl-C (LM Studio's port by default; loopback unless told otherwise)."""
    import uvicorn

    models = ServedModels(folders)
    server = SpecDecServer(manager or EngineManager(), models, api_key=api_key)
    count = sum(1 for _ in models)
    print(
        f"specdec-jupyter serving {count} models on http://{host}:{port} "
        f"(OpenAI: /v1, LM Studio: /api/v0{', API key required' if api_key else ''}); "
        "Ctrl-C stops",
        flush=True,
    )
    uvicorn.run(create_app(server), host=host, port=port, log_level="warning")
