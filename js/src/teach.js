// The teaching widget: speculative decoding one round at a time, stage by stage.
//
// State lives in the Python traits (specdec_jupyter/widgets/teach.py). `trace` is
// RoundTrace.to_dict() (specdec_jupyter/widgets/teach/trace.py): proposals [{token_id, text,
// q, p, candidates: [{token_id, text, p, q}]}], after_draft [candidates], checks
// [{position, acceptance, u, accepted}], residual [{token_id, text, prob, excess}] or null
// (excess: max(0, p − q) before normalising), next_token {token_id, text, p, q} or null
// after an accepted ⟨end⟩, drawn_with (the probability next_token was drawn with), greedy,
// rejected and stages ("draft", "retokenize" for a draft of text, "score", "check"…,
// "residual", "correction" | "bonus" | "end"); `stage` is how far into stages is shown.
// A draft of another vocabulary drafts text: text_draft {model, own: [{token_id, text}] (its
// own tokens), text, proposed, held_back, waiting, reply_waiting} says what it wrote and
// which part the main model's tokens (the proposals, q = 1 each, drafted_as) spell; null
// for a draft of the main model's vocabulary.
// The running text uses the chat's token spans and colours (transcript.js).
import "./teach.css";
import { el } from "./dom.js";
import { readSettings, settingsForm, writeSetting } from "./form.js";
import { appendTokens, errorElement } from "./transcript.js";

/** A probability with enough digits to read: three decimals, two significant below 0.01
 * (0.0012, not 0.001 beside a ratio it does not give). */
export const fmt = (value) => {
  if (value === null || value === undefined) return "–";
  return value >= 0.01 || value === 0 ? value.toFixed(3) : value.toPrecision(2);
};
const quoted = (text) => JSON.stringify(text);

/** Which parts of a round stage `stage` shows. */
export function shownParts(trace, stage) {
  const upTo = (trace.stages ?? []).slice(0, stage + 1);
  return {
    tokenized: !(trace.stages ?? []).includes("retokenize") || upTo.includes("retokenize"),
    scored: upTo.includes("score"),
    checks: upTo.filter((name) => name === "check").length,
    residual: upTo.includes("residual"),
    rejection: upTo.filter((name) => name === "check").length > (trace.checks ?? []).filter((c) => c.accepted).length,
    result: upTo.includes("correction") || upTo.includes("bonus") || upTo.includes("end"),
  };
}

const tokens = (n) => `${n} token${n === 1 ? "" : "s"}`;
// A draft of text proposed greedily: all of q on each token it proposed.
const pointMass = (trace) => trace.text_draft && trace.proposals.every((proposal) => proposal.q === 1);

/** What a draft of another vocabulary did, in the words of the "draft" and "retokenize" stages. */
function textCaption(trace, name) {
  const draft = trace.text_draft;
  const k = trace.proposals.length;
  if (name === "draft") {
    if (draft.reply_waiting) return `The text so far ends inside a character (${draft.reply_waiting} waits for the rest of it): the draft, of another vocabulary, has no whole text to continue, so the main model takes one plain step.`;
    if (!draft.own.length) return `The draft, ${draft.model}, of another vocabulary, ended its text at once: nothing to propose, so the main model takes one plain step.`;
    const waits = draft.waiting ? ` Its text ends inside a character: ${draft.waiting} waits for the token that completes it and is not proposed.` : "";
    return `The draft model, ${draft.model}, has another vocabulary: it writes ${tokens(draft.own.length)} of its own (their ids are its vocabulary's), going on from the text so far.${waits}`;
  }
  const held = draft.held_back ? ` Held back: ${quoted(draft.held_back)}, past k or the main model's last token of the text, which could change with what the draft writes next.` : "";
  const how = pointMass(trace) ? ", each with q = 1: the draft proposes text, not a distribution, so a token is accepted with the main model's probability p" : ", each with the draft's probability q of it";
  const what = k ? `${tokens(k)} are proposed${how}.` : "no whole token of it is proposed, so the main model takes one plain step.";
  return `The main model's tokenizer reads the text: ${what}${held}`;
}

