"""The chat widget's load progress in a real browser: JupyterLab on loopback, Debian's
headless Chromium driven by Playwright, the real Qwen2.5-Coder-0.5B loaded by llama.cpp.

`%specdec load` runs first and leaves its bar in the cell at 100%. Then the chat widget's
load is held at a known step (its first report past 20%) until the test has looked, so
nothing depends on how fast the machine loads: the bar, the model's short name and how far it
is must be on screen then, and gone once the model is in. A screenshot of the held bar is
saved (screenshots/, or $SPECDEC_SCREENSHOTS).
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

from tests.support import ROOT
from tests.support.jupyter_lab import BROWSER, lab_notebook

SCREENSHOTS = Path(os.environ.get("SPECDEC_SCREENSHOTS", ROOT / "screenshots"))

pytestmark = [*BROWSER, pytest.mark.real]

HOLD_THE_LOAD = """\
import threading
from specdec_jupyter.sessions.service import EngineService

release = threading.Event()
prepare = EngineService.prepare

def held_prepare(self, pair, on_progress=None):
    def listener(event):
        on_progress(event)
        if 0.2 < event.fraction < 1 and threading.current_thread() is not threading.main_thread():
            release.wait(300)  # the chat's load: the test looks, then runs release.set()
    return prepare(self, pair, on_progress=listener)

EngineService.prepare = held_prepare"""

NOTEBOOK_CELLS = [
    HOLD_THE_LOAD,
    "%load_ext specdec_jupyter\n%specdec load qwen2.5-coder-0.5b --no-draft",
    "from specdec_jupyter.sessions.manager import EngineManager\n"
    "from specdec_jupyter.widgets import ChatWidget\n"
    'ChatWidget("qwen2.5-coder-0.5b", draft=None, manager=EngineManager(n_ctx=512))',
]


@pytest.fixture(scope="module")
def page(qwen_paths, tmp_path_factory):
    home = tmp_path_factory.mktemp("lab")
    with lab_notebook(home, "progress.ipynb", NOTEBOOK_CELLS) as page:
        yield page


def test_the_load_shows_a_bar_with_the_model_and_how_far(page):
    chat = page.locator(".specdec-chat").first
    status = chat.locator(".specdec-status-text")
    status.wait_for()
    page.wait_for_function(  # the held step: the first report past 20%
        "(m => m !== null && Number(m[1]) > 20)(/loading qwen2.5-coder-0.5b: (\\d+)%/.exec("
        "document.querySelector('.specdec-status-text')?.textContent ?? ''))",
        timeout=180_000,
    )
    bar = chat.locator(".specdec-progress")
    assert bar.is_visible()
    value = float(bar.evaluate("e => e.value"))
    percent = int(re.search(r": (\d+)%", status.inner_text())[1])
    assert 0.2 < value < 1 and abs(percent - value * 100) <= 1
    option = chat.locator(".specdec-main-select option:checked")
    assert option.inner_text() == "qwen2.5-coder-0.5b"
    assert "Q4_K_M" in option.get_attribute("title")
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    chat.screenshot(path=str(SCREENSHOTS / "chat-widget-loading.png"))

    page.evaluate(
        "window.jupyterapp.shell.currentWidget.sessionContext.session.kernel"
        ".requestExecute({code: 'release.set()'})"
    )
    page.wait_for_function(
        "document.querySelector('.specdec-chat').dataset.state === 'idle'", timeout=180_000
    )
    assert not bar.is_visible() and status.inner_text() == ""


def test_the_load_magic_leaves_a_finished_bar_in_its_cell(page):
    cell = page.locator(".jp-Notebook .jp-Cell").nth(1)
    cell.get_by_text("ready (llama.cpp)").wait_for(timeout=180_000)
    assert cell.locator("div.widget-label").inner_text() == "loading qwen2.5-coder-0.5b: 100%"
    bar = cell.locator(".widget-hprogress .progress-bar")
    assert bar.count() == 1 and "progress-bar-success" in bar.get_attribute("class")
