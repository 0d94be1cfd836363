import { describe, expect, it } from "vitest";
import { readSettings } from "../src/form.js";
import teach, { buildView, countsText, firstTokenNote, fmt, renderRound, shownParts, stageCaption } from "../src/teach.js";
import { FakeModel } from "./fake_model.js";
import fromPython from "./fixtures/from_python.json";

const candidate = (token_id, text, p, q) => ({ token_id, text, p, q });

// A sampled round of k = 3: token 1 accepted, token 2 rejected, token 3 never judged.
const rejected = {
  number: 2,
  greedy: false,
  proposals: [
    { token_id: 10, text: " the", q: 0.5, p: 0.6, candidates: [candidate(10, " the", 0.6, 0.5), candidate(11, " a", 0.2, 0.3)] },
    { token_id: 20, text: " cat", q: 0.8, p: 0.2, candidates: [candidate(20, " cat", 0.2, 0.8), candidate(21, " dog", 0.7, 0.1)] },
    { token_id: 30, text: " sat", q: 0.9, p: 0.9, candidates: [candidate(30, " sat", 0.9, 0.9)] },
  ],
  after_draft: [candidate(40, ".", 0.7, null)],
  checks: [
    { position: 0, acceptance: 1, u: 0.42, accepted: true },
    { position: 1, acceptance: 0.25, u: 0.61, accepted: false },
  ],
  residual: [{ token_id: 21, text: " dog", prob: 0.86, excess: 0.6 }, { token_id: 22, text: " fox", prob: 0.14, excess: 0.1 }],
  next_token: candidate(21, " dog", 0.7, 0.1),
  drawn_with: 0.86,
  n_accepted: 1,
  rejected: true,
  stages: ["draft", "score", "check", "check", "residual", "correction"],
};

const accepted = {
  ...rejected,
  number: 3,
  checks: [0, 1, 2].map((position) => ({ position, acceptance: 1, u: 0.1, accepted: true })),
  residual: null,
  next_token: candidate(40, ".", 0.7, null),
  drawn_with: 0.7,
  n_accepted: 3,
  rejected: false,
  stages: ["draft", "score", "check", "check", "check", "bonus"],
};

const render = (trace, stage) => renderRound(document, trace, stage);

