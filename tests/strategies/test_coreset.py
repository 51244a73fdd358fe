"""Greedy k-center matches a brute-force version with a full distance matrix."""

import numpy as np
import pytest
import torch
from skorch import NeuralNetClassifier
from torch.utils.data import TensorDataset

from skdynal import CoresetSampler
from skdynal.strategies._coreset import _min_squared_distances, k_center_greedy


def brute_force_k_center(pool, centers, n, first=None):
    """Textbook greedy k-center with the explicit (pool + centers) distance matrix."""
    points = np.vstack([pool, centers]) if centers is not None else pool
    distances = np.sqrt(((points[:, None, :] - points[None, :, :]) ** 2).sum(-1))
    n_pool = len(pool)
    center_ids = list(range(n_pool, len(points)))
    chosen, radii = [], []
    for step in range(n):
        if step == 0 and first is not None:
            pick, radius = first, np.inf
        else:
            nearest = distances[:n_pool][:, center_ids].min(axis=1)
            nearest[chosen] = -1.0
            pick = int(np.argmax(nearest))
            radius = nearest[pick]
        chosen.append(pick)
        radii.append(radius)
        center_ids.append(pick)
    return chosen, radii


def linear_net(n_features, dtype=torch.float64):
    """A single Linear layer: its input, the embedding, is the raw row."""
    net = NeuralNetClassifier(
        torch.nn.Linear,
        module__in_features=n_features,
        module__out_features=3,
        module__dtype=dtype,
        train_split=None,
        verbose=0,
    )
    return net.initialize()


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_matches_brute_force_from_the_labeled_set(seed):
    rng = np.random.RandomState(seed)
    pool, labeled = rng.randn(60, 4), rng.randn(9, 4)
    net = linear_net(4)
    indices, radii = CoresetSampler(batch_size=13, random_state=seed).select(
        net, pool, 12, X_labeled=labeled, y_labeled=np.zeros(9, dtype=np.int64)
    )
    expected, expected_radii = brute_force_k_center(pool, labeled, 12)
    assert indices.tolist() == expected
    np.testing.assert_allclose(radii, expected_radii, rtol=1e-10)
    assert np.all(np.diff(radii) <= 1e-12)  # greedy radii never grow


def test_without_labeled_set_starts_at_a_random_row_then_is_greedy():
    rng = np.random.RandomState(5)
    pool = rng.randn(40, 3)
    net = linear_net(3)
    firsts = set()
    for seed in range(6):
        indices, radii = CoresetSampler(random_state=seed).select(net, pool, 8)
        expected, _ = brute_force_k_center(pool, None, 8, first=int(indices[0]))
        assert indices.tolist() == expected
        assert radii[0] == np.inf
        firsts.add(int(indices[0]))
    assert len(firsts) > 1


def test_farthest_point_first():
    # Labeled set at the origin; pool row 2 is the farthest from it (distance 5).
    pool = np.array([[1.0, 0.0], [0.0, 2.0], [3.0, 4.0], [-1.0, -1.0], [2.9, 3.9]])
    labeled = np.zeros((1, 2))
    indices, radii = CoresetSampler(random_state=0).select(
        linear_net(2), pool, 3, X_labeled=labeled, y_labeled=np.array([0])
    )
    # Then row 1 (distance 2 from the origin, sqrt(13) from row 2 -> 2), not row 4
    # (distance 0.14 from row 2), then row 3 (sqrt(2)).
    assert indices.tolist() == [2, 1, 3]
    np.testing.assert_allclose(radii, [5.0, 2.0, np.sqrt(2.0)])


def test_chunked_distances_equal_explicit():
    rng = np.random.RandomState(0)
    X, C = torch.as_tensor(rng.randn(23, 5)), torch.as_tensor(rng.randn(11, 5))
    explicit = ((X[:, None] - C[None]) ** 2).sum(-1).min(dim=1).values
    for chunk in (1, 4, 7, 1024):
        torch.testing.assert_close(_min_squared_distances(X, C, chunk), explicit)
    rs = np.random.RandomState
    small = k_center_greedy(X, C, 9, rs(3), chunk_rows=4)
    large = k_center_greedy(X, C, 9, rs(3), chunk_rows=1024)
    np.testing.assert_array_equal(small[0], large[0])


def test_duplicates_and_whole_pool():
    pool = np.array([[0.0], [1.0], [1.0], [1.0], [5.0]])
    net = linear_net(1)
    indices, radii = CoresetSampler(random_state=0).select(
        net, pool, 5, X_labeled=np.array([[0.0]]), y_labeled=np.array([0])
    )
    assert indices[0] == 4 and indices[1] in (1, 2, 3)
    assert sorted(indices.tolist()) == [0, 1, 2, 3, 4]
    np.testing.assert_allclose(radii[:2], [5.0, 1.0])
    np.testing.assert_allclose(radii[2:], 0.0)
    # Equal rows 1-3: which one comes second depends on the seed only.
    seconds = {
        int(
            CoresetSampler(random_state=s).select(
                net, pool, 2, X_labeled=np.array([[0.0]]), y_labeled=np.array([0])
            )[0][1]
        )
        for s in range(12)
    }
    assert seconds <= {1, 2, 3} and len(seconds) > 1


def test_dataset_pool_as_the_array_and_with_nan_refused():
    rng = np.random.RandomState(0)
    pool, labeled = rng.randn(30, 4), rng.randn(5, 4)
    net = linear_net(4)
    kwargs = {"X_labeled": labeled, "y_labeled": np.zeros(5, dtype=np.int64)}
    sampler = CoresetSampler(batch_size=8, random_state=0)
    expected = sampler.select(net, pool, 6, **kwargs)
    dataset = TensorDataset(torch.as_tensor(pool), torch.zeros(30))
    got = sampler.select(net, dataset, 6, **kwargs)
    np.testing.assert_array_equal(got[0], expected[0])
    np.testing.assert_array_equal(got[1], expected[1])
    bad = torch.as_tensor(pool).clone()
    bad[17, 2] = float("nan")  # in the third batch
    with pytest.raises(ValueError, match="X_pool contains NaN or infinite values"):
        sampler.select(net, TensorDataset(bad, torch.zeros(30)), 6, **kwargs)
