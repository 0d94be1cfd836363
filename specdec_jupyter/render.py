"""Showing tokens with their provenance: HTML for notebooks, ANSI for terminals.

A reply's HTML is its Markdown rendered with every token's span kept (reply_html.py): accepted
draft tokens shaded green, deeper the likelier the main model found them (its probability p of
the token), the main model's corrections and bonus tokens underlined, its other tokens plain.
"""

from __future__ import annotations

import html
from collections.abc import Iterable

from .decoding.events import GenerationStats, TokenEvent
from .reply_html import reply_to_html

ANSI_GREEN = "\x1b[32m"
ANSI_RESET = "\x1b[0m"


def events_to_html(events: Iterable[TokenEvent]) -> str:
    """A reply's tokens as rendered Markdown with their provenance (static: no script needed)."""
    return reply_to_html(list(events))


def stats_rows(stats: GenerationStats) -> list[tuple[str, str]]:
    """The stats as LM Studio labels them, formatted for people."""
    rows = [
        ("tokens/s", f"{stats.tokens_per_second:.2f}"),
        ("time to first token", f"{stats.time_to_first_token:.3f} s"),
        ("generation time", f"{stats.generation_time:.2f} s"),
        ("stop reason", str(stats.stop_reason)),
        ("predicted tokens", str(stats.predicted_tokens_count)),
        ("draft model", stats.draft_model or "none"),
    ]
    if stats.backend:
        rows.append(("backend", stats.backend))
    if stats.draft_model:
        rows += [
            ("drafted tokens", str(stats.total_draft_tokens_count)),
            ("accepted", str(stats.accepted_draft_tokens_count)),
            ("rejected", str(stats.rejected_draft_tokens_count)),
            ("ignored", str(stats.ignored_draft_tokens_count)),
            ("acceptance rate", f"{stats.acceptance_rate:.1%}"),
        ]
    if stats.speedup is not None:
        rows.append(("speedup over plain", f"{stats.speedup:.2f}x"))
    return rows


def result_to_html(events: list[TokenEvent], stats: GenerationStats) -> str:
    cells = "".join(
        f"<tr><th style='text-align:left;padding-right:1em'>{html.escape(label)}</th>"
        f"<td style='text-align:left'>{html.escape(value)}</td></tr>"
        for label, value in stats_rows(stats)
    )
    return (
        "<div class='specdec-result'>"
        f"{events_to_html(events)}"
        f"<table style='font-size: 0.85em'>{cells}</table></div>"
    )


def event_to_ansi(event: TokenEvent, color: bool) -> str:
    if color and event.source == "draft" and event.text:
        return f"{ANSI_GREEN}{event.text}{ANSI_RESET}"
    return event.text


def stats_to_text(stats: GenerationStats) -> str:
    return "\n".join(f"{label}: {value}" for label, value in stats_rows(stats))
