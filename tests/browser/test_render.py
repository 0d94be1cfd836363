"""Rendered replies in a real browser: JupyterLab on loopback and Debian's headless Chromium.

One notebook shows a `%%specdec` reply widget holding a fixed token list (a heading, a list,
a highlighted code block, inline and display math, a table, corrections with rejected draft
tokens), then loads the real Qwen2.5-Coder pair and opens the chat, which the test asks for a
Markdown answer with a code block. The tests check the rendering and every token's span inside
it, in JupyterLab's light and dark themes, and the HTML fallback (`result_to_html`, no script)
in a plain page. Screenshots go to $SPECDEC_SCREENSHOTS (default: a pytest tmp folder).
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from specdec_jupyter.decoding.events import GenerationStats, TokenEvent
from specdec_jupyter.display.reply_html import result_to_html
from specdec_jupyter.sessions.wire import token_to_dict
from tests.support.jupyter_lab import BROWSER, lab_notebook

pytestmark = [*BROWSER, pytest.mark.real]

FIXED_REPLY = r"""## Quicksort

Sort a list by **partitioning** it around a pivot:

- pick a pivot
- split the rest into smaller and larger

```python
def quicksort(xs):
    if len(xs) <= 1:
        return xs
    pivot, *rest = xs  # the first element splits the rest
    smaller = [x for x in rest if x < pivot]
    return quicksort(smaller) + [pivot] + quicksort([x for x in rest if x >= pivot])
```

On average it makes $O(n \log n)$ comparisons, since \(T(n) = 2T(n/2) + O(n)\):

$$T(n) = 2T\left(\frac{n}{2}\right) + cn$$

| case | time |
|---|---|
| best | $n \log n$ |
| worst | $n^2$ |
"""
CHAT_PROMPT = "In Markdown: one sentence, then a short Python code block that reverses a list."


def fixed_events(text: str = FIXED_REPLY, size: int = 4) -> list[TokenEvent]:
    """The text in tokens of `size` characters, in rounds of four accepted draft tokens and one
    of the main model's: a bonus in even rounds, a correction (with two rejected) in odd ones;
    p varies so the shades do."""
    events = []
    for i in range(0, len(text), size):
        n = i // size
        round_, position = divmod(n, 5)
        p = 0.2 + 0.8 * ((n * 37) % 10) / 9
        if position < 4:
            events.append(
                TokenEvent(n, text[i : i + size], "draft", round_, min(p, 1), 0.9, 1.0, "accepted")
            )
        elif round_ % 2 == 0:
            bonus = TokenEvent(n, text[i : i + size], "main", round_, 0.9, None, None, "bonus")
            events.append(bonus)
        else:
            events.append(
                TokenEvent(
                    n, text[i : i + size], "main", round_, 0.7, 0.1, None, "correction", ("ab", "c")
                )
            )
    return events


FIXED_CELL = f"""from specdec_jupyter.decoding.events import GenerationStats
from specdec_jupyter.widgets.reply import ReplyWidget
from specdec_jupyter.sessions.wire import reply_message, token_from_dict
fixed = ReplyWidget()
events = [token_from_dict(token) for token in {[token_to_dict(e) for e in fixed_events()]!r}]
fixed.finish(reply_message(events, GenerationStats(draft_model="fixed-draft"),
                           main_model="fixed-main", draft_model="fixed-draft", settings={{}}))
