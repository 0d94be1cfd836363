"""Showing tokens with their provenance: HTML for notebooks, ANSI for terminals.

Accepted draft tokens are shaded green, deeper the likelier they were to be
accepted (min(1, p/q); 1.0 under greedy); the main model's own tokens are plain.
"""

from __future__ import annotations

import html
from collections.abc import Iterable

from .decoding.events import GenerationStats, TokenEvent

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
        f"<pre style='white-space: pre-wrap'>{events_to_html(events)}</pre>"
        f"<table style='font-size: 0.85em'>{cells}</table></div>"
    )


def event_to_ansi(event: TokenEvent, color: bool) -> str:
    if color and event.source == "draft" and event.text:
        return f"{ANSI_GREEN}{event.text}{ANSI_RESET}"
    return event.text


def stats_to_text(stats: GenerationStats) -> str:
    return "\n".join(f"{label}: {value}" for label, value in stats_rows(stats))
