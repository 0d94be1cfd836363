// The chat widget: model and draft selectors, the conversation with provenance
// colours, the rounds and stats under each reply, versions of a regenerated reply
// (‹ 1/2 ›), editing a message of yours, input with Send / Stop / Continue / Regenerate /
// Clear (undoable), and settings (a form of the fields Python sends: form.js). State lives in
// the Python traits; the reply being generated streams in through custom messages (see
// stream.js).
import "./chat.css";
import "./markdown/markdown.css"; // here, not in render.js: node imports render.js in tests
import { el } from "./dom.js";
import { FollowScroll } from "./follow.js";
import { readSetting, settingsForm, writeSetting } from "./form.js";
import { roundStrip } from "./round_strip.js";
import { routeReplies, streamFor } from "./stream.js";
import { attachTokenHover } from "./hover.js";
import { appendReplyTokens, errorElement, renderConversation } from "./transcript.js";

function labelled(doc, text, control) {
  return el(doc, "label", { className: "specdec-field" }, [el(doc, "span", { textContent: text }), control]);
}

/** Build the widget's DOM once, with a settings form of `fields`; returns the element and
 * named parts. */
export function buildView(doc, fields) {
  const parts = {
    main: el(doc, "select", { className: "specdec-main-select", title: "Main model" }),
    draft: el(doc, "select", { className: "specdec-draft-select", title: "Draft model" }),
    engine: el(doc, "select", { className: "specdec-engine-select", title: "Engine" }),
    engineNote: el(doc, "span", { className: "specdec-engine-note" }),
    setDefault: el(doc, "button", { className: "specdec-set-default", textContent: "Set as default draft for this model" }),
    incompatibleSummary: el(doc, "summary"),
    draftGuidance: el(doc, "div", { className: "specdec-draft-guidance", hidden: true }),
    incompatibleList: el(doc, "ul"),
    progress: el(doc, "progress", { className: "specdec-progress" }),
    statusText: el(doc, "span", { className: "specdec-status-text" }),
    error: el(doc, "div", { className: "specdec-error-slot" }),
    transcript: el(doc, "div", { className: "specdec-transcript" }),
    showDraft: el(doc, "input", { type: "checkbox", className: "specdec-show-draft" }),
    input: el(doc, "textarea", { className: "specdec-input", rows: 2, placeholder: "Send a message (Enter sends, Shift+Enter adds a line)" }),
    send: el(doc, "button", { className: "specdec-send", textContent: "Send" }),
    stop: el(doc, "button", { className: "specdec-stop", textContent: "Stop" }),
    continueReply: el(doc, "button", { className: "specdec-continue", textContent: "Continue", title: "Extend the last reply where it ends" }),
    regenerate: el(doc, "button", { className: "specdec-regenerate", textContent: "Regenerate", title: "Generate the last reply again, keeping this version" }),
    clear: el(doc, "button", { className: "specdec-clear", textContent: "Clear" }),
    undo: el(doc, "button", { className: "specdec-undo", hidden: true }),
    tip: el(doc, "div", { className: "specdec-tip", hidden: true }),
  };
  parts.engineField = labelled(doc, "Engine", parts.engine);
  parts.incompatible = el(doc, "details", { className: "specdec-incompatible" }, [
    parts.incompatibleSummary,
    parts.incompatibleList,
  ]);
  const form = settingsForm(doc, fields);
  parts.settings = form.controls;
  const settingsBox = el(doc, "details", { className: "specdec-settings" }, [el(doc, "summary", { textContent: "Settings" }), ...form.labels]);
  parts.root = el(doc, "div", { className: "specdec-chat" }, [
    el(doc, "div", { className: "specdec-bar" }, [
      labelled(doc, "Main", parts.main),
      labelled(doc, "Draft", parts.draft),
      parts.engineField,
      parts.engineNote,
      parts.setDefault,
      parts.incompatible,
    ]),
    parts.draftGuidance,
    el(doc, "div", { className: "specdec-status" }, [parts.progress, parts.statusText]),
    parts.error,
    parts.transcript,
    el(doc, "div", { className: "specdec-legend" }, [
      el(doc, "label", {}, [parts.showDraft, " Visualize accepted draft tokens"]),
      el(doc, "span", { className: "specdec-swatch specdec-draft", textContent: "draft token, accepted" }),
      el(doc, "span", { className: "specdec-legend-note", textContent: "deeper green = the main model was surer of the token (p); orange wavy = its correction, dotted = its bonus token; plain = its other tokens" }),
    ]),
    el(doc, "div", { className: "specdec-compose" }, [
      parts.input,
      el(doc, "div", { className: "specdec-buttons" }, [parts.send, parts.stop, parts.continueReply, parts.regenerate, parts.clear, parts.undo]),
    ]),
    settingsBox,
    parts.tip,
  ]);
  return parts;
}

