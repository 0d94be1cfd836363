"""When speculation pays over llama.cpp's RPC backend: the 1.5B main model here, on two RPC
workers on loopback, and on the same two behind a delay each way (a relay in this benchmark,
delay_relay.py: this kernel has no netem); the 0.5B draft always here.

    .venv/bin/python benchmarks/rpc.py                # 12 prompts, 96 tokens, 3 delays: hours
    .venv/bin/python benchmarks/rpc.py --quick        # 3 prompts, 48 tokens, 2 ms only
    .venv/bin/python benchmarks/rpc.py --quick --prompts code-rename --max-tokens 16

For each setting (local, loopback, each delay), in whole passes (`--repeat`, median run
kept): plain decoding, the draft model, prompt lookup and hybrid, all under `auto`, with call
costs learned afresh for each setting. Per setting and prompt the table gives plain's tokens/s,
its ratio to local plain (what the workers cost), and each mode's ratio to that setting's own
plain (what speculation gains there); "agree" counts the modes whose tokens equal that
setting's plain decoding's. The workers run on this machine: they share its cores with the
client, so the figures show the network's share, not a second machine's compute.

Writes JSON, a Markdown table and a chart (default benchmarks/results/rpc-<time>.*).
"""

from __future__ import annotations

import statistics
import sys
import tempfile
from contextlib import ExitStack
from functools import partial
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

from common import Report, figure, parse_prompts, prompts_parser
from delay_relay import DelayRelay
from prompts import PROMPTS
from speculative import DRAFT, MAIN, Mode, median_run, run_ours

import specdec_jupyter as sd
from specdec_jupyter.decoding.cost_memory import CostMemory, CostStore
from specdec_jupyter.engines.rpc.loopback import endpoints, workers

MODES = [
    Mode("plain"),
    Mode("model auto", "model"),
    Mode("lookup auto", "lookup"),
    Mode("hybrid auto", "hybrid"),
]
N_CTX = 1024
LOCAL, LOOPBACK = "local", "loopback"


def setting_name(delay_ms: float | None) -> str:
    return LOCAL if delay_ms is None else LOOPBACK if delay_ms == 0 else f"{delay_ms:g} ms"


def setting_rows(setting: str, runs: dict[tuple[str, str], list[dict]], local_plain: dict):
    """One setting's rows, a prompt each: its median runs against its plain and local plain."""
    rows = []
    for prompt in dict.fromkeys(name for name, _ in runs):
        median = {m.name: median_run(runs[(prompt, m.name)]) for m in MODES}
        plain = median["plain"]
        speeds = {name: run["tokens_per_second"] for name, run in median.items()}
        rows.append({
            "setting": setting,
            "prompt": prompt,
            "tokens_per_second": speeds,
            "plain_over_local": speeds["plain"] / local_plain[prompt],
            "over_plain": {name: speed / speeds["plain"] for name, speed in speeds.items()},
            "agree": sum(run["token_ids"] == plain["token_ids"] for run in median.values()),
        })  # fmt: skip
    return rows


def markdown_table(rows: list[dict]) -> str:
    speculative = [m.name for m in MODES[1:]]
    lines = [
        "| setting | prompt | plain tok/s | plain / local plain | "
        + " | ".join(f"{name} x plain" for name in speculative)
        + " | agree |",
        "|---|---|---|---|" + "---|" * len(speculative) + "---|",
    ]
    for r in rows:
        lines.append(
            f"| {r['setting']} | {r['prompt']} | {r['tokens_per_second']['plain']:.2f} "
            f"| {r['plain_over_local']:.2f} | "
            + " | ".join(f"{r['over_plain'][name]:.2f}" for name in speculative)
            + f" | {r['agree']}/{len(MODES)} |"
        )
    for setting in dict.fromkeys(r["setting"] for r in rows):
        mine = [r for r in rows if r["setting"] == setting]
        lines.append(
            f"| **{setting}, median** | | "
            f"| {statistics.median(r['plain_over_local'] for r in mine):.2f} | "
            + " | ".join(
                f"{statistics.median(r['over_plain'][name] for r in mine):.2f}"
                for name in speculative
            )
            + " | |"
        )
    return "\n".join(lines)


