"""dynamicAL's class-balanced selection: the pseudo classes take turns."""

from pathlib import Path

import numpy as np
import pytest
import torch
from _local_ray import local_ray
from _nets import DigitsMLP, make_net
from sklearn.base import clone

from skdynal import DynamicALSampler
from skdynal._selection import class_balanced_top_k
from skdynal.datasets import load_digits_split

ROOT = Path(__file__).resolve().parents[2]


def test_classes_take_turns_by_hand():
    scores = np.array([9.0, 8.0, 7.0, 1.0, 0.5, 6.0, 5.0])
    labels = np.array([0, 0, 0, 1, 1, 2, 2])
    rng = np.random.RandomState(0)
    # turn 1: best of each class, better scores first: 0 (9), 5 (6), 3 (1);
    # turn 2: 1 (8), 6 (5), 4 (0.5); turn 3: 2 (7)
    np.testing.assert_array_equal(
        class_balanced_top_k(scores, labels, 7, rng), [0, 5, 3, 1, 6, 4, 2]
    )
    np.testing.assert_array_equal(class_balanced_top_k(scores, labels, 4, rng), [0, 5, 3, 1])


def test_ties_are_broken_by_the_seed_and_nan_is_refused():
    scores, labels = np.zeros(6), np.zeros(6, dtype=int)
    picks = [
        tuple(class_balanced_top_k(scores, labels, 3, np.random.RandomState(s))) for s in range(5)
    ]
    assert len(set(picks)) > 1
    assert picks[0] == tuple(class_balanced_top_k(scores, labels, 3, np.random.RandomState(0)))
    with pytest.raises(ValueError):
        class_balanced_top_k(
            np.array([1.0, np.nan]), np.array([0, 1]), 1, np.random.RandomState(0)
        )


@pytest.fixture(scope="module")
def fitted():
    data = load_digits_split(random_state=0)
    X, y = data.X_train[:60], data.y_train[:60]
    net = make_net(DigitsMLP, max_epochs=5).fit(X, y)
    return net, X, y, data.X_train[60:400]


def test_sampler_picks_the_class_balanced_order_of_its_own_scores(fitted):
    net, X, y, X_pool = fitted
    strategy = DynamicALSampler(selection="class_balanced", random_state=0)
    indices, _ = strategy.select(net, X_pool, 25, X_labeled=X, y_labeled=y)
    scores = DynamicALSampler().score(net, X_pool, X_labeled=X, y_labeled=y)
    labels = net.predict_proba(X_pool).argmax(axis=1)
    expected = class_balanced_top_k(scores, labels, 25, np.random.RandomState(0))
    np.testing.assert_array_equal(indices, expected)
    # every predicted class present in the pool gets a turn before any gets a second
    first = labels[indices[: len(np.unique(labels))]]
    assert len(np.unique(first)) == len(np.unique(labels))


def test_sampler_leaves_the_net_untouched(fitted):
    net, X, y, X_pool = fitted
    before = {k: v.clone() for k, v in net.module_.state_dict().items()}
    DynamicALSampler(selection="class_balanced").select(net, X_pool, 5, X_labeled=X, y_labeled=y)
    for key, value in net.module_.state_dict().items():
        assert torch.equal(value, before[key])


@pytest.fixture(scope="module")
def ray_started():
    """A local Ray instance (2 CPUs) whose workers import skdynal and tests/_nets.py."""
    pytest.importorskip("ray")
    with local_ray():
        yield


@pytest.mark.ray
@pytest.mark.slow  # starts a local Ray instance
def test_ray_scorer_gathers_scores_and_pseudo_labels_for_class_balanced_selection(ray_started):
    from skdynal.distributed import RayScorer

    data = load_digits_split(random_state=0)
    X, y = data.X_train[:60].astype(np.float64), data.y_train[:60]
    X_pool = data.X_train[60:400].astype(np.float64)
    net = make_net(DigitsMLP, max_epochs=5, module__dtype=torch.float64).fit(X, y)
    kwargs = {"X_labeled": X, "y_labeled": y}
    strategy = DynamicALSampler(selection="class_balanced", random_state=0)
    # Not ranked by a score: RayScorer cannot merge the shards' top-k, it must gather
    # every row's (score, pseudo label) from the shards and select on the driver.
    assert not strategy.capabilities().ranks_by_score
    # 340 rows in shards of 64 (50 rounded up to the batch size 32): 6 shards, 2 at a time
    ray_scorer = RayScorer(clone(strategy), n_workers=2, shard_size=50)
    indices, scores = ray_scorer.select(net, X_pool, 25, **kwargs)
    local_indices, local_scores = clone(strategy).select(net, X_pool, 25, **kwargs)
    np.testing.assert_array_equal(indices, local_indices)
    np.testing.assert_allclose(scores, local_scores, rtol=1e-12, atol=0)
    # the batch is the class-balanced order of all rows' scores and pseudo labels
    all_scores = RayScorer(DynamicALSampler(), n_workers=2, shard_size=50).score(
        net, X_pool, **kwargs
    )
    labels = net.predict(X_pool)
    expected = class_balanced_top_k(all_scores, labels, 25, np.random.RandomState(0))
    np.testing.assert_array_equal(indices, expected)
    # and it is not the top 25 by score: the pseudo classes took turns
    assert set(indices.tolist()) != set(np.argsort(-all_scores)[:25].tolist())
    first = labels[indices[: len(np.unique(labels))]]
    assert len(np.unique(first)) == len(np.unique(labels))
