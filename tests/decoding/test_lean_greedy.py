"""The lean greedy path: argmax and one log-sum-exp per shown token, never a whole softmax,
yet the same tokens and the same p and q as the full softmax gives."""

from __future__ import annotations

import numpy as np
import pytest

from specdec_jupyter.decoding import sampling as sampling_module
from specdec_jupyter.decoding.drafters import ModelDrafter
from specdec_jupyter.decoding.loop import speculative_decode
from specdec_jupyter.decoding.sampling import (
    SamplingSettings,
    choose_token,
    probability_of,
    softmax,
)
from specdec_jupyter.engines.toy import toy_pair
from specdec_jupyter.settings import RunSettings
from tests.support.recording import RecordingEngine, drain

GREEDY = SamplingSettings()


@pytest.mark.parametrize("spread", [0.1, 5.0, 40.0])
def test_probability_of_matches_the_full_softmax(spread):
    logits = (np.random.default_rng(1).standard_normal(151_936) * spread).astype(np.float32)
    full = softmax(logits)
    for token in (int(logits.argmax()), 0, 77_777):
        assert probability_of(logits, token) == pytest.approx(full[token], rel=1e-5, abs=1e-12)


def test_greedy_choice_builds_no_distribution(monkeypatch):
    logits = np.random.default_rng(2).standard_normal(1000).astype(np.float32)
    reference = softmax(logits)

    def refuse(*_args):
        raise AssertionError("greedy must not build a whole distribution")

    monkeypatch.setattr(sampling_module, "distribution", refuse)
    monkeypatch.setattr(sampling_module, "softmax", refuse)
    token, p, probs = choose_token(logits, GREEDY, np.random.default_rng(), 0)
    assert token == int(reference.argmax()) and probs is None
    assert p == pytest.approx(reference[token], rel=1e-6)


def test_sampled_choice_keeps_the_whole_distribution():
    logits = np.random.default_rng(3).standard_normal(50).astype(np.float32)
    settings = SamplingSettings(temperature=0.7, top_k=10)
    token, p, probs = choose_token(logits, settings, np.random.default_rng(0), 0)
    assert probs is not None and p == probs[token] > 0
    assert np.count_nonzero(probs) == 10


def assert_lean_run_matches_full_softmax(main, draft, prompt, k):
    """Every event's token is the main model's argmax where it was verified, its p is the
    full softmax of that row, and a draft token's q the full softmax of the draft's row."""
    main, draft = RecordingEngine(main), RecordingEngine(draft)
    settings = RunSettings(max_tokens=40, draft_tokens=k)
    events, stats = drain(speculative_decode(main, ModelDrafter(draft), prompt, settings))
    assert stats.accepted_draft_tokens_count > 0
    for position, event in enumerate(events, start=len(prompt)):
        row = main.predicted[position]
        assert event.token_id == int(row.argmax())
        assert event.p_main == pytest.approx(softmax(row)[event.token_id], rel=1e-5)
        if event.source == "draft":
            q = softmax(draft.predicted[position])[event.token_id]
            assert event.q_draft == pytest.approx(q, rel=1e-5)


@pytest.mark.parametrize("k", [1, 3])
def test_lean_greedy_on_the_toy_pair(k):
    main, draft = toy_pair()
    prompt = main.tokenize("the draft model proposes")
    assert_lean_run_matches_full_softmax(main, draft, prompt, k)


@pytest.mark.parametrize("k", [2, 4])
def test_lean_greedy_on_the_tiny_pair(tiny_session, k):
    tiny_session.reset()
    prompt = tiny_session.main.tokenize("hello world")
    assert_lean_run_matches_full_softmax(tiny_session.main, tiny_session.draft, prompt, k)
