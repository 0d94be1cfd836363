"""The notebook-facing API: load a main model and a draft, then stream or generate.

    session = load("qwen2.5-coder-1.5b", draft="qwen2.5-coder-0.5b")
    result = session.generate("Write a quicksort in Python.", max_tokens=128)
    result          # text with accepted draft tokens in green, stats below

A string prompt is one user message, formatted with the model's chat template;
`raw=True` sends it as plain text. `use_draft=False` (or loading with
`draft=None`) runs plain decoding through the same loop, so the two compare.

Drafts come from the draft model (`draft_mode="model"`), from the prompt itself
(`"lookup"`: n-gram matches, no second model; `load(main, draft="prompt-lookup")`)
or from both (`"hybrid"`). Lookup also copies from the process's earlier generations
with the same vocabulary (`decoding.history`): a regenerated reply, a second pass over
the same code. `draft_tokens="auto"` (the default) measures as it goes
and drafts only as many tokens as pay, down to none.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator, Sequence
from typing import Any

from ..decoding.cost_memory import CostMemory
from ..decoding.drafter_choice import make_drafter
from ..decoding.drafters import PromptLookupDrafter
from ..decoding.events import GenerationStats, TokenEvent
from ..decoding.history import HISTORY, HistoryIndex, vocabulary_key
from ..decoding.loop import speculative_decode
from ..display.progress import showing
from ..engines.base import ChatMessage, Engine, text_tokens
from ..engines.chat_template import ChatTemplateError
from ..engines.registry import engine_kind, require_draft
from ..engines.resolve import ModelReference, resolve
from ..errors import SettingsError, SpecDecError
from ..models.drafts.compat import same_vocabulary
from ..settings import DraftMode, LoadOptions, RunSettings, check_draft_mode
from .result import GenerationResult

Prompt = str | Sequence[ChatMessage]


class Session:
    """A main engine and an optional draft engine, used by one generation at a time.

    `draft_mode` is how generations draft unless told otherwise: "model" when a draft
    model is loaded, else none (plain decoding); "lookup" and "hybrid" add prompt lookup.
    """

    def __init__(
        self,
        main: Engine,
        draft: Engine | None = None,
        draft_mode: DraftMode | None = None,
    ):
        self.main = main
        self.draft = draft
        self.draft_mode = check_draft_mode(draft_mode) or ("model" if draft is not None else None)
        make_drafter(self.draft_mode, draft)  # refuse a mode this session cannot serve now
        self.memory = CostMemory(main, draft)  # so "auto" starts from costs measured before
        self.last_stats: GenerationStats | None = None
        self._running = threading.Lock()
        self._vocabulary_key: str | None = None
        self._text_level: bool | None = None

    @property
    def history(self) -> HistoryIndex:
        """The process's earlier generations in this main model's vocabulary (shared with
        every session of that vocabulary): lookup drafts from them, and each generation
        joins them when it ends."""
        if self._vocabulary_key is None:
            self._vocabulary_key = vocabulary_key(self.main.vocabulary())
        return HISTORY.for_vocabulary(self._vocabulary_key)

    def prompt_tokens(
        self,
        prompt: Prompt,
        *,
        system: str | None = None,
        raw: bool = False,
        continue_: bool = False,
    ) -> list[int]:
        """The prompt's tokens for the main model (see `conversation_tokens`)."""
        return conversation_tokens(self.main, prompt, system=system, raw=raw, continue_=continue_)

    def draft_prompt_tokens(self, prompt: Prompt, **how: Any) -> list[int]:
        """The prompt in the draft model's own chat template and tokens (as `prompt_tokens`),
        which a draft of another vocabulary reads. A draft without a chat template (a base
        model, as Gemma-3-270M is) reads the text of the main model's prompt instead."""
        if self.draft is None:
            raise SpecDecError("this session has no draft model; load one with draft=...")
        try:
            return conversation_tokens(self.draft, prompt, **how)
        except ChatTemplateError:
            main_prompt = self.prompt_tokens(prompt, **how)
            text = b"".join(self.main.token_bytes(token) for token in main_prompt)
            return self.draft.tokenize(text.decode("utf-8", errors="replace"), special=False)

    @property
    def text_level(self) -> bool:
        """Whether the draft model has another vocabulary than the main model's, so that it
        drafts text (decoding/text_drafts.py) rather than the main model's tokens."""
        if self._text_level is None:
            self._text_level = self.draft is not None and not same_vocabulary(
                self.main.vocabulary(), self.draft.vocabulary()
            )
        return self._text_level

    def stream(
        self,
        prompt: Prompt,
        settings: RunSettings | None = None,
        *,
        continue_: bool = False,
        should_stop: Callable[[], bool] | None = None,
        **overrides: Any,
    ) -> Iterator[TokenEvent]:
        """Yield tokens as they are verified; `last_stats` holds the stats afterwards.

        `settings` (default: `RunSettings()`) with `overrides` (max_tokens=, temperature=,
        ...: `RunSettings`'s fields) are checked before anything runs. `draft_tokens`:
        "auto" or a fixed k per round; `draft_mode`: "model", "lookup" or "hybrid"
        (default: the session's `draft_mode`); `use_draft=False`: plain decoding; `stop`:
        one stop string or several. A trailing assistant message, or `continue_=True`,
        continues that message.
        """
        settings = RunSettings.of(settings, **overrides)
        tokens = self.prompt_tokens(
            prompt, system=settings.system, raw=settings.raw, continue_=continue_
        )
        mode = settings.draft_mode or self.draft_mode
        # A seed promises the same text every time. An exact model gives it whatever k is
        # drafted; on one that is not, the text depends on the calls made, so they must
        # depend on the prompt, settings and seed alone: no timings, no earlier generations
        # to copy from, and the prompt read afresh.
        clocked = settings.seed is None or self.main.exact
        history = self.history if clocked else None
        drafter = draft_prompt = None
        if settings.use_draft:
            if self.text_level and mode in ("model", "hybrid"):  # the draft model drafts text
                draft_prompt = self.draft_prompt_tokens(
                    prompt, system=settings.system, raw=settings.raw, continue_=continue_
                )
            drafter = make_drafter(
                mode, self.draft, history, main=self.main, draft_prompt=draft_prompt
            )
        if not self._running.acquire(blocking=False):
            raise SpecDecError(
                "a generation is already running on this session; stop it or wait for it"
            )
        emitted: list[int] = []
        try:
            if not clocked:
                self.reset()
            generation = speculative_decode(
                self.main,
                drafter,
                tokens,
                settings,
                should_stop,
                memory=self.memory,
                timed=clocked,
            )
            while True:
                try:
                    event = next(generation)
                except StopIteration as done:
                    self.last_stats = done.value
                    break
                emitted.append(event.token_id)
                yield event
            self.last_stats.backend = self.backend
            self.last_stats.text_draft = draft_prompt is not None
        finally:
            self.history.add(emitted)  # also what a run stopped early wrote
            self._running.release()

    @property
    def backend(self) -> str:
        """Where the models run, as the stats report it."""
        if self.draft is None or self.draft.backend == self.main.backend:
            return self.main.backend
        return f"{self.main.backend}; draft: {self.draft.backend}"

    def generate(
        self, prompt: Prompt, settings: RunSettings | None = None, **options: Any
    ) -> GenerationResult:
        """Run to the end and return text, events and stats (options as for `stream`)."""
        events = list(self.stream(prompt, settings, **options))
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
        return (
            f"Session(main={self.main.name!r}, draft={draft!r}, "
            f"draft_mode={self.draft_mode!r}, n_ctx={self.main.n_ctx})"
        )


