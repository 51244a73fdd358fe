"""Embeddings for Coreset and BADGE: which layer, what values, which errors."""

import numpy as np
import pytest
import torch
from _nets import DigitsCNN, fitted_net

from skdynal import BADGESampler, CoresetSampler
from skdynal._adapter import eval_mode, resolve_learner
from skdynal._validation import NonFiniteValues
from skdynal.strategies._outputs import batch_embeddings, embeddings, resolve_embedding_layer


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


def test_per_batch_hook_and_the_pool_loop_agree(labeled_and_pool):
    X_lab, y_lab, X_pool = labeled_and_pool
    net = fitted_net(X_lab.astype(np.float64), y_lab, module__dtype=torch.float64)
    adapter = resolve_learner(net)
    X = X_pool.astype(np.float64)
    H, A = embeddings(adapter, X, batch_size=7, output_gradients=True)
    with eval_mode(net.module_):
        h, a = batch_embeddings(adapter, adapter.to_device(X[10:20]), output_gradients=True)
        h_only = batch_embeddings(adapter, adapter.to_device(X[10:20]))
    torch.testing.assert_close(h, H[10:20], rtol=1e-12, atol=0)
    torch.testing.assert_close(a, A[10:20], rtol=1e-12, atol=0)
    torch.testing.assert_close(h_only, h, rtol=0, atol=0)


def test_non_finite_embeddings_name_the_rows_and_their_set(labeled_and_pool):
    X_lab, y_lab, _ = labeled_and_pool
    net = fitted_net(X_lab, y_lab)
    with torch.no_grad():
        net.module_.layers[0].weight.fill_(1.0)
    X = X_lab.copy()
    X[13] = 1e37  # finite in float32, but its hidden units (sums of 64 of them) overflow
    with pytest.raises(NonFiniteValues) as caught:
        embeddings(resolve_learner(net), X, batch_size=8, source="labeled set")
    assert caught.value.source == "labeled set" and caught.value.quantity == "embeddings"
    np.testing.assert_array_equal(caught.value.rows, [13])
