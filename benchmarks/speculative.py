"""Plain vs speculative decoding on the real Qwen2.5-Coder pair and against llama-cpp-python's own.

    .venv/bin/python benchmarks/speculative.py          # 5 prompts, 128 tokens, every mode
    .venv/bin/python benchmarks/speculative.py --ci     # CI-sized: 3 prompts, 64 tokens, k = 2

One command, one run, side by side, greedy. For each prompt (the seed's three and two code
edits that repeat their input): plain decoding through our loop; our loop with the draft
model attached but k = 0 every round (its own overhead); the draft model with k fixed at
1..5 and with k = "auto"; prompt lookup and hybrid (auto); and llama-cpp-python's
high-level `Llama`, plain and with `LlamaPromptLookupDecoding(num_pred_tokens=2)` (its
setting for CPUs), fed the same prompt tokens. Caches are emptied before every run, so
each prefills from scratch. On a shared machine, `--repeat N` runs every mode N times in
whole passes and keeps each mode's median run.

Prints a table and writes JSON and a bar chart (default benchmarks/results/speculative-
<time>.json and .png): tokens/s, speedup over our plain decoding of the same prompt in the
same run, draft acceptance, mean draft length, how many tokens agree with plain decoding,
the machine and its load average, and the targets of issue 7 with their margins.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from time import perf_counter

import llama_cpp
import numpy as np
from llama_cpp.llama_speculative import LlamaPromptLookupDecoding

sys.path.insert(0, str(Path(__file__).parent))

from prompts import CODE_PROMPTS, PROMPTS

import specdec_jupyter as sd

MAIN, DRAFT = "qwen2.5-coder-1.5b", "qwen2.5-coder-0.5b"
N_CTX = 2048
PEER_PREFIX = "llama-cpp-python"


@dataclass(frozen=True)
class Mode:
    """One way to generate. `draft_mode` None is plain decoding; `peer` runs
    llama-cpp-python's high-level Llama instead ("plain" or "lookup")."""

    name: str
    draft_mode: str | None = None
    draft_tokens: int | str = "auto"
    peer: str | None = None


def modes(ks: list[int]) -> list[Mode]:
    return [
        Mode("plain"),
        Mode("k=0", "model", 0),
        *[Mode(f"model k={k}", "model", k) for k in ks],
        Mode("model auto", "model"),
        Mode("lookup auto", "lookup"),
        Mode("hybrid auto", "hybrid"),
        Mode(f"{PEER_PREFIX} plain", peer="plain"),
        Mode(f"{PEER_PREFIX} lookup", peer="lookup"),
    ]


class CountingLookup(LlamaPromptLookupDecoding):
    """llama-cpp-python's prompt-lookup draft, counting its rounds and drafted tokens."""

    def __init__(self, num_pred_tokens: int):
        super().__init__(num_pred_tokens=num_pred_tokens)
        self.rounds = self.drafted = 0

    def __call__(self, input_ids, /, **kwargs):
        draft = super().__call__(input_ids, **kwargs)
        self.rounds += 1
        self.drafted += len(draft)
        return draft


class Peers:
    """llama-cpp-python's high-level API on the same main model file: plain, and with its
    prompt-lookup draft (which makes it keep logits for every position)."""

    def __init__(self, path: Path, threads: int):
        options = {"n_ctx": N_CTX, "n_threads": threads, "n_threads_batch": threads}
        self.lookup_draft = CountingLookup(num_pred_tokens=2)
        self.llms = {
            "plain": llama_cpp.Llama(str(path), verbose=False, **options),
            "lookup": llama_cpp.Llama(
                str(path), draft_model=self.lookup_draft, verbose=False, **options
            ),
        }

    def run(self, peer: str, prompt_tokens: list[int], max_tokens: int, is_end) -> dict:
        llm = self.llms[peer]
        llm.reset()
        self.lookup_draft.rounds = self.lookup_draft.drafted = 0
        started = perf_counter()
        first_at = None
        tokens: list[int] = []
        for token in llm.generate(prompt_tokens, temp=0.0, repeat_penalty=1.0):
            first_at = first_at or perf_counter()
            tokens.append(token)
            if is_end(token) or len(tokens) >= max_tokens:
                break
        seconds = perf_counter() - (first_at or started)
        result = {
            "token_ids": tokens,
            "tokens_per_second": (len(tokens) - 1) / seconds if len(tokens) > 1 else 0.0,
            "time_to_first_token": (first_at or started) - started,
            "acceptance_rate": None,
            "mean_draft_length": 0.0,
        }
        if peer == "lookup":
            # Each round after the first is one draft call; it yields its accepted tokens
            # plus one, so accepted = tokens after the first - rounds (the last round may be
            # cut short by max_tokens: approximate by one token).
            accepted = max(len(tokens) - 1 - self.lookup_draft.rounds, 0)
            drafted = self.lookup_draft.drafted
            result["acceptance_rate"] = accepted / drafted if drafted else None
            result["mean_draft_length"] = drafted / max(self.lookup_draft.rounds, 1)
        return result


