// Rendering of the chat transcript: token spans with provenance, stats, tooltips.
//
// The transcript format is the Python side's (specdec_jupyter/widgets/transcript.py, the one
// module that writes it); the typedefs below are its shape here. The green shade follows
// render.py's draft_shade, so the live widget and the HTML fallback look the same (a pytest
// test checks they agree).

/**
 * One token on the wire: `TokenEvent.to_dict()` with probabilities rounded.
 * @typedef {object} Token
 * @property {number} token_id
 * @property {string} text the bytes this token adds, decoded
 * @property {"draft" | "main"} source "draft": an accepted draft token; "main": the main model's own
 * @property {number} round
 * @property {number | null} p_main the main model's probability of the token
 * @property {number | null} q_draft the draft's probability of the token
 * @property {number | null} acceptance min(1, p/q), for draft tokens
 */

/**
 * One message of a conversation.
 * @typedef {object} Message
 * @property {"user" | "assistant" | "system"} role
 * @property {string} content
 * @property {Token[]} [tokens] a reply's tokens
 * @property {object} [stats] LM Studio's names
 * @property {Array<[string, string]>} [stats_rows] the stats as Python formats them for people
 * @property {string} [main_model]
 * @property {string | null} [draft_model]
 * @property {object} [settings]
 * @property {string} [error] why the reply ended early
 */

const GREEN = "34, 197, 94";

/** Opacity of the green behind an accepted draft token: deeper the likelier it was accepted. */
export function draftShade(acceptance) {
  const a = acceptance === null || acceptance === undefined ? 1 : acceptance;
  return 0.25 + 0.35 * Math.max(0, Math.min(1, a));
}

/** The background of a draft token, as render.py writes it. */
export function draftBackground(acceptance) {
  return `rgba(${GREEN}, ${draftShade(acceptance).toFixed(2)})`;
}

function element(doc, tag, className, text) {
  const node = doc.createElement(tag);
  if (className) node.className = className;
  if (text !== undefined) node.textContent = text;
  return node;
}

/** One span per token; draft tokens carry their shade, every token its index for the tooltip. */
export function tokenSpan(doc, token, index) {
  const isDraft = token.source === "draft";
  const span = element(doc, "span", isDraft ? "specdec-draft" : "specdec-main", token.text);
  span.dataset.index = String(index);
  if (isDraft) span.style.background = draftBackground(token.acceptance);
  return span;
}

// The tokens behind each reply element, so one hover listener can find any span's token.
const replyTokens = new WeakMap();

/** Append spans for `tokens` to a reply element, remembering the tokens for the tooltip. */
export function appendTokens(reply, tokens) {
  const doc = reply.ownerDocument;
  const all = replyTokens.get(reply) ?? [];
  replyTokens.set(reply, all);
  for (const token of tokens) reply.appendChild(tokenSpan(doc, token, all.push(token) - 1));
}

/** The token under a span inside a reply, or null. */
export function tokenOfSpan(span) {
  const reply = span.closest(".specdec-reply");
  const tokens = reply && replyTokens.get(reply);
  return tokens ? (tokens[Number(span.dataset.index)] ?? null) : null;
}

function formatNumber(value) {
  return value === null || value === undefined ? "–" : value.toFixed(3);
}

/** What the hover card shows for a token: its text, id, source, p, q, acceptance and round. */
export function tooltipRows(token) {
  return [
    ["text", JSON.stringify(token.text)],
    ["id", String(token.token_id)],
    ["source", token.source === "draft" ? "draft (accepted)" : "main model"],
    ["p (main)", formatNumber(token.p_main)],
    ["q (draft)", formatNumber(token.q_draft)],
    ["min(1, p/q)", formatNumber(token.acceptance)],
    ["round", String(token.round)],
  ];
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
    const body = element(doc, "div", "specdec-reply");
    if (message.tokens) appendTokens(body, message.tokens);
    else body.textContent = message.content;
    box.appendChild(body);
    const models = [message.main_model, message.draft_model && `draft ${message.draft_model}`];
    if (message.main_model) box.appendChild(element(doc, "div", "specdec-provenance", models.filter(Boolean).join(" · ")));
    if (message.stats_rows) box.appendChild(statsLine(doc, message.stats_rows));
  } else {
    box.appendChild(element(doc, "div", "specdec-text", message.content));
  }
  if (message.error) box.appendChild(errorElement(doc, message.error));
  return box;
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
