"""One stats layout everywhere: the chat and `%%specdec` (the JS stats line), the HTML of
`GenerationResult` and of the chat without a kernel, `%specdec stats` and the CLI; stop
reasons in words; the speedup over plain when a baseline is known."""

from __future__ import annotations

import html
import json
import re
import subprocess
from typing import get_args

from specdec_jupyter.decoding.events import GenerationStats, StopReason, TokenEvent
from specdec_jupyter.display.stats_layout import (
    STOP_REASON_WORDS,
    Baseline,
    rows_to_html,
    stats_rows,
    stats_to_text,
)
from specdec_jupyter.sessions import plain_speeds
from specdec_jupyter.sessions.result import GenerationResult
from tests.support import ROOT

JS = ROOT / "js"


def speculative_stats(**changes) -> GenerationStats:
    stats = GenerationStats(
        draft_model="qwen2.5-coder-0.5b",
        stop_reason="maxPredictedTokensReached",
        predicted_tokens_count=48,
        time_to_first_token=0.25,
        generation_time=4.7,
        tokens_per_second=10.0,
        total_draft_tokens_count=40,
        accepted_draft_tokens_count=30,
        rejected_draft_tokens_count=8,
        ignored_draft_tokens_count=2,
        rounds=18,
    )
    for key, value in changes.items():
        setattr(stats, key, value)
    return stats


def test_every_stop_reason_reads_in_words():
    assert set(STOP_REASON_WORDS) == set(get_args(StopReason))
    words = {r: dict(stats_rows(speculative_stats(stop_reason=r)))["stop reason"] for r in
             get_args(StopReason)}  # fmt: skip
    assert words == {
        "eosFound": "end of text",
        "stopStringFound": "stop string",
        "maxPredictedTokensReached": "token limit",
        "contextLengthReached": "context full",
        "userStopped": "stopped by you",
    }


def test_rows_in_one_order_and_the_speedup_when_a_baseline_is_known():
    rows = stats_rows(speculative_stats())
    assert [label for label, _ in rows] == [
        "tokens/s",
        "time to first token",
        "generation time",
        "stop reason",
        "predicted tokens",
        "draft model",
        "drafted tokens",
        "accepted",
        "rejected",
        "ignored",
        "acceptance rate",
        "rounds",
    ]
    measured = dict(stats_rows(speculative_stats(baseline_tokens_per_second=8.0)))
    assert measured["speedup over plain"] == "1.25x (plain 8.00 tok/s, this run)"
    remembered = dict(stats_rows(speculative_stats(), Baseline(12.5, "remembered")))
    assert remembered["speedup over plain"] == "0.80x (plain 12.50 tok/s, remembered)"
    assert dict(rows)["acceptance rate"] != "nothing drafted"
    paused = GenerationStats(draft_model="d", predicted_tokens_count=9, rounds=9)
    assert dict(stats_rows(paused))["acceptance rate"] == "nothing drafted"  # not 0.0%
    plain = dict(stats_rows(GenerationStats(tokens_per_second=9.0), Baseline(9.0, "x")))
    assert "speedup over plain" not in plain and plain["draft model"] == "none"


def test_a_plain_run_is_remembered_only_when_long_enough():
    plain_speeds.forget()
    plain_speeds.remember("m", GenerationStats(predicted_tokens_count=4, tokens_per_second=20.0))
    assert plain_speeds.baseline_for("m", speculative_stats()) is None
    plain_speeds.remember("m", speculative_stats())  # a speculative run is no baseline
    assert plain_speeds.baseline_for("m", speculative_stats()) is None
    plain_speeds.remember("m", GenerationStats(predicted_tokens_count=40, tokens_per_second=20.0))
    assert plain_speeds.baseline_for("m", speculative_stats()) == Baseline(
        20.0, "remembered from a plain run"
    )
    measured = plain_speeds.baseline_for("m", speculative_stats(baseline_tokens_per_second=9.0))
    assert measured == Baseline(9.0, "this run")  # a baseline of the run itself comes first
    assert plain_speeds.baseline_for("other", speculative_stats()) is None
    plain_speeds.forget()


def test_result_html_and_text_show_the_same_rows():
    stats = speculative_stats()
    result = GenerationResult([TokenEvent(5, "def", "draft", 1, 0.9, 0.8, 1.0)], stats)
    assert rows_to_html(stats_rows(stats)) in result._repr_html_()
    assert stats_to_text(stats).splitlines() == [f"{k}: {v}" for k, v in stats_rows(stats)]
    assert "stop: token limit" in repr(result)


def test_python_writes_the_stats_line_the_widgets_draw():
    """The HTML fallback's stats are the JS `statsLine` markup (styled inline for pages
    without the widget's CSS)."""
    rows = [list(row) for row in stats_rows(speculative_stats())] + [["a <b>", "\"q\" & 'r'"]]
    happy_dom = JS / "node_modules" / "happy-dom" / "lib" / "index.js"
    script = (
        f"import {{ Window }} from {json.dumps(happy_dom.as_uri())};"
        f"import {{ statsLine }} from {json.dumps((JS / 'src/transcript.js').as_uri())};"
        f"const doc = new Window().document;"
        f"console.log(statsLine(doc, {json.dumps(rows)}).outerHTML);"
    )
    done = subprocess.run(
        ["node", "--input-type=module", "-e", script], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    from_python = re.sub(r' style="[^"]*"', "", rows_to_html(rows))
    assert html.unescape(from_python) == html.unescape(done.stdout.strip())
