"""The speculative loop end to end on the tiny generated pair: fast, and every path runs."""

from __future__ import annotations

from collections import Counter

import numpy as np
import pytest

from specdec_jupyter.decoding.drafters import ModelDrafter
from specdec_jupyter.decoding.loop import speculative_decode
from specdec_jupyter.decoding.sampling import SamplingSettings, distribution
from specdec_jupyter.errors import SpecDecError
from specdec_jupyter.settings import RunSettings
from tests.support.fit import fit_pvalue
from tests.support.recording import RecordingEngine, drain

PROMPT = "hello world"


def run(session, prompt_tokens, *, drafter=True, main=None, should_stop=None, **settings):
    main = main or session.main
    draft = ModelDrafter(session.draft) if drafter else None
    generator = speculative_decode(main, draft, prompt_tokens, RunSettings(**settings), should_stop)
    return drain(generator)


def assert_counts_add_up(stats, events):
    assert stats.accepted_draft_tokens_count == sum(e.source == "draft" for e in events)
    assert stats.total_draft_tokens_count == (
        stats.accepted_draft_tokens_count
        + stats.rejected_draft_tokens_count
        + stats.ignored_draft_tokens_count
    )
    assert stats.ignored_draft_tokens_count >= 0


@pytest.mark.parametrize("k", [1, 2, 4])
def test_greedy_emits_the_main_argmax_of_each_verification_pass(tiny_session, k):
    tiny_session.reset()
    main = RecordingEngine(tiny_session.main)
    tokens = tiny_session.main.tokenize(PROMPT)
    events, stats = run(tiny_session, tokens, main=main, max_tokens=60, draft_tokens=k)
    for offset, event in enumerate(events):
        assert event.token_id == int(main.predicted[len(tokens) + offset].argmax())
    sources = Counter(e.source for e in events)
    assert sources["draft"] > 0 and sources["main"] > 0
    assert stats.rejected_draft_tokens_count > 0, "the perturbed draft must be wrong sometimes"
    assert_counts_add_up(stats, events)


def test_plain_decoding_runs_through_the_same_loop(tiny_session):
    tiny_session.reset()
    tokens = tiny_session.main.tokenize(PROMPT)
    events, stats = run(tiny_session, tokens, drafter=False, max_tokens=20)
    assert {e.source for e in events} == {"main"}
    assert stats.draft_model is None and stats.rounds == len(events) - 1
    assert stats.total_draft_tokens_count == 0


