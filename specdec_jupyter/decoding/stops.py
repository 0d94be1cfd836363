"""Stop strings over a stream of token events.

A stop string can span several tokens, so events whose text could be the start
of a stop string are held back until the next tokens decide: either the stop
string completes (the held text is cut at its start and generation ends) or it
cannot anymore (the events are released unchanged). The text a user sees never
contains the stop string.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

from .events import TokenEvent


@dataclass
class StopStringFilter:
    stops: tuple[str, ...]
    _held: list[TokenEvent] = field(default_factory=list)

    def push(self, event: TokenEvent) -> tuple[list[TokenEvent], bool]:
        """Add one event; return the events now safe to show, and whether a stop string ended it."""
        if not self.stops:
            return [event], False
        self._held.append(event)
        text = "".join(e.text for e in self._held)
        cut = min((i for i in (text.find(s) for s in self.stops) if i >= 0), default=-1)
        if cut >= 0:
            released = self._release_up_to(cut, trim=True)
            self._held.clear()
            return released, True
        return self._release_up_to(len(text) - self._pending_prefix(text), trim=False), False

    def flush(self) -> list[TokenEvent]:
        """Release whatever is held (the generation ended for another reason)."""
        held, self._held = self._held, []
        return held

    def _pending_prefix(self, text: str) -> int:
        """Length of the longest tail of `text` that begins some stop string."""
        longest = 0
        for stop in self.stops:
            for n in range(min(len(stop) - 1, len(text)), longest, -1):
                if text.endswith(stop[:n]):
                    longest = n
                    break
        return longest

    def _release_up_to(self, limit: int, *, trim: bool) -> list[TokenEvent]:
        """Release held events whose text ends by `limit`; with `trim`, cut the one crossing it."""
        released: list[TokenEvent] = []
        position = 0
        while self._held:
            event = self._held[0]
            end = position + len(event.text)
            if end > limit:
                if trim and limit > position:
                    released.append(replace(event, text=event.text[: limit - position]))
                break
            released.append(self._held.pop(0))
            position = end
        return released
