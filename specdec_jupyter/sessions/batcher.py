"""Many requests on one main model: its sequences handed out, and their rounds run together.

An engine holds `n_seq` sequences (engines/base.py); a `SequencePool` says which are free. A
`Batcher` runs every request on one main engine on a thread of its own: each round it plays the
rounds of all of them as one (`loop.play_round`: draft calls batched per draft engine, one
main-model call for all). A request joins at a round boundary when a sequence of the main
engine (and one of its draft engine) is free, first come first served; it leaves when it ends,
or at the next round once its reader cancels it, and its sequences go to the next in line. The
order in which requests pick their draft lengths (each knowing what those before it put in the
call) turns every round, so that none always chooses last. One request alone goes through the
same rounds.

A `Request` is what a reader holds: the run's events as they come (`events`), then its stats or
its error (`outcome`). The run itself is built when it joins, on the sequences it was given.
"""

from __future__ import annotations

import queue
import threading
from collections import deque
from collections.abc import Callable, Iterator, Sequence

from ..decoding.events import GenerationStats, TokenEvent
from ..decoding.loop import Run, play_round
from ..engines.base import Engine, common_prefix_length
from ..errors import EngineBusyError

BuildRun = Callable[[Engine, Engine | None], Run]  # (main sequence, draft sequence) -> run
_END = object()  # the request has ended: its stats or error are set


class SequencePool:
    """Which sequences of an engine are in use; whoever waits for one hears of each release."""

    def __init__(self, engine: Engine):
        self.engine = engine
        self._lock = threading.Lock()
        self._free = list(range(engine.n_seq))
        self._index: dict[int, int] = {}  # id of a leased sequence -> its index
        self._listeners: list[Callable[[], None]] = []

    @property
    def size(self) -> int:
        return self.engine.n_seq

    @property
    def in_use(self) -> int:
        with self._lock:
            return self.size - len(self._free)

    def lease(self, prompt: Sequence[int] = ()) -> Engine | None:
        """A free sequence, or None: the one whose cache holds the longest start of `prompt`
        (a conversation's next turn finds its earlier turns there, as llama-server picks the
        slot most like the prompt), of those alike the lowest."""
        with self._lock:
            if not self._free:
                return None
            index = max(
                self._free,
                key=lambda i: (common_prefix_length(self.engine.sequence(i).tokens, prompt), -i),
            )
            self._free.remove(index)
            sequence = self.engine.sequence(index)
            self._index[id(sequence)] = index
            return sequence

    def release(self, sequence: Engine) -> None:
        with self._lock:
            self._free.append(self._index.pop(id(sequence)))
            self._free.sort()
            listeners = list(self._listeners)
        for listener in listeners:
            listener()

    def listen(self, listener: Callable[[], None]) -> None:
        with self._lock:
            if listener not in self._listeners:
                self._listeners.append(listener)


class Request:
    """One run on its way through a batcher: built from `build` once it has a main sequence
    and, when `draft` is a pool, a draft sequence; read with `events()` then `outcome()`.
    `prompt` and `draft_prompt` (the prompt in each model's tokens) pick the sequences whose
    caches hold most of them."""

    def __init__(
        self,
        build: BuildRun,
        draft: SequencePool | None = None,
        prompt: Sequence[int] = (),
        draft_prompt: Sequence[int] = (),
    ):
        self.build, self.draft = build, draft
        self.prompt, self.draft_prompt = prompt, draft_prompt
        self.run: Run | None = None
        self.sequences: tuple[Engine, Engine | None] | None = None
        self.stats: GenerationStats | None = None
        self.error: BaseException | None = None
        self._items: queue.SimpleQueue[object] = queue.SimpleQueue()
        self._cancelled = threading.Event()
        self._ended = threading.Event()

    def cancel(self) -> None:
        """End after the current round (or before joining); what was generated stands."""
        self._cancelled.set()

    @property
    def cancelled(self) -> bool:
        return self._cancelled.is_set()

    def events(self) -> Iterator[TokenEvent]:
        """The run's events as they come, until it ends."""
        while (item := self._items.get()) is not _END:
            yield item  # type: ignore[misc]

    def outcome(self) -> GenerationStats:
        """Once ended: the run's stats, or the error it ended with, raised."""
        self._ended.wait()
        if self.error is not None:
            raise self.error
        assert self.stats is not None
        return self.stats

    def wait(self) -> None:
        self._ended.wait()

    # -- the batcher's side ------------------------------------------------------------

    def join(self, main: Engine) -> bool:
        """Build the run on `main` and a draft sequence; False when no draft sequence is free."""
        draft = None
        if self.draft is not None:
            draft = self.draft.lease(self.draft_prompt)
            if draft is None:
                return False
        self.sequences = (main, draft)
        self.run = self.build(main, draft)
        return True

    def deliver(self) -> None:
        assert self.run is not None
        for event in self.run.take_events():
            self._items.put(event)

    def end(self, stats: GenerationStats | None, error: BaseException | None = None) -> None:
        self.stats, self.error = stats, error
        self._ended.set()
        self._items.put(_END)


