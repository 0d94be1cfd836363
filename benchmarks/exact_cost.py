"""What exact mode costs: the same prompts and modes on the pair loaded fast and loaded exact,
side by side in one run.

    .venv/bin/python benchmarks/exact_cost.py               # 12 prompts, 96 tokens: ~25 min
    .venv/bin/python benchmarks/exact_cost.py --quick       # 3 prompts, 48 tokens

For each prompt, in whole passes (`--repeat`, median run kept): plain decoding, prompt lookup,
hybrid and the draft model, all under `auto`, once on each loading. Per prompt the table gives
plain decoding's tokens/s both ways and their ratio (exact's price on plain decoding), the best
mode's speedup over its own plain decoding both ways, and exact's best over fast plain (what a
user who wants exactness gets against the fastest plain decoding). "agree" counts the modes
whose tokens equal their plain decoding's in full: exact must agree on every one.

Writes JSON, a Markdown table and a chart (default benchmarks/results/exact-cost-<time>.*).
"""

from __future__ import annotations

import statistics
import sys
import tempfile
from functools import partial
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

from common import Report, figure, parse_prompts, prompts_parser
from prompts import PROMPTS
from speculative import DRAFT, MAIN, N_CTX, Mode, median_run, run_ours

import specdec_jupyter as sd
from specdec_jupyter.decoding.cost_memory import CostMemory, CostStore

MODES = [
    Mode("plain"),
    Mode("lookup auto", "lookup"),
    Mode("hybrid auto", "hybrid"),
    Mode("model auto", "model"),
]
LOADINGS = ("fast", "exact")


def prompt_row(name: str, runs: dict[tuple[str, str], list[dict]]) -> dict:
    """One prompt's figures from its runs, keyed by (loading, mode)."""
    median = {key: median_run(found) for key, found in runs.items()}
    row: dict = {"prompt": name}
    for loading in LOADINGS:
        plain = median[(loading, "plain")]
        speeds = {m.name: median[(loading, m.name)]["tokens_per_second"] for m in MODES}
        best = max(speeds, key=speeds.__getitem__)
        row[loading] = {
            "tokens_per_second": speeds,
            "time_to_first_token": median[(loading, "plain")]["time_to_first_token"],
            "best_mode": best,
            "best_speedup": speeds[best] / speeds["plain"],
            "agree": sum(
                median[(loading, m.name)]["token_ids"] == plain["token_ids"] for m in MODES
            ),
        }
    fast, exact = row["fast"]["tokens_per_second"], row["exact"]["tokens_per_second"]
    row["plain_exact_over_fast"] = exact["plain"] / fast["plain"]
    row["best_exact_over_fast_plain"] = max(exact.values()) / fast["plain"]
    row["best_exact_over_best_fast"] = max(exact.values()) / max(fast.values())
    return row


def markdown_table(rows: list[dict]) -> str:
    lines = [
        "| prompt | plain fast tok/s | plain exact tok/s | exact / fast (plain) "
        "| best fast x plain | best exact x plain | best exact / best fast | agree fast | "
        "agree exact |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        fast, exact = r["fast"], r["exact"]
        lines.append(
            f"| {r['prompt']} | {fast['tokens_per_second']['plain']:.1f} "
            f"| {exact['tokens_per_second']['plain']:.1f} | {r['plain_exact_over_fast']:.2f} "
            f"| {fast['best_speedup']:.2f} ({fast['best_mode']}) "
            f"| {exact['best_speedup']:.2f} ({exact['best_mode']}) "
            f"| {r['best_exact_over_best_fast']:.2f} "
            f"| {fast['agree']}/{len(MODES)} | {exact['agree']}/{len(MODES)} |"
        )
    lines.append(
        f"| **median** | | | {statistics.median(r['plain_exact_over_fast'] for r in rows):.2f} "
        f"| {statistics.median(r['fast']['best_speedup'] for r in rows):.2f} "
        f"| {statistics.median(r['exact']['best_speedup'] for r in rows):.2f} "
        f"| {statistics.median(r['best_exact_over_best_fast'] for r in rows):.2f} | | |"
    )
    return "\n".join(lines)


def chart(rows: list[dict], path: Path, title: str) -> None:
    """Per prompt: exact's plain and best, as ratios to fast's plain and best."""
    import numpy as np

    names = [r["prompt"] for r in rows]
    x = np.arange(len(names))
    with figure(path, title, (max(8, 1.1 * len(names)), 4.5)) as ax:
        plain = [r["plain_exact_over_fast"] for r in rows]
        ax.bar(x - 0.2, plain, 0.4, label="plain: exact / fast")
        best = [r["best_exact_over_best_fast"] for r in rows]
        ax.bar(x + 0.2, best, 0.4, label="best mode: exact / fast")
        ax.axhline(1.0, color="black", linewidth=0.8)
        ax.set_xticks(x, names, rotation=30, ha="right", fontsize=8)
        ax.set_ylabel("tokens/s, exact over fast (same run)")
        ax.legend(fontsize=8)


def main() -> None:
    parser = prompts_parser(__doc__, quick="3 prompts, 48 tokens", repeat=3)
    args = parse_prompts(parser, "exact-cost")
    report = Report(args.json, args.threads, max_tokens=args.max_tokens, repeat=args.repeat)
    sessions = {
        loading: sd.load(
            MAIN, draft=DRAFT, n_ctx=N_CTX, n_threads=args.threads, exact=loading == "exact"
        )
        for loading in LOADINGS
    }
    report.info["backends"] = {loading: s.backend for loading, s in sessions.items()}
    title = f"exact vs fast, {MAIN} (draft {DRAFT}), greedy, {args.max_tokens} tokens, "
    title += report.setting()
    # Call costs remembered by this run only, apart for each loading (their backends differ).
    store = CostStore(Path(tempfile.mkdtemp(prefix="specdec-exact-")) / "call-costs.json")
    rows = []
    for name in args.prompts:
        runs: dict[tuple[str, str], list[dict]] = {}
        for _ in range(args.repeat):  # whole passes: a slow spell hits every mode alike
            for loading, session in sessions.items():
                for mode in MODES:
                    session.memory = CostMemory(session.main, session.draft, store)
                    run = run_ours(session, PROMPTS[name], args.max_tokens, mode)
                    runs.setdefault((loading, mode.name), []).append(run)
        rows.append(prompt_row(name, runs))
        print(markdown_table(rows).splitlines()[-2], flush=True)
        report.write(markdown_table(rows), partial(chart, rows, title=title), rows=rows)
    print("\n" + markdown_table(rows))
    report.done()


if __name__ == "__main__":
    main()
