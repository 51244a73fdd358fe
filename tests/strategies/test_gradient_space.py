"""dynamicAL's batch in gradient space: k-means++, farthest-first, power and soft-rank.

Every selection is checked against a brute-force loop that materialises each pool row's
pseudo-label gradient over the whole network with ``torch.func`` and measures distances
directly, with the same random draws.
"""

import math

import numpy as np
import pytest
import torch
from _nets import DigitsCNN, DigitsMLP, make_net
from skorch import NeuralNetBinaryClassifier
from torch.func import functional_call, grad, vmap

from skdynal import DynamicALSampler
from skdynal._selection import gumbel_top_k, kmeans_plusplus_from_distances, select_top_k
from skdynal._validation import InvalidParameterError
from skdynal.datasets import load_digits_split
from skdynal.gradients import loss_gradient_factors, tangent_kernel

GAMMA = 2.0


def _loss(module):
    """The net's loss as a function of outputs and targets (NLL of probabilities for a
    module ending in a softmax layer, cross-entropy of logits otherwise)."""
    if any(isinstance(m, torch.nn.Softmax) for m in module.modules()):
        return lambda out, target: torch.nn.functional.nll_loss(
            out.log(), target, reduction="none"
        )
    return lambda out, target: torch.nn.functional.cross_entropy(out, target, reduction="none")


def _pseudo_loss(module):
    loss = _loss(module)
    return lambda out: loss(out, out.argmax(-1))


def _flat_gradients(module, X, y=None):
    """Per-sample gradients of the loss at ``y`` (pseudo labels when None), ``(n, P)``."""
    params = {k: v.detach() for k, v in module.named_parameters()}
    loss = _loss(module)

    def single(p, x, target):
        out = functional_call(module, p, (x[None],))
        return loss(out, out.argmax(-1) if target is None else target[None])[0]

    if y is None:
        grads = vmap(grad(lambda p, x: single(p, x, None)), in_dims=(None, 0))(params, X)
    else:
        grads = vmap(grad(single), in_dims=(None, 0, 0))(params, X, y)
    return torch.cat([g.reshape(len(X), -1) for g in grads.values()], dim=1)


def _brute_force(net, X_pool, X_labeled, y_labeled):
    """``(g, Delta, ||g - c||²)`` from materialised gradients, float64."""
    module = net.module_.eval()
    X_pool = torch.as_tensor(X_pool)
    g = _flat_gradients(module, X_pool)
    G = _flat_gradients(module, torch.as_tensor(X_labeled), torch.as_tensor(y_labeled)).sum(0)
    delta = (g * g).sum(1) + GAMMA * (g @ G)
    center = -(GAMMA / 2) * G
    sq_to_center = ((g - center) ** 2).sum(1)
    return g, delta.numpy(), sq_to_center.numpy()


def _reference_kmeans(g, sq_to_center, n_instances, seed, greedy):
    """k-means++ / farthest-first from the center, distances from the gradients themselves."""
    rng = np.random.RandomState(seed)
    nearest = sq_to_center.copy()
    chosen, distances = [], []
    for step in range(n_instances):
        if step:
            to_last = ((g - g[chosen[-1]]) ** 2).sum(1).numpy()
            nearest = np.minimum(nearest, to_last)
            nearest[chosen] = 0.0
        if greedy or step == 0:
            masked = nearest.copy()
            masked[chosen] = -np.inf
            index = int(np.argmax(masked))
        else:
            index = rng.choice(len(nearest), p=nearest / nearest.sum())
        chosen.append(index)
        distances.append(nearest[index])
    return np.array(chosen), np.array(distances)


@pytest.fixture(scope="module", params=["mlp-nll", "bn-cnn"])
def fitted(request):
    data = load_digits_split(random_state=0)
    torch.manual_seed(0)
    if request.param == "mlp-nll":
        module, X, X_pool = DigitsMLP, data.X_train[:50], data.X_train[50:230]
        net = make_net(
            module,
            criterion=torch.nn.NLLLoss,
            module__probabilities=True,
            module__dtype=torch.float64,
            max_epochs=5,
        )
    else:
        images = data.X_train.reshape(-1, 1, 8, 8)
        module, X, X_pool = DigitsCNN, images[:50], images[50:170]
        net = make_net(module, module__dtype=torch.float64, max_epochs=5)
    y = data.y_train[:50]
    net.fit(X.astype(np.float64), y)
    return net, X.astype(np.float64), y, X_pool.astype(np.float64)


def test_loss_gradient_factors_give_the_gram_matrix_of_the_gradients(fitted):
    net, _, _, X_pool = fitted
    module = net.module_.eval()
    X = torch.as_tensor(X_pool[:12])
    factors = loss_gradient_factors(module, _pseudo_loss(module), X)
    g = _flat_gradients(module, X)
    expected = g @ g.T
    np.testing.assert_allclose(
        tangent_kernel(factors, factors, "trace").numpy(),
        expected.numpy(),
        rtol=1e-9,
        atol=1e-12 * float(expected.abs().max()),
    )
    np.testing.assert_allclose(
        factors.outputs[:, 0].detach().numpy(), _pseudo_loss(module)(module(X)).detach()
    )


