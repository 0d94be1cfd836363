"""Every decoding mode on Qwen2.5-Coder-1.5B, against plain decoding and the ceiling.

    .venv/bin/python benchmarks/speculative.py            # 12 prompts, 96 tokens, 14 modes
    .venv/bin/python benchmarks/speculative.py --quick    # 3 prompts, 48 tokens, 10 modes

One command, one run, side by side, greedy. For each prompt (four prose or code-writing
prompts and eight kinds of code edit, see prompts.py): plain decoding through our loop; the
0.5B draft with k fixed at 1..5 and with k = "auto"; prompt lookup (auto); hybrid (lookup and
the model, auto: the policy picks the source and k, or none); drafts from other families,
which draft text (decoding/text_drafts.py): SmolLM2-135M (k = 3, auto, hybrid) and
Gemma-3-270M (auto, hybrid); and, with `--peers`, llama-cpp-python's high-level `Llama`,
plain and with `LlamaPromptLookupDecoding`. `--no-cross` leaves the other families out.

Before the modes of a prompt run, the main model's call costs are measured on this prompt's
context: one call on n = 1..8 tokens, median of `--calls` timings each. From them the
*ceiling*: the tokens per second drafts would give if they cost nothing and were always
right, max over n of n / cost(n); and *copying's ceiling*: what drafts copied from the
context could give on plain decoding's reply if each round drafted exactly the tokens the
copy gets right (new text cannot be copied, whatever drafter copies it). Each mode is
reported as a ratio to plain decoding of the same prompt in the same run, and as a share of
the ceiling. Every engine call of every run
is timed too, so each run's decoding time can be set against what its calls predict (the
sum, over its calls, of the median cost of a call of that size in that run, "t/calls"),
and the share of it spent outside the engines' calls is our loop's own ("loop").

Prints a table, writes JSON and a chart (default benchmarks/results/speculative-<time>.json
and .png), and checks issue 12's targets. `--repeat N` runs every mode N times in whole passes
and keeps each mode's median run, as a shared machine needs.
"""

from __future__ import annotations

import statistics
import sys
import tempfile
from collections.abc import Hashable, Sequence
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from time import perf_counter

import llama_cpp
import numpy as np
from llama_cpp.llama_speculative import LlamaPromptLookupDecoding

sys.path.insert(0, str(Path(__file__).parent))

from common import Report, figure, parse_prompts, prompts_parser
from prompts import CODE_PROMPTS, PROMPTS, PROSE_PROMPTS

import specdec_jupyter as sd
from specdec_jupyter.decoding.cost_memory import CostMemory, CostStore
from specdec_jupyter.decoding.drafters import PromptLookupDrafter
from specdec_jupyter.decoding.history import HISTORY
from specdec_jupyter.engines.registry import engine_kind
from specdec_jupyter.engines.resolve import resolve
from specdec_jupyter.engines.tap import Call, EngineTap
from specdec_jupyter.sessions.wire import stats_to_dict
from specdec_jupyter.settings import LoadOptions

MAIN, DRAFT = "qwen2.5-coder-1.5b", "qwen2.5-coder-0.5b"
# Drafts of other families, by the short name their modes carry.
CROSS_DRAFTS = {"smollm2": "smollm2-135m-instruct", "gemma-270m": "gemma-3-270m"}
N_CTX = 2048
PEER_PREFIX = "llama-cpp-python"
CALL_SIZES = range(1, 9)
AUTO = "hybrid auto"  # the mode that may draft from anything, or not at all


@dataclass(frozen=True)
class Mode:
    """One way to generate. `draft_mode` None is plain decoding; `peer` runs
    llama-cpp-python's high-level Llama instead ("plain" or "lookup")."""

    name: str
    draft_mode: str | None = None
    draft_tokens: int | str = "auto"
    peer: str | None = None
    draft: str | None = None  # a draft of another family (CROSS_DRAFTS), else the 0.5B


def modes(ks: Sequence[int], peers: bool, cross: bool = True) -> list[Mode]:
    ours = [
        Mode("plain"),
        *[Mode(f"model k={k}", "model", k) for k in ks],
        Mode("model auto", "model"),
        Mode("lookup auto", "lookup"),
        Mode(AUTO, "hybrid"),
    ]
    if cross:
        ours += [
            Mode("smollm2 k=3", "model", 3, draft="smollm2"),
            Mode("smollm2 auto", "model", draft="smollm2"),
            Mode("smollm2 hybrid auto", "hybrid", draft="smollm2"),
            Mode("gemma-270m auto", "model", draft="gemma-270m"),
            Mode("gemma-270m hybrid auto", "hybrid", draft="gemma-270m"),
        ]
    if not peers:
        return ours
    return [*ours, Mode(f"{PEER_PREFIX} plain", peer="plain"),
            Mode(f"{PEER_PREFIX} lookup", peer="lookup")]  # fmt: skip


