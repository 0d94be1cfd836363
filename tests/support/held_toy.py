"""A run held a few rounds in until it is told to stop: the toy engine pauses at its n-th
evaluation until a `Generation` is cancelled, so a test acts on a run under way (the toy
finishes faster than a test reaches its next line) and sees it stop where it was."""

from __future__ import annotations

import itertools
import threading

from specdec_jupyter.engines.toy import ToyEngine
from specdec_jupyter.sessions.generation import Generation


def hold_toy_until_cancelled(monkeypatch, evaluation: int = 6) -> threading.Event:
    """Pause the toy engine at its `evaluation`-th call until a run is cancelled; returns
    the event set when the pause begins."""
    reached, cancelled = threading.Event(), threading.Event()
    evaluate, cancel, calls = ToyEngine.evaluate, Generation.cancel, itertools.count(1)

    def held(engine: ToyEngine, tokens, n_logits: int):
        if next(calls) == evaluation:
            reached.set()
            cancelled.wait(30)
        return evaluate(engine, tokens, n_logits)

    def cancelling(run: Generation) -> None:
        cancel(run)
        cancelled.set()

    monkeypatch.setattr(ToyEngine, "evaluate", held)
    monkeypatch.setattr(Generation, "cancel", cancelling)
    return reached
