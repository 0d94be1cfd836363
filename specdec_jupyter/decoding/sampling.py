"""Turning logits into the distribution a token is drawn from.

The same function serves the main model (p) and the draft (q), so top-k and
top-p are applied to both identically, which rejection sampling needs in order to
reproduce the main model's sampling distribution.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..settings import check_temperature, check_top_k, check_top_p


@dataclass(frozen=True)
class SamplingSettings:
    """temperature 0 means greedy; top_k 0 and top_p 1 switch those filters off."""

    temperature: float = 0.0
    top_k: int = 0
    top_p: float = 1.0

    def __post_init__(self) -> None:
        object.__setattr__(self, "temperature", check_temperature(self.temperature))
        object.__setattr__(self, "top_k", check_top_k(self.top_k))
        object.__setattr__(self, "top_p", check_top_p(self.top_p))

    @property
    def greedy(self) -> bool:
        return self.temperature == 0


def softmax(logits: np.ndarray) -> np.ndarray:
    z = logits.astype(np.float64) - logits.max()
    e = np.exp(z)
    return e / e.sum()


def probability_of(logits: np.ndarray, token: int) -> float:
    """softmax(logits)[token] in the logits' own precision: a third of a full softmax's time,
    which counts once per emitted token."""
    shifted = np.exp(logits - logits.max())
    return float(shifted[token] / shifted.sum())


def distribution(logits: np.ndarray, settings: SamplingSettings) -> np.ndarray:
    """Probabilities after temperature, top-k and top-p (greedy: softmax at T=1, for display)."""
    if settings.greedy:
        return softmax(logits)
    probs = softmax(logits.astype(np.float64) / settings.temperature)
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
    return probs / probs.sum()


def draw(probs: np.ndarray, rng: np.random.Generator) -> int:
    """One token from `probs` by inverse CDF (faster than rng.choice on 150k entries)."""
    cumulative = np.cumsum(probs)
    index = int(np.searchsorted(cumulative, rng.random() * cumulative[-1], side="right"))
    return min(index, probs.size - 1)