fixed"""
STORY = (
    "The door creaked open and a draught of cold air carried the smell of rain and old paper "
    "into the hallway, where the lamp flickered twice before it settled into a steady glow. "
) * 4
# Notebook 03's side-by-side panel: two replies (the HTML fallback) in a table's halves.
SIDE_BY_SIDE_CELL = f"""from IPython.display import HTML
from specdec_jupyter.display.reply_html import replies_side_by_side
from specdec_jupyter.sessions.wire import token_from_dict
story = [token_from_dict(token) for token in {[token_to_dict(e) for e in fixed_events(STORY, 5)]!r}]
HTML(replies_side_by_side({{"story": story, "the same story": story}}))"""
NOTEBOOK_CELLS = [
    "%load_ext specdec_jupyter",
    FIXED_CELL,
    SIDE_BY_SIDE_CELL,
    "%specdec load qwen2.5-coder-1.5b --draft qwen2.5-coder-0.5b",
    "%specdec chat",
]


@pytest.fixture(scope="module")
def screenshots(tmp_path_factory) -> Path:
    folder = Path(os.environ.get("SPECDEC_SCREENSHOTS") or tmp_path_factory.mktemp("shots"))
    folder.mkdir(parents=True, exist_ok=True)
    return folder


@pytest.fixture(scope="module")
def page(qwen_paths, tmp_path_factory):
    home = tmp_path_factory.mktemp("lab")
    with lab_notebook(home, "render.ipynb", NOTEBOOK_CELLS) as page:
        yield page


@pytest.fixture(scope="module")
def fixed(page):
    reply = page.locator(".specdec-reply-view .specdec-reply").first
    reply.locator(".specdec-math .katex").first.wait_for()
    return reply


def set_theme(page, name: str, light: bool) -> None:
    command = f"'apputils:change-theme', {{theme: '{name}'}}"
    page.evaluate(f"window.jupyterapp.commands.execute({command})")
    page.wait_for_function(f"document.body.dataset.jpThemeLight === '{str(light).lower()}'")


def check_rendering(page, reply, green: str = "34, 197, 94") -> None:
    """A heading, a list, a highlighted code block with green token spans inside (`green`, the
    theme's), typeset formulas (KaTeX's own font loaded) with a strip of token shades, a table."""
    assert reply.locator("h2").inner_text().strip() == "Quicksort"
    assert reply.locator("li").count() == 2 and reply.locator("table td").count() == 4
    code = reply.locator(".specdec-code pre code")
    assert code.locator(".hljs-keyword").count() > 0
    assert code.locator(".specdec-draft").count() > 10
    assert f"rgba({green}" in code.locator(".specdec-draft").first.evaluate(
        "e => getComputedStyle(e).backgroundColor"
    )
    assert code.inner_text().startswith("def quicksort(xs):")
    formulas = reply.locator(".specdec-math")
    assert formulas.count() == 5
    assert reply.locator(".specdec-math-display .katex-display").count() == 1
    assert formulas.first.locator(".specdec-math-strip > span").count() >= 1
    assert page.evaluate(
        "[...document.fonts].some(f => f.family.includes('KaTeX_Main') && f.status === 'loaded')"
    )
    assert "\\log" not in reply.locator("p").nth(1).inner_text()  # typeset, not TeX


def test_fixed_reply_renders_with_every_token_in_light_and_dark(page, fixed, screenshots):
    for theme, light in (("JupyterLab Light", True), ("JupyterLab Dark", False)):
        set_theme(page, theme, light)
        check_rendering(page, fixed, "34, 197, 94" if light else "20, 83, 45")
        colour = fixed.locator("p").first.evaluate("e => getComputedStyle(e).color")
        inside = colour[colour.index("(") + 1 : colour.index(")")]
        channels = [int(c) for c in inside.split(",")[:3]]
        assert (sum(channels) < 3 * 128) == light, colour  # text follows the theme
        fixed.locator("xpath=ancestor::div[contains(@class,'specdec-reply-view')]").screenshot(
            path=str(screenshots / f"reply-fixed-{'light' if light else 'dark'}.png")
        )
    set_theme(page, "JupyterLab Light", True)


# Each token span's text and the colour behind it (its own and its ancestors' backgrounds laid
# over each other), as WCAG 2 measures contrast; colours come as rgb(), rgba() or color(srgb).
TOKEN_CONTRASTS = """root => {
  const parse = (text) => {
    const srgb = text.match(/^color\\(srgb ([^)]*)\\)$/);
    const numbers = (srgb ? srgb[1] : text.match(/^rgba?\\(([^)]*)\\)$/)[1])
      .split(/[\\s,\\/]+/).filter(Boolean).map(Number);
    const scale = srgb ? 255 : 1;
    return [numbers[0] * scale, numbers[1] * scale, numbers[2] * scale, numbers[3] ?? 1];
  };
  const over = (top, below) => [0, 1, 2].map((i) => top[i] * top[3] + below[i] * (1 - top[3]));
  const behind = (element) => {
    const layers = [];
    for (let e = element; e; e = e.parentElement) {
      const colour = parse(getComputedStyle(e).backgroundColor);
      if (colour[3] > 0) layers.unshift(colour);
      if (colour[3] === 1) break;
    }
    return layers.reduce((below, layer) => over(layer, below), [255, 255, 255]);
  };
  const luminance = (rgb) => rgb.map((c) => c / 255)
    .map((c) => (c <= 0.04045 ? c / 12.92 : ((c + 0.055) / 1.055) ** 2.4))
    .reduce((sum, c, i) => sum + c * [0.2126, 0.7152, 0.0722][i], 0);
  return [...root.querySelectorAll(".specdec-draft, .specdec-main")]
    .filter((span) => span.textContent.trim() && span.getClientRects().length)
    .map((span) => {
      const background = behind(span);
      const [a, b] = [luminance(over(parse(getComputedStyle(span).color), background)),
                      luminance(background)].sort((x, y) => y - x);
      const where = span.closest("pre") ? "code" : "prose";
      return [span.className, span.textContent, where, (a + 0.05) / (b + 0.05)];
    });
}"""


def test_every_token_kind_reads_at_wcag_aa_in_code_and_prose_in_both_themes(page, fixed):
    """Dark theme: keywords (rgb(76,175,80)) on the green read at 1.6 : 1. Every token, each
    kind (accepted draft, bonus, correction, plain), inside code (keywords, names, numbers,
    a comment) and prose, reads at 4.5 : 1 or more on JupyterLab's dark and light themes."""
    for theme, light in (("JupyterLab Dark", False), ("JupyterLab Light", True)):
        set_theme(page, theme, light)
        measured = fixed.evaluate(TOKEN_CONTRASTS)
        kinds = {(cls.split()[1], where) for cls, _, where, _ in measured}
        for kind in ("accepted", "bonus", "correction"):
            assert {(f"specdec-kind-{kind}", "code"), (f"specdec-kind-{kind}", "prose")} <= kinds
        assert fixed.locator("pre .hljs-comment .specdec-draft").count() > 0
        low = sorted(
            (ratio, cls, text, where) for cls, text, where, ratio in measured if ratio < 4.5
        )
        assert not low, f"{theme}: {len(low)} of {len(measured)} tokens under 4.5 : 1: {low[:5]}"
    set_theme(page, "JupyterLab Light", True)


