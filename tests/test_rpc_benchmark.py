"""benchmarks/rpc.py's table and chart on made-up runs, and its delay relay carrying a real
worker's handshake."""

from __future__ import annotations

import importlib.util
import sys

from specdec_jupyter.engines.rpc.handshake import check_worker, this_build_protocol
from specdec_jupyter.engines.rpc.loopback import WorkerProcess
from specdec_jupyter.settings import RpcWorker
from tests.support import ROOT


def load_benchmark():
    sys.path.insert(0, str(ROOT / "benchmarks"))  # its sibling modules
    spec = importlib.util.spec_from_file_location("rpc_benchmark", ROOT / "benchmarks/rpc.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def runs(speeds: dict[str, float], tokens: dict[str, list[int]] | None = None) -> dict:
    tokens = tokens or {}
    return {
        ("code-rename", mode): [
            {"tokens_per_second": speed, "token_ids": tokens.get(mode, [1, 2, 3])}
        ]
        for mode, speed in speeds.items()
    }


def test_ratios_to_local_and_to_each_settings_plain(tmp_path):
    bench = load_benchmark()
    modes = ["plain", "model auto", "lookup auto", "hybrid auto"]
    local = runs(dict(zip(modes, [10.0, 9.0, 15.0, 16.0], strict=True)))
    far = runs(dict(zip(modes, [5.0, 6.0, 10.0, 11.0], strict=True)), {"model auto": [1, 2, 4]})
    local_plain = {"code-rename": 10.0}
    rows = bench.setting_rows("local", local, local_plain)
    rows += bench.setting_rows("2 ms", far, local_plain)
    assert rows[1]["plain_over_local"] == 0.5
    assert rows[1]["over_plain"] == {
        "plain": 1.0, "model auto": 1.2, "lookup auto": 2.0, "hybrid auto": 2.2
    }  # fmt: skip
    assert [row["agree"] for row in rows] == [4, 3], "the model's run parted from plain"
    table = bench.markdown_table(rows)
    assert "| 2 ms | code-rename | 5.00 | 0.50 | 1.20 | 2.00 | 2.20 | 3/4 |" in table
    assert "| **2 ms, median** | | | 0.50 | 1.20 | 2.00 | 2.20 | |" in table
    assert [bench.setting_name(d) for d in (None, 0.0, 0.5, 2.0)] == [
        "local", "loopback", "0.5 ms", "2 ms"
    ]  # fmt: skip
    bench.chart(rows, tmp_path / "chart.png", "test")
    assert (tmp_path / "chart.png").stat().st_size > 1000


def test_the_relay_carries_a_worker_handshake():
    bench = load_benchmark()
    worker = WorkerProcess()
    try:
        with bench.DelayRelay(worker.endpoint, delay=0.001) as relay:
            assert check_worker(RpcWorker.parse(relay.endpoint)) == this_build_protocol()
    finally:
        worker.kill()
