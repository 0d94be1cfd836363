"""The prefill and one round of speculative decoding: the generator's and the teacher's.

`prefill` reads the prompt and takes the first token from that pass, as plain decoding
does. `run_round` drafts k tokens with the option the caller picked, scores them in one
main-model call, verifies them (greedy exact match, or rejection sampling) and cuts the
main model's cache back to what stands. Its `RoundOutcome` is what the loop emits and
the policy learns from, and what the teaching trace takes apart; since both run this
function, the teacher shows what the generator does by construction.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from time import perf_counter

import numpy as np

from ..engines.base import Engine
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
    and in the main model's call.

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


def run_round(
    main: Engine,
    pending: Sequence[int],
    option: DraftOption | None,
    k: int,
    sampling: SamplingSettings,
    rng: Randomness,
) -> RoundOutcome:
    """Draft up to k tokens with `option` (none: a plain decoding step), score `pending +
    draft` in one main-model call, verify, and keep in the cache only what stands.

    `pending` are the tokens the main model's cache lacks, ending with the last token
    emitted (in the loop, just that one).
    """
    n_past = len(main.tokens)
    started = perf_counter()
    draft = option.propose(k, sampling, rng) if option is not None and k > 0 else Draft()
    drafted = perf_counter()
    rows = main.evaluate([*pending, *draft.tokens], n_logits=len(draft) + 1)
    verified = perf_counter()
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
    return RoundOutcome(
        draft, verification, emitted, rows, main_probs, drafted - started, verified - drafted
    )


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
