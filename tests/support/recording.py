"""An engine that remembers the main model's logits by the position they predict.

With it a test can check the central claim of greedy speculative decoding: every
emitted token is the main model's argmax at its position, as computed in the
verification pass that emitted it.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from specdec_jupyter.engines.tap import Call, EngineTap


class RecordingEngine(EngineTap):
    def __init__(self, engine):
        super().__init__(engine)
        self.predicted: dict[int, np.ndarray] = {}  # position -> logits predicting it
        self.calls: list[tuple[int, int]] = []  # (tokens evaluated, logits rows asked)

    def after(self, call: Call) -> None:
        first = len(call.tokens) - call.n_logits
        for j, row in enumerate(call.rows):
            self.predicted[call.cached + first + j + 1] = row.copy()
        self.calls.append((len(call.tokens), call.n_logits))


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
