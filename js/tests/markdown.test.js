import { describe, expect, it } from "vitest";
import { alignText, MAX_SKIP, tokenAt, tokenRuns, tokenStarts } from "../src/markdown/align.js";
import { renderReply } from "../src/markdown/render.js";

let round = 0;
const tok = (text, source = "draft", extra = {}) => ({
  token_id: 1,
  text,
  source,
  round: round++,
  p_main: 0.8,
  q_draft: 0.7,
  acceptance: 1,
  ...extra,
});

function rendered(texts, options) {
  const element = document.createElement("div");
  element.className = "specdec-reply";
  const tokens = texts.map((text, i) => tok(text, i % 2 ? "main" : "draft"));
  renderReply(element, tokens, options);
  return element;
}

/** The text each token span shows, by token index, in document order. */
function spanTexts(root) {
  return [...root.querySelectorAll(".specdec-draft, .specdec-main")].map((span) => [Number(span.dataset.index), span.textContent]);
}

describe("character to token mapping", () => {
  it("finds the token of an offset, skipping tokens with no text", () => {
    const starts = tokenStarts([tok("ab"), tok(""), tok("c"), tok("de")]);
    expect(starts).toEqual([0, 2, 2, 3]);
    expect([0, 1, 2, 3, 4].map((pos) => tokenAt(starts, pos))).toEqual([0, 0, 2, 3, 3]);
  });

  it("aligns rendered text to the source past markup, and leaves a character it cannot find alone", () => {
    const source = "**bold** &lt;x";
    const { offsets, cursor } = alignText(source, 0, "bold <x");
    expect(offsets).toEqual([2, 3, 4, 5, 8, -1, 13]);
    expect(cursor).toBe(14);
  });

  it("does not jump further than MAX_SKIP for one character", () => {
    const source = `a${" ".repeat(MAX_SKIP + 5)}b`;
    expect(alignText(source, 1, "b").offsets).toEqual([-1]);
  });

  it("gives an unfound character to its neighbour's run", () => {
    const runs = tokenRuns("ab<c", [0, 1, -1, 5], [0, 1, 4]);
    expect(runs).toEqual([
      { text: "a", token: 0 },
      { text: "b<", token: 1 },
      { text: "c", token: 2 },
    ]);
  });
});

