"""The server, run for real on a free loopback port and driven by the official `openai` client
and by plain HTTP requests: the toy pair, the tiny GGUF pair, and (marked real) the Qwen pair."""

from __future__ import annotations

import json
import logging
import socket
import threading
from concurrent.futures import ThreadPoolExecutor

import httpx
import openai
import pytest

import specdec_jupyter as sd
from specdec_jupyter.engines.registry import ResolvedModel
from specdec_jupyter.errors import ModelLoadError
from specdec_jupyter.server.app import SpecDecServer
from specdec_jupyter.server.serve import serving_in_background as running
from specdec_jupyter.server.served import ServedModels
from specdec_jupyter.sessions.manager import EngineManager, open_model
from specdec_jupyter.settings import LoadOptions
from tests.support.gated import GatedToy, RecordingManager, assert_cancelled_keeping_tokens
from tests.support.tiny_models import make_tiny_pair, write_tiny_gguf

TOY_PROMPT = "the cat sat on"
TIMEOUT = 120.0


@pytest.fixture(scope="module")
def tiny_folder(private_folders):
    folder = private_folders / "tiny"
    folder.mkdir()
    make_tiny_pair(folder)
    write_tiny_gguf(folder / "other.gguf", vocab="other")
    return folder


@pytest.fixture(scope="module")
def url(tiny_folder):
    manager = EngineManager(n_ctx=256, n_threads=1)
    with running(SpecDecServer(manager, ServedModels([tiny_folder]))) as base:
        yield base


@pytest.fixture(scope="module")
def client(url) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{url}/v1", api_key="unused", max_retries=0, timeout=TIMEOUT)


def chat_body(model: str, content: str = TOY_PROMPT, **extra) -> dict:
    return {"model": model, "messages": [{"role": "user", "content": content}], **extra}


def check_stats(body: dict) -> None:
    """Drafted = accepted + rejected + ignored; accepted = draft tokens in the provenance;
    the provenance's texts are the reply."""
    stats, tokens = body["stats"], body["provenance"]
    assert stats["total_draft_tokens_count"] == (
        stats["accepted_draft_tokens_count"]
        + stats["rejected_draft_tokens_count"]
        + stats["ignored_draft_tokens_count"]
    )
    assert stats["accepted_draft_tokens_count"] == sum(t["source"] == "draft" for t in tokens)
    assert stats["predicted_tokens_count"] == len(tokens)


def test_models_list_in_lm_studio_and_openai_shapes(url, client):
    listed = httpx.get(f"{url}/api/v0/models").json()["data"]
    toy = next(m for m in listed if m["id"] == "toy-trigram")
    assert set(toy) >= {
        "id", "object", "type", "publisher", "arch", "compatibility_type",
        "quantization", "state", "max_context_length",
    }  # fmt: skip
    tiny = next(m for m in listed if m["id"] == "tiny-main.gguf")
    assert tiny["compatibility_type"] == "gguf"
    assert httpx.get(f"{url}/api/v0/models/tiny-main.gguf").json()["id"] == "tiny-main.gguf"
    assert {m.id for m in client.models.list()} >= {"toy-trigram", "tiny-main.gguf"}


@pytest.mark.parametrize(
    ("main", "draft"), [("toy-trigram", "toy-bigram"), ("tiny-main.gguf", "tiny-draft.gguf")]
)
def test_seed_request_with_draft_model_carries_stats(url, main, draft):
    """The seed's own request: `curl … /api/v0/chat/completions` with "draft_model"."""
    body = chat_body(main, draft_model=draft, temperature=0, max_tokens=24, draft_tokens=3)
    reply = httpx.post(f"{url}/api/v0/chat/completions", json=body, timeout=TIMEOUT)
    assert reply.status_code == 200, reply.text
    data = reply.json()
    assert data["object"] == "chat.completion"
    assert data["stats"]["draft_model"] == draft
    assert data["stats"]["total_draft_tokens_count"] > 0
    assert set(data["model_info"]) == {"arch", "quant", "format", "context_length"}
    assert data["runtime"]["name"] == "specdec_jupyter"
    assert data["usage"]["completion_tokens"] == data["stats"]["predicted_tokens_count"]
    check_stats(data)
    text = "".join(t["text"] for t in data["provenance"])
    assert data["choices"][0]["message"]["content"] == text


