"""The chat widget pointed at a server (`ChatWidget(server=URL)`), in JupyterLab in headless
Chromium: the kernel has no model of its own; the toy pair runs in a real server that this
test process starts, and the reply's accepted draft tokens show green."""

from __future__ import annotations

import pytest

from specdec_jupyter.server.app import SpecDecServer
from specdec_jupyter.server.serve import serving_in_background as running
from specdec_jupyter.server.served import ServedModels
from specdec_jupyter.sessions.manager import EngineManager
from tests.support.jupyter_lab import BROWSER, ask_and_wait, lab_notebook

pytestmark = BROWSER


@pytest.fixture(scope="module")
def server_url(tmp_path_factory):
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("SPECDEC_CONFIG_DIR", str(tmp_path_factory.mktemp("config")))
        with running(SpecDecServer(EngineManager(), ServedModels(toy_only=True))) as url:
            yield url


def test_a_chat_on_a_server_shows_green_draft_tokens(server_url, tmp_path):
    cells = [
        "from specdec_jupyter.widgets import ChatWidget\n"
        f'ChatWidget("toy-trigram", server="{server_url}", max_tokens=24, draft_tokens=3)'
    ]
    with lab_notebook(tmp_path, "remote.ipynb", cells) as page:
        chat = page.locator(".specdec-chat").first
        chat.wait_for(timeout=180_000)
        drafts = chat.locator(".specdec-draft-select option").all_inner_texts()
        assert any("toy-bigram" in d for d in drafts), drafts
        reply = ask_and_wait(chat, "the cat sat on")
        assert reply.locator(".specdec-draft").count() > 0
        background = reply.locator(".specdec-draft").first.evaluate(
            "e => getComputedStyle(e).backgroundColor"
        )  # light theme
        assert background.startswith("rgba(34, 197, 94")
