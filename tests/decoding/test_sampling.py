import warnings

import numpy as np
import pytest

from specdec_jupyter.decoding.sampling import SamplingSettings, distribution, draw, softmax


def test_greedy_distribution_is_plain_softmax():
    logits = np.array([1.0, 2.0, 3.0])
    np.testing.assert_allclose(distribution(logits, SamplingSettings()), softmax(logits))


def test_temperature_sharpens_and_flattens():
    logits = np.array([1.0, 2.0, 3.0])
    cold = distribution(logits, SamplingSettings(temperature=0.5))
    hot = distribution(logits, SamplingSettings(temperature=2.0))
    assert cold[2] > softmax(logits)[2] > hot[2]


def test_top_k_keeps_k_tokens():
    probs = distribution(np.array([4.0, 3.0, 2.0, 1.0]), SamplingSettings(1.0, top_k=2))
    assert np.count_nonzero(probs) == 2 and probs[:2].sum() == pytest.approx(1.0)


def test_top_p_keeps_the_smallest_set_reaching_p():
    logits = np.log(np.array([0.5, 0.3, 0.15, 0.05]))
    probs = distribution(logits, SamplingSettings(1.0, top_p=0.75))
    np.testing.assert_allclose(probs, [0.5 / 0.8, 0.3 / 0.8, 0.0, 0.0])


def test_draw_never_picks_a_zero_probability_token():
    rng = np.random.default_rng(0)
    probs = np.array([0.0, 0.5, 0.0, 0.5, 0.0])
    assert {draw(probs, rng) for _ in range(500)} == {1, 3}


def test_a_tiny_temperature_is_greedy_not_nan():
    logits = np.array([1.0, 3.0, 2.0], dtype=np.float32)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        probs = distribution(logits, SamplingSettings(temperature=1e-308))
    assert probs.tolist() == [0.0, 1.0, 0.0]


def test_min_p_keeps_the_tokens_as_likely_as_a_share_of_the_likeliest():
    logits = np.log(np.array([0.5, 0.3, 0.15, 0.05]))
    probs = distribution(logits, SamplingSettings(1.0, min_p=0.25))  # keeps p >= 0.125
    np.testing.assert_allclose(probs, [0.5 / 0.95, 0.3 / 0.95, 0.15 / 0.95, 0.0])
    assert distribution(logits, SamplingSettings(1.0, min_p=1.0))[0] == pytest.approx(1.0)
