"""BALD with MC dropout: the mutual information, the masks and the errors."""

import itertools

import numpy as np
import pytest
import torch
from _nets import DigitsCNN, fitted_net
from skorch import NeuralNetClassifier

from skdynal import BALDSampler
from skdynal.strategies._bald import _SampledDropout


def entropy(p):
    return -(p * np.log(np.clip(p, 1e-300, None))).sum(-1)


def dropout_on_inputs_net():
    torch.manual_seed(0)
    module = torch.nn.Sequential(torch.nn.Dropout(0.5), torch.nn.Linear(2, 3)).double()
    with torch.no_grad():
        module[1].weight.copy_(torch.tensor([[2.0, -1.0], [-1.5, 2.0], [0.0, 0.5]]))
        module[1].bias.copy_(torch.tensor([0.1, 0.0, -0.2]))
    return NeuralNetClassifier(
        module, criterion=torch.nn.CrossEntropyLoss, train_split=None, verbose=0
    ).initialize()


def test_converges_to_exact_mutual_information():
    net = dropout_on_inputs_net()
    X = np.array([[1.0, 1.0], [0.5, -0.3], [-1.0, 0.8], [0.0, 0.0]])
    W = net.module_[1].weight.detach().numpy()
    b = net.module_[1].bias.detach().numpy()
    # Exact: the four masks on two inputs, each with probability 1/4, kept inputs doubled.
    masks = np.array(list(itertools.product([0.0, 2.0], repeat=2)))
    exact = []
    for x in X:
        logits = (masks * x) @ W.T + b
        p = np.exp(logits) / np.exp(logits).sum(1, keepdims=True)
        exact.append(entropy(p.mean(0)) - entropy(p).mean())
    scores = BALDSampler(n_samples=3000, random_state=0).score(net, X)
    np.testing.assert_allclose(scores, exact, atol=0.02)
    assert exact[3] == 0.0 and scores[3] == pytest.approx(0.0, abs=1e-12)
    assert min(exact[:3]) > 0.1


def test_single_sample_has_no_disagreement(labeled_and_pool):
    X_lab, y_lab, X_pool = labeled_and_pool
    net = fitted_net(X_lab, y_lab, module__dropout=0.5)
    np.testing.assert_allclose(BALDSampler(n_samples=1).score(net, X_pool), 0.0, atol=1e-6)


def test_seed_fixes_masks_whatever_the_global_rng(labeled_and_pool):
    X_lab, y_lab, X_pool = labeled_and_pool
    net = fitted_net(X_lab, y_lab, module__dropout=0.5)
    torch.manual_seed(10)
    first = BALDSampler(n_samples=5, random_state=1).score(net, X_pool)
    again = BALDSampler(n_samples=5, random_state=1, batch_size=120).score(net, X_pool)
    other = BALDSampler(n_samples=5, random_state=2).score(net, X_pool)
    torch.manual_seed(11)
    np.testing.assert_array_equal(
        first, BALDSampler(n_samples=5, random_state=1).score(net, X_pool)
    )
    assert not np.allclose(first, other)
    assert again.shape == first.shape and np.all(first >= 0)
    indices, scores = BALDSampler(n_samples=5, random_state=1).select(net, X_pool, 6)
    np.testing.assert_array_equal(scores, first[indices])
    assert scores.min() >= np.delete(first, indices).max()


@pytest.mark.parametrize("dropout", [0.0, None])
def test_no_dropout_is_a_clear_error(labeled_and_pool, dropout):
    X_lab, y_lab, X_pool = labeled_and_pool
    kwargs = {} if dropout is None else {"module__dropout": dropout}
    net = fitted_net(X_lab, y_lab, **kwargs)
    with pytest.raises(ValueError, match="BALDSampler needs Monte Carlo dropout"):
        BALDSampler().select(net, X_pool, 2)


def test_dropout_layer_with_p_zero_is_a_clear_error(labeled_and_pool):
    X_pool = labeled_and_pool[2]
    module = torch.nn.Sequential(
        torch.nn.Linear(64, 8), torch.nn.Dropout(0.0), torch.nn.Linear(8, 10)
    )
    net = NeuralNetClassifier(
        module, criterion=torch.nn.CrossEntropyLoss, train_split=None, verbose=0
    ).initialize()
    with pytest.raises(ValueError, match=r"BALDSampler needs Monte Carlo dropout.*p > 0"):
        BALDSampler().select(net, X_pool, 2)


@pytest.mark.parametrize(("n_samples", "error"), [(0, ValueError), (2.0, TypeError)])
def test_bad_n_samples(labeled_and_pool, n_samples, error):
    X_lab, y_lab, X_pool = labeled_and_pool
    net = fitted_net(X_lab, y_lab, module__dropout=0.5)
    with pytest.raises(error, match="n_samples"):
        BALDSampler(n_samples=n_samples).select(net, X_pool, 2)


def test_channel_dropout_masks_whole_channels():
    layer = torch.nn.Dropout2d(0.5).eval()
    generator = torch.Generator().manual_seed(0)
    inputs = torch.ones(4, 6, 3, 3, dtype=torch.float64)
    output = _SampledDropout(generator)(layer, (inputs,), inputs)
    per_channel = output.reshape(4, 6, -1)
    assert torch.equal(per_channel.amin(-1), per_channel.amax(-1))  # constant per channel
    assert set(per_channel.unique().tolist()) == {0.0, 2.0}
    elementwise = _SampledDropout(generator)(torch.nn.Dropout(0.25), (inputs,), inputs)
    assert set(elementwise.unique().tolist()) <= {0.0, 4.0 / 3.0}


def test_batchnorm_stays_in_eval_and_modes_are_restored(digits):
    X, y = digits
    images = X[:60].reshape(-1, 1, 8, 8)
    net = fitted_net(images, y[:60], module=DigitsCNN)
    net.module_.train()
    running_mean = net.module_.features[1].running_mean.clone()
    scores = BALDSampler(n_samples=4, random_state=0).score(net, images)
    assert np.all(np.isfinite(scores)) and scores.max() > 0
    assert torch.equal(net.module_.features[1].running_mean, running_mean)
    assert all(m.training for m in net.module_.modules())
