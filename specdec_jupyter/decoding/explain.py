"""Why `draft_tokens="auto"` drafted or paused, in one line a user can act on.

The policy decides from three figures: what a drafted token costs next to a main-model call,
what a call on a few tokens costs next to a call on one, and how often drafts are right. The
stats name them ("a draft token costs 0.6 of a main-model call here"), say what the policy
made of them, and point to what would pay instead: copying from the prompt costs nothing, so
on a CPU where a draft model does not pay, `hybrid` or `lookup` still can.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from .policy import MAX_DRAFT, DraftPolicy, best_draft_length

SHOWN_CALL = 4  # the call size whose cost the note quotes: a round drafting 3


@dataclass(frozen=True)
class RoundDrafted:
    """What one round drafted: "model" or "lookup" (None: nothing), and how much was kept."""

    kind: str | None
    drafted: int
    accepted: int


def auto_note(policy: DraftPolicy, rounds: Sequence[RoundDrafted]) -> str | None:
    """One line: how many rounds drafted, and why; None when the policy measured nothing."""
    single = policy.verify.estimate(1)
    if single is None or not policy.sources:
        return None
    calls = [policy.verify.estimate(n + 1) or 0.0 for n in range(MAX_DRAFT + 1)]
    reasons, paying = [], False
    for name, cost in policy.costly_draft_costs().items():
        acceptance = policy.sources[name].acceptance.estimates(MAX_DRAFT)
        pays = best_draft_length(acceptance, cost, calls)[0] > 0
        could = best_draft_length([1.0] * MAX_DRAFT, cost, calls)[0] > 0
        reasons.append(_model_reason(name, cost / single, calls, pays, could, rounds))
        paying |= pays
    hits = policy.free_hit_rate()
    if hits is not None:
        reasons.append(_lookup_reason(hits, rounds))
    elif reasons and not paying:
        reasons.append(
            "copying from the prompt costs nothing: try draft mode hybrid (or lookup) where "
            "the reply repeats the prompt, as a code edit does"
        )
    if not reasons:
        return None
    drafting = sum(r.drafted > 0 for r in rounds)
    return f"drafted on {drafting} of {_count(len(rounds), 'round')}: " + "; ".join(reasons)


def _model_reason(
    name: str,
    ratio: float,
    calls: Sequence[float],
    pays: bool,
    could: bool,
    rounds: Sequence[RoundDrafted],
) -> str:
    facts = (
        f"a draft token costs {ratio:.1f} of a main-model call here (a call on "
        f"{SHOWN_CALL} tokens {calls[SHOWN_CALL - 1] / calls[0]:.1f})"
    )
    if not could:
        return f"{facts}, so {name} cannot pay even when always right"
    mine = [r for r in rounds if r.kind == "model" and r.drafted]
    drafted = sum(r.drafted for r in mine)
    accepted = f"{sum(r.accepted for r in mine) / drafted:.0%}" if drafted else "none yet"
    if not pays:
        return (
            f"{facts}, so {name} pays only when nearly every token it drafts is accepted "
            f"({accepted} were)"
        )
    return f"{facts}; {name} drafted on {_count(len(mine), 'round')}, {accepted} accepted"


def _lookup_reason(hits: float, rounds: Sequence[RoundDrafted]) -> str:
    copied = sum(r.drafted > 0 for r in rounds if r.kind == "lookup")
    verdict = f"so it drafted on {_count(copied, 'round')}" if copied else "too seldom to pay"
    return f"copying from the prompt costs nothing and was right {hits:.0%} of the time, {verdict}"


def _count(n: int, what: str) -> str:
    return f"{n} {what}" + ("" if n == 1 else "s")
