import { afterEach, beforeEach, describe, expect, it } from "vitest";
import widget, { versionSteps } from "../src/chat.js";
import { FakeModel } from "./fake_model.js";
import fromPython from "./fixtures/from_python.json";

let counter = 0;
const initialState = () => ({
  _chat_id: `chat-${counter++}`,
  models: [
    { key: "qwen-1.5b", label: "Qwen 1.5B" },
    { key: "gemma", label: "Gemma 270M" },
  ],
  main_model: "qwen-1.5b",
  drafts: [{ key: "qwen-0.5b", label: "Qwen 0.5B", notes: [] }],
  incompatible: [
    { key: "gemma", label: "Gemma 270M", notes: ["vocabulary sizes 151936 vs 262144"] },
    { key: "smol", label: "SmolLM2", notes: ["vocabulary types BPE vs SPM"] },
  ],
  draft_model: "qwen-0.5b",
  default_draft: "",
  engines: [
    { name: "llama.cpp", available: true, note: "" },
    { name: "mlx", available: false, note: "mlx.core is not installed; pip install 'specdec_jupyter[mlx]'" },
    { name: "toy", available: true, note: "" },
  ],
  engine: "llama.cpp",
  status: { state: "idle", message: "", progress: null },
  settings: fromPython.chat.settings,
  setting_fields: fromPython.chat.setting_fields,
  messages: [],
  show_draft: true,
  undo: "",
  suggestions: fromPython.chat.suggestions,
});
const token = (text, source = "draft") => ({ token_id: 1, text, source, round: 1, p_main: 1, q_draft: 1, acceptance: 1 });

let model, host, cleanups;
const mount = () => {
  const el = document.createElement("div");
  document.body.appendChild(el);
  cleanups.push(widget.render({ model, el }));
  return el;
};

beforeEach(() => {
  model = new FakeModel(initialState());
  cleanups = [widget.initialize({ model })];
  host = mount();
});
afterEach(() => {
  for (const cleanup of cleanups.reverse()) cleanup();
  document.body.replaceChildren();
});

describe("selectors", () => {
  it("list every model as main, only compatible drafts, and say why the rest are not", () => {
    const mains = [...host.querySelectorAll(".specdec-main-select option")].map((o) => o.value);
    expect(mains).toEqual(["qwen-1.5b", "gemma"]);
    const drafts = [...host.querySelectorAll(".specdec-draft-select option")].map((o) => o.textContent);
    expect(drafts).toEqual(["none", "Qwen 0.5B"]);
    expect(host.querySelector(".specdec-incompatible summary").textContent).toBe("incompatible (2)");
    expect(host.querySelector(".specdec-incompatible").textContent).toContain("vocabulary sizes 151936 vs 262144");
  });

  it("offer the engines here, and none on a server's chat, which runs the server's", () => {
    const field = host.querySelector(".specdec-engine-select").closest("label");
    expect(field.hidden).toBe(false);
    model.set("engine", "server");
    model.set("engines", [{ name: "server", available: true, note: "the models of http://gpu-box:1234" }]);
    expect(field.hidden).toBe(true);
    expect(host.querySelector(".specdec-engine-note").textContent).toBe("the models of http://gpu-box:1234");
  });

  it("flag a compatible draft that comes with a warning", () => {
    model.set("drafts", [{ key: "big", label: "Qwen 7B", notes: ["the draft is not smaller than the main model"] }]);
    const option = host.querySelector('.specdec-draft-select option[value="big"]');
    expect(option.textContent).toBe("Qwen 7B ⚠ the draft is not smaller than the main model");
  });

  it("group drafts by vocabulary: a draft of another vocabulary under its own heading, with its note", () => {
    model.set("drafts", [
      { key: "qwen-0.5b", label: "Qwen 0.5B", notes: [], group: "same vocabulary" },
      { key: "smol", label: "SmolLM2", notes: ["another vocabulary (vocabulary sizes 151936 vs 49152): drafts text"], group: "another vocabulary" },
    ]);
    const groups = [...host.querySelectorAll(".specdec-draft-select optgroup")];
    expect(groups.map((g) => g.label)).toEqual(["same vocabulary", "another vocabulary"]);
    expect(groups[1].querySelector("option").value).toBe("smol");
    expect(groups[1].textContent).toContain("drafts text");
  });

  it("send choices back as traits, and a refreshed draft list redraws", () => {
    const main = host.querySelector(".specdec-main-select");
    main.value = "gemma";
    main.dispatchEvent(new Event("change"));
    expect(model.get("main_model")).toBe("gemma");
    model.set("drafts", []);
    expect(host.querySelectorAll(".specdec-draft-select option")).toHaveLength(1);
  });

  it("list every engine, one that cannot run here disabled with the reason", () => {
    const options = [...host.querySelectorAll(".specdec-engine-select option")];
    expect(options.map((o) => [o.value, o.disabled])).toEqual([["llama.cpp", false], ["mlx", true], ["toy", false]]);
    expect(options[1].textContent).toBe("mlx (unavailable)");
    expect(options[1].title).toContain("pip install");
    model.set("engines", [{ name: "llama.cpp", available: true, note: "" }, { name: "mlx", available: true, note: "MLX runs on the CPU here" }]);
    model.set("engine", "mlx");
    expect(host.querySelector(".specdec-engine-note").textContent).toBe("MLX runs on the CPU here");
  });

  it("offer to remember the chosen draft as the default", () => {
    const button = host.querySelector(".specdec-set-default");
    expect(button.disabled).toBe(false);
    button.click();
    expect(model.sent).toContainEqual({ type: "set_default_draft" });
    model.set("default_draft", "qwen-0.5b");
    expect(button.disabled).toBe(true);
  });

  it("show loading progress", () => {
    model.set("status", { state: "loading", message: "Loading Qwen 1.5B", progress: 0.5 });
    const progress = host.querySelector(".specdec-progress");
    expect(progress.hidden).toBe(false);
    expect(progress.value).toBe(0.5);
    expect(host.querySelector(".specdec-status-text").textContent).toBe("Loading Qwen 1.5B");
    expect(host.querySelector(".specdec-send").disabled).toBe(true);
  });
});

