"""The teaching widget in a real browser (JupyterLab, Debian's headless Chromium through
Playwright), clicked through one full round on the toy pair: q bars, then p bars beside
them, the accept and reject marks, the residual, the correction in the running text.
Saves screenshots/teach-widget-residual.png."""

from __future__ import annotations

import re

import pytest

from specdec_jupyter.engines.toy import toy_pair
from specdec_jupyter.sessions.session import Session
from specdec_jupyter.settings import RunSettings
from specdec_jupyter.widgets.teach.walkthrough import TEACHER, Walkthrough
from tests.browser.test_chat_widget import SCREENSHOTS
from tests.support.jupyter_lab import BROWSER, jupyter_lab, notebook_page

pytestmark = BROWSER

PROMPT = "when the draft model"


def first_round_rejecting_seed() -> int:
    """A seed whose first round accepts a draft token and then rejects one, so the round
    shows both marks and the residual."""
    for seed in range(200):
        main, draft = toy_pair()
        walkthrough = Walkthrough(
            Session(main, draft).prompt_tokens(PROMPT), 4, RunSettings.of(TEACHER, seed=seed)
        )
        walkthrough.step(main, draft)
        if walkthrough.current.rejected and walkthrough.current.n_accepted >= 1:
            return seed
    raise AssertionError("no seed in 0..199 gives an accept then a reject")


def ending_seed() -> tuple[int, int]:
    """A seed whose generation ends on an accepted draft ⟨end⟩, and the round it does it in:
    searched here, so no one seed's draws are relied on."""
    for seed in range(200):
        main, draft = toy_pair()
        walkthrough = Walkthrough(
            Session(main, draft).prompt_tokens(PROMPT), 4, RunSettings.of(TEACHER, seed=seed)
        )
        while not walkthrough.done:
            walkthrough.finish_round(main, draft)
        if walkthrough.current is not None and walkthrough.current.ended:
            return seed, walkthrough.current.number
    raise AssertionError("no seed in 0..199 ends on an accepted draft ⟨end⟩")


@pytest.fixture(scope="module")
def page(tmp_path_factory):
    cells = [
        "from specdec_jupyter.widgets import TeachWidget",
        f'TeachWidget(engine="toy", prompt="{PROMPT}", k=4, seed={first_round_rejecting_seed()})',
        f'TeachWidget(engine="toy", prompt="{PROMPT}", k=4, seed={ending_seed()[0]})',
    ]
    with (
        jupyter_lab(tmp_path_factory.mktemp("lab"), {"teach.ipynb": cells}) as (url, _),
        notebook_page(url, "teach.ipynb") as page,
    ):
        yield page


def head_of(teach) -> str:
    return teach.locator(".specdec-round-head").inner_text()


def click_and_wait(page, teach, button: str) -> None:
    """Click a button and wait until the round head shows something else."""
    before = head_of(teach)
    teach.locator(button).click()
    teach.locator(".specdec-round-head").filter(has_not_text=before).wait_for()


def column_places(teach) -> list[tuple[float, int]]:
    """Where each column sits: its left edge, and which row of columns it is in."""
    boxes = [c.bounding_box() for c in teach.locator(".specdec-position").all()]
    tops = sorted({box["y"] for box in boxes})
    return [(box["x"], tops.index(box["y"])) for box in boxes]


def stage_of(teach) -> tuple[int, int]:
    head = teach.locator(".specdec-round-head").inner_text()
    shown, total = re.search(r"stage (\d+) of (\d+)", head).groups()
    return int(shown), int(total)


def step(page, teach) -> int:
    """Click Step and wait for the next stage to show; returns it (1-based)."""
    shown, _ = stage_of(teach)
    teach.locator(".specdec-step").click()
    page.wait_for_function(
        "n => /stage (\\d+) of/.exec(document.querySelector('.specdec-round-head')"
        ".textContent)[1] !== String(n)",
        arg=shown,
    )
    return stage_of(teach)[0]