def run_ours(session: sd.Session, prompt: str, max_tokens: int, mode: Mode) -> dict:
    session.reset()
    result = session.generate(
        prompt,
        max_tokens=max_tokens,
        use_draft=mode.draft_mode is not None,
        draft_mode=mode.draft_mode,
        draft_tokens=mode.draft_tokens,
    )
    stats = result.stats
    drafted = stats.total_draft_tokens_count > 0
    return {
        "token_ids": result.token_ids,
        "tokens_per_second": stats.tokens_per_second,
        "time_to_first_token": stats.time_to_first_token,
        "acceptance_rate": stats.acceptance_rate if drafted else None,
        "mean_draft_length": float(np.mean(stats.draft_lengths)) if stats.draft_lengths else 0,
        "draft_lengths": stats.draft_lengths,
        "stats": stats.to_dict(),
    }


def median_run(runs: list[dict]) -> dict:
    return sorted(runs, key=lambda run: run["tokens_per_second"])[(len(runs) - 1) // 2]


def agreement(a: list[int], b: list[int]) -> int:
    n = 0
    while n < min(len(a), len(b)) and a[n] == b[n]:
        n += 1
    return n


def machine() -> dict:
    cpu = platform.processor()
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.exists():
        names = [line.split(":", 1)[1].strip() for line in cpuinfo.read_text().splitlines()
                 if line.startswith("model name")]  # fmt: skip
        cpu = names[0] if names else cpu
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "python": platform.python_version(),
        "llama_cpp_python": llama_cpp.__version__,
        "specdec_jupyter": sd.__version__,
    }


def targets(rows: list[dict]) -> list[dict]:
    """Issue 7's targets, each with the measured value and whether it holds."""
    by = {(r["prompt"], r["mode"]): r for r in rows}
    prompts = list(dict.fromkeys(r["prompt"] for r in rows))
    checks = []

    def check(name: str, value: float | None, goal: float, prompt: str) -> None:
        if value is not None:
            met = value >= goal
            checks.append(
                {"target": name, "prompt": prompt, "value": value, "goal": goal, "met": met}
            )

    def speedup(prompt: str, mode: str) -> float | None:
        row = by.get((prompt, mode))
        return row["speedup"] if row else None

    for prompt in prompts:
        check("model auto / plain", speedup(prompt, "model auto"), 0.97, prompt)
        check("k=0 / plain (loop overhead)", speedup(prompt, "k=0"), 0.98, prompt)
        peer_plain = by.get((prompt, f"{PEER_PREFIX} plain"))
        if peer_plain:
            ours = by[(prompt, "plain")]["tokens_per_second"]
            ratio = ours / peer_plain["tokens_per_second"]
            check(f"plain / {PEER_PREFIX} plain", ratio, 0.98, prompt)
        if prompt in CODE_PROMPTS:
            ours = ["lookup auto", "hybrid auto", "model auto"]
            best = max((speedup(prompt, m) or 0.0) for m in ours)
            check("best of lookup/hybrid/auto / plain", best, 1.5, prompt)
            peer = by.get((prompt, f"{PEER_PREFIX} lookup"))
            if peer:
                best_tps = max(by[(prompt, m)]["tokens_per_second"] for m in ours)
                ratio = best_tps / peer["tokens_per_second"]
                check(f"best ours / {PEER_PREFIX} lookup", ratio, 1.0, prompt)
    return checks


def print_row(row: dict, header: bool) -> None:
    if header:
        print(f"\n{row['prompt']}")
        print(f"  {'mode':26} {'tok/s':>6} {'speedup':>7} {'accept':>7} {'mean k':>6} {'agree':>6}")
    accept = "" if row["acceptance_rate"] is None else f"{row['acceptance_rate']:.0%}"
    print(
        f"  {row['mode']:26} {row['tokens_per_second']:6.1f} {row['speedup']:6.2f}x "
        f"{accept:>7} {row['mean_draft_length']:6.2f} {row['agree_with_plain']:>6}",
        flush=True,
    )


