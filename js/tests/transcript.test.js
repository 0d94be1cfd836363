import { describe, expect, it } from "vitest";
import {
  appendTokens,
  draftBackground,
  draftShade,
  fillTooltip,
  rejectedToggle,
  renderConversation,
  statsLine,
  tokenOfSpan,
  tooltipRows,
} from "../src/transcript.js";

const draft = (text, acceptance = 1) => ({
  token_id: 42,
  text,
  source: "draft",
  round: 3,
  p_main: 0.9,
  q_draft: 0.8,
  acceptance,
});
const main = (text) => ({ token_id: 7, text, source: "main", round: 3, p_main: 0.5, q_draft: null, acceptance: null });

describe("draft shade", () => {
  it("deepens with the main model's probability of the token and clamps to [0, 1]", () => {
    expect(draftShade({ p_main: 0 })).toBeCloseTo(0.15);
    expect(draftShade({ p_main: 1 })).toBeCloseTo(0.65);
    expect(draftShade({ p_main: 0.5 })).toBeGreaterThan(draftShade({ p_main: 0.2 }));
    expect(draftShade({ p_main: 7 })).toBeCloseTo(0.65);
    expect(draftShade({ p_main: null, acceptance: 0.5 })).toBeCloseTo(0.4); // p unknown: min(1, p/q)
    expect(draftShade({ p_main: null, acceptance: null })).toBeCloseTo(0.65);
    expect(draftBackground({ p_main: 1 })).toBe("rgba(var(--specdec-green, 34, 197, 94), 0.65)");
  });
});

describe("token spans", () => {
  it("shades accepted draft tokens and leaves the main model's plain", () => {
    const reply = document.createElement("div");
    reply.className = "specdec-reply";
    appendTokens(reply, [main("def"), draft(" quick", 0.5), draft("sort", 1)]);
    const spans = reply.querySelectorAll("span");
    expect(spans).toHaveLength(3);
    expect(spans[0].className).toBe("specdec-main specdec-kind-plain");
    expect(spans[0].style.background).toBe("");
    expect(spans[1].className).toBe("specdec-draft specdec-kind-accepted");
    expect(spans[1].style.background).toContain("0.60"); // p = 0.9
    expect(reply.textContent).toBe("def quicksort");
  });

  it("keeps counting when a streamed reply grows, so the tooltip finds every token", () => {
    const reply = document.createElement("div");
    reply.className = "specdec-reply";
    appendTokens(reply, [main("a")]);
    appendTokens(reply, [draft("b")]);
    const last = reply.querySelectorAll("span")[1];
    expect(last.dataset.index).toBe("1");
    expect(tokenOfSpan(last).text).toBe("b");
  });

  it("escapes text: a token is text, never markup", () => {
    const reply = document.createElement("div");
    reply.className = "specdec-reply";
    appendTokens(reply, [main("<b>x</b>")]);
    expect(reply.querySelector("b")).toBeNull();
    expect(reply.textContent).toBe("<b>x</b>");
  });
});

describe("tooltip", () => {
  it("shows text, id, source, p, q, acceptance and round", () => {
    const rows = Object.fromEntries(tooltipRows(draft(" x\n", 0.75)));
    expect(rows).toMatchObject({
      text: '" x\\n"',
      id: "42",
      source: "draft, accepted",
      "p (main)": "0.900",
      "q (draft)": "0.800",
      "min(1, p/q)": "0.750",
      round: "3",
    });
    const tip = document.createElement("div");
    fillTooltip(tip, main("y"));
    expect(tip.textContent).toContain("main model");
    expect(tip.textContent).toContain("–"); // q unknown for a main-model token
  });
});

describe("conversation", () => {
  it("renders user messages, replies with stats and provenance, and errors in words", () => {
    const box = document.createElement("div");
    renderConversation(box, [
      { role: "system", content: "hidden" },
      { role: "user", content: "hi" },
      {
        role: "assistant",
        content: "ab",
        tokens: [main("a"), draft("b")],
        stats_rows: [["tokens/s", "12.00"], ["accepted", "1"]],
        main_model: "big",
        draft_model: "small",
      },
      { role: "assistant", content: "", tokens: [], error: "the prompt is too long" },
    ]);
    expect(box.querySelectorAll(".specdec-msg")).toHaveLength(3);
    expect(box.textContent).not.toContain("hidden");
    expect(box.querySelector(".specdec-user").textContent).toBe("hi");
    expect(box.querySelector('[data-label="accepted"] b').textContent).toBe("1");
    expect(box.querySelector(".specdec-provenance").textContent).toBe("big · draft small");
    expect(box.querySelector(".specdec-error").textContent).toBe("the prompt is too long");
    expect(box.querySelector(".specdec-error").getAttribute("role")).toBe("alert");
  });

  it("counts rejected draft tokens as the stats do, and those drafted after them apart", () => {
    // "show 65 rejected draft tokens" stood beside the stats' "rejected 24": each correction
    // replaced one rejected token and the ones drafted after it, which were never judged.
    const correction = (rejected) => ({ ...main("x"), kind: "correction", rejected });
    const box = document.createElement("div");
    const label = rejectedToggle(document, box, [correction(["a", "b", "c"]), draft("y"), correction(["d"])]);
    expect(label.textContent).toBe(" show 2 rejected draft tokens (and 2 drafted after them, never judged)");
    expect(rejectedToggle(document, box, [correction(["a"])]).textContent).toBe(" show 1 rejected draft token");
    expect(rejectedToggle(document, box, [draft("y")])).toBeNull();
  });

  it("formats stats as Python sent them", () => {
    const line = statsLine(document, [["acceptance rate", "75.0%"]]);
    expect(line.textContent).toBe("acceptance rate 75.0%");
  });
});