def test_one_round_clicked_through_shows_every_stage(page):
    teach = page.locator(".specdec-teach").first
    teach.locator(".specdec-round").wait_for()
    assert (
        stage_of(teach)[0] == 1 and "Round 1" in teach.locator(".specdec-round-head").inner_text()
    )
    assert teach.locator(".specdec-position").count() == 4
    assert teach.locator(".specdec-q-bar").count() > 4
    assert teach.locator(".specdec-p-bar").count() == 0
    text_before = teach.locator(".specdec-teach-text").inner_text()

    assert step(page, teach) == 2  # the main model scores the draft
    assert teach.locator(".specdec-p-bar").count() > 4
    assert teach.locator(".specdec-after-draft").count() == 1

    places = column_places(teach)  # from here on no column moves: the layout does not reflow
    while teach.locator(".specdec-mark-rejected").count() == 0:
        step(page, teach)
        assert column_places(teach) == places
    assert teach.locator(".specdec-mark-accepted").count() >= 1
    assert "u " in teach.locator(".specdec-mark-rejected").inner_text()
    assert teach.locator(".specdec-residual").count() == 0

    step(page, teach)  # the residual the correction is drawn from
    residual = teach.locator(".specdec-residual")
    assert residual.locator(".specdec-r-bar").count() >= 1
    assert "max(0, p \u2212 q), then normalised" in residual.inner_text()
    assert residual.locator(".specdec-excess-bar").count() >= 1
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    teach.screenshot(path=str(SCREENSHOTS / "teach-widget-residual.png"))

    shown = step(page, teach)  # the correction joins the running text
    assert column_places(teach) == places
    assert shown == stage_of(teach)[1]
    assert teach.locator(".specdec-correction").count() == 1
    assert teach.locator(".specdec-position[data-verdict='unjudged']").count() >= 1
    page.wait_for_function(
        "n => document.querySelector('.specdec-teach-text').textContent.length > n",
        arg=len(text_before),
    )
    assert teach.locator(".specdec-teach-text .specdec-draft").count() >= 1
    assert "rounds 1" in teach.locator(".specdec-teach-counts").inner_text()


def test_finish_round_and_reset(page):
    teach = page.locator(".specdec-teach").first
    teach.locator(".specdec-finish").click()  # all of round 2
    page.wait_for_function(
        "document.querySelector('.specdec-round-head').textContent.startsWith('Round 2')"
    )
    shown, total = stage_of(teach)
    assert shown == total
    teach.locator('[data-setting="k"]').fill("2")
    teach.locator('[data-setting="k"]').dispatch_event("change")
    page.wait_for_function(
        "document.querySelector('.specdec-round-head').textContent.startsWith('Round 1')"
    )
    assert teach.locator(".specdec-position").count() == 2


def test_the_end_of_generation_and_back(page):
    """The round that accepts a drafted ⟨end⟩ shows no bonus; Back steps out of it and
    Step shows it again, the same."""
    teach = page.locator(".specdec-teach").nth(1)
    teach.locator(".specdec-round").wait_for()
    _, ending_round = ending_seed()
    while not head_of(teach).startswith(f"Round {ending_round}"):
        click_and_wait(page, teach, ".specdec-finish")
    while stage_of(teach)[0] < stage_of(teach)[1]:
        click_and_wait(page, teach, ".specdec-step")
    round_box = teach.locator(".specdec-round")
    assert round_box.locator(".specdec-end").count() == 1
    assert round_box.locator(".specdec-bonus, .specdec-correction").count() == 0
    assert "ends the generation" in head_of(teach)
    assert teach.locator(".specdec-after-draft[data-verdict='unjudged']").count() == 1
    assert "finished" in teach.locator(".specdec-teach-counts").inner_text()
    assert teach.locator(".specdec-step").is_disabled()
    end_text = teach.locator(".specdec-teach-text").inner_text()
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    teach.screenshot(path=str(SCREENSHOTS / "teach-widget-end.png"))

    click_and_wait(page, teach, ".specdec-back")
    shown, total = stage_of(teach)
    assert shown == total - 1 and round_box.locator(".specdec-end").count() == 0
    assert teach.locator(".specdec-step").is_enabled()
    assert "finished" not in teach.locator(".specdec-teach-counts").inner_text()
    assert teach.locator(".specdec-teach-text").inner_text() != end_text
    teach.screenshot(path=str(SCREENSHOTS / "teach-widget-back.png"))

    click_and_wait(page, teach, ".specdec-step")
    assert round_box.locator(".specdec-end").count() == 1
    assert teach.locator(".specdec-teach-text").inner_text() == end_text