def load(
    main: ModelReference,
    draft: ModelReference | None = None,
    *,
    draft_mode: DraftMode | None = None,
    engine: str | None = None,
    options: LoadOptions | None = None,
    progress: bool = True,
    **option_overrides: Any,
) -> Session:
    """Load a main model and, if given, a draft, named as `engines.resolve` understands
    (catalog name, path, or any name `specdec-jupyter models list` prints).

    `engine` is "llama.cpp", "mlx" or "toy" (`engines.registry.KINDS`); by default the
    main model's format decides, and a catalog name runs on llama.cpp (with "mlx" it is
    converted on first use). The draft runs on the main model's engine, and its vocabulary
    is checked before its weights load: an incompatible draft raises IncompatibleDraftError
    with the reasons. `draft="prompt-lookup"` drafts from the prompt and loads no second
    model; `draft_mode` sets the session's default (see `Session`). The load options are
    `options` with `option_overrides` (n_ctx=, n_threads=, gpu_layers=, draft_gpu_layers=,
    exact=: `LoadOptions`'s fields); `gpu_layers` and `draft_gpu_layers` are the layers
    llama.cpp offloads to a GPU (llama-server's `-ngl` and `-ngld`; None: all when the build
    has a GPU backend, 0: none, -1: all). `exact=True` loads both models with kernels whose
    logits do not depend on a call's size: every draft mode and k then gives plain decoding's
    tokens bit for bit (the stats' `backend` says whether a model could be made exact); it is
    slower on a CPU (README, "Exact mode"). Left at None, a session loads fast.
    """
    if draft == PromptLookupDrafter.name:
        draft, draft_mode = None, draft_mode or "lookup"
    loading = LoadOptions.of(options, **option_overrides)
    options, draft_options = loading.for_main(), loading.for_draft()
    with showing(progress):  # fetching, converting and loading, where nobody listens already
        main_model = resolve(main, engine)
        draft_model = None if draft is None else resolve(draft, main_model.kind)

        if draft_model is not None:
            require_draft(main_model, draft_model)
        kind = engine_kind(main_model.kind)
        kind.note_ignored(options)
        if draft_model is not None:
            kind.note_ignored(draft_options)
        main_engine = kind.open(main_model, options)
        draft_engine = None if draft_model is None else kind.open(draft_model, draft_options)
    return Session(main_engine, draft_engine, draft_mode)


def conversation_tokens(
    engine: Engine,
    prompt: Prompt,
    *,
    system: str | None = None,
    raw: bool = False,
    continue_: bool = False,
) -> list[int]:
    """The prompt's tokens in `engine`'s chat template and vocabulary (each model of a pair
    reads the conversation in its own). A conversation ending with the assistant's message
    (or `continue_=True`) continues that message: the template opens the assistant's turn
    and its text follows, so the reply carries on where the text ends (no new turn)."""
    if isinstance(prompt, str):
        if continue_:
            raise SettingsError(
                "continue_=True continues the assistant's last message; pass the "
                "conversation as messages ending with it"
            )
        if raw:
            return engine.tokenize(prompt)
        messages = [{"role": "user", "content": prompt}]
    else:
        messages = list(prompt)
    if system is not None:
        messages = [{"role": "system", "content": system}, *messages]
    if messages and messages[-1].get("role") == "assistant":
        *before, last = messages
        return [*engine.chat_tokens(before), *text_tokens(engine, last["content"])]
    if continue_:
        raise SettingsError(
            "continue_=True needs the conversation to end with the assistant's message; "
            "add it, or leave continue_ off for a new reply"
        )
    return engine.chat_tokens(messages)
