"""How a generation's stats read, in one layout for every place that shows them: the chat,
`%%specdec`, `GenerationResult`'s HTML, `%specdec stats` and the CLI.

The rows (label, value) come in one order with LM Studio's labels; HTML puts them in the
markup the widgets' JS draws (`statsLine` in js/src/transcript.js: `.specdec-stats` holding
`.specdec-stat[data-label]` spans), text puts one per line. Stop reasons read in words.
"""

from __future__ import annotations

import html
from dataclasses import dataclass

from ..decoding.events import GenerationStats

STOP_REASON_WORDS = {
    "eosFound": "end of text",
    "stopStringFound": "stop string",
    "maxPredictedTokensReached": "token limit",
    "contextLengthReached": "context full",
    "userStopped": "stopped by you",
}


def stop_reason_in_words(reason: str | None) -> str:
    """LM Studio's camelCase stop reason as a reader says it ("not known" while none is)."""
    if reason is None:
        return "not known"
    return STOP_REASON_WORDS.get(reason, reason)


@dataclass(frozen=True)
class Baseline:
    """Plain decoding's tokens/s to compare a run with, and where that figure comes from."""

    tokens_per_second: float
    source: str  # "this run" (measured beside it) or "remembered" (an earlier plain run)


def run_baseline(stats: GenerationStats) -> Baseline | None:
    """The plain-decoding baseline measured in the same run, when there is one."""
    speed = stats.baseline_tokens_per_second
    return Baseline(speed, "this run") if speed else None


def acceptance_in_words(stats: GenerationStats) -> str:
    """The acceptance rate, or that nothing was drafted (0% would say every draft failed)."""
    if not stats.total_draft_tokens_count:
        return "nothing drafted"
    return f"{stats.acceptance_rate:.1%}"


def stats_rows(stats: GenerationStats, baseline: Baseline | None = None) -> list[tuple[str, str]]:
    """The stats as LM Studio labels them, formatted for people, always in this order.
    `baseline` defaults to the one measured in the run."""
    rows = [
        ("tokens/s", f"{stats.tokens_per_second:.2f}"),
        ("time to first token", f"{stats.time_to_first_token:.3f} s"),
        ("generation time", f"{stats.generation_time:.2f} s"),
        ("stop reason", stop_reason_in_words(stats.stop_reason)),
        ("predicted tokens", str(stats.predicted_tokens_count)),
        ("draft model", _draft_model(stats)),
    ]
    if stats.draft_model:
        rows += [
            ("drafted tokens", str(stats.total_draft_tokens_count)),
            ("accepted", str(stats.accepted_draft_tokens_count)),
            ("rejected", str(stats.rejected_draft_tokens_count)),
            ("ignored", str(stats.ignored_draft_tokens_count)),
            ("acceptance rate", acceptance_in_words(stats)),
            ("rounds", str(stats.rounds)),
        ]
    if stats.auto_note:
        rows.append(("auto", stats.auto_note))
    if stats.backend:
        rows.append(("backend", stats.backend))
    baseline = baseline or run_baseline(stats)
    if baseline is not None and stats.draft_model:
        ratio = stats.tokens_per_second / baseline.tokens_per_second
        rows.append(
            (
                "speedup over plain",
                f"{ratio:.2f}x (plain {baseline.tokens_per_second:.2f} tok/s, {baseline.source})",
            )
        )
    return rows


def _draft_model(stats: GenerationStats) -> str:
    if not stats.draft_model:
        return "none"
    if stats.text_draft:
        return f"{stats.draft_model} (another vocabulary: drafted text, counted in main tokens)"
    return stats.draft_model


def rows_to_text(rows: list[tuple[str, str]] | list[list[str]]) -> str:
    """One `label: value` line per row (`%specdec stats`, the CLI)."""
    return "\n".join(f"{label}: {value}" for label, value in rows)


def stats_to_text(stats: GenerationStats, baseline: Baseline | None = None) -> str:
    return rows_to_text(stats_rows(stats, baseline))


STATS_STYLE = "display:flex;flex-wrap:wrap;gap:4px 12px;font-size:0.85em;opacity:0.8"


def rows_to_html(rows: list[tuple[str, str]] | list[list[str]]) -> str:
    """The stats line in the widgets' markup, styled inline for pages without their CSS."""
    stats = "".join(
        f'<span class="specdec-stat" data-label="{html.escape(label, quote=True)}">'
        f'<span class="specdec-stat-label">{html.escape(label)}</span> '
        f"<b>{html.escape(value)}</b></span>"
        for label, value in rows
    )
    return f'<div class="specdec-stats" style="{STATS_STYLE}">{stats}</div>'