@pytest.mark.parametrize("selection", ["kmeans++", "farthest_first"])
def test_pairwise_selection_matches_the_brute_force_loop(fitted, selection):
    net, X, y, X_pool = fitted
    g, delta, sq_to_center = _brute_force(net, X_pool, X, y)
    indices, distances = DynamicALSampler(gamma=GAMMA, selection=selection, random_state=3).select(
        net, X_pool, 15, X_labeled=X, y_labeled=y
    )
    expected, expected_distances = _reference_kmeans(
        g, sq_to_center, 15, seed=3, greedy=selection == "farthest_first"
    )
    np.testing.assert_array_equal(indices, expected)
    np.testing.assert_allclose(distances, expected_distances, rtol=1e-6)
    # the first pick is the paper's top-1 Delta: the row farthest from c
    assert indices[0] == np.argmax(delta)
    # the brute-force identity the selection relies on: Delta + ||c||² = ||g - c||²
    np.testing.assert_allclose(
        sq_to_center - delta, np.full_like(delta, (sq_to_center - delta).mean()), rtol=1e-9
    )


def test_candidates_are_the_largest_scores(fitted):
    net, X, y, X_pool = fitted
    g, delta, sq_to_center = _brute_force(net, X_pool, X, y)
    indices, distances = DynamicALSampler(
        selection="kmeans++", n_candidates=40, random_state=5
    ).select(net, X_pool, 10, X_labeled=X, y_labeled=y)
    rng = np.random.RandomState(5)
    candidates = select_top_k(delta, 40, rng)
    # the reference run continues the same random stream after the candidate draw
    nearest = sq_to_center[candidates].copy()
    chosen, chosen_distances = [], []
    for step in range(10):
        if step:
            to_last = ((g[candidates] - g[candidates[chosen[-1]]]) ** 2).sum(1).numpy()
            nearest = np.minimum(nearest, to_last)
            nearest[chosen] = 0.0
            index = rng.choice(len(nearest), p=nearest / nearest.sum())
        else:
            index = int(np.argmax(nearest))
        chosen.append(index)
        chosen_distances.append(nearest[index])
    np.testing.assert_array_equal(indices, candidates[chosen])
    np.testing.assert_allclose(distances, chosen_distances, rtol=1e-6)
    assert set(indices) <= set(np.argsort(-delta)[:40])


def test_power_samples_in_proportion_to_the_squared_distance_to_the_center(fitted):
    net, X, y, X_pool = fitted
    _, _, sq_to_center = _brute_force(net, X_pool, X, y)
    indices, _ = DynamicALSampler(selection="power", beta=2.0, random_state=7).select(
        net, X_pool, 12, X_labeled=X, y_labeled=y
    )
    expected, _ = gumbel_top_k(2.0 * np.log(sq_to_center), 12, np.random.RandomState(7))
    np.testing.assert_array_equal(indices, expected)


def test_softrank_samples_by_the_rank_of_the_score(fitted):
    net, X, y, X_pool = fitted
    _, delta, _ = _brute_force(net, X_pool, X, y)
    indices, _ = DynamicALSampler(selection="softrank", random_state=2).select(
        net, X_pool, 12, X_labeled=X, y_labeled=y
    )
    rng = np.random.RandomState(2)
    ranks = np.empty(len(delta))
    ranks[select_top_k(delta, len(delta), rng)] = np.arange(1, len(delta) + 1)
    expected, _ = gumbel_top_k(-np.log(ranks), 12, rng)
    np.testing.assert_array_equal(indices, expected)


def test_gamma_zero_measures_from_the_origin(fitted):
    # gamma = 0: c = 0, so the first distances are ||g_u||² (expected gradient length)
    net, _, _, X_pool = fitted
    g = _flat_gradients(net.module_.eval(), torch.as_tensor(X_pool))
    indices, distances = DynamicALSampler(
        gamma=0.0, selection="farthest_first", random_state=0
    ).select(net, X_pool, 6)
    expected, expected_distances = _reference_kmeans(
        g, (g * g).sum(1).numpy(), 6, seed=0, greedy=True
    )
    np.testing.assert_array_equal(indices, expected)
    np.testing.assert_allclose(distances, expected_distances, rtol=1e-6)


def test_kmeans_plusplus_by_hand():
    # points on a line: 0, 1, 10, 11 with the fixed center at 5 (squared distances 25, 16,
    # 25, 36): the first pick is 11 (index 3), then greedy takes the farthest from {5, 11}:
    # row 0 (25 from the center) before row 1 (16) and row 2 (1 from 11).
    points = np.array([0.0, 1.0, 10.0, 11.0])
    sq_norms = points**2
    indices, distances = kmeans_plusplus_from_distances(
        (points - 5.0) ** 2,
        sq_norms,
        lambda v: points * points[v],
        3,
        np.random.RandomState(0),
        greedy=True,
    )
    np.testing.assert_array_equal(indices, [3, 0, 1])
    np.testing.assert_allclose(distances, [36.0, 25.0, 1.0])


