"""What Python sends the widgets' front end, written where vitest reads it
(js/tests/fixtures/from_python.json): the wire format (a token, a round, stats, a regenerated
reply with its versions, as sessions/wire.py writes them) and the settings forms with their
defaults, as the widgets make them. js/tests/wire.test.js checks the wire part against the JS
typedefs (js/src/wire.js), field by field both ways; a pytest test keeps the file equal to what
Python writes now, so a field one side does not know fails a test. Regenerate the file with
`python -m tests.support.js_fixture`."""

from __future__ import annotations

import json
from typing import Any

from specdec_jupyter.decoding.events import GenerationStats, TokenEvent
from specdec_jupyter.display.stats_layout import Baseline
from specdec_jupyter.sessions.wire import reply_message, stats_to_dict, token_to_dict
from specdec_jupyter.widgets.chat import widget as chat
from specdec_jupyter.widgets.chat.versions import add_version
from specdec_jupyter.widgets.teach import widget as teach
from tests.support import ROOT

FIXTURE = ROOT / "js" / "tests" / "fixtures" / "from_python.json"

EVENTS = [
    TokenEvent(9, "def", "main", 0, 0.91, None, None, "first"),
    TokenEvent(12, " quick", "draft", 1, 0.8, 0.7, 1.0, "accepted", drafted_as=(" qu", "ick")),
    TokenEvent(13, "sort", "main", 1, 0.6, 0.2, None, "correction", ("_sort", "(")),
]
STATS = GenerationStats(
    draft_model="qwen2.5-coder-0.5b",
    stop_reason="maxPredictedTokensReached",
    prompt_tokens_count=12,
    predicted_tokens_count=3,
    time_to_first_token=0.05,
    generation_time=0.1,
    tokens_per_second=20.0,
    total_draft_tokens_count=3,
    accepted_draft_tokens_count=1,
    rejected_draft_tokens_count=1,
    ignored_draft_tokens_count=1,
    rounds=1,
    draft_lengths=[3],
    draft_kinds=["model"],
    baseline_tokens_per_second=16.0,
    backend="llama.cpp on the CPU, 2 threads",
    auto_note="drafted on 1 of 1 rounds: a draft token costs 0.5 of a main-model call here",
)


def wire() -> dict[str, Any]:
    """One of each wire shape, every field filled."""
    reply = {"main_model": "qwen2.5-coder-1.5b", "draft_model": "qwen2.5-coder-0.5b"}
    settings = chat.DEFAULT_SETTINGS
    first = reply_message(EVENTS, STATS, settings=settings, error="stopped", **reply)
    second = reply_message(
        EVENTS[:2],
        STATS,
        settings=settings,
        error="context full",
        baseline=Baseline(16.0, "this run"),
        **reply,
    )
    message = add_version(first, second)
    return {
        "token": token_to_dict(EVENTS[2]),
        "round": message["rounds"][0],
        "stats": stats_to_dict(STATS),
        "message": message,
        "user": {"role": "user", "content": "Write a quicksort."},
    }


def from_python() -> dict[str, Any]:
    return {
        "wire": wire(),
        "chat": {
            "setting_fields": chat.SETTING_FIELDS,
            "settings": chat.DEFAULT_SETTINGS,
            "suggestions": chat.SUGGESTIONS,
        },
        "teach": {"setting_fields": teach.SETTING_FIELDS, "settings": teach.DEFAULTS},
    }


def written() -> str:
    return json.dumps(from_python(), indent=1, ensure_ascii=False) + "\n"


if __name__ == "__main__":
    FIXTURE.write_text(written(), encoding="utf-8")
