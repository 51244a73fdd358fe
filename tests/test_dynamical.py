"""DynamicALSampler: exact scores against a brute-force per-sample loop, and its options."""

import copy
import math

import numpy as np
import pytest
import torch
from _nets import DigitsCNN, DigitsMLP, fitted_net
from _oracle import delta_terms as brute_force_delta_terms
from modAL.models import ActiveLearner

from skdynal import DynamicALSampler

MODELS = {
    "mlp-logits": dict(module=DigitsMLP, criterion=torch.nn.CrossEntropyLoss, image=False),
    "mlp-probabilities": dict(
        module=DigitsMLP, criterion=torch.nn.NLLLoss, image=False, module__probabilities=True
    ),
    "cnn-logits": dict(module=DigitsCNN, criterion=torch.nn.CrossEntropyLoss, image=True),
    "cnn-probabilities": dict(
        module=DigitsCNN, criterion=torch.nn.NLLLoss, image=True, module__probabilities=True
    ),
}


def prepared(digits, name, dtype):
    """A net fitted on 50 digits in ``dtype`` plus the labeled set and a pool of 40."""
    settings = dict(MODELS[name])
    image = settings.pop("image")
    X, y = digits
    X = X.astype(np.float64 if dtype == torch.float64 else np.float32)
    if image:
        X = X.reshape(-1, 1, 8, 8)
    net = fitted_net(X[:50], y[:50], module__dtype=dtype, **settings)
    return net, X[:50], y[:50], X[50:90]


@pytest.mark.parametrize("name", list(MODELS))
@pytest.mark.parametrize("gamma", [0.0, 1.0, 2.0, math.inf])
def test_float64_scores_match_brute_force(digits, name, gamma):
    net, X_lab, y_lab, X_pool = prepared(digits, name, torch.float64)
    scores = DynamicALSampler(gamma=gamma).score(net, X_pool, X_labeled=X_lab, y_labeled=y_lab)
    sq, dot = brute_force_delta_terms(
        net.module_, X_pool, X_lab, y_lab, probabilities=name.endswith("probabilities")
    )
    expected = dot if math.isinf(gamma) else sq + gamma * dot
    assert scores.dtype == np.float64 and scores.shape == (len(X_pool),)
    np.testing.assert_allclose(scores, expected, rtol=1e-9, atol=1e-12 * np.abs(expected).max())


@pytest.mark.parametrize("name", list(MODELS))
def test_float32_scores_close_to_float64_brute_force(digits, name):
    net, X_lab, y_lab, X_pool = prepared(digits, name, torch.float32)
    scores = DynamicALSampler().score(net, X_pool, X_labeled=X_lab, y_labeled=y_lab)
    module64 = copy.deepcopy(net.module_).double()
    sq, dot = brute_force_delta_terms(
        module64,
        X_pool.astype(np.float64),
        X_lab.astype(np.float64),
        y_lab,
        probabilities=name.endswith("probabilities"),
    )
    expected = sq + 2.0 * dot
    assert np.abs(scores - expected).max() <= 1e-3 * np.abs(expected).max()


def test_top_n_is_the_sort_of_brute_force_scores(digits):
    net, X_lab, y_lab, X_pool = prepared(digits, "cnn-logits", torch.float64)
    indices, chosen_scores = DynamicALSampler(random_state=0, selection="top_b").select(
        net, X_pool, 6, X_labeled=X_lab, y_labeled=y_lab
    )
    sq, dot = brute_force_delta_terms(net.module_, X_pool, X_lab, y_lab, probabilities=False)
    expected = sq + 2.0 * dot
    np.testing.assert_array_equal(indices, np.argsort(-expected)[:6])
    np.testing.assert_allclose(chosen_scores, np.sort(expected)[::-1][:6], rtol=1e-9)


def test_learner_labeled_set_is_used(digits):
    net, X_lab, y_lab, X_pool = prepared(digits, "mlp-logits", torch.float64)
    learner = ActiveLearner(estimator=net, query_strategy=DynamicALSampler(selection="top_b"))
    learner.X_training, learner.y_training = X_lab, y_lab
    from_learner = DynamicALSampler().score(learner, X_pool)
    from_net = DynamicALSampler().score(net, X_pool, X_labeled=X_lab, y_labeled=y_lab)
    np.testing.assert_array_equal(from_learner, from_net)
    overridden = DynamicALSampler().score(
        learner, X_pool, X_labeled=X_lab[:10], y_labeled=y_lab[:10]
    )
    assert not np.allclose(overridden, from_net)


