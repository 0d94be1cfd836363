"""The protocol every engine implements.

An engine owns one model and one KV cache holding `tokens`. The decoding loop
reads a prompt (`read_prompt`), appends (`evaluate`) and truncates (`rollback`);
it never sees a backend type. An engine may hold several sequences (`n_seq`), caches of
their own on one model: `sequence(i)` is sequence i as an engine of its own (0 is the
engine itself), and `evaluate_together` evaluates several sequences' tokens in one call
where the backend can (llama.cpp), one after another where it cannot.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol

import numpy as np

from ..errors import ContextOverflowError
from ..models.vocabulary import VocabularyFacts

ChatMessage = dict[str, str]
Prompt = str | Sequence[ChatMessage]  # text (one user message, or raw text), or a conversation
EngineCall = tuple["Engine", Sequence[int], int]  # a sequence, its tokens, the rows wanted


class Engine(Protocol):
    name: str
    n_vocab: int
    n_ctx: int
    exact: bool  # a position's logits are the same however many tokens its call holds
    n_seq: int  # sequences: caches of their own on this model

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

    def token_pieces(self) -> Sequence[bytes]:
        """`token_bytes` of every id in order (n_vocab of them), read once, with nothing for
        an end of generation: what a draft of another vocabulary maps its tokens by."""
        ...

    def is_end_of_generation(self, token: int) -> bool: ...

    def read_prompt(self, prompt: Sequence[int]) -> np.ndarray:
        """Make the cache hold `prompt`, keeping what it already holds where reading it
        afresh would give the same keys and values; the logits after its last token."""
        ...

    def evaluate(self, tokens: Sequence[int], n_logits: int) -> np.ndarray:
        """Append `tokens` to the cache; return logits for the last `n_logits` of them.

        Shape (n_logits, n_vocab), float32. Only those rows are computed and copied.
        """
        ...

    def rollback(self, n_keep: int) -> None:
        """Forget every cached token from position `n_keep` on."""
        ...

    def sequence(self, index: int) -> Engine:
        """Sequence `index` (0 <= index < n_seq) as an engine of its own; 0 is this one."""
        ...

    def vocabulary(self) -> VocabularyFacts: ...

    def close(self) -> None: ...


def evaluate_together(calls: Sequence[EngineCall]) -> list[np.ndarray]:
    """Each call's rows, as `engine.evaluate(tokens, n_logits)` gives them; calls on
    sequences of one engine that evaluates them together (a `batch_key` and `evaluate_many`)
    are made in one call of that engine."""
    groups: dict[Any, list[int]] = {}
    for i, (engine, _, _) in enumerate(calls):
        key = getattr(engine, "batch_key", None)
        groups.setdefault(i if key is None else key, []).append(i)
    results: list[np.ndarray] = [np.empty(0)] * len(calls)
    for members in groups.values():
        first = calls[members[0]][0]
        if len(members) == 1:
            rows = [first.evaluate(*calls[members[0]][1:])]
        else:
            rows = first.evaluate_many([calls[i] for i in members])  # type: ignore[attr-defined]
        for i, row in zip(members, rows, strict=True):
            results[i] = row
    return results


def common_prefix_length(a: Sequence[int], b: Sequence[int]) -> int:
    n = min(len(a), len(b))
    i = 0
    while i < n and a[i] == b[i]:
        i += 1
    return i


def text_tokens(engine: Engine, text: str) -> list[int]:
    """The tokens of `text` as a piece of text, not a prompt: control tokens' names taken
    literally, and without what the tokenizer puts first (BOS)."""
    start = engine.tokenize("")
    tokens = engine.tokenize(text, special=False)
    return tokens[len(start) :] if tokens[: len(start)] == start else tokens


def read_reusing_prefix(engine: Engine, prompt: Sequence[int]) -> np.ndarray:
    """`read_prompt` for an engine whose keys and values do not depend on how a prompt is
    split into calls: keep the whole cached prefix, short of the last token (its logits are
    not kept, so it is read again)."""
    keep = min(common_prefix_length(engine.tokens, prompt), len(prompt) - 1)
    engine.rollback(keep)
    return engine.evaluate(prompt[keep:], n_logits=1)[0]


def require_room(name: str, cached: int, new: int, n_ctx: int) -> None:
    """Refuse an evaluation that would overflow the context, before any cache is touched."""
    if cached + new > n_ctx:
        raise ContextOverflowError(
            f"{name}: {cached} cached + {new} new tokens exceed the context of {n_ctx}; "
            "load the model with a larger n_ctx"
        )
