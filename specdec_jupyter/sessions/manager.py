"""EngineManager: loaded models on demand, a memory budget, default drafts, background runs.

    manager = EngineManager()
    manager.set_default_draft("qwen2.5-coder-1.5b", "qwen2.5-coder-0.5b")  # remembered
    run = manager.start("Write a quicksort in Python.", "qwen2.5-coder-1.5b")
    run.result()                       # or iterate `run`, or `run.cancel()`
    manager.start(prompt, Pair(main, None))                   # no draft this time
    manager.start(prompt, Pair(main, "path/to/draft.gguf"))   # loaded just in time
    with manager.hold(Pair(main, draft)) as session: ...      # drive the decoding yourself

Models are named as `engines.resolve` understands them (catalog name, path, or a name
`specdec-jupyter models list` shows), on any engine of the registry (`Pair.engine`). Each
loaded model counts its size on disk against `memory_budget`; loading one more evicts
the least recently used idle models. A model opens with `parallel` sequences (LoadOptions;
by default from the machine): that many runs on it at once, each with a sequence of its
own, their rounds batched into one call per model (batcher.py), whatever drafts they use.
A run beyond them is refused (EngineBusyError) or, with `wait=True`, queued, first come
first served. Drafts are checked before they load and refused with the verdict's reasons;
a draft chosen while a run goes on is used from the next run. An engine that says it is
`lost` (one on RPC workers whose process ended, engines/rpc/hosted.py) is loaded anew when
next asked for.
"""

from __future__ import annotations

import os
import threading
import warnings
from collections import Counter, OrderedDict
from collections.abc import Callable, Iterator
from concurrent.futures import Future
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from ..decoding.events import GenerationStats
from ..display.progress import showing
from ..engines.base import Engine
from ..engines.registry import EngineNote, ResolvedModel, engine_kind, require_draft
from ..engines.resolve import ModelReference, resolve
from ..errors import EngineBusyError, MemoryBudgetError, SpecDecError
from ..models.drafts.defaults import DefaultDrafts
from ..models.drafts.verdicts import DraftVerdict, VerdictStore
from ..models.metadata import Fingerprint, fingerprint
from ..settings import LoadOptions, RunSettings
from .batcher import Sharing
from .generation import Emit, Generation, OnEnd, Runnable, ShouldStop
from .pair import DEFAULT, Pair
from .result import GenerationResult
from .session import Prompt, Session

EngineFactory = Callable[[ResolvedModel, LoadOptions], Engine]
Slot = tuple[ResolvedModel, LoadOptions]  # a model opened with some options: one engine, one cache
Slots = tuple[Slot, Slot | None]  # a pair's main model and draft, resolved


@dataclass
class _Loaded:
    engine: Engine
    size: int  # bytes on disk: the estimate of what it holds in memory
    fingerprint: Fingerprint  # the model on disk when it loaded: another one is loaded again


def _on_disk(model: ResolvedModel) -> Fingerprint:
    """The fingerprint of a model's file or folder (a built-in model has none)."""
    return fingerprint(model.path) if os.path.isabs(model.key) else (0, 0)


def _lost(engine: Engine) -> bool:
    """Whether `engine` says it is gone (engines/rpc/hosted.py: its process ended)."""
    return getattr(engine, "lost", False)


def default_memory_budget() -> int:
    """Half the machine's memory: room for the models, the notebook and everything else."""
    try:
        return os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE") // 2
    except (ValueError, OSError, AttributeError):
        return 8 << 30


def open_model(model: ResolvedModel, options: LoadOptions) -> Engine:
    """The registry's way to open a model (tests pass a factory that wraps it)."""
    return engine_kind(model.kind).open(model, options)