/** The sentence that says what stage `stage` of the round does. */
export function stageCaption(trace, stage) {
  const name = trace.stages[stage];
  const k = trace.proposals.length;
  const next = trace.next_token;
  if (trace.text_draft && (name === "draft" || name === "retokenize")) return textCaption(trace, name);
  if (name === "draft") {
    return k
      ? `The draft model proposes ${k} token${k > 1 ? "s" : ""}, one after another. Bars: q, the draft's probabilities.`
      : "Nothing to draft for the last token: the main model takes one plain step.";
  }
  if (name === "score") {
    if (!k) return "The main model scores the position after the text so far in one pass.";
    return `The main model scores the ${k} draft token${k === 1 ? "" : "s"} and the position after them in one pass: p beside q.`;
  }
  if (name === "check") {
    const index = trace.stages.slice(0, stage + 1).filter((s) => s === "check").length - 1;
    const check = trace.checks[index];
    const token = quoted(trace.proposals[index].text);
    const verdict = check.accepted ? "accepted" : "rejected";
    if (check.u === null) {
      const top = check.accepted ? "is" : "is not";
      return `Draft token ${index + 1}, ${token}, ${top} the main model's top choice (greedy): ${verdict}.`;
    }
    const relation = check.accepted ? "<" : "≥";
    return `Draft token ${index + 1}, ${token}: u = ${fmt(check.u)} ${relation} min(1, p/q) = ${fmt(check.acceptance)}, so it is ${verdict}. (u is a random number drawn evenly between 0 and 1: the token is kept with probability min(1, p/q).)`;
  }
  if (name === "end") {
    return `The accepted draft token ${quoted(trace.proposals[trace.checks.length - 1].text)} ends the generation: nothing is drawn after it.`;
  }
  if (name === "residual") {
    const without = pointMass(trace) ? " Here q is all on the drafted token, so the residual is p without it." : "";
    return `After a rejection the correction is drawn from the residual normalize(max(0, p − q)): only where the main model is surer than the draft.${without}`;
  }
  if (name === "correction") {
    const how = trace.greedy ? "its top choice" : `drawn from the residual with probability ${fmt(trace.drawn_with)}`;
    return `The main model's correction ${quoted(next.text)} (${how}) follows the ${trace.n_accepted} accepted draft token${trace.n_accepted === 1 ? "" : "s"}.`;
  }
  const how = trace.greedy ? "its top choice" : "drawn from p";
  if (!k && trace.text_draft) return `Nothing was proposed: the main model's own token ${quoted(next.text)} (${how}), as in plain decoding.`;
  if (!k) return `One token was left before the token limit, so nothing was drafted: the main model's own token ${quoted(next.text)} (${how}), as in plain decoding.`;
  return `Every draft token was accepted: the main model's bonus token ${quoted(next.text)} (${how}) comes from the same pass.`;
}

function bar(doc, kind, value) {
  const fill = el(doc, "span", { className: `specdec-${kind}-bar` });
  fill.style.width = `${(100 * Math.max(0, Math.min(1, value))).toFixed(1)}%`;
  return el(doc, "span", { className: "specdec-bar-track", title: `${kind} = ${fmt(value)}` }, [
    fill,
    el(doc, "span", { className: "specdec-bar-value", textContent: fmt(value) }),
  ]);
}

/** One candidate token: its text, q's bar (where the draft rated it), p's bar once scored. */
function candidateRow(doc, candidate, { scored, chosen }) {
  const row = el(doc, "div", { className: "specdec-candidate" }, [
    el(doc, "code", { className: "specdec-candidate-text", textContent: quoted(candidate.text), title: quoted(candidate.text) }),
  ]);
  if (chosen) row.classList.add("specdec-chosen");
  if (candidate.q !== null) row.append(bar(doc, "q", candidate.q));
  if (scored) row.append(bar(doc, "p", candidate.p));
  return row;
}

/** The row above a column's bars, naming them. */
function barsHead(doc, labels) {
  return el(doc, "div", { className: "specdec-candidate specdec-bars-head" }, [
    el(doc, "span"),
    ...labels.map((label) => el(doc, "span", { textContent: label })),
  ]);
}

