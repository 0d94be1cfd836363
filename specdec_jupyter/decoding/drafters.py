"""Drafters propose the next few tokens; the main model then judges them.

Each round a drafter offers its `options` (one per source of drafts it has: a hybrid
offers prompt lookup and its model); the policy picks one and a length, and the
option proposes. A drafter keeps its own state in step with the context it is
handed: the model drafter compares the context with what its cache holds and rolls
back to the common prefix, so rejected draft tokens are dropped there without a
separate call, and a follow-up chat turn reuses the cached conversation.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import partial
from typing import Protocol

import numpy as np

from ..engines.base import Engine
from ..errors import SpecDecError
from ..settings import DraftMode, check_draft_mode
from .sampling import Randomness, SamplingSettings, choose_token


@dataclass
class Draft:
    """Proposed tokens, each with the draft's probability q of it; `probs` holds whole
    q distributions when verification samples (it needs q of every token).

    A `deterministic` draft (prompt lookup) puts all of q on each token it proposes:
    verification then accepts token x with probability p(x) and, on rejection, draws
    from p without x, which is rejection sampling with q a point mass. `caught_up`
    counts the context tokens the drafter had to read before drafting (1 or 2 when it
    kept in step), so the policy can tell drafting cost from catching up.
    """

    tokens: list[int] = field(default_factory=list)
    q: list[float] = field(default_factory=list)
    probs: list[np.ndarray] = field(default_factory=list)
    source: str | None = None
    caught_up: int = 0
    deterministic: bool = False

    def __len__(self) -> int:
        return len(self.tokens)


ProposeFn = Callable[[int, SamplingSettings, Randomness], Draft]


@dataclass(frozen=True)
class DraftOption:
    """One way to draft this round: `propose(k, sampling, rng)` drafts up to k tokens.

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

    def options(self, context: Sequence[int], max_tokens: int) -> list[DraftOption]:
        """The ways to draft up to `max_tokens` after `context`; empty when there is none."""
        ...


def common_prefix_length(a: Sequence[int], b: Sequence[int]) -> int:
    n = min(len(a), len(b))
    i = 0
    while i < n and a[i] == b[i]:
        i += 1
    return i


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
        keep = common_prefix_length(self.engine.tokens, context)
        self.engine.rollback(keep)
        if keep < len(context):
            self.engine.evaluate(context[keep:], n_logits=1)

    def options(self, context: Sequence[int], max_tokens: int) -> list[DraftOption]:
        return [DraftOption(self.name, partial(self.propose, context))]

    def propose(
        self,
        context: Sequence[int],
        k: int,
        sampling: SamplingSettings,
        rng: Randomness,
    ) -> Draft:
        """Up to `k` tokens that might follow `context` (prompt plus everything emitted)."""
        engine = self.engine
        unread = rewind(engine, context)
        logits = engine.evaluate(unread, n_logits=1)[0]
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
            logits = engine.evaluate([token], n_logits=1)[0]


class PromptLookupDrafter:
    """Drafts by copying from the context: where its last n tokens occurred before,
    propose what followed them (the longest n from `max_ngram` down to `min_ngram`,
    at its latest occurrence). No second model; it pays where the output repeats the
    prompt or itself: code edits, quoting, refactoring.

    n-grams are indexed as the context grows, so a round costs microseconds. A
    continuation that runs into the end of the context keeps reading from the draft
    itself, so a repeating pattern drafts in full. Each option names the length of
    its match ("prompt-lookup/5"), since a longer match is far more often right: the
    policy learns their acceptance apart.
    """

    name = "prompt-lookup"

    def __init__(self, max_ngram: int = 5, min_ngram: int = 2):
        if not 1 <= min_ngram <= max_ngram:
            raise ValueError(f"need 1 <= min_ngram <= max_ngram, got {min_ngram}, {max_ngram}")
        self.sizes = range(max_ngram, min_ngram - 1, -1)
        self._context: list[int] = []
        self._latest: dict[int, dict[tuple[int, ...], int]] = {n: {} for n in self.sizes}

    def prepare(self, context: Sequence[int]) -> None:
        self._index(context)

    def options(self, context: Sequence[int], max_tokens: int) -> list[DraftOption]:
        tokens, n = self._lookup(context, max_tokens)
        if not tokens:
            return []
        source = f"{self.name}/{n}"
        return [DraftOption(source, lambda k, _s, _r: self._draft(tokens[:k], source), tokens)]

    def lookup(self, context: Sequence[int], k: int) -> list[int]:
        """Up to k tokens that followed the latest earlier occurrence of the context's end."""
        return self._lookup(context, k)[0]

    def _lookup(self, context: Sequence[int], k: int) -> tuple[list[int], int]:
        """The draft, and the length of the n-gram it was found by (0: none)."""
        self._index(context)
        for n in self.sizes:
            start = self._latest[n].get(tuple(context[-n:])) if len(context) > n else None
            if start is not None:
                follow, end = start + n, len(context)
                draft: list[int] = []
                for position in range(follow, follow + k):
                    draft.append(context[position] if position < end else draft[position - end])
                return draft, n
        return [], 0

    @staticmethod
    def _draft(tokens: list[int], source: str) -> Draft:
        return Draft(tokens, [1.0] * len(tokens), source=source, deterministic=True)

    def _index(self, context: Sequence[int]) -> None:
        """Index every n-gram that has a token after it (so the context's own last n-gram,
        with nothing after it, never matches itself); only the new part when the context
        grew, from scratch when it changed."""
        context = list(context)
        done = len(self._context)
        if context[:done] != self._context:
            self._latest = {n: {} for n in self.sizes}
            done = 0
        for n, table in self._latest.items():
            for start in range(max(done - n, 0), len(context) - n):
                table[tuple(context[start : start + n])] = start
        self._context = context


class HybridDrafter:
    """Prompt lookup and a draft model side by side: with a fixed draft length, the lookup
    where it finds a match and the model otherwise; with the auto policy, whichever is
    expected to give more tokens per second, or neither."""

    def __init__(self, lookup: PromptLookupDrafter, model: ModelDrafter):
        self.lookup = lookup
        self.model = model
        self.name = f"{model.name} + {lookup.name}"

    def prepare(self, context: Sequence[int]) -> None:
        self.lookup.prepare(context)
        self.model.prepare(context)

    def options(self, context: Sequence[int], max_tokens: int) -> list[DraftOption]:
        return [*self.lookup.options(context, max_tokens), *self.model.options(context, max_tokens)]


def make_drafter(mode: DraftMode | None, draft_engine: Engine | None) -> Drafter | None:
    """The drafter for a mode: "model" (the draft model), "lookup" (prompt lookup, no model)
    or "hybrid" (both); None is plain decoding."""
    if mode is None:
        return None
    if check_draft_mode(mode) == "lookup":
        return PromptLookupDrafter()
    if draft_engine is None:
        raise SpecDecError(
            f'draft mode "{mode}" needs a draft model: load one with load(main, draft=...), '
            'or use draft_mode="lookup", which needs none'
        )
    model = ModelDrafter(draft_engine)
    return model if mode == "model" else HybridDrafter(PromptLookupDrafter(), model)