/** Replace a select's options, keeping `value` selected; an option may be disabled, with a title saying why. */
export function fillSelect(select, options, value) {
  const doc = select.ownerDocument;
  const children = [];
  for (const o of options) {
    const option = el(doc, "option", { value: o.key, textContent: o.label, disabled: Boolean(o.disabled), title: o.title ?? "" });
    if (!o.group) {
      children.push(option);
      continue;
    }
    // Options of one group (a draft's vocabulary: "same vocabulary", "another vocabulary") sit under one heading.
    const last = children.at(-1);
    if (last?.tagName === "OPTGROUP" && last.label === o.group) last.append(option);
    else children.push(el(doc, "optgroup", { label: o.group }, [option]));
  }
  select.replaceChildren(...children);
  select.value = value;
}

/** The engine selector's options: every engine of the registry, those that cannot run here disabled with the reason. */
export function engineOptions(engines) {
  return engines.map((e) => ({
    key: e.name,
    label: e.available ? e.name : `${e.name} (unavailable)`,
    disabled: !e.available,
    title: e.note,
  }));
}

/** Where the ‹ › of a reply's versions lead: its `version` (from 0), `count`, and the
 * version a click on ‹ or › shows (null at either end). A reply without versions has one. */
export function versionSteps(message) {
  const count = message.versions?.length ?? 1;
  const shown = message.version ?? 0;
  return { shown, count, previous: shown > 0 ? shown - 1 : null, next: shown < count - 1 ? shown + 1 : null };
}

function versionSwitch(doc, message, index, send) {
  const steps = versionSteps(message);
  const step = (text, version, title) => {
    const end = version === null; // nothing further this way
    const button = el(doc, "button", { className: "specdec-version-step", textContent: text, title, disabled: end, dataset: { end: String(end) } });
    button.addEventListener("click", () => send({ type: "show_version", index, version }));
    return button;
  };
  return el(doc, "div", { className: "specdec-versions" }, [
    step("‹", steps.previous, "Previous version"),
    el(doc, "span", { className: "specdec-version-label", textContent: `${steps.shown + 1}/${steps.count}` }),
    step("›", steps.next, "Next version"),
  ]);
}

/** An Edit button for a message of yours: edits it in place, then asks again from there. */
function editControl(doc, box, message, index, send) {
  const button = el(doc, "button", { className: "specdec-edit", textContent: "Edit", title: "Edit this message and ask again from here" });
  button.addEventListener("click", () => {
    const input = el(doc, "textarea", { className: "specdec-edit-input", rows: 3, value: message.content });
    const resend = el(doc, "button", { className: "specdec-edit-send specdec-accept", textContent: "Send" });
    const cancel = el(doc, "button", { className: "specdec-edit-cancel", textContent: "Cancel" });
    const editor = el(doc, "div", { className: "specdec-editor" }, [input, el(doc, "div", { className: "specdec-buttons" }, [resend, cancel])]);
    const shown = [...box.children];
    box.replaceChildren(editor);
    input.focus();
    resend.addEventListener("click", () => input.value.trim() && send({ type: "edit", index, text: input.value }));
    cancel.addEventListener("click", () => box.replaceChildren(...shown));
  });
  return button;
}

/** What an empty chat shows: what the colours mean, and prompts to start from (each sends
 * itself, with plain decoding run beside it when `compare` is set, for the speedup). */
