"""A finished generation: its text, its events with provenance, its stats."""

from __future__ import annotations

from dataclasses import dataclass

from ..decoding.events import GenerationStats, TokenEvent
from ..display.reply_html import result_to_html
from ..display.stats_layout import stop_reason_in_words
from .wire import stats_to_dict, token_to_dict


@dataclass
class GenerationResult:
    events: list[TokenEvent]
    stats: GenerationStats

    @property
    def text(self) -> str:
        return "".join(event.text for event in self.events)

    @property
    def token_ids(self) -> list[int]:
        return [event.token_id for event in self.events]

    def to_dict(self) -> dict:
        """The CLI's `--json` shape: text, tokens and stats, as the wire has them."""
        return {
            "text": self.text,
            "tokens": [token_to_dict(event) for event in self.events],
            "stats": stats_to_dict(self.stats),
        }

    def _repr_html_(self) -> str:
        return result_to_html(self.events, self.stats)

    def __repr__(self) -> str:
        stats = self.stats
        stop = stop_reason_in_words(stats.stop_reason)
        return (
            f"GenerationResult({stats.predicted_tokens_count} tokens, "
            f"{stats.tokens_per_second:.1f} tok/s, accepted {stats.accepted_draft_tokens_count}"
            f"/{stats.total_draft_tokens_count} drafted, stop: {stop}): {self.text!r}"
        )
