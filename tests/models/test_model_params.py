"""The model classes' parameters: one constraint table per class, checked in ``__init__``.

Every mistake raises scikit-learn's ``InvalidParameterError`` (a ``ValueError`` and a
``TypeError``) naming the parameter and the class.
"""

import numpy as np
import pytest
from torch import nn

from skdynal._checks import InvalidParameterError
from skdynal.models import CNN, MLP, VGG11, LeNet, ResNet18, get_model

BAD = [
    (MLP, "n_features", 0),
    (MLP, "n_features", 64.0),
    (MLP, "n_features", True),
    (MLP, "hidden", None),
    (MLP, "hidden", 0),
    (MLP, "hidden", (8, 0)),
    (MLP, "hidden", (8, 2.5)),
    (MLP, "hidden", [16, True]),
    (MLP, "n_classes", 0),
    (MLP, "n_classes", "10"),
    (MLP, "dropout", 1.0),
    (MLP, "dropout", -0.1),
    (MLP, "dropout", True),
    (MLP, "dropout", "0.5"),
    (MLP, "dropout", None),
    (CNN, "in_channels", 0),
    (CNN, "in_channels", 3.0),
    (CNN, "n_classes", -1),
    (CNN, "width", 0),
    (CNN, "width", None),
    (LeNet, "n_classes", 1.5),
    (LeNet, "in_channels", 0),
    (LeNet, "image_size", 15),
    (LeNet, "image_size", 28.0),
    (LeNet, "image_size", True),
    (ResNet18, "in_channels", 0),
    (ResNet18, "n_classes", "4"),
    (VGG11, "in_channels", 0),
    (VGG11, "n_classes", 2.5),
    (VGG11, "batch_norm", "no"),
    (VGG11, "batch_norm", None),
]


@pytest.mark.parametrize(("cls", "name", "value"), BAD)
def test_a_bad_value_of_each_parameter_raises_invalid_parameter_error(cls, name, value):
    with pytest.raises(InvalidParameterError) as info:
        cls(**{name: value})
    err = info.value
    assert isinstance(err, ValueError) and isinstance(err, TypeError)
    assert f"{name!r} parameter of {cls.__name__}" in str(err)


def test_get_model_passes_the_error_through():
    with pytest.raises(InvalidParameterError, match="'dropout' parameter of MLP"):
        get_model("mlp", dropout=1.0)


def test_a_bad_hidden_entry_is_named_with_the_whole_value():
    with pytest.raises(InvalidParameterError, match=r"Got 0 in hidden=\(8, 0\) instead"):
        MLP(hidden=(8, 0))


def test_boundary_and_numpy_values_are_accepted():
    model = MLP(n_features=np.int64(4), hidden=np.array([3, 2]), n_classes=1, dropout=0.0)
    linears = [m for m in model.modules() if isinstance(m, nn.Linear)]
    assert [(m.in_features, m.out_features) for m in linears] == [(4, 3), (3, 2), (2, 1)]
    assert [m.out_features for m in MLP(hidden=5).modules() if isinstance(m, nn.Linear)] == [
        5,
        10,
    ]
    assert MLP(hidden=iter([7]), dropout=np.float32(0.999)).layers[1].out_features == 7
    assert LeNet(image_size=16).classifier[0].in_features == 16  # 16 x 1 x 1 features
    assert CNN(in_channels=1, n_classes=1, width=1).classifier.in_features == 4
    vgg = VGG11(batch_norm=np.bool_(False))
    assert not any(isinstance(m, nn.BatchNorm2d) for m in vgg.modules())