export function welcome(doc, suggestions, send) {
  const buttons = suggestions.map((s) => {
    const button = el(doc, "button", { className: "specdec-suggestion", textContent: s.title, title: s.note ?? "" });
    button.addEventListener("click", () => send({ type: "send", text: s.prompt, compare: Boolean(s.compare) }));
    return button;
  });
  return el(doc, "div", { className: "specdec-welcome" }, [
    el(doc, "p", {
      textContent:
        "A draft proposes the next tokens, the main model checks them all in one pass and keeps those it would have written: " +
        "accepted draft tokens show green. Drafts come from the draft model, or are copied from the conversation, which costs nothing; " +
        "which pays depends on this machine, and the stats under each reply say why.",
    }),
    ...(buttons.length ? [el(doc, "p", { textContent: "Try:" }), el(doc, "div", { className: "specdec-suggestions" }, buttons)] : []),
  ]);
}

/** Add what the chat lets you do with each message to the rendered conversation: Edit for
 * yours, the version switcher and the rounds strip for replies. `boxes` are the message
 * elements in order, `messages` the trait. */
export function decorateMessages(doc, boxes, messages, send) {
  const shown = messages.map((message, index) => ({ message, index })).filter(({ message }) => message.role !== "system");
  shown.forEach(({ message, index }, i) => {
    const box = boxes[i];
    if (!box) return;
    if (message.role === "user") {
      box.appendChild(editControl(doc, box, message, index, send));
      return;
    }
    const strip = roundStrip(doc, message.rounds, Boolean(message.draft_model));
    if (strip) box.insertBefore(strip, box.querySelector(":scope > .specdec-stats"));
    if ((message.versions?.length ?? 1) > 1) box.prepend(versionSwitch(doc, message, index, send));
  });
}