@pytest.mark.parametrize(
    ("main", "draft"), [("toy-trigram", "toy-bigram"), ("tiny-main.gguf", "tiny-draft.gguf")]
)
def test_streamed_text_equals_whole_text_at_temperature_0(client, main, draft):
    settings = {
        "model": main,
        "messages": [{"role": "user", "content": TOY_PROMPT}],
        "temperature": 0,
        "max_tokens": 24,
        "extra_body": {"draft_model": draft, "draft_tokens": 3},
    }
    whole = client.chat.completions.create(**settings)
    chunks = list(
        client.chat.completions.create(
            **settings, stream=True, stream_options={"include_usage": True}
        )
    )
    streamed = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert streamed == whole.choices[0].message.content
    last = chunks[-1].model_extra
    tokens = [t for c in chunks for t in c.model_extra["provenance"]]
    check_stats({"stats": last["stats"], "provenance": tokens})
    assert (
        last["stats"]["accepted_draft_tokens_count"]
        == whole.model_extra["stats"]["accepted_draft_tokens_count"]
    )
    assert chunks[-1].usage.completion_tokens == len(tokens)
    assert chunks[-1].choices[0].finish_reason == whole.choices[0].finish_reason == "length"


def test_text_completions_on_both_paths(url, client):
    whole = client.completions.create(
        model="toy-trigram", prompt=TOY_PROMPT, max_tokens=12, temperature=0
    )
    reply = httpx.post(
        f"{url}/api/v0/completions",
        json={"model": "toy-trigram", "prompt": TOY_PROMPT, "max_tokens": 12, "temperature": 0},
    )
    assert reply.json()["choices"][0]["text"] == whole.choices[0].text != ""


def test_eight_clients_four_requests_each_all_finish_unmixed(url):
    prompts = [f"the {word} sat on" for word in ("cat", "dog", "main", "draft")]
    expected = {}
    for prompt in prompts:
        body = chat_body("toy-trigram", prompt, draft_model="toy-bigram", max_tokens=32)
        expected[prompt] = httpx.post(f"{url}/v1/chat/completions", json=body).json()

    def client_run(n: int) -> list[tuple[str, str]]:
        with httpx.Client(timeout=TIMEOUT) as http:
            results = []
            for i in range(4):
                prompt = prompts[(n + i) % len(prompts)]
                body = chat_body("toy-trigram", prompt, draft_model="toy-bigram", max_tokens=32)
                reply = http.post(f"{url}/v1/chat/completions", json=body)
                assert reply.status_code == 200, reply.text
                results.append((prompt, reply.json()["choices"][0]["message"]["content"]))
            return results

    with ThreadPoolExecutor(8) as pool:
        results = [r for batch in pool.map(client_run, range(8)) for r in batch]
    assert len(results) == 32
    for prompt, text in results:
        assert text == expected[prompt]["choices"][0]["message"]["content"]


@pytest.mark.parametrize(
    ("path", "body", "status", "words"),
    [
        ("/v1/chat/completions", chat_body("nope"), 404, "not served here"),
        ("/v1/chat/completions", chat_body("/etc/passwd"), 404, "not served here"),
        (
            "/v1/chat/completions",
            chat_body("toy-trigram", draft_model="/tmp/x.gguf"),
            404,
            "not served here",
        ),
        ("/v1/chat/completions", chat_body("toy-trigram", temperature=-1), 400, "temperature"),
        ("/v1/chat/completions", chat_body("toy-trigram", max_tokens=10**6), 400, "max_tokens"),
        ("/v1/chat/completions", chat_body("toy-trigram", draft_mode="x"), 400, "draft_mode"),
        ("/v1/chat/completions", {"model": "toy-trigram"}, 400, "messages"),
        ("/v1/completions", {"model": "toy-trigram", "prompt": 3}, 400, "prompt"),
        (
            "/v1/chat/completions",
            chat_body("toy-trigram", " ".join(["cat"] * 2000)),
            413,
            "context",
        ),
    ],
)
def test_bad_input_gets_its_status_and_message(url, path, body, status, words):
    reply = httpx.post(f"{url}{path}", json=body, timeout=TIMEOUT)
    assert reply.status_code == status, reply.text
    error = reply.json()["error"]
    assert words in error["message"] and error["type"]


