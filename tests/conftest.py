"""Shared fixtures: digits data and small fitted skorch nets."""

import numpy as np
import pytest
import torch
from _nets import fitted_net
from sklearn.datasets import load_digits

torch.set_num_threads(1)


@pytest.fixture(scope="session")
def digits():
    """Digits features scaled to [0, 1] (float32) and int64 labels."""
    X, y = load_digits(return_X_y=True)
    return (X / 16.0).astype(np.float32), y.astype(np.int64)


@pytest.fixture
def labeled_and_pool(digits):
    """60 labeled digits and a pool of 120."""
    X, y = digits
    return X[:60], y[:60], X[60:180]


@pytest.fixture
def fitted_mlp(labeled_and_pool):
    X_lab, y_lab, _ = labeled_and_pool
    return fitted_net(X_lab, y_lab)


def pytest_collection_modifyitems(config, items):
    if torch.cuda.is_available():
        return
    skip_gpu = pytest.mark.skip(reason="needs CUDA (torch.cuda.is_available() is False)")
    for item in items:
        if "gpu" in item.keywords:
            item.add_marker(skip_gpu)
