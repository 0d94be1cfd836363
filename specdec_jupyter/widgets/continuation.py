"""A reply continued where it ends (Continue): the continuation's rounds numbered on from
the reply's, its tokens and text joined, and the stats of both parts as one run's."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from typing import Any

from ..decoding.events import GenerationStats, TokenEvent
from ..sessions.wire import stats_from_dict


def next_round(tokens: Sequence[dict], rounds: Sequence[dict]) -> int:
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


def continued_stats(before: dict[str, Any], after: GenerationStats) -> GenerationStats:
    """The stats of a reply (`before`, as the message holds them) and of its continuation,
    as one run's: counts, rounds and times added, the speed over both parts' decoding
    (each part's first token comes from its prompt pass), the stop reason of the last."""
    first = stats_from_dict(before)
    whole = replace(
        after,
        prompt_tokens_count=first.prompt_tokens_count,
        predicted_tokens_count=first.predicted_tokens_count + after.predicted_tokens_count,
        time_to_first_token=first.time_to_first_token,
        generation_time=first.generation_time + after.generation_time,
        total_draft_tokens_count=first.total_draft_tokens_count + after.total_draft_tokens_count,
        accepted_draft_tokens_count=first.accepted_draft_tokens_count
        + after.accepted_draft_tokens_count,
        rejected_draft_tokens_count=first.rejected_draft_tokens_count
        + after.rejected_draft_tokens_count,
        ignored_draft_tokens_count=first.ignored_draft_tokens_count
        + after.ignored_draft_tokens_count,
        rounds=first.rounds + after.rounds,
        draft_lengths=[*first.draft_lengths, *after.draft_lengths],
        draft_kinds=[*first.draft_kinds, *after.draft_kinds],
    )
    decoded = max(0, first.predicted_tokens_count - 1) + max(0, after.predicted_tokens_count - 1)
    whole.tokens_per_second = decoded / whole.generation_time if whole.generation_time else 0.0
    return whole
