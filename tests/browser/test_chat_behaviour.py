"""How the chat behaves in JupyterLab in Chromium, light theme then dark: the transcript
follows the stream only while the reader is at its end, Clear is disabled while a reply
streams and can be undone, Regenerate keeps versions (the 1/2 switcher), Continue extends the
last reply, editing a message of yours asks again from it (undoable); and the widget takes the
theme's colours.

The chat runs on the toy engine, held at known steps: the notebook puts a gate in front of
the main model's evaluations (one per round), and the test lets a number of rounds through
by running code in the kernel, then waits for what those rounds must show (each round emits
at least one token). Nothing waits on time. Screenshots go to screenshots/ (or
$SPECDEC_SCREENSHOTS): chat-following-light.png, chat-light.png, chat-dark.png.
"""

from __future__ import annotations

import re

import pytest

from tests.browser.test_chat_widget import SCREENSHOTS, set_max_tokens
from tests.support.jupyter_lab import BROWSER, jupyter_lab, notebook_page

pytestmark = BROWSER

GATE = '''\
import threading
from specdec_jupyter.engines.toy import ToyEngine


class Gate:
    """Holds the main model's evaluations while closed; `passes.release(n)` lets n through."""

    def __init__(self):
        self.closed = False
        self.passes = threading.Semaphore(0)

    def open(self):
        self.closed = False
        self.passes.release(10_000)


gate = Gate()
_evaluate = ToyEngine.evaluate


def gated(engine, tokens, n_logits):
    if engine.name == "toy-trigram" and gate.closed:
        gate.passes.acquire()
    return _evaluate(engine, tokens, n_logits)


ToyEngine.evaluate = gated'''
CELLS = [
    GATE,
    "from specdec_jupyter.widgets import ChatWidget\n"
    'ChatWidget("toy-trigram", draft="toy-bigram", engine="toy", max_tokens=1000, draft_tokens=3)',
]
TRANSCRIPT = ".specdec-chat .specdec-transcript"
DISTANCE_FROM_END = (
    f"(() => {{ const t = document.querySelector('{TRANSCRIPT}');"
    " return t.scrollHeight - t.scrollTop - t.clientHeight; })()"
)
LIVE_SPANS = "document.querySelectorAll('.specdec-live .specdec-reply span').length"


@pytest.fixture(scope="module")
def page(tmp_path_factory):
    with (
        jupyter_lab(tmp_path_factory.mktemp("lab"), {"behaviour.ipynb": CELLS}) as (url, _),
        notebook_page(url, "behaviour.ipynb") as page,
    ):
        yield page


@pytest.fixture(scope="module")
def chat(page):
    widget = page.locator(".specdec-chat").first
    widget.wait_for()
    page.wait_for_function("document.querySelector('.specdec-chat').dataset.state === 'idle'")
    return widget


def kernel(page, code: str) -> None:
    """Run `code` in the notebook's kernel (the widget's runs go on on their own threads)."""
    page.evaluate(
        "code => window.jupyterapp.shell.currentWidget.sessionContext.session.kernel"
        ".requestExecute({code}).done",
        code,
    )


def let_rounds_through(page, rounds: int) -> int:
    """Let `rounds` rounds of the held reply run; returns how many tokens must show then."""
    shown = page.evaluate(LIVE_SPANS)
    kernel(page, f"gate.passes.release({rounds})")
    page.wait_for_function(f"{LIVE_SPANS} >= {shown + rounds}")
    return shown + rounds


def replies(chat):
    return chat.locator(".specdec-assistant:not(.specdec-live)")


def wait_until_idle(page) -> None:
    page.wait_for_function("document.querySelector('.specdec-chat').dataset.state === 'idle'")


def test_the_scroll_follows_the_stream_only_while_the_reader_is_at_the_end(page, chat):
    chat.locator(".specdec-input").fill("the main model")  # a first reply, to scroll through
    chat.locator(".specdec-send").click()
    replies(chat).first.locator(".specdec-stats").wait_for()
    kernel(page, "gate.closed = True")
    chat.locator(".specdec-input").fill("the cat sat on the")
    chat.locator(".specdec-send").click()
    chat.locator(".specdec-live").wait_for(state="attached")
    let_rounds_through(page, 60)
    page.wait_for_function(
        f"document.querySelector('{TRANSCRIPT}').scrollHeight > "
        f"document.querySelector('{TRANSCRIPT}').clientHeight + 300"
    )
    assert chat.locator(".specdec-clear").is_disabled()  # no Clear while a reply streams
    assert page.evaluate(DISTANCE_FROM_END) <= 24  # following the stream

    chat.locator(".specdec-transcript").hover()
    page.mouse.wheel(0, -300)  # the reader scrolls up to read
    page.wait_for_function(f"{DISTANCE_FROM_END} > 100")
    let_rounds_through(page, 20)
    assert page.evaluate(DISTANCE_FROM_END) > 100  # left where they were reading

    page.mouse.wheel(0, 100_000)  # back at the end: the follow resumes
    page.wait_for_function(f"{DISTANCE_FROM_END} <= 24")
    let_rounds_through(page, 20)
    assert page.evaluate(DISTANCE_FROM_END) <= 24
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    chat.screenshot(path=str(SCREENSHOTS / "chat-following-light.png"))

    chat.locator(".specdec-stop").click()
    kernel(page, "gate.open()")
    replies(chat).nth(1).locator(".specdec-stats").wait_for()
    assert "stopped by you" in replies(chat).nth(1).locator(".specdec-stats").inner_text()
    assert not chat.locator(".specdec-clear").is_disabled()


