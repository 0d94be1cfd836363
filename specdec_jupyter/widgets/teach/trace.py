"""One round of speculative decoding taken apart, stage by stage, for a learner.

`trace_round` runs the loop's own round (`run_round`, with the draft model as
drafter) and takes its outcome apart, keeping what the loop lets go: the top
candidates of every q and p distribution, each u drawn against min(1, p/q), and the
residual normalize(max(0, p - q)) a correction was drawn from (walkthrough.py strings
such rounds into a generation).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from ...decoding.drafters import ModelDrafter, rewind
from ...decoding.events import Source
from ...decoding.round import RoundOutcome, run_round
from ...decoding.sampling import SamplingSettings, distribution
from ...engines.base import Engine
from ...engines.tap import Call, EngineTap

TOP_N = 5  # candidates shown per distribution: enough to compare, few enough to read


@dataclass(frozen=True)
class Candidate:
    """A token as both models rate it at one position; q is None past the draft."""

    token_id: int
    text: str
    p: float
    q: float | None


@dataclass(frozen=True)
class Proposal:
    """A drafted token: q and p of it, and the top candidates of both at its position."""

    token_id: int
    text: str
    q: float
    p: float
    candidates: list[Candidate]


@dataclass(frozen=True)
class Check:
    """How draft token `position` was judged: under sampling accepted when u < min(1, p/q);
    under greedy (u None) when it is the main model's argmax."""

    position: int
    acceptance: float
    u: float | None
    accepted: bool


@dataclass(frozen=True)
class Bar:
    """A token of the residual: max(0, p - q) before normalising (`excess`), and after."""

    token_id: int
    text: str
    prob: float
    excess: float


@dataclass(frozen=True)
class RoundTrace:
    """Everything one round did, in the order a learner sees it (`stages`).

    `after_draft` is the main model's view one past the last draft token, where a
    bonus comes from; `residual` the top of the distribution a correction was drawn
    from after a rejection under sampling; `next_token` the main model's own token
    (the correction or the bonus) and `drawn_with` the probability it was drawn with
    (the residual's for a correction under sampling, else p). When an accepted draft
    token ends the generation, nothing is drawn after it: the checks stop there and
    `next_token` is None.
    """

    number: int
    greedy: bool
    proposals: list[Proposal]
    after_draft: list[Candidate]
    checks: list[Check]
    residual: list[Bar] | None
    next_token: Candidate | None
    drawn_with: float | None

    @property
    def ended(self) -> bool:
        """Whether an accepted draft token ended the generation (no correction or bonus)."""
        return self.next_token is None

    @property
    def n_accepted(self) -> int:
        return sum(check.accepted for check in self.checks)

    @property
    def rejected(self) -> bool:
        return self.n_accepted < len(self.checks)

    @property
    def stages(self) -> list[str]:
        """draft, score, one check per judged token, the residual (sampling, after a
        rejection), then the correction, the bonus, or the end of generation."""
        residual = ["residual"] if self.residual is not None else []
        last = "end" if self.ended else "correction" if self.rejected else "bonus"
        return ["draft", "score", *["check"] * len(self.checks), *residual, last]

    def emitted(self) -> list[tuple[int, Source, float, float | None, float | None]]:
        """(token, source, p, q, acceptance) of each token the round emits, as the loop's events."""
        accepted = [
            (proposal.token_id, "draft", proposal.p, proposal.q, check.acceptance)
            for proposal, check in zip(self.proposals, self.checks, strict=False)
            if check.accepted
        ]
        token = self.next_token
        if token is None:
            return accepted
        return [*accepted, (token.token_id, "main", token.p, token.q, None)]

    def describe(self) -> str:
        """The round in words, for a notebook without a live widget."""
        lines = [f"round {self.number}: the draft proposed {len(self.proposals)} tokens"]
        for i, proposal in enumerate(self.proposals):
            line = f"  {proposal.text!r}: q = {prob(proposal.q)}, p = {prob(proposal.p)}"
            if i >= len(self.checks):
                why = "the generation ended" if self.ended else "an earlier token was rejected"
                lines.append(f"{line} -> not judged ({why})")
                continue
            check = self.checks[i]
            test = "" if check.u is None else f", u = {check.u:.3f}"
            verdict = "accepted" if check.accepted else "rejected"
            lines.append(f"{line}, min(1, p/q) = {check.acceptance:.3f}{test} -> {verdict}")
        if self.residual is not None:
            bars = ", ".join(f"{bar.text!r} {prob(bar.prob)}" for bar in self.residual)
            lines.append(f"  residual normalize(max(0, p - q)): {bars}")
        token = self.next_token
        if token is None:
            lines.append("  end of generation: nothing is drawn after it")
        elif self.rejected and not self.greedy:
            drawn = f"residual {prob(self.drawn_with)}, p = {prob(token.p)}"
            lines.append(f"  correction: {token.text!r} ({drawn})")
        else:
            kind = "correction" if self.rejected else "bonus"
            lines.append(f"  {kind}: {token.text!r} (p = {prob(token.p)})")
        return "\n".join(lines)

    def to_dict(self) -> dict[str, Any]:
        return {
            **asdict(self),
            "n_accepted": self.n_accepted,
            "rejected": self.rejected,
            "stages": self.stages,
        }


