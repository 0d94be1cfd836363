"""Drafters propose the next few tokens; the main model then judges them.

A drafter keeps its own state in step with the context it is handed: the model
drafter compares the context with what its cache holds and rolls back to the
common prefix, so rejected draft tokens are dropped there without a separate
call, and a follow-up chat turn reuses the cached conversation.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Protocol

import numpy as np

from ..engines.base import Engine
from .sampling import SamplingSettings, distribution, draw


@dataclass
class Draft:
    """Proposed tokens, each with the draft's probability q of it; `probs` holds whole
    q distributions when verification samples (it needs q of every token)."""

    tokens: list[int] = field(default_factory=list)
    q: list[float] = field(default_factory=list)
    probs: list[np.ndarray] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.tokens)


class Drafter(Protocol):
    name: str

    def propose(
        self,
        context: Sequence[int],
        k: int,
        sampling: SamplingSettings,
        rng: np.random.Generator,
    ) -> Draft:
        """Up to `k` tokens that might follow `context` (prompt plus everything emitted)."""
        ...


def common_prefix_length(a: Sequence[int], b: Sequence[int]) -> int:
    n = min(len(a), len(b))
    i = 0
    while i < n and a[i] == b[i]:
        i += 1
    return i


class ModelDrafter:
    """Drafts with a smaller model that shares the main model's vocabulary."""

    def __init__(self, engine: Engine):
        self.engine = engine
        self.name = engine.name

    def propose(
        self,
        context: Sequence[int],
        k: int,
        sampling: SamplingSettings,
        rng: np.random.Generator,
    ) -> Draft:
        engine = self.engine
        # Re-evaluate at least the last context token: its logits are not kept.
        keep = min(common_prefix_length(engine.tokens, context), len(context) - 1)
        engine.rollback(keep)
        logits = engine.evaluate(context[keep:], n_logits=1)[0]
        draft = Draft()
        while True:
            probs = distribution(logits, sampling)
            token = int(logits.argmax()) if sampling.greedy else draw(probs, rng)
            draft.tokens.append(token)
            draft.q.append(float(probs[token]))
            if not sampling.greedy:
                draft.probs.append(probs)
            if len(draft) == k or engine.is_end_of_generation(token):
                return draft
            logits = engine.evaluate([token], n_logits=1)[0]