/** The views' half of the widget: draw the traits, send the user's actions. */
function render({ model, el: host }) {
  const doc = host.ownerDocument;
  const fields = model.get("setting_fields");
  const parts = buildView(doc, fields);
  host.appendChild(parts.root);
  const stream = streamFor(model.get("_chat_id"));
  let live = null; // the element the streaming reply grows in
  const domListeners = new AbortController();
  const follow = new FollowScroll(parts.transcript, domListeners.signal);
  const send = (message) => model.send(message);

  const drawConversation = () => {
    const messages = model.get("messages");
    renderConversation(parts.transcript, messages);
    decorateMessages(doc, [...parts.transcript.children], messages, send);
    live = null;
    if (stream.tokens) startLive(stream.tokens);
    else if (messages.length === 0) parts.transcript.appendChild(welcome(doc, model.get("suggestions"), send));
    follow.contentChanged();
  };
  const startLive = (tokens) => {
    live = el(doc, "div", { className: "specdec-reply" });
    parts.transcript.appendChild(el(doc, "div", { className: "specdec-msg specdec-assistant specdec-live" }, [live]));
    appendReplyTokens(live, tokens);
  };
  const onStream = (change) => {
    if (change.type === "start") startLive([]);
    else if (change.type === "tokens" && live) appendReplyTokens(live, change.tokens);
    else if (change.type === "end" && live) {
      live.parentElement.remove();
      live = null;
    }
    follow.contentChanged();
  };
  const drawSelectors = () => {
    fillSelect(parts.main, model.get("models"), model.get("main_model"));
    const drafts = model.get("drafts").map((d) => ({ key: d.key, label: d.notes.length ? `${d.label} ⚠ ${d.notes.join("; ")}` : d.label, title: d.title, group: d.group }));
    const none = drafts.length ? "none" : "none (no compatible draft model)";
    fillSelect(parts.draft, [{ key: "", label: none }, ...drafts], model.get("draft_model"));
    const guidance = model.get("draft_guidance") ?? "";
    parts.draftGuidance.textContent = guidance;
    parts.draftGuidance.hidden = !guidance;
    const engines = model.get("engines");
    fillSelect(parts.engine, engineOptions(engines), model.get("engine"));
    parts.engineField.hidden = engines.length < 2; // a server's chat: its models, its engines
    parts.engineNote.textContent = engines.find((e) => e.name === model.get("engine"))?.note ?? "";
    const incompatible = model.get("incompatible");
    parts.incompatibleSummary.textContent = `incompatible (${incompatible.length})`;
    parts.incompatibleList.replaceChildren(
      ...incompatible.map((m) => el(doc, "li", {}, [el(doc, "b", { textContent: m.label, title: m.title ?? "" }), `: ${m.notes.join("; ")}`])),
    );
    const draft = model.get("draft_model");
    parts.setDefault.disabled = !draft || draft === model.get("default_draft");
  };
  const drawStatus = () => {
    const status = model.get("status");
    const busy = status.state === "loading" || status.state === "generating";
    for (const button of parts.transcript.querySelectorAll(".specdec-suggestion")) button.disabled = busy;
    parts.progress.hidden = status.state !== "loading";
    if (status.progress === null || status.progress === undefined) parts.progress.removeAttribute("value");
    else parts.progress.value = status.progress;
    parts.statusText.textContent = status.message ?? "";
    parts.error.replaceChildren(...(status.state === "error" ? [errorElement(doc, status.message)] : []));
    parts.root.dataset.state = status.state;
    const messages = model.get("messages");
    const last = messages.at(-1);
    parts.send.disabled = busy;
    parts.regenerate.disabled = busy || !messages.some((m) => m.role === "assistant");
    parts.continueReply.disabled = busy || last?.role !== "assistant" || !last.content;
    parts.clear.disabled = busy || messages.length === 0;
    parts.stop.disabled = status.state !== "generating";
    for (const select of [parts.main, parts.draft, parts.engine]) select.disabled = busy;
    for (const button of parts.transcript.querySelectorAll(".specdec-edit, .specdec-version-step")) {
      button.disabled = busy || button.dataset.end === "true";
    }
    drawUndo();
  };
  const drawUndo = () => {
    const undo = model.get("undo");
    const busy = parts.root.dataset.state === "generating";
    parts.undo.hidden = !undo;
    parts.undo.textContent = undo;
    parts.undo.disabled = busy;
  };
  const drawSettings = () => {
    const settings = model.get("settings");
    for (const field of fields) writeSetting(field, parts.settings[field.key], settings[field.key]);
  };
  const drawToggle = () => {
    parts.showDraft.checked = model.get("show_draft");
    parts.root.classList.toggle("specdec-hide-draft", !model.get("show_draft"));
  };

  const traitListeners = [
    ["change:messages", () => (drawConversation(), drawStatus())],
    ["change:models change:main_model change:drafts change:draft_model change:incompatible change:engines change:engine change:default_draft change:draft_guidance", drawSelectors],
    ["change:status", drawStatus],
    ["change:settings", drawSettings],
    ["change:undo", drawUndo],
    ["change:show_draft", drawToggle],
  ];
  for (const [name, callback] of traitListeners) model.on(name, callback);
  const unsubscribe = stream.subscribe(onStream);

  const setTrait = (name, value) => {
    model.set(name, value);
    model.save_changes();
  };
  const submit = () => {
    const text = parts.input.value.trim();
    if (!text || parts.send.disabled) return;
    send({ type: "send", text });
    parts.input.value = "";
  };
  const on = (target, type, callback) => target.addEventListener(type, callback, { signal: domListeners.signal });
  on(parts.send, "click", submit);
  on(parts.input, "keydown", (event) => {
    if (event.key === "Enter" && !event.shiftKey && !event.isComposing) {
      event.preventDefault();
      submit();
    }
  });
  on(parts.stop, "click", () => send({ type: "stop" }));
  on(parts.continueReply, "click", () => send({ type: "continue" }));
  on(parts.regenerate, "click", () => send({ type: "regenerate" }));
  on(parts.clear, "click", () => send({ type: "clear" }));
  on(parts.undo, "click", () => send({ type: "undo_last" }));
  on(parts.setDefault, "click", () => send({ type: "set_default_draft" }));
  on(parts.main, "change", () => setTrait("main_model", parts.main.value));
  on(parts.draft, "change", () => setTrait("draft_model", parts.draft.value));
  on(parts.engine, "change", () => setTrait("engine", parts.engine.value));
  on(parts.showDraft, "change", () => setTrait("show_draft", parts.showDraft.checked));
  for (const field of fields) {
    on(parts.settings[field.key], "change", () => {
      setTrait("settings", { ...model.get("settings"), [field.key]: readSetting(field, parts.settings[field.key]) });
    });
  }
  attachTokenHover(parts.transcript, parts.tip, parts.root, domListeners.signal);

  drawSelectors();
  drawSettings();
  drawToggle();
  drawConversation();
  drawStatus();

  return () => {
    for (const [name, callback] of traitListeners) model.off(name, callback);
    unsubscribe();
    domListeners.abort();
  };
}

export default { initialize: routeReplies, render };
