"""TrainUntilFit's parameters: one constraint table, checked when the net starts the callback.

Every mistake raises scikit-learn's ``InvalidParameterError`` (a ``ValueError`` and a
``TypeError``) naming the parameter.
"""

import numpy as np
import pytest
import torch
from skorch import NeuralNetClassifier

from skdynal._checks import InvalidParameterError
from skdynal.callbacks import TrainUntilFit


def _net(callback, max_epochs=10):
    return NeuralNetClassifier(
        torch.nn.Linear,
        module__in_features=2,
        module__out_features=2,
        criterion=torch.nn.CrossEntropyLoss,
        max_epochs=max_epochs,
        train_split=None,
        verbose=0,
        callbacks=[callback],
    )


def _assert_invalid(err, name):
    assert isinstance(err, InvalidParameterError)
    assert isinstance(err, ValueError) and isinstance(err, TypeError)
    assert name in str(err)


BAD = [
    ("threshold", 0.0),
    ("threshold", 1.5),
    ("threshold", -0.2),
    ("threshold", float("nan")),
    ("threshold", True),
    ("threshold", "0.9"),
    ("threshold", None),
    ("patience", 0),
    ("patience", 2.0),
    ("patience", True),
    ("patience", None),
    ("min_epochs", -1),
    ("min_epochs", 1.5),
    ("min_epochs", "1"),
    ("max_epochs", 0),
    ("max_epochs", 3.0),
    ("max_epochs", True),
    ("max_epochs", "5"),
    ("accuracy", "test"),
    ("accuracy", None),
    ("accuracy", 1),
]


@pytest.mark.parametrize(("name", "value"), BAD)
def test_a_bad_value_of_each_parameter_raises_invalid_parameter_error(name, value):
    callback = TrainUntilFit(**{name: value})  # __init__ only stores
    with pytest.raises(InvalidParameterError) as info:
        _net(callback).initialize()
    _assert_invalid(info.value, name)
    assert f"The {name!r} parameter of TrainUntilFit" in str(info.value)


@pytest.mark.parametrize(("name", "value"), BAD)
def test_the_check_runs_on_the_current_values_not_the_constructed_ones(name, value):
    callback = TrainUntilFit()
    net = _net(callback).initialize()  # valid: no error
    setattr(callback, name, value)
    with pytest.raises(InvalidParameterError) as info:
        net.initialize()
    _assert_invalid(info.value, name)


def test_max_epochs_below_min_epochs_raises_naming_both():
    with pytest.raises(InvalidParameterError) as info:
        _net(TrainUntilFit(min_epochs=5, max_epochs=3)).initialize()
    _assert_invalid(info.value, "max_epochs")
    assert "min_epochs=5" in str(info.value)


def test_max_epochs_above_the_nets_raises_invalid_parameter_error_at_fit():
    X = np.random.RandomState(0).randn(8, 2).astype(np.float32)
    y = np.array([0, 1] * 4)
    net = _net(TrainUntilFit(max_epochs=20), max_epochs=10)
    net.initialize()  # the table's constraints hold; the net's max_epochs is known at fit
    with pytest.raises(InvalidParameterError) as info:
        net.fit(X, y)
    _assert_invalid(info.value, "max_epochs=20")


@pytest.mark.parametrize(
    "params",
    [
        {"threshold": 1.0},
        {"threshold": np.float32(0.5)},
        {"patience": np.int64(3), "min_epochs": 0},
        {"min_epochs": 0, "max_epochs": 1},
        {"min_epochs": 4, "max_epochs": 4},
        {"accuracy": "eval"},
    ],
)
def test_boundary_values_are_accepted(params):
    callback = TrainUntilFit(**params)
    _net(callback).initialize()
    assert callback.epochs_ == [] and callback.fitted_ == []
    assert callback.check_params() is callback
