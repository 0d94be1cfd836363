"""The notebook-facing API: load a main model and a draft, then stream or generate.

    session = load("qwen2.5-coder-1.5b", draft="qwen2.5-coder-0.5b")
    result = session.generate("Write a quicksort in Python.", max_tokens=128)
    result          # text with accepted draft tokens in green, stats below

A string prompt is one user message, formatted with the model's chat template;
`raw=True` sends it as plain text. `use_draft=False` (or loading with
`draft=None`) runs plain decoding through the same loop, so the two compare.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Iterator, Sequence

from .decoding.drafters import ModelDrafter
from .decoding.events import GenerationStats, TokenEvent
from .decoding.loop import GenerationSettings, speculative_decode
from .decoding.sampling import SamplingSettings
from .engines.base import ChatMessage
from .engines.llamacpp import LlamaCppEngine, read_vocabulary
from .errors import IncompatibleDraftError, SpecDecError
from .models.compat import llamacpp_compatibility
from .models.resolve import resolve_model
from .result import GenerationResult

Prompt = str | Sequence[ChatMessage]
ModelReference = str | os.PathLike[str]

DEFAULT_DRAFT_TOKENS = 3


class Session:
    """A main engine and an optional draft engine, used by one generation at a time."""

    def __init__(self, main: LlamaCppEngine, draft: LlamaCppEngine | None = None):
        self.main = main
        self.draft = draft
        self.last_stats: GenerationStats | None = None
        self._running = threading.Lock()

    def prompt_tokens(self, prompt: Prompt, *, system: str | None = None, raw: bool = False):
        if isinstance(prompt, str):
            if raw:
                return self.main.tokenize(prompt)
            messages = [{"role": "user", "content": prompt}]
        else:
            messages = list(prompt)
        if system is not None:
            messages = [{"role": "system", "content": system}, *messages]
        return self.main.chat_tokens(messages)

    def stream(
        self,
        prompt: Prompt,
        *,
        max_tokens: int = 256,
        temperature: float = 0.0,
        top_k: int = 0,
        top_p: float = 1.0,
        draft_tokens: int = DEFAULT_DRAFT_TOKENS,
        stop: Sequence[str] = (),
        seed: int | None = None,
        use_draft: bool = True,
        system: str | None = None,
        raw: bool = False,
        should_stop: Callable[[], bool] | None = None,
    ) -> Iterator[TokenEvent]:
        """Yield tokens as they are verified; `last_stats` holds the stats afterwards."""
        settings = GenerationSettings(
            max_tokens=max_tokens,
            sampling=SamplingSettings(temperature=temperature, top_k=top_k, top_p=top_p),
            draft_tokens=draft_tokens,
            stop=tuple(stop),
            seed=seed,
        )
        tokens = self.prompt_tokens(prompt, system=system, raw=raw)
        drafter = ModelDrafter(self.draft) if self.draft is not None and use_draft else None
        if not self._running.acquire(blocking=False):
            raise SpecDecError(
                "a generation is already running on this session; stop it or wait for it"
            )
        try:
            self.last_stats = yield from speculative_decode(
                self.main, drafter, tokens, settings, should_stop
            )
        finally:
            self._running.release()

    def generate(self, prompt: Prompt, **options) -> GenerationResult:
        """Run to the end and return text, events and stats (options as for `stream`)."""
        events = list(self.stream(prompt, **options))
        assert self.last_stats is not None
        return GenerationResult(events, self.last_stats)

    def reset(self) -> None:
        """Empty both caches, so the next prompt is prefilled from scratch (for fair timings;
        by default a follow-up prompt reuses the cached common prefix)."""
        self.main.rollback(0)
        if self.draft is not None:
            self.draft.rollback(0)

    def close(self) -> None:
        self.main.close()
        if self.draft is not None:
            self.draft.close()

    def __repr__(self) -> str:
        draft = self.draft.name if self.draft else None
        return f"Session(main={self.main.name!r}, draft={draft!r}, n_ctx={self.main.n_ctx})"


def load(
    main: ModelReference,
    draft: ModelReference | None = None,
    *,
    n_ctx: int = 4096,
    n_threads: int | None = None,
    progress: bool = True,
    verbose: bool = False,
) -> Session:
    """Load a main model and, if given, a draft; names from the catalog are fetched first.

    The draft's vocabulary is checked against the main model's before its weights
    are loaded; an incompatible draft raises IncompatibleDraftError with the reasons.
    """
    main_path = resolve_model(main, progress=progress)
    draft_path = resolve_model(draft, progress=progress) if draft is not None else None
    if draft_path is not None:
        verdict = llamacpp_compatibility(read_vocabulary(main_path), read_vocabulary(draft_path))
        if not verdict.compatible:
            raise IncompatibleDraftError(
                f"{draft_path.name} cannot draft for {main_path.name}: "
                + "; ".join(verdict.reasons)
                + ". Pick a draft from the same model family, or load without a draft.",
                verdict.reasons,
            )
    options = {"n_ctx": n_ctx, "n_threads": n_threads, "verbose": verbose}
    main_engine = LlamaCppEngine(main_path, **options)
    draft_engine = LlamaCppEngine(draft_path, **options) if draft_path is not None else None
    return Session(main_engine, draft_engine)
