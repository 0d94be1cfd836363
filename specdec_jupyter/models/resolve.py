"""From what a user types (a path or a catalog name) to a model file on disk."""

from __future__ import annotations

import os
from pathlib import Path

from ..errors import UnknownModelError
from .catalog import CATALOG, GROUPS
from .fetch import fetch


def resolve_model(reference: str | os.PathLike[str], *, progress: bool = True) -> Path:
    """A file path as it is; a catalog name fetched on first use (with a progress bar)."""
    path = Path(reference).expanduser()
    if path.exists():
        return path
    name = str(reference)
    if name in CATALOG:
        return fetch(CATALOG[name], progress=progress)
    if name in GROUPS:
        raise UnknownModelError(
            f"{name!r} names a group of models ({', '.join(GROUPS[name])}); pick one of them"
        )
    if path.suffix == ".gguf" or os.sep in name:
        return path  # a path that does not exist: the engine names it in its error
    raise UnknownModelError(
        f"{name!r} is neither a file nor a catalog model; catalog names: {', '.join(CATALOG)}"
    )
