"""A generation running on a worker thread, so a notebook's kernel stays free while it runs.

    run = manager.start("Write a quicksort in Python.", main="qwen2.5-coder-1.5b")
    for event in run:       # tokens as they are verified
        print(event.text, end="")
    run.cancel()            # stops after the current round; what was generated stands
    run.result()            # GenerationResult: text, events, stats

Waiting (iterating, `result()`) can be interrupted like any cell: the first Ctrl-C
(or Jupyter's interrupt) cancels the run and the wait goes on until the current
round ends, so the text so far is kept; a second one interrupts the wait itself.

A listener that must not wait (a widget forwarding tokens to the browser) passes
`on_event` and `on_end`: they run on the run's own thread as events come and once it
has ended, so no second thread copies events from one place to another.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Protocol

from ..decoding.events import GenerationStats, TokenEvent
from ..engines.base import Prompt
from ..settings import RunSettings
from .result import GenerationResult

INTERRUPT_SLICE = 0.1  # seconds a waiting caller may take to notice Ctrl-C
Emit = Callable[[TokenEvent], None]
ShouldStop = Callable[[], bool]
Work = Callable[[Emit, ShouldStop], GenerationStats]
OnEnd = Callable[["Generation"], None]


class Streaming(Protocol):
    """A session here (`Session`) or on a server (`RemoteSession`)."""

    last_stats: GenerationStats | None

    def stream(
        self,
        prompt: Prompt,
        settings: RunSettings | None = None,
        *,
        continue_: bool = False,
        should_stop: ShouldStop | None = None,
    ) -> Iterator[TokenEvent]: ...


def streamed(session: Streaming, prompt: Prompt, settings: RunSettings, *, continue_: bool) -> Work:
    """A run's work: stream from `session`, emitting each event, and return the stats (a
    stream stopped before its stats came, as a remote one can be, stopped by the user)."""

    def work(emit: Emit, should_stop: ShouldStop) -> GenerationStats:
        for event in session.stream(prompt, settings, continue_=continue_, should_stop=should_stop):
            emit(event)
        return session.last_stats or GenerationStats(stop_reason="userStopped")

    return work


@dataclass(frozen=True)
class Runnable:
    """A run not started yet: its work, and the name its thread will have."""

    work: Work
    name: str

    def start(self, on_event: Emit | None = None, on_end: OnEnd | None = None) -> Generation:
        return Generation(self.work, name=self.name, on_event=on_event, on_end=on_end)


class Generation:
    """Handle on one run: iterate for events, `cancel()`, `result()`; or listen with
    `on_event(event)` and `on_end(run)`, called on the run's thread (`on_end` also after
    an error, which `run.error` then holds)."""

    def __init__(
        self,
        work: Work,
        *,
        name: str = "specdec generation",
        on_event: Emit | None = None,
        on_end: OnEnd | None = None,
    ):
        self._on_event = on_event
        self._on_end = on_end
        self.events: list[TokenEvent] = []
        self.stats: GenerationStats | None = None
        self.error: BaseException | None = None
        self._cancelled = threading.Event()
        self._changed = threading.Condition()
        self._finished = False
        self._thread = threading.Thread(target=self._work, args=(work,), name=name, daemon=True)
        self._thread.start()

    def _work(self, work: Work) -> None:
        try:
            self.stats = work(self._emit, self._cancelled.is_set)
        except BaseException as exc:  # handed to whoever waits on the result
            self.error = exc
        finally:
            if self._on_end is not None:
                self._on_end(self)  # before waiters wake: a finished run is fully handled
            with self._changed:
                self._finished = True
                self._changed.notify_all()

    def _emit(self, event: TokenEvent) -> None:
        with self._changed:
            self.events.append(event)
            self._changed.notify_all()
        if self._on_event is not None:
            self._on_event(event)

    def cancel(self) -> None:
        """Stop after the current round (the loop polls between rounds); keeps the events."""
        self._cancelled.set()

    @property
    def cancelled(self) -> bool:
        return self._cancelled.is_set()

    @property
    def done(self) -> bool:
        return self._finished

    @property
    def text(self) -> str:
        """The text generated so far."""
        return "".join(event.text for event in list(self.events))

    def __iter__(self) -> Iterator[TokenEvent]:
        """Every event from the first, then new ones as they come, until the run ends."""
        seen = 0
        while True:
            with self._changed:
                self._wait(lambda n=seen: n < len(self.events) or self._finished)
                new, finished = self.events[seen:], self._finished
            seen += len(new)
            yield from new
            if finished and seen == len(self.events):
                break
        self._raise_error()

    def result(self, timeout: float | None = None) -> GenerationResult:
        """Wait for the run to end and return it; raises what the run raised."""
        with self._changed:
            if not self._wait(lambda: self._finished, timeout):
                raise TimeoutError(f"the generation is still running after {timeout} s")
        self._raise_error()
        assert self.stats is not None
        return GenerationResult(list(self.events), self.stats)

    def _wait(self, ready: Callable[[], bool], timeout: float | None = None) -> bool:
        """Wait (holding `_changed`) until `ready()`; a first interrupt cancels the run. The
        wait wakes every `INTERRUPT_SLICE` seconds: a wait with no timeout cannot be
        interrupted on Windows, and an interrupt that lands just before it blocks would wait
        for the next token."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            try:
                while not ready():
                    left = INTERRUPT_SLICE if deadline is None else deadline - time.monotonic()
                    if left <= 0:
                        return False
                    self._changed.wait(min(left, INTERRUPT_SLICE))
                return True
            except KeyboardInterrupt:
                if self.cancelled:
                    raise
                self.cancel()

    def _raise_error(self) -> None:
        if self.error is not None:
            raise self.error

    def __repr__(self) -> str:
        state = "done" if self.done else "cancelling" if self.cancelled else "running"
        return f"<Generation {state}, {len(self.events)} tokens: {self.text[-60:]!r}>"
