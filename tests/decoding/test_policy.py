"""The draft-length policy on synthetic costs: no model, no clock, just the decisions.

The simulated text is the stream of integers 0, 1, 2, ...; a draft agrees with it for a
geometric number of tokens (probability `a` each) and is wrong after that, so verification,
hindsight and the policy's estimates all see the same consistent world.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pytest

from specdec_jupyter.decoding.drafters import Draft, DraftOption, drive, no_calls
from specdec_jupyter.decoding.policy import (
    ALONE,
    BatchCosts,
    CallSoFar,
    DraftPolicy,
    FixedDraftLength,
    best_draft_length,
    expected_tokens,
)
from specdec_jupyter.decoding.round import RoundOutcome, VerifiedToken
from specdec_jupyter.decoding.verify import Verification

# models.md: the Qwen2.5-Coder 1.5B on 2 CPU cores, one call of 1/2/4/6/8 tokens (seconds);
# the 0.5B draft costs about 0.45 of the main model per token.
CPU = {1: 0.053, 2: 0.082, 4: 0.118, 6: 0.170, 8: 0.265}
CPU_DRAFT = 0.45 * 0.053
GPU = {b: 0.020 + 0.001 * b for b in range(1, 10)}  # batch nearly free, draft cheap
# The same model on this project's other CI machine (2 Xeon cores), 1…8 tokens: a call on 4
# tokens is cheaper than one on 3 (llama.cpp's kernels work in blocks of 4).
XEON = dict(enumerate([0.0588, 0.0920, 0.1105, 0.1043, 0.1347, 0.1541, 0.1770, 0.1875], 1))


def cpu_cost(b: int) -> float:
    sizes = sorted(CPU)
    lo = max(s for s in sizes if s <= b) if b >= 1 else 1
    hi = min((s for s in sizes if s >= b), default=sizes[-1])
    if hi == lo:
        return CPU[lo] + (b - lo) * (CPU[8] - CPU[6]) / 2
    return CPU[lo] + (CPU[hi] - CPU[lo]) * (b - lo) / (hi - lo)


def xeon_cost(b: int) -> float:
    return XEON[b] if b in XEON else XEON[8] + (b - 8) * (XEON[8] - XEON[7])


class World:
    """Runs a policy against a drafter of known cost and acceptance; returns what it chose."""

    def __init__(
        self,
        verify_cost: Callable[[int], float],
        draft_cost: float,
        free: bool,
        catch_up_cost: float | None = None,
        seed: int = 0,
        max_draft: int = 8,
        source: Callable[[int], str] = lambda _round: "d",
    ):
        self.verify_cost = verify_cost
        self.draft_cost = draft_cost
        self.catch_up_cost = draft_cost if catch_up_cost is None else catch_up_cost
        self.free = free
        self.rng = np.random.default_rng(seed)
        self.max_draft = max_draft
        self.source = source  # the draft's source name, by round
        self.position = 0  # tokens emitted so far
        self.behind = 1  # tokens the drafter has not read
        self.seconds = 0.0

    def run(
        self, policy, acceptance: Callable[[int], float], rounds: int, call: CallSoFar = ALONE
    ) -> list[int]:
        chosen = []
        for n_round in range(rounds):
            a = acceptance(n_round)
            agree = 0
            while agree < self.max_draft and self.rng.random() < a:
                agree += 1
            guess = [self.position + 1 + i if i < agree else -1 for i in range(self.max_draft)]
            name = self.source(n_round)
            option = DraftOption(name, lambda k, _s, _r, g=guess, n=name: self._draft(g[:k], n),
                                 guess if self.free else None)  # fmt: skip
            picked, k = policy.choose([option], self.max_draft, call)
            draft = drive(picked.propose(k, None, None)) if picked and k else Draft()
            n_accepted = min(k, agree)
            emitted = list(range(self.position + 1, self.position + n_accepted + 2))
            draft_seconds = self._draft_seconds(draft)
            verify_seconds = self.verify_cost(k + 1)
            policy.record(outcome(draft, n_accepted, emitted, draft_seconds, verify_seconds))
            self.seconds += draft_seconds + verify_seconds
            self.position += n_accepted + 1
            self.behind = 1 if k else self.behind + n_accepted + 1
            chosen.append(k)
        return chosen

    def _draft(self, tokens: list[int], source: str):
        return no_calls(Draft(tokens, [1.0] * len(tokens), source=source, caught_up=self.behind))

    def _draft_seconds(self, draft: Draft) -> float:
        if not draft.tokens:
            return 0.0
        catch_up = self.catch_up_cost * max(self.behind - 1, 0)
        return catch_up + self.draft_cost * len(draft) if not self.free else 1e-5

    @property
    def tokens_per_second(self) -> float:
        return self.position / self.seconds


def outcome(
    draft: Draft, n_accepted: int, emitted: list[int], draft_seconds: float, verify_seconds: float
) -> RoundOutcome:
    """The round as `run_round` reports it, from the simulated world's numbers."""
    judged = min(n_accepted + 1, len(draft))
    acceptance = [1.0] * n_accepted + [0.0] * (judged - n_accepted)
    verification = Verification(n_accepted, emitted[-1], acceptance)
    sources = ["draft"] * n_accepted + ["main"]
    tokens = tuple(VerifiedToken(t, s, 1.0) for t, s in zip(emitted, sources, strict=True))
    rows = np.zeros((len(draft) + 1, 0))
    return RoundOutcome(draft, verification, tokens, rows, None, draft_seconds, verify_seconds)