def test_batch_size_and_input_type_do_not_change_scores(digits):
    net, X_lab, y_lab, X_pool = prepared(digits, "cnn-probabilities", torch.float64)
    reference = DynamicALSampler(batch_size=64).score(
        net, X_pool, X_labeled=X_lab, y_labeled=y_lab
    )
    for batch_size in (1, 7):
        scores = DynamicALSampler(batch_size=batch_size).score(
            net, torch.from_numpy(X_pool), X_labeled=X_lab, y_labeled=y_lab
        )
        np.testing.assert_allclose(scores, reference, rtol=1e-12)


def test_float64_pool_is_cast_to_a_float32_net(digits):
    net, X_lab, y_lab, X_pool = prepared(digits, "mlp-logits", torch.float32)
    as_float32 = DynamicALSampler().score(net, X_pool, X_labeled=X_lab, y_labeled=y_lab)
    as_float64 = DynamicALSampler().score(
        net, X_pool.astype(np.float64), X_labeled=X_lab, y_labeled=y_lab
    )
    np.testing.assert_array_equal(as_float32, as_float64)


def test_gamma_zero_needs_no_labeled_set(digits):
    net, X_lab, y_lab, X_pool = prepared(digits, "mlp-logits", torch.float64)
    without = DynamicALSampler(gamma=0).score(net, X_pool)
    sq, _ = brute_force_delta_terms(net.module_, X_pool, X_lab, y_lab, probabilities=False)
    np.testing.assert_allclose(without, sq, rtol=1e-9)


def test_ties_are_broken_by_random_state(digits):
    net, X_lab, y_lab, _ = prepared(digits, "mlp-logits", torch.float64)
    X_pool = np.repeat(X_lab[:1], 30, axis=0)
    picks = {
        tuple(
            DynamicALSampler(random_state=seed, selection="top_b").select(
                net, X_pool, 3, X_labeled=X_lab, y_labeled=y_lab
            )[0]
        )
        for seed in range(6)
    }
    assert len(picks) > 1
    again = DynamicALSampler(random_state=4, selection="top_b").select(
        net, X_pool, 3, X_labeled=X_lab, y_labeled=y_lab
    )[0]
    assert tuple(again) in picks


def test_progress_bar(digits, capsys):
    net, X_lab, y_lab, X_pool = prepared(digits, "mlp-logits", torch.float32)
    DynamicALSampler(progress=True, batch_size=10).score(
        net, X_pool, X_labeled=X_lab, y_labeled=y_lab
    )
    err = capsys.readouterr().err
    assert "DynamicALSampler" in err and "40/40" in err  # the bar names the strategy


@pytest.mark.parametrize(
    ("params", "error", "match"),
    [
        (dict(gamma=-1.0), ValueError, r"'gamma' parameter .* range \[0\.0, inf\]\. Got -1\.0"),
        (dict(gamma=float("nan")), ValueError, r"'gamma' parameter .* range \[0\.0, inf\]"),
        (dict(gamma="2"), TypeError, r"'gamma' parameter .* must be a float .* Got '2'"),
        (dict(gamma=True), TypeError, r"'gamma' parameter .* Got True"),
        (dict(batch_size=0), ValueError, "batch_size"),
        (dict(batch_size=2.5), TypeError, "batch_size"),
        (dict(method="backpack"), ValueError, r"'method' parameter .* must be a str among"),
    ],
)
def test_bad_parameters(digits, params, error, match):
    net, X_lab, y_lab, X_pool = prepared(digits, "mlp-logits", torch.float32)
    with pytest.raises(error, match=match):
        DynamicALSampler(**params).score(net, X_pool, X_labeled=X_lab, y_labeled=y_lab)


def test_criterion_without_per_sample_losses(digits):
    class SummedLoss(torch.nn.Module):
        def forward(self, y_pred, y_true):
            return torch.nn.functional.cross_entropy(y_pred, y_true)

    X, y = digits
    net = fitted_net(X[:40], y[:40], criterion=SummedLoss)
    with pytest.raises(TypeError, match="reduction"):
        DynamicALSampler().score(net, X[40:50], X_labeled=X[:40], y_labeled=y[:40])


def test_labeled_set_size_mismatch(digits):
    net, X_lab, y_lab, X_pool = prepared(digits, "mlp-logits", torch.float32)
    with pytest.raises(ValueError, match="50 inputs but 49 labels"):
        DynamicALSampler().score(net, X_pool, X_labeled=X_lab, y_labeled=y_lab[:49])


@pytest.mark.gpu
def test_cuda_scores_match_cpu(digits):
    net, X_lab, y_lab, X_pool = prepared(digits, "cnn-logits", torch.float64)
    on_cpu = DynamicALSampler().score(net, X_pool, X_labeled=X_lab, y_labeled=y_lab)
    net.set_params(device="cuda")
    net.module_.to("cuda")
    on_gpu = DynamicALSampler().score(net, X_pool, X_labeled=X_lab, y_labeled=y_lab)
    np.testing.assert_allclose(on_gpu, on_cpu, rtol=1e-9)
