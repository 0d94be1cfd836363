"""Verified tokens to token events, one way for the generator and the teacher.

An event's text is the bytes its token adds, decoded across multi-byte characters; the
end-of-generation token ends the run with empty text; stop strings hold text back until
they are found or ruled out (stops.py); max_tokens ends the run at its count. A token that
ends inside a character waits, as in llama.cpp's server, for the token that completes it;
when the run ends first, the bytes left over are flushed into its text (U+FFFD for a cut
character), so the events' texts hold every byte generated.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

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
        self._waiting: list[TokenEvent] = []  # past the stop strings, inside a character

    @property
    def remaining(self) -> int:
        return self.max_tokens - self.count

    def add(self, token: VerifiedToken, n_round: int) -> list[TokenEvent]:
        """The events this token makes visible (none while a stop string may be forming
        or a character is incomplete); sets `stop_reason` when it ends the run."""
        self.count += 1
        token_id = token.token_id
        end = self.main.is_end_of_generation(token_id)
        text = "" if end else self._detokenizer.text_of(self.main.token_bytes(token_id))
        event = TokenEvent(
            token_id,
            text,
            token.source,
            n_round,
            token.p_main,
            token.q_draft,
            token.acceptance,
            token.kind,
            self._texts(token.rejected_ids),
            token.drafted_as,
        )
        if end:
            return self._end("eosFound", [*self._stops.flush(), event])
        released, stopped = self._stops.push(event)
        if stopped:  # bytes still pending lie past the stop string, cut with it
            self.stop_reason = "stopStringFound"
        elif self.count >= self.max_tokens:
            return self._end("maxPredictedTokensReached", released + self._stops.flush())
        return self._release(released)

    def _texts(self, token_ids: Sequence[int]) -> tuple[str, ...]:
        """The texts of tokens not emitted (a correction's rejected draft), decoded together."""
        detokenizer = IncrementalDetokenizer()
        texts = [detokenizer.text_of(self.main.token_bytes(token_id)) for token_id in token_ids]
        if texts:
            texts[-1] += detokenizer.flush()
        return tuple(texts)

    def finish(self, reason: StopReason) -> list[TokenEvent]:
        """End for a reason outside the token stream (a cancel, a full context)."""
        return self._end(reason, self._stops.flush())

    def _end(self, reason: StopReason, events: list[TokenEvent]) -> list[TokenEvent]:
        """Flush the bytes left over into the last token that brought some."""
        self.stop_reason = reason
        self._waiting += events
        tail = self._detokenizer.flush()
        if tail:
            waiting = self._waiting
            i = max(
                i for i, e in enumerate(waiting) if not self.main.is_end_of_generation(e.token_id)
            )
            waiting[i] = replace(waiting[i], text=waiting[i].text + tail)
        return self._release([])

    def _release(self, events: list[TokenEvent]) -> list[TokenEvent]:
        self._waiting += events
        if self.stop_reason is None and self._detokenizer.pending:
            return []
        released, self._waiting = self._waiting, []
        return released
