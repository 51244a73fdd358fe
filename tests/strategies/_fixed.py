"""A module whose outputs are a fixed table, one row per input id, for known-answer tests."""

import numpy as np
import torch
from skorch import NeuralNetClassifier


class LookupModule(torch.nn.Module):
    """Returns ``table[id]`` for inputs of shape ``(B, 1)`` holding row ids."""

    def __init__(self, table):
        super().__init__()
        self.register_buffer("table", torch.as_tensor(np.asarray(table), dtype=torch.float64))
        self.unused = torch.nn.Parameter(torch.zeros((), dtype=torch.float64))

    def forward(self, X):
        return self.table[X[:, 0].long()] + 0.0 * self.unused


def lookup_net(table, criterion=torch.nn.CrossEntropyLoss):
    """An initialised skorch classifier around :class:`LookupModule` and the row ids."""
    net = NeuralNetClassifier(
        LookupModule,
        module__table=table,
        criterion=criterion,
        batch_size=2,
        train_split=None,
        verbose=0,
    ).initialize()
    ids = np.arange(len(table), dtype=np.float64)[:, None]
    return net, ids
