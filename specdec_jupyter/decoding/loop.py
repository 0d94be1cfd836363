"""The speculative decoding loop: draft, verify in one pass, roll back, repeat.

Read it top to bottom like mlx-lm's `speculative_generate_step`: prefill the prompt and take
the first token from that pass exactly as plain decoding does; then each round the policy
picks one of the drafter's options and a length k, the round drafts, evaluates `last + draft`
in one main-model call, verifies and cuts the main model's cache back to what stands, the
policy learns from the round's outcome, and the emitter turns its tokens into events. With
no drafter (or k = 0) a round is one plain decoding step through the same code, so plain and
speculative runs are directly comparable.

A `Run` keeps one request's state between rounds, so that `play_round` can take the rounds of
several requests on one main model together: each picks its k knowing what the others put in
the call, their draft-model calls are batched, and one main-model call verifies them all
(round.play). `speculative_decode` is one run alone through that same round.
"""

from __future__ import annotations

from collections.abc import Callable, Generator, Iterable, Sequence
from time import perf_counter

import numpy as np

from ..engines.base import Engine
from ..errors import SpecDecError
from ..settings import RunSettings
from .cost_memory import CostMemory
from .drafters import Drafter, DraftOption
from .emission import Emitter
from .events import GenerationStats, StopReason, TokenEvent
from .explain import RoundDrafted, auto_note
from .policy import CallSoFar, DraftPolicy, make_policy, nominal
from .round import RoundOutcome, RoundSteps, play, prefill, round_steps
from .sampling import KeyedNoise, Randomness, SamplingSettings


class Run:
    """One request's generation: its prompt, settings, policy, emitter and stats, and the
    events it has made that nobody has taken yet.

    `settings` come checked (`RunSettings`); the run reads max_tokens, stop, seed,
    draft_tokens ("auto": measure and pick k in 0..policy.MAX_DRAFT each round for the most
    tokens per second; a number: that k) and the sampling settings, derived once.

    `should_stop` is polled between rounds; when it says so the run ends with stop reason
    "userStopped" and everything emitted so far stands. The randomness is keyed noise from
    `settings.seed` (the same text whatever k the policy picks; see `KeyedNoise`), fresh
    entropy without a seed, or `rng` when given: a generator drawn in sequence, as the
    teaching walkthrough's rejection sampling draws. With a `memory`, `draft_tokens="auto"`
    starts from the costs and acceptance it remembers, and leaves it what this run measured
    (see cost_memory.py). With `timed=False` the policy sees each round's nominal seconds
    rather than measured ones (and no memory), so that the draft lengths it picks, and with
    them the text of a model that is not exact, depend on the prompt, the settings and the
    seed alone.
    """

    def __init__(
        self,
        main: Engine,
        drafter: Drafter | None,
        prompt: Sequence[int],
        settings: RunSettings,
        should_stop: Callable[[], bool] | None = None,
        rng: Randomness | None = None,
        memory: CostMemory | None = None,
        timed: bool = True,
    ):
        self.prompt = list(prompt)
        if not self.prompt:
            raise SpecDecError("the prompt is empty; give at least one token of text")
        self.main, self.drafter, self.should_stop, self.timed = main, drafter, should_stop, timed
        self.sampling = SamplingSettings.of(settings)
        if rng is None:
            rng = np.random.default_rng() if settings.seed is None else KeyedNoise(settings.seed)
        self.rng = rng
        self.memory = memory if timed else None
        self.policy = make_policy(
            settings.draft_tokens, self.memory.start() if self.memory is not None else None
        )
        self.out = Emitter(main, settings.max_tokens, settings.stop)
        self.stats = GenerationStats(
            draft_model=drafter.name if drafter else None, prompt_tokens_count=len(self.prompt)
        )
        self.context: list[int] = []
        self.drafted: list[RoundDrafted] = []  # what each round drafted, for auto's note
        self.error: Exception | None = None
        self._events: list[TokenEvent] = []
        self._started = perf_counter()  # a run waiting for room counts its wait to its first token
        self._first_at = 0.0

    @property
    def done(self) -> bool:
        return self.out.stop_reason is not None or self.error is not None

    def start(self) -> None:
        """Read the prompt and take the first token from that pass."""
        first = prefill(self.main, self.drafter, self.prompt, self.sampling, self.rng)
        self._first_at = perf_counter()
        self.stats.time_to_first_token = self._first_at - self._started
        self.context = [*self.prompt, first.token_id]
        self._emit(self.out.add(first, 0))

    def plan(self, call: CallSoFar) -> tuple[DraftOption | None, int] | None:
        """The option and the k of this run's next round, chosen knowing what other requests
        put in the main model's call; None when the run ends instead (it was asked to stop,
        or its context is full)."""
        if self.should_stop is not None and self.should_stop():
            self.finish("userStopped")
            return None
        room = self.main.n_ctx - len(self.main.tokens) - 1  # `last` plus k draft tokens fit
        if room < 0:
            self.finish("contextLengthReached")
            return None
        limit = min(self.policy.max_draft, self.out.remaining - 1, room)
        drafter = self.drafter
        options = drafter.options(self.context, limit) if drafter and limit > 0 else []
        return self.policy.choose(options, limit, call)

    def round(self, option: DraftOption | None, k: int) -> RoundSteps:
        return round_steps(self.main, self.context[-1:], option, k, self.sampling, self.rng)

    def finish_round(self, outcome: RoundOutcome) -> None:
        """Learn from the round and emit its tokens (up to the end of the run)."""
        self.policy.record(outcome if self.timed else nominal(outcome))
        _record_round(self.stats, outcome)
        kind = self.stats.draft_kinds[-1] if outcome.draft.tokens else None
        self.drafted.append(RoundDrafted(kind, len(outcome.draft), outcome.n_accepted))
        self.context += outcome.tokens
        for token in outcome.emitted:
            self._emit(self.out.add(token, self.stats.rounds))
            if self.done:
                break

    def finish(self, reason: StopReason) -> None:
        """End for a reason outside the token stream (a cancel, a full context)."""
        self._emit(self.out.finish(reason))

    def fail(self, error: Exception) -> None:
        """End with an error (its round failed); the events so far stand."""
        self.error = error

    def take_events(self) -> list[TokenEvent]:
        """The events made since the last time, in order."""
        events, self._events = self._events, []
        return events

    def _emit(self, events: Iterable[TokenEvent]) -> None:
        for event in events:
            self.stats.predicted_tokens_count += 1
            self.stats.accepted_draft_tokens_count += event.source == "draft"
            self._events.append(event)
        if self.out.stop_reason is not None:
            self._close()

    def _close(self) -> None:
        """Stop the clock (decode speed counts the tokens after the first over the time after
        it) and leave the memory what this run measured."""
        stats = self.stats
        stats.stop_reason = self.out.stop_reason
        stats.generation_time = perf_counter() - self._first_at
        decoded = self.out.count - 1
        stats.tokens_per_second = decoded / stats.generation_time if decoded > 0 else 0.0
        stats.ignored_draft_tokens_count = (
            stats.total_draft_tokens_count
            - stats.accepted_draft_tokens_count
            - stats.rejected_draft_tokens_count
        )
        if isinstance(self.policy, DraftPolicy) and self.drafter is not None:
            stats.auto_note = auto_note(self.policy, self.drafted)
        measured = self.policy.measured()
        if self.memory is not None and measured is not None:
            self.memory.remember(measured)


