"""Checking GGUF files before a backend sees them.

`check_gguf` is cheap (it reads four bytes) and runs before every load, so a
missing or foreign file is named in plain words. `diagnose_gguf` reads the whole
header (a tenth of a second), so it runs only after llama.cpp has refused a file,
to say why.
"""

from __future__ import annotations

from pathlib import Path

from ...errors import ModelFileError, UnusableModelError
from ..paths import not_a_file
from .header import GGUF_MAGIC, open_gguf


def check_gguf(path: Path) -> None:
    """Raise ModelFileError unless `path` is a file that starts like a GGUF file."""
    reason = not_a_file(path)
    if reason == "no such file":
        raise ModelFileError(
            f"model file not found: {path}; check the path, or fetch a catalog model with "
            "`specdec-jupyter models fetch NAME` (`--list` shows the names)"
        )
    if reason is not None:
        raise ModelFileError(f"{path} {reason}; name a .gguf model file")
    with open(path, "rb") as handle:
        magic = handle.read(4)
    if magic != GGUF_MAGIC:
        raise ModelFileError(
            f"{path} is not a GGUF file (it starts with {magic!r}, not {GGUF_MAGIC!r}); "
            "llama.cpp needs a .gguf model file"
        )


def diagnose_gguf(path: Path) -> str | None:
    """What is wrong with a GGUF file's structure, or None if the header and data add up."""
    try:
        open_gguf(path)
    except UnusableModelError as exc:
        return exc.reason
    return None
