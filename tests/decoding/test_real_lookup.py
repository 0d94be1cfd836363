"""Prompt lookup and the hybrid on the real Qwen2.5-Coder pair, on a prompt whose answer
repeats it: drafts come from the prompt, and greedy output stays the main model's argmax."""

from __future__ import annotations

from dataclasses import replace

import pytest

from specdec_jupyter.decoding.drafter_choice import make_drafter
from specdec_jupyter.decoding.loop import speculative_decode
from specdec_jupyter.settings import RunSettings
from tests.support.recording import RecordingEngine, drain

pytestmark = pytest.mark.real

CODE_EDIT = """Here is a Python function:

```python
def mean_and_spread(values, skip_missing=True):
    kept = [v for v in values if v is not None] if skip_missing else list(values)
    if not kept:
        raise ValueError("no values to summarize")
    mean = sum(kept) / len(kept)
    spread = max(kept) - min(kept)
    return mean, spread
```

Rename the parameter `values` to `samples` and return the whole function. Write code only."""


@pytest.mark.parametrize(("mode", "draft_tokens"), [("lookup", 4), ("hybrid", "auto")])
def test_lookup_drafts_code_it_has_seen_and_keeps_greedy_exact(qwen_session, mode, draft_tokens):
    qwen_session.reset()
    main = RecordingEngine(qwen_session.main)
    tokens = qwen_session.prompt_tokens(CODE_EDIT)
    drafter = make_drafter(mode, qwen_session.draft)
    settings = RunSettings(max_tokens=48, draft_tokens=draft_tokens)
    events, stats = drain(speculative_decode(main, drafter, tokens, settings))
    for offset, event in enumerate(events):
        assert event.token_id == int(main.predicted[len(tokens) + offset].argmax())
    if draft_tokens == 4:
        assert stats.accepted_draft_tokens_count >= 12, "most of the answer is a copy"
        assert stats.acceptance_rate > 0.5


TYPE_HINTS_EDIT = """Add type hints to this function and return the whole function. Write code only.

```python
def clamp_all(values, low, high, skip_none=False):
    result = []
    for value in values:
        if value is None and skip_none:
            continue
        result.append(min(max(value, low), high))
    return result
```"""


def test_an_edit_under_lookup_gives_exactly_plains_greedy_tokens(qwen_session):
    """Drafts only change speed: the edit-aware copier's output is plain decoding's, token for
    token, and the unchanged parts were drafted (the copy re-aligns after each added hint)."""
    tokens = qwen_session.prompt_tokens(TYPE_HINTS_EDIT)
    settings = RunSettings(max_tokens=96)
    qwen_session.reset()
    plain, _ = drain(speculative_decode(qwen_session.main, None, tokens, settings))
    qwen_session.reset()
    drafter = make_drafter("lookup", None)
    fixed_k = replace(settings, draft_tokens=4)  # auto follows the clock; this test must not
    drafted, stats = drain(speculative_decode(qwen_session.main, drafter, tokens, fixed_k))
    assert [e.token_id for e in drafted] == [e.token_id for e in plain]
    assert stats.accepted_draft_tokens_count >= len(drafted) // 3, "the unchanged parts are copied"
