"""NTK look-ahead against re-solving the kernel regression with explicit inverses."""

import functools

import numpy as np
import pytest
import torch
from _nets import DigitsCNN, DigitsMLP, make_net

from skdynal import NTKLookaheadSampler
from skdynal.diagnostics import KernelTooLargeError, empirical_ntk
from skdynal.strategies import _ntk_lookahead
from skdynal.strategies._ntk_lookahead import LinearisedLookahead

N_LAB, N_POOL = 12, 10
RIDGE = 1e-3


@pytest.fixture(scope="module")
def setup(digits):
    X, y = digits
    X = X.astype(np.float64)
    torch.manual_seed(0)
    net = make_net(module=DigitsMLP, module__hidden=8, module__dtype=torch.float64, max_epochs=5)
    net.fit(X[:N_LAB], y[:N_LAB])
    return net, X[:N_LAB], y[:N_LAB], X[100 : 100 + N_POOL]


@pytest.fixture(scope="module")
def kernel_by_hand(setup):
    net, X_lab, _, X_pool = setup
    return brute_force(net, np.concatenate([X_lab, X_pool]))


def brute_force(net, X):
    """Outputs (N, K) and the full NTK (N, N, K, K) by one backward pass per output."""
    module = net.module_.eval()
    params = [p for p in module.parameters() if p.requires_grad]
    Xt = torch.as_tensor(X)
    outputs = module(Xt).detach().numpy()
    rows = []
    for i in range(len(X)):
        out = module(Xt[i : i + 1])[0]
        per_class = []
        for k in range(out.shape[0]):
            grads = torch.autograd.grad(out[k], params, retain_graph=True)
            per_class.append(torch.cat([g.flatten() for g in grads]).numpy())
        rows.append(per_class)
    J = np.array(rows)  # (N, K, P)
    return outputs, np.einsum("ikp,jlp->ijkl", J, J)


def explicit_lookahead(theta, outputs, y_lab, extra, labels, ridge, kernel):
    """Re-solve the regression on the labeled rows plus ``extra`` (pool positions)."""
    N, K = outputs.shape
    train = list(range(N_LAB)) + [N_LAB + e for e in extra]
    test = list(range(N_LAB, N))
    Y = np.eye(K)[np.concatenate([y_lab, labels]).astype(int)]
    R = Y - outputs[train]
    if kernel == "trace":
        k = np.einsum("ijkk->ij", theta) / K
        lam = ridge * np.trace(k[:N_LAB, :N_LAB]) / N_LAB
        A = k[np.ix_(train, train)] + lam * np.eye(len(train))
        return outputs[test] + k[np.ix_(test, train)] @ np.linalg.inv(A) @ R
    M = theta.transpose(0, 2, 1, 3).reshape(N * K, N * K)
    lam = ridge * np.einsum("iikk->", theta[:N_LAB, :N_LAB]) / (N_LAB * K)
    rows = np.concatenate([np.arange(i * K, (i + 1) * K) for i in train])
    cols = np.concatenate([np.arange(i * K, (i + 1) * K) for i in test])
    A = M[np.ix_(rows, rows)] + lam * np.eye(len(rows))
    shift = M[np.ix_(cols, rows)] @ np.linalg.inv(A) @ R.reshape(-1)
    return outputs[test] + shift.reshape(len(test), K)


def build(net, X_lab, y_lab, X_pool, kernel):
    """The strategy's kernel regression on the whole pool, from the public pieces."""
    X_all = np.concatenate([X_lab, X_pool])
    theta = empirical_ntk(net, X_all, structure=kernel)
    with torch.no_grad():
        outputs = net.module_.eval()(torch.as_tensor(X_all)).numpy()
    K = outputs.shape[1]
    if kernel == "trace":
        mean_diag = np.trace(theta[:N_LAB, :N_LAB]) / N_LAB
    else:
        mean_diag = np.einsum("iikk->", theta[:N_LAB, :N_LAB]) / (N_LAB * K)
    model = LinearisedLookahead(theta, outputs, np.eye(K)[y_lab], RIDGE * mean_diag)
    return model, outputs[N_LAB:].argmax(1)


