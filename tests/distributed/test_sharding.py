"""Sharding and the exact merge of per-shard top-k, without Ray; Ray's absence."""

import sys

import numpy as np
import pytest
from _nets import fitted_net

from skdynal import EGLSampler
from skdynal._selection import select_top_k
from skdynal.distributed import (
    RayScorer,
    merge_top_k,
    shard_bounds,
    shard_top_k,
    tie_break_ranks,
)


def sharded_top_k(scores, k, seed, bounds):
    ranks = tie_break_ranks(len(scores), np.random.RandomState(seed))
    candidates = []
    for start, stop in bounds:
        best = shard_top_k(scores[start:stop], ranks[start:stop], k)
        candidates.append((start + best, scores[start:stop][best], ranks[start:stop][best]))
    return merge_top_k(candidates, k)


@pytest.mark.parametrize("seed", range(5))
@pytest.mark.parametrize("shard_size", [1, 7, 64, 1000])
def test_merged_top_k_equals_local_selection_with_ties(seed, shard_size):
    rng = np.random.RandomState(100 + seed)
    # Few distinct values: most of the top-k is decided by tie-breaking.
    scores = rng.randint(0, 6, size=300).astype(np.float64)
    for k in (1, 5, 40, 300):
        expected = select_top_k(scores, k, np.random.RandomState(seed))
        indices, chosen = sharded_top_k(scores, k, seed, shard_bounds(300, shard_size))
        np.testing.assert_array_equal(indices, expected)
        np.testing.assert_array_equal(chosen, scores[expected])


def test_tie_breaking_depends_on_the_seed():
    scores = np.zeros(50)
    bounds = shard_bounds(50, 8)
    first, _ = sharded_top_k(scores, 5, 0, bounds)
    second, _ = sharded_top_k(scores, 5, 1, bounds)
    assert first.tolist() != second.tolist()


def test_tie_break_ranks_invert_the_permutation():
    permutation = np.random.RandomState(3).permutation(20)
    ranks = tie_break_ranks(20, np.random.RandomState(3))
    np.testing.assert_array_equal(ranks[permutation], np.arange(20))


def test_shard_top_k_rejects_nan():
    with pytest.raises(ValueError, match="NaN"):
        shard_top_k(np.array([1.0, np.nan]), np.array([0, 1]), 1)


def test_shard_bounds_cover_the_rows_at_batch_multiples():
    bounds = shard_bounds(1000, 100, batch_size=32)
    assert bounds[0] == (0, 128)
    assert all(start % 32 == 0 for start, _ in bounds)
    assert [stop for _, stop in bounds[:-1]] == [start for start, _ in bounds[1:]]
    assert bounds[-1][1] == 1000
    assert shard_bounds(10, 3) == [(0, 3), (3, 6), (6, 9), (9, 10)]


@pytest.mark.parametrize("shard_size", [0, -3, 2.5, True])
def test_shard_bounds_rejects_bad_sizes(shard_size):
    with pytest.raises((ValueError, TypeError), match="shard_size"):
        shard_bounds(10, shard_size)


def test_missing_ray_names_the_extra(monkeypatch, labeled_and_pool):
    X_lab, y_lab, X_pool = labeled_and_pool
    net = fitted_net(X_lab, y_lab)
    monkeypatch.setitem(sys.modules, "ray", None)
    with pytest.raises(ImportError, match=r'pip install "skdynal\[ray\]"'):
        RayScorer(EGLSampler()).select(net, X_pool, 3)
