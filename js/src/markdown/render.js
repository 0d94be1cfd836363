// A reply rendered as Markdown (highlighted code with a copy button, typeset math) with every
// token's span, shade and tooltip kept: markdown-it renders, then align.js finds which token
// wrote each visible character and the text is split into token spans, inside code and under
// formulas too. While a reply streams, only the top-level blocks whose source changed are
// rendered again (in practice the last one or two), so a long reply costs the same per update
// as a short one.

import hljs from "highlight.js/lib/common";
import katex from "katex";
import MarkdownIt from "markdown-it";
import { rejectedSpan, tokenSpan } from "../provenance.js";
import { alignText, tokenRuns, tokenStarts } from "./align.js";
import { mathPlugin } from "./math.js";

function highlight(code, language) {
  if (!language || !hljs.getLanguage(language)) return "";
  return hljs.highlight(code, { language, ignoreIllegals: true }).value;
}

/** The one Markdown parser: no raw HTML (a reply is text, not markup to trust; `<file_sep>` is
 * text), and a single newline is a line break, as chat UIs keep it (a haiku keeps its lines). */
export const markdown = new MarkdownIt({ html: false, breaks: true, linkify: false, typographer: false, highlight });
markdown.use(mathPlugin);

// Fenced code gets a bar with its language and a copy button; `specdec-chrome` marks text that
// no token wrote, which the alignment skips.
const renderFence = markdown.renderer.rules.fence;
markdown.renderer.rules.fence = (tokens, index, options, env, self) => {
  const language = markdown.utils.escapeHtml(tokens[index].info.trim().split(/\s+/)[0] ?? "");
  return (
    `<div class="specdec-code"><div class="specdec-code-bar specdec-chrome"><span>${language}</span>` +
    `<button type="button" class="specdec-copy" title="Copy the code">Copy</button></div>` +
    `${renderFence(tokens, index, options, env, self)}</div>`
  );
};

/** The offset of each line's start in `source`. */
function lineStarts(source) {
  const starts = [0];
  for (let i = source.indexOf("\n"); i !== -1; i = source.indexOf("\n", i + 1)) starts.push(i + 1);
  return starts;
}

/**
 * The reply's top-level blocks: [{start, end, from, tokens}], `start`/`end` the block's source
 * range and `from` where its text begins (after a fence's opening line, whose language name
 * the alignment must not take for code).
 */
export function topLevelBlocks(source, env) {
  const tokens = markdown.parse(source, env);
  const lines = lineStarts(source);
  const offset = (line) => (line < lines.length ? lines[line] : source.length);
  const blocks = [];
  let open = null;
  for (const token of tokens) {
    if (!open) {
      const start = offset(token.map[0]);
      const from = token.type === "fence" ? offset(token.map[0] + 1) : start;
      open = { start, end: offset(token.map[1]), from, tokens: [] };
    }
    open.tokens.push(token);
    if (token.level === 0 && token.nesting !== 1) {
      blocks.push(open);
      open = null;
    }
  }
  return blocks;
}

function chromeOrOutside(node) {
  return node.parentElement?.closest(".specdec-chrome");
}

/** Replace each text node of `block` with token spans; formulas collect their runs instead. */
function annotate(block, reply, range) {
  const doc = block.ownerDocument;
  const walker = doc.createTreeWalker(block, 4 /* NodeFilter.SHOW_TEXT */);
  const texts = [];
  for (let node = walker.nextNode(); node; node = walker.nextNode()) texts.push(node);
  const formulas = new Map();
  let cursor = range.from;
  for (const node of texts) {
    if (chromeOrOutside(node)) continue;
    const inCode = node.parentElement?.closest("pre");
    const formula = node.parentElement?.closest(".specdec-math");
    if (!inCode && !formula && !node.data.trim()) continue; // layout whitespace between tags
    const aligned = alignText(reply.source, cursor, node.data, range.end);
    cursor = aligned.cursor;
    const runs = tokenRuns(node.data, aligned.offsets, reply.starts);
    if (formula) formulas.set(formula, [...(formulas.get(formula) ?? []), ...runs]);
    else node.replaceWith(...runs.map((run) => runNode(doc, reply, run)));
  }
  for (const [formula, runs] of formulas) typeset(formula, runs, reply);
}