describe("rendered replies keep every token's span", () => {
  it("keeps a single newline as a line break, as chat UIs do (a haiku keeps its lines)", () => {
    const reply = rendered(["An old silent pond\n", "A frog jumps into", " the pond\nSplash"]);
    expect(reply.querySelectorAll("p br").length).toBe(2);
    expect(reply.querySelector("p").innerText ?? reply.querySelector("p").textContent).toContain("pond");
    expect(spanTexts(reply).map(([, text]) => text).join("")).toBe("An old silent pond\nA frog jumps into the pond\nSplash");
  });

  it("shows markup-looking text as text (`<file_sep>` is a token, not a tag)", () => {
    const reply = rendered(["token 5: '<file_", "sep>' vs '&'"]);
    expect(reply.textContent).toContain("token 5: '<file_sep>' vs '&'");
  });

  it("marks the text a token contributed on both sides of markup it straddles", () => {
    const reply = rendered(["A **bo", "ld** word", ".\n\nNext"]);
    expect(reply.querySelector("strong").textContent).toBe("bold");
    expect(spanTexts(reply)).toEqual([
      [0, "A "],
      [0, "bo"],
      [1, "ld"],
      [1, " word"],
      [2, "."],
      [2, "Next"],
    ]);
  });

  it("shades tokens inside a highlighted code block and never takes the fence's language for code", () => {
    const reply = rendered(["```py", "thon\n", "print", "(1)\n", "```\n"]);
    const code = reply.querySelector("pre code");
    expect(code.querySelector(".hljs-built_in")).not.toBeNull();
    expect(spanTexts(code)).toEqual([
      [2, "print"],
      [3, "("],
      [3, "1"],
      [3, ")\n"],
    ]);
    expect(code.querySelector(".specdec-draft").textContent).toBe("print");
    expect(reply.querySelector(".specdec-code-bar").textContent).toBe("pythonCopy");
  });

  it("renders an unfinished fence as code while the reply streams", () => {
    const reply = rendered(["Code:\n\n```js\n", "let x", " = 1;\n"], { streaming: true });
    expect(reply.querySelector("pre code").textContent).toBe("let x = 1;\n");
    expect(spanTexts(reply.querySelector("pre"))).toEqual([
      [1, "let"],
      [1, " x"],
      [2, " = "],
      [2, "1"],
      [2, ";\n"],
    ]);
  });

  it("typesets all four math delimiters with a strip of the tokens that wrote each formula", () => {
    const reply = rendered(["Let $x", "^2$ and \\(", "y\\) then\n\n$$a", "+b$$\n\n\\[ c \\]"]);
    const formulas = [...reply.querySelectorAll(".specdec-math")];
    expect(formulas.map((f) => f.dataset.tex)).toEqual(["x^2", "y", "a+b", " c "]);
    expect(formulas.map((f) => f.classList.contains("specdec-math-display"))).toEqual([false, false, true, true]);
    for (const formula of formulas) expect(formula.querySelector(".katex")).not.toBeNull();
    const strip = formulas[0].querySelectorAll(".specdec-math-strip > span");
    expect([...strip].map((s) => [s.dataset.index, s.style.flexGrow])).toEqual([
      ["0", "1"],
      ["1", "2"],
    ]);
    expect(formulas[2].querySelectorAll(".specdec-math-strip > span")).toHaveLength(2);
  });

  it("leaves prices as text", () => {
    const reply = rendered(["It costs $5 and $10."]);
    expect(reply.querySelector(".specdec-math")).toBeNull();
    expect(reply.textContent.trim()).toBe("It costs $5 and $10.");
  });

  it("shows a formula still streaming as its TeX, and as text once the reply has ended without a closer", () => {
    const streaming = rendered(["So \\[ x = ", "\\frac{1"], { streaming: true });
    const pending = streaming.querySelector(".specdec-math-pending");
    expect(pending.dataset.tex).toBe(" x = \\frac{1");
    expect(pending.querySelector(".katex")).toBeNull();
    const ended = rendered(["So \\[ x = ", "\\frac{1"]);
    expect(ended.querySelector(".specdec-math")).toBeNull();
  });

  it("keeps CJK and emoji whole: a surrogate pair is one token's, an empty token owns nothing", () => {
    const reply = rendered(["你好", "", "😀", "世界 🎉!"]);
    expect(spanTexts(reply)).toEqual([
      [0, "你好"],
      [2, "😀"],
      [3, "世界 🎉!"],
    ]);
  });

  it("puts a correction's rejected draft before it, struck, out of the copied code", () => {
    const element = document.createElement("div");
    const tokens = [tok("```\nx = "), tok("2", "main", { kind: "correction", rejected: ["3", " +"] }), tok("\n```")];
    renderReply(element, tokens);
    const struck = element.querySelector("s.specdec-rejected");
    expect(struck.textContent).toBe("3 +");
    expect(struck.nextSibling.classList.contains("specdec-kind-correction")).toBe(true);
    expect(element.querySelectorAll("s.specdec-rejected")).toHaveLength(1);
  });

  it("renders raw HTML in a reply as text", () => {
    const reply = rendered(["<b>x</b>"]);
    expect(reply.querySelector("b")).toBeNull();
    expect(reply.textContent.trim()).toBe("<b>x</b>");
  });
});

describe("streaming", () => {
  const pieces = [
    "# Title\n\n",
    "Some **bold** text with `code` and $e^{i",
    "\\pi}$.\n\n",
    "- item one\n- item two\n\n",
    "```python\ndef f(x):\n",
    "    return x * 2\n```\n\n",
    "| a | b |\n|---|---|\n| 1 | 2 |\n\n",
  ];
  const texts = Array.from({ length: 2000 }, (_, i) => {
    const piece = pieces[Math.floor(i / 20) % pieces.length];
    const step = Math.ceil(piece.length / 20);
    return piece.slice((i % 20) * step, (i % 20 + 1) * step);
  });
  const tokens = texts.map((text, i) => tok(text, i % 3 ? "draft" : "main"));

  // Rendering is CPU work that a busy CI machine may slow down a lot: no tight time limit.
  it("ends, batch by batch, with the same page as rendering the whole reply at once", { timeout: 300_000 }, () => {
    const some = tokens.slice(0, 700);
    const growing = document.createElement("div");
    for (let end = 25; end < some.length; end += 25) renderReply(growing, some.slice(0, end), { streaming: true });
    renderReply(growing, some);
    const whole = document.createElement("div");
    renderReply(whole, some);
    expect(growing.innerHTML).toBe(whole.innerHTML);
    expect(whole.querySelectorAll("pre .specdec-draft").length).toBeGreaterThan(0);
  });

  it("renders again only the blocks whose source changed", { timeout: 300_000 }, () => {
    const element = document.createElement("div");
    renderReply(element, tokens.slice(0, 600), { streaming: true });
    const before = [...element.children];
    renderReply(element, tokens.slice(0, 630), { streaming: true });
    const after = [...element.children];
    const kept = after.filter((node) => before.includes(node)).length;
    expect(kept).toBeGreaterThanOrEqual(before.length - 2);
    expect(after.length - kept).toBeLessThanOrEqual(3);
  });
});
