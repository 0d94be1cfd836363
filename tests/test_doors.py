"""A run setting through every door: `min_p`, declared once (settings.py), reaches the loop
from Python, the CLI, the magics (a flag, or `%config`), the chat widget's settings, a server
request's body and the remote client; the teaching widget draws with it. Each door is the toy
pair on this process, so a spy on the loop sees what each one hands over."""

from __future__ import annotations

import httpx
import pytest

import specdec_jupyter as sd
from specdec_jupyter import cli
from specdec_jupyter.server.app import SpecDecServer
from specdec_jupyter.server.serve import serving_in_background
from specdec_jupyter.server.served import ServedModels
from specdec_jupyter.sessions import session as session_module
from specdec_jupyter.sessions.manager import EngineManager
from specdec_jupyter.settings import RunSettings
from specdec_jupyter.widgets import ChatWidget, TeachWidget
from tests.support.magic_shell import magic

MIN_P = 0.25
PROMPT = "the cat sat on the"
SAMPLED = {"temperature": 1.0, "max_tokens": 3}


@pytest.fixture
def loop_saw(monkeypatch) -> list[RunSettings]:
    """The settings each run's loop was handed, in order."""
    seen: list[RunSettings] = []
    run = session_module.Run

    def spying(main, drafter, prompt, settings, *args, **kwargs):
        seen.append(settings)
        return run(main, drafter, prompt, settings, *args, **kwargs)

    monkeypatch.setattr(session_module, "Run", spying)
    return seen


@pytest.fixture(scope="module")
def server_url():
    server = SpecDecServer(EngineManager(), ServedModels(toy_only=True))
    with serving_in_background(server) as url:
        yield url


def test_python(loop_saw):
    session = sd.load("toy-trigram", "toy-bigram", progress=False)
    session.generate(PROMPT, raw=True, min_p=MIN_P, **SAMPLED)
    session.generate(PROMPT, RunSettings(raw=True, min_p=0.5, **SAMPLED))
    assert [settings.min_p for settings in loop_saw] == [MIN_P, 0.5]


def test_cli(loop_saw, capsys):
    argv = ["generate", "--engine", "toy", "--prompt", PROMPT, "--raw", "--json"]
    assert cli.main([*argv, "--temperature", "1", "--min-p", str(MIN_P)]) == 0
    assert loop_saw[-1].min_p == MIN_P
    assert cli.main([*argv, "--min-p", "2"]) == 2
    assert "min_p must be in [0, 1]" in capsys.readouterr().err


def test_magics_flag_and_config(ip, loop_saw):
    magic(ip, "load toy-trigram --engine toy")
    magic(ip, f"--min-p {MIN_P} --temperature 1 --max-tokens 3", PROMPT)
    assert loop_saw[-1].min_p == MIN_P
    ip.run_line_magic("config", "SpecDecMagics.min_p = 0.5")
    magic(ip, "--temperature 1 --max-tokens 3", PROMPT)
    assert loop_saw[-1].min_p == 0.5
    teach, _ = magic(ip, f"teach --min-p {MIN_P}")
    assert teach.walkthrough.sampling.min_p == MIN_P


def test_chat_widget_settings(loop_saw):
    chat = ChatWidget(engine="toy", min_p=MIN_P, **SAMPLED)
    assert "min_p" in [field["key"] for field in chat.setting_fields]
    chat.ask(PROMPT)
    reply = chat.wait(30)
    assert loop_saw[-1].min_p == MIN_P and reply["settings"]["min_p"] == MIN_P
    chat.settings = {**chat.settings, "min_p": 0.5}  # as the form sets it
    chat.ask("and the dog")
    chat.wait(30)
    assert loop_saw[-1].min_p == 0.5


def test_server_body(server_url, loop_saw):
    body = {"model": "toy-trigram", "messages": [{"role": "user", "content": PROMPT}]}
    reply = httpx.post(f"{server_url}/v1/chat/completions", json={**body, "min_p": MIN_P})
    assert reply.status_code == 200 and loop_saw[-1].min_p == MIN_P
    refused = httpx.post(f"{server_url}/v1/chat/completions", json={**body, "min_p": -1})
    assert refused.status_code == 400 and "min_p" in refused.json()["error"]["message"]


def test_remote_client(server_url, loop_saw):
    sd.connect(server_url, model="toy-trigram").generate(PROMPT, min_p=MIN_P, **SAMPLED)
    assert loop_saw[-1].min_p == MIN_P


def test_teaching_widget():
    teach = TeachWidget(engine="toy", min_p=MIN_P)
    assert teach.settings["min_p"] == MIN_P and teach.walkthrough.sampling.min_p == MIN_P
    assert "min_p" in [field["key"] for field in teach.setting_fields]
    teach.reset(min_p=0.5)
    assert teach.walkthrough.sampling.min_p == 0.5
