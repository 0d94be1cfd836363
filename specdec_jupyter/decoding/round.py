"""The prefill and one round of speculative decoding: the generator's and the teacher's.

`prefill` reads the prompt and takes the first token from that pass, as plain decoding
does. A round (`round_steps`) drafts k tokens with the option the caller picked, scores them
in one main-model call, verifies them (greedy exact match, or rejection sampling) and cuts
the main model's cache back to what stands. It asks for its engine calls rather than making
them, so that `play` can run the rounds of several requests together: their draft-model
calls batched by draft engine, then one main-model call for all of them. `run_round` is one
round alone. Its `RoundOutcome` is what the loop emits and the policy learns from, and what
the teaching trace takes apart; since both run these functions, the teacher shows what the
generator does by construction.
"""

from __future__ import annotations

from collections.abc import Generator, Sequence
from dataclasses import dataclass, replace
from time import perf_counter

import numpy as np

from ..engines.base import Engine, EngineCall, evaluate_together
from ..errors import ContextOverflowError
from .drafters import Draft, Drafter, DraftOption
from .events import Kind, Source
from .sampling import Randomness, SamplingSettings, choose_token, distribution, probability_of
from .verify import Verification, verify_greedy, verify_sampling


@dataclass(frozen=True)
class VerifiedToken:
    """A token verification lets through, with the numbers its `TokenEvent` carries;
    a correction also carries the draft tokens it replaced."""

    token_id: int
    source: Source
    p_main: float
    q_draft: float | None = None
    acceptance: float | None = None
    kind: Kind | None = None
    rejected_ids: tuple[int, ...] = ()
    drafted_as: tuple[str, ...] = ()


@dataclass(frozen=True, eq=False)
class RoundOutcome:
    """What one round did: the draft, how verification judged it, the tokens it emits
    (accepted draft tokens, then the main model's own), and the seconds spent drafting
    (this round's share, where draft calls were shared) and in the main model's call, which
    held `call_rows` tokens (this round's k + 1 and those of the rounds beside it).

    `rows` are the main model's logits after each prefix of the draft (k + 1 rows);
    `main_probs` the distributions rejection sampling judged by, None under greedy, which
    never needs a whole softmax.
    """

    draft: Draft
    verification: Verification
    emitted: tuple[VerifiedToken, ...]
    rows: np.ndarray
    main_probs: list[np.ndarray] | None
    draft_seconds: float
    verify_seconds: float
    call_rows: int = 0  # 0: this round's own, len(draft) + 1

    def __post_init__(self) -> None:
        if not self.call_rows:
            object.__setattr__(self, "call_rows", len(self.draft) + 1)

    @property
    def n_accepted(self) -> int:
        return self.verification.n_accepted

    @property
    def tokens(self) -> list[int]:
        return [token.token_id for token in self.emitted]


def prefill(
    main: Engine,
    drafter: Drafter | None,
    prompt: Sequence[int],
    sampling: SamplingSettings,
    rng: Randomness,
) -> VerifiedToken:
    """Read the prompt (reusing what the cache shares with it) and take the first token;
    the drafter reads the prompt too, so its cost counts in the time to first token."""
    try:
        logits = main.read_prompt(prompt)
    except ContextOverflowError:
        raise ContextOverflowError(
            f"the prompt is {len(prompt)} tokens but {main.name}'s context holds {main.n_ctx}; "
            "shorten the prompt or load the model with a larger n_ctx"
        ) from None
    token, p, _ = choose_token(logits, sampling, rng, len(prompt))
    if drafter is not None:
        drafter.prepare(prompt)
    return VerifiedToken(token, "main", p, kind="first")


RoundSteps = Generator[EngineCall, np.ndarray, RoundOutcome]


def round_steps(
    main: Engine,
    pending: Sequence[int],
    option: DraftOption | None,
    k: int,
    sampling: SamplingSettings,
    rng: Randomness,
) -> RoundSteps:
    """One round, asking for each engine call it needs (yielding it, and receiving its rows):
    draft up to k tokens with `option` (none: a plain decoding step), score `pending + draft`
    in one main-model call, verify, and keep in the cache only what stands. Its seconds are
    the driver's to fill in (`play`).

    `pending` are the tokens the main model's cache lacks, ending with the last token
    emitted (in the loop, just that one).
    """
    n_past = len(main.tokens)
    draft = Draft()
    if option is not None and k > 0:
        draft = yield from option.propose(k, sampling, rng)
    rows = yield (main, [*pending, *draft.tokens], len(draft) + 1)
    if sampling.greedy:
        main_probs = None
        verification = verify_greedy(draft.tokens, rows)
    else:
        main_probs = [distribution(row, sampling) for row in rows]
        draft_probs = None if draft.deterministic else draft.probs
        verification = verify_sampling(
            draft.tokens, draft_probs, main_probs, rng, n_past + len(pending)
        )
    main.rollback(n_past + len(pending) + verification.n_accepted)
    emitted = _emitted(draft, verification, rows, main_probs)
    return RoundOutcome(draft, verification, emitted, rows, main_probs, 0.0, 0.0)


