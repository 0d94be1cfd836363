"""How many tokens to draft each round: the number that maximises expected tokens per second.

A round that drafts k tokens costs the drafter's time for k tokens plus one main-model call
on k + 1 tokens, and yields on average E(k) = 1 + a1 + a1·a2 + … + a1⋯ak tokens, where a_i
is the chance that draft token i is accepted once the ones before it were. k = 0 is a plain
decoding step. `DraftPolicy` keeps moving estimates of all three while generation runs and
before each round picks, over the drafting options on offer and k in 0…K,

    E(k) / (draft cost per token · k + main-model cost of a call on k + 1 tokens)

Acceptance is only seen where drafts are judged, so a policy that stops drafting must still
learn when drafting would pay again. A drafter whose guesses cost nothing (prompt lookup)
shows them on every round; the policy checks them against the tokens that come next
("hindsight"), whether it drafted from them or not, and so keeps its acceptance current
for free, at every position up to K, also beyond the k it drafted. A costly drafter (a draft
model) is probed instead, on a budget of a few per cent of the run's time, counting what the
probe really costs: a draft model left idle must first read every token it missed.

When several requests share the main model's call (round.play), the call's cost is that of
all their tokens, and what is maximised is the tokens per second of all of them together:
each request picks its k knowing what the others already put in the call (`CallSoFar`: their
tokens, what they expect from it, their drafting seconds). Adding k tokens to a call of R costs
C(R + 1 + k) - C(R + 1) more, which on a CPU is less than a call of its own: the costs are
learnt by the call's total size. A request alone sees an empty call, and chooses as before.

The maths is pure (`expected_tokens`, `best_draft_length`); each round's outcome, with its
measured times, reaches the policy through `DraftPolicy.record`. A run that must give the same
text every time on a model that is not exact gives it the round's `nominal` times instead, so
that its choices of k do not follow the clock.
"""

from __future__ import annotations

import copy
import dataclasses
import statistics
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Protocol

from .cost_curve import plausible, single_call
from .drafters import Draft, DraftOption
from .round import RoundOutcome

PRIOR_ACCEPTANCE = 0.5  # before any evidence a draft token is a coin flip...
PRIOR_WEIGHT = 0.5  # ...worth half an observation, so evidence soon dominates
ACCEPTANCE_MEMORY = 0.85  # each round of evidence keeps 85% of the older: ~7 rounds' worth
COST_SAMPLES = 9  # a cost is the median of its last 9 timings: robust to a busy machine
PROBE_BUDGET = 0.03  # probes of a costly drafter may spend 3% of the run's time
PROBE_TOKENS = 2  # tokens a probe drafts: enough to see costs and the first acceptances
UNCONFIRMED_DISCOUNT = 0.1  # a remembered call not yet timed in this run: its extra cost over
# a single token's call counts 10% less
STEADY_CATCH_UP = 2  # a drafter in step reads 1-2 context tokens before drafting
MAX_DRAFT = 8  # the longest draft auto considers
# A clock-free round's seconds: a main-model call on n tokens, and each token a draft model
# reads, in the proportions measured on a 2-core CPU for a 1.5B main model and a 0.5B draft.
NOMINAL_CALL = 0.05
NOMINAL_CALL_GROWTH = 0.55  # each token past the first adds this share of a one-token call
NOMINAL_DRAFT_TOKEN = 0.45 * NOMINAL_CALL


def expected_tokens(acceptance: Sequence[float], k: int) -> float:
    """Tokens a round drafting k yields on average: the draft's accepted prefix plus one."""
    total = chance = 1.0
    for a in acceptance[:k]:
        chance *= a
        total += chance
    return total


@dataclass(frozen=True)
class CallSoFar:
    """What the other requests of a batched round put in the main model's call: its `rows`
    (tokens), the `tokens` they expect from the round, the `seconds` their drafts take; and
    how many `others` there are, who wait while this request drafts."""

    rows: int = 0
    tokens: float = 0.0
    seconds: float = 0.0
    others: int = 0

    def plus(self, rows: int, tokens: float, seconds: float) -> CallSoFar:
        return CallSoFar(
            self.rows + rows, self.tokens + tokens, self.seconds + seconds, self.others
        )


ALONE = CallSoFar()


