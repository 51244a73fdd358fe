import itertools

import numpy as np
import pytest
import torch
from skorch import NeuralNetClassifier
from torch import nn

from skdynal._torchvision import import_torchvision
from skdynal.models import CNN, MLP, MODELS, VGG11, LeNet, ResNet18, get_model, get_model_class


def n_params(module):
    return sum(p.numel() for p in module.parameters())


@pytest.mark.parametrize(
    ("factory", "shape", "n_classes"),
    [
        (lambda: MLP(hidden=(16,)), (3, 64), 10),
        (lambda: MLP(hidden=(16, 8), dropout=0.5), (3, 1, 8, 8), 10),
        (lambda: MLP(hidden=(), n_classes=3), (3, 64), 3),
        (lambda: CNN(width=4), (3, 3, 32, 32), 10),
        (lambda: CNN(in_channels=1, width=4, n_classes=7), (3, 1, 8, 8), 7),
        (lambda: VGG11(n_classes=5), (2, 3, 32, 32), 5),
        (lambda: VGG11(in_channels=1, batch_norm=False), (2, 1, 32, 32), 10),
        (lambda: ResNet18(n_classes=4), (2, 3, 32, 32), 4),
        (lambda: ResNet18(in_channels=1), (2, 1, 32, 32), 10),
    ],
)
def test_forward_returns_logits_of_the_right_shape(factory, shape, n_classes):
    torch.manual_seed(0)
    model = factory().eval()
    with torch.no_grad():
        out = model(torch.randn(*shape))
    assert out.shape == (shape[0], n_classes)
    assert torch.isfinite(out).all()


def test_mlp_architecture():
    model = MLP(n_features=64, hidden=(32, 16), n_classes=10, dropout=0.25)
    linears = [m for m in model.modules() if isinstance(m, nn.Linear)]
    assert [(m.in_features, m.out_features) for m in linears] == [(64, 32), (32, 16), (16, 10)]
    assert sum(isinstance(m, nn.Dropout) for m in model.modules()) == 2
    assert not any(isinstance(m, nn.Dropout) for m in MLP(dropout=0.0).modules())
    with pytest.raises(ValueError, match="dropout"):
        MLP(dropout=1.0)
    with pytest.raises(ValueError, match="hidden"):
        MLP(hidden=(8, 0))


def test_cnn_architecture():
    model = CNN(in_channels=3, n_classes=10, width=8)
    convs = [m for m in model.modules() if isinstance(m, nn.Conv2d)]
    assert [(c.in_channels, c.out_channels, c.stride) for c in convs] == [
        (3, 8, (1, 1)),
        (8, 16, (2, 2)),
        (16, 32, (2, 2)),
    ]
    # conv weights + biases, then the classifier: counted by hand.
    expected = (3 * 8 * 9 + 8) + (8 * 16 * 9 + 16) + (16 * 32 * 9 + 32) + (32 * 10 + 10)
    assert n_params(model) == expected
    with pytest.raises(ValueError, match="width"):
        CNN(width=0)


def test_resnet18_parameter_count_and_stem():
    model = ResNet18(n_classes=10)
    reference = import_torchvision().models.resnet18(weights=None, num_classes=10)
    # Same network except the stem: a 7x7 conv from 3 to 64 channels becomes a 3x3 one.
    assert n_params(model) == n_params(reference) - 64 * 3 * 7 * 7 + 64 * 3 * 3 * 3
    assert n_params(model) == 11_173_962
    assert model.conv1.kernel_size == (3, 3) and model.conv1.stride == (1, 1)
    assert isinstance(model.maxpool, nn.Identity)
    sizes = {}
    model.layer4.register_forward_hook(lambda m, i, o: sizes.update(layer4=o.shape))
    model.eval()
    with torch.no_grad():
        model(torch.zeros(2, 3, 32, 32))
    assert sizes["layer4"] == (2, 512, 4, 4)


def test_vgg11_parameter_count():
    channels = [3, 64, 128, 256, 256, 512, 512, 512, 512]
    conv = sum(c_in * c_out * 9 + c_out for c_in, c_out in itertools.pairwise(channels))
    batch_norm = 2 * sum(channels[1:])
    linear = 512 * 10 + 10
    assert n_params(VGG11(n_classes=10)) == conv + batch_norm + linear == 9_231_114
    assert n_params(VGG11(n_classes=10, batch_norm=False)) == conv + linear
    assert not any(isinstance(m, nn.BatchNorm2d) for m in VGG11(batch_norm=False).modules())


def test_same_seed_same_initialisation():
    torch.manual_seed(1)
    a = CNN(width=4)
    torch.manual_seed(1)
    b = CNN(width=4)
    for p, q in zip(a.parameters(), b.parameters(), strict=True):
        assert torch.equal(p, q)


def test_registry():
    assert MODELS == {"mlp": MLP, "cnn": CNN, "lenet": LeNet, "resnet18": ResNet18, "vgg11": VGG11}
    assert isinstance(get_model("CNN", width=4, n_classes=3), CNN)
    assert get_model_class("vgg11") is VGG11
    with pytest.raises(ValueError, match="Unknown model 'lenet5'"):
        get_model("lenet5")


def _fit_one_epoch(module, X, y, **module_params):
    torch.manual_seed(0)
    net = NeuralNetClassifier(
        module,
        criterion=nn.CrossEntropyLoss,
        max_epochs=1,
        batch_size=4,
        train_split=None,
        verbose=0,
        **{f"module__{k}": v for k, v in module_params.items()},
    )
    return net.fit(X, y)


def test_skorch_fits_mlp_on_digits_with_module_params():
    from skdynal.datasets import load_digits_split

    data = load_digits_split(random_state=0)
    X, y = data.X_train[:24], data.y_train[:24]
    net = _fit_one_epoch(MLP, X, y, hidden=(8,), dropout=0.1)
    assert [m.out_features for m in net.module_.modules() if isinstance(m, nn.Linear)] == [8, 10]
    proba = net.predict_proba(data.X_test[:5])
    assert proba.shape == (5, 10)
    np.testing.assert_allclose(proba.sum(axis=1), 1, rtol=1e-5)
    assert len(net.history) == 1 and np.isfinite(net.history[-1, "train_loss"])


def test_skorch_fits_cnn_on_images():
    rng = np.random.RandomState(0)
    X = rng.normal(size=(8, 3, 32, 32)).astype(np.float32)
    y = np.arange(8, dtype=np.int64) % 4
    net = _fit_one_epoch(CNN, X, y, n_classes=4, width=4)
    assert net.predict(X).shape == (8,)
    assert set(net.predict(X)) <= set(range(4))
