"""A reply as static HTML for places without JavaScript (nbconvert, GitHub): Markdown with
highlighted code and math as MathML, and every token's span, shade and tooltip kept, as the
widgets render it (js/src/markdown/render.js).

markdown-it-py renders each top-level block; the rendered text is the source minus markup, in
order, so walking both in step finds which token wrote each visible character (`align`). Styles
are inline, since GitHub strips style sheets and classes' rules.
"""

from __future__ import annotations

import bisect
import html
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from html.parser import HTMLParser

from latex2mathml.converter import convert as tex_to_mathml
from markdown_it import MarkdownIt
from markdown_it.token import Token
from pygments import highlight as pygments_highlight
from pygments.formatters import HtmlFormatter
from pygments.lexers import get_lexer_by_name
from pygments.util import ClassNotFound

from ..decoding.events import GenerationStats, TokenEvent
from .markdown_math import math_plugin
from .stats_layout import rows_to_html, stats_rows
from .token_html import token_span

# How far ahead a rendered character may be found: past markup such as a link's URL.
MAX_SKIP = 512
_VOID = {"br", "hr", "img", "input", "col", "area", "base", "meta", "link", "wbr"}
_FORMATTER = HtmlFormatter(nowrap=True, noclasses=True)
_CODE_STYLE = (
    "background:#f6f8fa;color:#1f2328;border:1px solid #ddd;border-radius:4px;padding:6px 8px;"
    "overflow-x:auto;white-space:pre"
)


def _highlight(code: str, language: str, _attrs: object) -> str:
    try:
        lexer = get_lexer_by_name(language) if language else None
    except ClassNotFound:
        lexer = None
    return pygments_highlight(code, lexer, _FORMATTER) if lexer else ""


_MARKDOWN = MarkdownIt(
    "commonmark", {"html": False, "breaks": True, "highlight": _highlight}
).enable("table")
_MARKDOWN.use(math_plugin)


@dataclass(frozen=True)
class Block:
    """A top-level block: its tokens, source range, and where its text starts (after a fence's
    opening line, whose language name the alignment must not take for code)."""

    tokens: list[Token]
    start: int
    end: int
    text_from: int


def top_level_blocks(source: str) -> list[Block]:
    tokens = _MARKDOWN.parse(source)
    lines = [0] + [i + 1 for i, char in enumerate(source) if char == "\n"]

    def offset(line: int) -> int:
        return lines[line] if line < len(lines) else len(source)

    blocks: list[Block] = []
    group: list[Token] = []
    for token in tokens:
        group.append(token)
        if token.level == 0 and token.nesting != 1:
            first = group[0].map or [0, 0]
            text_from = offset(first[0] + 1) if group[0].type == "fence" else offset(first[0])
            blocks.append(Block(group, offset(first[0]), offset(first[1]), text_from))
            group = []
    return blocks


def align(source: str, cursor: int, text: str, end: int) -> tuple[list[int], int]:
    """The source offset of each character of rendered `text`, searching from `cursor` to
    `end`; -1 for one not found within MAX_SKIP (the cursor then stays)."""
    offsets = []
    for char in text:
        found = source.find(char, cursor, end)
        if found == -1 or found - cursor > MAX_SKIP:
            offsets.append(-1)
        else:
            offsets.append(found)
            cursor = found + 1
    return offsets, cursor


def token_runs(text: str, offsets: list[int], starts: list[int]) -> list[tuple[str, int]]:
    """`text` split into (characters, token index) runs; an unfound character joins its
    neighbour's run."""
    owners = [bisect.bisect_right(starts, o) - 1 if o >= 0 else -1 for o in offsets]
    previous = next((owner for owner in owners if owner >= 0), -1)
    runs: list[list] = []
    for char, owner in zip(text, owners, strict=True):
        owner = owner if owner >= 0 else previous
        previous = owner
        if runs and runs[-1][1] == owner:
            runs[-1][0] += char
        else:
            runs.append([char, owner])
    return [(chars, owner) for chars, owner in runs]


