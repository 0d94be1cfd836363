"""Checking GGUF files before a backend sees them.

`check_gguf` is cheap (it reads four bytes) and runs before every load, so a
missing or foreign file is named in plain words. `diagnose_gguf` parses the
whole header with the gguf package's reader (seconds for a 150k-token
vocabulary), so it runs only after llama.cpp has refused a file, to say why.
"""

from __future__ import annotations

from pathlib import Path

from gguf import GGUFReader

from ..errors import ModelFileError

GGUF_MAGIC = b"GGUF"


def check_gguf(path: Path) -> None:
    """Raise ModelFileError unless `path` is a file that starts like a GGUF file."""
    if not path.exists():
        raise ModelFileError(
            f"model file not found: {path}; check the path, or fetch a catalog model with "
            "`specdec-jupyter models fetch NAME` (`--list` shows the names)"
        )
    if not path.is_file():
        raise ModelFileError(f"{path} is a folder, not a GGUF file; name the .gguf file inside it")
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
        reader = GGUFReader(path, "r")
    except Exception as exc:  # the reader raises ValueError, IndexError, ... on damage
        return f"its header is damaged or cut short ({type(exc).__name__}: {exc})"
    size = path.stat().st_size
    data_end = max((t.data_offset + int(t.n_bytes) for t in reader.tensors), default=0)
    if data_end > size:
        return f"it is truncated: its tensors need {data_end} bytes but the file has {size}"
    return None
