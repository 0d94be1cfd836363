"""A generation taken one round at a time, each round shown stage by stage: the teaching
widget's state. It strings rounds (trace.py) together with the loop's own drafter, prefill
and emitter, so with the same seed and a fixed k it emits exactly the events
`speculative_decode` emits, with a draft of the main model's vocabulary or of another.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from ...decoding.emission import Emitter
from ...decoding.events import StopReason, TokenEvent
from ...decoding.round import prefill
from ...decoding.sampling import SamplingSettings
from ...engines.base import Engine
from ...errors import SettingsError
from ...settings import RunSettings
from .trace import TOP_N, Drafting, RoundTrace, traced_round


def expected_tokens_per_round(alpha: float, k: int) -> float:
    """Tokens a round of k draft tokens yields when each is accepted with probability
    alpha: 1 + alpha + ... + alpha^k = (1 - alpha^(k+1)) / (1 - alpha), k + 1 when every
    one is (Leviathan et al., 2023)."""
    return float(k + 1) if alpha >= 1 else (1 - alpha ** (k + 1)) / (1 - alpha)


# A teacher's settings unless told otherwise: sampling, so every draw matters, and a seed, so
# a round shows again as it was drawn.
TEACHER = RunSettings(temperature=1.0, seed=0, max_tokens=64)


class Walkthrough:
    """A generation taken one round at a time, each round shown stage by stage.

    `step` shows the next stage of the round on show, and past its last stage the next
    round, computing it if it is new; `back` shows the stage before, into earlier rounds,
    which are kept, so stepping forward again shows the same draws. A round's tokens
    join `visible_events` at its last stage. The first step reads the prompt and takes
    the first token from that pass, as the loop does.
    """

    def __init__(
        self,
        prompt: Sequence[int],
        k: int = 4,
        settings: RunSettings = TEACHER,
        *,
        top_n: int = TOP_N,
        draft_prompt: Sequence[int] | None = None,
    ):
        """`k` tokens drafted each round; of the `settings`, the sampling ones, the seed of
        the draws (drawn in sequence, as rejection sampling is taught) and max_tokens. With
        `draft_prompt` (the conversation in the draft model's own template and tokens) the
        draft has another vocabulary than the main model's and drafts text."""
        if isinstance(k, bool) or not isinstance(k, int) or k < 1:
            raise SettingsError(f"k (draft tokens per round) must be at least 1, got {k!r}")
        self.prompt = list(prompt)
        self.k = k
        self.sampling = SamplingSettings.of(settings)
        self.max_tokens = settings.max_tokens
        self.top_n = top_n
        self.rng = np.random.default_rng(settings.seed)
        self.draft_prompt = None if draft_prompt is None else list(draft_prompt)
        self.events: list[TokenEvent] = []
        self.rounds: list[RoundTrace] = []
        self.stage = 0
        self._at = -1  # which of `rounds` is on show
        self._starts: list[int] = []  # where each round's tokens begin in `events`
        self._context: list[int] = []  # prompt + tokens emitted, shown or not
        self._out: Emitter | None = None  # made at the first step, which brings the engine
        self._drafting: Drafting | None = None  # the drafter, for the engines it was made for

    @property
    def stop_reason(self) -> StopReason | None:
        return self._out.stop_reason if self._out is not None else None

    @property
    def current(self) -> RoundTrace | None:
        """The round on show."""
        return self.rounds[self._at] if self.rounds else None

    @property
    def latest(self) -> bool:
        """Whether the round on show is the last one computed."""
        return self._at == len(self.rounds) - 1

    @property
    def can_go_back(self) -> bool:
        return self._at > 0 or self.stage > 0

    @property
    def round_shown(self) -> bool:
        """Whether the current round (if any) is shown to its last stage."""
        trace = self.current
        return trace is None or self.stage == len(trace.stages) - 1

    @property
    def done(self) -> bool:
        return self.stop_reason is not None and self.latest and self.round_shown

    @property
    def visible_events(self) -> list[TokenEvent]:
        if self.current is None:
            return self.events
        if not self.round_shown:
            return self.events[: self._starts[self._at]]
        return self.events if self.latest else self.events[: self._starts[self._at + 1]]

    def step(self, main: Engine, draft: Engine) -> None:
        """Show the next stage; after a round's last stage, show the next round, computing
        it if it is new."""
        if not self.round_shown:
            self.stage += 1
        elif not self.latest:
            self._at += 1
            self.stage = 0
        elif self.stop_reason is None:
            self._next_round(main, draft)

    def back(self) -> None:
        """Show the stage before, or the last stage of the round before; round 1's draft
        is as far back as it goes."""
        if self.stage > 0:
            self.stage -= 1
        elif self._at > 0:
            self._at -= 1
            self.stage = len(self.rounds[self._at].stages) - 1

    def finish_round(self, main: Engine, draft: Engine) -> None:
        """Show the rest of this round; at its end, all of the next one."""
        if self.round_shown:
            self.step(main, draft)
        if self.current is not None:
            self.stage = len(self.current.stages) - 1

    def counts(self) -> dict[str, float]:
        """The rounds on show and their draft tokens, as the marks on screen show them:
        drafted, judged, accepted (✓) and rejected (✗) so far, and once a draft token has
        been judged the acceptance rate alpha = accepted / judged and the tokens a round of
        k is expected to yield at that rate (before, an alpha of 0% would say every one failed)."""
        drafted = judged = accepted = 0
        for trace in self.rounds[: self._at + 1]:
            shown = trace.checks
            if trace is self.current and not self.round_shown:
                shown = shown[: trace.stages[: self.stage + 1].count("check")]
            drafted += len(trace.proposals)
            judged += len(shown)
            accepted += sum(check.accepted for check in shown)
        counts = {
            "rounds": self._at + 1,
            "drafted": drafted,
            "judged": judged,
            "accepted": accepted,
            "rejected": judged - accepted,
        }
        if judged:
            alpha = accepted / judged
            counts["acceptance_rate"] = alpha
            counts["expected_per_round"] = expected_tokens_per_round(alpha, self.k)
        return counts

    def _next_round(self, main: Engine, draft: Engine) -> None:
        """The loop's round, as `speculative_decode` runs it with a fixed k."""
        drafting = self._drafting
        if drafting is None or not drafting.serves(main, draft):  # first, or a pair reloaded
            drafting = self._drafting = Drafting(main, draft, self.draft_prompt)
            if self._out is not None:  # the draft reads the prompt again, and catches up
                drafting.drafter.prepare(self.prompt)
        if self._out is None:
            self._out = Emitter(main, self.max_tokens)
            first = prefill(main, drafting.drafter, self.prompt, self.sampling, self.rng)
            self._context = [*self.prompt, first.token_id]
            self.events += self._out.add(first, 0)
        out = self._out
        if out.stop_reason is not None:
            return
        room = main.n_ctx - len(self._context)  # as the loop's: `last` is not yet cached
        if room < 0:
            self.events += out.finish("contextLengthReached")
            return
        k = min(self.k, out.remaining - 1, room)
        number = len(self.rounds) + 1
        trace, outcome = traced_round(
            main, drafting, self._context, k, self.sampling, self.rng, number, self.top_n
        )
        self.rounds.append(trace)
        self._starts.append(len(self.events))
        self._at = len(self.rounds) - 1
        self.stage = 0
        self._context = [*self._context, *outcome.tokens]
        for token in outcome.emitted:
            self.events += out.add(token, number)
            if out.stop_reason is not None:
                break
