"""The speculative decoding loop: draft, verify in one pass, roll back, repeat.

Read it top to bottom like mlx-lm's `speculative_generate_step`: prefill the
prompt and take the first token from that pass exactly as plain decoding does;
then each round the policy picks one of the drafter's options and a length k,
the option proposes k tokens, the main model evaluates `last + draft` in one
call, verification keeps a prefix and adds one token of the main model's own,
the main model's cache is cut back to what stands, and the policy hears what
the round cost and yielded. With no drafter (or k = 0) a round is one plain
decoding step through the same code, so plain and speculative runs are directly
comparable.
"""

from __future__ import annotations

from collections.abc import Callable, Generator, Sequence
from dataclasses import dataclass, field
from time import perf_counter
from typing import Literal

import numpy as np

from ..engines.base import Engine
from ..engines.detokenize import IncrementalDetokenizer
from ..errors import ContextOverflowError, SpecDecError
from .drafters import Draft, Drafter, common_prefix_length
from .events import GenerationStats, Source, StopReason, TokenEvent
from .policy import make_policy
from .sampling import SamplingSettings, distribution, draw, probability_of
from .stops import StopStringFilter
from .verify import Verdict, verify_greedy, verify_sampling


@dataclass(frozen=True)
class GenerationSettings:
    """`draft_tokens` is k per round, or "auto": measure and pick k in 0..max_draft_tokens
    each round for the most tokens per second (see policy.py)."""

    max_tokens: int = 256
    sampling: SamplingSettings = field(default_factory=SamplingSettings)
    draft_tokens: int | Literal["auto"] = "auto"
    max_draft_tokens: int = 8
    stop: tuple[str, ...] = ()
    seed: int | None = None

    def __post_init__(self) -> None:
        if self.max_tokens < 1:
            raise ValueError(f"max_tokens must be at least 1, got {self.max_tokens}")
        k = self.draft_tokens
        if k != "auto" and (isinstance(k, bool) or not isinstance(k, int) or k < 0):
            raise ValueError(f'draft_tokens must be "auto" or an integer >= 0, got {k!r}')
        if self.max_draft_tokens < 1:
            raise ValueError(f"max_draft_tokens must be at least 1, got {self.max_draft_tokens}")


def speculative_decode(
    main: Engine,
    drafter: Drafter | None,
    prompt: Sequence[int],
    settings: GenerationSettings,
    should_stop: Callable[[], bool] | None = None,
) -> Generator[TokenEvent, None, GenerationStats]:
    """Yield token events as they are verified; return the run's stats.

    `should_stop` is polled between rounds; when it says so the run ends with
    stop reason "userStopped" and everything emitted so far stands.
    """
    prompt = list(prompt)
    if not prompt:
        raise SpecDecError("the prompt is empty; give at least one token of text")
    if len(prompt) >= main.n_ctx:
        raise ContextOverflowError(
            f"the prompt is {len(prompt)} tokens but {main.name}'s context holds {main.n_ctx}; "
            "shorten the prompt or load the model with a larger n_ctx"
        )
    sampling = settings.sampling
    rng = np.random.default_rng(settings.seed)
    policy = make_policy(settings.draft_tokens, settings.max_draft_tokens)
    out = _Output(
        main,
        settings,
        GenerationStats(
            draft_model=drafter.name if drafter else None, prompt_tokens_count=len(prompt)
        ),
    )

    # Prefill: the first token comes from the prompt's own pass, as in plain decoding.
    keep = min(common_prefix_length(main.tokens, prompt), len(prompt) - 1)
    main.rollback(keep)
    p = distribution(main.evaluate(prompt[keep:], n_logits=1)[0], sampling)
    last = int(p.argmax()) if sampling.greedy else draw(p, rng)
    generated = [last]
    if drafter is not None:
        drafter.prepare(prompt)
    yield from out.add(last, "main", 0, p_main=float(p[last]))

    n_round = 0
    while out.stop_reason is None:
        if should_stop is not None and should_stop():
            out.finish("userStopped")
            break
        n_past = len(main.tokens)
        room = main.n_ctx - n_past - 1  # `last` plus k draft tokens must fit
        if room < 0:
            out.finish("contextLengthReached")
            break
        limit = min(policy.max_tokens, settings.max_tokens - out.count - 1, room)
        context = prompt + generated
        options = drafter.options(context, limit) if drafter and limit > 0 else []
        option, k = policy.choose(options, limit)
        started = perf_counter()
        draft = option.propose(k, sampling, rng) if option and k > 0 else Draft()
        drafted = perf_counter()
        rows = main.evaluate([last, *draft.tokens], n_logits=len(draft) + 1)
        verified = perf_counter()
        verdict, p_rows = _verify(draft, rows, sampling, rng)
        main.rollback(n_past + 1 + verdict.n_accepted)
        n_round += 1
        out.record_round(len(draft), verdict.rejected)
        emitted = [*draft.tokens[: verdict.n_accepted], verdict.next_token]
        policy.record(draft, verdict.n_accepted, emitted, drafted - started, verified - drafted)

        for i in range(verdict.n_accepted):
            token = draft.tokens[i]
            yield from out.add(
                token,
                "draft",
                n_round,
                p_main=p_rows(i, token),
                q_draft=draft.q[i],
                acceptance=verdict.acceptance[i],
            )
            if out.stop_reason is not None:
                break
        else:
            last = verdict.next_token
            generated += emitted
            yield from out.add(
                last,
                "main",
                n_round,
                p_main=p_rows(verdict.n_accepted, last),
                q_draft=_q_of(draft, verdict.n_accepted, last),
            )
    yield from out.released_at_end()
    return out.stats