def test_the_server_says_what_it_is_doing_one_line_per_request(url, caplog):
    """As LM Studio's server window: model, draft, tokens, tokens/s, accepted/drafted and
    status for each request, streamed or not; a failed one says its status and why."""
    caplog.set_level(logging.INFO, logger="specdec_jupyter.server")
    body = chat_body("tiny-main.gguf", draft_model="tiny-draft.gguf", temperature=0)
    body |= {"max_tokens": 12, "draft_tokens": 3}
    whole = httpx.post(f"{url}/v1/chat/completions", json=body, timeout=TIMEOUT).json()
    streamed = httpx.post(
        f"{url}/api/v0/chat/completions", json=body | {"stream": True}, timeout=TIMEOUT
    )
    assert streamed.text.rstrip().endswith("data: [DONE]")  # read to the end: the line is out
    missing = httpx.post(f"{url}/v1/chat/completions", json=chat_body("no-such-model"))
    assert missing.status_code == 404
    lines = [r.getMessage() for r in caplog.records if r.name == "specdec_jupyter.server"]
    assert len(lines) == 3, lines
    stats = whole["stats"]
    accepted = stats["accepted_draft_tokens_count"]
    assert lines[0] == (
        f"POST /v1/chat/completions · model tiny-main.gguf · draft {stats['draft_model']}"
        f" · 12 tokens · {stats['tokens_per_second']:.1f} tok/s"
        f" · accepted {accepted}/{stats['total_draft_tokens_count']} drafted"
        " · 200 (maxPredictedTokensReached)"
    )
    assert lines[1].startswith("POST /api/v0/chat/completions · model tiny-main.gguf · draft ")
    assert " · 12 tokens · " in lines[1] and lines[1].endswith(" · 200 (maxPredictedTokensReached)")
    assert lines[2].startswith("POST /v1/chat/completions · model no-such-model · 404 (")
    assert "no-such-model" in lines[2][len("POST /v1/chat/completions · model no-such-model") :]


def test_a_draft_of_another_vocabulary_is_listed_apart_and_drafts_text(url):
    listed = httpx.get(f"{url}/api/v0/drafts/tiny-main.gguf", timeout=TIMEOUT).json()
    groups = {entry["id"]: entry["group"] for entry in listed["compatible"]}
    assert groups["tiny-draft.gguf"] == "same vocabulary"
    assert groups["other.gguf"] == "another vocabulary"
    assert list(groups.values()).index("another vocabulary") > 0, "the same vocabulary first"
    [other] = [entry for entry in listed["compatible"] if entry["id"] == "other.gguf"]
    assert other["notes"][0].startswith("another vocabulary (vocabulary sizes 384 vs 600")
    body = chat_body("tiny-main.gguf", draft_model="other.gguf", max_tokens=6, draft_tokens=2)
    reply = httpx.post(f"{url}/api/v0/chat/completions", json=body, timeout=TIMEOUT)
    assert reply.status_code == 200, reply.text
    stats = reply.json()["stats"]
    assert stats["draft_model"] == "other.gguf" and stats["total_draft_tokens_count"] > 0


def test_malformed_and_oversized_bodies(url):
    json_type = {"Content-Type": "application/json"}
    reply = httpx.post(f"{url}/v1/chat/completions", content=b"{not json", headers=json_type)
    assert (reply.status_code, "JSON" in reply.json()["error"]["message"]) == (400, True)
    big = json.dumps(chat_body("toy-trigram", "cat " * 400_000)).encode()
    reply = httpx.post(f"{url}/v1/chat/completions", content=big, headers=json_type)
    assert reply.status_code == 413
    assert "body" in reply.json()["error"]["message"]


def test_api_key_is_required_when_set(private_folders):
    server = SpecDecServer(EngineManager(), ServedModels(toy_only=True), api_key="sesame")
    with running(server) as base:
        assert httpx.get(f"{base}/v1/models").status_code == 401
        wrong = httpx.get(f"{base}/v1/models", headers={"Authorization": "Bearer no"})
        assert wrong.status_code == 401
        assert "API key" in wrong.json()["error"]["message"]
        keyed = openai.OpenAI(base_url=f"{base}/v1", api_key="sesame", max_retries=0)
        assert "toy-trigram" in {m.id for m in keyed.models.list()}


def assert_serves_the_next_request(base: str) -> None:
    """The model a cancelled run held is free: the next request on it is answered."""
    after = httpx.post(
        f"{base}/v1/chat/completions",
        json=chat_body("toy-trigram", draft_model=None, max_tokens=4),
        timeout=TIMEOUT,
    )
    assert after.status_code == 200


