"""Progress while people wait: the event type, its terminal line, and real llama.cpp loads
(the tiny generated GGUF, the real Qwen2.5-Coder-0.5B) reporting through it."""

from __future__ import annotations

import io
import os
import pty
import subprocess
import sys
from pathlib import Path

import llama_cpp
import pytest
from IPython.utils.capture import capture_output

from specdec_jupyter.display.progress import NotebookBar, TerminalLine, showing
from specdec_jupyter.models.gguf.llama_load import load_model
from specdec_jupyter.progress import STEPS, Progress, Tracker, current_listener, reporting_to
from specdec_jupyter.sessions.manager import EngineManager
from specdec_jupyter.sessions.pair import Pair
from specdec_jupyter.sessions.service import EngineService
from tests.support.real_models import catalog_file


def check_one_step(events: list[Progress], stage: str, name: str) -> None:
    """A step's events: all named, fractions never going back, from 0 to exactly one 1.0."""
    assert events, "no progress was reported"
    assert {(e.stage, e.name) for e in events} == {(stage, name)}
    fractions = [e.fraction for e in events]
    assert fractions == sorted(fractions) and len(set(fractions)) == len(fractions)
    assert fractions[0] == 0.0 and fractions[-1] == 1.0
    assert [e.finished for e in events].count(True) == 1


def test_a_tracker_reports_each_mark_once_and_never_goes_back():
    events: list[Progress] = []
    tracker = Tracker("converting", "m", 1000, "tensors", listener=events.append)
    for done in (1, 2, 3, 500, 400, 499, 999, 2000):
        tracker.update(done)
    tracker.finish()
    assert [e.done for e in events] == [0, 500, 999, 1000]
    assert events[1].describe() == "converting m: 50% (500 of 1000 tensors)"
    check_one_step(events, "converting", "m")


def test_bytes_are_described_in_megabytes_and_gigabytes():
    event = Progress("fetching", "qwen2.5-coder-1.5b", 480e6, 1117320768, "B")
    assert event.describe() == "fetching qwen2.5-coder-1.5b: 43% (480 MB of 1.12 GB)"


def test_a_big_step_is_reported_at_most_steps_plus_one_times():
    events: list[Progress] = []
    tracker = Tracker("converting", "m", 10**6, listener=events.append)
    for _ in range(10**4):
        tracker.advance(100)
    assert len(events) == STEPS + 1
    check_one_step(events, "converting", "m")


def test_the_listener_is_the_blocks_and_none_keeps_the_outer_one():
    outer: list[Progress] = []
    assert current_listener() is None
    with reporting_to(outer.append), reporting_to(None), showing(True):
        Tracker("loading", "m", 1.0).finish()
    assert [e.fraction for e in outer] == [0.0, 1.0]
    assert current_listener() is None


class FakeTerminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_the_terminal_line_rewrites_itself_and_is_erased_at_the_end():
    terminal = FakeTerminal()
    line = TerminalLine(terminal)
    tracker = Tracker("loading", "qwen2.5-coder-0.5b", 1.0, listener=line)
    tracker.update(0.5)
    tracker.finish()
    written = terminal.getvalue()
    assert "\n" not in written and written.count("\r") == 3
    assert "[############............] loading qwen2.5-coder-0.5b: 50%" in written
    assert written.endswith("\r\x1b[K")


def test_the_terminal_line_is_quiet_when_not_a_terminal():
    log = io.StringIO()
    Tracker("loading", "m", 1.0, listener=TerminalLine(log)).finish()
    assert log.getvalue() == ""


def test_the_notebook_bar_is_one_widget_updated_in_place(shell):
    bar = NotebookBar()
    with capture_output() as captured:
        tracker = Tracker("loading", "tiny-main", 1.0, listener=bar)
        tracker.update(0.5)
        assert (bar.bar.value, bar.bar.bar_style, bar.label.value) == (
            0.5,
            "",
            "loading tiny-main: 50%",
        )
        Tracker("loading", "tiny-draft", 1.0, listener=bar).finish()
    assert len(captured.outputs) == 1  # displayed once, reused by the next step
    assert (bar.bar.value, bar.bar.bar_style) == (1.0, "success")
    assert bar.label.value == "loading tiny-draft: 100%"


def test_a_tiny_gguf_load_reports_progress_named_by_its_stem(tiny_paths):
    events: list[Progress] = []
    with reporting_to(events.append):
        model, _ = load_model(tiny_paths[0], vocab_only=False)
        llama_cpp.llama_model_free(model)
        vocab, _ = load_model(tiny_paths[0], vocab_only=True)  # no weights: nothing to report
        llama_cpp.llama_model_free(vocab)
    check_one_step(events, "loading", tiny_paths[0].stem)


class Cancelled(Exception):
    pass


def test_a_listener_that_raises_cancels_the_load(tiny_paths):
    def cancel_midway(event: Progress) -> None:
        if event.fraction > 0:
            raise Cancelled

    with reporting_to(cancel_midway), pytest.raises(Cancelled):
        load_model(tiny_paths[0], vocab_only=False)
    model, _ = load_model(tiny_paths[0], vocab_only=False)  # the next load is unharmed
    llama_cpp.llama_model_free(model)


def test_the_real_draft_model_loads_with_progress_under_its_catalog_name():
    path = catalog_file("qwen2.5-coder-0.5b")
    manager = EngineManager(n_ctx=256, n_threads=1)
    events: list[Progress] = []
    EngineService("llama.cpp", manager).prepare(Pair(str(path), None), on_progress=events.append)
    check_one_step(events, "loading", "qwen2.5-coder-0.5b")
    assert len(events) > 10  # llama.cpp reports tensor by tensor, not just start and end
    manager.close()


def run_cli_on(stderr: int, tiny: Path) -> subprocess.Popen:
    command = [sys.executable, "-m", "specdec_jupyter.cli", "generate", "--main", str(tiny)]
    command += ["--no-draft", "--max-tokens", "2", "--n-ctx", "256", "--prompt", "hello"]
    return subprocess.Popen(command, stdout=subprocess.PIPE, stderr=stderr)


def test_the_cli_shows_a_line_on_a_terminal_and_nothing_in_a_pipe(tiny_paths):
    piped = run_cli_on(subprocess.PIPE, tiny_paths[0])
    _, errors = piped.communicate(timeout=120)
    assert piped.returncode == 0, errors
    assert b"loading" not in errors and b"\r" not in errors

    controller, terminal = pty.openpty()
    on_terminal = run_cli_on(terminal, tiny_paths[0])
    os.close(terminal)
    shown = b""
    while True:  # read until the process closes the terminal, so it never blocks writing
        try:
            chunk = os.read(controller, 4096)
        except OSError:  # EIO: the other end is closed
            break
        if not chunk:
            break
        shown += chunk
    os.close(controller)
    assert on_terminal.wait(timeout=120) == 0
    assert f"] loading {tiny_paths[0].stem}: ".encode() in shown and b"\r\x1b[K" in shown
