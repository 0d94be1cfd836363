// The strip under a reply: one mark per round, k drafted against how many were accepted,
// coloured by what drafted (a draft model, or lookup: copying from the text), with the
// stretches where drafting paused (rounds of k = 0 while a draft was at hand) drawn as
// one gap that says how long it lasted. The rounds are `Round`s (wire.js).

import { el } from "./dom.js";

/** The strip's segments: drafting rounds one by one, paused stretches merged into one. */
export function stripSegments(rounds) {
  const segments = [];
  for (const round of rounds) {
    const last = segments.at(-1);
    if (round.drafted > 0) segments.push({ kind: "round", ...round });
    else if (last?.kind === "paused") {
      last.rounds += 1;
      last.tokens += round.emitted;
    } else segments.push({ kind: "paused", first: round.round, rounds: 1, tokens: round.emitted });
  }
  return segments;
}

/** "1 round", "2 rounds". */
export function counted(n, noun) {
  return `${n} ${noun}${n === 1 ? "" : "s"}`;
}

/** The strip's one-line summary: rounds, tokens accepted of drafted, time paused. */
export function stripSummary(rounds) {
  const drafting = rounds.filter((r) => r.drafted > 0);
  const drafted = drafting.reduce((n, r) => n + r.drafted, 0);
  const accepted = drafting.reduce((n, r) => n + r.accepted, 0);
  const pausedTokens = rounds.filter((r) => r.drafted === 0).reduce((n, r) => n + r.emitted, 0);
  const parts = [counted(rounds.length, "round"), `${accepted}/${counted(drafted, "drafted token")} accepted`];
  if (pausedTokens) parts.push(`drafting paused for ${counted(pausedTokens, "token")}`);
  return parts.join(" · ");
}

function roundMark(doc, segment) {
  const cells = Array.from({ length: segment.drafted }, (_, i) =>
    el(doc, "span", { className: i < segment.accepted ? "specdec-strip-cell specdec-strip-cell-accepted" : "specdec-strip-cell specdec-strip-cell-rejected" }),
  );
  const what = segment.source === "lookup" ? "lookup (copied from the text)" : "draft model";
  return el(
    doc,
    "span",
    {
      className: `specdec-strip-round specdec-strip-${segment.source ?? "model"}`,
      title: `round ${segment.round}: ${segment.accepted} of ${segment.drafted} accepted, by the ${what}; ${segment.emitted} tokens`,
      dataset: { round: String(segment.round) },
    },
    cells,
  );
}

function pausedMark(doc, segment) {
  return el(doc, "span", {
    className: "specdec-strip-paused",
    textContent: `paused ${segment.tokens}`,
    title: `drafting paused: ${counted(segment.rounds, "round")}, ${counted(segment.tokens, "token")} from the main model alone (drafting would not have paid)`,
    dataset: { round: String(segment.first) },
  });
}

/** The strip for a reply's rounds, or null for a reply without a draft (plain decoding). */
export function roundStrip(doc, rounds, withDraft) {
  if (!withDraft || !rounds?.length) return null;
  const marks = stripSegments(rounds).map((s) => (s.kind === "paused" ? pausedMark(doc, s) : roundMark(doc, s)));
  return el(doc, "div", { className: "specdec-strip" }, [
    el(doc, "div", { className: "specdec-strip-marks" }, marks),
    el(doc, "div", { className: "specdec-strip-summary", textContent: stripSummary(rounds) }),
  ]);
}
