"""A streaming reply's tokens sent to the browser in batches, at most `MAX_UPDATES_PER_SECOND`
custom messages a second, so a fast model does not flood the front end."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

from ..decoding.events import TokenEvent
from ..sessions.wire import PROBABILITY_DIGITS, token_to_dict

MAX_UPDATES_PER_SECOND = 30


class TokenBatcher:
    """Collects token events and hands them on at most `rate` times a second.

    With `timer`, tokens that arrive too soon after a batch are sent by a timer thread,
    so the last tokens of a round show before the next round is computed; without it
    (when `send` must run on the caller's thread) they wait for the next `add`. Call
    `flush` at the end for whatever is pending. `send` receives wire tokens.
    """

    def __init__(
        self,
        send: Callable[[list[dict[str, Any]]], None],
        rate: float = MAX_UPDATES_PER_SECOND,
        *,
        timer: bool = True,
    ):
        self._send = send
        self._interval = 1.0 / rate
        self._use_timer = timer
        self._pending: list[dict[str, Any]] = []
        self._last_sent = float("-inf")
        self._timer: threading.Timer | None = None
        self._lock = threading.Lock()

    def add(self, event: TokenEvent) -> None:
        with self._lock:
            self._pending.append(token_to_dict(event, PROBABILITY_DIGITS))
            wait = self._last_sent + self._interval - time.monotonic()
            if wait > 0 and self._use_timer and self._timer is None:
                self._timer = threading.Timer(wait, self.flush)
                self._timer.daemon = True
                self._timer.start()
        if wait <= 0:
            self.flush()

    def flush(self) -> None:
        with self._lock:
            batch, self._pending = self._pending, []
            if self._timer is not None:
                self._timer.cancel()
                self._timer = None
            if batch:
                self._last_sent = time.monotonic()
                self._send(batch)  # under the lock, so batches never overtake each other
