"""The rounds of a reply, summarised for the strip under it: per round, how many tokens
were drafted, how many of them accepted, how many tokens the round emitted, and what
drafted them ("model": a draft model; "lookup": copied from the text, free). A round that
drafted nothing (the policy paused drafting, or no draft) has source None.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import replace
from typing import Any

from ..decoding.events import GenerationStats, TokenEvent

Round = dict[str, Any]


def round_summaries(events: Sequence[TokenEvent], stats: GenerationStats) -> list[Round]:
    """One summary per drafting round (round 0, the prompt's pass, drafts nothing)."""
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


def next_round(tokens: Sequence[dict], rounds: Sequence[Round]) -> int:
    """The first round number after those of a reply (wire tokens and round summaries)."""
    numbers = [token["round"] for token in tokens] + [r["round"] for r in rounds]
    return max(numbers, default=-1) + 1


def shift_event(event: TokenEvent, by: int) -> TokenEvent:
    """The event numbered as a later round, for a continuation that follows `by` rounds."""
    return replace(event, round=event.round + by) if by else event


def extend_reply(reply: dict[str, Any], more: dict[str, Any]) -> dict[str, Any]:
    """`reply` with the continuation `more` after it: its tokens and rounds numbered on from
    the reply's, the text joined; the stats, models and settings are the continuation's."""
    by = next_round(reply.get("tokens", []), reply.get("rounds", []))
    tokens = [{**token, "round": token["round"] + by} for token in more["tokens"]]
    rounds = [{**r, "round": r["round"] + by} for r in more.get("rounds", [])]
    kept = {key: value for key, value in reply.items() if key != "error"}
    return {
        **kept,
        **more,
        "content": reply["content"] + more["content"],
        "tokens": [*reply.get("tokens", []), *tokens],
        "rounds": [*reply.get("rounds", []), *rounds],
    }
