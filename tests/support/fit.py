"""A goodness-of-fit test for sampled tokens: does what the loop emitted follow p?"""

from __future__ import annotations

from collections import Counter

import numpy as np
from scipy.stats import chisquare


def fit_pvalue(observed: Counter[int], p: np.ndarray) -> float:
    """Chi-square p-value of the token counts against p; tokens expected fewer than 5
    times are pooled into one cell, as the test needs (none, where every token p allows is
    frequent: a filtered distribution)."""
    n = sum(observed.values())
    frequent = [t for t in np.argsort(-p) if p[t] * n >= 5]
    counts = [observed[t] for t in frequent]
    expected = [p[t] * n for t in frequent]
    if n - sum(expected) > 1e-9 * n:
        counts.append(n - sum(counts))
        expected.append(n - sum(expected))
    return chisquare(counts, expected).pvalue