def best_draft_length(
    acceptance: Sequence[float],
    draft_cost: float,
    verify_costs: Sequence[float],
    call: CallSoFar = ALONE,
) -> tuple[int, float]:
    """The k in 0…len(verify_costs) - 1 with the most tokens per second, and that rate.

    `acceptance[i]` is the chance draft token i + 1 is accepted given the earlier ones
    were; `draft_cost` the seconds per drafted token; `verify_costs[k]` the seconds of the
    main-model call with k + 1 tokens beside the `call`'s. The rate counts the call's other
    requests too. Ties go to the shorter draft.
    """
    best_k, best_rate = 0, 0.0
    for k, verify in enumerate(verify_costs):
        tokens = call.tokens + expected_tokens(acceptance, k)
        rate = tokens / (call.seconds + draft_cost * k + verify)
        if rate > best_rate * (1 + 1e-9):
            best_k, best_rate = k, rate
    return best_k, best_rate


def nominal(outcome: RoundOutcome) -> RoundOutcome:
    """The round with seconds that depend on its sizes alone: what a policy learns from when
    its choices must not depend on how long calls took (a seeded run on a model that is not
    exact, whose text then depends on them)."""
    draft = outcome.draft
    read = 0 if draft.kind == "lookup" else draft.caught_up + len(draft)
    calls = NOMINAL_CALL * (1 + NOMINAL_CALL_GROWTH * (outcome.call_rows - 1))
    return dataclasses.replace(
        outcome, draft_seconds=NOMINAL_DRAFT_TOKEN * read, verify_seconds=calls
    )


class RecentMedian:
    """The median of the last few samples: follows a drift, shrugs off a stall (another
    process taking the CPU for one call must not make drafting look cheap or dear)."""

    def __init__(self, n: int = COST_SAMPLES):
        self._samples: deque[float] = deque(maxlen=n)

    def update(self, sample: float) -> None:
        self._samples.append(sample)

    @property
    def value(self) -> float | None:
        return statistics.median(self._samples) if self._samples else None


class BatchCosts:
    """Seconds of one main-model call by the number of tokens in it.

    Sizes seen are recent medians. A size between two seen ones costs at least the
    smaller one's and, as costs grow convexly with size, at most the straight line
    between them; it is taken halfway, so that sizes never tried look a little cheap
    and get tried (otherwise a pessimistic guess would never be corrected). Past the
    largest size seen, the line through the two largest is extended; below the smallest
    (a request that has only shared calls with others), the line through the two smallest.

    Costs remembered from an earlier run (`remember`) give the shape of the curve; this
    run's timings give its scale: a remembered size not yet timed in this run costs its
    remembered seconds times the median ratio, over the sizes timed now, of now to the
    remembered curve (a machine busier or quieter than then); and what it costs beyond a single
    token's call counts `UNCONFIRMED_DISCOUNT` less, so that a remembered cost a little
    too dear for its size (timed while something else ran) gets tried, and timed, again.
    """

    def __init__(self) -> None:
        self._by_size: dict[int, RecentMedian] = {}
        self._remembered: dict[int, float] = {}

    def record(self, size: int, seconds: float) -> None:
        self._by_size.setdefault(size, RecentMedian()).update(seconds)

    def remember(self, size: int, seconds: float) -> None:
        """A cost from an earlier run: counts until this run times that size."""
        self._remembered[size] = seconds

    @property
    def largest(self) -> int:
        return max([*self._by_size, *self._remembered], default=0)

    def medians(self) -> dict[int, float]:
        """The recent median of every size timed in this run."""
        return {b: m.value for b, m in sorted(self._by_size.items()) if m.value is not None}

    def scale(self) -> float:
        """How much dearer calls are now than when the remembered costs were measured: the
        median ratio, over the sizes timed in this run, of now to the remembered curve there
        (1 before any is)."""
        ratios = [
            seconds / then
            for b, seconds in self.medians().items()
            if (then := self._remembered_at(b)) is not None
        ]
        return statistics.median(ratios) if ratios else 1.0

    def _remembered_at(self, size: int) -> float | None:
        """The remembered cost of `size`, or the line between the remembered sizes around it."""
        if size in self._remembered:
            return self._remembered[size]
        below = [b for b in self._remembered if b < size]
        above = [b for b in self._remembered if b > size]
        if not below or not above:
            return None
        lo, hi = max(below), min(above)
        low, high = self._remembered[lo], self._remembered[hi]
        return low + (high - low) * (size - lo) / (hi - lo)

    def known(self) -> dict[int, float]:
        """Every size's cost: timed in this run, else remembered and scaled to this run."""
        timed = self.medians()
        scale = self.scale()
        known = {b: then * scale for b, then in self._remembered.items()} | timed
        single = known.get(1)
        if single is not None:
            for b in self._remembered.keys() - timed.keys():
                known[b] = single + (known[b] - single) * (1 - UNCONFIRMED_DISCOUNT)
        return dict(sorted(known.items()))

    def estimate(self, size: int) -> float | None:
        known = self.known()
        if size in known:
            return known[size]
        below = [b for b in known if b < size]
        above = [b for b in known if b > size]
        if below and above:
            lo, hi = max(below), min(above)
            line = known[lo] + (known[hi] - known[lo]) * (size - lo) / (hi - lo)
            return (known[lo] + max(line, known[lo])) / 2
        if len(below) >= 2:
            lo, hi = sorted(below)[-2:]
            return max(known[hi] + (known[hi] - known[lo]) * (size - hi) / (hi - lo), known[hi])
        if below:  # one size seen: at most in proportion (a call costs no more than its parts)
            return known[below[0]] * size / below[0]
        if above:  # smaller than any seen (calls shared with other requests): the line through
            # the two smallest, at least in proportion to the smallest
            lo = min(above)
            least = known[lo] * size / lo
            if len(above) < 2:
                return least
            hi = sorted(above)[1]
            return max(known[lo] - (known[hi] - known[lo]) * (lo - size) / (hi - lo), least)
        return None


