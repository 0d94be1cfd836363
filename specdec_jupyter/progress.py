"""How far a slow step has got — fetching, converting or loading a model — as one event type,
carried to whoever shows it.

The code that knows how far it is (llama.cpp's load callback, the fetch's byte count, the
converter's tensor count) reports through a `Tracker`. Who listens is set by the caller for
the block it runs, with `reporting_to(listener)`: a context variable, so the registry and
the engines between the two pass nothing along. The chat widget, the magics and the CLI
show the same `Progress` events, each its own way (display/progress.py, widgets/chat/).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import asdict, dataclass

from .models.names import file_size

STEPS = 200  # a step is reported at each 1/STEPS of the way: a few hundred events at most


@dataclass(frozen=True)
class Progress:
    """`done` of `total` units of one step (`stage`: "fetching", "converting", "loading")
    on the model called `name`; `unit` is "B" for bytes, "tensors", or "" for a fraction."""

    stage: str
    name: str
    done: float
    total: float
    unit: str = ""

    @property
    def fraction(self) -> float:
        return min(1.0, self.done / self.total) if self.total > 0 else 1.0

    @property
    def finished(self) -> bool:
        return self.fraction >= 1.0

    def describe(self) -> str:
        """'loading qwen2.5-coder-0.5b: 43%', with the units when they say more."""
        text = f"{self.stage} {self.name}: {self.fraction:.0%}"
        if self.unit == "B":
            return f"{text} ({file_size(self.done)} of {file_size(self.total)})"
        if self.unit:
            return f"{text} ({self.done:.0f} of {self.total:.0f} {self.unit})"
        return text

    def to_dict(self) -> dict[str, object]:
        return {**asdict(self), "fraction": self.fraction, "text": self.describe()}


ProgressListener = Callable[[Progress], None]

_listener: ContextVar[ProgressListener | None] = ContextVar("specdec_progress", default=None)


@contextmanager
def reporting_to(listener: ProgressListener | None) -> Iterator[None]:
    """Send the progress of every step run in this block (on this thread) to `listener`;
    None keeps whoever listens already."""
    if listener is None:
        yield
        return
    token = _listener.set(listener)
    try:
        yield
    finally:
        _listener.reset(token)


def current_listener() -> ProgressListener | None:
    return _listener.get()


class Tracker:
    """One step's progress, reported to the listener of the block it runs in (or `listener`):
    at the start, at each 1/STEPS of the way, and once at the end, never going back."""

    def __init__(
        self,
        stage: str,
        name: str,
        total: float,
        unit: str = "",
        listener: ProgressListener | None = None,
    ):
        self.stage, self.name, self.total, self.unit = stage, name, total, unit
        self.listener = listener or _listener.get()
        self.done = 0.0
        self._reported = -1  # the last 1/STEPS mark reported
        self._report()

    def advance(self, amount: float) -> None:
        self.update(self.done + amount)

    def update(self, done: float) -> None:
        """Now `done` units are done (less than before is ignored; more than total is total)."""
        self.done = min(max(done, self.done), self.total)
        self._report()

    def finish(self) -> None:
        self.update(self.total)

    def _report(self) -> None:
        event = Progress(self.stage, self.name, self.done, self.total, self.unit)
        mark = int(event.fraction * STEPS)
        if mark > self._reported and self.listener is not None:
            self._reported = mark
            self.listener(event)
