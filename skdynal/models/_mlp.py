"""Multilayer perceptron for flat features such as scikit-learn's 8x8 digits."""

import numbers
from collections.abc import Iterable
from typing import ClassVar

from torch import nn

from .._checks import InvalidParameterError, StrictInterval, validate_parameter_constraints

_POSITIVE_INT = StrictInterval(numbers.Integral, 1, None, closed="left")

__all__ = ["MLP"]


class MLP(nn.Module):
    """Fully connected ReLU network returning class logits.

    Inputs of any shape ``(N, ...)`` are flattened to ``(N, n_features)`` first, so 8x8
    digit images work as well as 64-dimensional vectors. Pair it with
    ``criterion=torch.nn.CrossEntropyLoss`` in skorch (the output is logits, not
    probabilities).

    Parameters
    ----------
    n_features : int, default=64
        Number of input features after flattening.
    hidden : tuple of int, default=(128, 128)
        Width of each hidden layer; ``()`` gives multinomial logistic regression.
    n_classes : int, default=10
        Number of classes (output logits).
    dropout : float, default=0.0
        Dropout probability after each hidden ReLU (0 adds no dropout layer).

    Examples
    --------
    >>> import torch
    >>> from skdynal.models import MLP
    >>> MLP(hidden=(32,))(torch.zeros(5, 64)).shape
    torch.Size([5, 10])
    """

    _parameter_constraints: ClassVar[dict] = {
        "n_features": [_POSITIVE_INT],
        # An int is one hidden layer; every entry of an iterable is checked below.
        "hidden": [_POSITIVE_INT, Iterable],
        "n_classes": [_POSITIVE_INT],
        "dropout": [StrictInterval(numbers.Real, 0, 1, closed="left")],
    }

    def __init__(self, n_features=64, hidden=(128, 128), n_classes=10, dropout=0.0):
        super().__init__()
        validate_parameter_constraints(
            self._parameter_constraints,
            {
                "n_features": n_features,
                "hidden": hidden,
                "n_classes": n_classes,
                "dropout": dropout,
            },
            caller_name=type(self).__name__,
        )
        hidden = (hidden,) if isinstance(hidden, numbers.Integral) else tuple(hidden)
        for width in hidden:
            if not _POSITIVE_INT.is_satisfied_by(width):
                raise InvalidParameterError(
                    f"Each entry of the 'hidden' parameter of {type(self).__name__} must be "
                    f"{_POSITIVE_INT}. Got {width!r} in hidden={hidden!r} instead."
                )
        layers = [nn.Flatten()]
        previous = n_features
        for width in hidden:
            layers += [nn.Linear(previous, width), nn.ReLU()]
            if dropout > 0:
                layers.append(nn.Dropout(dropout))
            previous = width
        layers.append(nn.Linear(previous, n_classes))
        self.layers = nn.Sequential(*layers)

    def forward(self, X):
        return self.layers(X)
