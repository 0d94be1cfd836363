"""A seed fixes the text: the same seed and settings give the same tokens whatever k the
policy picks, however the engines' timings come out, and the same as plain sampling."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from specdec_jupyter import load
from specdec_jupyter.decoding import round as round_module
from specdec_jupyter.decoding.sampling import KeyedNoise

PROMPT = "when the draft model"
SEEDED = {"temperature": 0.8, "seed": 42, "max_tokens": 60, "raw": True}


@pytest.fixture(scope="module")
def toy():
    return load("toy-trigram", "toy-bigram", progress=False)


def _tokens(session, **options) -> list[int]:
    return session.generate(PROMPT, **{**SEEDED, **options}).token_ids


@pytest.mark.parametrize("session_name", ["toy", "tiny_exact_session"])
def test_any_k_gives_the_text_plain_sampling_gives(session_name, request):
    session = request.getfixturevalue(session_name)
    plain = _tokens(session, use_draft=False)
    for k in (1, 3, 8, "auto"):
        assert _tokens(session, draft_tokens=k) == plain, f"k={k}"
    assert _tokens(session, seed=43, use_draft=False) != plain, "another seed, another text"


def _fake_clock(costs: tuple[float, ...]):
    """perf_counter for run_round, which reads it before drafting, after drafting and after
    verifying: each call advances by the next cost of the cycle, so drafting and verifying
    seem to cost what the table says, the same on every run."""
    now = itertools.accumulate(itertools.cycle(costs))
    return lambda: next(now)


def _runs_under_clocks(session, monkeypatch) -> tuple[set[str], set[tuple[int, ...]]]:
    """The texts and draft lengths of one seeded run under each of three clocks."""
    texts, lengths = set(), set()
    for costs in [(0.0, 0.0001, 0.05), (0.0, 0.05, 0.001), (0.0, 0.002, 0.01)]:
        monkeypatch.setattr(round_module, "perf_counter", _fake_clock(costs))
        result = session.generate(PROMPT, **SEEDED)
        texts.add(result.text)
        lengths.add(tuple(result.stats.draft_lengths))
    return texts, lengths


@pytest.mark.parametrize("session_name", ["toy", "tiny_exact_session"])
def test_auto_reproduces_whatever_the_timings(session_name, request, monkeypatch):
    session = request.getfixturevalue(session_name)
    assert session.main.exact
    texts, lengths = _runs_under_clocks(session, monkeypatch)
    assert len(lengths) > 1, "the timings led the policy to other draft lengths"
    assert len(texts) == 1, "yet the text is the same"


def test_on_a_model_that_is_not_exact_a_seed_takes_the_clock_out(tiny_session, monkeypatch):
    """F32 matrices change their logits with a call's size: there the draft lengths, and so
    the text, must not follow the timings."""
    assert not tiny_session.main.exact
    texts, lengths = _runs_under_clocks(tiny_session, monkeypatch)
    assert len(lengths) == 1 and len(texts) == 1


def test_keyed_noise_draws_from_the_distribution():
    probs = np.array([0.5, 0.3, 0.15, 0.05])
    counts = np.bincount([KeyedNoise(seed).choose(probs, 7) for seed in range(4000)], minlength=4)
    assert np.allclose(counts / 4000, probs, atol=0.03)


def test_keyed_noise_depends_on_seed_and_position_only():
    probs = np.full(1000, 1 / 1000)
    first = [KeyedNoise(5).choose(probs, position) for position in range(50)]
    assert [KeyedNoise(5).choose(probs, p) for p in reversed(range(50))][::-1] == first
    assert len(set(first)) > 40, "positions get independent draws"