/** u on a line from 0 to 1: the acceptance zone [0, min(1, p/q)) shaded, a tick at u. */
export function numberLine(doc, check) {
  const percent = (value) => `${(100 * Math.max(0, Math.min(1, value))).toFixed(1)}%`;
  const zone = el(doc, "span", { className: "specdec-accept-zone" });
  zone.style.width = percent(check.acceptance);
  const tick = el(doc, "span", { className: "specdec-u-tick" });
  tick.style.left = percent(check.u);
  const title = `accepted when u falls in the shaded zone [0, ${fmt(check.acceptance)})`;
  return el(doc, "span", { className: "specdec-number-line", title }, [
    zone,
    tick,
    el(doc, "span", { className: "specdec-line-end specdec-line-0", textContent: "0" }),
    el(doc, "span", { className: "specdec-line-end specdec-line-1", textContent: "1" }),
  ]);
}

function checkMark(doc, check) {
  const mark = el(doc, "div", { className: `specdec-check specdec-mark-${check.accepted ? "accepted" : "rejected"}` });
  const greedy = check.accepted ? "greedy: the main model's top choice" : "greedy: not the main model's top choice";
  const test = check.u === null ? greedy : `u ${fmt(check.u)} ${check.accepted ? "<" : "≥"} min(1, p/q) ${fmt(check.acceptance)}`;
  mark.append(check.accepted ? "✓ accepted" : "✗ rejected", el(doc, "span", { className: "specdec-check-test", textContent: test }));
  if (check.u !== null) mark.append(numberLine(doc, check));
  return mark;
}

/** Where draft token `index` stands at the stage shown: accepted, rejected, unjudged (past a
 * rejection or the end) or pending. */
function verdictOf(trace, index, shown) {
  const check = index < shown.checks ? trace.checks[index] : null;
  if (check) return check.accepted ? "accepted" : "rejected";
  const judgedLater = index >= trace.checks.length && (shown.result || shown.rejection);
  return judgedLater ? "unjudged" : "pending";
}

function positionColumn(doc, trace, index, shown) {
  const proposal = trace.proposals[index];
  const check = index < shown.checks ? trace.checks[index] : null;
  const verdict = verdictOf(trace, index, shown);
  const ratio = shown.scored ? [`p ${fmt(proposal.p)}`, `p/q ${fmt(proposal.p / proposal.q)}`] : [];
  const facts = [`q ${fmt(proposal.q)}`, ...ratio];
  const column = el(doc, "div", { className: "specdec-position", dataset: { verdict } }, [
    el(doc, "div", { className: "specdec-position-head" }, [
      el(doc, "span", { className: "specdec-position-index", textContent: `draft ${index + 1}` }),
      el(doc, "code", { className: "specdec-position-token", textContent: quoted(proposal.text) }),
      el(doc, "span", { className: "specdec-position-facts", textContent: facts.join(" · ") }),
    ]),
    barsHead(doc, shown.scored ? ["q (draft)", "p (main)"] : ["q (draft)"]),
    ...proposal.candidates.map((c) => candidateRow(doc, c, { scored: shown.scored, chosen: c.token_id === proposal.token_id })),
  ]);
  if (proposal.drafted_as?.length) {
    const pieces = proposal.drafted_as.map(quoted).join(" ");
    column.append(el(doc, "div", { className: "specdec-drafted-as", textContent: `drafted as ${pieces}` }));
  }
  if (check) column.append(checkMark(doc, check));
  const why = trace.next_token === null ? "not judged: the generation ended" : "not judged: an earlier token was rejected";
  if (verdict === "unjudged") column.append(el(doc, "div", { className: "specdec-check", textContent: why }));
  return column;
}

function afterDraftColumn(doc, trace, shown) {
  const bonus = shown.result && !trace.rejected && trace.next_token ? trace.next_token.token_id : null;
  const unused = shown.rejection || (shown.result && trace.next_token === null);
  return el(doc, "div", { className: "specdec-position specdec-after-draft", dataset: { verdict: unused ? "unjudged" : "pending" } }, [
    el(doc, "div", { className: "specdec-position-head" }, [
      el(doc, "span", { className: "specdec-position-index", textContent: trace.proposals.length ? "after the draft" : "next token" }),
      el(doc, "span", { className: "specdec-position-facts", textContent: "p only: where a bonus comes from" }),
    ]),
    barsHead(doc, ["p (main)"]),
    ...trace.after_draft.map((c) => candidateRow(doc, c, { scored: true, chosen: c.token_id === bonus })),
  ]);
}

