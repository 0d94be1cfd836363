"""EngineManager on the tiny models: loading once, the memory budget, drafts, background runs."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from specdec_jupyter.engines.llamacpp import LlamaCppEngine
from specdec_jupyter.engines.registry import EngineNote, ResolvedModel
from specdec_jupyter.engines.tap import EngineTap
from specdec_jupyter.errors import (
    ContextOverflowError,
    EngineBusyError,
    ModelFileError,
    SpecDecError,
)
from specdec_jupyter.models.drafts.defaults import DefaultDrafts
from specdec_jupyter.sessions.manager import EngineManager
from specdec_jupyter.sessions.pair import Pair
from specdec_jupyter.settings import LoadOptions
from tests.support.gated import interrupt_main_once_waiting, opening_on_cancel
from tests.support.tiny_models import write_tiny_gguf


class SlowEngine(EngineTap):
    """A tiny engine whose every evaluation takes `delay` seconds, so a run lasts long
    enough to be cancelled, interrupted or raced; with a `gate`, evaluations after the
    second wait for it, holding the run at a known step."""

    def __init__(self, engine: LlamaCppEngine, delay: float, gate: threading.Event | None):
        super().__init__(engine)
        self.delay, self.gate = delay, gate
        self.calls = 0

    def before(self, tokens, n_logits):
        self.calls += 1
        if self.gate is not None and self.calls > 2:
            self.gate.wait(30)
        time.sleep(self.delay)


class Factory:
    """Loads tiny engines (one thread, small context), counting loads."""

    def __init__(
        self, delay: float = 0.0, load_seconds: float = 0.0, gate: threading.Event | None = None
    ):
        self.delay, self.load_seconds, self.gate = delay, load_seconds, gate
        self.loads: list[str] = []

    def __call__(self, model: ResolvedModel, options: LoadOptions):
        self.loads.append(model.name)
        time.sleep(self.load_seconds)
        engine = LlamaCppEngine(
            model.path,
            n_ctx=256,
            n_threads=1,
            exact=bool(options.exact),
            n_seq=options.parallel or 1,
        )
        return SlowEngine(engine, self.delay, self.gate) if self.delay else engine


@pytest.fixture(autouse=True)
def private_folders(tmp_path, monkeypatch):
    monkeypatch.setenv("SPECDEC_CONFIG_DIR", str(tmp_path / "config"))
    monkeypatch.setenv("SPECDEC_CACHE_DIR", str(tmp_path / "cache"))


@pytest.fixture
def models(tiny_paths, tmp_path) -> dict[str, Path]:
    main, draft = tiny_paths
    other_draft = tmp_path / "tiny-draft-2.gguf"
    shutil.copy(draft, other_draft)
    return {
        "main": main,
        "draft": draft,
        "draft2": other_draft,
        "other": write_tiny_gguf(tmp_path / "other.gguf", vocab="other"),
    }


def manager_with(factory: Factory, **options) -> EngineManager:
    return EngineManager(engine_factory=factory, **options)


def wait_for_events(run, count: int) -> None:
    deadline = time.monotonic() + 30
    while len(run.events) < count and not run.done:
        assert time.monotonic() < deadline, "the run produced no events"
        time.sleep(0.005)


def test_two_threads_asking_for_one_model_load_it_once(models):
    factory = Factory(load_seconds=0.3)
    manager = manager_with(factory)
    engines = []
    threads = [
        threading.Thread(target=lambda: engines.append(manager.engine(models["main"])))
        for _ in range(2)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert factory.loads == ["tiny-main.gguf"]
    assert engines[0] is engines[1]
    manager.close()


def test_the_least_recently_used_idle_model_is_evicted(models):
    size = models["main"].stat().st_size
    factory = Factory()
    manager = manager_with(factory, memory_budget=int(size * 2.5))
    first = manager.engine(models["main"])
    manager.engine(models["draft"])
    manager.engine(models["main"])  # used again: now the draft is the least recent
    manager.engine(models["draft2"])
    assert [p.name for p in manager.loaded()] == ["tiny-main.gguf", "tiny-draft-2.gguf"]
    assert manager.engine(models["main"]) is first, "still loaded, not loaded again"
    assert factory.loads == ["tiny-main.gguf", "tiny-draft.gguf", "tiny-draft-2.gguf"]
    manager.close()
    assert manager.loaded() == {}


def test_a_run_generates_in_the_background_with_the_named_draft(models):
    manager = manager_with(Factory())
    run = manager.start("hello world", Pair(models["main"], models["draft"]), raw=True,
                        max_tokens=12, draft_tokens=3)  # fmt: skip
    result = run.result(timeout=60)
    assert result.stats.predicted_tokens_count == len(result.events) > 0
    assert result.stats.draft_model == "tiny-draft"
    assert [e.text for e in run] == [e.text for e in result.events], "iterating replays all"
    plain = manager.generate("hello world", Pair(models["main"], None), raw=True, max_tokens=5)
    assert plain.stats.draft_model is None
    manager.close()


def test_an_unusable_draft_is_refused_before_anything_loads(models, tmp_path):
    factory = Factory()
    manager = manager_with(factory)
    cut = tmp_path / "cut.gguf"
    cut.write_bytes(models["draft"].read_bytes()[:4096])
    with pytest.raises(ModelFileError, match="cut.gguf"):
        manager.start("hi", Pair(models["main"], cut))
    assert factory.loads == []
    with pytest.raises(ModelFileError):
        manager.set_default_draft(models["main"], cut)
    with pytest.raises(SpecDecError, match="cannot draft for itself"):
        manager.start("hi", Pair(models["main"], models["main"]))


def test_cancel_stops_between_rounds_and_keeps_the_text(models):
    manager = manager_with(Factory(delay=0.02))
    run = manager.start("hello world", Pair(models["main"], models["draft"]), raw=True,
                        max_tokens=200, draft_tokens=2)  # fmt: skip
    wait_for_events(run, 3)
    run.cancel()
    result = run.result(timeout=30)
    assert result.stats.stop_reason == "userStopped"
    assert 3 <= len(result.events) < 200
    assert result.text == "".join(e.text for e in result.events)
    manager.close()


def test_a_keyboard_interrupt_while_waiting_cancels_and_keeps_the_text(
    models, interrupts_raise, monkeypatch
):
    gate = threading.Event()  # the run is held at its third evaluation until the interrupt
    manager = manager_with(Factory(delay=0.02, gate=gate))
    run = manager.start("hello world", models["main"], raw=True, max_tokens=200)
    wait_for_events(run, 2)
    opening_on_cancel(monkeypatch, gate)
    interrupter = threading.Thread(target=interrupt_main_once_waiting)
    interrupter.start()
    result = run.result(timeout=30)  # catches the interrupt, waits for the round to end
    interrupter.join()
    assert result.stats.stop_reason == "userStopped"
    assert 2 <= len(result.events) < 200
    manager.close()


def test_a_run_past_the_parallel_sequences_is_refused_or_queued(models):
    manager = manager_with(Factory(delay=0.02), parallel=1)
    first = manager.start("hello", models["main"], raw=True, max_tokens=200)
    wait_for_events(first, 1)
    with pytest.raises(EngineBusyError, match="tiny-main.gguf is generating.*wait=True"):
        manager.start("world", models["main"], raw=True, max_tokens=3)
    with pytest.raises(EngineBusyError):
        manager.unload(models["main"])
    queued = manager.start("world", models["main"], raw=True, max_tokens=3, wait=True)
    first.cancel()
    assert first.result(timeout=30).stats.stop_reason == "userStopped"
    assert queued.result(timeout=30).stats.predicted_tokens_count == 3
    manager.close()


def test_the_busy_error_names_the_main_model_asked_for(models):
    manager = manager_with(Factory(delay=0.02), parallel=1)
    pair = Pair(models["main"], models["draft"])
    first = manager.start("hello", pair, raw=True, max_tokens=200)
    wait_for_events(first, 1)
    with pytest.raises(EngineBusyError, match="^tiny-main.gguf is generating"):
        manager.start("world", pair, raw=True, max_tokens=3)
    first.cancel()
    first.result(timeout=30)
    manager.close()


def test_a_failed_run_raises_to_its_reader_and_frees_the_model(models):
    manager = manager_with(Factory())
    run = manager.start("hello world " * 200, models["main"], raw=True)
    with pytest.raises(ContextOverflowError, match="shorten the prompt"):
        run.result(timeout=30)
    with pytest.raises(ContextOverflowError):
        list(run)
    assert manager.generate("hello", models["main"], raw=True, max_tokens=2).text
    manager.unload(models["main"])
    assert manager.loaded() == {}


def test_switching_the_draft_during_a_run_applies_to_the_next_run(models):
    manager = manager_with(Factory(delay=0.02))
    manager.set_default_draft(models["main"], models["draft"])
    first = manager.start("hello", models["main"], raw=True, max_tokens=200, draft_tokens=2)
    wait_for_events(first, 2)
    manager.set_default_draft(models["main"], models["draft2"])
    manager.engine(models["draft2"])  # even loading the new draft now does not disturb the run
    first.cancel()
    assert first.result(timeout=30).stats.draft_model == "tiny-draft"
    second = manager.generate("hello", models["main"], raw=True, max_tokens=3)
    assert second.stats.draft_model == "tiny-draft-2"
    manager.close()


def test_the_default_draft_survives_a_restart(models, tmp_path):
    EngineManager().set_default_draft(models["main"], models["draft"])
    read_back = subprocess.run(
        [sys.executable, "-c",
         "import sys; from pathlib import Path; "
         "from specdec_jupyter.models.drafts.defaults import DefaultDrafts; "
         "print(DefaultDrafts().get(sys.argv[1]))", str(models["main"])],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    assert read_back.stdout.strip() == str(models["draft"])
    assert EngineManager().default_draft(models["main"]) == str(models["draft"])
    DefaultDrafts().set(str(models["main"]), None)
    assert EngineManager().default_draft(models["main"]) is None


def test_a_deleted_default_draft_leaves_the_main_model_running_alone(models):
    """Issue 23 W5: every run without an explicit draft failed "model file not found"."""
    manager = manager_with(Factory())
    manager.set_default_draft(models["main"], models["draft2"])
    models["draft2"].unlink()
    with pytest.warns(EngineNote, match="default draft of tiny-main.gguf cannot be used"):
        result = manager.generate("hello", models["main"], raw=True, max_tokens=3)
    assert result.stats.draft_model is None and result.text
    manager.close()


@pytest.mark.parametrize("how", ["touched", "renamed over"])
def test_a_model_file_replaced_on_disk_is_loaded_again(models, tmp_path, how):
    """Issue 23 C5: after `touch` or write-then-rename every run failed "load it again"
    until a restart."""
    factory = Factory()
    manager = manager_with(factory)
    main = tmp_path / "main.gguf"
    shutil.copy(models["main"], main)
    first = manager.generate("hello", Pair(main, None), raw=True, max_tokens=3)
    if how == "touched":
        os.utime(main, ns=(main.stat().st_atime_ns, main.stat().st_mtime_ns + 10**9))
    else:
        fresh = tmp_path / "main.gguf.new"
        shutil.copy(models["main"], fresh)
        os.utime(fresh, ns=(fresh.stat().st_atime_ns, main.stat().st_mtime_ns + 10**9))
        fresh.replace(main)
    again = manager.generate("hello", Pair(main, None), raw=True, max_tokens=3)
    assert again.text == first.text
    assert factory.loads == ["main.gguf", "main.gguf"]
    assert len(manager.loaded()) == 1, "the engine of the old file was closed"
    manager.close()
