"""Many requests on one model: their rounds share its calls, and each gets what it gets alone.

The tiny pair with Q8_0 matrices, loaded exact: a sequence's logits do not depend on what
else its call holds (tests/engines/test_sequences.py), so every request, greedy or seeded,
whatever it drafts with, must give the tokens it gives alone, bit for bit. An engine tap holds
the first request at its first call until the others are queued, so that they share calls.
"""

from __future__ import annotations

import itertools
import shutil
import threading
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

from specdec_jupyter import load
from specdec_jupyter.decoding.drafter_choice import make_drafter
from specdec_jupyter.decoding.loop import Run, speculative_decode
from specdec_jupyter.engines.llamacpp import LlamaCppEngine
from specdec_jupyter.engines.tap import EngineTap
from specdec_jupyter.engines.toy import toy_engine
from specdec_jupyter.errors import SpecDecError
from specdec_jupyter.sessions import batcher as batcher_module
from specdec_jupyter.sessions.batcher import Request, Sharing
from specdec_jupyter.settings import RunSettings
from tests.support.recording import drain
from tests.support.tiny_models import make_tiny_pair

TIMEOUT = 60
REQUESTS = [  # (prompt, draft: 0 / 1 the two draft engines, None: none; settings)
    ("the model token draft", 0, RunSettings(max_tokens=24, draft_tokens=2)),
    ("verify accept value index", 1, RunSettings(max_tokens=20, draft_mode="hybrid")),
    ("python function test the", None, RunSettings(max_tokens=16, draft_mode="lookup")),
    ("result index value", 0, RunSettings(max_tokens=24, temperature=0.9, seed=7)),
    ("the the model model", 1, RunSettings(max_tokens=12, temperature=1.3, seed=3, top_k=20)),
    ("draft verify", None, RunSettings(max_tokens=18, use_draft=False)),
]


class Watched(EngineTap):
    """An engine whose calls are recorded, shared by all its sequences' taps: how many
    sequences each main-model call held; while `gate` is closed, calls wait for it."""

    def __init__(self, engine, gate: threading.Event, widths: list[int]):
        super().__init__(engine)
        self.gate, self.widths = gate, widths

    def before(self, tokens, n_logits):
        assert self.gate.wait(TIMEOUT), "the test never opened the gate"

    def evaluate_many(self, calls):
        self.widths.append(len(calls))
        return super().evaluate_many(calls)


class Stepped(EngineTap):
    """An engine whose every call waits for a permit the test gives (`allow`)."""

    def __init__(self, engine):
        super().__init__(engine)
        self.permits = threading.Semaphore(0)

    def allow(self, calls: int) -> None:
        self.permits.release(calls)

    def before(self, tokens, n_logits):
        assert self.permits.acquire(timeout=TIMEOUT), "the test never allowed this call"


@pytest.fixture(scope="module")
def exact_paths(tmp_path_factory):
    folder = tmp_path_factory.mktemp("batched")
    main, draft = make_tiny_pair(folder, weight_type="Q8_0")
    other = folder / "tiny-draft-2.gguf"
    shutil.copy(draft, other)
    return main, draft, other


def _engine(path, n_seq: int) -> LlamaCppEngine:
    return LlamaCppEngine(path, n_ctx=256, n_threads=1, exact=True, n_seq=n_seq)


def _tokens(engine, prompt: str) -> list[int]:
    return engine.tokenize(prompt)


@pytest.fixture(scope="module")
def alone(exact_paths) -> list[list[int]]:
    """Each request's tokens when it runs by itself, on engines of one sequence."""
    main, *drafts = (_engine(path, 1) for path in exact_paths)
    try:
        results = []
        for prompt, which, settings in REQUESTS:
            draft = None if which is None else drafts[which]
            mode = settings.draft_mode or ("model" if draft is not None else None)
            drafter = make_drafter(mode, draft) if settings.use_draft else None
            events, _ = drain(speculative_decode(main, drafter, _tokens(main, prompt), settings))
            results.append([event.token_id for event in events])
        return results
    finally:
        for engine in (main, *drafts):
            engine.close()


def _build(prompt: str, which: int | None, settings: RunSettings, main_engine):
    def build(main, draft):
        mode = settings.draft_mode or ("model" if draft is not None else None)
        drafter = make_drafter(mode, draft) if settings.use_draft else None
        return Run(main, drafter, _tokens(main_engine, prompt), settings)

    return build