def markdown_table(rows: list[dict]) -> str:
    """Speedup over plain (and tok/s) per mode and prompt, for the README."""
    prompts = list(dict.fromkeys(r["prompt"] for r in rows))
    names = list(dict.fromkeys(r["mode"] for r in rows))
    by = {(r["prompt"], r["mode"]): r for r in rows}
    lines = ["| mode | " + " | ".join(prompts) + " |", "|---|" + "---|" * len(prompts)]
    for name in names:
        cells = []
        for prompt in prompts:
            row = by.get((prompt, name))
            cells.append(f"{row['tokens_per_second']:.1f} ({row['speedup']:.2f}x)" if row else "")
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def bar_chart(rows: list[dict], path: Path, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    prompts = list(dict.fromkeys(r["prompt"] for r in rows))
    names = list(dict.fromkeys(r["mode"] for r in rows))
    by = {(r["prompt"], r["mode"]): r["speedup"] for r in rows}
    width = 0.8 / len(prompts)
    fig, ax = plt.subplots(figsize=(max(8, 1.1 * len(names)), 4.8))
    x = np.arange(len(names))
    for i, prompt in enumerate(prompts):
        values = [by.get((prompt, name), 0.0) for name in names]
        ax.bar(x + (i - (len(prompts) - 1) / 2) * width, values, width, label=prompt)
    ax.axhline(1.0, color="black", linewidth=0.8)
    labels = [name.replace(f"{PEER_PREFIX} ", f"{PEER_PREFIX}\n") for name in names]
    ax.set_xticks(x, labels, rotation=35, ha="right", fontsize=8)
    ax.set_ylabel("speedup over plain decoding (same run)")
    ax.set_title(title, fontsize=9)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--ci", action="store_true", help="CI-sized: quicksort and the code prompts, 64 tokens, k=2"
    )
    parser.add_argument("--max-tokens", type=int, help="tokens per run (default 128, CI 64)")
    parser.add_argument("--k", type=int, nargs="+", help="fixed draft lengths (default 1..5)")
    parser.add_argument("--prompts", nargs="+", choices=list(PROMPTS), help="which prompts")
    parser.add_argument("--no-peers", action="store_true", help="skip llama-cpp-python's Llama")
    parser.add_argument(
        "--repeat", type=int, default=1, help="runs per mode; the one with median tok/s counts"
    )
    parser.add_argument("--json", type=Path, help="where to write the JSON (the PNG goes beside)")
    args = parser.parse_args()
    max_tokens = args.max_tokens or (64 if args.ci else 128)
    ks = args.k or ([2] if args.ci else [1, 2, 3, 4, 5])
    names = args.prompts or (["quicksort", *CODE_PROMPTS] if args.ci else list(PROMPTS))

    load_before = os.getloadavg()
    session = sd.load(MAIN, draft=DRAFT, n_ctx=N_CTX)
    peers = None if args.no_peers else Peers(session.main.path, os.cpu_count() or 1)
    rows = []
    for name in names:
        prompt = PROMPTS[name]
        prompt_tokens = session.prompt_tokens(prompt)
        run_ours(session, prompt, 8, Mode("warm-up"))  # page cache and threads
        chosen = [mode for mode in modes(ks) if peers or not mode.peer]
        runs: dict[str, list[dict]] = {mode.name: [] for mode in chosen}
        for _ in range(args.repeat):  # whole passes, so a slow spell hits every mode alike
            for mode in chosen:
                if mode.peer:
                    is_end = session.main.is_end_of_generation
                    run = peers.run(mode.peer, prompt_tokens, max_tokens, is_end)
                else:
                    run = run_ours(session, prompt, max_tokens, mode)
                runs[mode.name].append(run)
        plain = None
        for mode in chosen:
            run = median_run(runs[mode.name])
            plain = plain or run
            rows.append({
                "prompt": name,
                "mode": mode.name,
                "tokens": len(run["token_ids"]),
                "speedup": run["tokens_per_second"] / plain["tokens_per_second"],
                "agree_with_plain": agreement(plain["token_ids"], run["token_ids"]),
                **{key: value for key, value in run.items() if key != "token_ids"},
            })  # fmt: skip
            print_row(rows[-1], header=run is plain)

    stamp = time.strftime("%Y%m%d-%H%M%S")
    out = args.json or Path(__file__).parent / "results" / f"speculative-{stamp}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    checks = targets(rows)
    report = {
        "machine": machine(),
        "load_average_before": load_before,
        "load_average_after": os.getloadavg(),
        "max_tokens": max_tokens,
        "repeat": args.repeat,
        "ci": args.ci,
        "targets": checks,
        "runs": rows,
    }
    out.write_text(json.dumps(report, indent=1))
    title = (
        f"{MAIN} (draft {DRAFT}), greedy, {max_tokens} tokens, {machine()['cpu']}, "
        f"{os.cpu_count()} cores, load {load_before[0]:.1f}"
    )
    bar_chart(rows, out.with_suffix(".png"), title)
    print("\n" + markdown_table(rows))
    print("\ntargets:")
    for c in checks:
        verdict = "met " if c["met"] else "MISS"
        print(f"  {verdict} {c['target']:40} {c['prompt']:16} {c['value']:.3f} (goal {c['goal']})")
    print(f"\nmachine: {machine()}, load average before {load_before}, after {os.getloadavg()}")
    print(f"JSON: {out}\nchart: {out.with_suffix('.png')}")


if __name__ == "__main__":
    main()
