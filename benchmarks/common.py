"""What the benchmarks share: their common flags, where results go, and a report that says the
machine and its load before and after beside the results, written as JSON with its table (.md)
and chart (.png) beside it each time results come, so a run cut short keeps what it measured."""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from time import perf_counter
from typing import TYPE_CHECKING

import llama_cpp
from prompts import PROMPTS, QUICK_PROMPTS

import specdec_jupyter as sd
from specdec_jupyter.decoding.cost_memory import machine_identity

if TYPE_CHECKING:
    from matplotlib.axes import Axes

RESULTS = Path(__file__).parent / "results"
THREADS = "CPU threads per model (default: all)"


def parser(doc: str, quick: str, threads: str = THREADS) -> argparse.ArgumentParser:
    """A benchmark's parser, described by its docstring's first paragraph, with --quick
    (`quick` says what it runs) and --threads."""
    made = argparse.ArgumentParser(description=doc.split("\n\n")[0])
    made.add_argument("--quick", action="store_true", help=quick)
    made.add_argument("--threads", type=int, help=threads)
    return made


def prompts_parser(
    doc: str, quick: str, repeat: int, threads: str = THREADS
) -> argparse.ArgumentParser:
    """`parser` with the flags of a benchmark that runs modes over prompts: --max-tokens,
    --prompts, --repeat (whole passes, each mode's median run kept) and --json."""
    made = parser(doc, quick, threads)
    made.add_argument("--max-tokens", type=int, help="tokens per run (default 96, quick 48)")
    made.add_argument("--prompts", nargs="+", choices=list(PROMPTS), help="which prompts")
    made.add_argument(
        "--repeat", type=int, default=repeat, help="runs per mode; the one with median tok/s counts"
    )
    made.add_argument("--json", type=Path, help="where to write the JSON (.md, .png beside)")
    return made


def parse_prompts(made: argparse.ArgumentParser, stem: str) -> argparse.Namespace:
    """`prompts_parser`'s flags with --quick's defaults filled in: max_tokens (96, quick 48),
    prompts (every one, quick three) and json (`result_path`)."""
    args = made.parse_args()
    args.max_tokens = args.max_tokens or (48 if args.quick else 96)
    args.prompts = args.prompts or (QUICK_PROMPTS if args.quick else list(PROMPTS))
    args.json = result_path(args.json, stem)
    return args


def result_path(given: Path | None, stem: str) -> Path:
    """Where a report's JSON goes: `given`, else results/<stem>-<time>.json; its folder made."""
    out = given or RESULTS / f"{stem}-{time.strftime('%Y%m%d-%H%M%S')}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    return out


def machine() -> dict:
    """What a report's figures were measured on: the CPU and the versions that ran."""
    return {
        **machine_identity(),
        "python": platform.python_version(),
        "llama_cpp_python": llama_cpp.__version__,
        "specdec_jupyter": sd.__version__,
    }


class Report:
    """A benchmark's report at `out`: `info` (the machine, the load when it began, the threads
    and `settings`), then each `write` adds the results so far."""

    def __init__(self, out: Path, threads: int | None, **settings):
        self.out = out
        self.started = perf_counter()
        self.info = {
            "machine": machine(),
            "load_average_before": os.getloadavg(),
            "threads": threads or os.cpu_count(),
            **settings,
        }

    def setting(self) -> str:
        """The machine and its load, for a chart's title."""
        cpu, load = self.info["machine"]["cpu"], self.info["load_average_before"][0]
        return f"{cpu}, {os.cpu_count()} cores, {self.info['threads']} threads, load {load:.1f}"

    def write(self, table: str, chart: Callable[[Path], object], **results) -> None:
        """The JSON (the load now as "load_average_after"), the table and the chart."""
        self.info["seconds"] = perf_counter() - self.started
        report = {**self.info, "load_average_after": os.getloadavg(), **results}
        self.out.write_text(json.dumps(report, indent=1))
        self.out.with_suffix(".md").write_text(table + "\n")
        chart(self.out.with_suffix(".png"))

    def done(self) -> None:
        print(
            f"\nmachine: {self.info['machine']}\n{perf_counter() - self.started:.0f} s, load "
            f"{self.info['load_average_before']} before, {os.getloadavg()} after\n"
            f"written: {self.out}, .md, .png"
        )


@contextmanager
def figure(path: Path, title: str, size: tuple[float, float]) -> Iterator[Axes]:
    """Axes to draw on, saved to `path` under `title` when the block ends (no display)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=size)
    try:
        yield ax
        ax.set_title(title, fontsize=9)
        fig.tight_layout()
        fig.savefig(path, dpi=120)
    finally:
        plt.close(fig)