class Batcher:
    """Every request on one main engine, run together on one thread (see the module's doc).
    `pool` hands out the engine's sequences (shared with whoever else leases them)."""

    def __init__(self, pool: SequencePool):
        self.pool = pool
        self._lock = threading.Condition()
        self._waiting: deque[Request] = deque()
        self._active: list[Request] = []
        self._serving = False
        self._turn = 0
        pool.listen(self._wake)

    @property
    def waiting(self) -> int:
        with self._lock:
            return len(self._waiting)

    @property
    def active(self) -> int:
        with self._lock:
            return len(self._active)

    def wait_for(self, ready: Callable[[], bool], timeout: float | None = None) -> bool:
        """Block until `ready()` (asked again whenever requests come, join or leave) or the
        timeout; whether it is. For whoever watches the queue: a monitor, a test."""
        with self._lock:
            return self._lock.wait_for(ready, timeout)

    def submit(self, request: Request, *, wait: bool = True) -> None:
        """Queue `request`; unless `wait`, refuse it (EngineBusyError) when no sequence would
        be free for it now."""
        with self._lock:
            if not wait and self.pool.size - self.pool.in_use <= len(self._waiting):
                name = getattr(self.pool.engine, "name", "the model")
                raise EngineBusyError(
                    f"{name} is generating for {self.pool.size} other run(s), its parallel "
                    "sequences; stop one or wait for it, or load it with more parallel sequences"
                )
            self._waiting.append(request)
            if not self._serving:
                self._serving = True
                threading.Thread(target=self._serve, name="specdec batcher", daemon=True).start()
            self._lock.notify_all()

    def _wake(self) -> None:
        with self._lock:
            self._lock.notify_all()

    def _serve(self) -> None:
        try:
            while self._next_round():
                pass
        except BaseException as exc:  # a fault of the batcher itself: no reader waits forever
            with self._lock:
                stranded = [*self._active, *self._waiting]
                self._active.clear()
                self._waiting.clear()
                self._serving = False
            for request in stranded:
                request.end(None, exc)
            raise

    def _next_round(self) -> bool:
        """Admit who can join, start them, play one round; False once nothing is left."""
        with self._lock:
            joining = self._admit()
            while not (self._active or joining):
                if not self._waiting:
                    self._serving = False
                    return False
                self._lock.wait()  # every sequence is held elsewhere: until one is released
                joining = self._admit()
        for request in joining:
            self._start(request)
        with self._lock:
            active = [r for r in self._active if r.run is not None and not r.run.done]
        for request in active:
            if request.cancelled:
                request.run.finish("userStopped")  # type: ignore[union-attr]
        playing = [r for r in active if not r.run.done]  # type: ignore[union-attr]
        self._turn = (self._turn + 1) % max(len(playing), 1)
        play_round([r.run for r in playing[self._turn :] + playing[: self._turn]])  # type: ignore[misc]
        for request in active:
            request.deliver()
        for request in [r for r in self._active if r.run is None or r.run.done]:
            self._leave(request)
        return True

    def _admit(self) -> list[Request]:
        """Waiting requests that get sequences now, in the order they came (holding the lock)."""
        joining = []
        while self._waiting:
            request = self._waiting[0]
            if request.cancelled:
                self._waiting.popleft()
                request.end(GenerationStats(stop_reason="userStopped"))
                continue
            main = self.pool.lease(request.prompt)
            if main is None:
                break
            try:
                joined = request.join(main)
            except Exception as exc:
                self.pool.release(main)
                self._waiting.popleft()
                request.end(None, exc)
                continue
            if not joined:  # its draft engine has no free sequence: until one is released
                self.pool.release(main)
                assert request.draft is not None
                request.draft.listen(self._wake)
                break
            self._waiting.popleft()
            self._active.append(request)
            joining.append(request)
        if joining:
            self._lock.notify_all()
        return joining

    def _start(self, request: Request) -> None:
        """Read its prompt and take its first token (a failure ends it alone)."""
        assert request.run is not None
        try:
            request.run.start()
        except Exception as exc:
            request.run.fail(exc)
        request.deliver()

    def _leave(self, request: Request) -> None:
        """Give back its sequences, then tell its reader it has ended."""
        with self._lock:
            self._active.remove(request)
            self._lock.notify_all()
        if request.sequences is not None:
            main, draft = request.sequences
            if draft is not None and request.draft is not None:
                request.draft.release(draft)
            self.pool.release(main)
        run = request.run
        if run is not None and run.error is not None:
            request.end(run.stats, run.error)
        else:
            request.end(run.stats if run is not None else None)


class Sharing:
    """The sequence pools and batchers of the engines some sessions share: a session of its own
    (`load()`), or every session of an EngineManager."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._pools: dict[int, SequencePool] = {}
        self._batchers: dict[int, Batcher] = {}

    def pool(self, engine: Engine) -> SequencePool:
        with self._lock:
            pool = self._pools.get(id(engine))
            if pool is None or pool.engine is not engine:
                pool = self._pools[id(engine)] = SequencePool(engine)
            return pool

    def batcher(self, engine: Engine) -> Batcher:
        pool = self.pool(engine)
        with self._lock:
            batcher = self._batchers.get(id(engine))
            if batcher is None or batcher.pool is not pool:
                batcher = self._batchers[id(engine)] = Batcher(pool)
            return batcher

    def forget(self, engine: Engine) -> None:
        """An engine closed: its pool and batcher go with it."""
        with self._lock:
            self._pools.pop(id(engine), None)
            self._batchers.pop(id(engine), None)
