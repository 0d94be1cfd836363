"""The benchmark's report (targets, table, chart) on made-up runs: no model, a second."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

BENCHMARK = Path(__file__).parent.parent / "benchmarks" / "speculative.py"


def load_benchmark():
    spec = importlib.util.spec_from_file_location("speculative_benchmark", BENCHMARK)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclasses look themselves up there
    spec.loader.exec_module(module)
    return module


def row(prompt: str, mode: str, tps: float, plain: float) -> dict:
    return {"prompt": prompt, "mode": mode, "tokens_per_second": tps, "speedup": tps / plain}


def test_targets_table_and_chart(tmp_path):
    bench = load_benchmark()
    peer = bench.PEER_PREFIX
    rows = [
        row("quicksort", "plain", 12.0, 12.0),
        row("quicksort", "k=0", 11.9, 12.0),
        row("quicksort", "model auto", 11.5, 12.0),
        row("quicksort", f"{peer} plain", 12.1, 12.0),
        row("code-rename", "plain", 12.0, 12.0),
        row("code-rename", "model auto", 12.0, 12.0),
        row("code-rename", "lookup auto", 19.0, 12.0),
        row("code-rename", "hybrid auto", 18.0, 12.0),
        row("code-rename", f"{peer} lookup", 14.0, 12.0),
    ]
    checks = {(c["target"], c["prompt"]): c for c in bench.targets(rows)}
    assert not checks[("model auto / plain", "quicksort")]["met"]  # 0.958 < 0.97
    assert checks[("k=0 / plain (loop overhead)", "quicksort")]["met"]
    assert checks[(f"plain / {peer} plain", "quicksort")]["met"]  # 12.0 / 12.1 = 0.992
    assert checks[("best of lookup/hybrid/auto / plain", "code-rename")]["met"]
    assert checks[(f"best ours / {peer} lookup", "code-rename")]["value"] == 19.0 / 14.0
    table = bench.markdown_table(rows)
    assert "| lookup auto |  | 19.0 (1.58x) |" in table
    bench.bar_chart(rows, tmp_path / "chart.png", "test")
    assert (tmp_path / "chart.png").stat().st_size > 1000


def test_repeated_runs_count_by_their_median():
    median_run = load_benchmark().median_run
    runs = [{"tokens_per_second": tps, "n": i} for i, tps in enumerate([9.0, 14.0, 12.0])]
    assert median_run(runs)["n"] == 2  # a stall (9) and a lucky run (14) both drop out
    assert median_run(runs[:2])["n"] == 0  # of two, the slower: never flatter a mode
    assert median_run(runs[:1])["n"] == 0
