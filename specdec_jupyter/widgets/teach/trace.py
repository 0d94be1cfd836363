"""One round of speculative decoding taken apart, stage by stage, for a learner.

`trace_round` runs the loop's own round (`run_round`, with the loop's drafter for the draft
model, `make_drafter`) and takes its outcome apart, keeping what the loop lets go: the top
candidates of every q and p distribution, each u drawn against min(1, p/q), and the
residual normalize(max(0, p - q)) a correction was drawn from (walkthrough.py strings
such rounds into a generation). A draft of another vocabulary drafts text
(decoding/text_drafts.py): its round also shows the draft's own tokens, the text they
spell and the part of it proposed as the main model's tokens, each a point mass (q = 1).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from ...decoding.drafter_choice import make_drafter
from ...decoding.drafters import Draft, rewind
from ...decoding.events import Source
from ...decoding.round import RoundOutcome, run_round
from ...decoding.sampling import SamplingSettings, distribution
from ...decoding.text_drafts import TextDrafter, complete_length
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
    """A drafted token: q and p of it, and the top candidates of both at its position; from
    a draft of another vocabulary, the texts of the draft's own tokens that covered it."""

    token_id: int
    text: str
    q: float
    p: float
    candidates: list[Candidate]
    drafted_as: tuple[str, ...] = ()


@dataclass(frozen=True)
class OwnToken:
    """A token of a draft of another vocabulary, by its id in that vocabulary."""

    token_id: int
    text: str