@pytest.mark.parametrize("kernel", ["trace", "full"])
def test_lookahead_equals_explicit_resolve(setup, kernel_by_hand, kernel):
    net, X_lab, y_lab, X_pool = setup
    outputs, theta = kernel_by_hand
    model, pseudo = build(net, X_lab, y_lab, X_pool, kernel=kernel)
    np.testing.assert_array_equal(pseudo, outputs[N_LAB:].argmax(1))
    np.testing.assert_allclose(
        model.f_lin,
        explicit_lookahead(theta, outputs, y_lab, [], [], RIDGE, kernel),
        rtol=1e-8,
        atol=1e-9,
    )
    candidates = [0, 3, 7, 9]
    for labels in (pseudo[candidates], np.array([1, 5, 0, 9])):
        got = model.lookahead(candidates, labels)
        for u, label, predictions in zip(candidates, labels, got, strict=True):
            expected = explicit_lookahead(theta, outputs, y_lab, [u], [label], RIDGE, kernel)
            np.testing.assert_allclose(predictions, expected, rtol=1e-7, atol=1e-8)


@pytest.mark.parametrize("kernel", ["trace", "full"])
def test_sequential_update_equals_explicit_resolve(setup, kernel_by_hand, kernel):
    net, X_lab, y_lab, X_pool = setup
    outputs, theta = kernel_by_hand
    model, _ = build(net, X_lab, y_lab, X_pool, kernel=kernel)
    model.add(4, 2)
    model.add(8, 7)
    np.testing.assert_allclose(
        model.f_lin,
        explicit_lookahead(theta, outputs, y_lab, [4, 8], [2, 7], RIDGE, kernel),
        rtol=1e-7,
        atol=1e-8,
    )
    for u, label, predictions in zip([1, 6], [3, 3], model.lookahead([1, 6], [3, 3]), strict=True):
        expected = explicit_lookahead(
            theta, outputs, y_lab, [4, 8, u], [2, 7, label], RIDGE, kernel
        )
        np.testing.assert_allclose(predictions, expected, rtol=1e-7, atol=1e-8)


def explicit_scores(theta, outputs, y_lab, chosen, chosen_labels, objective, reference, kernel):
    pseudo = outputs[N_LAB:].argmax(1)
    base = (
        outputs[N_LAB:]
        if reference == "network"
        else explicit_lookahead(theta, outputs, y_lab, chosen, chosen_labels, RIDGE, kernel)
    )
    scores = np.empty(N_POOL)
    for u in range(N_POOL):
        pred = explicit_lookahead(
            theta, outputs, y_lab, [*chosen, u], [*chosen_labels, pseudo[u]], RIDGE, kernel
        )
        if objective == "argmax":
            scores[u] = (pred.argmax(1) != base.argmax(1)).mean()
        else:
            scores[u] = ((pred - base) ** 2).sum(1).mean()
    return scores


@pytest.mark.parametrize(
    ("kernel", "objective", "reference"),
    [
        ("trace", "argmax", "network"),
        ("full", "argmax", "network"),
        ("trace", "output_change", "linearised"),
        ("full", "output_change", "network"),
    ],
)
def test_scores_equal_explicit_mlmoc(setup, kernel_by_hand, kernel, objective, reference):
    net, X_lab, y_lab, X_pool = setup
    outputs, theta = kernel_by_hand
    strategy = NTKLookaheadSampler(
        kernel=kernel, objective=objective, reference=reference, ridge=RIDGE, random_state=0
    )
    scores = strategy.score(net, X_pool, X_labeled=X_lab, y_labeled=y_lab)
    expected = explicit_scores(theta, outputs, y_lab, [], [], objective, reference, kernel)
    np.testing.assert_allclose(scores, expected, rtol=1e-6, atol=1e-10)


@pytest.mark.parametrize("reference", ["network", "linearised"])
def test_sequential_mode_rescores_after_each_pick(setup, kernel_by_hand, reference):
    net, X_lab, y_lab, X_pool = setup
    outputs, theta = kernel_by_hand
    pseudo = outputs[N_LAB:].argmax(1)
    strategy = NTKLookaheadSampler(
        kernel="full",
        objective="output_change",
        reference=reference,
        mode="sequential",
        ridge=RIDGE,
        random_state=0,
    )
    picked, picked_scores = strategy.select(net, X_pool, 3, X_labeled=X_lab, y_labeled=y_lab)
    chosen = []
    for step in range(3):
        scores = explicit_scores(
            theta, outputs, y_lab, chosen, list(pseudo[chosen]), "output_change", reference, "full"
        )
        scores[chosen] = -np.inf
        assert picked[step] == np.argmax(scores)
        np.testing.assert_allclose(picked_scores[step], scores.max(), rtol=1e-6)
        chosen.append(int(picked[step]))