def play_round(runs: Sequence[Run]) -> None:
    """One round of every run, together: in turn each picks its k knowing what those before
    it put in the main model's call (the others count as one token each until they choose),
    then their rounds run as one (`round.play`: draft calls batched, one main-model call).
    A run whose round fails gets the error; the others go on."""
    call = CallSoFar(rows=len(runs), tokens=float(len(runs)), others=len(runs) - 1)
    planned: list[tuple[Run, RoundSteps]] = []
    for run in runs:
        others = call.plus(-1, -1.0, 0.0)
        plan = run.plan(others)
        if plan is None:
            call = others
            continue
        option, k = plan
        tokens, seconds = run.policy.expected(option, k)
        call = others.plus(1 + k, tokens, seconds)
        planned.append((run, run.round(option, k)))
    outcomes = play([(run.main, steps) for run, steps in planned])
    for (run, _), outcome in zip(planned, outcomes, strict=True):
        if isinstance(outcome, Exception):
            run.fail(outcome)
        else:
            run.finish_round(outcome)


def speculative_decode(
    main: Engine,
    drafter: Drafter | None,
    prompt: Sequence[int],
    settings: RunSettings,
    should_stop: Callable[[], bool] | None = None,
    rng: Randomness | None = None,
    memory: CostMemory | None = None,
    timed: bool = True,
) -> Generator[TokenEvent, None, GenerationStats]:
    """Yield token events as they are verified; return the run's stats. One run alone: the
    rounds `play_round` plays for many requests, with one (arguments as `Run` takes them)."""
    run = Run(main, drafter, prompt, settings, should_stop, rng, memory, timed)
    run.start()
    yield from run.take_events()
    while not run.done:
        play_round([run])
        yield from run.take_events()
        if run.error is not None:
            raise run.error
    return run.stats


def _record_round(stats: GenerationStats, outcome: RoundOutcome) -> None:
    stats.rounds += 1
    stats.draft_lengths.append(len(outcome.draft))
    stats.draft_kinds.append(outcome.draft.kind)
    stats.total_draft_tokens_count += len(outcome.draft)
    stats.rejected_draft_tokens_count += int(outcome.verification.rejected)