@dataclass(frozen=True)
class TextDraft:
    """What a draft of another vocabulary did in a round: it wrote `own`, tokens of its own
    vocabulary, continuing the text so far; they spell `text` and then `waiting`, the bytes of
    a character the draft's text ends inside, which wait for the token that completes them.
    The main model's tokenizer reads `text`: the round's proposals spell `proposed`, and
    `held_back` is the rest, not proposed (past k, or the main model's last token of it,
    which could change with the text that follows). `reply_waiting` holds the bytes of a
    character the text so far ends inside: then the draft had no whole text to continue and
    did not draft. Bytes of a cut character read as hex, ⟨f0 9f⟩.
    """

    model: str
    own: list[OwnToken]
    text: str
    proposed: str
    held_back: str
    waiting: str
    reply_waiting: str = ""

    def describe(self) -> str:
        """What the draft wrote, in words (its first line names no round)."""
        if self.reply_waiting:
            return (
                f"the text so far ends inside a character ({self.reply_waiting} waits), so "
                f"{self.model}, of another vocabulary, has no whole text to continue: no draft"
            )
        if not self.own:
            return f"{self.model}, of another vocabulary, ended its text at once: no draft"
        own = ", ".join(f"{token.text!r} #{token.token_id}" for token in self.own)
        waiting = (
            f", then {self.waiting} waiting for the rest of a character" if self.waiting else ""
        )
        held = f", held back {self.held_back!r}" if self.held_back else ""
        return "\n".join(
            [
                f"{self.model}, of another vocabulary, wrote {tokens(len(self.own))}: {own}",
                f"  their text {self.text!r}{waiting}",
                f"  the main model's tokenizer reads it: proposed {self.proposed!r}{held}",
            ]
        )


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
    `next_token` is None. `text_draft` is what a draft of another vocabulary wrote (None
    for a draft of the main model's vocabulary).
    """

    number: int
    greedy: bool
    proposals: list[Proposal]
    after_draft: list[Candidate]
    checks: list[Check]
    residual: list[Bar] | None
    next_token: Candidate | None
    drawn_with: float | None
    text_draft: TextDraft | None = None

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
        """draft, the text re-tokenized (a draft of another vocabulary that wrote some),
        score, one check per judged token, the residual (sampling, after a rejection), then
        the correction, the bonus, or the end of generation."""
        wrote = self.text_draft is not None and bool(self.text_draft.own)
        drafted = ["draft", "retokenize"] if wrote else ["draft"]
        residual = ["residual"] if self.residual is not None else []
        last = "end" if self.ended else "correction" if self.rejected else "bonus"
        return [*drafted, "score", *["check"] * len(self.checks), *residual, last]

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
        lines = [f"round {self.number}: the draft proposed {tokens(len(self.proposals))}"]
        if self.text_draft is not None:
            lines = [f"round {self.number}: {self.text_draft.describe()}"]
            ids = ", ".join(f"{each.text!r} #{each.token_id}" for each in self.proposals)
            if self.text_draft.own:
                k = len(self.proposals)
                lines.append(f"  proposed: {tokens(k, 'main-model ')}, {ids or '-'}")
        for i, proposal in enumerate(self.proposals):
            line = f"  {proposal.text!r}: q = {prob(proposal.q)}, p = {prob(proposal.p)}"
            if proposal.drafted_as:
                line += f" (drafted as {' '.join(map(repr, proposal.drafted_as))})"
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


class Drafting:
    """The loop's drafter for a pair (`make_drafter`): the draft model drafting the main
    model's tokens, or, given `draft_prompt` (the conversation in the draft's own template
    and tokens), text for a draft of another vocabulary. Its draft engine is seen through a
    tap that keeps the rows read. A text drafter keeps state between rounds (the reply's
    text), so one `Drafting` serves a whole generation, its prompt read by `prefill`."""

    def __init__(self, main: Engine, draft: Engine, draft_prompt: Sequence[int] | None = None):
        self.main, self.draft = main, draft
        self.tap = _RowsRead(draft)
        drafter = make_drafter("model", self.tap, main=main, draft_prompt=draft_prompt)
        assert drafter is not None  # mode "model" always makes one
        self.drafter = drafter

    def serves(self, main: Engine, draft: Engine) -> bool:
        """Whether this drafter is for these engines (a pair reloaded brings new ones)."""
        return self.main is main and self.draft is draft

    @property
    def text_level(self) -> bool:
        return isinstance(self.drafter, TextDrafter)


_CUT = re.compile("[\udc80-\udcff]+")  # the bytes `surrogateescape` could not decode


def readable(data: bytes) -> str:
    """Bytes as text for a label; where a character is cut (a token may hold part of one, as
    byte-level vocabularies do for emoji and CJK) its bytes in hex: ⟨f0 9f⟩."""
    return _CUT.sub(_in_hex, data.decode("utf-8", errors="surrogateescape"))


def _in_hex(cut: re.Match[str]) -> str:
    return f"⟨{cut.group().encode('utf-8', 'surrogateescape').hex(' ')}⟩"


def tokens(n: int, kind: str = "") -> str:
    """ "1 token", "3 tokens" (of a `kind`)."""
    return f"{n} {kind}token" if n == 1 else f"{n} {kind}tokens"


def prob(value: float | None) -> str:
    """A probability with enough digits to read: three decimals, two significant below 0.01."""
    if value is None:
        return "-"
    return f"{value:.3f}" if value >= 0.01 or value == 0 else f"{value:.2g}"


def token_text(engine: Engine, token: int) -> str:
    """A token's text for a label: its bytes (`readable`), or a name for tokens with none
    (control tokens)."""
    if engine.is_end_of_generation(token):
        return "⟨end⟩"
    return readable(engine.token_bytes(token)) or f"⟨{token}⟩"


def _top(probs: np.ndarray, n: int) -> list[int]:
    n = min(n, probs.size)
    return [int(i) for i in np.argpartition(probs, -n)[-n:]]


def _candidates(
    engine: Engine, p: np.ndarray, q: np.ndarray | None, token: int, top_n: int
) -> list[Candidate]:
    """The top of p and of q (where q is not 0: a point mass has one) and `token`, the
    draft's favourites first."""
    top_q = [i for i in _top(q, top_n) if q[i] > 0] if q is not None else []
    ids = {token, *_top(p, top_n), *top_q}
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
    model's cache) with a draft of the main model's vocabulary: draft up to k tokens, score
    them, judge them; both caches are left as the loop leaves them."""
    drafting = Drafting(main, draft)
    return traced_round(main, drafting, context, k, sampling, rng, number, top_n)[0]


def traced_round(
    main: Engine,
    drafting: Drafting,
    context: Sequence[int],
    k: int,
    sampling: SamplingSettings,
    rng: np.random.Generator,
    number: int,
    top_n: int,
) -> tuple[RoundTrace, RoundOutcome]:
    """The loop's round with `drafting`'s drafter, and its trace: the option it offers
    (none, for a text drafter, while the text so far ends inside a character: then a plain
    step, as in the loop) drafts up to k tokens."""
    drafting.tap.rows.clear()
    options = drafting.drafter.options(context, k) if k > 0 else []
    option = options[0] if options else None
    outcome = run_round(main, rewind(main, context), option, k, sampling, rng)
    draft = outcome.draft
    if draft.deterministic:  # q all on each drafted token
        q_rows = [np.eye(1, outcome.rows.shape[-1], token)[0] for token in draft.tokens]
    else:
        q_rows = draft.probs or [distribution(row, sampling) for row in drafting.tap.rows]
    text = None
    if drafting.text_level and k > 0:
        text = _text_draft(main, drafting.draft, context, draft if option else None)
    return _trace(main, outcome, q_rows, sampling, number, top_n, text), outcome


def _text_draft(
    main: Engine, draft: Engine, context: Sequence[int], proposed: Draft | None
) -> TextDraft:
    """What a draft of another vocabulary wrote (`proposed`; None when it offered no draft
    because the text so far ends inside a character) and which part the main model got."""
    if proposed is None:  # a cut character's bytes lie in the last 3 tokens, a token has 1+
        tail = b"".join(main.token_bytes(token) for token in context[-3:])
        return TextDraft(draft.name, [], "", "", "", "", readable(tail[complete_length(tail) :]))
    own = proposed.own_tokens
    data = b"".join(draft.token_bytes(token) for token in own)
    whole = data[: complete_length(data)]
    sent = b"".join(main.token_bytes(token) for token in proposed.tokens)
    held = whole[len(sent) :] if whole.startswith(sent) else b""
    return TextDraft(
        draft.name,
        [OwnToken(token, token_text(draft, token)) for token in own],
        readable(whole),
        readable(sent),
        readable(held),
        readable(data[len(whole) :]),
    )


def _trace(
    main: Engine,
    outcome: RoundOutcome,
    q_rows: Sequence[np.ndarray],
    sampling: SamplingSettings,
    number: int,
    top_n: int,
    text: TextDraft | None,
) -> RoundTrace:
    """A round's outcome, with whole p and q distributions, as the learner sees it."""
    proposed, verdict = outcome.draft, outcome.verification
    p_rows = outcome.main_probs or [distribution(row, sampling) for row in outcome.rows]
    covered = proposed.covered_by or [()] * len(proposed)
    proposals = [
        Proposal(
            token,
            token_text(main, token),
            float(q_rows[i][token]),
            float(p_rows[i][token]),
            _candidates(main, p_rows[i], q_rows[i], token, top_n),
            covered[i],
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
    shown = (number, sampling.greedy, proposals, after_draft)
    if ended:  # an accepted ⟨end⟩: the loop emits nothing after it, so nothing is drawn
        return RoundTrace(*shown, checks[: ended[0] + 1], None, None, None, text)
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
    next_token = Candidate(token, token_text(main, token), p_next, q_next)
    return RoundTrace(*shown, checks, residual, next_token, drawn_with, text)
