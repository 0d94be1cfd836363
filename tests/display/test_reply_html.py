"""The HTML fallback of a reply (nbconvert, GitHub): Markdown rendered, every token's span kept,
checked on fixed token lists."""

from __future__ import annotations

import re
from html.parser import HTMLParser

from specdec_jupyter.decoding.events import TokenEvent
from specdec_jupyter.display.reply_html import align, reply_to_html, token_runs, top_level_blocks


def events_of(*texts: str, **kinds: str) -> list[TokenEvent]:
    """Tokens alternating draft, main; `kinds` maps "tN" to the kind of token N."""
    return [
        TokenEvent(i, text, "draft" if i % 2 == 0 else "main", i, 0.8, 0.7, 1.0, kinds.get(f"t{i}"))
        for i, text in enumerate(texts)
    ]


class Spans(HTMLParser):
    """(token id from the title, text) of each token span, and whether it sits in <pre>/<strong>."""

    def __init__(self) -> None:
        super().__init__()
        self.stack: list[str] = []
        self.spans: list[tuple[int, str, tuple[str, ...]]] = []
        self.current: int | None = None

    def handle_starttag(self, tag: str, attrs: list) -> None:
        self.stack.append(tag)
        title = dict(attrs).get("title") or ""
        if tag == "span" and " · id " in title:
            self.current = int(re.search(r" · id (\d+)", title).group(1))
            self.spans.append((self.current, "", tuple(self.stack[:-1])))

    def handle_endtag(self, tag: str) -> None:
        self.stack.pop()
        self.current = None

    def handle_data(self, data: str) -> None:
        if self.current is not None:
            token, text, where = self.spans[-1]
            self.spans[-1] = (token, text + data, where)


def spans_of(page: str) -> list[tuple[int, str, tuple[str, ...]]]:
    parser = Spans()
    parser.feed(page)
    return parser.spans


def test_alignment_skips_markup_and_leaves_an_odd_character_alone():
    offsets, cursor = align("**bold** &lt;x", 0, "bold <x", 14)
    assert offsets == [2, 3, 4, 5, 8, -1, 13] and cursor == 14
    assert token_runs("ab<c", [0, 1, -1, 5], [0, 1, 4]) == [("a", 0), ("b<", 1), ("c", 2)]


def test_a_token_straddling_markup_marks_the_text_it_contributed():
    spans = spans_of(reply_to_html(events_of("A **bo", "ld** word", ".\n\nNext")))
    assert [(token, text) for token, text, _ in spans] == [
        (0, "A "),
        (0, "bo"),
        (1, "ld"),
        (1, " word"),
        (2, "."),
        (2, "Next"),
    ]
    assert "strong" in spans[1][2] and "strong" in spans[2][2]


def test_code_blocks_are_highlighted_and_keep_their_tokens_and_greens():
    page = reply_to_html(events_of("```py", "thon\n", "print", "(1)\n", "```\n"))
    code = [(token, text) for token, text, where in spans_of(page) if "pre" in where]
    assert "".join(text for _, text in code) == "print(1)\n"
    assert code[0] == (2, "print")  # not the "p" of the fence's "python"
    assert re.search(r'<span style="color: #[0-9A-Fa-f]+[^"]*"><span class="specdec-draft', page)


def test_math_of_every_delimiter_becomes_mathml_with_a_strip_of_its_tokens():
    texts = ("Let $x", "^2$ and \\(", "y\\) then\n\n$$a", "+b$$\n\n\\[ c \\]")
    page = reply_to_html(events_of(*texts))
    assert re.findall(r'data-tex="([^"]*)"', page) == ["x^2", "y", "a+b", " c "]
    assert page.count("<math") == 4 and page.count('display="block"') == 2
    first_strip = page.split('class="specdec-math-strip"')[1].split("</span></span>")[0]
    assert re.findall(r"flex-grow:(\d+)", first_strip) == ["1", "2"]


def test_prices_stay_text():
    page = reply_to_html(events_of("It costs $5 and $10."))
    assert "<math" not in page and "$5 and $10." in page


def test_cjk_and_emoji_stay_whole_and_an_empty_token_owns_nothing():
    spans = spans_of(reply_to_html(events_of("你好", "", "😀", "世界 🎉!")))
    assert [(token, text) for token, text, _ in spans] == [(0, "你好"), (2, "😀"), (3, "世界 🎉!")]


def test_corrections_and_bonus_tokens_are_marked_apart_and_say_what_they_replaced():
    events = events_of("a", "b", "c", t1="correction", t2="accepted")
    events[1] = TokenEvent(1, "b", "main", 1, 0.6, 0.1, None, "correction", ("x", "y"))
    events.append(TokenEvent(3, "d", "main", 2, 0.9, None, None, "bonus"))
    page = reply_to_html(events)
    assert 'class="specdec-main specdec-kind-correction"' in page and "wavy" in page
    assert 'class="specdec-main specdec-kind-bonus"' in page and "dotted" in page
    assert "replaced draft &#x27;xy&#x27;" in page


def test_raw_html_in_a_reply_is_text():
    page = reply_to_html(events_of("<b>x</b>"))
    assert "<b>" not in page and "&lt;b&gt;x&lt;/b&gt;" in page


def test_a_single_newline_is_a_line_break_as_in_chat_uis():
    page = reply_to_html(
        events_of("An old silent pond\n", "A frog jumps into", " the pond\nSplash")
    )
    assert page.count("<br") == 2
    texts = "".join(text for _, text, _ in spans_of(page))
    assert texts.replace("\n", "") == "An old silent pondA frog jumps into the pondSplash"


def test_blocks_split_at_the_top_level_and_a_fence_starts_after_its_opening_line():
    source = "# T\n\n- a\n- b\n\n```py\nx\n```\n"
    blocks = top_level_blocks(source)
    assert [source[b.start : b.end].strip() for b in blocks] == ["# T", "- a\n- b", "```py\nx\n```"]
    assert source[blocks[2].text_from :].startswith("x\n")
