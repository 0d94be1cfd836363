import { describe, expect, it } from "vitest";
import { attachTokenHover } from "../src/hover.js";
import { renderReply } from "../src/markdown/render.js";

const tok = (text, round, source = "draft") => ({ token_id: 1, text, source, round, p_main: 0.9, q_draft: 0.8, acceptance: 1 });

function setUp() {
  const root = document.createElement("div");
  const reply = document.createElement("div");
  reply.className = "specdec-reply";
  const tip = document.createElement("div");
  tip.hidden = true;
  root.append(reply, tip);
  document.body.appendChild(root);
  renderReply(reply, [tok("one", 1), tok(" two", 1, "main"), tok(" three", 2)]);
  const controller = new AbortController();
  attachTokenHover(reply, tip, root, controller.signal);
  const spans = reply.querySelectorAll("[data-index]");
  return { reply, tip, spans, controller };
}

const move = (target, x, y) => target.dispatchEvent(new MouseEvent("mousemove", { bubbles: true, clientX: x, clientY: y }));

describe("token hover", () => {
  it("shows the tooltip and outlines the token's round when the pointer moves onto it", () => {
    const { tip, spans, reply } = setUp();
    move(spans[0], 3, 4);
    expect(tip.hidden).toBe(false);
    expect(tip.textContent).toContain("draft, accepted");
    const outlined = [...reply.querySelectorAll(".specdec-round-hover")].map((s) => s.textContent);
    expect(outlined).toEqual(["one", " two"]);
    move(spans[2], 30, 4);
    expect([...reply.querySelectorAll(".specdec-round-hover")].map((s) => s.textContent)).toEqual([" three"]);
  });

  it("ignores text growing under a still pointer: mouseover, and a move to the same spot", () => {
    const { tip, spans, reply } = setUp();
    spans[0].dispatchEvent(new MouseEvent("mouseover", { bubbles: true, clientX: 3, clientY: 4 }));
    expect(tip.hidden).toBe(true);
    move(spans[0], 3, 4);
    reply.dispatchEvent(new MouseEvent("mouseleave"));
    expect(tip.hidden).toBe(true);
    expect(reply.querySelector(".specdec-round-hover")).toBeNull();
    move(spans[2], 3, 4); // what a browser sends after layout moves a new span under the pointer
    expect(tip.hidden).toBe(true);
  });

  it("stops listening once its signal aborts", () => {
    const { tip, spans, controller } = setUp();
    controller.abort();
    move(spans[0], 8, 9);
    expect(tip.hidden).toBe(true);
  });
});