function residualBox(doc, trace) {
  const position = trace.n_accepted + 1;
  return el(doc, "div", { className: "specdec-residual" }, [
    el(doc, "div", { className: "specdec-position-head", textContent: `residual at draft ${position}: max(0, p − q), then normalised to sum to 1` }),
    barsHead(doc, ["max(0, p − q)", "normalised"]),
    ...trace.residual.map((b) =>
      el(doc, "div", { className: `specdec-candidate${b.token_id === trace.next_token.token_id ? " specdec-chosen" : ""}` }, [
        el(doc, "code", { className: "specdec-candidate-text", textContent: quoted(b.text), title: quoted(b.text) }),
        bar(doc, "excess", b.excess),
        bar(doc, "r", b.prob),
      ]),
    ),
  ]);
}

function resultLine(doc, trace) {
  if (trace.next_token === null) {
    return el(doc, "div", { className: "specdec-result specdec-end" }, ["end of generation: nothing is drawn after ⟨end⟩"]);
  }
  const kind = trace.rejected ? "correction" : "bonus";
  const drawn = trace.rejected && !trace.greedy ? ` drawn with residual probability ${fmt(trace.drawn_with)} (p ${fmt(trace.next_token.p)})` : ` p ${fmt(trace.next_token.p)}`;
  return el(doc, "div", { className: `specdec-result specdec-${kind}` }, [
    `${kind}: `,
    el(doc, "code", { textContent: quoted(trace.next_token.text) }),
    drawn,
  ]);
}

const VERDICT_MARKS = { accepted: " ✓", rejected: " ✗", unjudged: "", pending: "" };

/** A token by its text and id, as a chip; a main model's token also shows its verdict. */
function tokenChip(doc, token, verdict) {
  return el(doc, "span", { className: "specdec-token-chip", dataset: verdict ? { verdict } : {} }, [
    el(doc, "code", { textContent: quoted(token.text) }),
    el(doc, "span", { className: "specdec-token-id", textContent: `#${token.token_id}${VERDICT_MARKS[verdict] ?? ""}` }),
  ]);
}

function textRow(doc, label, children) {
  return el(doc, "div", { className: "specdec-text-row" }, [el(doc, "span", { className: "specdec-text-label", textContent: label }), ...children]);
}

/** What a draft of another vocabulary wrote: its own tokens, their text (once read by the main
 * model's tokenizer, the part proposed and the part held back), the bytes that wait, and the
 * main model's tokens with their verdicts. */
function textDraftBox(doc, trace, shown) {
  const draft = trace.text_draft;
  const piece = (kind, text, title) => el(doc, "code", { className: `specdec-text-${kind}`, textContent: text, title });
  if (draft.reply_waiting || !draft.own.length) {
    const why = draft.reply_waiting ? [piece("waiting", draft.reply_waiting, "bytes of a character the text so far ends inside: they wait for the rest of it")] : [el(doc, "span", { textContent: "none: it ended its text" })];
    const label = draft.reply_waiting ? "the text so far ends with" : `${draft.model}'s tokens`;
    return el(doc, "div", { className: "specdec-text-draft" }, [textRow(doc, label, why)]);
  }
  const text = shown.tokenized ? [piece("proposed", draft.proposed, "proposed as the main model's tokens")] : [piece("whole", draft.text, "")];
  if (shown.tokenized && draft.held_back) text.push(piece("held", draft.held_back, "held back: not proposed this round"));
  if (draft.waiting) text.push(piece("waiting", draft.waiting, "bytes of a character the draft's text ends inside: they wait for the token that completes it"));
  const box = el(doc, "div", { className: "specdec-text-draft" }, [
    textRow(doc, `${draft.model}'s tokens (its vocabulary)`, draft.own.map((token) => tokenChip(doc, token))),
    textRow(doc, "their text", [el(doc, "span", { className: "specdec-text-line" }, text)]),
  ]);
  if (shown.tokenized) {
    const chips = trace.proposals.map((proposal, i) => tokenChip(doc, proposal, verdictOf(trace, i, shown)));
    box.append(textRow(doc, "the main model's tokens", chips.length ? chips : [el(doc, "span", { textContent: "none" })]));
  }
  return box;
}

