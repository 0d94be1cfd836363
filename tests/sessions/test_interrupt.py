"""Kernel → Interrupt during `session.generate` gave a long traceback and lost the text; it
stops the run after its round and returns what it wrote, as `%%specdec` does."""

from __future__ import annotations

import signal
import threading

from specdec_jupyter.engines.toy import toy_pair
from specdec_jupyter.sessions.generation import Generation
from specdec_jupyter.sessions.session import Session
from tests.support.held_toy import hold_toy_until_cancelled


def test_an_interrupt_during_generate_stops_the_run_and_keeps_its_text(
    interrupts_raise, monkeypatch
):
    reached, waiting, cancelled = hold_toy_until_cancelled(monkeypatch), threading.Event(), []
    wait, cancel = Generation._wait, Generation.cancel

    def waits(run, ready, timeout=None):  # the caller waits for the result: interrupt it there
        waiting.set()
        return wait(run, ready, timeout)

    monkeypatch.setattr(Generation, "_wait", waits)
    monkeypatch.setattr(Generation, "cancel", lambda run: (cancelled.append(run), cancel(run)))
    main_thread = threading.main_thread().ident
    assert threading.get_ident() == main_thread  # where the kernel's interrupt lands

    def interrupt() -> None:  # Kernel → Interrupt: SIGINT to the kernel's main thread
        if reached.wait(30) and waiting.wait(30):
            signal.pthread_kill(main_thread, signal.SIGINT)

    threading.Thread(target=interrupt, daemon=True).start()
    result = Session(*toy_pair()).generate("the main model", max_tokens=100_000, draft_tokens=2)
    assert cancelled  # the interrupt cancelled the run
    assert result.stats.stop_reason == "userStopped"
    assert 0 < result.stats.predicted_tokens_count < 1000  # the context holds 1024
    assert result.text == "".join(event.text for event in result.events)


def test_generate_in_a_notebook_counts_the_tokens_while_it_runs(monkeypatch):
    """`session.generate` showed nothing for a minute, then the whole reply: in a notebook a
    bar counts the tokens as they come (not in a terminal, nor with progress=False)."""
    from specdec_jupyter.sessions import session as module

    shown: list = []
    monkeypatch.setattr(module, "in_notebook", lambda: True)
    monkeypatch.setattr(module, "default_display", lambda: shown.append)
    result = Session(*toy_pair()).generate("the main model", max_tokens=40, draft_tokens=2)
    assert {(p.stage, p.unit, p.total) for p in shown} == {("generating", "tokens", 40)}
    done = [p.done for p in shown]
    assert done == sorted(done) and len(set(done)) > 5  # as the tokens came, not at the end
    assert shown[-1].finished and result.stats.predicted_tokens_count == 40
    shown.clear()
    Session(*toy_pair()).generate("the main model", max_tokens=8, progress=False)
    assert shown == []
