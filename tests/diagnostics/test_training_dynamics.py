import numpy as np
import pytest
import torch
from conftest import brute_loss_gradient, make_data, make_net, one_hot
from modAL.models import ActiveLearner
from torch import nn

from skdynal import DynamicALSampler
from skdynal.diagnostics import (
    approximation_ratio,
    training_dynamics,
    training_dynamics_change,
)


def summed_gradient(module, X, targets, loss):
    return sum(brute_loss_gradient(module, x, t, loss) for x, t in zip(X, targets, strict=True))


def pseudo_labels(module, X):
    return module(torch.as_tensor(X)).argmax(1).detach().numpy()


def test_training_dynamics_eq8_cross_entropy(ce_net, data):
    X_labeled, y_labeled, _, _ = data
    G = summed_gradient(ce_net.module_, X_labeled, y_labeled, "ce")
    assert training_dynamics(ce_net, X_labeled, y_labeled, batch_size=3) == pytest.approx(
        G @ G, rel=1e-10
    )


def test_training_dynamics_mse(ce_net, data):
    X_labeled, y_labeled, _, _ = data
    G = summed_gradient(ce_net.module_, X_labeled, one_hot(y_labeled), "mse")
    assert training_dynamics(ce_net, X_labeled, y_labeled, loss="mse") == pytest.approx(
        G @ G, rel=1e-10
    )


def test_change_is_difference_of_dynamics_with_cross_terms_eq13(ce_net, data):
    X_labeled, y_labeled, X_query, _ = data
    module = ce_net.module_
    y_hat = pseudo_labels(module, X_query)
    G_S = summed_gradient(module, X_labeled, y_labeled, "ce")
    g = [brute_loss_gradient(module, x, t, "ce") for x, t in zip(X_query, y_hat, strict=True)]
    G_SQ = G_S + sum(g)
    singles = np.array([gu @ gu + 2 * gu @ G_S for gu in g])
    cross = sum(g[u] @ g[v] for u in range(5) for v in range(5) if u != v)

    result = training_dynamics_change(
        ce_net, X_query, X_labeled=X_labeled, y_labeled=y_labeled, batch_size=2
    )
    assert result.change == pytest.approx(G_SQ @ G_SQ - G_S @ G_S, rel=1e-9)
    np.testing.assert_allclose(result.singles, singles, rtol=1e-10)
    assert result.cross_terms == pytest.approx(cross, rel=1e-9, abs=1e-12)
    assert result.change == pytest.approx(result.singles.sum() + result.cross_terms, rel=1e-12)
    assert result.ratio == pytest.approx(singles.sum() / (G_SQ @ G_SQ - G_S @ G_S), rel=1e-9)
    assert approximation_ratio(
        ce_net, X_query, X_labeled=X_labeled, y_labeled=y_labeled
    ) == pytest.approx(result.ratio, rel=1e-12)


def test_single_sample_set_has_ratio_one_and_no_cross_terms(ce_net, data):
    X_labeled, y_labeled, X_query, _ = data
    result = training_dynamics_change(
        ce_net, X_query[:1], X_labeled=X_labeled, y_labeled=y_labeled
    )
    assert result.cross_terms == pytest.approx(0.0, abs=1e-12)
    assert result.ratio == pytest.approx(1.0, rel=1e-12)


def test_true_labels_and_mse_loss(ce_net, data):
    X_labeled, y_labeled, X_query, y_query = data
    module = ce_net.module_
    G_S = summed_gradient(module, X_labeled, one_hot(y_labeled), "mse")
    G_SQ = G_S + summed_gradient(module, X_query, one_hot(y_query), "mse")
    result = training_dynamics_change(
        ce_net, X_query, y_query, X_labeled=X_labeled, y_labeled=y_labeled, loss="mse"
    )
    assert result.change == pytest.approx(G_SQ @ G_SQ - G_S @ G_S, rel=1e-9)
    assert training_dynamics(
        ce_net, np.vstack([X_labeled, X_query]), np.r_[y_labeled, y_query], loss="mse"
    ) - training_dynamics(ce_net, X_labeled, y_labeled, loss="mse") == pytest.approx(
        result.change, rel=1e-9
    )


