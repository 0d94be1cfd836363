"""Runs held at a known step: a toy engine whose calls after the second wait for a gate, and a
manager that keeps each run it starts, so a test can act while a run is in flight and then
watch it end (no sleeps, no polling)."""

from __future__ import annotations

import _thread
import sys
import threading
import time

from specdec_jupyter.engines.registry import ResolvedModel
from specdec_jupyter.engines.tap import EngineTap
from specdec_jupyter.sessions.generation import Generation
from specdec_jupyter.sessions.manager import EngineManager, open_model
from specdec_jupyter.settings import LoadOptions

TIMEOUT = 120.0


class GatedToy(EngineTap):
    """An engine whose evaluations after the second wait for `gate`; `reached` is set when
    one is waiting there."""

    def __init__(self, engine, gate: threading.Event, reached: threading.Event | None = None):
        super().__init__(engine)
        self.gate, self.calls = gate, 0
        self.reached = reached or threading.Event()

    def before(self, tokens, n_logits):
        self.calls += 1
        if self.calls > 2:
            self.reached.set()
            assert self.gate.wait(TIMEOUT), "the test never opened the gate"


class RecordingManager(EngineManager):
    """The manager, keeping each run it starts and each engine it opens (gated); `reached` is
    set when a run waits at the gate, `started` released once for each run. A run can reach
    the gate before `start` has returned it: `run(i)` waits for it to be kept."""

    def __init__(self, gate: threading.Event, **kwargs):
        self.gate, self.runs, self.engines = gate, [], []
        self.reached = threading.Event()
        self.started = threading.Semaphore(0)
        self._kept = threading.Condition()
        super().__init__(engine_factory=self._open, **kwargs)

    def _open(self, model: ResolvedModel, options: LoadOptions):
        engine = GatedToy(open_model(model, options), self.gate, self.reached)
        self.engines.append(engine)
        return engine

    def start(self, *args, **kwargs):
        run = super().start(*args, **kwargs)
        with self._kept:
            self.runs.append(run)
            self._kept.notify_all()
        self.started.release()
        return run

    def run(self, index: int) -> Generation:
        """The run started `index`-th (from 0), once `start` has kept it."""
        with self._kept:
            assert self._kept.wait_for(lambda: len(self.runs) > index, TIMEOUT), "no such run"
            return self.runs[index]


def interrupt_main_once_in(function: str, then: threading.Event | None = None) -> None:
    """What Ctrl-C (or Jupyter's interrupt) does, sent once the main thread is inside
    `function` (an interrupt sent before would land elsewhere, and a timer cannot know when
    that is: the main thread's frames are watched); `then` is set after it, to let a held run
    go on."""
    main = threading.main_thread().ident
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        frame = sys._current_frames().get(main)
        while frame is not None and frame.f_code.co_name != function:
            frame = frame.f_back
        if frame is not None:
            _thread.interrupt_main()
            if then is not None:
                then.set()
            return
        time.sleep(0.001)
    raise AssertionError(f"the main thread never ran {function}")


def interrupt_main_once_waiting() -> None:
    """The interrupt, once the main thread waits on a run (`Generation._wait`). A held run
    must go on only once the wait has cancelled it (`opening_on_cancel`): opened at the
    interrupt, it could end before the main thread handles it."""
    interrupt_main_once_in("_wait")


def opening_on_cancel(monkeypatch, gate: threading.Event) -> None:
    """Open `gate` when a run is cancelled, so a run held there goes on after its cancel."""
    cancel = Generation.cancel

    def cancel_then_open(run: Generation) -> None:
        cancel(run)
        gate.set()

    monkeypatch.setattr(Generation, "cancel", cancel_then_open)


def assert_cancelled_keeping_tokens(manager: RecordingManager, asked: int) -> None:
    """The manager's first run was cancelled while held at the gate, then (the gate opened)
    ended as stopped by the user, keeping fewer tokens than `asked`."""
    run = manager.run(0)
    assert run._cancelled.wait(TIMEOUT), "the server did not cancel the run"
    manager.gate.set()
    stats = run.result(TIMEOUT).stats
    assert stats.stop_reason == "userStopped"
    assert stats.predicted_tokens_count < asked
