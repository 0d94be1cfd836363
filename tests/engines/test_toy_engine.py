"""The toy n-gram pair: instant, and exact enough to test the sampling maths statistically."""

from __future__ import annotations

from collections import Counter

import numpy as np
import pytest
from scipy.stats import chisquare

from specdec_jupyter.decoding.drafters import ModelDrafter
from specdec_jupyter.decoding.loop import speculative_decode
from specdec_jupyter.decoding.sampling import SamplingSettings, distribution
from specdec_jupyter.engines.toy import toy_pair
from specdec_jupyter.models.drafts.compat import llamacpp_compatibility
from specdec_jupyter.sessions.session import Session
from specdec_jupyter.settings import RunSettings
from tests.support.recording import RecordingEngine, drain

END = -1


@pytest.fixture
def pair():
    return toy_pair()


def test_the_pair_shares_one_vocabulary(pair):
    main, draft = pair
    assert llamacpp_compatibility(main.vocabulary(), draft.vocabulary()).compatible


def test_text_round_trips_through_tokens(pair):
    main, _ = pair
    tokens = main.tokenize("The draft model proposes, the main model checks.")
    text = b"".join(main.token_bytes(t) for t in tokens).decode()
    assert text == " the draft model proposes, the main model checks."


def test_greedy_tokens_are_the_main_argmax_and_both_sources_appear(pair):
    main, draft = RecordingEngine(pair[0]), pair[1]
    prompt = main.tokenize("when the draft model")
    events, stats = drain(
        speculative_decode(
            main, ModelDrafter(draft), prompt, RunSettings(max_tokens=40, draft_tokens=3)
        )
    )
    for offset, event in enumerate(events):
        assert event.token_id == int(main.predicted[len(prompt) + offset].argmax())
    assert {e.source for e in events} == {"draft", "main"}
    assert stats.rejected_draft_tokens_count > 0


@pytest.mark.parametrize("temperature", [1.0, 0.7])
def test_sampled_text_has_the_main_models_distribution(pair, temperature):
    """The first two tokens drawn with a draft are distributed as the main model's
    p(t1) p(t2 | t1): chi-square over 4000 seeded runs, all paths exercised."""
    main, draft = pair
    settings = SamplingSettings(temperature=temperature)
    prompt = main.tokenize("the main model")
    session = Session(main, draft)
    seen: Counter[tuple[int, int]] = Counter()
    rejected = accepted = 0
    for seed in range(4000):
        result = session.generate(
            "the main model", raw=True, max_tokens=3, draft_tokens=2, seed=seed,
            temperature=temperature,
        )  # fmt: skip
        first_two = [*result.token_ids, END][:2]  # END stands in after an early end
        seen[(first_two[0], first_two[1])] += 1
        rejected += result.stats.rejected_draft_tokens_count
        accepted += result.stats.accepted_draft_tokens_count
    assert rejected > 100 and accepted > 100

    main.rollback(0)
    p1 = distribution(main.evaluate(prompt, n_logits=1)[0], settings)
    expected: dict[tuple[int, int], float] = {}
    for t1 in np.flatnonzero(p1 * 4000 >= 1):
        if main.is_end_of_generation(int(t1)):
            if p1[t1] * 4000 >= 5:
                expected[(int(t1), END)] = p1[t1] * 4000
            continue
        main.rollback(len(prompt))
        p2 = distribution(main.evaluate([int(t1)], n_logits=1)[0], settings)
        for t2 in np.flatnonzero(p1[t1] * p2 * 4000 >= 5):
            expected[(int(t1), int(t2))] = p1[t1] * p2[t2] * 4000
    observed = [seen[key] for key in expected]
    counts = [*observed, 4000 - sum(observed)]
    wanted = [*expected.values(), 4000 - sum(expected.values())]
    assert len(expected) >= 5
    assert chisquare(counts, wanted).pvalue > 1e-3
