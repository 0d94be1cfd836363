"""Prompt lookup and the hybrid on the real Qwen2.5-Coder pair, on a prompt whose answer
repeats it: drafts come from the prompt, and greedy output stays the main model's argmax."""

from __future__ import annotations

import pytest
from recording import RecordingEngine, drain

from specdec_jupyter.decoding.drafters import make_drafter
from specdec_jupyter.decoding.loop import GenerationSettings, speculative_decode

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
    settings = GenerationSettings(max_tokens=48, draft_tokens=draft_tokens)
    events, stats = drain(speculative_decode(main, drafter, tokens, settings))
    for offset, event in enumerate(events):
        assert event.token_id == int(main.predicted[len(tokens) + offset].argmax())
    if draft_tokens == 4:
        assert stats.accepted_draft_tokens_count >= 12, "most of the answer is a copy"
        assert stats.acceptance_rate > 0.5