def constant(a: float) -> Callable[[int], float]:
    return lambda _round: a


def test_expected_tokens_counts_the_accepted_prefix_plus_one():
    assert expected_tokens([0.5, 0.5, 0.5], 0) == 1
    assert expected_tokens([0.5, 0.5, 0.5], 2) == pytest.approx(1 + 0.5 + 0.25)
    assert expected_tokens([1.0, 0.0, 1.0], 3) == 2


def test_best_draft_length_weighs_tokens_against_seconds():
    costs = [cpu_cost(k + 1) for k in range(9)]
    assert best_draft_length([0.7] * 8, CPU_DRAFT, costs)[0] == 0, "a 0.5B draft on 2 cores"
    k, rate = best_draft_length([0.97] * 8, 0.0, costs)
    assert 3 <= k <= 6 and rate > 1.5 / CPU[1], "free, nearly always right drafts pay"
    assert best_draft_length([0.9] * 8, 0.001, [GPU[k + 1] for k in range(9)])[0] == 8


def test_in_a_shared_call_a_draft_is_judged_by_what_it_adds_to_all():
    """Alone, a call of 2 costs 1.7 of 1 and a 0.6 draft does not pay; beside three other
    requests' tokens (a call of 4 growing to 5 for 4 % more) it does, and the rate counts the
    others' tokens and drafting seconds too."""
    costs = {1: 0.040, 2: 0.068, 4: 0.144, 5: 0.150, 6: 0.190}
    alone = [costs[1], costs[2]]
    assert best_draft_length([0.6], 0.005, alone)[0] == 0
    others = CallSoFar(rows=3, tokens=3.0, seconds=0.01)
    k, rate = best_draft_length([0.6], 0.005, [costs[4], costs[5]], others)
    assert k == 1 and rate == pytest.approx((3 + 1.6) / (0.01 + 0.005 + costs[5]))
    assert best_draft_length([0.6], 0.005, [costs[4], costs[6]], others)[0] == 0, "costly"


def test_batch_costs_interpolate_a_little_cheap_and_extrapolate():
    costs = BatchCosts()
    assert costs.estimate(1) is None
    costs.record(1, 0.050)
    costs.record(3, 0.100)
    assert costs.estimate(1) == pytest.approx(0.050)
    assert costs.estimate(2) == pytest.approx((0.050 + 0.075) / 2)
    assert costs.estimate(5) == pytest.approx(0.150)


def test_it_stops_drafting_when_a_draft_model_cannot_pay():
    world = World(cpu_cost, CPU_DRAFT, free=False)
    policy = DraftPolicy()
    chosen = world.run(policy, constant(0.8), 200)
    assert sum(k > 0 for k in chosen) <= 4, f"only a probe or two: {chosen[:20]}"
    assert world.tokens_per_second >= 0.97 / CPU[1]


def test_it_drafts_when_free_drafts_are_mostly_right():
    world = World(cpu_cost, 0.0, free=True)
    chosen = world.run(DraftPolicy(), constant(0.95), 200)
    assert np.mean(chosen[20:]) >= 3
    assert world.tokens_per_second >= 1.5 / CPU[1]


