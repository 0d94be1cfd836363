// A markdown-it rule for math: `$…$` and `\(…\)` inline, `$$…$$` and `\[…\]` displayed.
//
// The formula's TeX stays as the text of a placeholder span, so the character-to-token mapping
// can find which tokens wrote it before KaTeX typesets it (render.js). A single `$` follows
// pandoc's rule (no space inside either dollar, no digit right after the closing one) so prices
// stay text. While a reply streams, an opener with no closer yet is a formula in progress: its
// TeX shows as code until the closer arrives (`env.streaming`).

const DELIMITERS = [
  { open: "$$", close: "$$", display: true },
  { open: "\\[", close: "\\]", display: true },
  { open: "\\(", close: "\\)", display: false },
  { open: "$", close: "$", display: false },
];

/** The offset of `close` in `src` from `from` (skipping backslash-escaped characters), or -1. */
export function findClose(src, from, close, max) {
  for (let i = from; i + close.length <= max; i++) {
    if (src.startsWith(close, i)) return i;
    if (src[i] === "\\" && close.length === 1) i++;
  }
  return -1;
}

function singleDollarOk(src, start, end) {
  const inner = src.slice(start + 1, end);
  return inner.trim() === inner && !/[0-9]/.test(src[end + 1] ?? "");
}

function mathRule(state, silent) {
  const { src, pos, posMax } = state;
  for (const { open, close, display } of DELIMITERS) {
    if (!src.startsWith(open, pos)) continue;
    const from = pos + open.length;
    const end = findClose(src, from, close, posMax);
    if (end === -1) {
      if (!state.env?.streaming || open === "$" || from >= posMax) continue;
      if (!silent) pushMath(state, src.slice(from, posMax), open, display, true);
      state.pos = posMax;
      return true;
    }
    if (end === from || (open === "$" && !singleDollarOk(src, pos, end))) continue;
    if (!silent) pushMath(state, src.slice(from, end), open, display, false);
    state.pos = end + close.length;
    return true;
  }
  return false;
}

function pushMath(state, tex, markup, display, pending) {
  const token = state.push("math", "span", 0);
  token.content = tex;
  token.markup = markup;
  token.meta = { display, pending };
}

function renderMath({ content, meta }, escapeHtml) {
  const classes = ["specdec-math"];
  if (meta.display) classes.push("specdec-math-display");
  if (meta.pending) classes.push("specdec-math-pending");
  return `<span class="${classes.join(" ")}">${escapeHtml(content)}</span>`;
}

/** The markdown-it plugin: the rule runs before backslash escapes, which would eat `\(` and `\[`. */
export function mathPlugin(md) {
  md.inline.ruler.before("escape", "math", mathRule);
  md.renderer.rules.math = (tokens, index) => renderMath(tokens[index], md.utils.escapeHtml);
}
