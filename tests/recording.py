"""An engine wrapper that remembers the main model's logits by the position they predict.

With it a test can check the central claim of greedy speculative decoding: every
emitted token is the main model's argmax at its position, as computed in the
verification pass that emitted it.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


class RecordingEngine:
    def __init__(self, engine):
        self._engine = engine
        self.predicted: dict[int, np.ndarray] = {}  # position -> logits predicting it
        self.calls: list[tuple[int, int]] = []  # (tokens evaluated, logits rows asked)

    def __getattr__(self, name: str):
        return getattr(self._engine, name)

    @property
    def tokens(self) -> list[int]:
        return self._engine.tokens

    def read_prompt(self, prompt: Sequence[int]) -> np.ndarray:
        row = self._engine.read_prompt(prompt)
        self.predicted[len(prompt)] = row.copy()
        self.calls.append((len(prompt), 1))
        return row

    def evaluate(self, tokens: Sequence[int], n_logits: int) -> np.ndarray:
        start = len(self._engine.tokens)
        rows = self._engine.evaluate(tokens, n_logits)
        first = len(tokens) - n_logits
        for j in range(n_logits):
            self.predicted[start + first + j + 1] = rows[j].copy()
        self.calls.append((len(tokens), n_logits))
        return rows


def first_difference(a: Sequence[int], b: Sequence[int]) -> int:
    n = 0
    while n < min(len(a), len(b)) and a[n] == b[n]:
        n += 1
    return n


def top_two_gap(logits: np.ndarray) -> float:
    top = np.partition(logits, -2)[-2:]
    return float(top[1] - top[0])


def drain(generator) -> tuple[list, object]:
    """All events of a decoding generator, and the stats it returns at the end."""
    events = []
    try:
        while True:
            events.append(next(generator))
    except StopIteration as done:
        return events, done.value
