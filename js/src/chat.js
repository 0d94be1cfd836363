// The chat widget: model and draft selectors, the conversation with provenance
// colours, stats under each reply, input with Send / Stop / Regenerate / Clear, and
// settings. State lives in the Python traits; the reply being generated streams in
// through custom messages (see stream.js).
import "./chat.css";
import { el } from "./dom.js";
import { routeReplies, streamFor } from "./stream.js";
import { attachTokenHover } from "./hover.js";
import { appendReplyTokens, errorElement, renderConversation } from "./transcript.js";

const DRAFT_TOKEN_CHOICES = ["auto", ...Array.from({ length: 16 }, (_, i) => String(i + 1))];

// The settings form: trait key, label, and input kind.
export const SETTINGS_FIELDS = [
  { key: "temperature", label: "Temperature", kind: "number", step: "0.05", min: "0" },
  { key: "top_p", label: "Top-p", kind: "number", step: "0.05", min: "0", max: "1" },
  { key: "max_tokens", label: "Max tokens", kind: "number", step: "1", min: "1" },
  { key: "draft_tokens", label: "Draft tokens", kind: "choice", choices: DRAFT_TOKEN_CHOICES },
  { key: "use_draft", label: "Speculative decoding (use the draft)", kind: "checkbox" },
  { key: "system_prompt", label: "System prompt", kind: "text" },
  { key: "gpu_layers", label: "GPU layers, main model (empty: all on a GPU build; -1: all)", kind: "layers" },
  { key: "draft_gpu_layers", label: "GPU layers, draft (empty: all on a GPU build; -1: all)", kind: "layers" },
];

function labelled(doc, text, control) {
  return el(doc, "label", { className: "specdec-field" }, [el(doc, "span", { textContent: text }), control]);
}

/** Build the widget's DOM once; returns the element and named parts. */
export function buildView(doc) {
  const parts = {
    main: el(doc, "select", { className: "specdec-main-select", title: "Main model" }),
    draft: el(doc, "select", { className: "specdec-draft-select", title: "Draft model" }),
    engine: el(doc, "select", { className: "specdec-engine-select", title: "Engine" }),
    engineNote: el(doc, "span", { className: "specdec-engine-note" }),
    setDefault: el(doc, "button", { className: "specdec-set-default", textContent: "Set as default draft for this model" }),
    incompatibleSummary: el(doc, "summary"),
    incompatibleList: el(doc, "ul"),
    progress: el(doc, "progress", { className: "specdec-progress" }),
    statusText: el(doc, "span", { className: "specdec-status-text" }),
    error: el(doc, "div", { className: "specdec-error-slot" }),
    transcript: el(doc, "div", { className: "specdec-transcript" }),
    showDraft: el(doc, "input", { type: "checkbox", className: "specdec-show-draft" }),
    input: el(doc, "textarea", { className: "specdec-input", rows: 2, placeholder: "Send a message (Enter sends, Shift+Enter adds a line)" }),
    send: el(doc, "button", { className: "specdec-send", textContent: "Send" }),
    stop: el(doc, "button", { className: "specdec-stop", textContent: "Stop" }),
    regenerate: el(doc, "button", { className: "specdec-regenerate", textContent: "Regenerate" }),
    clear: el(doc, "button", { className: "specdec-clear", textContent: "Clear" }),
    tip: el(doc, "div", { className: "specdec-tip", hidden: true }),
    settings: {},
  };
  parts.incompatible = el(doc, "details", { className: "specdec-incompatible" }, [
    parts.incompatibleSummary,
    parts.incompatibleList,
  ]);
  const settingsBox = el(doc, "details", { className: "specdec-settings" }, [el(doc, "summary", { textContent: "Settings" })]);
  for (const field of SETTINGS_FIELDS) {
    const control = settingControl(doc, field);
    parts.settings[field.key] = control;
    settingsBox.appendChild(labelled(doc, field.label, control));
  }
  parts.root = el(doc, "div", { className: "specdec-chat" }, [
    el(doc, "div", { className: "specdec-bar" }, [
      labelled(doc, "Main", parts.main),
      labelled(doc, "Draft", parts.draft),
      labelled(doc, "Engine", parts.engine),
      parts.engineNote,
      parts.setDefault,
      parts.incompatible,
    ]),
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
      el(doc, "div", { className: "specdec-buttons" }, [parts.send, parts.stop, parts.regenerate, parts.clear]),
    ]),
    settingsBox,
    parts.tip,
  ]);
  return parts;
}

function settingControl(doc, field) {
  if (field.kind === "choice") {
    return el(doc, "select", { dataset: { setting: field.key } }, field.choices.map((c) => el(doc, "option", { value: c, textContent: c })));
  }
  if (field.kind === "text") return el(doc, "textarea", { rows: 2, dataset: { setting: field.key } });
  if (field.kind === "layers") return el(doc, "input", { type: "number", step: "1", min: "-1", placeholder: "auto", dataset: { setting: field.key } });
  const props = { type: field.kind, dataset: { setting: field.key } };
  for (const key of ["step", "min", "max"]) if (field[key]) props[key] = field[key];
  return el(doc, "input", props);
}