describe("a round, stage by stage", () => {
  it("shows only q bars while the draft proposes", () => {
    const round = render(rejected, 0);
    expect(round.querySelectorAll(".specdec-q-bar")).toHaveLength(5);
    expect(round.querySelectorAll(".specdec-p-bar")).toHaveLength(0);
    expect(round.querySelector(".specdec-after-draft")).toBeNull();
    expect(round.querySelectorAll(".specdec-position")).toHaveLength(3);
    expect(round.querySelector(".specdec-caption").textContent).toContain("proposes 3 tokens");
  });

  it("puts p bars beside q once the main model has scored, and the position after the draft", () => {
    const round = render(rejected, 1);
    expect(round.querySelectorAll(".specdec-p-bar")).toHaveLength(6);
    expect(round.querySelector(".specdec-after-draft .specdec-p-bar")).not.toBeNull();
    expect(round.querySelector(".specdec-after-draft .specdec-q-bar")).toBeNull();
    const width = round.querySelector(".specdec-position .specdec-p-bar").style.width;
    expect(width).toBe("60.0%");
  });

  it("marks each judged token, with u against min(1, p/q)", () => {
    let round = render(rejected, 2);
    expect(round.querySelectorAll(".specdec-mark-accepted")).toHaveLength(1);
    expect(round.querySelectorAll(".specdec-mark-rejected")).toHaveLength(0);
    round = render(rejected, 3);
    const mark = round.querySelector(".specdec-mark-rejected");
    expect(mark.textContent).toContain("u 0.610 ≥ min(1, p/q) 0.250");
    expect(stageCaption(rejected, 3)).toContain('Draft token 2, " cat": u = 0.610 ≥ min(1, p/q) = 0.250, so it is rejected.');
    expect(stageCaption(rejected, 3)).toContain("u is a random number drawn evenly between 0 and 1");
    expect(round.querySelector(".specdec-residual")).toBeNull();
  });

  it("draws the residual after a rejection, then the correction; the rest is not judged", () => {
    let round = render(rejected, 4);
    const residual = round.querySelector(".specdec-residual");
    expect(residual.querySelectorAll(".specdec-r-bar")).toHaveLength(2);
    const excess = [...residual.querySelectorAll(".specdec-excess-bar")].map((b) => b.style.width);
    expect(excess).toEqual(["60.0%", "10.0%"]); // p − q before normalising, beside the residual
    expect(residual.textContent).toContain("max(0, p − q), then normalised to sum to 1");
    expect(residual.querySelector(".specdec-chosen").textContent).toContain('" dog"');
    expect(round.querySelector(".specdec-result")).toBeNull();
    round = render(rejected, 5);
    expect(round.querySelector(".specdec-correction").textContent).toContain('correction: " dog"');
    const verdicts = [...round.querySelectorAll(".specdec-position[data-verdict]")].map((c) => c.dataset.verdict);
    expect(verdicts).toEqual(["accepted", "rejected", "unjudged", "unjudged"]); // the last: after the draft
  });

  it("ends a fully accepted round with the bonus token from the position after the draft", () => {
    const round = render(accepted, 5);
    expect(round.querySelector(".specdec-residual")).toBeNull();
    expect(round.querySelector(".specdec-bonus").textContent).toContain('bonus: "."');
    expect(round.querySelector(".specdec-after-draft .specdec-chosen")).not.toBeNull();
    expect(stageCaption(accepted, 5)).toContain("Every draft token was accepted");
  });

  it("says greedy checks are about the top choice", () => {
    const greedy = { ...rejected, greedy: true, checks: rejected.checks.map((c) => ({ ...c, u: null })), residual: null };
    greedy.stages = ["draft", "score", "check", "check", "correction"];
    expect(stageCaption(greedy, 3)).toContain("is not the main model's top choice");
    expect(shownParts(greedy, 4)).toEqual({ tokenized: true, scored: true, checks: 2, rejection: true, residual: false, result: true });
    const marks = [...render(greedy, 3).querySelectorAll(".specdec-check-test")].map((m) => m.textContent);
    expect(marks).toEqual(["greedy: the main model's top choice", "greedy: not the main model's top choice"]);
  });

  it("puts u on a number line against the acceptance zone", () => {
    const line = render(rejected, 3).querySelectorAll(".specdec-number-line")[1];
    expect(line.querySelector(".specdec-accept-zone").style.width).toBe("25.0%");
    expect(line.querySelector(".specdec-u-tick").style.left).toBe("61.0%");
    expect(line.title).toContain("[0, 0.250)");
  });

  it("shows the correction with the residual probability it was drawn with", () => {
    const line = render(rejected, 5).querySelector(".specdec-correction").textContent;
    expect(line).toContain("drawn with residual probability 0.860 (p 0.700)");
    expect(stageCaption(rejected, 5)).toContain("with probability 0.860");
  });

  it("dims the position after the draft once a rejection is shown", () => {
    const after = (stage) => render(rejected, stage).querySelector(".specdec-after-draft").dataset.verdict;
    expect([after(2), after(3), after(5)]).toEqual(["pending", "unjudged", "unjudged"]);
    const third = (stage) => render(rejected, stage).querySelectorAll(".specdec-position")[2].dataset.verdict;
    expect([third(2), third(3)]).toEqual(["pending", "unjudged"]); // past the rejection: never judged
    expect(render(accepted, 5).querySelector(".specdec-after-draft").dataset.verdict).toBe("pending");
  });

  it("draws nothing after an accepted end of generation", () => {
    const ended = {
      ...accepted,
      checks: [{ position: 0, acceptance: 1, u: 0.3, accepted: true }],
      proposals: [{ ...accepted.proposals[0], text: "⟨end⟩" }, accepted.proposals[1]],
      next_token: null,
      drawn_with: null,
      n_accepted: 1,
      stages: ["draft", "score", "check", "end"],
    };
    const round = render(ended, 3);
    expect(round.querySelector(".specdec-bonus")).toBeNull();
    expect(round.querySelector(".specdec-end").textContent).toContain("nothing is drawn");
    expect(round.querySelector(".specdec-after-draft .specdec-chosen")).toBeNull();
    expect(round.querySelector(".specdec-after-draft").dataset.verdict).toBe("unjudged");
    expect(round.querySelectorAll(".specdec-position")[1].textContent).toContain("not judged: the generation ended");
    expect(stageCaption(ended, 3)).toBe('The accepted draft token "⟨end⟩" ends the generation: nothing is drawn after it.');
  });

  it("gives small probabilities enough digits, and p/q beside them", () => {
    expect([fmt(0.2904), fmt(0.0012), fmt(0), fmt(null)]).toEqual(["0.290", "0.0012", "0.000", "–"]);
    const facts = render(rejected, 1).querySelectorAll(".specdec-position-facts")[1].textContent;
    expect(facts).toBe("q 0.800 · p 0.200 · p/q 0.250");
  });

  it("keeps whole labels: wrapped, and in a tooltip", () => {
    const long = { ...rejected, proposals: [{ ...rejected.proposals[0], candidates: [candidate(10, " quadratic", 0.6, 0.5)] }] };
    const label = render(long, 0).querySelector(".specdec-candidate-text");
    expect(label.textContent).toBe('" quadratic"');
    expect(label.title).toBe('" quadratic"');
  });

  it("says where the first token came from, in round 1 only", () => {
    expect(firstTokenNote({ number: 1 }, [{ text: " guesses" }])).toContain('The first token, " guesses", came from the main model reading the prompt');
    expect(firstTokenNote({ number: 2 }, [{ text: " guesses" }])).toBe("");
  });
});

