"""Kernel → Interrupt during `session.generate` gave a long traceback and lost the text; it
stops the run after its round and returns what it wrote, as `%%specdec` does."""

from __future__ import annotations

import itertools
import signal
import threading

from specdec_jupyter.engines.toy import ToyEngine, toy_pair
from specdec_jupyter.sessions.generation import Generation
from specdec_jupyter.sessions.session import Session


def test_an_interrupt_during_generate_stops_the_run_and_keeps_its_text(monkeypatch):
    reached, release, waiting = threading.Event(), threading.Event(), threading.Event()
    evaluate, cancel, calls = ToyEngine.evaluate, Generation.cancel, itertools.count(1)
    wait = Generation._wait

    def waits(run, ready, timeout=None):  # the caller waits for the result: interrupt it there
        waiting.set()
        return wait(run, ready, timeout)

    def held(engine, tokens, n_logits):
        if next(calls) == 6:  # a few rounds in, until the run is told to stop
            reached.set()
            release.wait(30)
        return evaluate(engine, tokens, n_logits)

    monkeypatch.setattr(ToyEngine, "evaluate", held)
    monkeypatch.setattr(Generation, "cancel", lambda run: (cancel(run), release.set()))
    monkeypatch.setattr(Generation, "_wait", waits)
    main_thread = threading.main_thread().ident
    assert threading.get_ident() == main_thread  # where the kernel's interrupt lands

    def interrupt() -> None:  # Kernel → Interrupt: SIGINT to the kernel's main thread
        if reached.wait(30) and waiting.wait(30):
            signal.pthread_kill(main_thread, signal.SIGINT)

    threading.Thread(target=interrupt, daemon=True).start()
    result = Session(*toy_pair()).generate("the main model", max_tokens=100_000, draft_tokens=2)
    assert release.is_set()  # the interrupt cancelled the run
    assert result.stats.stop_reason == "userStopped"
    assert 0 < result.stats.predicted_tokens_count < 1000  # the context holds 1024
    assert result.text == "".join(event.text for event in result.events)
