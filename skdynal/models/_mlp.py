"""Multilayer perceptron for flat features such as scikit-learn's 8x8 digits."""

import numbers

from torch import nn

from .._validation import check_positive_int

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

    def __init__(self, n_features=64, hidden=(128, 128), n_classes=10, dropout=0.0):
        super().__init__()
        check_positive_int(n_features, "n_features")
        check_positive_int(n_classes, "n_classes")
        if isinstance(hidden, numbers.Integral):
            hidden = (hidden,)
        hidden = tuple(hidden)
        for width in hidden:
            check_positive_int(width, "each entry of hidden")
        if not 0.0 <= dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {dropout!r}.")
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