def test_requests_batched_together_each_get_what_they_get_alone(exact_paths, alone):
    gate, widths = threading.Event(), []
    main = Watched(_engine(exact_paths[0], 4), gate, widths)
    drafts = [_engine(path, 4) for path in exact_paths[1:]]
    sharing = Sharing()
    batcher = sharing.batcher(main)
    requests = []
    for prompt, which, settings in REQUESTS:
        pool = None if which is None else sharing.pool(drafts[which])
        request = Request(_build(prompt, which, settings, main), pool)
        batcher.submit(request)  # the first joins and waits at the gate; the others queue
        requests.append(request)
    assert batcher.wait_for(lambda: batcher.waiting + batcher.active == len(REQUESTS), TIMEOUT)
    gate.set()
    got = [[event.token_id for event in request.events()] for request in requests]
    stats = [request.outcome() for request in requests]
    assert got == alone
    assert [s.predicted_tokens_count for s in stats] == [len(tokens) for tokens in alone]
    assert max(widths) == 4, "four requests (the main model's sequences) shared its calls"
    assert sharing.pool(main).in_use == 0 and batcher.wait_for(lambda: batcher.active == 0, 1)


def test_a_cancelled_request_leaves_at_the_next_round_and_the_others_finish(exact_paths, alone):
    main = Stepped(_engine(exact_paths[0], 2))
    draft = _engine(exact_paths[1], 2)
    sharing = Sharing()
    batcher = sharing.batcher(main)
    chosen = [REQUESTS[0], REQUESTS[3], REQUESTS[2]]  # two at once; the third waits its turn
    requests = [
        Request(_build(prompt, which, settings, main), sharing.pool(draft) if which == 0 else None)
        for prompt, which, settings in chosen
    ]
    for request in requests:
        batcher.submit(request)
    main.allow(1)  # the first request's prompt read: its first token
    cancelled = requests[0]
    first = next(cancelled.events())
    cancelled.cancel()
    main.allow(10_000)
    rest = [event.token_id for event in cancelled.events()]
    stats = cancelled.outcome()
    assert stats.stop_reason == "userStopped"
    kept = [first.token_id, *rest]
    # The batcher may already have put this request's draft into the round it holds at the
    # main model's gate when the cancel comes: that round ends, and no other begins for it.
    in_flight = chosen[0][2].draft_tokens + 1
    assert kept == alone[0][: len(kept)] and len(kept) <= 1 + in_flight, "no round after it"
    for request, expected in zip(requests[1:], [alone[3], alone[2]], strict=True):
        assert [event.token_id for event in request.events()] == expected
        assert request.outcome().stop_reason != "userStopped"


def test_a_request_failing_alone_fails_alone(exact_paths, alone):
    main = _engine(exact_paths[0], 2)
    sharing = Sharing()
    batcher = sharing.batcher(main)
    too_long = Request(lambda m, d: Run(m, None, [5] * 300, RunSettings(max_tokens=4)))
    fine = Request(_build(*REQUESTS[5][:1], None, REQUESTS[5][2], main))
    batcher.submit(too_long)
    batcher.submit(fine)
    with pytest.raises(SpecDecError, match="context"):
        too_long.outcome()
    assert [event.token_id for event in fine.events()] == alone[5]


def test_a_request_with_no_free_sequence_is_refused_or_waits(exact_paths):
    gate = threading.Event()
    main = Watched(_engine(exact_paths[0], 1), gate, [])
    sharing = Sharing()
    batcher = sharing.batcher(main)
    settings = RunSettings(max_tokens=3, use_draft=False)
    first = Request(_build("the model", None, settings, main))
    batcher.submit(first, wait=False)
    with pytest.raises(SpecDecError, match="parallel sequences"):
        batcher.submit(Request(_build("the draft", None, settings, main)), wait=False)
    second = Request(_build("the draft", None, settings, main))
    batcher.submit(second)  # waits its turn
    gate.set()
    assert len(list(first.events())) == 3 and len(list(second.events())) == 3


def test_threads_on_a_parallel_session_each_get_what_they_get_alone():
    """`load(..., parallel=3)`: three threads generating at once on one session (two chat
    widgets, two %%specdec cells on threads), each with its own stats."""
    session = load("toy-trigram", "toy-bigram", parallel=3, progress=False)
    runs = [
        ("the cat sat on", {"draft_tokens": 3}),
        ("the dog ran to", {"temperature": 0.8, "seed": 11, "draft_mode": "hybrid"}),
        ("the main model", {"draft_mode": "lookup", "temperature": 1.1, "seed": 2}),
    ]
    alone = [session.generate(prompt, raw=True, **options) for prompt, options in runs]
    with ThreadPoolExecutor(len(runs)) as pool:
        together = list(
            pool.map(lambda r: session.generate(r[0], raw=True, **r[1]), runs, timeout=TIMEOUT)
        )
    for one, other in zip(alone, together, strict=True):
        assert other.token_ids == one.token_ids
        assert other.stats.predicted_tokens_count == len(other.events)
        assert other.stats.draft_model == one.stats.draft_model
    assert np.mean([len(r.events) for r in together]) > 5


def test_requests_take_turns_choosing_first_and_join_first_come_first_served(monkeypatch):
    """Two sequences, four requests held until all are queued: the waiting ones join in the
    order they came, as sequences free up, and the order in which the runs of a round choose
    their draft lengths (each knowing what those before it put in the call) turns every
    round, so none always chooses last."""
    gate, orders = threading.Event(), []
    main = Watched(toy_engine("toy-trigram", n_seq=2), gate, [])
    play = batcher_module.play_round

    def recorded(runs):
        orders.append([id(run) for run in runs])
        play(runs)

    monkeypatch.setattr(batcher_module, "play_round", recorded)
    batcher = Sharing().batcher(main)
    requests = []
    held = [batcher.pool.lease(), batcher.pool.lease()]  # none joins before all are queued
    for n, prompt in enumerate(["the cat", "the dog", "the model", "the draft"]):
        settings = RunSettings(max_tokens=6 + 2 * n, use_draft=False)
        requests.append(Request(_build(prompt, None, settings, main)))
        batcher.submit(requests[-1])
    for sequence in held:
        batcher.pool.release(sequence)
    assert batcher.wait_for(lambda: batcher.waiting == 2 and batcher.active == 2, TIMEOUT)
    gate.set()
    for request in requests:
        request.outcome()
    first_round = [
        next(i for i, order in enumerate(orders) if id(request.run) in order)
        for request in requests
    ]
    assert first_round[0] == first_round[1] == 0 < first_round[2] <= first_round[3], "in turn"
    pairs = [order for order in orders if len(order) == 2]
    assert len(pairs) >= 4 and all(a != b for a, b in itertools.pairwise(pairs)), "turns"


def test_a_request_gets_the_free_sequence_that_holds_most_of_its_prompt():
    """As llama-server picks the slot most like the prompt: a conversation's next turn finds
    its earlier turns; a prompt no cache holds gets the lowest free sequence."""
    engine = toy_engine("toy-trigram", n_seq=3)
    pool = Sharing().pool(engine)
    chat = engine.tokenize("the model token draft verify")
    engine.sequence(2).evaluate(chat, 1)
    engine.sequence(1).evaluate(chat[:2], 1)
    assert pool.lease([*chat, 7, 8]) is engine.sequence(2)
    assert pool.lease([chat[0] + 1, 5]) is engine.sequence(0)
    assert pool.lease(chat) is engine.sequence(1)
    assert pool.lease(chat) is None


def test_a_session_continues_a_conversation_on_the_sequences_that_hold_it():
    """The session hands the prompt, in each model's tokens, to the sequence choice: a prompt
    another sequence already holds goes there, on the main model and on the draft."""
    session = load("toy-trigram", "toy-bigram", parallel=2, progress=False)
    held = session.prompt_tokens("the dog ran to the", raw=True)
    session.main.sequence(1).evaluate(held, 1)
    session.draft.sequence(1).evaluate(held, 1)
    result = session.generate("the dog ran to the", raw=True, max_tokens=4, draft_tokens=2)
    for engine in (session.main, session.draft):
        assert engine.sequence(0).tokens == [], "the lowest sequence stayed free"
        assert engine.sequence(1).tokens[: len(held)] == held
    assert result.stats.total_draft_tokens_count > 0