class AcceptanceByPosition:
    """Moving estimates of a_i, the chance draft token i is accepted after i - 1 were.

    All evidence fades a little with each round that brings new evidence
    (`ACCEPTANCE_MEMORY`), so the estimates follow a change of text, and a position
    no longer drafted forgets its old verdicts and leans again on the one before it
    (a drafter that gets its first tokens right tends to get the next ones right too),
    which makes a longer draft worth another try.
    """

    def __init__(self) -> None:
        self._accepted: list[float] = []
        self._judged: list[float] = []

    def fade(self) -> None:
        """Start a round of evidence: older evidence counts for less."""
        self._accepted = [ACCEPTANCE_MEMORY * x for x in self._accepted]
        self._judged = [ACCEPTANCE_MEMORY * x for x in self._judged]

    def record(self, position: int, accepted: bool) -> None:
        """One judged draft token at `position` (1 = the first token of a draft)."""
        while len(self._judged) < position:
            self._judged.append(0.0)
            self._accepted.append(0.0)
        self._judged[position - 1] += 1
        self._accepted[position - 1] += accepted

    def record_round(self, n_drafted: int, n_accepted: int) -> None:
        """A verified draft: its accepted prefix, then the rejected token if there was one."""
        self.fade()
        for position in range(1, n_accepted + 1):
            self.record(position, True)
        if n_accepted < n_drafted:
            self.record(n_accepted + 1, False)

    def estimates(
        self, n: int, priors: Sequence[float] | None = None, start: float = PRIOR_ACCEPTANCE
    ) -> list[float]:
        """a_1…a_n; where evidence is thin, each leans on `priors[i]` when given, else on
        the estimate before it (the first on `start`)."""
        result: list[float] = []
        prior = start
        for i in range(n):
            if priors is not None:
                prior = priors[i]
            judged = self._judged[i] if i < len(self._judged) else 0.0
            accepted = self._accepted[i] if i < len(self._accepted) else 0.0
            prior = (accepted + PRIOR_WEIGHT * prior) / (judged + PRIOR_WEIGHT)
            result.append(prior)
        return result

    @classmethod
    def pooled(cls, parts: Sequence[AcceptanceByPosition]) -> AcceptanceByPosition:
        """The evidence of several sources together."""
        pool = cls()
        for part in parts:
            for position, (accepted, judged) in enumerate(
                zip(part._accepted, part._judged, strict=True)
            ):
                if position == len(pool._judged):
                    pool._accepted.append(0.0)
                    pool._judged.append(0.0)
                pool._accepted[position] += accepted
                pool._judged[position] += judged
        return pool


@dataclass
class Measured:
    """What a run measured, and what the next one starts from: seconds of a main-model
    call by its number of tokens, seconds per drafted token by costly source (a draft
    model's name), and acceptance by source (see cost_memory.py)."""

    batch_seconds: dict[int, float] = field(default_factory=dict)
    draft_seconds: dict[str, float] = field(default_factory=dict)
    acceptance: dict[str, AcceptanceByPosition] = field(default_factory=dict)


