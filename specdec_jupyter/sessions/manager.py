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
the least recently used idle models. A run holds its main and draft models until it
ends: a second run on either is refused (EngineBusyError) or, with `wait=True`, queued.
Drafts are checked before they load and refused with the verdict's reasons; a draft
chosen while a run goes on is used from the next run. An engine that says it is `lost` (one on
RPC workers whose process ended, engines/rpc/hosted.py) is loaded anew when next asked for.
"""

from __future__ import annotations

import os
import threading
from collections import OrderedDict
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from typing import Any

from ..decoding.events import GenerationStats
from ..display.progress import showing
from ..engines.base import Engine
from ..engines.registry import ResolvedModel, engine_kind, require_draft
from ..engines.resolve import ModelReference, resolve
from ..errors import EngineBusyError, MemoryBudgetError
from ..models.drafts.defaults import DefaultDrafts
from ..models.drafts.verdicts import DraftVerdict, VerdictStore
from ..settings import LoadOptions, RunSettings
from .generation import Emit, Generation, OnEnd, Runnable, ShouldStop, streamed
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
        self._busy: dict[Slot, threading.Lock] = {}  # held by the run using the engine
        self._sessions: dict[tuple[Slot, Slot | None], Session] = {}

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
        """Loaded models and their estimated bytes, least recently used first."""
        with self._lock:
            return {model: loaded.size for (model, _), loaded in self._loaded.items()}

    def unload(self, model: ModelReference, engine: str | None = None) -> None:
        """Close every engine of `model` (whatever options opened it)."""
        model = self.model(model, engine)
        with self._lock:
            for slot in [slot for slot in self._loaded if slot[0] == model]:
                if self._busy_lock(slot).locked():
                    raise EngineBusyError(f"{model.name} is generating; cancel the run first")
                self._evict(slot)

    def close(self) -> None:
        """Unload every model that no run is using."""
        with self._lock:
            for slot in [s for s in self._loaded if not self._busy_lock(s).locked()]:
                self._evict(slot)

    def _engine(self, slot: Slot) -> Engine:
        with self._lock:
            if slot in self._loaded and getattr(self._loaded[slot].engine, "lost", False):
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

    def _load(self, slot: Slot, size: int, future: Future[Engine]) -> Engine:
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
            self._loaded[slot] = _Loaded(engine, size)
        future.set_result(engine)
        return engine

    def _make_room(self, size: int, model: ResolvedModel) -> None:
        """Evict idle models, least recently used first, until `size` more bytes fit."""
        while self._reserved + sum(m.size for m in self._loaded.values()) + size > (
            self.memory_budget
        ):
            idle = [s for s in self._loaded if not self._busy_lock(s).locked()]
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
        loaded.engine.close()

    def _busy_lock(self, slot: Slot) -> threading.Lock:
        return self._busy.setdefault(slot, threading.Lock())

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
        """The draft remembered for `main`, as it was named when remembered."""
        return self.defaults.get(self.model(main, engine).key)

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
        """The run `start` starts, not started yet: the pair is resolved and, unless `wait`,
        held from other runs now."""
        slots = self._slots(pair, seeded=settings.seed is not None)
        locks = self._locks(slots)
        if not wait:
            self._hold(locks, slots)

        def work(emit: Emit, should_stop: ShouldStop) -> GenerationStats:
            with ExitStack() as held:
                for lock in locks:
                    if wait:
                        lock.acquire()
                    held.callback(lock.release)
                stream = streamed(self._session(*slots), prompt, settings, continue_=continue_)
                return stream(emit, should_stop)

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
        """The pair's session for a caller that drives decoding itself (the teaching widget,
        a round at a time), held as a run holds it: refused while a run uses either model."""
        slots = self._slots(pair)
        locks = self._locks(slots)
        self._hold(locks, slots)
        try:
            yield self._session(*slots)
        finally:
            for lock in locks:
                lock.release()

    def _slots(self, pair: Pair | ModelReference, seeded: bool = False) -> Slots:
        """The pair's models with the options each opens with (exactness left open settled
        by whether the run is `seeded`); a draft that is the main model or cannot draft for
        it is refused."""
        if not isinstance(pair, Pair):
            pair = Pair(pair)
        options = (pair.options or self.options).settled(seeded)
        main_model = self.model(pair.main, pair.engine)
        draft = self.defaults.get(main_model.key) if pair.draft is DEFAULT else pair.draft
        main_slot = (main_model, options.for_main())
        if draft is None:
            return main_slot, None
        draft_model = self.model(draft, main_model.kind)
        require_draft(main_model, draft_model, self._verdicts)
        return main_slot, (draft_model, options.for_draft())

    def _locks(self, slots: Slots) -> list[threading.Lock]:
        """The pair's busy locks, in the one order every holder takes them."""
        ordered = sorted((s for s in slots if s is not None), key=_slot_order)
        with self._lock:
            return [self._busy_lock(slot) for slot in ordered]

    @staticmethod
    def _hold(locks: Sequence[threading.Lock], slots: Slots) -> None:
        """Take every lock now or none, naming the model that is busy (the main model asked
        for when it is, though the locks are taken in another order)."""
        ordered = sorted((s for s in slots if s is not None), key=_slot_order)
        main_lock = locks[ordered.index(slots[0])]
        taken: list[threading.Lock] = []
        for lock, (model, _) in zip(locks, ordered, strict=True):
            if not lock.acquire(blocking=False):
                for other in taken:
                    other.release()
                if main_lock not in taken and main_lock.locked():
                    model = slots[0][0]
                raise EngineBusyError(
                    f"{model.name} is generating for another run; cancel it or wait for its "
                    "result, or start this one with wait=True to queue it"
                )
            taken.append(lock)

    def _session(self, main: Slot, draft: Slot | None) -> Session:
        """The session of this pair, kept across runs while both engines stay loaded."""
        main_engine = self._engine(main)
        draft_engine = self._engine(draft) if draft is not None else None
        with self._lock:
            session = self._sessions.get((main, draft))
            if session is None or (session.main, session.draft) != (main_engine, draft_engine):
                session = self._sessions[(main, draft)] = Session(main_engine, draft_engine)
            return session

    def __repr__(self) -> str:
        loaded = ", ".join(model.name for model in self.loaded())
        return f"EngineManager(loaded=[{loaded}], budget={self.memory_budget / 1e9:.1f} GB)"


def _slot_order(slot: Slot) -> tuple[str, str, str]:
    model, options = slot
    return model.kind, model.key, repr(options)
