"""One round of speculative decoding taken apart, stage by stage, for a learner.

`trace_round` runs the loop's own round (`run_round`, with the draft model as
drafter) and takes its outcome apart, keeping what the loop lets go: the top
candidates of every q and p distribution, each u drawn against min(1, p/q), and the
residual normalize(max(0, p - q)) a correction was drawn from. `Walkthrough` strings
rounds into a generation to step through with the loop's prefill and emitter, so
with the same seed and a fixed k it emits exactly the events `speculative_decode`
emits.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from ..engines.base import Engine
from .drafters import ModelDrafter, rewind
from .emission import Emitter
from .events import Source, StopReason, TokenEvent
from .round import RoundOutcome, prefill, run_round
from .sampling import SamplingSettings, distribution

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


class _RowRecorder:
    """An engine seen through: keeps the logits rows the drafter read, so the trace can
    show whole q distributions where the drafter keeps only q of its token (greedy)."""

    def __init__(self, engine: Engine):
        self._engine = engine
        self.rows: list[np.ndarray] = []

    def __getattr__(self, name: str) -> Any:
        return getattr(self._engine, name)

    @property
    def tokens(self) -> list[int]:
        return self._engine.tokens

    def evaluate(self, tokens: Sequence[int], n_logits: int) -> np.ndarray:
        rows = self._engine.evaluate(tokens, n_logits)
        self.rows.extend(rows)
        return rows


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
    return _traced_round(main, draft, context, k, sampling, rng, number, top_n)[0]


def _traced_round(
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
    recorder = _RowRecorder(draft)
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


def expected_tokens_per_round(alpha: float, k: int) -> float:
    """Tokens a round of k draft tokens yields when each is accepted with probability
    alpha: 1 + alpha + ... + alpha^k = (1 - alpha^(k+1)) / (1 - alpha), k + 1 when every
    one is (Leviathan et al., 2023)."""
    return float(k + 1) if alpha >= 1 else (1 - alpha ** (k + 1)) / (1 - alpha)


class Walkthrough:
    """A generation taken one round at a time, each round shown stage by stage.

    `step` shows the next stage of the round on show, and past its last stage the next
    round, computing it if it is new; `back` shows the stage before, into earlier rounds,
    which are kept, so stepping forward again shows the same draws. A round's tokens
    join `visible_events` at its last stage. The first step reads the prompt and takes
    the first token from that pass, as the loop does.
    """

    def __init__(
        self,
        prompt: Sequence[int],
        *,
        k: int = 4,
        sampling: SamplingSettings | None = None,
        seed: int | None = 0,
        max_tokens: int = 64,
        top_n: int = TOP_N,
    ):
        if k < 1:
            raise ValueError(f"k (draft tokens per round) must be at least 1, got {k}")
        if max_tokens < 1:
            raise ValueError(f"max_tokens must be at least 1, got {max_tokens}")
        self.prompt = list(prompt)
        self.k = k
        self.sampling = sampling or SamplingSettings(temperature=1.0)
        self.max_tokens = max_tokens
        self.top_n = top_n
        self.rng = np.random.default_rng(seed)
        self.events: list[TokenEvent] = []
        self.rounds: list[RoundTrace] = []
        self.stage = 0
        self._at = -1  # which of `rounds` is on show
        self._starts: list[int] = []  # where each round's tokens begin in `events`
        self._context: list[int] = []  # prompt + tokens emitted, shown or not
        self._out: Emitter | None = None  # made at the first step, which brings the engine

    @property
    def stop_reason(self) -> StopReason | None:
        return self._out.stop_reason if self._out is not None else None

    @property
    def current(self) -> RoundTrace | None:
        """The round on show."""
        return self.rounds[self._at] if self.rounds else None

    @property
    def latest(self) -> bool:
        """Whether the round on show is the last one computed."""
        return self._at == len(self.rounds) - 1

    @property
    def can_go_back(self) -> bool:
        return self._at > 0 or self.stage > 0

    @property
    def round_shown(self) -> bool:
        """Whether the current round (if any) is shown to its last stage."""
        trace = self.current
        return trace is None or self.stage == len(trace.stages) - 1

    @property
    def done(self) -> bool:
        return self.stop_reason is not None and self.latest and self.round_shown

    @property
    def visible_events(self) -> list[TokenEvent]:
        if self.current is None:
            return self.events
        if not self.round_shown:
            return self.events[: self._starts[self._at]]
        return self.events if self.latest else self.events[: self._starts[self._at + 1]]

    def step(self, main: Engine, draft: Engine) -> None:
        """Show the next stage; after a round's last stage, show the next round, computing
        it if it is new."""
        if not self.round_shown:
            self.stage += 1
        elif not self.latest:
            self._at += 1
            self.stage = 0
        elif self.stop_reason is None:
            self._next_round(main, draft)

    def back(self) -> None:
        """Show the stage before, or the last stage of the round before; round 1's draft
        is as far back as it goes."""
        if self.stage > 0:
            self.stage -= 1
        elif self._at > 0:
            self._at -= 1
            self.stage = len(self.rounds[self._at].stages) - 1

    def finish_round(self, main: Engine, draft: Engine) -> None:
        """Show the rest of this round; at its end, all of the next one."""
        if self.round_shown:
            self.step(main, draft)
        if self.current is not None:
            self.stage = len(self.current.stages) - 1

    def counts(self) -> dict[str, float]:
        """The rounds on show and their draft tokens, as the marks on screen show them:
        drafted, judged, accepted (✓) and rejected (✗) so far, the acceptance rate
        alpha = accepted / judged, and the tokens a round of k is expected to yield at
        that rate."""
        drafted = judged = accepted = 0
        for trace in self.rounds[: self._at + 1]:
            shown = trace.checks
            if trace is self.current and not self.round_shown:
                shown = shown[: trace.stages[: self.stage + 1].count("check")]
            drafted += len(trace.proposals)
            judged += len(shown)
            accepted += sum(check.accepted for check in shown)
        alpha = accepted / judged if judged else 0.0
        return {
            "rounds": self._at + 1,
            "drafted": drafted,
            "judged": judged,
            "accepted": accepted,
            "rejected": judged - accepted,
            "acceptance_rate": alpha,
            "expected_per_round": expected_tokens_per_round(alpha, self.k),
        }

    def _next_round(self, main: Engine, draft: Engine) -> None:
        """The loop's round, as `speculative_decode` runs it with a fixed k."""
        if self._out is None:
            self._out = Emitter(main, self.max_tokens)
            first = prefill(main, ModelDrafter(draft), self.prompt, self.sampling, self.rng)
            self._context = [*self.prompt, first.token_id]
            self.events += self._out.add(first, 0)
        out = self._out
        if out.stop_reason is not None:
            return
        room = main.n_ctx - len(self._context)  # as the loop's: `last` is not yet cached
        if room < 0:
            self.events += out.finish("contextLengthReached")
            return
        k = min(self.k, out.remaining - 1, room)
        number = len(self.rounds) + 1
        trace, outcome = _traced_round(
            main, draft, self._context, k, self.sampling, self.rng, number, self.top_n
        )
        self.rounds.append(trace)
        self._starts.append(len(self.events))
        self._at = len(self.rounds) - 1
        self.stage = 0
        self._context = [*self._context, *outcome.tokens]
        for token in outcome.emitted:
            self.events += out.add(token, number)
            if out.stop_reason is not None:
                break
