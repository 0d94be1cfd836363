"""Math in replies for markdown-it-py: `$…$` and `\\(…\\)` inline, `$$…$$` and `\\[…\\]`
displayed, the same rule as the widgets' (js/src/markdown/math.js) so the HTML fallback finds
the same formulas.

The TeX stays as the text of a placeholder span, so the character-to-token mapping can find
which tokens wrote it before the formula is typeset (reply_html.py). A single `$` follows
pandoc's rule (no space inside either dollar, no digit right after the closing one), so prices
stay text.
"""

from __future__ import annotations

import html

from markdown_it import MarkdownIt
from markdown_it.rules_inline import StateInline

DELIMITERS = (("$$", "$$", True), ("\\[", "\\]", True), ("\\(", "\\)", False), ("$", "$", False))


def find_close(src: str, start: int, close: str, end: int) -> int:
    """The offset of `close` in `src[start:end]`, skipping backslash-escaped characters, or -1."""
    i = start
    while i + len(close) <= end:
        if src.startswith(close, i):
            return i
        i += 2 if src[i] == "\\" and len(close) == 1 else 1
    return -1


def _single_dollar_ok(src: str, start: int, close: int) -> bool:
    inner = src[start + 1 : close]
    after = src[close + 1 : close + 2]
    return inner.strip() == inner and not after.isdigit()


def _math_rule(state: StateInline, silent: bool) -> bool:
    src, pos = state.src, state.pos
    for open_, close, display in DELIMITERS:
        if not src.startswith(open_, pos):
            continue
        start = pos + len(open_)
        end = find_close(src, start, close, state.posMax)
        if end in (-1, start) or (open_ == "$" and not _single_dollar_ok(src, pos, end)):
            continue
        if not silent:
            token = state.push("math", "span", 0)
            token.content = src[start:end]
            token.markup = open_
            token.meta = {"display": display}
        state.pos = end + len(close)
        return True
    return False


def _render_math(self, tokens, index, options, env) -> str:
    token = tokens[index]
    display = " specdec-math-display" if token.meta["display"] else ""
    return f'<span class="specdec-math{display}">{html.escape(token.content)}</span>'


def math_plugin(md: MarkdownIt) -> None:
    """Add the rule before backslash escapes, which would eat `\\(` and `\\[`."""
    md.inline.ruler.before("escape", "math", _math_rule)
    md.add_render_rule("math", _render_math)
