// One token's provenance as the reader sees it: its span (class, shade, round), and its tooltip.
// display/token_html.py writes the same spans for the HTML fallback (a pytest test checks the two agree).

// The green: JupyterLab's dark theme swaps in a deep one (common.css), so text on it stays readable.
const GREEN = "var(--specdec-green, 34, 197, 94)";

/** What each kind of token is called in the tooltip. */
const KIND_LABELS = {
  accepted: "draft, accepted",
  first: "main model (first token)",
  plain: "main model (no draft this round)",
  correction: "main model, correcting the draft",
  bonus: "main model, bonus after a fully accepted draft",
};

/**
 * Opacity of the green behind an accepted draft token: the main model's probability of the token.
 * At T = 0 every accepted token has min(1, p/q) = 1, but p still tells a sure token (deep green)
 * from a near-tie the draft happened to guess (pale green). Falls back to min(1, p/q), then 1.
 */
export function draftShade(token) {
  const p = token.p_main ?? token.acceptance ?? 1;
  return 0.15 + 0.5 * Math.max(0, Math.min(1, p));
}

/** The background of an accepted draft token, as display/token_html.py writes it. */
export function draftBackground(token) {
  return `rgba(${GREEN}, ${draftShade(token).toFixed(2)})`;
}

/** The token's kind: wire tokens from before kinds existed say only draft or main. */
export function tokenKind(token) {
  return token.kind ?? (token.source === "draft" ? "accepted" : "plain");
}

/** A span for (part of) a token's text: its class says the source and kind, its data the index and round. */
export function tokenSpan(doc, token, index, text = token.text) {
  const span = doc.createElement("span");
  const isDraft = token.source === "draft";
  span.className = `${isDraft ? "specdec-draft" : "specdec-main"} specdec-kind-${tokenKind(token)}`;
  span.textContent = text;
  span.dataset.index = String(index);
  span.dataset.round = String(token.round);
  if (isDraft) span.style.background = draftBackground(token);
  return span;
}

/** The draft tokens a correction replaced, struck through; shown when the reply's toggle is on. */
export function rejectedSpan(doc, token) {
  const struck = doc.createElement("s");
  struck.className = "specdec-rejected";
  struck.textContent = token.rejected.join("");
  struck.dataset.round = String(token.round);
  return struck;
}

function formatNumber(value) {
  return value === null || value === undefined ? "–" : value.toFixed(3);
}

/** What the hover card shows for a token: its text, id, kind, p, q, acceptance, round and what it replaced. */
export function tooltipRows(token) {
  const rows = [
    ["text", JSON.stringify(token.text)],
    ["id", String(token.token_id)],
    ["source", KIND_LABELS[tokenKind(token)]],
    ["p (main)", formatNumber(token.p_main)],
    ["q (draft)", formatNumber(token.q_draft)],
    ["min(1, p/q)", formatNumber(token.acceptance)],
    ["round", String(token.round)],
  ];
  if (token.rejected?.length) rows.push(["replaced draft", JSON.stringify(token.rejected.join(""))]);
  if (token.drafted_as?.length) rows.push(["draft's own tokens", token.drafted_as.map((t) => JSON.stringify(t)).join(" ")]);
  return rows;
}