def chart(rows: list[dict], path: Path, title: str) -> None:
    """Per setting, the median over prompts of each mode's tokens/s over local plain."""
    import numpy as np

    settings = list(dict.fromkeys(r["setting"] for r in rows))
    x = np.arange(len(settings))
    width = 0.8 / len(MODES)
    with figure(path, title, (max(7, 1.6 * len(settings)), 4.5)) as ax:
        for i, mode in enumerate(MODES):
            heights = [
                statistics.median(
                    r["plain_over_local"] * r["over_plain"][mode.name]
                    for r in rows
                    if r["setting"] == setting
                )
                for setting in settings
            ]
            ax.bar(x + (i - (len(MODES) - 1) / 2) * width, heights, width, label=mode.name)
        ax.axhline(1.0, color="black", linewidth=0.8)
        ax.set_xticks(x, settings)
        ax.set_ylabel("tokens/s over local plain (median over prompts)")
        ax.legend(fontsize=8)


def run_setting(session: sd.Session, names: list[str], max_tokens: int, repeat: int) -> dict:
    """Every prompt and mode on `session`, in whole passes; call costs learned afresh."""
    store = CostStore(Path(tempfile.mkdtemp(prefix="specdec-rpc-")) / "call-costs.json")
    runs: dict[tuple[str, str], list[dict]] = {}
    for _ in range(repeat):
        for name in names:
            for mode in MODES:
                session.memory = CostMemory(session.main, session.draft, store)
                run = run_ours(session, PROMPTS[name], max_tokens, mode)
                runs.setdefault((name, mode.name), []).append(run)
    return runs


def main() -> None:
    parser = prompts_parser(
        __doc__,
        quick="3 prompts, 48 tokens, 2 ms",
        repeat=3,
        threads="CPU threads here and per worker (default: all)",
    )
    parser.add_argument(
        "--delays", type=float, nargs="+", help="ms each way (default 0.5 2 5, quick 2)"
    )
    args = parse_prompts(parser, "rpc")
    delays = args.delays or ([2.0] if args.quick else [0.5, 2.0, 5.0])
    report = Report(
        args.json,
        args.threads,
        max_tokens=args.max_tokens,
        repeat=args.repeat,
        delays_ms_each_way=delays,
        backends={},
    )
    threads = report.info["threads"]
    title = f"{MAIN} over RPC (draft {DRAFT} here), greedy, {args.max_tokens} tokens, "
    title += report.setting()
    rows: list[dict] = []
    local_plain: dict[str, float] = {}
    with workers(2, threads=threads) as started_workers:
        for delay in [None, 0.0, *delays]:
            setting = setting_name(delay)
            with ExitStack() as stack:
                rpc = None
                if delay is not None:
                    relays = [
                        stack.enter_context(DelayRelay(endpoint, delay / 1000))
                        for endpoint in endpoints(started_workers)
                    ]
                    rpc = [relay.endpoint for relay in relays]
                session = sd.load(
                    MAIN, draft=DRAFT, n_ctx=N_CTX, n_threads=threads, rpc=rpc, progress=False
                )
                stack.callback(session.close)
                report.info["backends"][setting] = session.backend
                runs = run_setting(session, args.prompts, args.max_tokens, args.repeat)
            if delay is None:
                local_plain = {
                    name: median_run(runs[(name, "plain")])["tokens_per_second"]
                    for name in args.prompts
                }
            rows += setting_rows(setting, runs, local_plain)
            print(markdown_table(rows), flush=True)
            report.write(markdown_table(rows), partial(chart, rows, title=title), rows=rows)
    report.done()


if __name__ == "__main__":
    main()
