"""Small JSON files that several processes share: read whole, written whole and atomically.

A reader sees the old file or the new one, never half of either; a file that
cannot be read counts as absent, since everything kept this way (verdicts,
default drafts, call costs) can be recomputed or chosen again. For the same reason
a cache that cannot be written is a note (`CacheNote`), never an error.
"""

from __future__ import annotations

import json
import os
import tempfile
import warnings
from pathlib import Path
from typing import Any

from ..errors import one_line


def read_json_object(path: Path) -> dict[str, Any]:
    """The file's JSON object, or {} when it is missing, unreadable or not an object."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def write_json_atomically(path: Path, data: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.NamedTemporaryFile(
        "w", encoding="utf-8", dir=path.parent, prefix=f".{path.name}-", delete=False
    ) as handle:
        json.dump(data, handle, indent=1, ensure_ascii=False)
    os.replace(handle.name, path)


class CacheNote(UserWarning):
    """The cache could not be written: work goes on, only slower next time."""


def write_cache_atomically(path: Path, data: dict[str, Any], what: str) -> None:
    """Write a cache file; one that cannot be written is skipped with a note naming `what`
    is lost and the fix, as a cache safe to lose must never stop the work it speeds up."""
    try:
        write_json_atomically(path, data)
    except OSError as exc:
        warnings.warn(
            f"{what} are not cached ({one_line(exc)}); set SPECDEC_CACHE_DIR to a writable "
            "folder to keep them",
            CacheNote,
            stacklevel=3,
        )