@dataclass
class _Watch:
    """A free draft, checked token by token against what was emitted (under greedy decoding
    exactly what verification would find; under sampling with the same odds, p(x))."""

    tokens: Sequence[int]
    checked: int = 0


@dataclass
class _Source:
    """What the policy knows about one source of drafts."""

    acceptance: AcceptanceByPosition = field(default_factory=AcceptanceByPosition)
    draft_cost: RecentMedian = field(default_factory=RecentMedian)  # seconds per token, timed now
    remembered_cost: float | None = None  # seconds per token an earlier run measured
    behind: int = 0  # tokens emitted since it last drafted
    free: bool = False  # it shows its drafts before drafting: acceptance comes by hindsight
    watches: list[_Watch] = field(default_factory=list)  # free drafts still being checked
    first_checked: int = 0  # free drafts whose first token hindsight judged in this run...
    first_right: int = 0  # ...and how many of those first tokens were right


class DraftLengthPolicy(Protocol):
    max_draft: int  # the most tokens it drafts in a round

    def choose(
        self, options: Sequence[DraftOption], limit: int, call: CallSoFar = ALONE
    ) -> tuple[DraftOption | None, int]:
        """Which option drafts this round and how many tokens (0: a plain step), knowing
        what other requests put in the main model's call."""
        ...

    def expected(self, option: DraftOption | None, k: int) -> tuple[float, float]:
        """The tokens a round drafting k with `option` is expected to give, and the seconds
        its draft takes: what it adds to the call for the requests choosing after it."""
        ...

    def record(self, outcome: RoundOutcome) -> None:
        """Learn from a round: what was drafted and accepted, the tokens it emitted, and
        the time spent drafting and in the main model's call on last + draft."""
        ...

    def measured(self) -> Measured | None:
        """What the run measured, for the next run to start from (None: nothing learnt)."""
        ...


class FixedDraftLength:
    """Always k tokens (fewer near the end of the text), from the first option offered."""

    def __init__(self, k: int):
        self.max_draft = k

    def choose(
        self, options: Sequence[DraftOption], limit: int, call: CallSoFar = ALONE
    ) -> tuple[DraftOption | None, int]:
        return (options[0], min(self.max_draft, limit)) if options else (None, 0)

    def expected(self, option: DraftOption | None, k: int) -> tuple[float, float]:
        """Nothing is measured: the main model's own token at least, no drafting time."""
        return 1.0, 0.0

    def record(self, outcome: RoundOutcome) -> None:
        """A fixed length learns nothing."""

    def measured(self) -> None:
        return None


