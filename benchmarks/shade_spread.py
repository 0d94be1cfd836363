"""Which number should shade an accepted draft token? The spread of each candidate over real
replies of the real pair, at T = 0 and T = 0.8 (k = 4): a shade that is the same for nearly every
token tells the reader nothing.

Candidates, per accepted draft token: min(1, p/q) (the acceptance probability), p (the main
model's probability of the token) and the round's share accepted (accepted / drafted in its
round). For each: the standard deviation, the interquartile range, how many distinct values
(two decimals) and the share of tokens at the top (>= 0.99).

    python benchmarks/shade_spread.py qwen2.5-coder-1.5b qwen2.5-coder-0.5b
"""

from __future__ import annotations

import json
import sys
from collections import defaultdict
from pathlib import Path

import numpy as np

from specdec_jupyter import load
from specdec_jupyter.decoding.events import TokenEvent

PROMPTS = [
    "Write a quicksort algorithm in Python. Write code only.",
    "Explain the Pythagorean theorem, with the formula in LaTeX.",
    "Plan a 1 day trip to DC",
    "Write a Markdown table of three sorting algorithms and their complexities.",
]
TEMPERATURES = (0.0, 0.8)
RESULTS = Path(__file__).parent / "results" / "shade_spread.json"


def round_shares(events: list[TokenEvent]) -> dict[int, float]:
    """Accepted over drafted for each round that drafted (a correction's rejected tokens count
    as drafted; a bonus round drafted exactly what it accepted)."""
    accepted: dict[int, int] = defaultdict(int)
    rejected: dict[int, int] = defaultdict(int)
    for event in events:
        accepted[event.round] += event.source == "draft"
        rejected[event.round] += len(event.rejected)
    return {r: accepted[r] / (accepted[r] + rejected[r]) for r in accepted if accepted[r]}


def candidates(events: list[TokenEvent]) -> dict[str, list[float]]:
    shares = round_shares(events)
    drafts = [e for e in events if e.source == "draft"]
    return {
        "min(1, p/q)": [1.0 if e.acceptance is None else e.acceptance for e in drafts],
        "p (main)": [e.p_main for e in drafts if e.p_main is not None],
        "round share accepted": [shares[e.round] for e in drafts],
    }


def spread(values: list[float]) -> dict[str, float]:
    a = np.asarray(values)
    q1, q3 = np.percentile(a, [25, 75])
    return {
        "tokens": len(a),
        "std": float(a.std()),
        "iqr": float(q3 - q1),
        "distinct": len({round(v, 2) for v in values}),
        "at_top": float((a >= 0.99).mean()),
    }


def main(main_model: str, draft_model: str) -> None:
    session = load(main_model, draft_model, n_ctx=2048, progress=False)
    report = {}
    print("| T | candidate | tokens | std | IQR | distinct | share at top |")
    print("|---|---|---|---|---|---|---|")
    for temperature in TEMPERATURES:
        pooled: dict[str, list[float]] = defaultdict(list)
        for prompt in PROMPTS:
            result = session.generate(
                prompt, temperature=temperature, draft_tokens=4, max_tokens=160
            )
            for name, values in candidates(result.events).items():
                pooled[name] += values
        for name, values in pooled.items():
            row = spread(values)
            report[f"T={temperature}/{name}"] = row
            print(
                f"| {temperature} | {name} | {row['tokens']} | {row['std']:.3f} | {row['iqr']:.3f}"
                f" | {row['distinct']} | {row['at_top']:.0%} |"
            )
    RESULTS.parent.mkdir(exist_ok=True)
    RESULTS.write_text(json.dumps(report, indent=2))
    session.close()


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