def test_it_drafts_with_a_cheap_draft_model_on_a_fast_batch():
    world = World(GPU.__getitem__, 0.002, free=False, catch_up_cost=0.0003)
    chosen = world.run(DraftPolicy(), constant(0.8), 100)
    assert min(chosen[10:]) >= 2


def test_free_drafts_that_are_often_wrong_are_left_alone():
    world = World(cpu_cost, 0.0, free=True)
    chosen = world.run(DraftPolicy(), constant(0.3), 200)
    assert np.mean([k > 0 for k in chosen[10:]]) <= 0.1
    assert world.tokens_per_second >= 0.97 / CPU[1]


def test_a_bucket_seen_first_starts_from_what_its_siblings_saw():
    """Prompt lookup names its drafts by the evidence behind them ("prompt-lookup/3"), so on
    a long reply many rounds bring a bucket seen rarely or never. One starts from its
    siblings' record, not a coin flip: on a CPU where a call on 4 tokens costs 1.8 on one
    (a coin flip would draft 3), wrong copies elsewhere keep a new bucket's drafts off,
    and right ones elsewhere let it draft long at once."""
    buckets = [f"prompt-lookup/{i}" for i in range(40)]
    for a, drafts in ((0.1, False), (0.95, True)):
        world = World(xeon_cost, 0.0, free=True, source=lambda n_round: buckets[n_round % 40])
        chosen = world.run(DraftPolicy(), constant(a), 40)  # a new bucket every round
        assert all((k >= 2) == drafts for k in chosen[8:])


def test_it_recovers_after_a_phase_change_by_hindsight():
    """Prose, then the output starts copying the prompt: the free drafter is taken up within
    a few rounds, without probes; and dropped again when the copying ends."""
    world = World(cpu_cost, 0.0, free=True)
    policy = DraftPolicy()
    prose = world.run(policy, constant(0.2), 100)
    copying = world.run(policy, constant(0.98), 60)
    prose_again = world.run(policy, constant(0.1), 60)
    assert sum(k > 0 for k in prose[10:]) <= 3
    assert all(k >= 2 for k in copying[8:])
    assert sum(k > 0 for k in prose_again[8:]) <= 3


def test_a_costly_drafter_is_probed_on_budget_and_taken_up_again():
    """A draft model whose acceptance jumps from 10% to 90%, on a machine where catching up
    is cheap: probes find the change."""
    world = World(GPU.__getitem__, 0.004, free=False, catch_up_cost=0.0005)
    policy = DraftPolicy()
    bad = world.run(policy, constant(0.1), 150)
    good = world.run(policy, constant(0.9), 150)
    probes = sum(k > 0 for k in bad[20:])
    assert 1 <= probes <= 12, "probes now and then, not every round"
    assert np.mean([k > 0 for k in good[60:]]) > 0.9


def test_a_probe_that_stalls_other_requests_counts_their_wait_too():
    """The drafter that is probed now and then alone, beside three requests that wait while it
    catches up and drafts: each probe costs four times as much of the budget, and the catching
    up grows with each round it skips, so it is probed at most a quarter as often."""
    probes = []
    for call in (ALONE, CallSoFar(others=3)):
        world = World(GPU.__getitem__, 0.004, free=False, catch_up_cost=0.0005)
        chosen = world.run(DraftPolicy(), constant(0.1), 1000, call)
        probes.append(sum(k > 0 for k in chosen[20:]))
    alone, batched = probes
    assert alone >= 8 and batched <= alone / 4, probes


def test_no_probes_when_catching_up_costs_more_than_the_budget():
    """On 2 CPU cores a draft model left idle costs too much to catch up: once it has not
    paid, it is not probed again, so the run stays within a few per cent of plain speed."""
    world = World(cpu_cost, CPU_DRAFT, free=False, catch_up_cost=0.4 * CPU_DRAFT)
    policy = DraftPolicy()
    chosen = world.run(policy, constant(0.6), 300)
    assert sum(k > 0 for k in chosen[10:]) == 0


def test_fixed_length_takes_the_first_option_and_respects_the_limit():
    policy = FixedDraftLength(4)
    option = DraftOption("d", lambda k, _s, _r: Draft([1] * k))
    assert policy.choose([option], 10) == (option, 4)
    assert policy.choose([option], 2) == (option, 2)
    assert policy.choose([], 10) == (None, 0)
