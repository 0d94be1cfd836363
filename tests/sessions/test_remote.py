"""`sd.connect`: a session on a real server with `load()`'s API, yielding the very TokenEvents
and stats an in-process session yields."""

from __future__ import annotations

import pytest

import specdec_jupyter as sd
from specdec_jupyter.engines.toy import toy_pair
from specdec_jupyter.errors import SettingsError, UnknownModelError
from specdec_jupyter.server.app import SpecDecServer
from specdec_jupyter.server.serve import serving_in_background as running
from specdec_jupyter.server.served import ServedModels
from specdec_jupyter.sessions.manager import EngineManager
from specdec_jupyter.sessions.remote import RemoteError
from specdec_jupyter.sessions.session import Session

PROMPT = "the cat sat on"
COUNTS = ("predicted_tokens_count", "total_draft_tokens_count", "accepted_draft_tokens_count")


@pytest.fixture(scope="module")
def url(tmp_path_factory):
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("SPECDEC_CONFIG_DIR", str(tmp_path_factory.mktemp("config")))
        server = SpecDecServer(EngineManager(), ServedModels(toy_only=True), api_key="k")
        with running(server) as base:
            yield base


@pytest.mark.parametrize("temperature", [0.0, 0.8])
def test_remote_events_and_stats_equal_in_process_ones(url, temperature):
    remote = sd.connect(url, model="toy-trigram", draft="toy-bigram", api_key="k")
    options = {"max_tokens": 24, "draft_tokens": 3, "temperature": temperature, "seed": 7}
    there = remote.generate(PROMPT, **options)
    here = Session(*toy_pair()).generate(PROMPT, **options)
    assert there.events == here.events
    for count in COUNTS:
        assert getattr(there.stats, count) == getattr(here.stats, count)
    assert there.stats.stop_reason == here.stats.stop_reason
    html = there._repr_html_()
    assert all(e.text.strip() in html for e in there.events)


def test_remote_stream_plain_continue_and_stop(url):
    remote = sd.connect(url, model="toy-trigram", draft=None, api_key="k")
    plain = remote.generate(PROMPT, max_tokens=8)
    assert plain.stats.total_draft_tokens_count == 0
    assert {e.source for e in plain.events} == {"main"}
    begun = plain.events[0].text
    continued = remote.generate(
        [{"role": "user", "content": PROMPT}, {"role": "assistant", "content": begun}],
        max_tokens=7,
    )
    assert begun + continued.text == plain.text
    seen = []
    for event in remote.stream(PROMPT, max_tokens=200, should_stop=lambda: len(seen) >= 1):
        seen.append(event)
    assert len(seen) < 200


def test_remote_errors_are_the_servers_messages(url):
    with pytest.raises(UnknownModelError, match="not served here"):
        sd.connect(url, model="nope", api_key="k").generate(PROMPT)
    with pytest.raises(RemoteError, match="API key") as refused:
        sd.connect(url, model="toy-trigram", api_key="wrong").generate(PROMPT)
    assert refused.value.status == 401
    with pytest.raises(SettingsError, match="temperature"):  # refused here, before a request
        sd.connect(url, model="toy-trigram", api_key="k").generate(PROMPT, temperature=-1)
    with pytest.raises(SettingsError, match="assistant"):
        sd.connect(url, model="toy-trigram", api_key="k").generate(PROMPT, continue_=True)


def test_connect_picks_a_served_model(url):
    remote = sd.connect(url, api_key="k")
    assert remote.model in {m["id"] for m in remote.models()}


def test_specdec_connect_runs_cells_on_the_server(ip, url):
    from tests.support.magic_shell import magic

    _, captured = magic(ip, f"connect {url} --model toy-trigram --draft toy-bigram --api-key k")
    assert "connected" in captured.stdout and "toy-bigram" in captured.stdout
    _, captured = magic(ip, "--max-tokens 12 --temperature 0 --draft-tokens 3", PROMPT)
    html = captured.outputs[-1].data["text/html"]
    assert "specdec-draft" in html and "toy-trigram · draft toy-bigram" in html
    assert '<span class="specdec-stat-label">predicted tokens</span> <b>12</b>' in html
    _, captured = magic(ip, "stats")
    assert "predicted tokens: 12" in captured.stdout
    _, captured = magic(ip, f"connect {url} --model nope --api-key k")
    assert "does not serve 'nope'" in captured.stderr


def test_chat_widget_on_a_server_lists_its_models_and_drafts(url):
    from specdec_jupyter.widgets import ChatWidget

    chat = ChatWidget("toy-trigram", server=url, api_key="k", max_tokens=16, draft_tokens=3)
    assert {"toy-trigram", "toy-bigram"} <= {m["key"] for m in chat.models}
    assert [d["key"] for d in chat.drafts] == ["toy-bigram"]
    assert chat.draft_model == chat.default_draft == "toy-bigram"
    chat.ask(PROMPT)
    reply = chat.wait(60)
    here = Session(*toy_pair()).generate(
        [{"role": "user", "content": PROMPT}], max_tokens=16, draft_tokens=3
    )
    assert reply["content"] == here.text
    assert reply["stats"]["accepted_draft_tokens_count"] == here.stats.accepted_draft_tokens_count
    assert reply["draft_model"].startswith("toy-bigram")
    assert reply["stats"]["accepted_draft_tokens_count"] > 0


def test_a_chat_on_a_server_offers_its_real_models_alone(tmp_path, monkeypatch):
    """A chat on a server listed the toy pair and MLX ids beside the server's GGUF models (and
    an Engine selector, which the view hides for a server's one engine)."""
    from specdec_jupyter.widgets import ChatWidget
    from tests.support.tiny_models import make_tiny_pair

    monkeypatch.setenv("SPECDEC_CONFIG_DIR", str(tmp_path / "config"))
    folder = tmp_path / "models"
    folder.mkdir()
    make_tiny_pair(folder)
    server = SpecDecServer(EngineManager(n_ctx=256, n_threads=1), ServedModels([folder]))
    with running(server) as base:
        chat = ChatWidget(server=base)
        served = {m["id"] for m in sd.connect(base).models()}
        assert {"toy-trigram", "toy-bigram"} <= served  # served still, for a client naming them
        offered = {m["key"] for m in chat.models}
        assert {"tiny-main.gguf", "tiny-draft.gguf"} <= offered
        assert not offered & {"toy-trigram", "toy-bigram"}
        assert [e["name"] for e in chat.engines] == ["server"]


def test_specdec_chat_after_connect_is_the_servers_chat(ip, url):
    from tests.support.magic_shell import magic

    magic(ip, f"connect {url} --model toy-trigram --api-key k")
    chat, _ = magic(ip, "chat")
    assert chat.main_model == "toy-trigram" and chat.draft_model == "toy-bigram"
    assert chat._service.url == url
