"""An engine seen through: everything passes to the engine inside, and each `evaluate` call
and prompt read is shown to `before` and `after`, which a subclass fills in. The one way to
watch or hold an engine's calls: the teaching trace keeps the logits its drafter read, the
benchmark times every call, tests record the rows that predicted each position or hold a run
at a step."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from time import perf_counter
from typing import Any

import numpy as np

from .base import Engine, EngineCall


@dataclass(frozen=True)
class Call:
    """One `evaluate` call: its tokens, the rows asked for and returned, how many tokens the
    cache held before it, and when it started and ended (`perf_counter` seconds). A prompt
    read is a call on the whole prompt from an empty cache, whatever the engine kept."""

    tokens: Sequence[int]
    n_logits: int
    cached: int
    rows: np.ndarray
    started: float
    ended: float

    @property
    def seconds(self) -> float:
        return self.ended - self.started


class EngineTap:
    """`engine` with its calls shown to `before` and `after`; every other attribute is the
    engine's own."""

    def __init__(self, engine: Engine):
        self.inner = engine

    def __getattr__(self, name: str) -> Any:
        if name == "inner":  # not set yet (a copy being made)
            raise AttributeError(name)
        return getattr(self.inner, name)

    @property
    def tokens(self) -> list[int]:
        return self.inner.tokens

    def read_prompt(self, prompt: Sequence[int]) -> np.ndarray:
        self.before(prompt, 1)
        started = perf_counter()
        row = self.inner.read_prompt(prompt)
        self.after(Call(prompt, 1, 0, row[None], started, perf_counter()))
        return row

    def evaluate(self, tokens: Sequence[int], n_logits: int) -> np.ndarray:
        self.before(tokens, n_logits)
        cached, started = len(self.inner.tokens), perf_counter()
        rows = self.inner.evaluate(tokens, n_logits)
        self.after(Call(tokens, n_logits, cached, rows, started, perf_counter()))
        return rows

    def evaluate_many(self, calls: Sequence[EngineCall]) -> list[np.ndarray]:
        """Several sequences' calls made together, each shown to its sequence's tap."""
        for tap, tokens, n_logits in calls:
            tap.before(tokens, n_logits)
        cached, started = [len(tap.tokens) for tap, _, _ in calls], perf_counter()
        inner = [(tap.inner, tokens, n) for tap, tokens, n in calls]  # type: ignore[attr-defined]
        rows = self.inner.evaluate_many(inner)  # type: ignore[attr-defined]
        ended = perf_counter()
        for (tap, tokens, n), before, got in zip(calls, cached, rows, strict=True):
            tap.after(Call(tokens, n, before, got, started, ended))  # type: ignore[attr-defined]
        return rows

    def sequence(self, index: int) -> EngineTap:
        """The engine's sequence `index`, seen through a tap like this one (a copy sharing
        its state: a gate, a list of calls)."""
        if index == 0:
            return self
        view = object.__new__(type(self))
        view.__dict__.update(self.__dict__)
        view.inner = self.inner.sequence(index)
        return view

    def before(self, tokens: Sequence[int], n_logits: int) -> None:
        """Called before each call reaches the engine (a test may hold it here)."""

    def after(self, call: Call) -> None:
        """Called when each call has returned."""
