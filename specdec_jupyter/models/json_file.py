"""Small JSON files that several processes share: read whole, written whole and atomically.

A reader sees the old file or the new one, never half of either; a file that
cannot be read counts as absent, since everything kept this way (verdicts,
default drafts) can be recomputed or chosen again.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any


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