class _Annotator(HTMLParser):
    """Re-emits rendered HTML with each text node split into token spans; a formula's TeX
    is collected and emitted as MathML with a strip of its tokens' shades under it."""

    def __init__(self, source: str, events: Sequence[TokenEvent], starts: list[int]):
        super().__init__(convert_charrefs=True)
        self.source, self.events, self.starts = source, events, starts
        self.cursor = 0
        self.end = 0
        self.out: list[str] = []
        self.stack: list[tuple[str, str]] = []  # (tag, class)
        self.math: list[tuple[str, int]] | None = None
        self.math_display = False

    def annotate(self, rendered: str, block: Block) -> str:
        self.cursor, self.end, self.out = block.text_from, block.end, []
        self.feed(rendered)
        self.close()
        return "".join(self.out)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        classes = dict(attrs).get("class") or ""
        if "specdec-math" in classes.split():
            self.math, self.math_display = [], "specdec-math-display" in classes
        elif tag == "pre":
            self.out.append(f'<pre style="{_CODE_STYLE}">')
        else:
            self.out.append(self.get_starttag_text() or "")
        if tag not in _VOID:
            self.stack.append((tag, classes))

    def handle_endtag(self, tag: str) -> None:
        if tag in _VOID:  # `<br />` ends itself
            return
        if self.stack and self.stack[-1][0] == tag:
            _, classes = self.stack.pop()
            if "specdec-math" in classes.split():
                self.out.append(self._formula())
                return
        self.out.append(f"</{tag}>")

    def handle_data(self, data: str) -> None:
        in_pre = any(tag == "pre" for tag, _ in self.stack)
        if self.math is None and not in_pre and not data.strip():
            self.out.append(html.escape(data))
            return
        offsets, self.cursor = align(self.source, self.cursor, data, self.end)
        runs = token_runs(data, offsets, self.starts)
        if self.math is not None:
            self.math += runs
            return
        for text, index in runs:
            if index < 0:
                self.out.append(html.escape(text))
            else:
                self.out.append(token_span(self.events[index], text))

    def _formula(self) -> str:
        runs, self.math = self.math or [], None
        tex = "".join(text for text, _ in runs)
        display = "block" if self.math_display else "inline"
        mathml = tex_to_mathml(tex, display=display)
        segments = "".join(
            token_span(self.events[index], "", segment=f"flex-grow:{len(text)};min-width:2px")
            for text, index in runs
            if index >= 0
        )
        outer = (  # a displayed formula as wide as itself, centred: its strip too
            "display:table;margin:0.4em auto"
            if self.math_display
            else "display:inline-flex;flex-direction:column;vertical-align:middle"
        )
        return (
            f'<span class="specdec-math" style="{outer}" data-tex="{html.escape(tex)}">{mathml}'
            f'<span class="specdec-math-strip" style="display:flex;height:4px">{segments}</span>'
            "</span>"
        )


def reply_to_html(events: Sequence[TokenEvent]) -> str:
    """The reply's Markdown rendered, with every token's span, shade and tooltip."""
    texts = [event.text for event in events]
    starts, total = [], 0
    for text in texts:
        starts.append(total)
        total += len(text)
    source = "".join(texts)
    annotator = _Annotator(source, events, starts)
    parts = [
        annotator.annotate(_MARKDOWN.renderer.render(block.tokens, _MARKDOWN.options, {}), block)
        for block in top_level_blocks(source)
    ]
    return f'<div class="specdec-markdown" style="line-height:1.5">{"".join(parts)}</div>'


def replies_side_by_side(replies: Mapping[str, Sequence[TokenEvent]]) -> str:
    """Replies in the columns of one table, each under its name, to compare them. Not in a
    `<pre>`: JupyterLab breaks an output's preformatted text anywhere, mid-word."""
    columns = "".join(
        f"<td style='vertical-align:top;width:{100 / len(replies):.0f}%'>"
        f"<b>{html.escape(name)}</b>{reply_to_html(events)}</td>"
        for name, events in replies.items()
    )
    return f"<table class='specdec-side-by-side'><tr>{columns}</tr></table>"


def result_to_html(events: Sequence[TokenEvent], stats: GenerationStats) -> str:
    """A finished generation: its reply, then its stats in the one layout (stats_layout.py)."""
    return (
        "<div class='specdec-result'>"
        f"{reply_to_html(events)}"
        f"{rows_to_html(stats_rows(stats))}</div>"
    )
