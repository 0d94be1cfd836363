"""Judging a draft against the main model: pure numpy, no engine in sight.

Greedy verification accepts the longest prefix of the draft that equals the main
model's argmax and then takes the main model's argmax at the first mismatch (the
correction) or after the last draft token (the bonus). Sampling verification is
Leviathan et al. / Chen et al.: accept draft token x with probability
min(1, p(x)/q(x)); on the first rejection draw from normalize(max(0, p - q));
after a full accept draw the bonus from p. The emitted tokens are then
distributed exactly as if drawn from p one at a time.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .sampling import KeyedNoise, Randomness, draw


@dataclass(frozen=True)
class Verification:
    """How a round's draft was judged: how many of its tokens stand, and the main model's token.

    `acceptance[i]` is min(1, p/q) of draft token i for every judged token (the
    accepted ones and, last, the rejected one); `residual` is the distribution
    the correction was drawn from after a rejection under sampling; `draws[i]` is
    the uniform u that judged token i under sampling (accepted when u < acceptance[i]),
    kept so a learner can see each decision.
    """

    n_accepted: int
    next_token: int
    acceptance: list[float]
    residual: np.ndarray | None = None
    draws: list[float] = field(default_factory=list)

    @property
    def rejected(self) -> bool:
        return len(self.acceptance) > self.n_accepted


def verify_greedy(draft: list[int], main_rows: np.ndarray) -> Verification:
    """`main_rows[i]` are the main model's logits (or probs) after draft[:i]; k+1 rows."""
    choices = main_rows.argmax(axis=-1)
    n_accepted = 0
    while n_accepted < len(draft) and draft[n_accepted] == choices[n_accepted]:
        n_accepted += 1
    judged = min(n_accepted + 1, len(draft))
    acceptance = [1.0] * n_accepted + [0.0] * (judged - n_accepted)
    return Verification(n_accepted, int(choices[n_accepted]), acceptance)


def residual_distribution(p: np.ndarray, q: np.ndarray) -> np.ndarray:
    """normalize(max(0, p - q)); falls back to p where p <= q everywhere (then p == q)."""
    residual = np.maximum(p - q, 0.0)
    total = residual.sum()
    return residual / total if total > 0 else p


def point_mass_residual(p: np.ndarray, token: int) -> np.ndarray:
    """normalize(max(0, p - q)) for q all on `token`: p without that token."""
    residual = p.copy()
    residual[token] = 0.0
    total = residual.sum()
    return residual / total if total > 0 else p


def verify_keyed(draft: list[int], main_probs: list[np.ndarray], noise: KeyedNoise,
                 position: int) -> Verification:  # fmt: skip
    """A seeded run's verification: the main model's token at each position is its keyed
    draw there (see `KeyedNoise`); draft tokens stand while they equal it."""
    choices = [noise.choose(main_probs[0], position)]
    while len(choices) <= len(draft) and draft[len(choices) - 1] == choices[-1]:
        choices.append(noise.choose(main_probs[len(choices)], position + len(choices)))
    n_accepted = len(choices) - 1
    judged = min(n_accepted + 1, len(draft))
    acceptance = [1.0] * n_accepted + [0.0] * (judged - n_accepted)
    return Verification(n_accepted, choices[-1], acceptance)


def verify_sampling(
    draft: list[int],
    draft_probs: list[np.ndarray] | None,
    main_probs: list[np.ndarray],
    rng: Randomness,
    position: int = 0,
) -> Verification:
    """Rejection sampling over k draft tokens; `main_probs` has k+1 rows, `draft_probs` k,
    or None for a deterministic draft (q a point mass on each draft token, so token x is
    accepted with probability p(x)). With keyed noise (a seeded run) `verify_keyed` judges,
    `position` being the first draft token's place in the text."""
    if isinstance(rng, KeyedNoise):
        return verify_keyed(draft, main_probs, rng, position)
    acceptance: list[float] = []
    draws: list[float] = []
    for i, token in enumerate(draft):
        p = main_probs[i][token]
        q = 1.0 if draft_probs is None else draft_probs[i][token]
        ratio = 1.0 if q <= 0 else min(1.0, float(p / q))
        acceptance.append(ratio)
        draws.append(rng.random())
        if draws[-1] >= ratio:
            residual = (
                point_mass_residual(main_probs[i], token)
                if draft_probs is None
                else residual_distribution(main_probs[i], draft_probs[i])
            )
            return Verification(i, draw(residual, rng), acceptance, residual, draws)
    return Verification(len(draft), draw(main_probs[len(draft)], rng), acceptance, draws=draws)
