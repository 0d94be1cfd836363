"""Short names for models, as the selectors and progress show them.

A catalog file is called by its catalog name (`qwen2.5-coder-1.5b`), any other model by its
file's stem or its folder's name; the facts that used to crowd the name (parameters,
quantization, size, the file itself) go into `details`, a selector's tooltip.
"""

from __future__ import annotations

from pathlib import Path

from .catalog import CATALOG
from .model_info import ModelInfo

_CATALOG_FILES = {model.filename: key for key, model in CATALOG.items()}


def short_name(path: Path) -> str:
    """The catalog name of a catalog file, else the file's stem (an MLX folder's name)."""
    if path.name in _CATALOG_FILES:
        return _CATALOG_FILES[path.name]
    return path.stem if path.suffix.lower() == ".gguf" else path.name


def details(info: ModelInfo) -> str:
    """'1.5B · Q4_K_M · 1.12 GB · /path/to/model.gguf': what a tooltip tells of a model."""
    facts = [info.size_label, info.quantization, file_size(info.size_bytes), str(info.path)]
    return " · ".join(fact for fact in facts if fact)


def file_size(size: float) -> str:
    """Bytes as people read them: '1.12 GB', '494 MB', '0.5 MB'."""
    if size >= 1e9:
        return f"{size / 1e9:.2f} GB"
    return f"{size / 1e6:.0f} MB" if size >= 1e7 else f"{size / 1e6:.1f} MB"
