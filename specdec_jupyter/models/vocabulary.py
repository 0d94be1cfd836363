"""The vocabulary facts a draft's compatibility is judged by, however they were read: from a
GGUF header (models/gguf/metadata.py), by llama.cpp (models/gguf/llama_load.py), or by a
loaded engine (`Engine.vocabulary`)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class VocabularyFacts:
    """What llama.cpp compares before it lets one model draft for another."""

    vocab_type: str
    size: int
    bos_id: int | None
    eos_id: int | None
    add_bos: bool
    add_eos: bool
    token_texts: tuple[str, ...]
