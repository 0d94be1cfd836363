"""Verified tokens to token events, one way for the generator and the teacher.

An event's text is the bytes its token adds, decoded across multi-byte characters; the
end-of-generation token ends the run with empty text; stop strings hold text back until
they are found or ruled out (stops.py); max_tokens ends the run at its count.
"""

from __future__ import annotations

from collections.abc import Sequence

from ..engines.base import Engine
from ..engines.detokenize import IncrementalDetokenizer
from .events import StopReason, TokenEvent
from .round import VerifiedToken
from .stops import StopStringFilter


class Emitter:
    """Turns a run's verified tokens into the events to show, and says when the run ends."""

    def __init__(self, main: Engine, max_tokens: int, stop: Sequence[str] = ()):
        self.main = main
        self.max_tokens = max_tokens
        self.count = 0  # tokens added, shown or not
        self.stop_reason: StopReason | None = None
        self._detokenizer = IncrementalDetokenizer()
        self._stops = StopStringFilter(tuple(stop))

    @property
    def remaining(self) -> int:
        return self.max_tokens - self.count

    def add(self, token: VerifiedToken, n_round: int) -> list[TokenEvent]:
        """The events this token makes visible (none while a stop string may be forming);
        sets `stop_reason` when it ends the run."""
        self.count += 1
        token_id = token.token_id
        end = self.main.is_end_of_generation(token_id)
        text = "" if end else self._detokenizer.text_of(self.main.token_bytes(token_id))
        event = TokenEvent(
            token_id, text, token.source, n_round, token.p_main, token.q_draft, token.acceptance
        )
        if end:
            self.stop_reason = "eosFound"
            return [*self._stops.flush(), event]
        released, stopped = self._stops.push(event)
        if stopped:
            self.stop_reason = "stopStringFound"
        elif self.count >= self.max_tokens:
            self.stop_reason = "maxPredictedTokensReached"
            released += self._stops.flush()
        return released

    def finish(self, reason: StopReason) -> list[TokenEvent]:
        """End for a reason outside the token stream (a cancel, a full context)."""
        self.stop_reason = reason
        return self._stops.flush()
