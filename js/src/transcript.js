// Rendering of the chat transcript: token spans with provenance, stats, tooltips.
//
// Messages and tokens are the wire format (typed in wire.js, written by
// specdec_jupyter/sessions/wire.py). A reply renders as Markdown
// (markdown/render.js) with its tokens' spans inside; the spans and their shade are
// provenance.js's, mirrored by display/token_html.py for the HTML fallback (a pytest test checks they agree).

import { renderReply, replyTokens } from "./markdown/render.js";
import { tokenSpan, tooltipRows } from "./provenance.js";

export { draftBackground, draftShade, tokenSpan, tooltipRows } from "./provenance.js";

function element(doc, tag, className, text) {
  const node = doc.createElement(tag);
  if (className) node.className = className;
  if (text !== undefined) node.textContent = text;
  return node;
}

// The tokens behind each plain (unrendered) token list, so one hover listener finds any span's token.
const plainTokens = new WeakMap();

/** Append one span per token to an element, as text (the teacher's token lists), remembering the tokens. */
export function appendTokens(reply, tokens) {
  const doc = reply.ownerDocument;
  const all = plainTokens.get(reply) ?? [];
  plainTokens.set(reply, all);
  for (const token of tokens) reply.appendChild(tokenSpan(doc, token, all.push(token) - 1));
}

/**
 * Render a streaming reply's tokens as Markdown: `tokens` are the new ones, added to those the
 * element holds; `streaming` false for the last batch, so an unclosed formula reads as text.
 */
export function appendReplyTokens(reply, tokens, { streaming = true } = {}) {
  renderReply(reply, [...(replyTokens(reply) ?? []), ...tokens], { streaming });
}

/** The token under a span inside a reply (rendered or plain), or null. */
export function tokenOfSpan(span) {
  const reply = span.closest(".specdec-reply");
  const tokens = reply && (replyTokens(reply) ?? plainTokens.get(reply));
  return tokens ? (tokens[Number(span.dataset.index)] ?? null) : null;
}

/** Fill the hover card with a token's rows. */
export function fillTooltip(tip, token) {
  const doc = tip.ownerDocument;
  tip.replaceChildren(
    ...tooltipRows(token).map(([label, value]) => {
      const row = element(doc, "div", "specdec-tip-row");
      row.append(element(doc, "span", "specdec-tip-label", label), element(doc, "code", "", value));
      return row;
    }),
  );
}

/** The stats line under a reply, from the rows Python formats (LM Studio's labels). */
export function statsLine(doc, rows) {
  const line = element(doc, "div", "specdec-stats");
  for (const [label, value] of rows) {
    const stat = element(doc, "span", "specdec-stat");
    stat.dataset.label = label;
    stat.append(element(doc, "span", "specdec-stat-label", label), " ", element(doc, "b", "", value));
    line.appendChild(stat);
  }
  return line;
}

/** One message of the conversation: a user bubble, or a reply with its tokens and stats. */
export function messageElement(doc, message) {
  const box = element(doc, "div", `specdec-msg specdec-${message.role}`);
  if (message.role === "assistant") {
    const body = element(doc, "div", "specdec-reply specdec-markdown");
    renderReply(body, message.tokens ?? [plainToken(message.content)]);
    box.appendChild(body);
    const rejected = rejectedToggle(doc, box, message.tokens ?? []);
    if (rejected) box.appendChild(rejected);
    const models = [message.main_model, message.draft_model && `draft ${message.draft_model}`];
    if (message.main_model) box.appendChild(element(doc, "div", "specdec-provenance", models.filter(Boolean).join(" · ")));
    if (message.stats_rows) box.appendChild(statsLine(doc, message.stats_rows));
  } else {
    box.appendChild(element(doc, "div", "specdec-text", message.content));
  }
  if (message.error) box.appendChild(errorElement(doc, message.error));
  return box;
}

/** A reply known only as text (a message from elsewhere): one main-model token, no provenance. */
function plainToken(text) {
  return { token_id: -1, text, source: "main", kind: "plain", round: 0, p_main: null, q_draft: null, acceptance: null };
}

/**
 * A checkbox that shows the draft tokens a correction replaced, struck through, where they were:
 * the one the main model rejected and those drafted after it in its round, never judged (the
 * stats count those as ignored, so the label says both, and its first count is the stats').
 */
export function rejectedToggle(doc, box, tokens) {
  const replaced = tokens.filter((token) => token.rejected?.length);
  const count = replaced.reduce((sum, token) => sum + token.rejected.length, 0);
  if (!count) return null;
  const after = count - replaced.length;
  const input = element(doc, "input");
  input.type = "checkbox";
  input.addEventListener("change", () => box.classList.toggle("specdec-show-rejected", input.checked));
  const label = element(doc, "label", "specdec-rejected-toggle");
  const rejected = `${replaced.length} rejected draft token${replaced.length === 1 ? "" : "s"}`;
  label.append(input, ` show ${rejected}${after ? ` (and ${after} drafted after them, never judged)` : ""}`);
  return label;
}

/** An error in words, where the user is looking. */
export function errorElement(doc, text) {
  const box = element(doc, "div", "specdec-error", text);
  box.setAttribute("role", "alert");
  return box;
}

/** Replace the transcript's content with the conversation. */
export function renderConversation(container, messages) {
  const doc = container.ownerDocument;
  container.replaceChildren(...messages.filter((m) => m.role !== "system").map((m) => messageElement(doc, m)));
}