/** A run of one token's characters: its span, after the draft it replaced on the token's first run. */
function runNode(doc, reply, run) {
  const token = reply.tokens[run.token];
  if (!token) return doc.createTextNode(run.text);
  const span = tokenSpan(doc, token, run.token, run.text);
  if (!token.rejected?.length || reply.struck.has(run.token)) return span;
  reply.struck.add(run.token);
  const both = doc.createDocumentFragment();
  both.append(rejectedSpan(doc, token), span);
  return both;
}

/**
 * Typeset a formula with KaTeX, and under it a strip of one segment per token that wrote its
 * TeX, as wide as its share of the characters: a formula's glyphs do not map to TeX characters,
 * so the strip carries the shades and the tooltips. A formula still streaming stays TeX.
 */
function typeset(formula, runs, reply) {
  const doc = formula.ownerDocument;
  const tex = runs.map((run) => run.text).join("");
  const strip = doc.createElement("span");
  strip.className = "specdec-math-strip";
  for (const run of runs) {
    const segment = reply.tokens[run.token] ? tokenSpan(doc, reply.tokens[run.token], run.token, "") : doc.createElement("span");
    segment.style.flexGrow = String(run.text.length);
    strip.appendChild(segment);
  }
  const shown = doc.createElement("span");
  shown.className = "specdec-math-tex";
  if (formula.classList.contains("specdec-math-pending")) {
    shown.textContent = tex;
  } else {
    const displayMode = formula.classList.contains("specdec-math-display");
    shown.innerHTML = katex.renderToString(tex, { displayMode, throwOnError: false, output: "htmlAndMathml" });
  }
  formula.replaceChildren(shown, strip);
  formula.dataset.tex = tex;
}

function renderBlock(doc, reply, range) {
  const block = doc.createElement("div");
  block.className = "specdec-block";
  block.innerHTML = markdown.renderer.render(range.tokens, markdown.options, reply.env);
  annotate(block, reply, range);
  for (const button of block.querySelectorAll(".specdec-copy")) button.addEventListener("click", copyCode);
  return block;
}

/** Copy a code block's text, without the struck-out draft tokens. */
function copyCode(event) {
  const code = event.currentTarget.closest(".specdec-code").querySelector("code").cloneNode(true);
  for (const struck of code.querySelectorAll(".specdec-rejected")) struck.remove();
  const button = event.currentTarget;
  navigator.clipboard?.writeText(code.textContent).then(() => {
    button.textContent = "Copied";
  });
}

// Each reply element's tokens and rendered blocks, kept between updates.
const replies = new WeakMap();

/** The tokens behind a reply element (for the tooltip), or undefined. */
export function replyTokens(element) {
  return replies.get(element)?.tokens;
}

/**
 * Show `tokens` (all of the reply's so far) in `element` as rendered Markdown. `streaming` says
 * more will come: an unclosed formula then shows as TeX in progress. Blocks whose source and
 * start are unchanged keep their nodes.
 */
export function renderReply(element, tokens, { streaming = false } = {}) {
  const doc = element.ownerDocument;
  element.classList.add("specdec-markdown");
  const previous = replies.get(element);
  const reply = {
    tokens,
    starts: tokenStarts(tokens),
    source: tokens.map((token) => token.text).join(""),
    env: { streaming },
    struck: new Set(),
    blocks: [],
  };
  const old = previous?.blocks ?? [];
  reply.blocks = topLevelBlocks(reply.source, reply.env).map((range, i) => {
    const text = reply.source.slice(range.start, range.end);
    const kept = old[i];
    if (kept && kept.start === range.start && kept.text === text && !kept.pending) {
      for (const index of kept.struck) reply.struck.add(index);
      return kept;
    }
    const before = new Set(reply.struck);
    const node = renderBlock(doc, reply, range);
    const struck = [...reply.struck].filter((index) => !before.has(index));
    return { start: range.start, text, node, struck, pending: Boolean(node.querySelector(".specdec-math-pending")) };
  });
  replies.set(element, reply);
  const nodes = reply.blocks.map((block) => block.node);
  let same = 0;
  while (same < nodes.length && element.childNodes[same] === nodes[same]) same++;
  while (element.childNodes.length > same) element.lastChild.remove();
  element.append(...nodes.slice(same));
}
