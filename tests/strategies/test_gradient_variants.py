"""EGL and influence are dynamicAL's two terms, checked against a per-sample autograd loop."""

import inspect

import numpy as np
import pytest
import torch
from _nets import fitted_net
from _oracle import delta_terms
from sklearn.base import clone

from skdynal import DynamicALSampler, EGLSampler, InfluenceSampler


def brute_force_terms(net, X_pool, X_lab, y_lab):
    """||g_u||² and <g_u, G> by one autograd call per sample, using the net's loss."""

    def net_loss(outputs, targets):
        return net.get_loss(outputs, targets, training=False)

    return delta_terms(net.module_, X_pool, X_lab, y_lab, loss_fn=net_loss)


@pytest.fixture(params=["logits", "probabilities"])
def float64_net(request, labeled_and_pool):
    X_lab, y_lab, X_pool = labeled_and_pool
    X_lab = X_lab[:30].astype(np.float64)
    y_lab = y_lab[:30]
    kwargs = {"module__dtype": torch.float64}
    if request.param == "probabilities":
        kwargs.update(criterion=torch.nn.NLLLoss, module__probabilities=True)
    net = fitted_net(X_lab, y_lab, **kwargs)
    return net, X_lab, y_lab, X_pool[:25].astype(np.float64)


def test_terms_equal_brute_force(float64_net):
    net, X_lab, y_lab, X_pool = float64_net
    kwargs = {"X_labeled": X_lab, "y_labeled": y_lab}
    egl = EGLSampler(batch_size=8).score(net, X_pool, **kwargs)
    influence = InfluenceSampler(batch_size=8).score(net, X_pool, **kwargs)
    sq_norms, dots = brute_force_terms(net, X_pool, X_lab, y_lab)
    np.testing.assert_allclose(egl, sq_norms, rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(influence, dots, rtol=1e-9, atol=1e-12)


def test_dynamical_is_egl_plus_gamma_influence(float64_net):
    net, X_lab, y_lab, X_pool = float64_net
    kwargs = {"X_labeled": X_lab, "y_labeled": y_lab}
    egl = EGLSampler().score(net, X_pool, **kwargs)
    influence = InfluenceSampler().score(net, X_pool, **kwargs)
    np.testing.assert_array_equal(egl, DynamicALSampler(gamma=0).score(net, X_pool, **kwargs))
    np.testing.assert_array_equal(
        influence, DynamicALSampler(gamma=float("inf")).score(net, X_pool, **kwargs)
    )
    for gamma in (1.0, 2.0):
        delta = DynamicALSampler(gamma=gamma).score(net, X_pool, **kwargs)
        np.testing.assert_allclose(
            delta, egl + gamma * influence, rtol=1e-12, atol=1e-12 * np.abs(delta).max()
        )


def test_selection_is_top_scores(float64_net):
    net, X_lab, y_lab, X_pool = float64_net
    for strategy in (EGLSampler(random_state=0), InfluenceSampler(random_state=0)):
        scores = strategy.score(net, X_pool, X_labeled=X_lab, y_labeled=y_lab)
        indices, chosen = strategy.select(net, X_pool, 5, X_labeled=X_lab, y_labeled=y_lab)
        assert indices.tolist() == np.argsort(-scores)[:5].tolist()
        np.testing.assert_array_equal(chosen, scores[indices])


def test_parameters_follow_dynamical():
    dynamical = inspect.signature(DynamicALSampler.__init__).parameters
    for cls in (EGLSampler, InfluenceSampler):
        params = clone(cls()).get_params()
        assert "gamma" not in params
        assert params["method"] == dynamical["method"].default
        assert set(params) == set(dynamical) - {"self", "gamma"}
        with pytest.raises(ValueError, match="gamma"):
            cls().set_params(gamma=1.0)
    assert EGLSampler().gamma == 0 and InfluenceSampler().gamma == float("inf")
    assert not EGLSampler().capabilities().needs_labeled
    assert InfluenceSampler().capabilities().needs_labeled
