"""Showing tokens with their provenance: HTML for notebooks, ANSI for terminals.

Accepted draft tokens are shaded green, deeper the likelier they were to be
accepted (min(1, p/q); 1.0 under greedy); the main model's own tokens are plain.
"""

from __future__ import annotations

import html
from collections.abc import Iterable

from .decoding.events import GenerationStats, TokenEvent
from .stats_layout import rows_to_html, stats_rows

ANSI_GREEN = "\x1b[32m"
ANSI_RESET = "\x1b[0m"


def draft_shade(acceptance: float | None) -> float:
    """Opacity of the green behind a draft token: 0.25 (barely acceptable) to 0.6 (certain)."""
    return 0.25 + 0.35 * (1.0 if acceptance is None else max(0.0, min(1.0, acceptance)))


def token_tooltip(event: TokenEvent) -> str:
    parts = [f"{event.text!r}", f"id {event.token_id}", event.source, f"round {event.round}"]
    for label, value in (("p", event.p_main), ("q", event.q_draft), ("accept", event.acceptance)):
        if value is not None:
            parts.append(f"{label}={value:.3f}")
    return " · ".join(parts)


def events_to_html(events: Iterable[TokenEvent]) -> str:
    spans = []
    for event in events:
        text = html.escape(event.text)
        title = html.escape(token_tooltip(event), quote=True)
        if event.source == "draft":
            alpha = draft_shade(event.acceptance)
            style = f"background: rgba(34, 197, 94, {alpha:.2f}); border-radius: 2px"
            spans.append(
                f'<span class="specdec-draft" style="{style}" title="{title}">{text}</span>'
            )
        else:
            spans.append(f'<span class="specdec-main" title="{title}">{text}</span>')
    return "".join(spans)


def result_to_html(events: list[TokenEvent], stats: GenerationStats) -> str:
    return (
        "<div class='specdec-result'>"
        f"<pre style='white-space: pre-wrap'>{events_to_html(events)}</pre>"
        f"{rows_to_html(stats_rows(stats))}</div>"
    )


def event_to_ansi(event: TokenEvent, color: bool) -> str:
    if color and event.source == "draft" and event.text:
        return f"{ANSI_GREEN}{event.text}{ANSI_RESET}"
    return event.text