class DraftPolicy:
    """Picks the option and k with the most expected tokens per second, from measurements.

    Order of business each round: measure a plain step first; the first time a source is
    offered, draft `PROBE_TOKENS` tokens from it to measure its cost and the main model's
    batch cost; then exploit the estimates. When no draft pays, a costly source is probed
    again whenever the probe budget covers its expected cost.

    A policy started from an earlier run's measurements (`start`) skips the first two: the
    remembered costs that fit the machine's curve (cost_curve.py) count, scaled by how much
    busier the machine is now than then, until this run times them, and acceptance carries
    on from where that run left it. A remembered draft cost that says drafting does not pay
    is timed again before it is believed (one probe, the first time that verdict comes), so
    a cost remembered from a busy moment lasts one round.
    """

    def __init__(
        self,
        max_draft: int = MAX_DRAFT,
        probe_budget: float = PROBE_BUDGET,
        start: Measured | None = None,
    ):
        self.max_draft = max_draft
        self.probe_budget = probe_budget
        self.verify = BatchCosts()
        self.sources: dict[str, _Source] = {}
        self.credit = 0.0  # seconds of probing the budget allows now
        self._probing = False
        if start is not None:
            self._start_from(start)

    def _start_from(self, start: Measured) -> None:
        """Seed from remembered costs, except those no quiet machine gives: a call off the
        curve through the other sizes or dearer than that many calls on one, a draft token
        dearer than a main-model call. Such a figure was measured while other work held the
        CPU; kept, it would make drafting look hopeless, and the sizes a policy never drafts
        are never measured again to correct it."""
        calls = plausible(start.batch_seconds)
        for size, seconds in calls.items():
            self.verify.remember(size, seconds)
        single = single_call(calls)
        for name, seconds in start.draft_seconds.items():
            if single is None or seconds <= single:
                self.sources.setdefault(name, _Source()).remembered_cost = seconds
        for name, acceptance in start.acceptance.items():
            self.sources.setdefault(name, _Source()).acceptance = copy.deepcopy(acceptance)

    def measured(self) -> Measured:
        costly = {name: s.draft_cost.value for name, s in self.sources.items() if not s.free}
        return Measured(
            self.verify.medians(),
            {name: cost for name, cost in costly.items() if cost is not None},
            {name: copy.deepcopy(s.acceptance) for name, s in self.sources.items()},
        )

    def costly_draft_costs(self) -> dict[str, float]:
        """Seconds per drafted token of each costly source (a draft model) this run knows."""
        costs = {
            name: state.draft_cost.value
            if state.draft_cost.value is not None
            else (state.remembered_cost or 0.0) * self.verify.scale()
            for name, state in self.sources.items()
            if not state.free
        }
        return {name: cost for name, cost in costs.items() if cost > 0}

    def free_hit_rate(self) -> float | None:
        """How often a free draft's first token was right, by hindsight (None: never seen)."""
        free = [state for state in self.sources.values() if state.free]
        checked = sum(state.first_checked for state in free)
        return sum(state.first_right for state in free) / checked if checked else None

    def choose(
        self, options: Sequence[DraftOption], limit: int, call: CallSoFar = ALONE
    ) -> tuple[DraftOption | None, int]:
        limit = min(limit, self.max_draft)
        self._probing = False
        for option in options:
            self._watch(option)
        plain = self.verify.estimate(1)
        if not options or limit <= 0 or plain is None:
            return None, 0
        for option in options:
            if self._draft_cost(option) is None or self.verify.largest < 2:
                return option, min(PROBE_TOKENS, limit)

        own = self._verify_costs(0, call)[0]
        best: tuple[DraftOption | None, int, float] = (
            None,
            0,
            (call.tokens + 1) / (call.seconds + own),
        )
        for option in options:
            k, rate = self._best(option, limit, self._acceptance(option.source, limit), call)
            if rate > best[2]:
                best = (option, k, rate)
        if best[0] is not None:
            return best[0], best[1]
        return self._probe(options, limit, plain, call)

    def expected(self, option: DraftOption | None, k: int) -> tuple[float, float]:
        if option is None or k == 0:
            return 1.0, 0.0
        acceptance = self._acceptance(option.source, k)
        return expected_tokens(acceptance, k), (self._draft_cost(option) or 0.0) * k

    def record(self, outcome: RoundOutcome) -> None:
        draft, emitted = outcome.draft, outcome.tokens
        self.verify.record(outcome.call_rows, outcome.verify_seconds)
        round_seconds = outcome.draft_seconds + outcome.verify_seconds
        self.credit += self.probe_budget * round_seconds
        if self._probing:
            plain = self.verify.estimate(1) or 0.0
            self.credit -= round_seconds - plain * len(emitted)
        for name, state in self.sources.items():
            if state.free:
                self._check_hindsight(state, emitted)
            if len(draft) > 0 and name == draft.source:
                self._record_draft(state, draft, outcome.n_accepted, outcome.draft_seconds)
            else:
                state.behind += len(emitted)

    # -- estimates ------------------------------------------------------------

    def _state(self, option: DraftOption) -> _Source:
        return self.sources.setdefault(option.source, _Source())

    def _acceptance(self, source: str, n: int) -> list[float]:
        """The source's a_1…a_n. A source that is one bucket of a family ("prompt-lookup/3":
        a copy matched 3 tokens in a row) leans, where its own evidence is thin, on what its
        siblings saw: on prose, where copies are rarely right, a bucket seen for the first
        time starts as doubtful as the others proved, and on a code edit as promising. A
        free source needs no benefit of the doubt (hindsight judges its drafts whether it
        drafts or not), so with no evidence at all it is taken to be wrong."""
        state = self.sources[source]
        start = 0.0 if state.free else PRIOR_ACCEPTANCE
        family, _, bucket = source.partition("/")
        if not bucket:
            return state.acceptance.estimates(n, start=start)
        siblings = [
            other.acceptance
            for name, other in self.sources.items()
            if name != source and name.partition("/")[0] == family
        ]
        priors = AcceptanceByPosition.pooled(siblings).estimates(n, start=start)
        return state.acceptance.estimates(n, priors)

    def _draft_cost(self, option: DraftOption) -> float | None:
        """Seconds per drafted token: timed in this run, else remembered (at this run's
        scale); a free preview proves the drafter costs nothing."""
        state = self._state(option)
        if state.draft_cost.value is not None:
            return state.draft_cost.value
        if state.remembered_cost is not None:
            return state.remembered_cost * self.verify.scale()
        return None if option.preview is None else 0.0

    def _verify_costs(self, limit: int, call: CallSoFar = ALONE) -> list[float]:
        """Seconds of the main-model call with 1…limit + 1 tokens of this request's beside
        the `call`'s."""
        return [self.verify.estimate(call.rows + k + 1) or 0.0 for k in range(limit + 1)]

    def _best(
        self,
        option: DraftOption,
        limit: int,
        acceptance: Sequence[float],
        call: CallSoFar = ALONE,
    ) -> tuple[int, float]:
        costs = self._verify_costs(limit, call)
        return best_draft_length(acceptance, self._draft_cost(option), costs, call)

    # -- probing --------------------------------------------------------------

    def _probe(
        self, options: Sequence[DraftOption], limit: int, plain: float, call: CallSoFar
    ) -> tuple[DraftOption | None, int]:
        """A costly option worth a look: one whose cost only an earlier run measured (timed
        now, whatever the budget), or one that would pay if its drafts were all right when
        the budget covers the probe's expected cost: the round (in a shared call, what its
        tokens add to the call), and reading the tokens it missed (assumed to cost the draft
        model what a batch that long costs the main model, relative to one token). In a
        batched round the others wait for both, so their time counts once for each of them
        too: a probe that stalls three requests costs four times its seconds."""
        for option in options:
            if option.preview is not None:
                continue  # hindsight keeps free options current without probes
            state = self._state(option)
            k = min(PROBE_TOKENS, limit)
            if state.draft_cost.value is None:  # remembered, not yet timed in this run
                self._probing = True
                return option, k
            if self._best(option, limit, [1.0] * limit, call)[0] == 0:
                continue  # not even perfect drafts would pay
            draft_cost = self._draft_cost(option) or 0.0
            catch_up = (self.verify.estimate(state.behind) or 0.0) / plain
            estimates = state.acceptance.estimates(k)
            costs = self._verify_costs(k, call)
            stall = draft_cost * (catch_up + k) + costs[k] - costs[0]
            cost = stall * (1 + call.others) + plain - expected_tokens(estimates, k) * plain
            if self.credit >= cost:
                self._probing = True
                return option, k
        return None, 0

    # -- learning ---------------------------------------------------------------

    def _record_draft(
        self, state: _Source, draft: Draft, n_accepted: int, draft_seconds: float
    ) -> None:
        k = len(draft)
        if not state.free:
            state.acceptance.record_round(k, n_accepted)
        if draft.caught_up <= STEADY_CATCH_UP:  # else the time is mostly catching up
            state.draft_cost.update(draft_seconds / k)
        state.behind = 0

    def _watch(self, option: DraftOption) -> None:
        """Check this free option's draft against the tokens to come; one starts each round,
        so every position gets about one observation a round."""
        if option.preview is not None:
            state = self._state(option)
            state.free = True
            if option.preview:
                state.watches.append(_Watch(option.preview))

    @staticmethod
    def _check_hindsight(state: _Source, emitted: Sequence[int]) -> None:
        if state.watches:
            state.acceptance.fade()
        for watch in state.watches:
            for token in emitted:
                right = token == watch.tokens[watch.checked]
                if watch.checked == 0:
                    state.first_checked += 1
                    state.first_right += right
                watch.checked += 1
                state.acceptance.record(watch.checked, right)
                if not right:
                    watch.checked = len(watch.tokens)  # done: later tokens are not judged
                if watch.checked == len(watch.tokens):
                    break
        state.watches = [w for w in state.watches if w.checked < len(w.tokens)]


def make_policy(draft_tokens: int | str, start: Measured | None = None) -> DraftLengthPolicy:
    """`draft_tokens` "auto" measures and decides, from `start` when given; a number fixes k."""
    if draft_tokens == "auto":
        return DraftPolicy(start=start)
    return FixedDraftLength(int(draft_tokens))
