"""What an impatient user does to a session (issue 23 D1): Ctrl-C during `generate` keeps the
text and the stats, as a cancel does."""

from __future__ import annotations

import subprocess
import sys
import threading

from specdec_jupyter.engines.toy import toy_pair
from specdec_jupyter.sessions.session import Session
from tests.support.gated import GatedToy, interrupt_main_once_waiting, opening_on_cancel


def test_ctrl_c_in_generate_keeps_the_text_and_the_stats(interrupts_raise, monkeypatch):
    """It lost every token, and `last_stats` still held the previous run's."""
    main, draft = toy_pair()
    gate = threading.Event()
    session = Session(GatedToy(main, gate), draft)
    gate.set()
    before = session.generate("the cat", raw=True, max_tokens=2, use_draft=False)
    gate.clear()
    session.main.calls = 0
    opening_on_cancel(monkeypatch, gate)
    interrupter = threading.Thread(target=interrupt_main_once_waiting)
    interrupter.start()
    result = session.generate("the cat sat on", raw=True, max_tokens=500, draft_tokens=2)
    interrupter.join()
    assert result.stats.stop_reason == "userStopped"
    assert result.text and result.stats.predicted_tokens_count == len(result.events) < 500
    assert session.last_stats is result.stats is not before.stats


def test_a_closed_session_refuses_to_run_instead_of_ending_the_process(tiny_paths):
    """Issue 23 C1: `s.close(); s.generate("hi")` exited with SIGSEGV (139): a dead kernel."""
    code = (
        "import sys\n"
        "from specdec_jupyter import load\n"
        "s = load(sys.argv[1], n_ctx=64, n_threads=1, progress=False)\n"
        "s.close()\n"
        "try:\n"
        "    s.generate('hi', raw=True, max_tokens=2)\n"
        "except Exception as exc:\n"
        "    print(type(exc).__name__, exc)\n"
        "try:\n"
        "    s.main.evaluate([1], 1)\n"
        "except Exception as exc:\n"
        "    print(type(exc).__name__, exc)\n"
    )
    lines = python_on(code, tiny_paths[0]).splitlines()
    assert lines[0].startswith("ClosedError this session of tiny-main was closed")
    assert lines[1].startswith("ClosedError tiny-main was closed")


def test_closing_from_another_thread_during_a_run_ends_it_with_an_error(tiny_paths):
    """C1: `close()` from another thread during a generation ended the process too. The
    call in flight ends first; the run's next call is refused."""
    code = (
        "import sys, threading\n"
        "from specdec_jupyter import load\n"
        "from specdec_jupyter.engines.tap import EngineTap\n"
        "s = load(sys.argv[1], n_ctx=256, n_threads=1, progress=False)\n"
        "closed = threading.Event()\n"
        "class CloseAtThird(EngineTap):\n"
        "    calls = 0\n"
        "    def before(self, tokens, n_logits):\n"
        "        self.calls += 1\n"
        "        if self.calls == 3:\n"
        "            threading.Thread(target=lambda: (s.close(), closed.set())).start()\n"
        "            closed.wait(60)\n"
        "s.main = CloseAtThird(s.main)\n"
        "try:\n"
        "    s.generate('hello', raw=True, max_tokens=100)\n"
        "except Exception as exc:\n"
        "    print(type(exc).__name__)\n"
    )
    assert python_on(code, tiny_paths[0]).strip() == "ClosedError"


def python_on(code: str, model: object) -> str:
    """What `code` prints in a Python of its own, given `model`'s path; a crash (SIGSEGV is
    a dead kernel) fails the test."""
    done = subprocess.run(
        [sys.executable, "-c", code, str(model)], capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout
