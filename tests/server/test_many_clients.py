"""Many clients at once on one server: eight of them through the `openai` client, streaming
and not, with different prompts, drafts, temperatures and seeds, while a ninth disconnects
mid-run. On an exact server (exact=True: a sequence's logits do not depend on what shares its
calls) every greedy or seeded reply is the one the same request gets alone, bit for bit, and
each reply's stats and provenance are its own.

Four sequences for nine requests, so some wait their turn and join as others leave. The ninth
is held by an engine tap at its first round, with every request on the model, until the test
has closed its stream and the server has cancelled its run: it leaves at the next round.
Run on the tiny pair (two drafts of one main model) and on the real Qwen pair.
"""

from __future__ import annotations

import shutil
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import openai
import pytest

from specdec_jupyter.engines.registry import ResolvedModel
from specdec_jupyter.engines.tap import EngineTap
from specdec_jupyter.server.app import SpecDecServer
from specdec_jupyter.server.serve import serving_in_background as running
from specdec_jupyter.server.served import ServedModels
from specdec_jupyter.sessions.manager import EngineManager, open_model
from specdec_jupyter.settings import LoadOptions
from tests.support.tiny_models import make_tiny_pair

TIMEOUT = 900.0
PARALLEL = 4
CANCELLED = "Count slowly from one to one thousand, one number a line."


@dataclass(frozen=True)
class Ask:
    """One request: its prompt and its body's other fields (the draft named or not)."""

    prompt: str
    stream: bool
    fields: dict = field(default_factory=dict)

    @property
    def reproducible(self) -> bool:
        return self.fields.get("temperature", 0) == 0 or "seed" in self.fields

    @property
    def fixed_k(self) -> bool:
        return isinstance(self.fields.get("draft_tokens"), int)


@dataclass
class Reply:
    text: str
    provenance: list[dict]
    stats: dict


@dataclass(frozen=True)
class Served:
    """A main model and two drafts a server offers: their ids, the main model's file, the
    folders they are found in, the server's load options."""

    main: str
    main_key: str
    drafts: tuple[str, str]
    folders: tuple[str, ...]
    options: LoadOptions


def asks(served: Served, words: list[str]) -> list[Ask]:
    first, second = served.drafts
    return [
        Ask(words[0], True, {"draft_model": first, "draft_tokens": 2}),
        Ask(words[1], False, {"draft_model": second}),
        Ask(words[2], True, {"draft_model": None, "draft_mode": "lookup"}),
        Ask(words[3], False, {"draft_model": first, "draft_mode": "hybrid"}),
        Ask(words[4], True, {"draft_model": first, "temperature": 0.8, "seed": 5}),
        Ask(
            words[5],
            False,
            {"draft_model": second, "temperature": 1.2, "seed": 9, "draft_tokens": 3},
        ),
        Ask(words[6], True, {"draft_model": None}),
        Ask(words[7], False, {"draft_model": first, "temperature": 0.7}),  # not reproducible
    ]


class HeldAtItsFirstRound(EngineTap):
    """The main model, holding every call once the cancelled request's sequence (its cache
    starting with `watched`) is past its prompt, while `gate` is closed."""

    def __init__(self, engine, watched: list[int], gate: threading.Event):
        super().__init__(engine)
        self.watched, self.gate = watched, gate
        self.widths: list[int] = []  # sequences in each call made for several (its views share it)

    def evaluate_many(self, calls):
        self.widths.append(len(calls))
        return super().evaluate_many(calls)

    def before(self, tokens, n_logits):
        n = len(self.watched)
        if list(tokens[:n]) == self.watched:  # reading its prompt (its cache may hold it already)
            return
        if self.tokens[:n] == self.watched:
            assert self.gate.wait(TIMEOUT), "the test never let the held round go"


class Watching(EngineManager):
    """The manager, opening the main model behind the tap and keeping each run by prompt."""

    def __init__(self, main_key: str, gate: threading.Event, options: LoadOptions):
        self.main_key, self.gate, self.runs = main_key, gate, {}
        super().__init__(options=options, engine_factory=self._open)

    def _open(self, model: ResolvedModel, options: LoadOptions):
        engine = open_model(model, options)
        if model.key != self.main_key:
            return engine
        watched = engine.chat_tokens([{"role": "user", "content": CANCELLED}])
        self.tap = HeldAtItsFirstRound(engine, watched, self.gate)
        return self.tap

    def wait_for_waiting(self, n: int) -> None:
        """Until `n` runs wait for a sequence of the main model (woken as each comes)."""
        batcher = self._sharing.batcher(self.tap)
        assert batcher.wait_for(lambda: batcher.waiting == n, TIMEOUT), "they never came"

    def start(self, prompt, *args, **kwargs):
        run = super().start(prompt, *args, **kwargs)
        self.runs[prompt[-1]["content"]] = run
        return run


def ask(client: openai.OpenAI, model: str, request: Ask, max_tokens: int) -> Reply:
    body = {
        "model": model,
        "messages": [{"role": "user", "content": request.prompt}],
        "max_tokens": max_tokens,
        "temperature": request.fields.get("temperature", 0),
        "extra_body": {k: v for k, v in request.fields.items() if k != "temperature"},
    }
    if not request.stream:
        whole = client.chat.completions.create(**body).model_dump()
        text = whole["choices"][0]["message"]["content"] or ""
        return Reply(text, whole["provenance"], whole["stats"])
    text, provenance, stats = "", [], {}
    for chunk in client.chat.completions.create(**body, stream=True):
        piece = chunk.model_dump()
        text += piece["choices"][0]["delta"].get("content") or ""
        provenance += piece.get("provenance") or []
        stats = piece.get("stats") or stats
    return Reply(text, provenance, stats)


def check_own(reply: Reply, request: Ask, max_tokens: int) -> None:
    """The stats and provenance are this request's: its draft, its token count."""
    stats = reply.stats
    assert stats["predicted_tokens_count"] == len(reply.provenance) <= max_tokens
    assert "".join(token["text"] for token in reply.provenance) == reply.text
    assert stats["accepted_draft_tokens_count"] == sum(
        token["source"] == "draft" for token in reply.provenance
    )
    mode = request.fields.get("draft_mode", "model")
    if mode == "hybrid":  # the draft model's own name, and the prompt's
        assert stats["draft_model"].endswith(" + prompt-lookup")
    else:
        expected = {"model": request.fields.get("draft_model"), "lookup": "prompt-lookup"}
        assert stats.get("draft_model") == expected[mode]


def many_clients(served: Served, words: list[str], max_tokens: int) -> None:
    gate = threading.Event()
    gate.set()  # open while each request runs alone
    manager = Watching(served.main_key, gate, served.options)
    requests = asks(served, words)
    held = Ask(CANCELLED, True, {"draft_model": served.drafts[0], "draft_tokens": 2})
    with running(SpecDecServer(manager, ServedModels(served.folders))) as base:
        client = openai.OpenAI(base_url=f"{base}/v1", api_key="x", timeout=TIMEOUT, max_retries=0)
        alone = [ask(client, served.main, request, max_tokens) for request in requests]
        whole = ask(client, served.main, held, 4 * max_tokens)

        gate.clear()
        manager.tap.widths.clear()
        with ThreadPoolExecutor(len(requests)) as pool:
            try:
                cancelled = client.chat.completions.create(
                    model=served.main,
                    messages=[{"role": "user", "content": CANCELLED}],
                    max_tokens=4 * max_tokens,
                    temperature=0,
                    stream=True,
                    extra_body=held.fields,
                )
                first = next(iter(cancelled)).model_dump()["provenance"]
                together = [pool.submit(ask, client, served.main, r, max_tokens) for r in requests]
                manager.wait_for_waiting(len(requests))  # all on the model, none joined yet
                cancelled.close()  # the client goes while its run is held at its first round
                run = manager.runs[CANCELLED]
                assert run._cancelled.wait(TIMEOUT), "the server never cancelled the run"
                gate.set()
                stats = run.result(TIMEOUT).stats
                replies = [future.result(TIMEOUT) for future in together]
            finally:
                gate.set()  # a failing check leaves no round held (and the pool can end)

    assert max(manager.tap.widths) == PARALLEL, "every sequence's tokens in one call"
    assert stats.stop_reason == "userStopped"
    assert first[0]["token_id"] == whole.provenance[0]["token_id"]
    assert stats.predicted_tokens_count < len(whole.provenance), "it left mid-run"
    for request, one, other in zip(requests, alone, replies, strict=True):
        check_own(one, request, max_tokens)
        check_own(other, request, max_tokens)
        if request.reproducible:
            assert other.text == one.text, request
            assert [t["token_id"] for t in other.provenance] == [
                t["token_id"] for t in one.provenance
            ]
        if request.fixed_k and request.reproducible:  # the same drafts, judged alike
            assert [t["source"] for t in other.provenance] == [t["source"] for t in one.provenance]


def test_eight_clients_on_the_tiny_pair(private_folders):
    folder = private_folders / "tiny"
    folder.mkdir()
    main, draft = make_tiny_pair(folder, weight_type="Q8_0")
    shutil.copy(draft, folder / "tiny-draft-2.gguf")
    options = LoadOptions(n_ctx=512, n_threads=1, exact=True, parallel=PARALLEL)
    served = Served(
        main.name, str(main.absolute()), (draft.name, "tiny-draft-2.gguf"), (str(folder),), options
    )
    words = ["the model token", "draft verify accept", "value index the value index",
             "result python", "function test", "the token draft", "verify the model",
             "accept value"]  # fmt: skip
    many_clients(served, words, max_tokens=24)


@pytest.mark.real
def test_eight_clients_on_the_real_pair(qwen_paths, private_folders):
    main, _ = qwen_paths
    options = LoadOptions(n_ctx=1024, exact=True, parallel=PARALLEL)
    served = Served(
        "qwen2.5-coder-1.5b",
        str(main.absolute()),
        ("qwen2.5-coder-0.5b", "qwen2.5-coder-0.5b"),
        (),
        options,
    )
    words = [
        "Write a quicksort in Python.",
        "Explain the Pythagorean theorem in two sentences.",
        "Repeat exactly: def add(a, b): return a + b",
        "Write a Python function that reverses a string.",
        "Name three prime numbers.",
        "Plan a one day trip to Washington DC.",
        "What is a hash map?",
        "Write a haiku about compilers.",
    ]
    many_clients(served, words, max_tokens=20)