class TimedEngine(EngineTap):
    """An engine that times every call (when it ended, its tokens, its seconds)."""

    def __init__(self, engine):
        super().__init__(engine)
        self.calls: list[tuple[float, int, float]] = []

    def after(self, call: Call) -> None:
        self.calls.append((call.ended, len(call.tokens), call.seconds))


def predicted_seconds(calls: Sequence[tuple[Hashable, float]]) -> float:
    """What a run's calls should take: each call at the median cost of its kind in the run
    (a kind is an engine and a call size: the draft model's calls on 2 tokens are not the
    main model's)."""
    by_kind: dict[Hashable, list[float]] = {}
    for kind, seconds in calls:
        by_kind.setdefault(kind, []).append(seconds)
    medians = {kind: statistics.median(times) for kind, times in by_kind.items()}
    return sum(medians[kind] for kind, _ in calls)


def call_costs(engine, context: Sequence[int], repeats: int) -> dict[int, float]:
    """Seconds of one call on n tokens after `context` (logits for all n, as verification
    asks), the median of `repeats` timings for each n in CALL_SIZES."""
    engine.rollback(0)
    engine.read_prompt(context)
    filler = list(context[-max(CALL_SIZES) :])
    costs = {}
    for n in CALL_SIZES:
        times = []
        for _ in range(repeats):
            started = perf_counter()
            engine.evaluate(filler[:n], n_logits=n)
            times.append(perf_counter() - started)
            engine.rollback(len(context))
        costs[n] = statistics.median(times)
    return costs


def ceiling(costs: dict[int, float]) -> tuple[int, float]:
    """The best tokens per second of drafts that cost nothing and are always right: n
    tokens a call of n, at the best n; and that n."""
    best = max(costs, key=lambda n: n / costs[n])
    return best, best / costs[best]


def copy_ceiling(prompt: list[int], reply: list[int], costs: dict[int, float]) -> float:
    """The best tokens per second copying can give on this reply: each round drafts exactly
    the tokens the copier (prompt lookup, context only) gets right, up to the ceiling's
    best call size, at the measured call costs. New text (a docstring, an explanation)
    cannot be copied, so on such replies this sits well below the ceiling."""
    best_n, _ = ceiling(costs)
    copier = PromptLookupDrafter()
    copier.prepare(prompt)
    at, seconds = 0, 0.0
    while at < len(reply):
        guess = copier.lookup(prompt + reply[:at], best_n - 1)
        right = agreement(guess, reply[at:])
        seconds += costs[right + 1]
        at += right + 1
    return len(reply) / seconds


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


def cross_sessions(main: TimedEngine, threads: int | None, exact: bool) -> dict[str, sd.Session]:
    """A session per draft of another family, sharing the main model (one run at a time)."""
    kind = engine_kind("llama.cpp")
    options = LoadOptions(n_ctx=N_CTX, n_threads=threads, exact=exact).for_draft()
    return {
        short: sd.Session(main, TimedEngine(kind.open(resolve(key), options)))
        for short, key in CROSS_DRAFTS.items()
    }


def run_ours(session: sd.Session, prompt: str, max_tokens: int, mode: Mode) -> dict:
    """One generation. With the session's engines wrapped in `TimedEngine`s, the run's
    decoding time (after the first token) is also set against what its calls predict."""
    timed = [e for e in (session.main, session.draft) if isinstance(e, TimedEngine)]
    for engine in timed:
        engine.calls.clear()
    HISTORY.clear()  # or lookup would copy this prompt's reply from the mode run before it
    result = session.generate(
        prompt,
        max_tokens=max_tokens,
        use_draft=mode.draft_mode is not None,
        draft_mode=mode.draft_mode,
        draft_tokens=mode.draft_tokens,
    )
    stats = result.stats
    drafted = stats.total_draft_tokens_count > 0
    run = {
        "token_ids": result.token_ids,
        "tokens_per_second": stats.tokens_per_second,
        "time_to_first_token": stats.time_to_first_token,
        "acceptance_rate": stats.acceptance_rate if drafted else None,
        "mean_draft_length": float(np.mean(stats.draft_lengths)) if stats.draft_lengths else 0,
        "draft_lengths": stats.draft_lengths,
        "stats": stats_to_dict(stats),
    }
    if timed:
        first_at = perf_counter() - stats.generation_time  # a moment after the first token
        decoding = [
            ((i, n), s) for i, e in enumerate(timed) for ended, n, s in e.calls if ended > first_at
        ]
        run["calls_seconds"] = sum(seconds for _, seconds in decoding)
        run["loop_share"] = 1 - run["calls_seconds"] / stats.generation_time
        run["calls_predict_seconds"] = predicted_seconds(decoding)
        run["loop_over_calls"] = stats.generation_time / max(run["calls_predict_seconds"], 1e-9)
    return run


