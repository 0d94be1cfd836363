"""The teaching widget in a real browser with a draft of another vocabulary: Qwen2.5-Coder 1.5B
taught with SmolLM2-135M, which drafts text. A round shows the draft's own tokens with their
ids, the text they spell, then the main model's tokens for it with a verdict on each, and the
walk goes on round by round. Saves screenshots/teach-widget-text-draft.png."""

from __future__ import annotations

import re

import pytest

from tests.browser.test_chat_widget import SCREENSHOTS
from tests.browser.test_teach import click_and_wait, head_of, stage_of, step
from tests.support.jupyter_lab import BROWSER, lab_notebook

pytestmark = [*BROWSER, pytest.mark.real]

PROMPT = "Explain the Pythagorean theorem"
CELLS = [
    "from specdec_jupyter.widgets import TeachWidget",
    f'TeachWidget("qwen2.5-coder-1.5b", draft="smollm2-135m-instruct", prompt="{PROMPT}", '
    "k=3, temperature=0, max_tokens=24)",
]


@pytest.fixture(scope="module")
def page(tmp_path_factory):
    with lab_notebook(tmp_path_factory.mktemp("lab"), "teach-text.ipynb", CELLS) as page:
        yield page


def chip_texts(row) -> list[str]:
    return [chip.inner_text() for chip in row.locator(".specdec-token-chip").all()]


def test_a_round_of_text_shows_the_drafts_tokens_the_text_and_the_main_tokens(page):
    teach = page.locator(".specdec-teach")
    box = teach.locator(".specdec-text-draft")
    box.wait_for(timeout=180_000)  # the pair loads, then round 1 is drafted
    assert "Round 1" in head_of(teach) and "another vocabulary" in head_of(teach)
    rows = box.locator(".specdec-text-row")
    assert "SmolLM2" in rows.nth(0).inner_text() and "its vocabulary" in rows.nth(0).inner_text()
    own = chip_texts(rows.nth(0))
    assert own and all(re.search(r"#\d+$", chip) for chip in own)
    assert rows.nth(1).inner_text().startswith("their text")
    assert box.locator(".specdec-text-whole").inner_text().strip()
    assert rows.count() == 2 and teach.locator(".specdec-position").count() == 0

    assert step(page, teach) == 2  # the main model's tokenizer reads the text
    assert "q = 1" in head_of(teach)
    main_row = box.locator(".specdec-text-row").nth(2)
    assert main_row.inner_text().startswith("the main model's tokens")
    main_tokens = chip_texts(main_row)
    assert 1 <= len(main_tokens) <= 3 and all(re.search(r"#\d+$", c) for c in main_tokens)
    assert teach.locator(".specdec-position").count() == len(main_tokens)
    assert teach.locator(".specdec-drafted-as").count() == len(main_tokens)
    proposed = box.locator(".specdec-text-proposed").inner_text()
    assert proposed.strip() and proposed in box.locator(".specdec-text-line").inner_text()

    shown, total = stage_of(teach)
    while shown < total:
        shown = step(page, teach)
    verdicts = [
        chip.get_attribute("data-verdict") for chip in main_row.locator("[data-verdict]").all()
    ]
    assert verdicts[0] in ("accepted", "rejected") and "pending" not in verdicts
    assert teach.locator(".specdec-correction, .specdec-bonus").count() == 1
    assert re.search(r"[✓✗]", main_row.inner_text())
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    teach.screenshot(path=str(SCREENSHOTS / "teach-widget-text-draft.png"))


def test_the_walk_goes_on_round_by_round(page):
    teach = page.locator(".specdec-teach")
    text_before = teach.locator(".specdec-teach-text").inner_text()
    for number in (2, 3):
        click_and_wait(page, teach, ".specdec-finish")
        assert head_of(teach).startswith(f"Round {number}")
    assert teach.locator(".specdec-teach-text").inner_text() != text_before
    assert "rounds 3" in teach.locator(".specdec-teach-counts").inner_text()
    shown, total = stage_of(teach)
    assert shown == total
    click_and_wait(page, teach, ".specdec-back")  # the stage before, as it was drawn
    assert head_of(teach).startswith("Round 3") and stage_of(teach) == (total - 1, total)
    assert teach.locator(".specdec-text-draft .specdec-token-chip").count() >= 2