def test_selection_never_repeats_a_row_when_all_distances_vanish():
    indices, _ = kmeans_plusplus_from_distances(
        np.zeros(5), np.zeros(5), lambda v: np.zeros(5), 5, np.random.RandomState(0)
    )
    assert sorted(indices) == [0, 1, 2, 3, 4]


def test_power_with_the_center_at_infinity_is_refused(fitted):
    net, X, y, X_pool = fitted
    with pytest.raises(InvalidParameterError, match="gamma=inf"):
        DynamicALSampler(gamma=math.inf, selection="power").select(
            net, X_pool, 3, X_labeled=X, y_labeled=y
        )


@pytest.mark.parametrize("selection", ["kmeans++", "farthest_first"])
def test_center_at_infinity_starts_from_the_largest_alignment(selection, fitted):
    # gamma = inf: the first pick is the largest <g_u, G>, then distances to chosen rows only
    net, X, y, X_pool = fitted
    module = net.module_.eval()
    g = _flat_gradients(module, torch.as_tensor(X_pool))
    G = _flat_gradients(module, torch.as_tensor(X), torch.as_tensor(y)).sum(0)
    alignment = (g @ G).numpy()
    indices, distances = DynamicALSampler(
        gamma=math.inf, selection=selection, random_state=4
    ).select(net, X_pool, 8, X_labeled=X, y_labeled=y)
    rng = np.random.RandomState(4)
    first = select_top_k(alignment, 1, rng)[0]
    nearest = np.full(len(alignment), np.inf)
    chosen = [first]
    for _ in range(7):
        nearest = np.minimum(nearest, ((g - g[chosen[-1]]) ** 2).sum(1).numpy())
        nearest[chosen] = 0.0
        if selection == "farthest_first":
            chosen.append(int(np.argmax(nearest)))
        else:
            chosen.append(rng.choice(len(nearest), p=nearest / nearest.sum()))
    np.testing.assert_array_equal(indices, chosen)
    assert distances[0] == np.inf


def test_last_layer_method_is_refused_for_pairwise_selections(fitted):
    net, X, y, X_pool = fitted
    with pytest.raises(InvalidParameterError, match="method='last_layer'"):
        DynamicALSampler(selection="kmeans++", method="last_layer").select(
            net, X_pool, 3, X_labeled=X, y_labeled=y
        )


def test_class_balanced_follows_a_binary_nets_threshold():
    # The pseudo label of a NeuralNetBinaryClassifier is p > threshold, in the score and in
    # the class-balanced turns alike.
    rng = np.random.RandomState(0)
    X = rng.normal(size=(400, 5)).astype(np.float32)
    y = (X[:, 0] > 0).astype(np.float32)
    torch.manual_seed(0)
    net = NeuralNetBinaryClassifier(
        torch.nn.Sequential(torch.nn.Linear(5, 8), torch.nn.ReLU(), torch.nn.Linear(8, 1)),
        max_epochs=10,
        train_split=None,
        verbose=0,
    ).fit(X[:100], y[:100])
    X_pool = X[100:]
    net.threshold = float(np.quantile(net.predict_proba(X_pool)[:, 1], 0.9))
    positives = net.predict(X_pool) == 1
    assert 0 < positives.sum() < len(X_pool) // 5
    indices, _ = DynamicALSampler(selection="class_balanced", random_state=0).select(
        net, X_pool, 10, X_labeled=X[:100], y_labeled=y[:100]
    )
    assert positives[indices].sum() == 5


@pytest.mark.parametrize("selection", ["kmeans++", "farthest_first"])
def test_streamed_selection_when_the_factors_do_not_fit(fitted, selection, monkeypatch):
    # A budget too small for the factors of even one batch: no factor is held, each pick
    # is one pass of dots over the candidates, and the batch is the same as brute force's.
    import skdynal.strategies._dynamical as dynamical

    monkeypatch.setattr(dynamical, "AUTO_CANDIDATE_BYTES", 1)
    calls = []
    original = DynamicALSampler.batch_gradient_factors

    def counting(self, adapter, state, X_batch):
        calls.append(len(X_batch))
        return original(self, adapter, state, X_batch)

    monkeypatch.setattr(DynamicALSampler, "batch_gradient_factors", counting)
    net, X, y, X_pool = fitted
    g, _, sq_to_center = _brute_force(net, X_pool, X, y)
    indices, distances = DynamicALSampler(
        selection=selection, n_candidates=len(X_pool), random_state=3
    ).select(net, X_pool, 6, X_labeled=X, y_labeled=y)
    expected, expected_distances = _reference_kmeans(
        g, sq_to_center, 6, seed=3, greedy=selection == "farthest_first"
    )
    np.testing.assert_array_equal(indices, expected)
    np.testing.assert_allclose(distances, expected_distances, rtol=1e-6)
    assert calls == [1]  # only the probe of one row's factor width
    # "auto" then takes twice the batch: the 12 rows of largest Delta
    _, delta, _ = _brute_force(net, X_pool, X, y)
    auto, _ = DynamicALSampler(selection=selection, random_state=3).select(
        net, X_pool, 6, X_labeled=X, y_labeled=y
    )
    assert set(auto) <= set(np.argsort(-delta)[:12])
