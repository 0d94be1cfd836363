"""Plain decoding's speed per main model, remembered for the life of the process, so a
speculative reply can say how it compares with plain decoding without running twice.

A run counts as plain when it had no draft at all; the chat and `%%specdec` record every
finished run here and ask for a baseline for the next. A baseline measured inside a run
(`GenerationStats.baseline_tokens_per_second`) is preferred to a remembered one.
"""

from __future__ import annotations

import threading

from ..decoding.events import GenerationStats
from ..display.stats_layout import Baseline, run_baseline

MIN_TOKENS = 8  # fewer decoded tokens say too little about a model's speed

_speeds: dict[str, float] = {}
_lock = threading.Lock()


def remember(main: str, stats: GenerationStats) -> None:
    """Keep the speed of `main` from a plain run long enough to tell (others are ignored)."""
    plain = stats.draft_model is None and stats.tokens_per_second > 0
    if plain and stats.predicted_tokens_count > MIN_TOKENS:
        with _lock:
            _speeds[main] = stats.tokens_per_second


def baseline_for(main: str, stats: GenerationStats) -> Baseline | None:
    """The baseline to compare a run of `main` with: measured in the run, else remembered."""
    measured = run_baseline(stats)
    if measured is not None:
        return measured
    with _lock:
        speed = _speeds.get(main)
    return Baseline(speed, "remembered from a plain run") if speed else None


def compare_and_remember(main: str, stats: GenerationStats) -> Baseline | None:
    """The baseline of a finished run (`baseline_for`), then the run remembered if plain."""
    baseline = baseline_for(main, stats)
    remember(main, stats)
    return baseline


def forget() -> None:
    """Drop every remembered speed (tests; a machine whose load changed)."""
    with _lock:
        _speeds.clear()
