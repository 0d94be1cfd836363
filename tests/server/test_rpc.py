"""`serve --rpc`: the server's main model, the real 1.5B, on two RPC worker processes on
loopback, a worker killed mid-generation at a known step (`Killer`). A streamed reply ends with
an error event naming the worker, after the text so far; a whole reply is a 503 naming it and
the fix; the server lives on, and once the worker is back the next request loads the model
anew. Through plain HTTP and the official `openai` client."""

from __future__ import annotations

import json

import httpx
import openai
import pytest

from specdec_jupyter import cli
from specdec_jupyter.engines.rpc.loopback import WorkerProcess, endpoints, workers
from specdec_jupyter.server.app import SpecDecServer
from specdec_jupyter.server.serve import serving_in_background as running
from specdec_jupyter.server.served import ServedModels
from specdec_jupyter.sessions.manager import EngineManager
from specdec_jupyter.settings import LoadOptions
from tests.support.rpc_faults import Killer

pytestmark = pytest.mark.real

MODEL = "qwen2.5-coder-1.5b"
ASK = {
    "model": MODEL,
    "messages": [{"role": "user", "content": "Write a Python function for the n-th prime."}],
    "temperature": 0,
    "max_tokens": 16,
}
PLAIN = {"draft_model": None}  # plain decoding: a call per token, so the kill's step is known
TIMEOUT = 600.0
KILLED_AT = 4  # the prompt's read, two tokens' calls, then the kill: three tokens stand


def lost_message(worker: WorkerProcess) -> str:
    return (
        f"qwen2.5-coder-1.5b-instruct-q4_k_m is lost: RPC worker {worker.endpoint} stopped "
        "answering (llama.cpp: Remote RPC server crashed or returned malformed response); "
        "start the worker again if it is gone (`specdec-jupyter rpc-worker` on its machine), "
        "then load the model again (a server or a chat does on its next request)"
    )


def model_state(base: str) -> str:
    listed = httpx.get(f"{base}/api/v0/models/{MODEL}", timeout=TIMEOUT)
    assert listed.status_code == 200
    return listed.json()["state"]


def test_a_worker_lost_mid_generation_through_the_server(private_folders, monkeypatch):
    killer = Killer().watching(monkeypatch)
    with workers(2, threads=1) as started:
        flags = ["serve", "--rpc", ",".join(endpoints(started)), "--exact", "--n-ctx", "512"]
        options = LoadOptions.among(vars(cli.build_parser().parse_args(flags)))
        with running(SpecDecServer(EngineManager(options=options), ServedModels())) as base:
            url = f"{base}/v1/chat/completions"
            client = openai.OpenAI(
                base_url=f"{base}/v1", api_key="x", timeout=TIMEOUT, max_retries=0
            )
            plain = httpx.post(url, json={**ASK, **PLAIN}, timeout=TIMEOUT).json()
            text = plain["choices"][0]["message"]["content"]
            assert plain["stats"]["backend"].startswith("llama.cpp: "), "on the workers"
            assert f"on rpc {started[1].endpoint}" in plain["stats"]["backend"]

            # streamed: the tokens so far, then an error event naming the worker
            killer.arm(started[0], KILLED_AT)
            with httpx.stream(
                "POST", url, json={**ASK, **PLAIN, "stream": True}, timeout=TIMEOUT
            ) as reply:
                assert reply.status_code == 200  # the first token went out before the loss
                payloads = [line[6:] for line in reply.iter_lines() if line.startswith("data: ")]
            assert payloads[-1] == "[DONE]"
            *chunks, ending = [json.loads(payload) for payload in payloads[:-1]]
            tokens = [token for chunk in chunks for token in chunk["provenance"]]
            streamed = "".join(chunk["choices"][0]["delta"].get("content", "") for chunk in chunks)
            assert len(tokens) == KILLED_AT - 1 and streamed and text.startswith(streamed)
            assert ending == {
                "error": {
                    "message": lost_message(started[0]),
                    "type": "server_error",
                    "param": None,
                    "code": None,
                }
            }
            # the server lives on, and says the model is no longer loaded
            assert httpx.get(f"{base}/health", timeout=TIMEOUT).json() == {"status": "ok"}
            assert model_state(base) == "not-loaded"

            # the worker back: the next request loads anew; a whole reply lost is a 503
            started[0] = WorkerProcess(started[0].port)
            killer.arm(started[1], KILLED_AT)
            with pytest.raises(openai.APIStatusError) as caught:
                client.chat.completions.create(**ASK, extra_body=PLAIN)
            assert caught.value.status_code == 503
            assert str(caught.value) == f"Error code: 503 - {lost_message(started[1])}"

            # both workers back: streamed through the openai client, the whole plain text
            started[1] = WorkerProcess(started[1].port)
            chunks = client.chat.completions.create(**ASK, extra_body=PLAIN, stream=True)
            assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == text
            assert model_state(base) == "loaded"
