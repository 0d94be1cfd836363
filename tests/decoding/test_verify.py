"""Verification maths on hand-made distributions."""

import numpy as np
from scipy.stats import chisquare

from specdec_jupyter.decoding.verify import residual_distribution, verify_greedy, verify_sampling


def one_hot_rows(choices: list[int], vocab: int = 6) -> np.ndarray:
    rows = np.zeros((len(choices), vocab), dtype=np.float32)
    rows[np.arange(len(choices)), choices] = 5.0
    return rows


def test_greedy_accepts_the_matching_prefix_and_corrects_the_first_mismatch():
    verdict = verify_greedy([1, 2, 3], one_hot_rows([1, 2, 4, 5]))
    assert (verdict.n_accepted, verdict.next_token, verdict.rejected) == (2, 4, True)
    assert verdict.acceptance == [1.0, 1.0, 0.0]


def test_greedy_full_accept_takes_the_bonus_token():
    verdict = verify_greedy([1, 2], one_hot_rows([1, 2, 5]))
    assert (verdict.n_accepted, verdict.next_token, verdict.rejected) == (2, 5, False)


def test_greedy_with_no_draft_is_plain_argmax():
    verdict = verify_greedy([], one_hot_rows([3]))
    assert (verdict.n_accepted, verdict.next_token, verdict.acceptance) == (0, 3, [])


def test_residual_keeps_only_where_main_exceeds_draft():
    p = np.array([0.5, 0.3, 0.2])
    q = np.array([0.2, 0.5, 0.3])
    np.testing.assert_allclose(residual_distribution(p, q), [1.0, 0.0, 0.0])
    np.testing.assert_allclose(residual_distribution(p, p), p)


def test_rejection_sampling_reproduces_the_main_distribution():
    """The first emitted token of a round must be distributed as p, whatever q is."""
    rng = np.random.default_rng(1)
    p = np.array([0.05, 0.4, 0.25, 0.2, 0.1])
    q = np.array([0.3, 0.1, 0.3, 0.05, 0.25])
    counts = np.zeros(5)
    for _ in range(20000):
        drafted = int(rng.choice(5, p=q))
        verdict = verify_sampling([drafted], [q], [p, p], rng)
        counts[drafted if verdict.n_accepted else verdict.next_token] += 1
    assert chisquare(counts, p * counts.sum()).pvalue > 1e-3


def test_acceptance_is_min_one_p_over_q():
    rng = np.random.default_rng(0)
    p = np.array([0.2, 0.8])
    q = np.array([0.8, 0.2])
    verdict = verify_sampling([1, 0], [q, q], [p, p, p], rng)
    assert verdict.acceptance[0] == 1.0
    if len(verdict.acceptance) > 1:
        assert abs(verdict.acceptance[1] - 0.25) < 1e-12
