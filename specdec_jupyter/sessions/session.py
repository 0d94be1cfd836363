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

Loaded with `parallel=N`, a session serves N streams at once (from threads): each has a
sequence of the models' own, and their rounds share the main model's calls (batcher.py).
"""

from __future__ import annotations

from collections.abc import Callable, Generator, Iterator
from typing import Any

from ..decoding.cost_memory import CostMemory
from ..decoding.drafter_choice import make_drafter
from ..decoding.drafters import PromptLookupDrafter
from ..decoding.events import GenerationStats, TokenEvent
from ..decoding.history import HISTORY, HistoryIndex, vocabulary_key
from ..decoding.loop import Run
from ..decoding.text_drafts import shared_between
from ..display.progress import default_display, in_notebook, showing
from ..engines.base import Engine, Prompt, text_tokens
from ..engines.chat_template import ChatTemplateError
from ..engines.registry import engine_kind, require_draft
from ..engines.resolve import ModelReference, resolve
from ..errors import ClosedError, EngineBusyError, EngineLostError, SettingsError, SpecDecError
from ..models.drafts.compat import same_vocabulary
from ..models.shared_tokens import SharedTokens
from ..progress import Tracker
from ..settings import DraftMode, LoadOptions, RunSettings, check_draft_mode, check_prompt
from .batcher import Request, Sharing
from .generation import Emit, Runnable, ShouldStop, streamed
from .result import GenerationResult


class Session:
    """A main engine and an optional draft engine, used by as many generations at a time as
    the main engine has sequences (`n_seq`; one by default).

    `draft_mode` is how generations draft unless told otherwise: "model" when a draft
    model is loaded, else none (plain decoding); "lookup" and "hybrid" add prompt lookup.
    `sharing` holds the engines' sequences and the main engine's batcher (an EngineManager
    shares one between its sessions); `memory` the costs "auto" starts from.
    """

    def __init__(
        self,
        main: Engine,
        draft: Engine | None = None,
        draft_mode: DraftMode | None = None,
        *,
        sharing: Sharing | None = None,
        memory: CostMemory | None = None,
    ):
        self.main = main
        self.draft = draft
        self.draft_mode = check_draft_mode(draft_mode) or ("model" if draft is not None else None)
        make_drafter(self.draft_mode, draft)  # refuse a mode this session cannot serve now
        self.sharing = sharing or Sharing()
        self.memory = memory or CostMemory(main, draft)  # "auto" starts from costs seen before
        self.last_stats: GenerationStats | None = None
        self.closed = False
        self._vocabulary_key: str | None = None
        self._text_level: bool | None = None
        self._shared_tokens: SharedTokens | None = None

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

    @property
    def shared_tokens(self) -> SharedTokens:
        """The tokens the draft's vocabulary and the main model's spell alike, which a draft
        of another vocabulary samples from (decoding/text_drafts.py): found once for the
        pair (under a second for SmolLM2 and Qwen), at its first sampled run."""
        if self.draft is None:
            raise SpecDecError("this session has no draft model; load one with draft=...")
        if self._shared_tokens is None:
            self._shared_tokens = shared_between(self.draft, self.main)
        return self._shared_tokens

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
        continues that message. With every sequence of the main model generating already,
        a stream is refused (SpecDecError).
        """
        generation = self.decode(
            prompt, settings, continue_=continue_, should_stop=should_stop, **overrides
        )
        self.last_stats = None  # never the previous run's, whatever ends this one
        self.last_stats = yield from generation

    def decode(
        self,
        prompt: Prompt,
        settings: RunSettings | None = None,
        *,
        continue_: bool = False,
        should_stop: Callable[[], bool] | None = None,
        wait: bool = False,
        **overrides: Any,
    ) -> Generator[TokenEvent, None, GenerationStats]:
        """`stream`, returning the run's own stats at the end (however many runs share the
        session); with `wait`, a run finding every sequence busy waits for one. Closing it
        early cancels the run, which ends after its current round."""
        settings = RunSettings.of(settings, **overrides)
        if self.closed:
            raise ClosedError(f"this session of {self.main.name} was closed; load it again")
        tokens = self.prompt_tokens(
            prompt, system=settings.system, raw=settings.raw, continue_=continue_
        )
        if not tokens:
            raise SpecDecError("the prompt is empty; give at least one token of text")
        mode = settings.draft_mode or self.draft_mode
        drafting = settings.use_draft and mode is not None
        if drafting:
            make_drafter(mode, self.draft)  # refuse a mode this session cannot serve
        # A seed promises the same text every time. An exact model gives it whatever k is
        # drafted; on one that is not, the text depends on the calls made, so they must
        # depend on the prompt, settings and seed alone: no timings, no earlier generations
        # to copy from, and the prompt read afresh.
        clocked = settings.seed is None or self.main.exact
        history = self.history if clocked else None
        uses_model = drafting and mode != "lookup"
        draft_prompt = shared = None
        if drafting and self.text_level and mode in ("model", "hybrid"):  # it drafts text
            draft_prompt = self.draft_prompt_tokens(
                prompt, system=settings.system, raw=settings.raw, continue_=continue_
            )
            shared = self.shared_tokens if settings.temperature > 0 else None

        def build(main: Engine, draft: Engine | None) -> Run:
            if not clocked:
                main.rollback(0)
                if draft is not None:
                    draft.rollback(0)
            drafter = (
                make_drafter(
                    mode, draft, history, main=main, draft_prompt=draft_prompt, shared=shared
                )
                if drafting
                else None
            )
            return Run(
                main, drafter, tokens, settings, should_stop, memory=self.memory, timed=clocked
            )

        draft_pool = self.sharing.pool(self.draft) if uses_model and self.draft else None
        draft_tokens = tokens if draft_prompt is None else draft_prompt
        request = self._submit(Request(build, draft_pool, tokens, draft_tokens), wait)
        emitted: list[int] = []
        try:
            for event in request.events():
                emitted.append(event.token_id)
                yield event
            stats = request.outcome()
            stats.backend = self.backend
            stats.text_draft = draft_prompt is not None
            if settings.compare and drafting:
                stats.baseline_tokens_per_second = self._plain_speed(
                    tokens, settings, should_stop, clocked
                )
            return stats
        finally:
            request.cancel()  # a reader gone: the run ends after its current round
            request.wait()
            self.history.add(emitted)  # also what a run stopped early wrote

    def _submit(self, request: Request, wait: bool) -> Request:
        """Hand `request` to the main model's batcher; with every sequence busy, wait for one
        (`wait`) or refuse."""
        try:
            self.sharing.batcher(self.main).submit(request, wait=wait)
        except EngineBusyError as busy:
            raise SpecDecError(
                f"a generation is already running on each of this session's {self.main.n_seq} "
                "sequence(s); stop one or wait for it (or load with parallel= more)"
            ) from busy
        return request

    def _plain_speed(
        self,
        tokens: list[int],
        settings: RunSettings,
        should_stop: Callable[[], bool] | None,
        clocked: bool,
    ) -> float | None:
        """Plain decoding's tokens/s on the same prompt, run after the speculative run (so
        neither copies from the other); None when it was stopped or made too few tokens."""

        def build(main: Engine, _: Engine | None) -> Run:
            return Run(main, None, tokens, settings, should_stop, timed=clocked)

        plain = self._submit(Request(build, prompt=tokens), wait=True)
        try:
            for _ in plain.events():
                pass
            stats = plain.outcome()
        finally:
            plain.cancel()
            plain.wait()
        useful = stats.stop_reason != "userStopped" and stats.predicted_tokens_count > 1
        return stats.tokens_per_second if useful else None

    @property
    def backend(self) -> str:
        """Where the models run, as the stats report it."""
        if self.draft is None or self.draft.backend == self.main.backend:
            return self.main.backend
        return f"{self.main.backend}; draft: {self.draft.backend}"

    def generate(
        self,
        prompt: Prompt,
        settings: RunSettings | None = None,
        *,
        continue_: bool = False,
        should_stop: ShouldStop | None = None,
        progress: bool = True,
        **overrides: Any,
    ) -> GenerationResult:
        """Run to the end and return text, events and stats (arguments as for `stream`). The
        run has a thread of its own, so Ctrl-C (Kernel → Interrupt) stops it after the
        current round and returns what it wrote, stopped by the user, as `%%specdec` does;
        a second Ctrl-C stops waiting. In a notebook a bar counts the tokens meanwhile (a
        reply of a few hundred tokens takes a minute on a CPU); `progress=False` hides it.
        An engine lost on the way (EngineLostError) keeps the events so far on the error."""
        settings = RunSettings.of(settings, **overrides)  # refused here, before any thread
        streaming = streamed(self, prompt, settings, continue_=continue_)
        listener = default_display() if progress and in_notebook() else None
        counted = Tracker("generating", self.main.name, settings.max_tokens, "tokens", listener)

        def work(emit: Emit, cancelled: ShouldStop) -> GenerationStats:
            return streaming(emit, lambda: cancelled() or bool(should_stop and should_stop()))

        run = Runnable(work, f"specdec {self.main.name}").start(lambda _: counted.advance(1))
        try:
            return run.result()
        except EngineLostError as lost:
            lost.events = list(run.events)
            raise
        finally:
            counted.finish()

    def reset(self) -> None:
        """Empty both models' caches (every sequence's), so the next prompt is prefilled from
        scratch (for fair timings; by default a follow-up prompt reuses the cached common
        prefix)."""
        for engine in (self.main, self.draft):
            if engine is not None:
                for index in range(engine.n_seq):
                    engine.sequence(index).rollback(0)

    def close(self) -> None:
        """Free both models now. A run on another thread stops at its next call with a
        ClosedError (the call in flight ends first); a later run is refused."""
        self.closed = True
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
    check_prompt(prompt)
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
