"""Small modules and skorch nets used across the tests."""

import torch
from skorch import NeuralNetClassifier


class DigitsMLP(torch.nn.Module):
    """Two-layer MLP for 64 digits features; softmax output when ``probabilities``."""

    def __init__(self, hidden=16, probabilities=False, dropout=0.0, dtype=torch.float32):
        super().__init__()
        layers = [torch.nn.Linear(64, hidden), torch.nn.ReLU()]
        if dropout:
            layers.append(torch.nn.Dropout(dropout))
        layers.append(torch.nn.Linear(hidden, 10))
        if probabilities:
            layers.append(torch.nn.Softmax(dim=-1))
        self.layers = torch.nn.Sequential(*layers)
        self.to(dtype)

    def forward(self, X):
        return self.layers(X)


class DigitsCNN(torch.nn.Module):
    """Small CNN with BatchNorm and Dropout for 1x8x8 digits images."""

    def __init__(self, probabilities=False, dtype=torch.float32):
        super().__init__()
        self.features = torch.nn.Sequential(
            torch.nn.Conv2d(1, 4, 3, padding=1),
            torch.nn.BatchNorm2d(4),
            torch.nn.ReLU(),
            torch.nn.Dropout(0.2),
            torch.nn.Conv2d(4, 6, 3, stride=2),
            torch.nn.ReLU(),
            torch.nn.AdaptiveAvgPool2d(1),
            torch.nn.Flatten(),
        )
        self.head = torch.nn.Linear(6, 10)
        self.probabilities = probabilities
        self.to(dtype)

    def forward(self, X):
        logits = self.head(self.features(X))
        return torch.softmax(logits, dim=-1) if self.probabilities else logits


def make_net(
    module=DigitsMLP,
    criterion=torch.nn.CrossEntropyLoss,
    max_epochs=3,
    net_class=NeuralNetClassifier,
    **kwargs,
):
    """An unfitted skorch classifier set up as in the README (warm start, no split).

    ``net_class`` is the skorch class (a strategy that needs a net mixin names its own).
    """
    return net_class(
        module,
        criterion=criterion,
        max_epochs=max_epochs,
        lr=0.1,
        batch_size=32,
        warm_start=True,
        train_split=None,
        verbose=0,
        **kwargs,
    )


def fitted_net(X, y, seed=0, **kwargs):
    """A net from :func:`make_net` fitted on ``(X, y)`` with a fixed torch seed."""
    torch.manual_seed(seed)
    return make_net(**kwargs).fit(X, y)


class TwoInputMLP(torch.nn.Module):
    """Digits split in two halves, passed as keyword arguments (skorch's dict inputs)."""

    def __init__(self, dropout=0.0):
        super().__init__()
        self.left = torch.nn.Linear(32, 8)
        self.right = torch.nn.Linear(32, 8)
        self.dropout = torch.nn.Dropout(dropout)
        self.head = torch.nn.Linear(16, 10)

    def forward(self, left, right):
        hidden = torch.relu(torch.cat([self.left(left), self.right(right)], dim=1))
        return self.head(self.dropout(hidden))


class BinaryMLP(torch.nn.Module):
    """One logit per sample, for skorch's NeuralNetBinaryClassifier with BCEWithLogitsLoss."""

    def __init__(self, dropout=0.0):
        super().__init__()
        self.layers = torch.nn.Sequential(
            torch.nn.Linear(64, 16),
            torch.nn.ReLU(),
            torch.nn.Dropout(dropout),
            torch.nn.Linear(16, 1),
        )

    def forward(self, X):
        return self.layers(X).squeeze(-1)


class TupleMLP(torch.nn.Module):
    """DigitsMLP whose forward returns ``(logits, auxiliary)``."""

    def __init__(self, dropout=0.0):
        super().__init__()
        self.inner = DigitsMLP(dropout=dropout)

    def forward(self, X):
        logits = self.inner(X)
        return logits, logits.detach().abs()


class TupleLossMixin:
    """A ``get_loss`` that unpacks the module's tuple output, as skorch users write."""

    def get_loss(self, y_pred, y_true, *args, **kwargs):
        logits, _auxiliary = y_pred
        return super().get_loss(logits, y_true, *args, **kwargs)


class TupleLossClassifier(TupleLossMixin, NeuralNetClassifier):
    """NeuralNetClassifier with :class:`TupleLossMixin`."""