def test_rollback_restores_the_cache_exactly(tiny_session):
    engine = tiny_session.main
    engine.rollback(0)
    tokens = engine.tokenize("hello world from the draft model")
    before = engine.evaluate(tokens, n_logits=1)[0]
    engine.rollback(3)
    assert engine.tokens == tokens[:3]
    after = engine.evaluate(tokens[3:], n_logits=1)[0]
    np.testing.assert_allclose(after, before, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("filters", [{}, {"min_p": 0.1}, {"top_k": 5, "top_p": 0.9}])
def test_sampling_keeps_the_main_models_distribution(tiny_session, filters):
    """Token 2 is a verified draft token or a residual correction; given token 1 it must be
    distributed as the main model's p (chi-square over 3000 seeded runs), p filtered as the
    loop filters both models' distributions (min-p, top-k, top-p) when asked to."""
    settings = SamplingSettings.of(RunSettings(temperature=1.0, **filters))
    tokens = tiny_session.main.tokenize(PROMPT)
    pairs = []
    rejected = 0
    for seed in range(3000):
        events, stats = run(
            tiny_session, tokens, max_tokens=3, draft_tokens=1, seed=seed, temperature=1.0,
            **filters,
        )  # fmt: skip
        pairs.append((events[0].token_id, events[1].token_id))
        rejected += stats.rejected_draft_tokens_count
    assert 0 < rejected < 3000, "both the accept and the reject path must run"
    first, _ = Counter(a for a, _ in pairs).most_common(1)[0]
    observed = Counter(b for a, b in pairs if a == first)
    main = tiny_session.main
    main.rollback(0)
    p = distribution(main.evaluate([*tokens, first], n_logits=1)[0], settings)
    assert all(p[token] > 0 for token in observed), "a token the filters cut was emitted"
    assert fit_pvalue(observed, p) > 1e-3


def test_a_stop_inside_a_draft_counts_the_rest_as_ignored(tiny_session):
    tiny_session.reset()
    tokens = tiny_session.main.tokenize(PROMPT)
    events, _ = run(tiny_session, tokens, max_tokens=60, draft_tokens=4)
    # a draft token accepted with more accepted draft tokens after it in the same round
    index = next(
        i
        for i in range(1, len(events) - 1)
        if events[i].source == "draft"
        and events[i + 1].source == "draft"
        and events[i + 1].round == events[i].round
        and events[i].text.strip()
        and events[i].text not in "".join(e.text for e in events[:i])
    )
    stop = events[index].text
    tiny_session.reset()
    cut, stats = run(tiny_session, tokens, max_tokens=60, draft_tokens=4, stop=(stop,))
    assert stats.stop_reason == "stopStringFound"
    assert "".join(e.text for e in cut) == "".join(e.text for e in events[:index])
    assert stats.ignored_draft_tokens_count >= 1
    assert_counts_add_up(stats, cut)


def test_end_of_generation_stops_with_an_empty_final_event(tiny_session):
    tiny_session.reset()
    result = tiny_session.generate("hello. world.", max_tokens=120, raw=True)
    assert result.stats.stop_reason == "eosFound"
    assert result.events[-1].text == ""
    assert tiny_session.main.is_end_of_generation(result.events[-1].token_id)


def test_max_tokens_is_exact_and_no_draft_goes_past_it(tiny_session):
    tiny_session.reset()
    tokens = tiny_session.main.tokenize(PROMPT)
    events, stats = run(tiny_session, tokens, max_tokens=7, draft_tokens=5)
    assert len(events) == 7 and stats.stop_reason == "maxPredictedTokensReached"
    assert_counts_add_up(stats, events)


def test_cancel_between_rounds_keeps_what_was_generated(tiny_session):
    tiny_session.reset()
    polls = iter(range(100))
    stop_after_three_rounds = lambda: next(polls) >= 3  # noqa: E731
    result = tiny_session.generate(
        PROMPT, raw=True, max_tokens=100, draft_tokens=4, should_stop=stop_after_three_rounds
    )
    assert result.stats.stop_reason == "userStopped"
    assert result.stats.rounds == 3 and 4 <= len(result.events) <= 1 + 3 * 4
    assert result.text


def test_chat_prompt_goes_through_the_models_template(tiny_session):
    tokens = tiny_session.prompt_tokens("hello", system="be brief")
    text = b"".join(tiny_session.main.token_bytes(t) for t in tokens)
    im_start = tiny_session.main.tokenize("<|im_start|>")
    assert tokens.count(im_start[0]) == 3  # system, user, assistant
    assert b"be brief" in text and b"hello" in text


def test_a_second_generation_on_a_busy_session_is_refused(tiny_session):
    first = tiny_session.stream(PROMPT, raw=True, max_tokens=50)
    next(first)
    with pytest.raises(SpecDecError, match="already running"):
        next(tiny_session.stream(PROMPT, raw=True, max_tokens=5))
    first.close()
    assert tiny_session.generate(PROMPT, raw=True, max_tokens=3).stats.predicted_tokens_count == 3


def test_result_html_shades_draft_tokens_green(tiny_session):
    tiny_session.reset()
    result = tiny_session.generate(PROMPT, raw=True, max_tokens=40, draft_tokens=3)
    html = result._repr_html_()
    assert 'class="specdec-draft specdec-kind-accepted"' in html and "34, 197, 94)," in html
    assert "accepted" in html and "tokens/s" in html
