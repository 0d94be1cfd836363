"""EngineManager: loaded models on demand, a memory budget, default drafts, background runs.

    manager = EngineManager()
    manager.set_default_draft("qwen2.5-coder-1.5b", "qwen2.5-coder-0.5b")  # remembered
    run = manager.start("Write a quicksort in Python.", main="qwen2.5-coder-1.5b")
    run.result()                       # or iterate `run`, or `run.cancel()`
    manager.start(prompt, main=..., draft=None)          # no draft this time
    manager.start(prompt, main=..., draft="path/to/draft.gguf")  # loaded just in time
    with manager.hold(main, draft) as session: ...       # drive the decoding yourself

Models are named by catalog key, path, or a name `specdec-jupyter models list`
shows. Each loaded model counts its size on disk against `memory_budget`; loading
one more evicts the least recently used idle models. A run holds its main and
draft models until it ends: a second run on either is refused (EngineBusyError) or,
with `wait=True`, queued. Drafts are checked before they load and refused with the
verdict's reasons; a draft chosen while a run goes on is used from the next run.
"""

from __future__ import annotations

import os
import threading
from collections import OrderedDict
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path

from .decoding.events import GenerationStats
from .engines.base import Engine
from .errors import EngineBusyError, MemoryBudgetError, SpecDecError
from .generation import Emit, Generation, ShouldStop
from .models.defaults import DefaultDrafts
from .models.discovery import locate
from .models.metadata import fingerprint
from .models.verdicts import DraftVerdict, VerdictStore, check_draft
from .result import GenerationResult
from .session import ModelReference, Prompt, Session

EngineFactory = Callable[[Path], Engine]


class _UseDefault:
    def __repr__(self) -> str:
        return "DEFAULT"


DEFAULT = _UseDefault()  # `draft=DEFAULT`: the draft remembered for this main model, if any


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


def llamacpp_factory(n_ctx: int, n_threads: int | None) -> EngineFactory:
    """The default way to load a model: GGUF files on llama.cpp (pass another factory for
    MLX folders, or a wrapped engine in tests)."""

    def load(path: Path) -> Engine:
        from .engines.llamacpp import LlamaCppEngine

        if path.is_dir():
            raise SpecDecError(
                f"{path} is an MLX folder; this manager runs GGUF files with llama.cpp. "
                "Pass an engine_factory that loads MLX folders, or pick a .gguf model"
            )
        return LlamaCppEngine(path, n_ctx=n_ctx, n_threads=n_threads)

    return load


