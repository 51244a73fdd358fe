import warnings

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from _oracle import grad_stats as brute_force_grad_stats
from skorch import NeuralNetClassifier
from torch import nn

from skdynal.gradients import grad_stats, reference_grad_stats
from skdynal.models import MODELS, LeNet, get_model


def n_params(module):
    return sum(p.numel() for p in module.parameters())


def per_sample_cross_entropy(outputs, targets):
    return F.cross_entropy(outputs, targets, reduction="none")


@pytest.mark.parametrize(
    ("kwargs", "shape", "flat", "expected_params"),
    [
        # conv1 + conv2 + fc1 + fc2 + fc3, counted by hand.
        (
            {},
            (1, 28, 28),
            16 * 4 * 4,
            (1 * 6 * 25 + 6)
            + (6 * 16 * 25 + 16)
            + (256 * 120 + 120)
            + (120 * 84 + 84)
            + (84 * 10 + 10),
        ),
        # The official code's CIFAR-10 network: 62,006 parameters.
        ({"in_channels": 3, "image_size": 32}, (3, 32, 32), 16 * 5 * 5, 62_006),
        (
            {"n_classes": 4, "image_size": 16},
            (1, 16, 16),
            16 * 1 * 1,
            (6 * 25 + 6) + (6 * 16 * 25 + 16) + (16 * 120 + 120) + (120 * 84 + 84) + (84 * 4 + 4),
        ),
    ],
)
def test_lenet_layers_and_parameter_count(kwargs, shape, flat, expected_params):
    model = LeNet(**kwargs)
    n_classes = kwargs.get("n_classes", 10)
    convs = [m for m in model.modules() if isinstance(m, nn.Conv2d)]
    assert [(c.in_channels, c.out_channels, c.kernel_size, c.padding) for c in convs] == [
        (shape[0], 6, (5, 5), (0, 0)),
        (6, 16, (5, 5), (0, 0)),
    ]
    linears = [m for m in model.modules() if isinstance(m, nn.Linear)]
    assert [(m.in_features, m.out_features) for m in linears] == [
        (flat, 120),
        (120, 84),
        (84, n_classes),
    ]
    assert sum(isinstance(m, nn.MaxPool2d) for m in model.modules()) == 2
    assert n_params(model) == expected_params
    with torch.no_grad():
        assert model(torch.zeros(3, *shape)).shape == (3, n_classes)


def test_lenet_computes_the_official_layer_order():
    """Same weights through a hand-written functional LeNet: relu after conv, then pool."""
    torch.manual_seed(0)
    model = LeNet().double().eval()
    x = torch.randn(4, 1, 28, 28, dtype=torch.float64)
    c1, c2 = model.features[0], model.features[3]
    f1, f2, f3 = model.classifier[0], model.classifier[2], model.classifier[4]
    h = F.max_pool2d(F.relu(F.conv2d(x, c1.weight, c1.bias)), 2)
    h = F.max_pool2d(F.relu(F.conv2d(h, c2.weight, c2.bias)), 2).reshape(4, 16 * 4 * 4)
    h = F.relu(F.linear(h, f1.weight, f1.bias))
    h = F.relu(F.linear(h, f2.weight, f2.bias))
    expected = F.linear(h, f3.weight, f3.bias)
    with torch.no_grad():
        torch.testing.assert_close(model(x), expected, rtol=0, atol=0)


def test_lenet_rejects_bad_arguments():
    with pytest.raises(
        ValueError,
        match=r"'image_size' parameter of LeNet must be an int in the range \[16, inf\)",
    ):
        LeNet(image_size=15)
    with pytest.raises(ValueError, match="in_channels"):
        LeNet(in_channels=0)
    with pytest.raises(ValueError, match="n_classes"):
        LeNet(n_classes=1.5)


def test_lenet_is_registered():
    assert MODELS["lenet"] is LeNet
    assert isinstance(get_model("LeNet", n_classes=3), LeNet)


def test_engine_matches_reference_and_brute_force_on_lenet():
    torch.manual_seed(0)
    model = LeNet(n_classes=10).double().eval()
    gen = torch.Generator().manual_seed(1)
    x = torch.randn(5, 1, 28, 28, generator=gen, dtype=torch.float64)
    with torch.no_grad():
        y = model(x).argmax(1)
    direction = {
        name: torch.randn(p.shape, generator=gen, dtype=torch.float64)
        for name, p in model.named_parameters()
    }
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # every LeNet layer has an exact fast rule
        stats = grad_stats(model, per_sample_cross_entropy, x, y, direction)
    ref = reference_grad_stats(model, per_sample_cross_entropy, x, y, direction)
    torch.testing.assert_close(stats.sq_norms, ref.sq_norms, rtol=1e-10, atol=0)
    torch.testing.assert_close(stats.dots, ref.dots, rtol=1e-10, atol=1e-12)

    sq, dots = brute_force_grad_stats(model, per_sample_cross_entropy, x, y, direction)
    for u in range(len(x)):
        torch.testing.assert_close(stats.sq_norms[u], sq[u], rtol=1e-10, atol=0)
        torch.testing.assert_close(stats.dots[u], dots[u], rtol=1e-10, atol=1e-12)
    assert torch.all(stats.sq_norms > 0)


def test_skorch_fits_lenet_on_fashion_mnist_standins(tmp_path):
    from skdynal.datasets import load_fashion_mnist, write_fashion_mnist_standin

    write_fashion_mnist_standin(tmp_path, n_train=40, n_test=10, random_state=0)
    data = load_fashion_mnist(tmp_path)
    torch.manual_seed(0)
    net = NeuralNetClassifier(
        LeNet,
        criterion=nn.CrossEntropyLoss,
        optimizer=torch.optim.Adam,
        lr=1e-3,
        max_epochs=40,
        batch_size=8,
        train_split=None,
        verbose=0,
    )
    net.fit(data.X_train, data.y_train)
    losses = net.history[:, "train_loss"]
    assert losses[-1] < 0.25 * losses[0]
    # Stand-in classes differ by grey level, which LeNet learns from 40 images and which
    # carries over to the test file (chance is 0.1).
    assert np.mean(net.predict(data.X_train) == data.y_train) >= 0.9
    assert np.mean(net.predict(data.X_test) == data.y_test) >= 0.6
