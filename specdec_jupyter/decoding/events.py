"""What the decoding loop hands out: one event per token, and the stats of a run.

Field names follow LM Studio's, so users can put our numbers beside theirs; sessions/wire.py
turns both into dicts and back.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

Source = Literal["draft", "main"]
# Which token of its round: an accepted draft token, or the main model's own as the run's first
# token, a round's only token when nothing was drafted, a correction after a rejection, or the
# bonus after a fully accepted draft.
Kind = Literal["accepted", "first", "plain", "correction", "bonus"]

# LM Studio's names for why a generation ended.
StopReason = Literal[
    "eosFound",
    "stopStringFound",
    "maxPredictedTokensReached",
    "contextLengthReached",
    "userStopped",
]


@dataclass(frozen=True, slots=True)
class TokenEvent:
    """One emitted token and where it came from.

    `source` is "draft" for an accepted draft token and "main" for the main model's
    own token (the first token, a correction after a rejection, or the bonus after a
    fully accepted draft). `p_main` / `q_draft` are the two models' probabilities of
    this token where known; `acceptance` is min(1, p/q) for draft tokens (1.0 under
    greedy verification, which accepts exact matches only). `kind` tells the main
    model's tokens apart (None where unknown, e.g. from an older server), and a
    correction's `rejected` holds the texts of the draft tokens it replaced (the rejected
    one and those drafted after it), so a reader can see what the draft wanted. An accepted
    token drafted by a model of another vocabulary, which drafts text, keeps in
    `drafted_as` the texts of the draft's own tokens that covered it.
    """

    token_id: int
    text: str
    source: Source
    round: int
    p_main: float | None = None
    q_draft: float | None = None
    acceptance: float | None = None
    kind: Kind | None = None
    rejected: tuple[str, ...] = ()
    drafted_as: tuple[str, ...] = ()


@dataclass(slots=True)
class GenerationStats:
    """Counts and timings of one generation.

    `tokens_per_second` is decode speed: tokens after the first over the time
    after the first (`generation_time`), so prompt processing shows up in
    `time_to_first_token` only. Draft tokens satisfy
    total = accepted + rejected + ignored; "ignored" are drafted but never used:
    after an earlier rejection in the same round, past a stop, past max_tokens.
    They count the main model's tokens, also for a draft of another vocabulary
    (`text_draft`), which drafts text: a main token counts as drafted when the
    draft's text supplied it.
    """

    draft_model: str | None = None
    stop_reason: StopReason | None = None
    prompt_tokens_count: int = 0
    predicted_tokens_count: int = 0
    time_to_first_token: float = 0.0
    generation_time: float = 0.0
    tokens_per_second: float = 0.0
    total_draft_tokens_count: int = 0
    accepted_draft_tokens_count: int = 0
    rejected_draft_tokens_count: int = 0
    ignored_draft_tokens_count: int = 0
    rounds: int = 0
    draft_lengths: list[int] = field(default_factory=list)
    # per round, what drafted: "model" (a draft model) or "lookup" (copied from the text)
    draft_kinds: list[str] = field(default_factory=list)
    baseline_tokens_per_second: float | None = None
    backend: str | None = None  # where the models ran: engine, device, layers offloaded
    auto_note: str | None = None  # why draft_tokens="auto" drafted or paused, in one line
    text_draft: bool = False  # the draft model had another vocabulary and drafted text

    @property
    def acceptance_rate(self) -> float:
        """Accepted over judged-or-drafted tokens (LM Studio: accepted / total drafted)."""
        total = self.total_draft_tokens_count
        return self.accepted_draft_tokens_count / total if total else 0.0

    @property
    def mean_accepted_per_round(self) -> float:
        drafting_rounds = sum(1 for k in self.draft_lengths if k > 0)
        return self.accepted_draft_tokens_count / drafting_rounds if drafting_rounds else 0.0

    @property
    def speedup(self) -> float | None:
        """tokens/s over the plain-decoding baseline of the same run, when one was measured."""
        base = self.baseline_tokens_per_second
        return self.tokens_per_second / base if base else None