def test_disconnect_cancels_the_run_and_frees_the_model(private_folders):
    gate = threading.Event()
    manager = RecordingManager(gate)
    with running(SpecDecServer(manager, ServedModels(toy_only=True))) as base:
        body = chat_body("toy-trigram", draft_model=None, max_tokens=900, stream=True)
        with httpx.stream("POST", f"{base}/v1/chat/completions", json=body) as reply:
            first = next(reply.iter_lines())
            assert first.startswith("data: ")
        assert_cancelled_keeping_tokens(manager, 900)
        assert_serves_the_next_request(base)


def test_a_client_gone_before_its_whole_reply_cancels_the_run_and_frees_its_sequence(
    private_folders,
):
    """Not streamed: the server hears the client leave while the run is held, cancels it,
    and the model's one sequence serves the next request."""
    gate = threading.Event()
    manager = RecordingManager(gate, parallel=1)
    with running(SpecDecServer(manager, ServedModels(toy_only=True))) as base:
        body = json.dumps(chat_body("toy-trigram", draft_model=None, max_tokens=900)).encode()
        host, port = base.removeprefix("http://").split(":")
        with socket.create_connection((host, int(port))) as client:
            head = f"POST /v1/chat/completions HTTP/1.1\r\nHost: {host}:{port}\r\n"
            head += f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
            client.sendall(head.encode() + body)
            assert manager.started.acquire(timeout=TIMEOUT)
        assert_cancelled_keeping_tokens(manager, 900)
        assert_serves_the_next_request(base)


def test_past_the_parallel_sequences_and_the_queue_comes_429_with_retry_after(
    private_folders,
):
    """One sequence and a queue of one: the first request runs (held at the gate), the
    second waits its turn, the third is refused; once the gate opens both finish."""
    gate = threading.Event()
    manager = RecordingManager(gate, parallel=1)
    server = SpecDecServer(manager, ServedModels(toy_only=True), max_waiting=1)
    with running(server) as base:
        body = chat_body("toy-trigram", draft_model=None, max_tokens=8, stream=True)
        with httpx.stream("POST", f"{base}/v1/chat/completions", json=body) as held:
            lines = held.iter_lines()
            next(lines)  # the first run is in flight, held at the gate
            with ThreadPoolExecutor(1) as pool:
                queued = pool.submit(
                    httpx.post,
                    f"{base}/v1/chat/completions",
                    json={**body, "stream": False},
                    timeout=TIMEOUT,
                )
                assert manager.started.acquire(timeout=TIMEOUT)  # the first
                assert manager.started.acquire(timeout=TIMEOUT)  # the second, queued
                refused = httpx.post(f"{base}/v1/chat/completions", json={**body, "stream": False})
                assert refused.status_code == 429
                assert int(refused.headers["Retry-After"]) > 0
                assert "retry" in refused.json()["error"]["message"]
                listed = httpx.get(f"{base}/api/v0/models/toy-trigram").json()
                assert (listed["parallel"], listed["sequences_in_use"]) == (1, 1)
                gate.set()
                assert "data: [DONE]" in list(lines)
                assert queued.result().status_code == 200


@pytest.mark.real
def test_real_pair_through_the_openai_client(qwen_paths, private_folders):
    """Served exact, the same request gives one text streamed or not, at any draft length,
    whatever the cache held before (a reused prompt prefix changes the calls' sizes)."""
    manager = EngineManager(n_ctx=1024, exact=True)
    with running(SpecDecServer(manager, ServedModels())) as base:
        client = openai.OpenAI(base_url=f"{base}/v1", api_key="x", timeout=600, max_retries=0)
        settings = {
            "model": "qwen2.5-coder-1.5b",
            "messages": [{"role": "user", "content": "Write a quicksort in Python."}],
            "temperature": 0,
            "max_tokens": 24,
        }
        draft = {"draft_model": "qwen2.5-coder-0.5b"}
        plain = client.chat.completions.create(**settings).choices[0].message.content
        whole = client.chat.completions.create(**settings, extra_body={**draft, "draft_tokens": 2})
        assert whole.choices[0].message.content == plain
        check_stats(whole.model_extra)
        assert whole.model_extra["stats"]["total_draft_tokens_count"] > 0
        for k in (4, "auto"):
            body = {**draft, "draft_tokens": k}
            chunks = list(client.chat.completions.create(**settings, stream=True, extra_body=body))
            streamed = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
            assert streamed == plain, k
        remote = sd.connect(base, model="qwen2.5-coder-1.5b", draft="qwen2.5-coder-0.5b")
        assert remote.generate(settings["messages"], max_tokens=24, draft_tokens=3).text == plain


