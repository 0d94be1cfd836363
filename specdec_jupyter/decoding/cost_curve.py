"""The curve a machine's call costs follow, and the timings that cannot lie on it.

On a quiet machine a main-model call on n tokens costs about as much as one on fewer tokens,
or more (one pass over the weights, a little more per token), and never more per token than
a smaller call (batching shares the weights' reading). A timing taken while another process
held the CPU breaks one of these (seen: a call on 2 tokens remembered at 3.3 s beside 0.05 s
for one): a busy moment only ever makes a call dearer, so of two timings that cannot both be
true, the dearer one is the suspect. Kept, such a cost keeps `auto` from ever drafting that
many tokens, and so from timing them again; `plausible` drops it, so that size is timed
afresh (or estimated from its neighbours) instead.
"""

from __future__ import annotations

from collections.abc import Mapping

SLACK = 1.5  # how far a quiet machine's costs may break either rule: llama.cpp switches kernels
# with a call's size (a call on 8 tokens cost 1.24 times two calls on 4 here, its tiled kernel
# starting at 8 rows; on a Xeon a call on 4 tokens cost 0.94 of one on 3)


def plausible(costs: Mapping[int, float]) -> dict[int, float]:
    """The costs that fit every other: for sizes m < n, c(n) <= (n / m)·c(m) (no dearer per
    token than a smaller call) and c(m) <= c(n) (no dearer than a larger call), each within
    `SLACK`. Of a pair that breaks either rule, the dearer cost goes."""
    kept = {n: s for n, s in costs.items() if n >= 1 and s > 0}
    suspect: set[int] = set()
    for m in kept:
        for n in kept:
            if m < n and kept[n] > kept[m] * n / m * SLACK:
                suspect.add(n)
            if m < n and kept[m] > kept[n] * SLACK:
                suspect.add(m)
    return {n: s for n, s in sorted(kept.items()) if n not in suspect}


def single_call(costs: Mapping[int, float]) -> float | None:
    """What a one-token call costs at most, by these plausible costs (None: nothing known)."""
    if not costs:
        return None
    return min(costs.values()) if 1 not in costs else costs[1]
