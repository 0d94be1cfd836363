"""A chat's replies, one at a time: the run under way, the messages sent while it runs (each
sent in turn when the one before has been recorded, never dropped), and an event that those
waiting for the end wait on. The run's own thread records its reply (`finish`); the lock keeps
a run that ends at once from being recorded before it was known to run."""

from __future__ import annotations

import threading
from collections.abc import Callable

from ...sessions.generation import Generation


class ReplyQueue:
    def __init__(self) -> None:
        self.run: Generation | None = None
        self._lock = threading.Lock()  # held while a reply starts and while it is recorded
        self._settled = threading.Event()  # set when no reply is under way or queued
        self._settled.set()
        self._queued: list[str] = []  # messages sent while a reply ran, oldest first

    @property
    def busy(self) -> bool:
        return self.run is not None

    def queue(self, text: str) -> int:
        """Keep `text` for when the reply under way ends; how many wait now (0: none runs, so
        nothing was kept: send it yourself)."""
        with self._lock:
            if self.run is None:
                return 0
            self._queued.append(text)
            return len(self._queued)

    def start(self, begin: Callable[[], Generation], failed: Callable[[Exception], None]) -> None:
        """Start a reply with `begin`; if it cannot start, `failed` records why at once."""
        self._settled.clear()
        with self._lock:
            try:
                self.run = begin()
            except Exception as exc:  # shown in the widget; the kernel carries on
                failed(exc)
                self._ended(settled=True)

    def finish(self, record: Callable[[], None]) -> str | None:
        """Record the reply that ended (`record()`) and return the next queued message, if
        any, for the caller to send (those waiting wait on until it too has ended)."""
        with self._lock:
            queued = self._queued.pop(0) if self._queued else None
            record()
            self._ended(settled=queued is None)
        return queued

    def _ended(self, *, settled: bool) -> None:
        self.run = None  # only now: a message sent meanwhile must not land before the reply
        if settled:
            self._settled.set()

    def abandon(self) -> None:
        """Forget the messages waiting and stop the reply under way after its current round."""
        with self._lock:
            self._queued.clear()
        self.cancel()

    def cancel(self) -> None:
        """Stop the reply under way after its current round; what it generated stays."""
        if self.run is not None:
            self.run.cancel()

    def wait(self, timeout: float | None = None) -> bool:
        """Wait until no reply runs or waits; False if `timeout` came first."""
        return self._settled.wait(timeout)
