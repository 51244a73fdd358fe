"""Tiny, deterministic active learning setup shared by the persistence tests."""

import numpy as np
import torch
from sklearn.base import BaseEstimator
from sklearn.datasets import load_digits
from sklearn.utils import check_random_state
from skorch import NeuralNetClassifier


class TinyMLP(torch.nn.Module):
    """64 -> 16 -> 10 MLP in float64 returning probabilities (skorch's default NLLLoss)."""

    def __init__(self, hidden=16):
        super().__init__()
        self.hidden = torch.nn.Linear(64, hidden, dtype=torch.float64)
        self.out = torch.nn.Linear(hidden, 10, dtype=torch.float64)

    def forward(self, X):
        return torch.softmax(self.out(torch.relu(self.hidden(X))), dim=-1)


def make_net(max_epochs=2):
    """A skorch net whose optimizer has state (SGD momentum) and that keeps training."""
    return NeuralNetClassifier(
        TinyMLP,
        max_epochs=max_epochs,
        lr=0.2,
        batch_size=16,
        optimizer=torch.optim.SGD,
        optimizer__momentum=0.9,
        train_split=None,
        warm_start=True,
        verbose=0,
        iterator_train__shuffle=True,
    )


def make_pool(n=200):
    """The first ``n`` digits of scikit-learn's digits, scaled to [0, 1] in float64."""
    X, y = load_digits(return_X_y=True)
    return (X[:n] / 16.0).astype(np.float64), y[:n].astype(np.int64)


class HalfRandomUncertainty(BaseEstimator):
    """Half the batch by least confidence, half at random from a stateful generator.

    A modAL-protocol strategy whose choices depend on its ``RandomState``'s state, so a
    resumed loop only matches an uninterrupted one if that state was saved.
    """

    def __init__(self, random_state=None):
        self.random_state = random_state

    def __call__(self, learner, X_pool, n_instances=1):
        rng = check_random_state(self.random_state)
        uncertainty = 1.0 - learner.predict_proba(X_pool).max(axis=1)
        n_top = (n_instances + 1) // 2
        top = np.argsort(-uncertainty, kind="stable")[:n_top]
        rest = np.setdiff1d(np.arange(len(X_pool)), top)
        extra = rng.choice(rest, size=n_instances - n_top, replace=False)
        return np.concatenate([top, extra]).astype(int)


def initial_ids(y, per_class=1):
    """The first ``per_class`` pool rows of each class."""
    return [int(i) for c in range(10) for i in np.flatnonzero(y == c)[:per_class]]