/** Read one setting back from its control, typed as the Python side expects. */
export function readSetting(field, control) {
  if (field.kind === "checkbox") return control.checked;
  if (field.kind === "choice") return control.value === "auto" ? "auto" : Number(control.value);
  if (field.kind === "number") return Number(control.value);
  if (field.kind === "layers") return control.value === "" ? null : Math.trunc(Number(control.value));
  return control.value;
}

function writeSetting(field, control, value) {
  if (field.kind === "checkbox") control.checked = Boolean(value);
  else control.value = value === undefined || value === null ? "" : String(value);
}

/** Replace a select's options, keeping `value` selected; an option may be disabled, with a title saying why. */
export function fillSelect(select, options, value) {
  const doc = select.ownerDocument;
  select.replaceChildren(
    ...options.map((o) => el(doc, "option", { value: o.key, textContent: o.label, disabled: Boolean(o.disabled), title: o.title ?? "" })),
  );
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

/** The views' half of the widget: draw the traits, send the user's actions. */
function render({ model, el: host }) {
  const doc = host.ownerDocument;
  const parts = buildView(doc);
  host.appendChild(parts.root);
  const stream = streamFor(model.get("_chat_id"));
  let live = null; // the element the streaming reply grows in

  const scrollToEnd = () => {
    parts.transcript.scrollTop = parts.transcript.scrollHeight;
  };
  const drawConversation = () => {
    renderConversation(parts.transcript, model.get("messages"));
    live = null;
    if (stream.tokens) startLive(stream.tokens);
    scrollToEnd();
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
    scrollToEnd();
  };
  const drawSelectors = () => {
    fillSelect(parts.main, model.get("models"), model.get("main_model"));
    const drafts = model.get("drafts").map((d) => ({ key: d.key, label: d.notes.length ? `${d.label} ⚠ ${d.notes.join("; ")}` : d.label }));
    fillSelect(parts.draft, [{ key: "", label: "none" }, ...drafts], model.get("draft_model"));
    const engines = model.get("engines");
    fillSelect(parts.engine, engineOptions(engines), model.get("engine"));
    parts.engineNote.textContent = engines.find((e) => e.name === model.get("engine"))?.note ?? "";
    const incompatible = model.get("incompatible");
    parts.incompatibleSummary.textContent = `incompatible (${incompatible.length})`;
    parts.incompatibleList.replaceChildren(
      ...incompatible.map((m) => el(doc, "li", {}, [el(doc, "b", { textContent: m.label }), `: ${m.notes.join("; ")}`])),
    );
    const draft = model.get("draft_model");
    parts.setDefault.disabled = !draft || draft === model.get("default_draft");
  };
  const drawStatus = () => {
    const status = model.get("status");
    const busy = status.state === "loading" || status.state === "generating";
    parts.progress.hidden = status.state !== "loading";
    if (status.progress === null || status.progress === undefined) parts.progress.removeAttribute("value");
    else parts.progress.value = status.progress;
    parts.statusText.textContent = status.message ?? "";
    parts.error.replaceChildren(...(status.state === "error" ? [errorElement(doc, status.message)] : []));
    parts.root.dataset.state = status.state;
    parts.send.disabled = busy;
    parts.regenerate.disabled = busy || !model.get("messages").some((m) => m.role === "assistant");
    parts.stop.disabled = status.state !== "generating";
    for (const select of [parts.main, parts.draft, parts.engine]) select.disabled = busy;
  };
  const drawSettings = () => {
    const settings = model.get("settings");
    for (const field of SETTINGS_FIELDS) writeSetting(field, parts.settings[field.key], settings[field.key]);
  };
  const drawToggle = () => {
    parts.showDraft.checked = model.get("show_draft");
    parts.root.classList.toggle("specdec-hide-draft", !model.get("show_draft"));
  };

  const traitListeners = [
    ["change:messages", () => (drawConversation(), drawStatus())],
    ["change:models change:main_model change:drafts change:draft_model change:incompatible change:engines change:engine change:default_draft", drawSelectors],
    ["change:status", drawStatus],
    ["change:settings", drawSettings],
    ["change:show_draft", drawToggle],
  ];
  for (const [name, callback] of traitListeners) model.on(name, callback);
  const unsubscribe = stream.subscribe(onStream);

  const send = (message) => model.send(message);
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
  const domListeners = new AbortController();
  const on = (target, type, callback) => target.addEventListener(type, callback, { signal: domListeners.signal });
  on(parts.send, "click", submit);
  on(parts.input, "keydown", (event) => {
    if (event.key === "Enter" && !event.shiftKey && !event.isComposing) {
      event.preventDefault();
      submit();
    }
  });
  on(parts.stop, "click", () => send({ type: "stop" }));
  on(parts.regenerate, "click", () => send({ type: "regenerate" }));
  on(parts.clear, "click", () => send({ type: "clear" }));
  on(parts.setDefault, "click", () => send({ type: "set_default_draft" }));
  on(parts.main, "change", () => setTrait("main_model", parts.main.value));
  on(parts.draft, "change", () => setTrait("draft_model", parts.draft.value));
  on(parts.engine, "change", () => setTrait("engine", parts.engine.value));
  on(parts.showDraft, "change", () => setTrait("show_draft", parts.showDraft.checked));
  for (const field of SETTINGS_FIELDS) {
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