describe("composing", () => {
  const input = () => host.querySelector(".specdec-input");
  const press = (options) => input().dispatchEvent(new KeyboardEvent("keydown", { key: "Enter", bubbles: true, cancelable: true, ...options }));

  it("sends on Enter and keeps Shift+Enter for a new line", () => {
    input().value = "hello";
    press({ shiftKey: true });
    expect(model.sent).toEqual([]);
    press({});
    expect(model.sent).toEqual([{ type: "send", text: "hello" }]);
    expect(input().value).toBe("");
  });

  it("does not send blank messages", () => {
    input().value = "  \n ";
    press({});
    expect(model.sent).toEqual([]);
  });

  it("has Stop, Regenerate and Clear", () => {
    model.set("messages", [{ role: "user", content: "q" }, { role: "assistant", content: "a", tokens: [token("a")] }]);
    model.set("status", { state: "generating", message: "", progress: null });
    expect(host.querySelector(".specdec-stop").disabled).toBe(false);
    host.querySelector(".specdec-stop").click();
    model.set("status", { state: "idle", message: "", progress: null });
    expect(host.querySelector(".specdec-stop").disabled).toBe(true);
    host.querySelector(".specdec-regenerate").click();
    host.querySelector(".specdec-clear").click();
    expect(model.sent).toEqual([{ type: "stop" }, { type: "regenerate" }, { type: "clear" }]);
  });
});

