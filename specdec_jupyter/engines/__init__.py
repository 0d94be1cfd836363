"""Backends behind one small protocol: llama.cpp (GGUF files) and MLX (mlx-lm folders,
in engines/mlx.py, imported only when asked for: MLX is an optional extra)."""

from .base import Engine

__all__ = ["Engine"]