def test_a_continued_assistant_message_keeps_its_provenance(client):
    settings = {"model": "toy-trigram", "temperature": 0, "extra_body": {"draft_tokens": 2}}
    user = {"role": "user", "content": TOY_PROMPT}
    whole = client.chat.completions.create(messages=[user], max_tokens=12, **settings)
    tokens = whole.model_extra["provenance"]
    begun = "".join(t["text"] for t in tokens[:5])
    chunks = list(
        client.chat.completions.create(
            messages=[user, {"role": "assistant", "content": begun}],
            max_tokens=7,
            stream=True,
            **settings,
        )
    )
    continued = [t for c in chunks for t in c.model_extra["provenance"]]
    assert begun + "".join(t["text"] for t in continued) == whole.choices[0].message.content
    assert [t["token_id"] for t in continued] == [t["token_id"] for t in tokens[5:]]
    check_stats({"stats": chunks[-1].model_extra["stats"], "provenance": continued})


def test_a_model_that_fails_to_load_is_a_503(private_folders):
    def broken(model: ResolvedModel, options: LoadOptions):
        raise ModelLoadError(f"{model.name}: the backend refused the file")

    manager = EngineManager(engine_factory=broken)
    with running(SpecDecServer(manager, ServedModels(toy_only=True))) as base:
        body = chat_body("toy-trigram", draft_model=None)
        for stream in (False, True):
            reply = httpx.post(f"{base}/v1/chat/completions", json={**body, "stream": stream})
            assert reply.status_code == 503
            assert "refused the file" in reply.json()["error"]["message"]


class FailingToy(GatedToy):
    """A toy engine whose third evaluation fails the way a backend does mid-run."""

    def before(self, tokens, n_logits):
        self.calls += 1
        if self.calls > 2:
            raise RuntimeError("llama_decode returned -1")


def test_an_error_mid_stream_is_an_error_chunk_after_the_tokens(private_folders):
    def failing(model: ResolvedModel, options: LoadOptions):
        return FailingToy(open_model(model, options), threading.Event())

    manager = EngineManager(engine_factory=failing)
    with running(SpecDecServer(manager, ServedModels(toy_only=True))) as base:
        body = chat_body("toy-trigram", draft_model=None, max_tokens=20, stream=True)
        with httpx.stream("POST", f"{base}/v1/chat/completions", json=body) as reply:
            assert reply.status_code == 200  # the first token went out before the failure
            payloads = [line[6:] for line in reply.iter_lines() if line.startswith("data: ")]
        assert payloads[-1] == "[DONE]"
        chunks = [json.loads(p) for p in payloads[:-1]]
        assert chunks[0]["provenance"], "the tokens before the failure arrive"
        failure = chunks[-1]["error"]
        assert failure["type"] == "server_error"
        assert failure["message"] == "internal error: RuntimeError"  # no traceback, no internals
        client = openai.OpenAI(base_url=f"{base}/v1", api_key="x", max_retries=0)
        settings = {"model": "toy-trigram", "messages": body["messages"], "max_tokens": 20}
        with pytest.raises(openai.APIError, match="internal error"):
            list(client.chat.completions.create(**settings, stream=True))


def test_listings_show_loaded_models_and_eviction_through_the_server(tiny_folder):
    size = (tiny_folder / "tiny-main.gguf").stat().st_size
    manager = EngineManager(n_ctx=256, n_threads=1, memory_budget=int(size * 1.5))
    with running(SpecDecServer(manager, ServedModels([tiny_folder]))) as base:

        def states() -> dict[str, str]:
            listed = httpx.get(f"{base}/api/v0/models").json()["data"]
            return {m["id"]: m["state"] for m in listed if m["id"].endswith(".gguf")}

        assert set(states().values()) == {"not-loaded"}
        for model in ("tiny-main.gguf", "other.gguf"):
            body = chat_body(model, draft_model=None, max_tokens=2)
            reply = httpx.post(f"{base}/api/v0/chat/completions", json=body, timeout=TIMEOUT)
            assert reply.status_code == 200, reply.text
            loaded = [m for m, state in states().items() if state == "loaded"]
            assert loaded == [model], "one model fits the budget: the idle one was evicted"
            one = httpx.get(f"{base}/api/v0/models/{model}").json()
            assert one["state"] == "loaded"