# The words of `root` that a line break cuts in two: each word's range, and the distinct
# lines its boxes sit on.
BROKEN_WORDS = """root => {
  const broken = [];
  const positions = [];
  for (const reply of root.querySelectorAll(".specdec-markdown")) {
    const walker = document.createTreeWalker(reply, NodeFilter.SHOW_TEXT);
    for (let node = walker.nextNode(); node; node = walker.nextNode())
      for (let i = 0; i < node.data.length; i++) positions.push([node, i, node.data[i]]);
    positions.push([null, 0, " "]);  // a reply's end ends its last word
  }
  let start = null;
  for (let i = 0; i <= positions.length; i++) {
    const inWord = i < positions.length && /\\S/.test(positions[i][2]);
    if (inWord && start === null) start = i;
    if (!inWord && start !== null) {
      const range = document.createRange();
      range.setStart(positions[start][0], positions[start][1]);
      const [node, offset] = positions[i - 1];
      range.setEnd(node, offset + 1);
      const tops = new Set([...range.getClientRects()].filter((r) => r.width > 0)
        .map((r) => Math.round(r.top)));
      if (tops.size > 1) broken.push(range.toString());
      start = null;
    }
  }
  return broken;
}"""


def test_replies_side_by_side_break_lines_between_words(page, fixed):
    """Notebook 03's panel of two replies side by side broke words mid-word: it put each in a
    `<pre>`, which JupyterLab breaks anywhere. `replies_side_by_side` lays them out."""
    panel = page.locator("table.specdec-side-by-side").first
    panel.wait_for()
    assert panel.locator(".specdec-draft").count() > 20
    broken = panel.evaluate(BROKEN_WORDS)
    assert not broken, f"words cut by a line break: {broken[:10]}"