describe("a chat that behaves", () => {
  const idle = { state: "idle", message: "", progress: null };
  const generating = { state: "generating", message: "", progress: null };
  const button = (name) => host.querySelector(`.specdec-${name}`);
  const reply = (text, extra = {}) => ({ role: "assistant", content: text, tokens: [token(text)], draft_model: "Qwen 0.5B", ...extra });

  it("disables Clear while a reply streams, and offers Undo after a Clear", () => {
    model.set("messages", [{ role: "user", content: "q" }, reply("a")]);
    model.set("status", generating);
    expect(button("clear").disabled).toBe(true);
    model.set("status", idle);
    expect(button("clear").disabled).toBe(false);
    expect(button("undo").hidden).toBe(true);
    button("clear").click();
    model.set("messages", []);
    model.set("undo", "Undo clear (brings back 2 messages)");
    expect(button("clear").disabled).toBe(true); // nothing left to clear
    expect(button("undo").hidden).toBe(false);
    expect(button("undo").textContent).toBe("Undo clear (brings back 2 messages)");
    button("undo").click();
    expect(model.sent).toEqual([{ type: "clear" }, { type: "undo_last" }]);
  });

  it("offers Continue only after a reply with text, and not while one streams", () => {
    model.set("messages", [{ role: "user", content: "q" }]);
    expect(button("continue").disabled).toBe(true);
    model.set("messages", [{ role: "user", content: "q" }, reply("a")]);
    expect(button("continue").disabled).toBe(false);
    model.set("status", generating);
    expect(button("continue").disabled).toBe(true);
    model.set("status", idle);
    button("continue").click();
    expect(model.sent).toEqual([{ type: "continue" }]);
  });

  it("says where a reply's ‹ › lead", () => {
    expect(versionSteps({ role: "assistant" })).toEqual({ shown: 0, count: 1, previous: null, next: null });
    expect(versionSteps({ versions: [{}, {}, null], version: 2 })).toEqual({ shown: 2, count: 3, previous: 1, next: null });
    expect(versionSteps({ versions: [null, {}, {}], version: 0 })).toEqual({ shown: 0, count: 3, previous: null, next: 1 });
  });

  it("switches versions of a regenerated reply", () => {
    model.set("messages", [{ role: "user", content: "q" }, reply("b", { versions: [{ content: "a" }, null], version: 1 })]);
    const label = host.querySelector(".specdec-version-label");
    expect(label.textContent).toBe("2/2");
    const [previous, next] = host.querySelectorAll(".specdec-version-step");
    expect(next.disabled).toBe(true);
    previous.click();
    expect(model.sent).toEqual([{ type: "show_version", index: 1, version: 0 }]);
    model.set("status", generating);
    expect(previous.disabled).toBe(true);
    expect(host.querySelectorAll(".specdec-user .specdec-versions")).toHaveLength(0);
  });

  it("edits a message of yours and asks again from it", () => {
    model.set("messages", [{ role: "user", content: "first" }, reply("a"), { role: "user", content: "second" }, reply("b")]);
    const edits = host.querySelectorAll(".specdec-user .specdec-edit");
    expect(edits).toHaveLength(2);
    edits[1].click();
    const editor = host.querySelector(".specdec-edit-input");
    expect(editor.value).toBe("second");
    editor.value = "second, reworded";
    host.querySelector(".specdec-edit-send").click();
    expect(model.sent).toEqual([{ type: "edit", index: 2, text: "second, reworded" }]);
  });

  it("cancels an edit without sending", () => {
    model.set("messages", [{ role: "user", content: "first" }]);
    host.querySelector(".specdec-edit").click();
    host.querySelector(".specdec-edit-cancel").click();
    expect(host.querySelector(".specdec-edit-input")).toBeNull();
    expect(host.querySelector(".specdec-user .specdec-text").textContent).toBe("first");
    expect(model.sent).toEqual([]);
  });

  it("draws the rounds strip under a reply, before its stats", () => {
    const rounds = [
      { round: 1, drafted: 3, accepted: 2, emitted: 3, source: "model" },
      { round: 2, drafted: 0, accepted: 0, emitted: 1, source: null },
      { round: 3, drafted: 0, accepted: 0, emitted: 1, source: null },
      { round: 4, drafted: 2, accepted: 2, emitted: 3, source: "lookup" },
    ];
    model.set("messages", [reply("a", { rounds, stats_rows: [["tokens/s", "10.00"]] })]);
    const box = host.querySelector(".specdec-assistant");
    const strip = box.querySelector(".specdec-strip");
    expect(strip.nextElementSibling.className).toBe("specdec-stats");
    expect(strip.querySelectorAll(".specdec-strip-model .specdec-strip-cell-accepted")).toHaveLength(2);
    expect(strip.querySelectorAll(".specdec-strip-model .specdec-strip-cell-rejected")).toHaveLength(1);
    expect(strip.querySelectorAll(".specdec-strip-lookup .specdec-strip-cell-accepted")).toHaveLength(2);
    expect(strip.querySelector(".specdec-strip-paused").title).toContain("2 rounds, 2 tokens");
  });
});

describe("streaming", () => {
  it("grows the live reply batch by batch and replaces it with the finished message", () => {
    model.set("messages", [{ role: "user", content: "q" }]);
    model.emit("msg:custom", { type: "reply_start" });
    model.emit("msg:custom", { type: "tokens", tokens: [token("de", "main"), token("f")] });
    model.emit("msg:custom", { type: "tokens", tokens: [token(" x")] });
    const live = host.querySelector(".specdec-live");
    expect(live.textContent.trim()).toBe("def x");
    expect(live.querySelectorAll(".specdec-draft")).toHaveLength(2);
    model.set("messages", [
      { role: "user", content: "q" },
      { role: "assistant", content: "def x", tokens: [token("de", "main"), token("f"), token(" x")] },
    ]);
    expect(host.querySelector(".specdec-live")).toBeNull();
    expect(host.querySelectorAll(".specdec-assistant")).toHaveLength(1);
    expect(host.querySelector(".specdec-reply").textContent.trim()).toBe("def x");
  });

  it("shows a view opened mid-reply the tokens streamed so far", () => {
    model.emit("msg:custom", { type: "reply_start" });
    model.emit("msg:custom", { type: "tokens", tokens: [token("early")] });
    const second = mount();
    expect(second.querySelector(".specdec-live").textContent.trim()).toBe("early");
  });

  it("shows a hover card for a token", () => {
    model.set("messages", [{ role: "assistant", content: "a", tokens: [token("a")] }]);
    const span = host.querySelector(".specdec-transcript .specdec-draft");
    span.dispatchEvent(new MouseEvent("mousemove", { bubbles: true, clientX: 5, clientY: 5 }));
    const tip = host.querySelector(".specdec-tip");
    expect(tip.hidden).toBe(false);
    expect(tip.textContent).toContain("draft, accepted");
  });
});

