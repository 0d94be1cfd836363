"""The wire format: tokens, stats, round summaries and chat messages as JSON-ready dicts, and
back. One set of field names for everything that leaves the process: the widgets' traits and
custom messages, the server's replies and chunks (`provenance`, `stats`), what the remote
client reads back, the CLI's `--json`. The front end types the same fields in
js/src/wire.js, and a test checks the two agree (tests/support/js_fixture.py).

A token is `TokenEvent`'s fields (`token_id`, `text`, `source`, `round`, `p_main`, `q_draft`,
`acceptance`, `kind`, `rejected`, `drafted_as`); stats are `GenerationStats`' fields plus the
derived `acceptance_rate`, `mean_accepted_per_round` and `speedup`, by LM Studio's names. A round
summary says what one round drafted and kept (the strip under a reply). A message is `role`
("user" | "assistant"), `content`, and for a reply `tokens`, `stats`, `stats_rows` (the same
stats formatted for people, so Python alone decides how they read), `rounds`, `main_model`,
`draft_model`, `settings`, and `error` when the reply ended on one; a regenerated reply also
carries its other `versions` and the `version` shown (widgets/chat/versions.py).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, fields
from typing import Any

from ..decoding.events import GenerationStats, TokenEvent
from ..display.stats_layout import Baseline, stats_rows

Message = dict[str, Any]
Round = dict[str, Any]
PROBABILITY_DIGITS = 4  # what the widgets keep of p, q and min(1, p/q): enough to shade by
_STATS_FIELDS = {f.name for f in fields(GenerationStats)}


def token_to_dict(event: TokenEvent, digits: int | None = None) -> dict[str, Any]:
    """A token's fields; `digits` rounds its probabilities (the widgets keep 4)."""
    data = asdict(event)
    data["rejected"] = list(event.rejected)
    data["drafted_as"] = list(event.drafted_as)
    if digits is not None:
        for key in ("p_main", "q_draft", "acceptance"):
            if data[key] is not None:
                data[key] = round(data[key], digits)
    return data


def token_from_dict(data: Mapping[str, Any]) -> TokenEvent:
    return TokenEvent(
        **{
            **data,
            "rejected": tuple(data.get("rejected", ())),
            "drafted_as": tuple(data.get("drafted_as", ())),
        }
    )


def stats_to_dict(stats: GenerationStats) -> dict[str, Any]:
    return {
        **asdict(stats),
        "acceptance_rate": stats.acceptance_rate,
        "mean_accepted_per_round": stats.mean_accepted_per_round,
        "speedup": stats.speedup,
    }


def stats_from_dict(data: Mapping[str, Any]) -> GenerationStats:
    """The stats again (the derived figures are recomputed, not read)."""
    return GenerationStats(**{key: value for key, value in data.items() if key in _STATS_FIELDS})


def round_summaries(events: Sequence[TokenEvent], stats: GenerationStats) -> list[Round]:
    """Per drafting round (round 0, the prompt's pass, drafts nothing): how many tokens were
    drafted, how many of them accepted, how many the round emitted, and what drafted them
    ("model": a draft model; "lookup": copied from the text; None where nothing was)."""
    accepted = Counter(event.round for event in events if event.source == "draft")
    emitted = Counter(event.round for event in events)
    default = "model" if stats.draft_model else None
    kinds = stats.draft_kinds
    return [
        {
            "round": number,
            "drafted": drafted,
            "accepted": accepted[number],
            "emitted": emitted[number],
            "source": (kinds[number - 1] if number <= len(kinds) else default) if drafted else None,
        }
        for number, drafted in enumerate(stats.draft_lengths, start=1)
    ]


def reply_message(
    events: Iterable[TokenEvent],
    stats: GenerationStats | None,
    *,
    main_model: str,
    draft_model: str | None,
    settings: dict[str, Any],
    error: str | None = None,
    baseline: Baseline | None = None,
) -> Message:
    """A finished (or stopped, or failed) reply with its provenance; `baseline`: plain
    decoding's speed to compare with, when one is known."""
    events = list(events)
    tokens = [token_to_dict(event, PROBABILITY_DIGITS) for event in events]
    message: Message = {
        "role": "assistant",
        "content": "".join(token["text"] for token in tokens),
        "tokens": tokens,
        "main_model": main_model,
        "draft_model": draft_model,
        "settings": dict(settings),
    }
    if stats is not None:
        message["stats"] = stats_to_dict(stats)
        message["stats_rows"] = [list(row) for row in stats_rows(stats, baseline)]
        message["rounds"] = round_summaries(events, stats)
    if error is not None:
        message["error"] = error
    return message