def test_corrections_rejected_drafts_and_the_round_on_hover(page, fixed):
    message = fixed.locator("xpath=..")
    assert fixed.locator(".specdec-kind-correction").count() > 0
    assert fixed.locator(".specdec-kind-bonus").count() > 0
    struck = fixed.locator(".specdec-rejected").first
    assert not struck.is_visible()
    message.locator(".specdec-rejected-toggle input").check()
    assert struck.is_visible() and struck.inner_text() == "abc"
    message.locator(".specdec-rejected-toggle input").uncheck()

    token = fixed.locator("pre .specdec-draft").nth(3)
    token.hover()
    tip = page.locator(".specdec-reply-view .specdec-tip").first
    tip.wait_for()
    assert "round" in tip.inner_text() and "p (main)" in tip.inner_text()
    round_ = token.get_attribute("data-round")
    outlined = fixed.locator(".specdec-round-hover")
    assert outlined.count() >= 4
    assert {outlined.nth(i).get_attribute("data-round") for i in range(outlined.count())} == {
        round_
    }


def test_a_real_chat_reply_renders_its_code_block_with_green_tokens(page, screenshots):
    chat = page.locator(".specdec-chat:not(.specdec-reply-view)").first
    state = "document.querySelector('.specdec-chat:not(.specdec-reply-view)')?.dataset.state"
    page.wait_for_function(f"{state} === 'idle'", timeout=180_000)
    field = chat.locator('[data-setting="max_tokens"]')
    if not field.is_visible():
        chat.locator(".specdec-settings summary").click()
    field.fill("120")
    field.dispatch_event("change")
    chat.locator('[data-setting="draft_tokens"]').select_option("4")  # draft every round
    chat.locator(".specdec-settings summary").click()
    chat.locator(".specdec-input").fill(CHAT_PROMPT)
    chat.locator(".specdec-input").press("Enter")
    reply = chat.locator(".specdec-assistant:not(.specdec-live)").first
    reply.locator(".specdec-stats").wait_for(timeout=900_000)  # a busy machine: minutes
    body = reply.locator(".specdec-reply")
    code = body.locator(".specdec-code pre code")
    assert code.count() >= 1, body.inner_html()
    assert code.first.locator(".specdec-draft").count() > 0
    paragraphs = body.locator(":scope > .specdec-block > p").all_inner_texts()
    assert not any(p.lstrip().startswith("```") for p in paragraphs), body.inner_html()
    chat.screenshot(path=str(screenshots / "chat-light.png"))
    set_theme(page, "JupyterLab Dark", False)
    chat.screenshot(path=str(screenshots / "chat-dark.png"))
    set_theme(page, "JupyterLab Light", True)


@pytest.mark.parametrize("scheme", ["light", "dark"])
def test_the_html_fallback_renders_the_same_without_a_script(page, scheme, screenshots):
    """`result_to_html` in a plain page of the same browser, offline, no script."""
    colours = "background:#0d1117;color:#e6edf3" if scheme == "dark" else "background:#fff"
    page_html = (
        f"<!doctype html><html><body style='{colours};font-family:sans-serif;max-width:900px'>"
        f"{result_to_html(fixed_events(), GenerationStats(draft_model='fixed-draft'))}"
        "</body></html>"
    )
    plain = page.context.browser.new_page(viewport={"width": 1000, "height": 1400})
    try:
        plain.route("**/*", lambda route: route.abort())  # offline: nothing fetched
        plain.set_content(page_html)
        reply = plain.locator(".specdec-markdown")
        assert plain.locator("script").count() == 0
        assert reply.locator("h2").inner_text() == "Quicksort" and reply.locator("li").count() == 2
        code = reply.locator("pre code")
        assert code.locator(".specdec-draft").count() > 10
        assert code.inner_text().startswith("def quicksort(xs):")
        assert reply.locator(".specdec-math math").count() == 5
        assert reply.locator("math[display='block']").count() == 1
        height = reply.locator("math[display='block']").evaluate(
            "e => e.getBoundingClientRect().height"
        )
        assert height > 20  # MathML laid out as a formula (a fraction stands tall)
        correction = reply.locator(".specdec-kind-correction").first
        assert "replaced draft" in correction.get_attribute("title")
        reply.screenshot(path=str(screenshots / f"fallback-{scheme}.png"))
    finally:
        plain.close()