describe("controls and counts", () => {
  it("reads the settings typed for Python", () => {
    const fields = fromPython.teach.setting_fields;
    const parts = buildView(document, fields);
    parts.settings.prompt.value = "the main model";
    parts.settings.k.value = "3";
    parts.settings.temperature.value = "0.7";
    parts.settings.seed.value = "11";
    expect(readSettings(fields, parts.settings)).toMatchObject({ prompt: "the main model", k: 3, temperature: 0.7, seed: 11 });
    expect(Object.keys(readSettings(fields, parts.settings))).toEqual(Object.keys(fromPython.teach.settings));
    const buttons = [...parts.root.querySelectorAll("button")].map((b) => b.textContent);
    expect(buttons).toEqual(["Back", "Step", "Finish round", "Play", "Reset"]);
    expect([...parts.speed.options].map((o) => o.value)).toContain("1");
  });

  it("sums up the rounds shown", () => {
    const counts = { rounds: 2, drafted: 8, accepted: 5, rejected: 2, acceptance_rate: 0.625 };
    expect(countsText(counts, "")).toBe("rounds 2 · drafted 8 · accepted 5 · rejected 2 · acceptance rate α 62.5%");
    expect(countsText({ ...counts, expected_per_round: 2.2857 }, "")).toContain("expected tokens per round (1 − α^(k+1)) / (1 − α) = 2.29");
    expect(countsText(counts, "eosFound")).toContain("finished: eosFound");
    expect(countsText({}, "")).toBe("");
  });

  it("says no draft token was judged yet instead of α 0.0%, and how it finished in words", () => {
    const none = { rounds: 1, drafted: 4, accepted: 0, rejected: 0 };
    expect(countsText(none, "")).toBe("rounds 1 · drafted 4 · accepted 0 · rejected 0 · acceptance rate α – (no draft token judged yet)");
    const done = { rounds: 3, drafted: 8, accepted: 5, rejected: 2, acceptance_rate: 0.71, finished: "max tokens reached" };
    expect(countsText(done, "maxPredictedTokensReached")).toContain("finished: max tokens reached");
    expect(countsText(done, "maxPredictedTokensReached")).not.toContain("maxPredicted");
  });

  it("calls the last step plain decoding when nothing was left to draft, not a bonus", () => {
    const plain = { ...accepted, proposals: [], checks: [], n_accepted: 0, stages: ["draft", "score", "bonus"] };
    const caption = stageCaption(plain, 2);
    expect(caption).toContain("nothing was drafted");
    expect(caption).not.toContain("bonus");
    expect(stageCaption(accepted, 5)).toContain("bonus token");
  });
});