/** The round as far as stage `stage`: what a draft of text wrote, draft columns (once its text
 * is read as the main model's tokens), the position after the draft, the residual after a
 * rejection, and the correction or bonus. */
export function renderRound(doc, trace, stage) {
  const shown = shownParts(trace, stage);
  const columns = shown.tokenized ? trace.proposals.map((_, i) => positionColumn(doc, trace, i, shown)) : [];
  if (shown.scored) columns.push(afterDraftColumn(doc, trace, shown));
  const box = el(doc, "div", { className: "specdec-round" }, [
    el(doc, "div", { className: "specdec-round-head" }, [
      el(doc, "b", { textContent: `Round ${trace.number}` }),
      ` · stage ${stage + 1} of ${trace.stages.length}: `,
      el(doc, "span", { className: "specdec-caption", textContent: stageCaption(trace, stage) }),
    ]),
    ...(trace.text_draft ? [textDraftBox(doc, trace, shown)] : []),
    el(doc, "div", { className: "specdec-positions" }, columns),
  ]);
  if (shown.residual) box.append(residualBox(doc, trace));
  if (shown.result) box.append(resultLine(doc, trace));
  return box;
}

/** Why a token stands before round 1: the main model's pass over the prompt gave it. */
export function firstTokenNote(trace, tokens) {
  if (trace.number !== 1 || !tokens?.length) return "";
  return `The first token, ${quoted(tokens[0].text)}, came from the main model reading the prompt, as in plain decoding; drafting starts after it.`;
}

/**
 * The counts line: rounds, drafted, accepted, rejected, acceptance rate (once a draft token has
 * been judged: before, 0% would say every one failed), and the end, in words.
 */
export function countsText(counts, stopReason) {
  if (!counts || counts.rounds === undefined) return "";
  const judged = counts.acceptance_rate !== undefined && counts.acceptance_rate !== null;
  const rate = judged ? `${(100 * counts.acceptance_rate).toFixed(1)}%` : "– (no draft token judged yet)";
  const parts = [`rounds ${counts.rounds}`, `drafted ${counts.drafted}`, `accepted ${counts.accepted}`, `rejected ${counts.rejected}`, `acceptance rate α ${rate}`];
  if (counts.expected_per_round !== undefined) parts.push(`expected tokens per round (1 − α^(k+1)) / (1 − α) = ${counts.expected_per_round.toFixed(2)}`);
  if (stopReason) parts.push(`finished: ${counts.finished ?? stopReason}`);
  return parts.join(" · ");
}

const SPEEDS = [0.25, 0.5, 1, 2, 4]; // seconds between Play's steps

/** Build the widget's DOM once, with a settings form of `fields`; returns the named parts. */
export function buildView(doc, fields) {
  const parts = {
    back: el(doc, "button", { className: "specdec-back", textContent: "Back" }),
    step: el(doc, "button", { className: "specdec-step", textContent: "Step" }),
    finish: el(doc, "button", { className: "specdec-finish", textContent: "Finish round" }),
    play: el(doc, "button", { className: "specdec-play", textContent: "Play" }),
    speed: el(doc, "select", { className: "specdec-speed", title: "Play: seconds between steps" }, SPEEDS.map((seconds) => el(doc, "option", { value: String(seconds), textContent: `${seconds} s a step` }))),
    reset: el(doc, "button", { className: "specdec-reset", textContent: "Reset" }),
    models: el(doc, "span", { className: "specdec-teach-models" }),
    text: el(doc, "div", { className: "specdec-reply specdec-teach-text" }),
    note: el(doc, "div", { className: "specdec-legend-note specdec-first-token" }),
    round: el(doc, "div", { className: "specdec-round-slot" }),
    counts: el(doc, "div", { className: "specdec-stats specdec-teach-counts" }),
    error: el(doc, "div", { className: "specdec-error-slot" }),
  };
  const form = settingsForm(doc, fields);
  parts.settings = form.controls;
  parts.root = el(doc, "div", { className: "specdec-teach" }, [
    el(doc, "div", { className: "specdec-teach-bar" }, [parts.back, parts.step, parts.finish, parts.play, parts.speed, parts.reset, parts.models]),
    el(doc, "div", { className: "specdec-teach-bar specdec-teach-settings" }, form.labels),
    parts.error,
    parts.text,
    el(doc, "div", { className: "specdec-legend" }, [
      el(doc, "span", { className: "specdec-swatch specdec-draft", textContent: "accepted draft token" }),
      el(doc, "span", { className: "specdec-legend-note", textContent: "plain: the main model's own token · bars:" }),
      el(doc, "span", { className: "specdec-key specdec-key-q", textContent: "q, the draft's" }),
      el(doc, "span", { className: "specdec-key specdec-key-p", textContent: "p, the main model's" }),
      el(doc, "span", { className: "specdec-key specdec-key-r", textContent: "residual" }),
    ]),
    parts.note,
    parts.round,
    parts.counts,
  ]);
  return parts;
}

