"""Showing tokens with their provenance: HTML for notebooks, ANSI for terminals.

A reply's HTML is its Markdown rendered with every token's span kept (reply_html.py): accepted
draft tokens shaded green, deeper the likelier the main model found them (its probability p of
the token), the main model's corrections and bonus tokens underlined, its other tokens plain.
"""

from __future__ import annotations

from collections.abc import Iterable

from .decoding.events import GenerationStats, TokenEvent
from .reply_html import reply_to_html
from .stats_layout import rows_to_html, stats_rows

ANSI_GREEN = "\x1b[32m"
ANSI_RESET = "\x1b[0m"


def events_to_html(events: Iterable[TokenEvent]) -> str:
    """A reply's tokens as rendered Markdown with their provenance (static: no script needed)."""
    return reply_to_html(list(events))


def result_to_html(events: list[TokenEvent], stats: GenerationStats) -> str:
    return (
        "<div class='specdec-result'>"
        f"{events_to_html(events)}"
        f"{rows_to_html(stats_rows(stats))}</div>"
    )


def event_to_ansi(event: TokenEvent, color: bool) -> str:
    if color and event.source == "draft" and event.text:
        return f"{ANSI_GREEN}{event.text}{ANSI_RESET}"
    return event.text