def median_run(runs: list[dict]) -> dict:
    return sorted(runs, key=lambda run: run["tokens_per_second"])[(len(runs) - 1) // 2]


def agreement(a: list[int], b: list[int]) -> int:
    n = 0
    while n < min(len(a), len(b)) and a[n] == b[n]:
        n += 1
    return n


def targets(rows: list[dict]) -> list[dict]:
    """Issue 12's targets, each with the measured value and whether it holds."""
    by = {(r["prompt"], r["mode"]): r for r in rows}
    prompts = list(dict.fromkeys(r["prompt"] for r in rows))
    checks = []

    def check(name: str, value: float | None, goal: float, prompt: str, at_most=False) -> None:
        if value is not None:
            met = value <= goal if at_most else value >= goal
            checks.append(
                {"target": name, "prompt": prompt, "value": value, "goal": goal, "met": met}
            )

    def speedup(prompt: str, mode: str) -> float | None:
        row = by.get((prompt, mode))
        return row["speedup"] if row else None

    def ours(prompt: str) -> list[dict]:
        return [r for r in rows if r["prompt"] == prompt and not r["mode"].startswith(PEER_PREFIX)]

    edits_best, edits_share = [], []
    for prompt in prompts:
        auto = by.get((prompt, AUTO))
        others = [r for r in ours(prompt) if r["mode"] != AUTO]
        if auto and others:
            best = max(others, key=lambda r: r["tokens_per_second"])
            ratio = auto["tokens_per_second"] / best["tokens_per_second"]
            check(f"{AUTO} / best other ({best['mode']})", ratio, 0.95, prompt)
        if prompt in PROSE_PROMPTS:
            check(f"{AUTO} / plain (prose)", speedup(prompt, AUTO), 0.97, prompt)
        for row in ours(prompt):
            if row["mode"].startswith("model k=") and row.get("acceptance_rate") == 1.0:
                check(f"{row['mode']} at 100% acceptance: time / calls' prediction",
                      row["loop_over_calls"], 1.05, prompt, at_most=True)  # fmt: skip
        if prompt in CODE_PROMPTS:
            free = [by[(prompt, m)] for m in ("lookup auto", AUTO) if (prompt, m) in by]
            if free:
                best = max(free, key=lambda r: r["tokens_per_second"])
                edits_best.append(best["speedup"])
                edits_share.append(best["share_of_ceiling"])
                check("code edit: best of lookup/hybrid / plain", best["speedup"], 1.3, prompt)
    if edits_best:
        check("code edits: median best / plain", statistics.median(edits_best), 1.6, "all edits")
        check("code edits: mean share of ceiling", float(np.mean(edits_share)), 0.85, "all edits")
    for prompt in prompts:  # issue 28's: a draft of another family, 11x smaller, pays
        if prompt in PROSE_PROMPTS:
            check("smollm2 auto / plain (prose)", speedup(prompt, "smollm2 auto"), 1.2, prompt)
        if prompt in ("code-type-hints", "code-docstrings"):
            value = speedup(prompt, "smollm2 hybrid auto")
            check("smollm2 hybrid auto / plain", value, 1.3, prompt)
    return checks


def print_row(row: dict, header: bool) -> None:
    if header:
        print(f"\n{row['prompt']}: ceiling {row['ceiling_speedup']:.2f}x plain "
              f"({row['ceiling_batch']} tokens a call), "
              f"copying's {row['copy_ceiling_speedup']:.2f}x")  # fmt: skip
        print(f"  {'mode':26} {'tok/s':>6} {'x plain':>7} {'ceiling':>7} {'accept':>7} "
              f"{'mean k':>6} {'agree':>7} {'t/calls':>7} {'loop':>5}")  # fmt: skip
    accept = "" if row["acceptance_rate"] is None else f"{row['acceptance_rate']:.0%}"
    over = f"{row['loop_over_calls']:.3f}" if "loop_over_calls" in row else ""
    loop = f"{row['loop_share']:.1%}" if "loop_share" in row else ""
    print(
        f"  {row['mode']:26} {row['tokens_per_second']:6.1f} {row['speedup']:6.2f}x "
        f"{row['share_of_ceiling']:7.0%} {accept:>7} {row['mean_draft_length']:6.2f} "
        f"{row['agree_with_plain']:>3}/{row['tokens']:<3} {over:>7} {loop:>5}",
        flush=True,
    )


def markdown_table(rows: list[dict]) -> str:
    """Per mode and prompt: speedup over plain, and the share of the ceiling where known;
    the last lines give each prompt's ceiling and copying's."""
    prompts = list(dict.fromkeys(r["prompt"] for r in rows))
    names = list(dict.fromkeys(r["mode"] for r in rows))
    by = {(r["prompt"], r["mode"]): r for r in rows}
    lines = ["| mode | " + " | ".join(prompts) + " |", "|---|" + "---|" * len(prompts)]
    for name in names:
        cells = []
        for prompt in prompts:
            row = by.get((prompt, name))
            share = f" {row['share_of_ceiling']:.0%}" if row and "share_of_ceiling" in row else ""
            cells.append(f"{row['speedup']:.2f}x{share}" if row else "")
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    first = [by.get((prompt, names[0]), {}) for prompt in prompts]
    for key, label in (
        ("ceiling_speedup", "ceiling"),
        ("copy_ceiling_speedup", "copying's ceiling"),
    ):
        if all(key in row for row in first):
            lines.append(f"| *{label}* | " + " | ".join(f"{row[key]:.2f}x" for row in first) + " |")
    return "\n".join(lines)


def bar_chart(rows: list[dict], path: Path, title: str):
    """Speedup over plain by prompt (groups) and mode (bars), each prompt's ceilings lines
    (named by their key, `gid`); returns the axes drawn."""
    prompts = list(dict.fromkeys(r["prompt"] for r in rows))
    names = list(dict.fromkeys(r["mode"] for r in rows))
    by = {(r["prompt"], r["mode"]): r for r in rows}
    width = 0.85 / len(names)
    x = np.arange(len(prompts))
    with figure(path, title, (max(8, 1.2 * len(prompts)), 5)) as ax:
        for i, name in enumerate(names):  # the default colours: tab10's ten, in turn
            values = [by[(p, name)]["speedup"] if (p, name) in by else 0.0 for p in prompts]
            ax.bar(x + (i - (len(names) - 1) / 2) * width, values, width, label=name)
        for key, style in (("ceiling_speedup", "dashed"), ("copy_ceiling_speedup", "dotted")):
            for i, prompt in enumerate(prompts):
                top = by.get((prompt, names[0]), {}).get(key)
                if top:
                    ax.hlines(top, i - 0.45, i + 0.45, colors="k", linestyles=style, lw=1, gid=key)
        ax.axhline(1.0, color="black", linewidth=0.8)
        ax.set_xticks(x, prompts, rotation=30, ha="right", fontsize=8)
        ax.set_ylabel(
            "speedup over plain decoding (same run)\n- - - ceiling: free, always-right drafts\n"
            "····· copying's ceiling: lookup, wrong guesses free"
        )
        ax.legend(fontsize=7, ncol=1, loc="upper left", bbox_to_anchor=(1.0, 1.0))
    return ax


def prompt_rows(
    name: str, prompt: list[int], chosen: list[Mode], runs: dict[str, list[dict]], costs: dict
) -> list:
    """A prompt's rows: each mode's median run, against plain and the ceilings."""
    best_n, top = ceiling(costs)
    plain = median_run(runs["plain"])
    copy_top = copy_ceiling(prompt, plain["token_ids"], costs)
    rows = []
    for mode in chosen:
        run = median_run(runs[mode.name])
        rows.append({
            "prompt": name,
            "mode": mode.name,
            "tokens": len(run["token_ids"]),
            "speedup": run["tokens_per_second"] / plain["tokens_per_second"],
            "share_of_ceiling": run["tokens_per_second"] / top,
            "ceiling_tokens_per_second": top,
            "ceiling_batch": best_n,
            "ceiling_speedup": top / plain["tokens_per_second"],
            "copy_ceiling_speedup": copy_top / plain["tokens_per_second"],
            "call_seconds": costs,
            "agree_with_plain": agreement(plain["token_ids"], run["token_ids"]),
            **{key: value for key, value in run.items() if key != "token_ids"},
        })  # fmt: skip
    return rows


def write_report(report: Report, rows: list[dict]) -> list[dict]:
    """The JSON, the table (.md) and the chart (.png) of the rows so far; the targets."""
    info = report.info
    checks = targets(rows)
    others = ", ".join(CROSS_DRAFTS) if info["cross"] else ""
    title = (
        f"{MAIN} (drafts {DRAFT}{', ' + others if others else ''}"
        f"{', exact' if info['exact'] else ''}), greedy, "
        f"{info['max_tokens']} tokens, {report.setting()}"
    )
    chart = partial(bar_chart, rows, title=title)
    report.write(markdown_table(rows), chart, targets=checks, runs=rows)
    return checks


def main() -> None:
    parser = prompts_parser(
        __doc__,
        quick="3 prompts, 48 tokens, k=3 only: a couple of minutes",
        repeat=1,
        threads="CPU threads per model (default: all cores; on a machine shared with other "
        "work, 1 thread runs steadier than 2 that wait on each other)",
    )
    parser.add_argument("--k", type=int, nargs="+", help="fixed draft lengths (default 1..5)")
    parser.add_argument("--peers", action="store_true", help="add llama-cpp-python's Llama")
    parser.add_argument("--calls", type=int, default=3, help="timings per call size (median)")
    parser.add_argument(
        "--exact", action="store_true", help="load the pair exact: every mode must agree in full"
    )
    parser.add_argument(
        "--no-cross", action="store_true", help="leave out the drafts of other families"
    )
    args = parse_prompts(parser, "speculative")
    ks = args.k or ([3] if args.quick else [1, 2, 3, 4, 5])
    report = Report(
        args.json,
        args.threads,
        max_tokens=args.max_tokens,
        repeat=args.repeat,
        quick=args.quick,
        prompts=args.prompts,
        exact=args.exact,
        cross=not args.no_cross,
    )
    session = sd.load(MAIN, draft=DRAFT, n_ctx=N_CTX, n_threads=args.threads, exact=args.exact)
    raw_main = session.main
    session.main, session.draft = TimedEngine(session.main), TimedEngine(session.draft)
    peers = Peers(raw_main.path, report.info["threads"]) if args.peers else None
    chosen = modes(ks, peers is not None, not args.no_cross)
    by_draft = {None: session}
    if not args.no_cross:
        by_draft |= cross_sessions(session.main, args.threads, args.exact)
    # Call costs remembered by this run only: what tests or runs on a busy machine left in
    # the cache must not steer the policies measured here.
    store = CostStore(Path(tempfile.mkdtemp(prefix="specdec-bench-")) / "call-costs.json")
    rows = []
    for name in args.prompts:
        prompt = PROMPTS[name]
        prompt_tokens = session.prompt_tokens(prompt)
        costs = call_costs(raw_main, prompt_tokens, args.calls)
        runs: dict[str, list[dict]] = {mode.name: [] for mode in chosen}
        for _ in range(args.repeat):  # whole passes, so a slow spell hits every mode alike
            for mode in chosen:
                # A new session's view: call costs this benchmark measured, no acceptance
                # carried over from another mode's run on this prompt.
                drafting = by_draft[mode.draft]
                drafting.memory = CostMemory(raw_main, drafting.draft.inner, store)
                if mode.peer:
                    is_end = raw_main.is_end_of_generation
                    run = peers.run(mode.peer, prompt_tokens, args.max_tokens, is_end)
                else:
                    run = run_ours(drafting, prompt, args.max_tokens, mode)
                runs[mode.name].append(run)
        for i, row in enumerate(prompt_rows(name, prompt_tokens, chosen, runs, costs)):
            rows.append(row)
            print_row(row, header=i == 0)
        checks = write_report(report, rows)  # after every prompt: a cut-short run keeps some

    print("\n" + markdown_table(rows))
    print("\ntargets:")
    for c in checks:
        verdict = "met " if c["met"] else "MISS"
        print(f"  {verdict} {c['target']:58} {c['prompt']:24} {c['value']:.3f} (goal {c['goal']})")
    report.done()


if __name__ == "__main__":
    main()
