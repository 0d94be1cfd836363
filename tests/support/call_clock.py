"""A clock that moves only when an engine is called, by what the call is said to cost.

Timings decide what `auto` drafts, and a busy CI machine makes real ones anything. Here each
engine call advances the clock by a cost table's figure for its size, so the policy sees a
machine of known costs, the same on every run: `clock.tap(engine, cost)` wraps an engine,
and `clock.install(monkeypatch)` makes the decoding round read this clock.
"""

from __future__ import annotations

from collections.abc import Callable

from specdec_jupyter.decoding import loop as loop_module
from specdec_jupyter.decoding import round as round_module
from specdec_jupyter.engines.base import Engine
from specdec_jupyter.engines.tap import Call, EngineTap


class CallClock:
    """Seconds that pass only inside engine calls."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now

    def tap(self, engine: Engine, cost: Callable[[int], float]) -> EngineTap:
        """`engine`, each of whose calls on n tokens takes `cost(n)` seconds of this clock."""
        clock = self

        class Timed(EngineTap):
            def after(self, call: Call) -> None:
                clock.now += cost(len(call.tokens))

        return Timed(engine)

    def install(self, monkeypatch) -> None:
        """Let the loop and each round time themselves by this clock."""
        monkeypatch.setattr(round_module, "perf_counter", self)
        monkeypatch.setattr(loop_module, "perf_counter", self)
