"""The protocol every engine implements.

An engine owns one model and one KV cache holding `tokens`. The decoding loop
only appends (`evaluate`) and truncates (`rollback`); it never sees a backend type.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

import numpy as np

from ..errors import ContextOverflowError
from ..models.vocabulary import VocabularyFacts

ChatMessage = dict[str, str]


class Engine(Protocol):
    name: str
    n_vocab: int
    n_ctx: int

    @property
    def backend(self) -> str:
        """Where the model runs (engine, device, layers offloaded), as the stats report it."""
        ...

    @property
    def tokens(self) -> list[int]:
        """The tokens whose keys and values the cache holds, in order."""
        ...

    def tokenize(self, text: str, *, special: bool = True) -> list[int]:
        """Tokens of `text`, with BOS where the model adds one; `special` parses control tokens."""
        ...

    def chat_tokens(self, messages: Sequence[ChatMessage]) -> list[int]:
        """The prompt tokens of a conversation, through the model's own chat template."""
        ...

    def token_bytes(self, token: int) -> bytes:
        """The raw bytes a token stands for (may be part of a multi-byte character)."""
        ...

    def is_end_of_generation(self, token: int) -> bool: ...

    def evaluate(self, tokens: Sequence[int], n_logits: int) -> np.ndarray:
        """Append `tokens` to the cache; return logits for the last `n_logits` of them.

        Shape (n_logits, n_vocab), float32. Only those rows are computed and copied.
        """
        ...

    def rollback(self, n_keep: int) -> None:
        """Forget every cached token from position `n_keep` on."""
        ...

    def vocabulary(self) -> VocabularyFacts: ...

    def close(self) -> None: ...


def require_room(name: str, cached: int, new: int, n_ctx: int) -> None:
    """Refuse an evaluation that would overflow the context, before any cache is touched."""
    if cached + new > n_ctx:
        raise ContextOverflowError(
            f"{name}: {cached} cached + {new} new tokens exceed the context of {n_ctx}; "
            "load the model with a larger n_ctx"
        )