def _q_of(draft: Draft, position: int, token: int) -> float | None:
    """The draft's probability of the main model's own token, where the draft kept its q."""
    if draft.deterministic and position < len(draft):
        return float(token == draft.tokens[position])
    return float(draft.probs[position][token]) if position < len(draft.probs) else None


def _verify(
    draft: Draft, rows: np.ndarray, sampling: SamplingSettings, rng: np.random.Generator
) -> tuple[Verdict, Callable[[int, int], float]]:
    """The verdict, and p(token) at row i of the main model (lazily: under greedy only
    the emitted tokens need one, and without a whole softmax)."""
    if sampling.greedy:
        return verify_greedy(draft.tokens, rows), lambda i, token: probability_of(rows[i], token)
    main_probs = [distribution(row, sampling) for row in rows]
    draft_probs = None if draft.deterministic else draft.probs
    verdict = verify_sampling(draft.tokens, draft_probs, main_probs, rng)
    return verdict, lambda i, token: float(main_probs[i][token])


class _Output:
    """Turns verified tokens into events: text, end-of-generation, stop strings,
    max_tokens, and the counts and clocks of the stats."""

    def __init__(self, main: Engine, settings: GenerationSettings, stats: GenerationStats):
        self.main = main
        self.settings = settings
        self.stats = stats
        self.count = 0
        self.stop_reason: StopReason | None = None
        self._detokenizer = IncrementalDetokenizer()
        self._stops = StopStringFilter(settings.stop)
        self._started = perf_counter()
        self._first_at = self._started
        self._held_at_end: list[TokenEvent] = []

    def add(self, token: int, source: Source, n_round: int, **probabilities: float | None):
        """Yield the events this token makes visible (none while a stop string may be forming)."""
        self.count += 1
        if self.count == 1:
            self._first_at = perf_counter()
            self.stats.time_to_first_token = self._first_at - self._started
        end_of_generation = self.main.is_end_of_generation(token)
        text = "" if end_of_generation else self._detokenizer.text_of(self.main.token_bytes(token))
        event = TokenEvent(token, text, source, n_round, **probabilities)
        if end_of_generation:
            released, self.stop_reason = [*self._stops.flush(), event], "eosFound"
        else:
            released, stopped = self._stops.push(event)
            if stopped:
                self.stop_reason = "stopStringFound"
            elif self.count >= self.settings.max_tokens:
                released += self._stops.flush()
                self.stop_reason = "maxPredictedTokensReached"
        yield from self._count(released)
        if self.stop_reason is not None:
            self._close_clock()

    def record_round(self, n_drafted: int, rejected: bool) -> None:
        self.stats.rounds += 1
        self.stats.draft_lengths.append(n_drafted)
        self.stats.total_draft_tokens_count += n_drafted
        self.stats.rejected_draft_tokens_count += int(rejected)

    def finish(self, reason: StopReason) -> None:
        """End for a reason outside the token stream (cancel, full context)."""
        self.stop_reason = reason
        self._held_at_end = self._stops.flush()
        self._close_clock()

    def released_at_end(self):
        yield from self._count(self._held_at_end)
        self._held_at_end = []
        stats = self.stats
        stats.ignored_draft_tokens_count = (
            stats.total_draft_tokens_count
            - stats.accepted_draft_tokens_count
            - stats.rejected_draft_tokens_count
        )

    def _count(self, events: list[TokenEvent]):
        for event in events:
            self.stats.predicted_tokens_count += 1
            self.stats.accepted_draft_tokens_count += event.source == "draft"
            yield event

    def _close_clock(self) -> None:
        stats = self.stats
        stats.stop_reason = self.stop_reason
        stats.generation_time = perf_counter() - self._first_at
        decoded = self.count - 1
        stats.tokens_per_second = decoded / stats.generation_time if decoded > 0 else 0.0
