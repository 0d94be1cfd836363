"""One entry point for a model on disk, GGUF file or MLX folder: its facts, and its fingerprint."""

from __future__ import annotations

from pathlib import Path

from ..errors import UnusableModelError
from .gguf.metadata import read_gguf_info
from .mlx.metadata import read_mlx_info
from .model_info import ModelInfo

Fingerprint = tuple[int, int]  # (bytes, newest modification time in ns)


def read_model_info(path: Path) -> ModelInfo:
    """Facts about a GGUF file or an MLX folder. Never raises: a model that cannot be read
    comes back with `problem` saying why, so one bad file never stops a listing."""
    is_folder = path.is_dir()
    try:
        return read_mlx_info(path) if is_folder else read_gguf_info(path)
    except UnusableModelError as exc:
        problem = exc.reason
    except OSError as exc:
        problem = f"cannot be read ({exc.strerror or exc})"
    except Exception as exc:  # a file damaged in a way no check foresaw is still one bad file
        problem = f"cannot be read ({type(exc).__name__}: {exc})"
    return ModelInfo(
        path=path,
        format="mlx" if is_folder else "gguf",
        size_bytes=fingerprint(path)[0],
        problem=problem,
    )


def fingerprint(path: Path) -> Fingerprint:
    """Size and modification time: of the file, or summed / newest over a folder's files.
    Any change to a model on disk changes its fingerprint."""
    try:
        if not path.is_dir():
            stat = path.stat()
            return stat.st_size, stat.st_mtime_ns
        stats = [child.stat() for child in path.iterdir() if child.is_file()]
    except OSError:
        return 0, 0
    return sum(s.st_size for s in stats), max((s.st_mtime_ns for s in stats), default=0)
