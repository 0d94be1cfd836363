"""The teaching widget on JupyterLab's dark theme, in its own module: a Lab page of its
own, opened after test_teach_browser's has closed (one Playwright at a time)."""

from __future__ import annotations

import re

from tests.browser.test_chat_widget import SCREENSHOTS
from tests.browser.test_teach import PROMPT, click_and_wait, first_round_rejecting_seed
from tests.support.jupyter_lab import BROWSER, jupyter_lab, notebook_page

pytestmark = BROWSER


DARK = {"@jupyterlab/apputils-extension/themes": {"theme": "JupyterLab Dark"}}


def test_a_rejection_in_the_dark_theme(tmp_path):
    """The round reads on JupyterLab's dark theme: the bars' tracks take the theme's colours.
    Saves screenshots/teach-widget-dark.png."""
    seed = first_round_rejecting_seed()
    cells = [
        "from specdec_jupyter.widgets import TeachWidget",
        f'TeachWidget(engine="toy", prompt="{PROMPT}", k=4, seed={seed})',
    ]
    with (
        jupyter_lab(tmp_path, {"dark.ipynb": cells}, DARK) as (url, _),
        notebook_page(url, "dark.ipynb") as dark,
    ):
        teach = dark.locator(".specdec-teach").first
        teach.locator(".specdec-round").wait_for()
        click_and_wait(dark, teach, ".specdec-finish")
        assert teach.locator(".specdec-residual").count() == 1
        assert dark.evaluate("document.body.dataset.jpThemeLight") == "false"
        track = teach.locator(".specdec-bar-track").first
        background = track.evaluate("e => getComputedStyle(e).backgroundColor")
        red, green, blue = map(int, re.findall(r"\d+", background)[:3])
        assert red + green + blue < 3 * 128  # a dark track, not the light theme's #f0f0f0
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        teach.screenshot(path=str(SCREENSHOTS / "teach-widget-dark.png"))
