"""Backends behind one small protocol: llama.cpp (GGUF) today; MLX and a toy engine later."""

from .base import Engine, VocabularyFacts

__all__ = ["Engine", "VocabularyFacts"]