def play(rounds: Sequence[tuple[Engine, RoundSteps]]) -> list[RoundOutcome | Exception]:
    """Run several rounds together, each on its main engine: while any round is drafting,
    the draft calls they ask for are made together (one call per draft engine that batches,
    `evaluate_together`); once every round waits on its main model, their main-model calls
    are made together too. Each outcome carries its seconds: its share of the draft calls it
    was in (by tokens) and the time it spent choosing draft tokens, the whole main-model call
    and that call's size. A round that fails (or whose call failed) gives its exception.
    """
    results: list[RoundOutcome | Exception | None] = [None] * len(rounds)
    asked: dict[int, EngineCall] = {}
    drafting = [0.0] * len(rounds)
    verifying = [0.0] * len(rounds)
    call_rows = [0] * len(rounds)

    def advance(i: int, rows: np.ndarray | None, draft_phase: bool) -> None:
        started = perf_counter()
        steps = rounds[i][1]
        try:
            asked[i] = next(steps) if rows is None else steps.send(rows)
        except StopIteration as done:
            outcome = done.value
            results[i] = replace(
                outcome,
                draft_seconds=drafting[i],
                verify_seconds=verifying[i],
                call_rows=call_rows[i],
            )
        except Exception as exc:
            results[i] = exc
        if draft_phase:
            drafting[i] += perf_counter() - started

    for i in range(len(rounds)):
        advance(i, None, True)
    while asked:
        drafts = {i: c for i, c in asked.items() if c[0] is not rounds[i][0]}
        group = drafts or dict(asked)
        for i in group:
            del asked[i]
        started = perf_counter()
        try:
            answers = evaluate_together(list(group.values()))
        except Exception as exc:
            for i in group:
                results[i] = exc
            continue
        seconds = perf_counter() - started
        tokens = sum(len(call[1]) for call in group.values())
        for (i, call), rows in zip(group.items(), answers, strict=True):
            if drafts:
                drafting[i] += seconds * len(call[1]) / tokens
            else:
                verifying[i], call_rows[i] = seconds, tokens
            advance(i, rows, bool(drafts))
    assert all(result is not None for result in results)
    return results  # type: ignore[return-value]


def run_round(
    main: Engine,
    pending: Sequence[int],
    option: DraftOption | None,
    k: int,
    sampling: SamplingSettings,
    rng: Randomness,
) -> RoundOutcome:
    """One round alone (`round_steps`), with its draft calls and its main-model call made
    as it asks for them."""
    (outcome,) = play([(main, round_steps(main, pending, option, k, sampling, rng))])
    if isinstance(outcome, Exception):
        raise outcome
    return outcome


def _emitted(
    draft: Draft, verification: Verification, rows: np.ndarray, main_probs: list[np.ndarray] | None
) -> tuple[VerifiedToken, ...]:
    """The accepted draft tokens and the main model's own, each with p (under greedy from
    its logits row, without a whole softmax), q and the acceptance probability."""

    def p_of(i: int, token: int) -> float:
        if main_probs is None:
            return probability_of(rows[i], token)
        return float(main_probs[i][token])

    n = verification.n_accepted
    accepted = [
        VerifiedToken(
            token,
            "draft",
            p_of(i, token),
            draft.q[i],
            verification.acceptance[i],
            "accepted",
            drafted_as=draft.covered_by[i] if draft.covered_by else (),
        )
        for i, token in enumerate(draft.tokens[:n])
    ]
    token = verification.next_token
    kind = "plain" if not draft.tokens else "correction" if n < len(draft) else "bonus"
    own = VerifiedToken(
        token, "main", p_of(n, token), _q_of(draft, n, token), None, kind, tuple(draft.tokens[n:])
    )
    return (*accepted, own)


def _q_of(draft: Draft, position: int, token: int) -> float | None:
    """The draft's probability of the main model's own token, where the draft kept its q."""
    if draft.deterministic and position < len(draft):
        return float(token == draft.tokens[position])
    return float(draft.probs[position][token]) if position < len(draft.probs) else None
