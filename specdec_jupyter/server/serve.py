"""Running the app with uvicorn: `serve` in the foreground (one banner line, then a line per
request; Ctrl-C stops it cleanly), `serving_in_background` on a thread."""

from __future__ import annotations

import os
import socket
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager

from ..sessions.manager import EngineManager
from .app import SpecDecServer, create_app
from .request_log import print_requests
from .served import ServedModels

START_DEADLINE = 30.0  # seconds a busy machine may take to start a server


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
    print_requests()
    uvicorn.run(create_app(server), host=host, port=port, log_level="warning")


@contextmanager
def serving_in_background(server: SpecDecServer, host: str = "127.0.0.1") -> Iterator[str]:
    """Run `server` on a free port of `host` on a thread (for a notebook, a benchmark or a
    test); yields its base URL, and stops it on exit."""
    import uvicorn

    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, 0))
    config = uvicorn.Config(create_app(server), log_level="warning", lifespan="off")
    runner = uvicorn.Server(config)
    thread = threading.Thread(target=runner.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + START_DEADLINE
    while not runner.started:  # uvicorn offers no event for this: polled, with a deadline
        if not thread.is_alive() or time.monotonic() > deadline:
            sock.close()
            raise RuntimeError(f"the server did not start within {START_DEADLINE:.0f} s")
        time.sleep(0.01)
    try:
        yield f"http://{host}:{sock.getsockname()[1]}"
    finally:
        runner.should_exit = True
        thread.join(START_DEADLINE)
        sock.close()
