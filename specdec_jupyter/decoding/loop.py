"""The speculative decoding loop: draft, verify in one pass, roll back, repeat.

Read it top to bottom like mlx-lm's `speculative_generate_step`: prefill the
prompt and take the first token from that pass exactly as plain decoding does;
then each round the policy picks one of the drafter's options and a length k,
`run_round` drafts, evaluates `last + draft` in one main-model call, verifies and
cuts the main model's cache back to what stands, the policy learns from the
round's outcome, and the emitter turns its tokens into events. With no drafter
(or k = 0) a round is one plain decoding step through the same code, so plain and
speculative runs are directly comparable.
"""

from __future__ import annotations

from collections.abc import Callable, Generator, Iterable, Iterator, Sequence
from time import perf_counter

import numpy as np

from ..engines.base import Engine
from ..errors import SpecDecError
from ..settings import RunSettings
from .cost_memory import CostMemory
from .drafters import Drafter
from .emission import Emitter
from .events import GenerationStats, TokenEvent
from .policy import make_policy, nominal
from .round import RoundOutcome, prefill, run_round
from .sampling import KeyedNoise, Randomness, SamplingSettings


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
    """Yield token events as they are verified; return the run's stats.

    `settings` come checked (`RunSettings`); the loop reads max_tokens, stop, seed,
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
    prompt = list(prompt)
    if not prompt:
        raise SpecDecError("the prompt is empty; give at least one token of text")
    sampling = SamplingSettings.of(settings)
    if rng is None:
        rng = np.random.default_rng() if settings.seed is None else KeyedNoise(settings.seed)
    memory = memory if timed else None
    start = memory.start() if memory is not None else None
    policy = make_policy(settings.draft_tokens, start)
    out = Emitter(main, settings.max_tokens, settings.stop)
    stats = GenerationStats(
        draft_model=drafter.name if drafter else None, prompt_tokens_count=len(prompt)
    )

    started = perf_counter()
    first = prefill(main, drafter, prompt, sampling, rng)
    first_at = perf_counter()
    stats.time_to_first_token = first_at - started
    yield from _counted(stats, out.add(first, 0))
    context = [*prompt, first.token_id]

    while out.stop_reason is None:
        if should_stop is not None and should_stop():
            yield from _counted(stats, out.finish("userStopped"))
            break
        room = main.n_ctx - len(main.tokens) - 1  # `last` plus k draft tokens must fit
        if room < 0:
            yield from _counted(stats, out.finish("contextLengthReached"))
            break
        limit = min(policy.max_draft, out.remaining - 1, room)

        options = drafter.options(context, limit) if drafter and limit > 0 else []
        option, k = policy.choose(options, limit)
        outcome = run_round(main, context[-1:], option, k, sampling, rng)
        policy.record(outcome if timed else nominal(outcome))
        _record_round(stats, outcome)
        context += outcome.tokens
        for token in outcome.emitted:
            yield from _counted(stats, out.add(token, stats.rounds))
            if out.stop_reason is not None:
                break
    _close(stats, out, first_at)
    measured = policy.measured()
    if memory is not None and measured is not None:
        memory.remember(measured)
    return stats


def _counted(stats: GenerationStats, events: Iterable[TokenEvent]) -> Iterator[TokenEvent]:
    for event in events:
        stats.predicted_tokens_count += 1
        stats.accepted_draft_tokens_count += event.source == "draft"
        yield event


def _record_round(stats: GenerationStats, outcome: RoundOutcome) -> None:
    stats.rounds += 1
    stats.draft_lengths.append(len(outcome.draft))
    stats.draft_kinds.append(outcome.draft.kind)
    stats.total_draft_tokens_count += len(outcome.draft)
    stats.rejected_draft_tokens_count += int(outcome.verification.rejected)


def _close(stats: GenerationStats, out: Emitter, first_at: float) -> None:
    """Stop the clock: decode speed counts the tokens after the first over the time after it."""
    stats.stop_reason = out.stop_reason
    stats.generation_time = perf_counter() - first_at
    decoded = out.count - 1
    stats.tokens_per_second = decoded / stats.generation_time if decoded > 0 else 0.0
    stats.ignored_draft_tokens_count = (
        stats.total_draft_tokens_count
        - stats.accepted_draft_tokens_count
        - stats.rejected_draft_tokens_count
    )
