"""BADGE: gradient embeddings and k-means++ seeding on their factors."""

import numpy as np
import pytest
import torch
from _nets import fitted_net
from skorch import NeuralNetClassifier
from torch.utils.data import TensorDataset

from skdynal import BADGESampler
from skdynal._adapter import resolve_learner
from skdynal.strategies._badge import kmeans_plusplus_seeding
from skdynal.strategies._outputs import embeddings


def explicit_gradient_embeddings(A, H):
    """The n x (K*D) matrix that BADGE itself never forms."""
    return np.einsum("nk,nd->nkd", A, H).reshape(len(A), -1)


def reference_kmeans_plusplus(G, n, random_state):
    """k-means++ seeding with the explicit distance matrix, same draws as documented."""
    D2 = ((G[:, None, :] - G[None, :, :]) ** 2).sum(-1)
    chosen = [random_state.randint(len(G))]
    for _ in range(1, n):
        weights = D2[:, chosen].min(axis=1)
        weights[chosen] = 0.0
        if weights.sum() > 0:
            chosen.append(random_state.choice(len(G), p=weights / weights.sum()))
        else:
            rest = np.setdiff1d(np.arange(len(G)), chosen)
            chosen.append(random_state.choice(rest))
    return chosen


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_factorized_seeding_equals_brute_force(seed):
    """The seeding's distances ``||a⊗h - a'⊗h'||²`` (from norms and dots of the factors)
    are the explicit embeddings' distances to the nearest earlier center, and its draws
    are the reference k-means++'s."""
    rng = np.random.RandomState(seed)
    A, H = rng.randn(30, 7), rng.randn(30, 5)
    G = explicit_gradient_embeddings(A, H)
    chosen, distances = kmeans_plusplus_seeding(
        torch.as_tensor(A), torch.as_tensor(H), 10, np.random.RandomState(seed)
    )
    assert chosen.tolist() == reference_kmeans_plusplus(G, 10, np.random.RandomState(seed))
    D2 = ((G[:, None, :] - G[None, :, :]) ** 2).sum(-1)
    expected = [np.inf] + [D2[c, chosen[:step]].min() for step, c in enumerate(chosen) if step]
    np.testing.assert_allclose(distances, expected, rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize(
    ("criterion", "kwargs"),
    [(torch.nn.CrossEntropyLoss, {}), (torch.nn.NLLLoss, {"module__probabilities": True})],
)
def test_embeddings_are_p_minus_onehot_times_hidden(labeled_and_pool, criterion, kwargs):
    X_lab, y_lab, X_pool = labeled_and_pool
    net = fitted_net(
        X_lab.astype(np.float64), y_lab, criterion=criterion, module__dtype=torch.float64, **kwargs
    )
    X = X_pool.astype(np.float64)
    layers = net.module_.layers
    grad_before = layers[2].weight.grad.clone()
    H, A = embeddings(resolve_learner(net), X, output_gradients=True, batch_size=32)
    torch.testing.assert_close(layers[2].weight.grad, grad_before, rtol=0, atol=0)
    with torch.no_grad():
        hidden = torch.relu(layers[0](torch.as_tensor(X)))
        p = torch.softmax(layers[2](hidden), dim=1)
    expected_A = p - torch.nn.functional.one_hot(p.argmax(1), 10).double()
    torch.testing.assert_close(H, hidden)
    torch.testing.assert_close(A, expected_A)
    # a ⊗ h is the per-sample gradient of the loss w.r.t. the last layer's weight.
    weight = layers[2].weight
    for row in (0, 5):
        with torch.enable_grad():
            out = net.module_(torch.as_tensor(X[row : row + 1]))
            label = out.argmax(1)
            loss = (
                torch.nn.functional.cross_entropy(out, label)
                if not kwargs
                else torch.nn.functional.nll_loss(torch.log(out), label)
            )
            (grad,) = torch.autograd.grad(loss, weight)
        torch.testing.assert_close(grad, torch.outer(A[row], H[row]))


@pytest.mark.parametrize("seed", [0, 1, 7])
def test_seeding_matches_reference_kmeans_plusplus(labeled_and_pool, seed):
    X_lab, y_lab, X_pool = labeled_and_pool
    net = fitted_net(X_lab.astype(np.float64), y_lab, module__dtype=torch.float64)
    X = X_pool.astype(np.float64)
    indices, _ = BADGESampler(random_state=seed).select(net, X, 15)
    layers = net.module_.layers
    with torch.no_grad():
        hidden = torch.relu(layers[0](torch.as_tensor(X))).numpy()
        p = torch.softmax(layers[2](torch.as_tensor(hidden)), dim=1).numpy()
    A = p - np.eye(10)[p.argmax(1)]
    G = explicit_gradient_embeddings(A, hidden)
    expected = reference_kmeans_plusplus(G, 15, np.random.RandomState(seed))
    assert indices.tolist() == expected


def test_duplicates_fall_back_to_uniform_choice():
    A = torch.tensor([[1.0, 0.0], [1.0, 0.0], [0.0, 1.0]], dtype=torch.float64)
    H = torch.ones((3, 2), dtype=torch.float64)
    for seed in range(5):
        chosen, distances = kmeans_plusplus_seeding(A, H, 3, np.random.RandomState(seed))
        assert sorted(chosen.tolist()) == [0, 1, 2]
        assert distances[0] == np.inf
    # From center 0: row 1 is at distance 0, row 2 at ||(1,-1)⊗(1,1)||² = 4.
    chosen, distances = kmeans_plusplus_seeding(A, H, 2, np.random.RandomState(0))
    assert chosen[0] == 0 and chosen[1] == 2 and distances[1] == pytest.approx(4.0)


def test_many_classes_without_the_full_embedding_matrix(digits):
    X, _ = digits
    torch.manual_seed(0)
    module = torch.nn.Sequential(
        torch.nn.Linear(64, 256), torch.nn.ReLU(), torch.nn.Linear(256, 101)
    )
    net = NeuralNetClassifier(module, train_split=None, verbose=0).initialize()
    # 1500 x (101 * 256) float64 gradient embeddings would take 310 MB.
    indices, distances = BADGESampler(random_state=0, batch_size=500).select(net, X[:1500], 30)
    assert len(set(indices.tolist())) == 30
    assert np.all(np.isfinite(distances[1:])) and np.all(distances[1:] > 0)


def test_dataset_pool_as_the_array_and_with_nan_refused(labeled_and_pool):
    X_lab, y_lab, X_pool = labeled_and_pool
    net = fitted_net(X_lab, y_lab)
    sampler = BADGESampler(batch_size=16, random_state=0)
    expected = sampler.select(net, X_pool, 6)
    tensor = torch.as_tensor(X_pool)
    got = sampler.select(net, TensorDataset(tensor, torch.zeros(len(tensor))), 6)
    np.testing.assert_array_equal(got[0], expected[0])
    np.testing.assert_array_equal(got[1], expected[1])
    bad = tensor.clone()
    bad[40, 3] = float("nan")  # in the third batch
    with pytest.raises(ValueError, match="X_pool contains NaN or infinite values"):
        sampler.select(net, TensorDataset(bad, torch.zeros(len(bad))), 6)
