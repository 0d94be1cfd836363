"""MLX folders for GGUF models: converted once, kept with the other models.

A catalog model's MLX folder is `<models dir>/mlx/<name>-<bits>bit`, made from
its GGUF file (fetched first if needed) the first time it is asked for, so the
same real pair runs on llama.cpp and on MLX. A lock keeps two processes from
converting the same model at once; a folder under its final name is complete.
"""

from __future__ import annotations

from pathlib import Path

from ..catalog import CatalogModel
from ..fetch import exclusive_lock, fetch
from ..paths import models_dir
from .convert import convert_gguf_to_mlx

DEFAULT_BITS = 4


def mlx_model_dir(stem: str, bits: int = DEFAULT_BITS, folder: Path | None = None) -> Path:
    """Where the MLX conversion of a model named `stem` lives."""
    return (folder or models_dir()) / "mlx" / f"{stem}-{bits}bit"


def convert_once(source: Path, target: Path, *, bits: int = DEFAULT_BITS) -> bool:
    """Convert `source` into `target` unless it is there already; True if it converted."""
    if target.is_dir():
        return False
    target.parent.mkdir(parents=True, exist_ok=True)
    with exclusive_lock(target.parent / f".{target.name}.lock"):
        if target.is_dir():  # another process finished while we waited
            return False
        convert_gguf_to_mlx(source, target, bits=bits)
    return True


def catalog_mlx_model(model: CatalogModel, *, bits: int = DEFAULT_BITS) -> Path:
    """The MLX folder of a catalog model, fetching and converting it on first use."""
    target = mlx_model_dir(model.key, bits)
    if not target.is_dir():
        convert_once(fetch(model), target, bits=bits)

    return target