describe("the prompt, as the user types it", () => {
  const mount = () => {
    const model = new FakeModel({
      setting_fields: fromPython.teach.setting_fields,
      settings: { ...fromPython.teach.settings, prompt: "the old prompt", k: 4 },
      trace: {}, stage: 0, tokens: [], counts: {}, stop_reason: "", playing: false,
      status: { state: "idle", message: "" }, can_go_back: false, interval: 1, main_model: "m", draft_model: "d",
    });
    const el = document.createElement("div");
    teach.render({ model, el });
    return { model, prompt: el.querySelector('[data-setting="prompt"]'), k: el.querySelector('[data-setting="k"]') };
  };
  const type = (control, text) => {
    control.value = text;
    control.dispatchEvent(new Event("input"));
  };
  const flush = () => new Promise((resolve) => queueMicrotask(resolve));

  it("applies on Enter (Shift+Enter adds a line), as the chat's input does", () => {
    const { model, prompt } = mount();
    type(prompt, "What is the quadratic formula?");
    prompt.dispatchEvent(new KeyboardEvent("keydown", { key: "Enter", shiftKey: true }));
    expect(model.sent).toEqual([]);
    prompt.dispatchEvent(new KeyboardEvent("keydown", { key: "Enter", cancelable: true }));
    expect(model.sent.at(-1)).toMatchObject({ type: "reset", settings: { prompt: "What is the quadratic formula?" } });
    prompt.dispatchEvent(new Event("change")); // the blur after Enter restarts nothing again
    expect(model.sent).toHaveLength(1);
  });

  it("keeps a typed prompt while steps redraw, so changing k restarts with it", async () => {
    const { model, prompt, k } = mount();
    type(prompt, "a prompt being typed");
    model.set("stage", 1); // Play steps on meanwhile: the widget redraws
    await flush();
    expect(prompt.value).toBe("a prompt being typed");
    type(k, "2");
    k.dispatchEvent(new Event("change"));
    expect(model.sent.at(-1).settings).toMatchObject({ prompt: "a prompt being typed", k: 2 });
    model.set("settings", { ...model.get("settings"), prompt: "a prompt being typed", k: 2 });
    await flush();
    expect(prompt.value).toBe("a prompt being typed");
  });
});

// A draft of another vocabulary: it wrote 3 tokens of its own, which spell "Hello, world" and
// then half a character; the main model's tokenizer reads the text, and 2 of its tokens are
// proposed (q = 1 each): the first accepted, the second rejected.
const textRound = {
  ...rejected,
  proposals: [
    { token_id: 9707, text: "Hello", q: 1, p: 0.6, candidates: [candidate(9707, "Hello", 0.6, 1), candidate(13048, "Hi", 0.3, 0)], drafted_as: ["Hel", "lo"] },
    { token_id: 11, text: ",", q: 1, p: 0.2, candidates: [candidate(11, ",", 0.2, 1), candidate(0, "!", 0.7, 0)], drafted_as: [", world"] },
  ],
  checks: [
    { position: 0, acceptance: 0.6, u: 0.3, accepted: true },
    { position: 1, acceptance: 0.2, u: 0.7, accepted: false },
  ],
  residual: [{ token_id: 0, text: "!", prob: 0.875, excess: 0.7 }],
  next_token: candidate(0, "!", 0.7, 0),
  drawn_with: 0.875,
  stages: ["draft", "retokenize", "score", "check", "check", "residual", "correction"],
  text_draft: {
    model: "SmolLM2-135M",
    own: [{ token_id: 19556, text: "Hel" }, { token_id: 28, text: "lo" }, { token_id: 30, text: ", world" }],
    text: "Hello, world",
    proposed: "Hello,",
    held_back: " world",
    waiting: "⟨f0 9f⟩",
    reply_waiting: "",
  },
};

