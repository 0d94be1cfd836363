import { afterEach, describe, expect, it } from "vitest";
import widget from "../src/reply.js";
import { FakeModel } from "./fake_model.js";

const token = (text, source = "draft") => ({ token_id: 1, text, source, round: 1, p_main: 0.9, q_draft: 0.8, acceptance: 1 });
let cleanups = [];
let counter = 0;

function mount(model) {
  cleanups.push(widget.initialize({ model }));
  const host = document.createElement("div");
  document.body.appendChild(host);
  cleanups.push(widget.render({ model, el: host }));
  return host;
}

afterEach(() => {
  for (const cleanup of cleanups.reverse()) cleanup();
  cleanups = [];
  document.body.replaceChildren();
});

describe("a %%specdec reply", () => {
  it("renders each batch, keeping the blocks whose source did not change", () => {
    const model = new FakeModel({ _chat_id: `reply-${counter++}`, messages: [] });
    const host = mount(model);
    model.emit("msg:custom", { type: "reply_start" });
    model.emit("msg:custom", { type: "tokens", tokens: [token("Intro."), token("\n\n", "main"), token("def")] });
    const first = host.querySelector(".specdec-live .specdec-block");
    model.emit("msg:custom", { type: "tokens", tokens: [token(" f():")] });
    const blocks = host.querySelectorAll(".specdec-live .specdec-block");
    expect([...blocks].map((b) => b.textContent.trim())).toEqual(["Intro.", "def f():"]);
    expect(blocks[0]).toBe(first); // kept, not rendered again
    expect(blocks[1].querySelector("span").classList.contains("specdec-draft")).toBe(true);
  });

  it("shows the finished reply with its stats once it lands", () => {
    const model = new FakeModel({ _chat_id: `reply-${counter++}`, messages: [] });
    const host = mount(model);
    model.emit("msg:custom", { type: "reply_start" });
    model.emit("msg:custom", { type: "tokens", tokens: [token("hi")] });
    const reply = { role: "assistant", content: "hi", tokens: [token("hi")], stats_rows: [["tokens/s", "12.00"]] };
    model.set("messages", [reply]);
    expect(host.querySelector(".specdec-live")).toBeNull();
    expect(host.querySelector(".specdec-reply").textContent.trim()).toBe("hi");
    expect(host.querySelector(".specdec-stats").textContent).toContain("tokens/s");
  });
});
