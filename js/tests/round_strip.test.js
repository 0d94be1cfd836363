import { describe, expect, it } from "vitest";
import { roundStrip, stripSegments, stripSummary } from "../src/round_strip.js";

const round = (number, drafted, accepted, emitted, source = drafted ? "model" : null) => ({ round: number, drafted, accepted, emitted, source });

describe("the rounds strip", () => {
  it("keeps drafting rounds apart and merges a paused stretch into one gap", () => {
    const rounds = [round(1, 4, 4, 5), round(2, 0, 0, 1), round(3, 0, 0, 1), round(4, 0, 0, 1), round(5, 2, 0, 1, "lookup"), round(6, 0, 0, 1)];
    expect(stripSegments(rounds).map((s) => [s.kind, s.round ?? s.first, s.rounds ?? s.drafted, s.tokens ?? s.accepted])).toEqual([
      ["round", 1, 4, 4],
      ["paused", 2, 3, 3],
      ["round", 5, 2, 0],
      ["paused", 6, 1, 1],
    ]);
  });

  it("sums up rounds, acceptance and the time paused", () => {
    const rounds = [round(1, 4, 3, 4), round(2, 0, 0, 1), round(3, 2, 2, 3, "lookup")];
    expect(stripSummary(rounds)).toBe("3 rounds · 5/6 drafted tokens accepted · drafting paused for 1 token");
    expect(stripSummary([round(1, 2, 1, 2)])).toBe("1 round · 1/2 drafted tokens accepted");
  });

  it("shows a reply that never drafted although a draft was at hand as paused throughout", () => {
    const strip = roundStrip(document, [round(1, 0, 0, 1), round(2, 0, 0, 1)], true);
    expect(strip.querySelectorAll(".specdec-strip-paused")).toHaveLength(1);
    expect(strip.querySelectorAll(".specdec-strip-round")).toHaveLength(0);
  });

  it("draws nothing for plain decoding", () => {
    expect(roundStrip(document, [round(1, 0, 0, 1)], false)).toBeNull();
    expect(roundStrip(document, [], true)).toBeNull();
    expect(roundStrip(document, undefined, true)).toBeNull();
  });
});
