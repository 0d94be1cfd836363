"""Drafters propose the next few tokens; the main model then judges them.

Each round a drafter offers its `options` (one per source of drafts it has: a hybrid
offers prompt lookup and its model); the policy picks one and a length, and the
option proposes. A proposal asks for the draft model's calls rather than making them
(`DraftSteps`), so the rounds of several requests draft in one call (round.play). A
drafter keeps its own state in step with the context it is handed: the model drafter
compares the context with what its cache holds and rolls back to the common prefix, so
rejected draft tokens are dropped there without a separate call, and a follow-up chat
turn reuses the cached conversation.
"""

from __future__ import annotations

from collections.abc import Callable, Generator, Sequence
from dataclasses import dataclass, field
from functools import partial
from typing import Literal, Protocol

import numpy as np

from ..engines.base import Engine, EngineCall, common_prefix_length
from .copying import EditAwareCopier
from .history import HistoryIndex
from .sampling import Randomness, SamplingSettings, choose_token

DraftKind = Literal["model", "lookup"]


@dataclass
class Draft:
    """Proposed tokens, each with the draft's probability q of it; `probs` holds whole
    q distributions when verification samples (it needs q of every token).

    A `deterministic` draft (prompt lookup) puts all of q on each token it proposes:
    verification then accepts token x with probability p(x) and, on rejection, draws
    from p without x, which is rejection sampling with q a point mass (so is a greedy
    draft from a model of another vocabulary, text_drafts.py; one that samples keeps `probs`
    over the main model's vocabulary, one-hot where it wrote greedily). `caught_up` counts the
    tokens the draft model had to read before drafting (1 or 2 when it kept in step), so
    the policy can tell drafting cost from catching up. `kind` says what drafted: "model"
    (a draft model, of this vocabulary or another) or "lookup" (copied, at no cost).
    A draft of another vocabulary keeps, per proposed token, the texts of its own tokens
    that covered it (`covered_by`), for the token's provenance, and the tokens of its own
    vocabulary it wrote (`own_tokens`), whose text the proposals were taken from, for the
    teacher to show.
    """

    tokens: list[int] = field(default_factory=list)
    q: list[float] = field(default_factory=list)
    probs: list[np.ndarray] = field(default_factory=list)
    source: str | None = None
    caught_up: int = 0
    deterministic: bool = False
    kind: DraftKind = "model"
    covered_by: list[tuple[str, ...]] = field(default_factory=list)
    own_tokens: list[int] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.tokens)


DraftSteps = Generator[EngineCall, np.ndarray, Draft]  # yields calls, is sent their rows
ProposeFn = Callable[[int, SamplingSettings, Randomness], DraftSteps]


def no_calls(draft: Draft) -> DraftSteps:
    """A proposal that needs no engine call (a copied draft): it returns `draft` at once."""
    return draft
    yield  # unreachable: makes this a generator, as every proposal is


@dataclass(frozen=True)
class DraftOption:
    """One way to draft this round: `propose(k, sampling, rng)` drafts up to k tokens,
    asking for the calls it needs (`DraftSteps`; `drive` makes them one at a time).

    `preview` is the draft itself when knowing it costs nothing (prompt lookup), so
    the policy can check it against the tokens that come even when it does not draft.
    """

    source: str
    propose: ProposeFn
    preview: Sequence[int] | None = None


class Drafter(Protocol):
    name: str

    def prepare(self, context: Sequence[int]) -> None:
        """Get ready to draft after `context`, before the first token is shown (a model
        drafter reads the prompt, as llama.cpp and mlx-lm do, so its cost counts in the
        time to first token)."""
        ...

    def options(self, context: Sequence[int], max_draft: int) -> list[DraftOption]:
        """The ways to draft up to `max_draft` after `context`; empty when there is none."""
        ...


def rewind(engine: Engine, context: Sequence[int]) -> list[int]:
    """Cut the engine's cache back to what it shares with `context`, short of the last
    token (logits are not kept, so that one is read again); return the tokens still to read."""
    keep = min(common_prefix_length(engine.tokens, context), len(context) - 1)
    engine.rollback(keep)
    return list(context[keep:])