def test_subset_of_the_pool(setup, digits):
    net, X_lab, y_lab, _ = setup
    X_pool = digits[0][200:260].astype(np.float64)
    strategy = NTKLookaheadSampler(subset_size=15, random_state=3)
    scores = strategy.score(net, X_pool, X_labeled=X_lab, y_labeled=y_lab)
    assert np.isfinite(scores).sum() == 15
    again = strategy.score(net, X_pool, X_labeled=X_lab, y_labeled=y_lab)
    np.testing.assert_array_equal(np.isfinite(again), np.isfinite(scores))
    picked, _ = strategy.select(net, X_pool, 5, X_labeled=X_lab, y_labeled=y_lab)
    assert np.isfinite(scores[picked]).all()  # the same subset as score()
    # More queries than subset_size: the subset grows to n_instances.
    picked, _ = strategy.select(net, X_pool, 20, X_labeled=X_lab, y_labeled=y_lab)
    assert len(set(picked.tolist())) == 20


def test_memory_guard(setup):
    net, X_lab, y_lab, X_pool = setup
    strategy = NTKLookaheadSampler(kernel="full", max_bytes=10_000)
    with pytest.raises(KernelTooLargeError, match="subset_size"):
        strategy.score(net, X_pool, X_labeled=X_lab, y_labeled=y_lab)


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"kernel": "diag"}, "'kernel' parameter .* must be a str among"),
        ({"objective": "entropy"}, "'objective' parameter .* must be a str among"),
        ({"reference": "oracle"}, "'reference' parameter .* must be a str among"),
        ({"mode": "greedy"}, "'mode' parameter .* must be a str among"),
        ({"ridge": -1.0}, r"'ridge' parameter .* must be a float in the range \[0.0, inf\)"),
        ({"ridge": np.inf}, r"'ridge' parameter .* must be a float in the range \[0.0, inf\)"),
        ({"subset_size": 0}, r"'subset_size' parameter .* must be an int in the range \[1, inf"),
    ],
)
def test_bad_parameters(setup, params, message):
    net, X_lab, y_lab, X_pool = setup
    with pytest.raises(ValueError, match=message):
        NTKLookaheadSampler(**params).score(net, X_pool, X_labeled=X_lab, y_labeled=y_lab)


@pytest.mark.parametrize(
    ("module", "shape", "params"),
    [
        (DigitsMLP, (64,), {"kernel": "trace"}),
        (DigitsMLP, (64,), {"kernel": "full", "objective": "output_change"}),
        (DigitsCNN, (1, 8, 8), {"kernel": "trace", "mode": "sequential"}),
    ],
)
def test_same_picks_and_scores_as_the_jacobian_kernel(digits, monkeypatch, module, shape, params):
    X, y = digits
    X = X.reshape(-1, *shape)
    torch.manual_seed(0)
    net = make_net(module=module, max_epochs=3).fit(X[:50], y[:50])
    strategy = NTKLookaheadSampler(subset_size=40, random_state=7, **params)

    def run():
        scores = strategy.score(net, X[50:110], X_labeled=X[:50], y_labeled=y[:50])
        picked = strategy.select(net, X[50:110], 8, X_labeled=X[:50], y_labeled=y[:50])
        return scores, picked

    scores, (picked, picked_scores) = run()
    monkeypatch.setattr(
        _ntk_lookahead, "empirical_ntk", functools.partial(empirical_ntk, method="jacobian")
    )
    old_scores, (old_picked, old_picked_scores) = run()
    assert np.isfinite(scores).sum() == 40
    np.testing.assert_allclose(scores, old_scores, rtol=1e-9, atol=1e-12)
    np.testing.assert_array_equal(picked, old_picked)
    np.testing.assert_allclose(picked_scores, old_picked_scores, rtol=1e-9, atol=1e-12)