class EngineManager:
    """Loaded engines shared by every run of one notebook (or process); thread-safe.

    `options` with `option_overrides` (n_ctx=, gpu_layers=, ...: `LoadOptions`'s fields)
    are the load options of runs that pass none of their own (`options=`); a model asked
    for with other options is opened again as another engine.
    """

    def __init__(
        self,
        *,
        memory_budget: int | None = None,
        options: LoadOptions | None = None,
        engine_factory: EngineFactory | None = None,
        defaults: DefaultDrafts | None = None,
        verdicts: VerdictStore | None = None,
        **option_overrides: Any,
    ):
        self.memory_budget = memory_budget or default_memory_budget()
        self.defaults = defaults or DefaultDrafts()
        self.options = LoadOptions.of(options, **option_overrides)

        self._factory = engine_factory or open_model
        self._verdicts = verdicts
        self._lock = threading.Lock()  # guards everything below
        self._loaded: OrderedDict[Slot, _Loaded] = OrderedDict()  # least recently used first
        self._loading: dict[Slot, Future[Engine]] = {}
        self._reserved = 0  # bytes of models being loaded right now
        self._users: Counter[Slot] = Counter()  # runs (waiting or running) and holds of each
        self._sessions: dict[tuple[Slot, Slot | None], Session] = {}
        self._sharing = Sharing()  # every engine's sequences, and the main engines' batchers

    # -- models ----------------------------------------------------------------

    def model(self, reference: ModelReference, engine: str | None = None) -> ResolvedModel:
        """The model a reference names (catalog models are fetched on first use, with their
        progress shown where the caller does not listen itself)."""
        with showing(True):
            return resolve(reference, engine)

    def engine(
        self,
        model: ModelReference,
        engine: str | None = None,
        options: LoadOptions | None = None,
    ) -> Engine:
        """The loaded engine of `model`, loading it once however many threads ask.

        The manager may close an engine it evicts; runs started with `start` are safe
        from that, an engine kept from here is not.
        """
        return self._engine((self.model(model, engine), (options or self.options).for_main()))

    def loaded(self) -> dict[ResolvedModel, int]:
        """Loaded models and their estimated bytes, least recently used first (an engine that
        is lost holds nothing: it is loaded anew when next asked for)."""
        with self._lock:
            return {model: loaded.size for (model, _), loaded in self._held()}

    def _held(self) -> list[tuple[Slot, _Loaded]]:
        return [(s, loaded) for s, loaded in self._loaded.items() if not _lost(loaded.engine)]

    def unload(self, model: ModelReference, engine: str | None = None) -> None:
        """Close every engine of `model` (whatever options opened it)."""
        model = self.model(model, engine)
        with self._lock:
            for slot in [slot for slot in self._loaded if slot[0] == model]:
                if self._users[slot]:
                    raise EngineBusyError(f"{model.name} is generating; cancel the run first")
                self._evict(slot)

    def close(self) -> None:
        """Unload every model that no run is using."""
        with self._lock:
            for slot in [s for s in self._loaded if not self._users[s]]:
                self._evict(slot)

    def _engine(self, slot: Slot) -> Engine:
        """The slot's engine, loaded again when its model changed on disk since it loaded
        (a file touched, or replaced by a rename, as the README recommends)."""
        now = _on_disk(slot[0])
        with self._lock:
            self._drop_replaced(slot, now)
            if slot in self._loaded and _lost(self._loaded[slot].engine):
                self._evict(slot)  # its process has ended (an RPC worker stopped): load anew
            if slot in self._loaded:
                self._loaded.move_to_end(slot)
                return self._loaded[slot].engine
            future = self._loading.get(slot)
            loading_elsewhere = future is not None
            if future is None:
                size = 0 if slot[1].rpc else slot[0].size  # on RPC workers: held there
                self._make_room(size, slot[0])
                future = self._loading[slot] = Future()
                self._reserved += size
        if loading_elsewhere:
            return future.result()
        return self._load(slot, size, future)

    def _drop_replaced(self, slot: Slot, now: Fingerprint) -> None:
        """Close the engines of this slot's model that hold what its file was before `now`:
        the slot's own (its caller holds it) and idle ones opened with other options."""
        for other in [s for s in self._loaded if s[0].key == slot[0].key]:
            replaced = self._loaded[other].fingerprint != now
            if replaced and (other == slot or not self._busy_lock(other).locked()):
                self._evict(other)

    def _load(self, slot: Slot, size: int, future: Future[Engine]) -> Engine:
        loaded_from = _on_disk(slot[0])
        try:
            engine = self._factory(*slot)
        except BaseException as exc:
            with self._lock:
                del self._loading[slot]
                self._reserved -= size
            future.set_exception(exc)
            raise
        with self._lock:
            del self._loading[slot]
            self._reserved -= size
            self._loaded[slot] = _Loaded(engine, size, loaded_from)
        future.set_result(engine)
        return engine

    def _make_room(self, size: int, model: ResolvedModel) -> None:
        """Evict idle models, least recently used first, until `size` more bytes fit."""
        while self._reserved + sum(m.size for m in self._loaded.values()) + size > (
            self.memory_budget
        ):
            idle = [s for s in self._loaded if not self._users[s]]
            if not idle:
                used = sum(m.size for m in self._loaded.values()) + self._reserved
                raise MemoryBudgetError(
                    f"{model.name} needs about {size / 1e9:.2f} GB, but {used / 1e9:.2f} GB of "
                    f"the {self.memory_budget / 1e9:.2f} GB budget is held by running models; "
                    "wait for them, or raise memory_budget"
                )
            self._evict(idle[0])

    def _evict(self, slot: Slot) -> None:
        loaded = self._loaded.pop(slot)
        for key in [k for k in self._sessions if slot in k]:
            del self._sessions[key]
        self._sharing.forget(loaded.engine)
        loaded.engine.close()

    def parallel(self, model: ResolvedModel) -> int:
        """How many runs on `model` go at once with the manager's options."""
        return _sequences((model, self.options.serving()))

    def activity(self) -> dict[ResolvedModel, tuple[int, int, int]]:
        """Each loaded model's sequences: (in use, in all, runs waiting for one)."""
        with self._lock:
            engines = [(model, loaded.engine) for (model, _), loaded in self._held()]
        seen: dict[ResolvedModel, tuple[int, int, int]] = {}
        for model, engine in engines:
            pool, batcher = self._sharing.pool(engine), self._sharing.batcher(engine)
            old = seen.get(model, (0, 0, 0))
            seen[model] = (old[0] + pool.in_use, old[1] + pool.size, old[2] + batcher.waiting)
        return seen

    # -- drafts ------------------------------------------------------------------

    def check_draft(
        self, main: ModelReference, draft: ModelReference, engine: str | None = None
    ) -> DraftVerdict:
        """Can `draft` draft for `main`? The main model's engine's rule, with reasons
        (cached until files change)."""
        main_model = self.model(main, engine)
        draft_model = self.model(draft, main_model.kind)
        return engine_kind(main_model.kind).judge(main_model, draft_model, self._verdicts)

    def default_draft(self, main: ModelReference, engine: str | None = None) -> str | None:
        """The key of the draft `main` runs with when none is named: the one remembered for
        it, else its engine's default pair's draft when `main` is that pair's main model and
        both are on disk (nothing is fetched for a default). What every door reports as the
        default is what a run uses (`Pair(main)`)."""
        draft = self._default_draft(self.model(main, engine))
        return None if draft is None else draft.key

    def _default_draft(self, main: ResolvedModel) -> ResolvedModel | None:
        """The default draft, resolved; a remembered one that is gone (its file deleted)
        leaves the main model running alone, with a note saying so."""
        remembered = self.defaults.get(main.key)
        if remembered is not None:
            try:
                return resolve(remembered, main.kind, fetch=False)
            except SpecDecError as exc:
                warnings.warn(
                    EngineNote(
                        f"the default draft of {main.name} cannot be used ({exc}); running "
                        "without a draft (choose another with set_default_draft)"
                    ),
                    stacklevel=4,
                )
                return None
        kind = engine_kind(main.kind)
        pair_main, pair_draft = kind.default_pair
        try:
            if resolve(pair_main, main.kind, fetch=False).key != main.key:
                return None
            return resolve(pair_draft, main.kind, fetch=False)
        except SpecDecError:
            return None

    def set_default_draft(
        self, main: ModelReference, draft: ModelReference | None, engine: str | None = None
    ) -> None:
        """Remember `draft` for `main` (None: no draft). An unfit draft is refused."""
        main_model = self.model(main, engine)
        if draft is None:
            self.defaults.set(main_model.key, None)
            return
        draft_model = self.model(draft, main_model.kind)
        require_draft(main_model, draft_model, self._verdicts)
        self.defaults.set(main_model.key, draft_model.key)

    # -- generation ----------------------------------------------------------------

    def start(
        self,
        prompt: Prompt,
        pair: Pair | ModelReference,
        settings: RunSettings | None = None,
        *,
        continue_: bool = False,
        wait: bool = False,
        on_event: Emit | None = None,
        on_end: OnEnd | None = None,
        **overrides: Any,
    ) -> Generation:
        """Start generating on `pair` (a model alone: with its remembered draft) on a worker
        thread, with `settings` and `overrides` as `Session.stream` takes them; `on_event` /
        `on_end` listen on that thread (see `Generation`).

        Bad settings are refused here, and models load inside the run. While another run uses
        the main or the draft model this raises EngineBusyError, unless `wait=True` queues
        the run behind it.
        """
        settings = RunSettings.of(settings, **overrides)
        return self.work(prompt, pair, settings, continue_=continue_, wait=wait).start(
            on_event, on_end
        )

    def work(
        self,
        prompt: Prompt,
        pair: Pair | ModelReference,
        settings: RunSettings,
        *,
        continue_: bool = False,
        wait: bool = False,
    ) -> Runnable:
        """The run `start` starts, not started yet: the pair is resolved and counted as in use
        (not evicted) from now; unless `wait`, refused now when its models' sequences are all
        taken."""
        slots = self._slots(pair, seeded=settings.seed is not None)
        self._use(slots, refuse_when_full=not wait)

        def work(emit: Emit, should_stop: ShouldStop) -> GenerationStats:
            try:
                session = self._session(*slots)
                generation = session.decode(
                    prompt, settings, continue_=continue_, should_stop=should_stop, wait=True
                )
                while True:
                    try:
                        emit(next(generation))
                    except StopIteration as done:
                        return done.value
            finally:
                self._release(slots)

        return Runnable(work, f"specdec {slots[0][0].name}")

    def generate(
        self,
        prompt: Prompt,
        pair: Pair | ModelReference,
        settings: RunSettings | None = None,
        **options: Any,
    ) -> GenerationResult:
        """`start(...)` and wait for the result; Ctrl-C stops after the current round."""
        return self.start(prompt, pair, settings, **options).result()

    def prepare(self, pair: Pair | ModelReference) -> None:
        """Load the pair now (slow), so that a run on it starts at once."""
        self._session(*self._slots(pair))

    @contextmanager
    def hold(self, pair: Pair | ModelReference) -> Iterator[Session]:
        """A session of the pair on sequences of its own, for a caller that drives decoding
        itself (the teaching widget, a round at a time), held as a run holds them: refused
        while runs use every sequence of either model."""
        slots = self._slots(pair)
        self._use(slots, refuse_when_full=True)
        leased: list[tuple[object, Engine]] = []
        try:
            session = self._session(*slots)
            engines = [session.main, session.draft]
            views: list[Engine | None] = []
            for engine in engines:
                if engine is None:
                    views.append(None)
                    continue
                pool = self._sharing.pool(engine)
                view = pool.lease()
                if view is None:
                    raise EngineBusyError(_busy_message(engine.name))
                leased.append((pool, view))
                views.append(view)
            yield Session(views[0], views[1], session.draft_mode, memory=session.memory)
        finally:
            for pool, view in leased:
                pool.release(view)  # type: ignore[attr-defined]
            self._release(slots)

    def _slots(self, pair: Pair | ModelReference, seeded: bool = False) -> Slots:
        """The pair's models with the options each opens with (exactness left open settled
        by whether the run is `seeded`, parallel requests by the machine); a draft that is
        the main model or cannot draft for it is refused."""
        if not isinstance(pair, Pair):
            pair = Pair(pair)
        options = (pair.options or self.options).settled(seeded).serving()
        main_model = self.model(pair.main, pair.engine)
        main_slot = (main_model, options.for_main())
        if pair.draft is DEFAULT:
            draft_model = self._default_draft(main_model)
        elif isinstance(pair.draft, ResolvedModel):  # its own kind: a mismatch is refused below
            draft_model = pair.draft
        else:
            draft_model = None if pair.draft is None else self.model(pair.draft, main_model.kind)
        if draft_model is None:
            return main_slot, None
        require_draft(main_model, draft_model, self._verdicts)
        return main_slot, (draft_model, options.for_draft())

    def _use(self, slots: Slots, *, refuse_when_full: bool) -> None:
        """Count a run (or a hold) on the pair's models; when `refuse_when_full`, refuse it
        while other runs and holds take every sequence of either (naming the main model
        asked for when it is full)."""
        used = [slot for slot in slots if slot is not None]
        with self._lock:
            if refuse_when_full:
                full = [slot for slot in used if self._users[slot] >= _sequences(slot)]
                if full:
                    raise EngineBusyError(_busy_message(full[0][0].name))
            for slot in used:
                self._users[slot] += 1

    def _release(self, slots: Slots) -> None:
        with self._lock:
            for slot in slots:
                if slot is not None:
                    self._users[slot] -= 1

    def _session(self, main: Slot, draft: Slot | None) -> Session:
        """The session of this pair, kept across runs while both engines stay loaded."""
        main_engine = self._engine(main)
        draft_engine = self._engine(draft) if draft is not None else None
        with self._lock:
            session = self._sessions.get((main, draft))
            if session is None or (session.main, session.draft) != (main_engine, draft_engine):
                session = Session(main_engine, draft_engine, sharing=self._sharing)
                self._sessions[(main, draft)] = session
            return session

    def __repr__(self) -> str:
        loaded = ", ".join(model.name for model in self.loaded())
        return f"EngineManager(loaded=[{loaded}], budget={self.memory_budget / 1e9:.1f} GB)"


def _sequences(slot: Slot) -> int:
    """Runs an engine serves at once: its parallel sequences (one where they are not taken:
    MLX)."""
    model, options = slot
    return options.parallel or 1 if "parallel" in engine_kind(model.kind).options else 1


def _busy_message(name: str) -> str:
    return (
        f"{name} is generating for other runs on each of its parallel sequences; cancel one "
        "or wait for its result, or start this one with wait=True to queue it"
    )