class _RowsRead(EngineTap):
    """The draft engine, keeping the logits rows the drafter read, so the trace can show whole
    q distributions where the drafter keeps only q of its token (greedy)."""

    def __init__(self, engine: Engine):
        super().__init__(engine)
        self.rows: list[np.ndarray] = []

    def after(self, call: Call) -> None:
        self.rows.extend(call.rows)


def prob(value: float | None) -> str:
    """A probability with enough digits to read: three decimals, two significant below 0.01."""
    if value is None:
        return "-"
    return f"{value:.3f}" if value >= 0.01 or value == 0 else f"{value:.2g}"


def token_text(engine: Engine, token: int) -> str:
    """A token's text for a label: its bytes, or a name for tokens with none (control tokens)."""
    if engine.is_end_of_generation(token):
        return "⟨end⟩"
    return engine.token_bytes(token).decode("utf-8", errors="replace") or f"⟨{token}⟩"


def _top(probs: np.ndarray, n: int) -> list[int]:
    n = min(n, probs.size)
    return [int(i) for i in np.argpartition(probs, -n)[-n:]]


def _candidates(
    engine: Engine, p: np.ndarray, q: np.ndarray | None, token: int, top_n: int
) -> list[Candidate]:
    """The top of p and of q and `token`, the draft's favourites first."""
    ids = {token, *_top(p, top_n), *(_top(q, top_n) if q is not None else ())}
    ranked = sorted(ids, key=lambda i: (-(q[i] if q is not None else p[i]), -p[i]))
    return [
        Candidate(i, token_text(engine, i), float(p[i]), None if q is None else float(q[i]))
        for i in ranked
    ]


def trace_round(
    main: Engine,
    draft: Engine,
    context: Sequence[int],
    k: int,
    sampling: SamplingSettings,
    rng: np.random.Generator,
    number: int,
    top_n: int = TOP_N,
) -> RoundTrace:
    """One round after `context` (prompt + emitted tokens, the last not yet in the main
    model's cache): draft up to k tokens, score them, judge them; both caches are left
    as the loop leaves them."""
    return traced_round(main, draft, context, k, sampling, rng, number, top_n)[0]


def traced_round(
    main: Engine,
    draft: Engine,
    context: Sequence[int],
    k: int,
    sampling: SamplingSettings,
    rng: np.random.Generator,
    number: int,
    top_n: int,
) -> tuple[RoundTrace, RoundOutcome]:
    """The loop's round with the draft model as drafter, and its trace."""
    recorder = _RowsRead(draft)
    option = ModelDrafter(recorder).options(context, k)[0]
    outcome = run_round(main, rewind(main, context), option, k, sampling, rng)
    q_rows = outcome.draft.probs or [distribution(row, sampling) for row in recorder.rows]
    return _trace(main, outcome, q_rows, sampling, number, top_n), outcome


def _trace(
    main: Engine,
    outcome: RoundOutcome,
    q_rows: Sequence[np.ndarray],
    sampling: SamplingSettings,
    number: int,
    top_n: int,
) -> RoundTrace:
    """A round's outcome, with whole p and q distributions, as the learner sees it."""
    proposed, verdict = outcome.draft, outcome.verification
    p_rows = outcome.main_probs or [distribution(row, sampling) for row in outcome.rows]
    proposals = [
        Proposal(
            token,
            token_text(main, token),
            float(q_rows[i][token]),
            float(p_rows[i][token]),
            _candidates(main, p_rows[i], q_rows[i], token, top_n),
        )
        for i, token in enumerate(proposed.tokens)
    ]
    checks = [
        Check(i, ratio, verdict.draws[i] if verdict.draws else None, i < verdict.n_accepted)
        for i, ratio in enumerate(verdict.acceptance)
    ]
    after_draft = _candidates(main, p_rows[-1], None, int(p_rows[-1].argmax()), top_n)
    accepted = proposed.tokens[: verdict.n_accepted]
    ended = [i for i, token in enumerate(accepted) if main.is_end_of_generation(token)]
    if ended:  # an accepted ⟨end⟩: the loop emits nothing after it, so nothing is drawn
        checks = checks[: ended[0] + 1]
        return RoundTrace(number, sampling.greedy, proposals, after_draft, checks, None, None, None)
    residual = None
    if verdict.residual is not None:
        r, at = verdict.residual, verdict.n_accepted
        excess = np.maximum(p_rows[at] - q_rows[at], 0.0)
        top = sorted((i for i in _top(r, top_n) if r[i] > 0), key=lambda i: -r[i])
        residual = [Bar(i, token_text(main, i), float(r[i]), float(excess[i])) for i in top]
    n, token = verdict.n_accepted, verdict.next_token
    q_next = float(q_rows[n][token]) if n < len(q_rows) else None
    p_next = float(p_rows[n][token])
    drawn_with = float(verdict.residual[token]) if verdict.residual is not None else p_next
    return RoundTrace(
        number,
        sampling.greedy,
        proposals,
        after_draft,
        checks,
        residual,
        Candidate(token, token_text(main, token), p_next, q_next),
        drawn_with,
    )