describe("a round of a draft of another vocabulary", () => {
  const texts = (round, selector) => [...round.querySelectorAll(selector)].map((node) => node.textContent);

  it("shows the draft's own tokens and their text first, with what waits", () => {
    const round = render(textRound, 0);
    expect(texts(round, ".specdec-text-draft .specdec-token-chip")).toEqual(['"Hel"#19556', '"lo"#28', '", world"#30']);
    expect(round.querySelector(".specdec-text-whole").textContent).toBe("Hello, world");
    expect(round.querySelector(".specdec-text-waiting").textContent).toBe("⟨f0 9f⟩");
    expect(round.querySelectorAll(".specdec-position")).toHaveLength(0);
    expect(round.textContent).not.toContain("the main model's tokens");
    expect(stageCaption(textRound, 0)).toContain("SmolLM2-135M, has another vocabulary: it writes 3 tokens of its own");
    expect(stageCaption(textRound, 0)).toContain("⟨f0 9f⟩ waits for the token that completes it");
  });

  it("then the main model's tokens for the text, proposed with q = 1, and what is held back", () => {
    const round = render(textRound, 1);
    const rows = [...round.querySelectorAll(".specdec-text-row")];
    expect(rows[2].textContent).toBe('the main model\'s tokens"Hello"#9707","#11');
    expect(round.querySelector(".specdec-text-proposed").textContent).toBe("Hello,");
    expect(round.querySelector(".specdec-text-held").textContent).toBe(" world");
    expect(round.querySelectorAll(".specdec-position")).toHaveLength(2);
    expect(round.querySelectorAll(".specdec-p-bar")).toHaveLength(0);
    expect(texts(round, ".specdec-drafted-as")).toEqual(['drafted as "Hel" "lo"', 'drafted as ", world"']);
    expect(stageCaption(textRound, 1)).toContain("2 tokens are proposed, each with q = 1");
    expect(stageCaption(textRound, 1)).toContain('Held back: " world"');
    const sampled = { ...textRound, proposals: textRound.proposals.map((proposal) => ({ ...proposal, q: 0.5 })) };
    expect(stageCaption(sampled, 1)).toContain("2 tokens are proposed, each with the draft's probability q of it.");
    expect(stageCaption(sampled, 5)).not.toContain("p without it");
  });

  it("marks the main model's tokens with their verdicts as they are judged", () => {
    const verdicts = (stage) => [...render(textRound, stage).querySelectorAll(".specdec-text-draft [data-verdict]")].map((chip) => chip.dataset.verdict);
    expect(verdicts(2)).toEqual(["pending", "pending"]);
    expect(verdicts(3)).toEqual(["accepted", "pending"]);
    expect(verdicts(4)).toEqual(["accepted", "rejected"]);
    expect(texts(render(textRound, 4), ".specdec-text-draft .specdec-token-id").slice(3)).toEqual(["#9707 ✓", "#11 ✗"]);
    expect(stageCaption(textRound, 5)).toContain("the residual is p without it");
    expect(render(textRound, 6).querySelector(".specdec-correction").textContent).toContain('correction: "!"');
  });

  it("says why there is no draft when the text so far ends inside a character", () => {
    const plain = {
      ...accepted,
      proposals: [],
      checks: [],
      n_accepted: 0,
      stages: ["draft", "score", "bonus"],
      text_draft: { ...textRound.text_draft, own: [], text: "", proposed: "", held_back: "", waiting: "", reply_waiting: "⟨e4 b8⟩" },
    };
    const round = render(plain, 0);
    expect(round.querySelector(".specdec-text-waiting").textContent).toBe("⟨e4 b8⟩");
    expect(stageCaption(plain, 0)).toContain("ends inside a character (⟨e4 b8⟩ waits");
    expect(stageCaption(plain, 1)).toBe("The main model scores the position after the text so far in one pass.");
    expect(stageCaption(plain, 2)).toContain('Nothing was proposed: the main model\'s own token "."');
  });
});