class EngineManager:
    """Loaded engines shared by every run of one notebook (or process); thread-safe."""

    def __init__(
        self,
        *,
        memory_budget: int | None = None,
        n_ctx: int = 4096,
        n_threads: int | None = None,
        engine_factory: EngineFactory | None = None,
        defaults: DefaultDrafts | None = None,
        verdicts: VerdictStore | None = None,
    ):
        self.memory_budget = memory_budget or default_memory_budget()
        self.defaults = defaults or DefaultDrafts()
        self._factory = engine_factory or llamacpp_factory(n_ctx, n_threads)
        self._verdicts = verdicts
        self._lock = threading.Lock()  # guards everything below
        self._loaded: OrderedDict[Path, _Loaded] = OrderedDict()  # least recently used first
        self._loading: dict[Path, Future[Engine]] = {}
        self._reserved = 0  # bytes of models being loaded right now
        self._busy: dict[Path, threading.Lock] = {}  # held by the run using the model
        self._sessions: dict[tuple[Path, Path | None], Session] = {}

    # -- models ----------------------------------------------------------------

    def path_of(self, model: ModelReference) -> Path:
        """Where a model reference points (catalog models are fetched on first use)."""
        return Path(os.path.abspath(locate(model, fetch=True)))

    def engine(self, model: ModelReference) -> Engine:
        """The loaded engine of `model`, loading it once however many threads ask.

        The manager may close an engine it evicts; runs started with `start` are safe
        from that, an engine kept from here is not.
        """
        return self._engine(self.path_of(model))

    def loaded(self) -> dict[Path, int]:
        """Loaded models and their estimated bytes, least recently used first."""
        with self._lock:
            return {path: loaded.size for path, loaded in self._loaded.items()}

    def unload(self, model: ModelReference) -> None:
        path = self.path_of(model)
        with self._lock:
            if self._busy_lock(path).locked():
                raise EngineBusyError(f"{path.name} is generating; cancel the run first")
            if path in self._loaded:
                self._evict(path)

    def close(self) -> None:
        """Unload every model that no run is using."""
        with self._lock:
            for path in [p for p in self._loaded if not self._busy_lock(p).locked()]:
                self._evict(path)

    def _engine(self, path: Path) -> Engine:
        with self._lock:
            if path in self._loaded:
                self._loaded.move_to_end(path)
                return self._loaded[path].engine
            future = self._loading.get(path)
            loading_elsewhere = future is not None
            if future is None:
                size = fingerprint(path)[0]
                self._make_room(size, path)
                future = self._loading[path] = Future()
                self._reserved += size
        if loading_elsewhere:
            return future.result()
        return self._load(path, size, future)

    def _load(self, path: Path, size: int, future: Future[Engine]) -> Engine:
        try:
            engine = self._factory(path)
        except BaseException as exc:
            with self._lock:
                del self._loading[path]
                self._reserved -= size
            future.set_exception(exc)
            raise
        with self._lock:
            del self._loading[path]
            self._reserved -= size
            self._loaded[path] = _Loaded(engine, size)
        future.set_result(engine)
        return engine

    def _make_room(self, size: int, path: Path) -> None:
        """Evict idle models, least recently used first, until `size` more bytes fit."""
        while self._reserved + sum(m.size for m in self._loaded.values()) + size > (
            self.memory_budget
        ):
            idle = [p for p in self._loaded if not self._busy_lock(p).locked()]
            if not idle:
                used = sum(m.size for m in self._loaded.values()) + self._reserved
                raise MemoryBudgetError(
                    f"{path.name} needs about {size / 1e9:.2f} GB, but {used / 1e9:.2f} GB of "
                    f"the {self.memory_budget / 1e9:.2f} GB budget is held by running models; "
                    "wait for them, or raise memory_budget"
                )
            self._evict(idle[0])

    def _evict(self, path: Path) -> None:
        loaded = self._loaded.pop(path)
        for key in [k for k in self._sessions if path in k]:
            del self._sessions[key]
        loaded.engine.close()

    def _busy_lock(self, path: Path) -> threading.Lock:
        return self._busy.setdefault(path, threading.Lock())

    # -- drafts ------------------------------------------------------------------

    def check_draft(self, main: ModelReference, draft: ModelReference) -> DraftVerdict:
        """Can `draft` draft for `main`? Per engine, with reasons (cached until files change)."""
        return check_draft(self.path_of(main), self.path_of(draft), store=self._verdicts)

    def default_draft(self, main: ModelReference) -> str | None:
        return self.defaults.get(self.path_of(main))

    def set_default_draft(self, main: ModelReference, draft: ModelReference | None) -> None:
        """Remember `draft` for `main` (None: no draft). An incompatible draft is refused."""
        if draft is not None:
            self.check_draft(main, draft).require_compatible()
        self.defaults.set(self.path_of(main), draft)

    # -- generation ----------------------------------------------------------------

    def start(
        self,
        prompt: Prompt,
        *,
        main: ModelReference,
        draft: ModelReference | _UseDefault | None = DEFAULT,
        wait: bool = False,
        **options,
    ) -> Generation:
        """Start generating on a worker thread; `options` are those of `Session.stream`.

        Models load inside the run. While another run uses the main or the draft model
        this raises EngineBusyError, unless `wait=True` queues the run behind it.
        """
        main_path, draft_path = self._pair(main, draft)
        paths, locks = self._locks(main_path, draft_path)
        if not wait:
            self._hold(locks, paths)

        def work(emit: Emit, should_stop: ShouldStop) -> GenerationStats:
            with ExitStack() as held:
                for lock in locks:
                    if wait:
                        lock.acquire()
                    held.callback(lock.release)
                session = self._session(main_path, draft_path)
                for event in session.stream(prompt, should_stop=should_stop, **options):
                    emit(event)
                assert session.last_stats is not None
                return session.last_stats

        return Generation(work, name=f"specdec {main_path.name}")

    def generate(self, prompt: Prompt, **options) -> GenerationResult:
        """`start(...)` and wait for the result; Ctrl-C stops after the current round."""
        return self.start(prompt, **options).result()

    @contextmanager
    def hold(
        self, main: ModelReference, draft: ModelReference | _UseDefault | None = DEFAULT
    ) -> Iterator[Session]:
        """The pair's session for a caller that drives decoding itself (the teaching widget,
        a round at a time), held as a run holds it: refused while a run uses either model."""
        main_path, draft_path = self._pair(main, draft)
        paths, locks = self._locks(main_path, draft_path)
        self._hold(locks, paths)
        try:
            yield self._session(main_path, draft_path)
        finally:
            for lock in locks:
                lock.release()

    def _pair(
        self, main: ModelReference, draft: ModelReference | _UseDefault | None
    ) -> tuple[Path, Path | None]:
        """The pair's paths; a draft that is the main model or cannot draft for it is refused."""
        main_path = self.path_of(main)
        if isinstance(draft, _UseDefault):
            draft = self.defaults.get(main_path)
        draft_path = None if draft is None else self.path_of(draft)
        if draft_path == main_path:
            raise SpecDecError(
                f"{main_path.name} cannot draft for itself (it would use the same cache); "
                "pick a smaller model of its family, or no draft"
            )
        if draft_path is not None:
            check_draft(main_path, draft_path, store=self._verdicts).require_compatible()
        return main_path, draft_path

    def _locks(self, *models: Path | None) -> tuple[list[Path], list[threading.Lock]]:
        """The models' paths and busy locks, in the one order every holder takes them."""
        paths = sorted(p for p in models if p is not None)
        with self._lock:
            return paths, [self._busy_lock(path) for path in paths]

    @staticmethod
    def _hold(locks: Sequence[threading.Lock], paths: Sequence[Path]) -> None:
        """Take every lock now or none, naming the model that is busy."""
        taken: list[threading.Lock] = []
        for lock, path in zip(locks, paths, strict=True):
            if not lock.acquire(blocking=False):
                for other in taken:
                    other.release()
                raise EngineBusyError(
                    f"{path.name} is generating for another run; cancel it or wait for its "
                    "result, or start this one with wait=True to queue it"
                )
            taken.append(lock)

    def _session(self, main: Path, draft: Path | None) -> Session:
        """The session of this pair, kept across runs while both engines stay loaded."""
        main_engine = self._engine(main)
        draft_engine = self._engine(draft) if draft is not None else None
        with self._lock:
            session = self._sessions.get((main, draft))
            if session is None or (session.main, session.draft) != (main_engine, draft_engine):
                session = self._sessions[(main, draft)] = Session(main_engine, draft_engine)
            return session

    def __repr__(self) -> str:
        loaded = ", ".join(path.name for path in self.loaded())
        return f"EngineManager(loaded=[{loaded}], budget={self.memory_budget / 1e9:.1f} GB)"