def test_clear_can_be_undone(chat):
    assert chat.locator(".specdec-msg").count() == 4
    chat.locator(".specdec-clear").click()
    chat.locator(".specdec-undo").wait_for()
    assert chat.locator(".specdec-msg").count() == 0
    assert chat.locator(".specdec-undo").inner_text() == "Undo clear (brings back 4 messages)"
    chat.locator(".specdec-undo").click()
    chat.locator(".specdec-undo").wait_for(state="hidden")
    assert chat.locator(".specdec-msg").count() == 4


def test_regenerate_keeps_versions_and_the_switcher_shows_them(page, chat):
    first = replies(chat).last.locator(".specdec-reply").inner_text()
    set_max_tokens(chat, 24)
    chat.locator(".specdec-regenerate").click()
    label = replies(chat).last.locator(".specdec-version-label")
    label.wait_for()
    wait_until_idle(page)
    assert label.inner_text() == "2/2"
    assert chat.locator(".specdec-assistant").count() == 2
    second = replies(chat).last.locator(".specdec-reply").inner_text()
    assert second != first and first.startswith(second.rstrip())  # greedy: the same start

    replies(chat).last.locator(".specdec-version-step").first.click()  # to the previous
    replies(chat).last.locator(".specdec-version-label", has_text="1/2").wait_for()
    assert replies(chat).last.locator(".specdec-reply").inner_text() == first
    replies(chat).last.locator(".specdec-version-step").last.click()  # to the next
    replies(chat).last.locator(".specdec-version-label", has_text="2/2").wait_for()
    assert replies(chat).last.locator(".specdec-reply").inner_text() == second


def test_continue_extends_the_last_reply(page, chat):
    reply = replies(chat).last
    before = reply.locator(".specdec-reply").inner_text()
    spans = reply.locator(".specdec-reply span").count()
    chat.locator(".specdec-continue").click()
    page.wait_for_function(  # the continued reply has landed, longer, the old text first
        "([spans, before]) => { const c = document.querySelector('.specdec-chat');"
        " const r = [...c.querySelectorAll('.specdec-assistant:not(.specdec-live)')].at(-1);"
        " return c.dataset.state === 'idle' && r"
        " && r.querySelectorAll('.specdec-reply span').length > spans"
        " && r.querySelector('.specdec-reply').innerText.startsWith(before); }",
        arg=[spans, before],
    )
    reply = replies(chat).last
    assert reply.locator(".specdec-reply").inner_text().startswith(before)
    assert reply.locator(".specdec-version-label").inner_text() == "2/2"
    assert reply.locator(".specdec-strip-round").count() > 0
    assert "drafted tokens accepted" in reply.locator(".specdec-strip-summary").inner_text()


def test_editing_a_message_asks_again_from_there_and_can_be_undone(page, chat):
    assert chat.locator(".specdec-msg").count() == 4
    first = chat.locator(".specdec-user").first
    first.hover()  # Edit shows on hover
    first.locator(".specdec-edit").click()
    editor = first.locator(".specdec-edit-input")
    assert editor.input_value() == "the main model"
    editor.fill("the draft model proposes")
    first.locator(".specdec-edit-send").click()
    page.wait_for_function(  # the edited message and its new reply, finished
        "(() => { const c = document.querySelector('.specdec-chat');"
        " return c.dataset.state === 'idle' && !c.querySelector('.specdec-live')"
        " && c.querySelectorAll('.specdec-msg').length === 2; })()"
    )
    assert chat.locator(".specdec-user .specdec-text").inner_text() == "the draft model proposes"
    assert replies(chat).first.locator(".specdec-reply").inner_text().strip()
    chat.locator(".specdec-undo").click()
    page.wait_for_function("document.querySelectorAll('.specdec-chat .specdec-msg').length === 4")
    assert chat.locator(".specdec-user .specdec-text").first.inner_text() == "the main model"


def rgb(locator, prop: str) -> tuple[int, ...]:
    value = locator.evaluate(f"e => getComputedStyle(e).{prop}")
    return tuple(int(n) for n in re.findall(r"\d+", value)[:3])


def test_the_chat_takes_jupyterlabs_colours_in_light_and_dark(page, chat):
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    chat.screenshot(path=str(SCREENSHOTS / "chat-light.png"))
    assert sum(rgb(chat.locator(".specdec-transcript"), "backgroundColor")) > 3 * 200
    page.evaluate(
        "window.jupyterapp.commands.execute('apputils:change-theme', {theme: 'JupyterLab Dark'})"
    )
    page.wait_for_function("document.body.dataset.jpThemeLight === 'false'")
    page.wait_for_function(  # the dark theme's CSS has landed
        f"getComputedStyle(document.querySelector('{TRANSCRIPT}')).backgroundColor"
        " !== 'rgb(255, 255, 255)'"
    )
    for part in (".specdec-transcript", ".specdec-main-select", ".specdec-regenerate"):
        assert sum(rgb(chat.locator(part), "backgroundColor")) < 3 * 100, part
    assert sum(rgb(chat.locator(".specdec-main-select"), "color")) > 3 * 150
    scheme = chat.locator(".specdec-main-select").evaluate("e => getComputedStyle(e).colorScheme")
    assert scheme == "dark"
    chat.screenshot(path=str(SCREENSHOTS / "chat-dark.png"))