describe("settings and toggle", () => {
  it("write typed settings back", () => {
    const draftTokens = host.querySelector('[data-setting="draft_tokens"]');
    draftTokens.value = "4";
    draftTokens.dispatchEvent(new Event("change"));
    expect(model.get("settings").draft_tokens).toBe(4);
    const temperature = host.querySelector('[data-setting="temperature"]');
    temperature.value = "0.7";
    temperature.dispatchEvent(new Event("change"));
    expect(model.get("settings")).toMatchObject({ temperature: 0.7, draft_tokens: 4 });
    const mode = host.querySelector('[data-setting="draft_mode"]');
    mode.value = "lookup";
    mode.dispatchEvent(new Event("change"));
    expect(model.get("settings").draft_mode).toBe("lookup");
    const useDraft = host.querySelector('[data-setting="use_draft"]');
    useDraft.checked = false;
    useDraft.dispatchEvent(new Event("change"));
    expect(model.get("settings").use_draft).toBe(false);
    const layers = host.querySelector('[data-setting="draft_gpu_layers"]');
    layers.value = "12";
    layers.dispatchEvent(new Event("change"));
    expect(model.get("settings").draft_gpu_layers).toBe(12);
    layers.value = "";
    layers.dispatchEvent(new Event("change"));
    expect(model.get("settings").draft_gpu_layers).toBe(null);
    const stops = host.querySelector('[data-setting="stop"]');
    stops.value = "###\nend\\n";
    stops.dispatchEvent(new Event("change"));
    expect(model.get("settings").stop).toEqual(["###", "end\n"]);
  });

  it("draws a control for every setting Python declares", () => {
    const shown = [...host.querySelectorAll(".specdec-settings [data-setting]")].map((c) => c.dataset.setting);
    expect(shown).toEqual(fromPython.chat.setting_fields.map((field) => field.key));
    model.set("settings", { ...model.get("settings"), stop: ["a\nb"], seed: 7 });
    expect(host.querySelector('[data-setting="stop"]').value).toBe("a\\nb");
    expect(host.querySelector('[data-setting="seed"]').value).toBe("7");
  });

  it("hide the green when 'Visualize accepted draft tokens' is off", () => {
    const toggle = host.querySelector(".specdec-show-draft");
    expect(toggle.checked).toBe(true);
    toggle.checked = false;
    toggle.dispatchEvent(new Event("change"));
    expect(model.get("show_draft")).toBe(false);
    expect(host.querySelector(".specdec-chat").classList.contains("specdec-hide-draft")).toBe(true);
  });

  it("show errors in words", () => {
    model.set("status", { state: "error", message: "Gemma cannot draft for Qwen: vocabulary sizes differ", progress: null });
    expect(host.querySelector('[role="alert"]').textContent).toContain("cannot draft");
  });
});

describe("cleanup", () => {
  it("removes every listener it added", () => {
    for (const cleanup of cleanups.reverse()) cleanup();
    cleanups = [];
    expect(model.listenerCount()).toBe(0);
    host.querySelector(".specdec-input").value = "x";
    host.querySelector(".specdec-send").click();
    expect(model.sent).toEqual([]);
  });
});

describe("no compatible draft", () => {
  it("says so in the draft selector, and what to do instead", () => {
    expect(host.querySelector(".specdec-draft-guidance").hidden).toBe(true);
    model.set("drafts", []);
    model.set("draft_model", "");
    model.set("draft_guidance", "No compatible draft model: none of the 2 models judged shares it.");
    const options = [...host.querySelectorAll(".specdec-draft-select option")].map((o) => o.textContent);
    expect(options).toEqual(["none (no compatible draft model)"]);
    const guidance = host.querySelector(".specdec-draft-guidance");
    expect(guidance.hidden).toBe(false);
    expect(guidance.textContent).toContain("No compatible draft model");
  });
});

describe("first screen", () => {
  it("says what the green means and offers a code edit that measures its speedup", () => {
    const welcome = host.querySelector(".specdec-transcript .specdec-welcome");
    expect(welcome.textContent).toContain("accepted draft tokens show green");
    const [suggestion] = welcome.querySelectorAll(".specdec-suggestion");
    expect(suggestion.textContent).toContain("with the speedup over plain decoding");
    suggestion.click();
    const [first] = fromPython.chat.suggestions;
    expect(model.sent.at(-1)).toEqual({ type: "send", text: first.prompt, compare: true });
  });

  it("gives way to the conversation", () => {
    model.set("messages", [{ role: "user", content: "hi" }]);
    expect(host.querySelector(".specdec-welcome")).toBeNull();
  });
});
