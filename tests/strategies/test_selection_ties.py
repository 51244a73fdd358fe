"""One tie rule for every top-k: decreasing score, then increasing tie key
(``skdynal._selection.rank_by_score``); the keys are drawn as each selection always drew
them, so a seed picks the same rows as before."""

import numpy as np

from skdynal._selection import (
    class_balanced_top_k,
    permutation_ranks,
    rank_by_score,
    select_top_k,
)


def test_rank_by_score_orders_by_score_then_tie_key_then_first_key():
    scores = np.array([1.0, 3.0, 3.0, -np.inf, 1.0])
    keys = np.array([4, 2, 1, 0, 3])
    np.testing.assert_array_equal(rank_by_score(scores, keys), [2, 1, 4, 0, 3])
    first = np.array([0, 1, 1, 0, 0])
    np.testing.assert_array_equal(rank_by_score(scores, keys, first=first), [4, 0, 3, 2, 1])


def test_top_k_breaks_ties_by_the_seeded_permutation():
    for seed in range(5):
        permutation = np.random.RandomState(seed).permutation(12)
        picks = select_top_k(np.zeros(12), 12, np.random.RandomState(seed))
        np.testing.assert_array_equal(picks, permutation)
        ranks = permutation_ranks(12, np.random.RandomState(seed))
        np.testing.assert_array_equal(ranks[permutation], np.arange(12))


def test_top_k_takes_larger_scores_before_ties():
    scores = np.array([0.0, 2.0, 1.0, 2.0, 1.0, 0.0])
    picks = select_top_k(scores, 4, np.random.RandomState(0))
    assert set(picks[:2]) == {1, 3} and set(picks[2:]) == {2, 4}


def test_class_balanced_breaks_ties_by_one_uniform_draw_per_row():
    for seed in range(5):
        tie = np.random.RandomState(seed).random_sample(10)
        picks = class_balanced_top_k(np.zeros(10), np.zeros(10), 10, np.random.RandomState(seed))
        np.testing.assert_array_equal(picks, np.argsort(tie))
