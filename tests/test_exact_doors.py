"""`exact`, one load option declared once, reaches the engine through every door; left open, a
seeded run is exact (a seed promises the same text every time) and an unseeded one fast. Each
door runs the toy pair on this process; spies see what each model is opened with, and which
pair the engine manager runs a request on."""

from __future__ import annotations

import httpx
import pytest

import specdec_jupyter as sd
from specdec_jupyter import cli
from specdec_jupyter.engines.registry import EngineKind
from specdec_jupyter.server.app import SpecDecServer
from specdec_jupyter.server.serve import serving_in_background
from specdec_jupyter.server.served import ServedModels
from specdec_jupyter.sessions.manager import EngineManager
from specdec_jupyter.settings import LoadOptions
from specdec_jupyter.widgets import ChatWidget, TeachWidget
from tests.support.chat import settled
from tests.support.magic_shell import magic

PROMPT = "the cat sat on the"
SEEDED = {"temperature": 1.0, "seed": 3, "max_tokens": 3}


@pytest.fixture
def opened(monkeypatch) -> list[bool | None]:
    """`exact` of every model opened, in order."""
    seen: list[bool | None] = []
    open_model = EngineKind.open

    def spying(self, model, options):
        seen.append(options.exact)
        return open_model(self, model, options)

    monkeypatch.setattr(EngineKind, "open", spying)
    return seen


@pytest.fixture
def ran(monkeypatch) -> list[bool | None]:
    """`exact` of the main model of every session the engine manager hands a run or a hold."""
    seen: list[bool | None] = []
    session_of = EngineManager._session

    def spying(self, main, draft):
        seen.append(main[1].exact)
        return session_of(self, main, draft)

    monkeypatch.setattr(EngineManager, "_session", spying)
    return seen


def test_python(opened):
    sd.load("toy-trigram", "toy-bigram", exact=True, progress=False)
    sd.load("toy-trigram", progress=False)
    assert opened == [True, True, None]  # load() leaves it open: fast


def test_cli(opened):
    argv = ["generate", "--engine", "toy", "--prompt", PROMPT, "--raw", "--json"]
    assert cli.main([*argv, "--seed", "3", "--temperature", "1"]) == 0
    assert cli.main([*argv, "--seed", "3", "--temperature", "1", "--no-exact"]) == 0
    assert cli.main([*argv, "--exact"]) == 0
    assert cli.main(argv) == 0
    assert opened[::2] == [True, False, True, False]  # each main model, before its draft


def test_serve_flag():
    for flags, exact in (([], None), (["--exact"], True), (["--no-exact"], False)):
        args = cli.build_parser().parse_args(["serve", *flags])
        assert LoadOptions.among(vars(args)).exact is exact


def test_magics(ip, ran):
    magic(ip, "load toy-trigram --engine toy --exact")  # the pair may be loaded already
    assert ran[-1] is True


def test_chat_widget(ran):
    chat = ChatWidget(engine="toy", manager=EngineManager(), **SEEDED)
    assert "exact" in [field["key"] for field in chat.setting_fields]
    settled(chat)  # the pair it loads on opening, before any seed is known: fast
    chat.ask(PROMPT)
    chat.wait(30)
    assert ran[-1] is True, "a seeded reply runs exact"
    chat.settings = {**chat.settings, "exact": False}  # as the form's box sets it
    settled(chat)
    chat.ask("and the dog")
    chat.wait(30)
    assert ran[-1] is False, "told not to be exact, a seeded reply runs fast"


def test_server_request(ran):
    server = SpecDecServer(EngineManager(), ServedModels(toy_only=True))
    body = {"model": "toy-trigram", "messages": [{"role": "user", "content": PROMPT}]}
    with serving_in_background(server) as url:
        assert httpx.post(f"{url}/v1/chat/completions", json={**body, **SEEDED}).is_success
        assert ran[-1] is True
        assert httpx.post(f"{url}/v1/chat/completions", json=body).is_success
        assert ran[-1] is False


def test_teaching_widget(opened):
    TeachWidget(engine="toy", manager=EngineManager())
    assert opened[-1] is True
