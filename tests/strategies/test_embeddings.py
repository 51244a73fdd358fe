"""Embeddings for Coreset and BADGE: which layer, what values, which errors."""

import numpy as np
import pytest
import torch
from _nets import DigitsCNN, fitted_net

from skdynal import BADGESampler, CoresetSampler
from skdynal._adapter import resolve_learner
from skdynal.strategies._outputs import embeddings, resolve_embedding_layer


def test_default_is_the_input_of_the_last_linear(labeled_and_pool):
    X_lab, y_lab, X_pool = labeled_and_pool
    net = fitted_net(X_lab, y_lab, module__dropout=0.3)
    net.module_.train()
    H, A = embeddings(resolve_learner(net), X_pool, batch_size=17)
    assert A is None
    layers = net.module_.layers  # Linear, ReLU, Dropout, Linear
    with torch.no_grad():
        expected = torch.relu(layers[0](torch.as_tensor(X_pool))).double()
    torch.testing.assert_close(H, expected)
    assert net.module_.training  # mode restored


def test_named_layer(labeled_and_pool):
    X_lab, y_lab, X_pool = labeled_and_pool
    net = fitted_net(X_lab, y_lab)
    assert resolve_embedding_layer(net.module_, "layers.0")[1] is net.module_.layers[0]
    H, _ = embeddings(resolve_learner(net), X_pool, layer_name="layers.0")
    torch.testing.assert_close(H, torch.as_tensor(X_pool).double())


def test_conv_features_are_flattened(digits):
    X, y = digits
    images = X[:40].reshape(-1, 1, 8, 8)
    net = fitted_net(images, y[:40], module=DigitsCNN)
    H, _ = embeddings(resolve_learner(net), images, layer_name="features.4")
    assert H.shape == (40, 4 * 8 * 8)
    H, _ = embeddings(resolve_learner(net), images)  # input of `head`
    assert H.shape == (40, 6)


def test_missing_layer_names_the_choices(labeled_and_pool):
    X_lab, y_lab, X_pool = labeled_and_pool
    net = fitted_net(X_lab, y_lab)
    for strategy in (CoresetSampler(embedding_layer="fc"), BADGESampler(embedding_layer="fc")):
        with pytest.raises(ValueError, match=r"'fc' is not a submodule.*'layers.0'"):
            strategy.select(net, X_pool, 2, X_labeled=X_lab, y_labeled=y_lab)
    with pytest.raises(TypeError, match="embedding_layer"):
        CoresetSampler(embedding_layer=3).select(net, X_pool, 2)


def test_module_without_linear_needs_a_name():
    module = torch.nn.Sequential(torch.nn.Conv1d(1, 2, 3), torch.nn.Flatten())
    with pytest.raises(ValueError, match=r"no torch\.nn\.Linear"):
        resolve_embedding_layer(module)


def test_badge_needs_a_two_dimensional_layer(digits):
    X, y = digits
    images = X[:30].reshape(-1, 1, 8, 8)
    net = fitted_net(images, y[:30], module=DigitsCNN)
    with pytest.raises(ValueError, match="2-D input and output"):
        BADGESampler(embedding_layer="features.0").select(net, images, 3)


def test_layer_called_twice_is_rejected(labeled_and_pool):
    class Twice(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.shared = torch.nn.Linear(64, 64)
            self.out = torch.nn.Linear(64, 10)

        def forward(self, X):
            return self.out(self.shared(torch.relu(self.shared(X))))

    X_lab, y_lab, X_pool = labeled_and_pool
    net = fitted_net(X_lab, y_lab, module=Twice)
    with pytest.raises(ValueError, match="ran 2 times"):
        CoresetSampler(embedding_layer="shared").select(net, X_pool, 2)
    assert len(CoresetSampler().select(net, X_pool, 2)[0]) == 2
    np.testing.assert_array_equal(
        CoresetSampler(random_state=1).select(net, X_pool, 4)[0],
        CoresetSampler(random_state=1).select(net, X_pool, 4)[0],
    )
