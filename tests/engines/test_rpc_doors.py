"""`rpc`, one LoadOptions field, through every door that loads a model: the CLI, the magics,
the chat widget's settings, `serve`'s flags and the engine manager behind the server; each
loads the tiny pair's main model onto a real worker process on loopback (a worker serves one
client, so each door gets its own) and says so in the stats."""

from __future__ import annotations

import json

import pytest

from specdec_jupyter import cli
from specdec_jupyter.engines.rpc.loopback import WorkerProcess
from specdec_jupyter.sessions.manager import EngineManager
from specdec_jupyter.sessions.pair import Pair
from specdec_jupyter.settings import LoadOptions
from specdec_jupyter.widgets import ChatWidget
from tests.support.magic_shell import magic

PROMPT = "the model token draft"


@pytest.fixture
def worker():
    started = WorkerProcess()
    yield started.endpoint
    started.kill()


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