@pytest.mark.parametrize(
    ("criterion", "softmax"), [(nn.CrossEntropyLoss, False), (nn.NLLLoss, True)]
)
def test_dynamical_score_equals_single_sample_change(data, criterion, softmax):
    X_labeled, y_labeled, X_query, _ = data
    net = make_net(criterion=criterion, softmax=softmax, seed=4)
    result = training_dynamics_change(net, X_query, X_labeled=X_labeled, y_labeled=y_labeled)
    scores = DynamicALSampler(gamma=2.0).score(
        net, X_query, X_labeled=X_labeled, y_labeled=y_labeled
    )
    np.testing.assert_allclose(result.singles, scores, rtol=1e-10)
    if softmax:  # the NLL-of-probabilities net is scored with its own loss
        module = net.module_
        y_hat = pseudo_labels(module, X_query)
        G_S = summed_gradient(module, X_labeled, y_labeled, "nll_of_probs")
        g0 = brute_loss_gradient(module, X_query[0], y_hat[0], "nll_of_probs")
        assert result.singles[0] == pytest.approx(g0 @ g0 + 2 * g0 @ G_S, rel=1e-9)


def test_modal_learner_supplies_the_labeled_set(ce_net, data):
    X_labeled, y_labeled, X_query, _ = data
    learner = ActiveLearner(estimator=ce_net, X_training=X_labeled, y_training=y_labeled)
    # ActiveLearner refits on construction; compare against the refitted net
    explicit = training_dynamics_change(
        learner.estimator, X_query, X_labeled=X_labeled, y_labeled=y_labeled
    )
    via_learner = training_dynamics_change(learner, X_query)
    np.testing.assert_allclose(via_learner.singles, explicit.singles, rtol=1e-12)


def test_float32_net_is_left_untouched(data):
    X_labeled, y_labeled, X_query, _ = data
    net = make_net(dtype=torch.float32, seed=6)
    module = net.module_
    module.train()
    before = {n: p.detach().clone() for n, p in module.named_parameters()}
    grads_before = {n: p.grad.clone() for n, p in module.named_parameters()}  # left by fit
    result = training_dynamics_change(
        net,
        X_query.astype(np.float32),
        X_labeled=X_labeled.astype(np.float32),
        y_labeled=y_labeled,
    )
    assert module.training
    for name, p in module.named_parameters():
        assert p.dtype == torch.float32
        assert torch.equal(p.grad, grads_before[name])
        assert p.requires_grad
        assert torch.equal(p, before[name])
    assert result.singles.dtype == np.float64
    # computed on float64 copies: agrees with a float64 twin of the net to float64 precision
    twin = make_net(seed=6)
    with torch.no_grad():
        for p64, p32 in zip(twin.module_.parameters(), module.parameters(), strict=True):
            p64.copy_(p32.double())
    expected = training_dynamics_change(
        twin,
        X_query.astype(np.float32).astype(np.float64),
        X_labeled=X_labeled.astype(np.float32).astype(np.float64),
        y_labeled=y_labeled,
    )
    np.testing.assert_allclose(result.singles, expected.singles, rtol=1e-12)


def test_missing_labeled_set_and_bad_loss(ce_net, data):
    X_query = data[2]
    with pytest.raises(ValueError, match="labeled set"):
        training_dynamics_change(ce_net, X_query)
    with pytest.raises(ValueError, match="loss must be"):
        training_dynamics(ce_net, X_query, data[3], loss="hinge")
    X, y = make_data(9, 3)
    with pytest.raises(ValueError, match="rows"):
        training_dynamics(ce_net, X, y[:2])
