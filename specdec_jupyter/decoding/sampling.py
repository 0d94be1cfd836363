"""Turning logits into the distribution a token is drawn from.

The same function serves the main model (p) and the draft (q), so top-k, top-p and
min-p are applied to both identically, which rejection sampling needs in order to
reproduce the main model's sampling distribution.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..settings import RunSettings


@dataclass(frozen=True)
class SamplingSettings:
    """temperature 0 means greedy; top_k 0, top_p 1 and min_p 0 switch those filters off. The
    values come checked from `RunSettings` (`of`), once per run."""

    temperature: float = 0.0
    top_k: int = 0
    top_p: float = 1.0
    min_p: float = 0.0

    @classmethod
    def of(cls, settings: RunSettings) -> SamplingSettings:
        return cls(settings.temperature, settings.top_k, settings.top_p, settings.min_p)

    @property
    def greedy(self) -> bool:
        return self.temperature == 0


def softmax(logits: np.ndarray) -> np.ndarray:
    z = logits.astype(np.float64) - logits.max()
    e = np.exp(z)
    return e / e.sum()


def probability_of(logits: np.ndarray, token: int) -> float:
    """softmax(logits)[token] without the softmax array: one log-sum-exp pass in the logits'
    own precision, into one scratch array; greedy decoding pays it once per token it shows."""
    top = logits.max()
    shifted = np.subtract(logits, top)
    np.exp(shifted, out=shifted)
    return float(np.exp(logits[token] - top) / shifted.sum())


def distribution(logits: np.ndarray, settings: SamplingSettings) -> np.ndarray:
    """Probabilities after temperature, then top-k, top-p and min-p (each token kept whose
    probability is at least min_p times the likeliest's), renormalised (greedy: softmax at
    T=1, for display)."""
    if settings.greedy:
        return softmax(logits)
    with np.errstate(over="ignore"):  # a tiny temperature sends all but the top to -inf
        scaled = (logits.astype(np.float64) - logits.max()) / settings.temperature
    probs = softmax(scaled)
    if settings.top_k and settings.top_k < probs.size:
        cutoff = np.partition(probs, -settings.top_k)[-settings.top_k]
        probs = np.where(probs >= cutoff, probs, 0.0)
    if settings.top_p < 1.0:
        order = np.argsort(-probs, kind="stable")
        cumulative = np.cumsum(probs[order]) / probs.sum()
        n_keep = int(np.searchsorted(cumulative, settings.top_p)) + 1
        kept = np.zeros_like(probs)
        kept[order[:n_keep]] = probs[order[:n_keep]]
        probs = kept
    if settings.min_p > 0:
        probs = np.where(probs >= settings.min_p * probs.max(), probs, 0.0)
    return probs / probs.sum()


class KeyedNoise:
    """A seeded run's randomness, keyed by seed and position instead of drawn in sequence.

    Each position of the text gets its own exponential noise from a counter-based generator
    (Philox keyed by (seed, position)), and a token is chosen as argmax(probs / noise): the
    Gumbel-max trick, an exact draw from `probs`. The draft and the main model use the same
    noise at the same position, so the main model's token at a position is the one plain
    sampling picks at that seed, whatever the policy drafted: the text depends on the seed
    and settings alone, not on k or timings. A draft token is accepted when it is that token.
    """

    KEPT_POSITIONS = 16  # a round's draft and bonus positions, read by draft then main

    def __init__(self, seed: int):
        self.seed = seed
        self._noise: dict[int, np.ndarray] = {}

    def choose(self, probs: np.ndarray, position: int) -> int:
        """The token at `position`: an exact draw from `probs`, fixed by seed and position."""
        return int(np.argmax(probs / self._exponentials(position, probs.size)))

    def _exponentials(self, position: int, size: int) -> np.ndarray:
        noise = self._noise.get(position)
        if noise is None or noise.size != size:
            key = np.array([self.seed, position], dtype=np.uint64)
            noise = np.random.Generator(np.random.Philox(key=key)).standard_exponential(size)
            if len(self._noise) >= self.KEPT_POSITIONS:
                self._noise.pop(next(iter(self._noise)))
            self._noise[position] = noise
        return noise


Randomness = np.random.Generator | KeyedNoise


def draw(probs: np.ndarray, rng: Randomness, position: int = 0) -> int:
    """One token from `probs`: by keyed noise at `position` for a seeded run, else by
    inverse CDF (faster than rng.choice on 150k entries)."""
    if isinstance(rng, KeyedNoise):
        return rng.choose(probs, position)
    cumulative = np.cumsum(probs)
    index = int(np.searchsorted(cumulative, rng.random() * cumulative[-1], side="right"))
    return min(index, probs.size - 1)


def choose_token(
    logits: np.ndarray, sampling: SamplingSettings, rng: Randomness, position: int
) -> tuple[int, float, np.ndarray | None]:
    """The token to take after `logits`, its probability, and the whole distribution where
    sampling needs it (rejection sampling judges by it). Greedy takes the argmax and its
    probability alone, so no distribution is built: None."""
    if sampling.greedy:
        token = int(logits.argmax())
        return token, probability_of(logits, token), None
    probs = distribution(logits, sampling)
    token = draw(probs, rng, position)
    return token, float(probs[token]), probs
