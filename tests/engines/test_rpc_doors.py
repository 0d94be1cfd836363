"""`rpc`, one LoadOptions field, through every door that loads a model: the CLI, the magics,
the chat widget's settings, `serve`'s flags and the engine manager behind the server; each
loads the tiny pair's main model onto a real worker process on loopback (a worker serves one
client, so each door gets its own) and says so in the stats. And the faults through each door:
a worker not there is one line naming it; one killed mid-generation (at a known call, `Killer`)
ends that generation with an error naming it while the text so far stands, and once it is
back, the door's next generation loads anew."""

from __future__ import annotations

import json

import httpx
import pytest

from specdec_jupyter import cli
from specdec_jupyter.engines.rpc.loopback import WorkerProcess, free_port, workers
from specdec_jupyter.server.app import SpecDecServer
from specdec_jupyter.server.served import ServedModels
from specdec_jupyter.sessions.manager import EngineManager
from specdec_jupyter.sessions.pair import Pair
from specdec_jupyter.settings import LoadOptions
from specdec_jupyter.widgets import ChatWidget
from tests.support.magic_shell import magic
from tests.support.rpc_faults import Killer
from tests.support.servers import private_server

PROMPT = "the model token draft"


@pytest.fixture
def started():
    """One worker; a test that kills it may start it again in its place."""
    with workers(1) as started:
        yield started


@pytest.fixture
def worker(started):
    return started[0].endpoint


def on_the_worker(backend: str, endpoint: str) -> bool:
    """The main model's layers on the worker."""
    return backend.startswith(
        f"llama.cpp: 2 layers on rpc {endpoint}, output on rpc {endpoint}, 1 CPU threads; "
    )


def test_cli(tiny_paths, worker, capsys):
    main, draft = map(str, tiny_paths)
    argv = ["generate", "--main", main, "--draft", draft, "--prompt", PROMPT, "--raw", "--json"]
    argv += ["--max-tokens", "8", "--n-ctx", "256", "--threads", "1", "--rpc", worker]
    assert cli.main(argv) == 0
    stats = json.loads(capsys.readouterr().out)["stats"]
    assert on_the_worker(stats["backend"], worker), stats["backend"]
    assert "; draft: llama.cpp on the CPU, 1 threads; " in stats["backend"], "the draft here"


def test_magics(ip, tiny_paths, worker):
    main, draft = tiny_paths
    magic(ip, f"load {main} --draft {draft} --n-ctx 256 --threads 1 --rpc {worker}")
    magic(ip, "--max-tokens 8 --raw", PROMPT)
    _, shown = magic(ip, "stats")
    assert f"llama.cpp: 2 layers on rpc {worker}, output on rpc {worker}" in shown.stdout


def test_chat_widget_settings(tiny_paths, worker):
    main, draft = map(str, tiny_paths)
    chat = ChatWidget(main, draft=draft, n_ctx=256, n_threads=1, rpc=[worker], max_tokens=8)
    assert "rpc" in [field["key"] for field in chat.setting_fields]
    assert chat.settings["rpc"] == [worker]
    chat.ask(PROMPT)
    reply = chat.wait(120)
    assert on_the_worker(reply["stats"]["backend"], worker), reply["stats"]["backend"]


def test_serve_flags_and_the_manager_behind_the_server(tiny_paths, worker):
    args = cli.build_parser().parse_args(["serve", "--rpc", worker, "--threads", "1"])
    options = LoadOptions.among(vars(args))
    assert options.rpc == (worker,) and options.draft_rpc == ()
    manager = EngineManager(options=options, n_ctx=256)
    try:
        main, draft = map(str, tiny_paths)
        result = manager.generate(PROMPT, Pair(main, draft), max_tokens=8, raw=True)
        assert on_the_worker(result.stats.backend, worker), result.stats.backend
    finally:
        manager.close()


def lost(worker: WorkerProcess) -> str:
    return f"tiny-main is lost: RPC worker {worker.endpoint} stopped answering"