function render({ model, el: host }) {
  const doc = host.ownerDocument;
  const fields = model.get("setting_fields");
  const parts = buildView(doc, fields);
  host.appendChild(parts.root);
  // What the user is typing stays while steps redraw the widget (a redraw wrote the old prompt
  // back, and a change of k then restarted with it); a reset sends it, then Python's shows.
  const edited = new Set();

  const draw = () => {
    const trace = model.get("trace");
    const stage = Math.min(model.get("stage"), (trace.stages?.length ?? 1) - 1);
    parts.models.textContent = `main ${model.get("main_model")} · draft ${model.get("draft_model")}`;
    const settings = model.get("settings");
    for (const field of fields) if (!edited.has(field.key)) writeSetting(field, parts.settings[field.key], settings[field.key]);
    parts.text.replaceChildren(el(doc, "span", { className: "specdec-teach-prompt", textContent: settings.prompt }));
    appendTokens(parts.text, model.get("tokens"));
    parts.note.textContent = firstTokenNote(trace, model.get("tokens"));
    parts.round.replaceChildren(...(trace.stages ? [renderRound(doc, trace, stage)] : []));
    parts.counts.textContent = countsText(model.get("counts"), model.get("stop_reason"));
    const status = model.get("status");
    parts.error.replaceChildren(...(status.state === "error" ? [errorElement(doc, status.message)] : []));
    parts.root.dataset.state = status.state;
    const finished = Boolean(model.get("stop_reason"));
    parts.step.disabled = parts.finish.disabled = finished || status.state === "busy";
    parts.play.disabled = finished;
    parts.back.disabled = !model.get("can_go_back") || status.state === "busy";
    parts.speed.value = String(model.get("interval"));
    parts.play.textContent = model.get("playing") ? "Pause" : "Play";
  };
  // Python sets several traits at once: draw once for all of them.
  let queued = false;
  const redraw = () => {
    if (queued) return;
    queued = true;
    queueMicrotask(() => {
      queued = false;
      draw();
    });
  };
  const traits = ["trace", "stage", "tokens", "counts", "stop_reason", "playing", "status", "settings", "can_go_back", "interval"];
  for (const name of traits) model.on(`change:${name}`, redraw);

  const listeners = new AbortController();
  const on = (target, type, callback) => target.addEventListener(type, callback, { signal: listeners.signal });
  on(parts.step, "click", () => model.send({ type: "step" }));
  on(parts.finish, "click", () => model.send({ type: "finish_round" }));
  on(parts.back, "click", () => model.send({ type: "back" }));
  on(parts.speed, "change", () => {
    model.set("interval", Number(parts.speed.value));
    model.save_changes();
  });
  on(parts.play, "click", () => model.send({ type: model.get("playing") ? "pause" : "play" }));
  const reset = () => {
    model.send({ type: "reset", settings: readSettings(fields, parts.settings) });
    edited.clear();
  };
  on(parts.reset, "click", reset);
  for (const field of fields) {
    const control = parts.settings[field.key];
    on(control, "input", () => edited.add(field.key));
    on(control, "change", () => edited.has(field.key) && reset());
    if (field.kind !== "text") continue;
    on(control, "keydown", (event) => {
      if (event.key !== "Enter" || event.shiftKey || event.isComposing) return;
      event.preventDefault(); // Enter applies the prompt, as in the chat; Shift+Enter adds a line
      reset();
    });
  }

  draw();
  return () => {
    for (const name of traits) model.off(`change:${name}`, redraw);
    listeners.abort();
  };
}

export default { render };