class ModelDrafter:
    """Drafts with a smaller model that shares the main model's vocabulary."""

    def __init__(self, engine: Engine):
        self.engine = engine
        self.name = engine.name

    def prepare(self, context: Sequence[int]) -> None:
        self.engine.read_prompt(context)

    def options(self, context: Sequence[int], max_draft: int) -> list[DraftOption]:
        return [DraftOption(self.name, partial(self.propose, context))]

    def propose(
        self,
        context: Sequence[int],
        k: int,
        sampling: SamplingSettings,
        rng: Randomness,
    ) -> DraftSteps:
        """Up to `k` tokens that might follow `context` (prompt plus everything emitted)."""
        engine = self.engine
        unread = rewind(engine, context)
        logits = (yield (engine, unread, 1))[0]
        draft = Draft(source=self.name, caught_up=len(unread))
        while True:
            position = len(context) + len(draft.tokens)
            token, q, probs = choose_token(logits, sampling, rng, position)  # lean under greedy
            draft.tokens.append(token)
            draft.q.append(q)
            if probs is not None:
                draft.probs.append(probs)
            if len(draft) == k or engine.is_end_of_generation(token):
                return draft
            logits = (yield (engine, [token], 1))[0]


RUN_CAP = 5  # a copy's options are named by its tokens matched in a row, up to this many


class PromptLookupDrafter:
    """Drafts by copying: from the context (the prompt, earlier turns, the output so far)
    and from earlier generations of the process (`history`). No second model; it pays
    where the output repeats text it has seen: code edits, quoting, regenerating.

    An `EditAwareCopier` follows the text being copied and, after the main model departs
    from it (a renamed name, added hints, a fixed line), re-aligns on the likely edit
    within a token or two; it also re-finds its place by the output's last n tokens
    (n = `max_ngram` … `min_ngram`), as plain prompt lookup does. Following costs
    microseconds a token. Each option names the evidence for its draft, the tokens
    matched in a row (up to `RUN_CAP`; 0 right after an edit), and where it copies from
    ("prompt-lookup/5", "history/3"): the policy learns their acceptance apart.
    """

    name = "prompt-lookup"

    def __init__(self, max_ngram: int = 5, min_ngram: int = 2, history: HistoryIndex | None = None):
        self.copier = EditAwareCopier(max_ngram, min_ngram, history)

    def prepare(self, context: Sequence[int]) -> None:
        self.copier.follow(context)

    def options(self, context: Sequence[int], max_draft: int) -> list[DraftOption]:
        tokens, source = self._lookup(context, max_draft)
        if not tokens:
            return []
        return [DraftOption(source, lambda k, _s, _r: self._draft(tokens[:k], source), tokens)]

    def lookup(self, context: Sequence[int], k: int) -> list[int]:
        """Up to k tokens that the copy of what came before predicts next."""
        return self._lookup(context, k)[0]

    def _lookup(self, context: Sequence[int], k: int) -> tuple[list[int], str]:
        """The draft, and the name of its source: where it copies from and the evidence."""
        self.copier.follow(context)
        tokens, reading = self.copier.guess(k)
        if reading is None:
            return [], ""
        where = self.name if reading.live else "history"
        return tokens, f"{where}/{min(reading.run, RUN_CAP)}"

    @staticmethod
    def _draft(tokens: list[int], source: str) -> DraftSteps:
        draft = Draft(tokens, [1.0] * len(tokens), source=source, deterministic=True, kind="lookup")
        return no_calls(draft)


class HybridDrafter:
    """Prompt lookup and a draft model side by side: with a fixed draft length, the lookup
    where it finds a match and the model otherwise; with the auto policy, whichever is
    expected to give more tokens per second, or neither."""

    def __init__(self, lookup: PromptLookupDrafter, model: Drafter):
        self.lookup = lookup
        self.model = model
        self.name = f"{model.name} + {lookup.name}"

    def prepare(self, context: Sequence[int]) -> None:
        self.lookup.prepare(context)
        self.model.prepare(context)

    def options(self, context: Sequence[int], max_draft: int) -> list[DraftOption]:
        return [*self.lookup.options(context, max_draft), *self.model.options(context, max_draft)]


def drive(steps: DraftSteps) -> Draft:
    """A proposal alone, its calls made one at a time as it asks for them."""
    try:
        call = next(steps)
        while True:
            engine, tokens, n_logits = call
            call = steps.send(engine.evaluate(tokens, n_logits))
    except StopIteration as done:
        return done.value