KILLED_AT = 4  # plain decoding: the prompt's read, two tokens' calls, then the kill
PLAIN = ["--no-draft", "--max-tokens", "8", "--n-ctx", "256", "--threads", "1"]


def test_cli_a_worker_not_there_and_one_lost_mid_generation(
    tiny_paths, started, monkeypatch, capsys
):
    killer = Killer().watching(monkeypatch)
    argv = ["generate", "--main", str(tiny_paths[0]), "--prompt", PROMPT, "--raw", *PLAIN]
    missing = f"127.0.0.1:{free_port()}"
    assert cli.main([*argv, "--rpc", missing]) == 2
    assert capsys.readouterr().err.endswith(
        f"error: RPC worker {missing} is not there (Connection refused); start it with "
        "`specdec-jupyter rpc-worker` from this same llama-cpp-python\n"
    )
    argv += ["--rpc", started[0].endpoint]
    assert cli.main(argv) == 0
    whole = capsys.readouterr().out
    killer.arm(started[0], KILLED_AT)
    assert cli.main(argv) == 2
    printed = capsys.readouterr()
    assert printed.err.splitlines()[-1].startswith(f"error: {lost(started[0])}")
    assert printed.out and whole.startswith(printed.out), "the text so far stays printed"
    started[0] = WorkerProcess(started[0].port)
    assert cli.main(argv) == 0
    assert capsys.readouterr().out == whole


def test_chat_widget_a_worker_lost_mid_reply(tiny_paths, started, monkeypatch):
    killer = Killer().watching(monkeypatch)
    manager = EngineManager()
    settings = {"n_ctx": 256, "n_threads": 1, "max_tokens": 8, "use_draft": False}

    def reply() -> dict:
        rpc = [started[0].endpoint]
        chat = ChatWidget(str(tiny_paths[0]), None, manager=manager, rpc=rpc, **settings)
        chat.ask(PROMPT)
        return chat.wait(120)

    try:
        whole = reply()
        assert "error" not in whole, whole.get("error")
        killer.arm(started[0], KILLED_AT)
        cut = reply()
        assert cut["error"].startswith(lost(started[0])), cut.get("error")
        assert len(cut["tokens"]) == KILLED_AT - 1 and whole["content"].startswith(cut["content"])
        started[0] = WorkerProcess(started[0].port)
        again = reply()
        assert "error" not in again, again.get("error")
        assert again["content"] == whole["content"], "the chat's next reply loads anew"
    finally:
        manager.close()


def test_magics_a_worker_lost_mid_generation(ip, tiny_paths, started, monkeypatch):
    killer = Killer().watching(monkeypatch)
    magic(
        ip, f"load {tiny_paths[0]} --no-draft --n-ctx 256 --threads 1 --rpc {started[0].endpoint}"
    )

    def generate() -> str:
        _, shown = magic(ip, "--max-tokens 8 --raw", PROMPT)
        return shown.outputs[-1].data["text/html"]

    assert "is lost" not in generate()
    killer.arm(started[0], KILLED_AT)
    cut = generate()
    assert lost(started[0]) in cut
    assert cut.count('<span class="specdec-main ') == KILLED_AT - 1, "shown with the text so far"
    started[0] = WorkerProcess(started[0].port)
    assert "is lost" not in generate(), "the next cell loads anew"


def test_the_server_names_a_worker_not_there_with_a_503(tiny_paths, tmp_path):
    missing = f"127.0.0.1:{free_port()}"

    def server() -> SpecDecServer:
        manager = EngineManager(rpc=[missing], n_ctx=256, n_threads=1)
        return SpecDecServer(manager, ServedModels([tiny_paths[0].parent]))

    with private_server(tmp_path, server) as base:
        body = {"model": "tiny-main.gguf", "prompt": PROMPT, "max_tokens": 4, "draft_model": None}
        for stream in (False, True):
            reply = httpx.post(f"{base}/v1/completions", json={**body, "stream": stream})
            assert reply.status_code == 503
            assert reply.json()["error"]["message"] == (
                f"RPC worker {missing} is not there (Connection refused); start it with "
                "`specdec-jupyter rpc-worker` from this same llama-cpp-python"
            )
