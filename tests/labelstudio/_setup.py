"""The bridge set-up shared by the tests and by the subprocess that is killed mid-round."""

import numpy as np
import torch
from sklearn.datasets import load_digits
from skorch import NeuralNetClassifier

from skdynal import DynamicALSampler
from skdynal.labelstudio import LabelStudioBridge, array_image_tasks
from skdynal.models import MLP
from skdynal.stopping import StabilizingPredictions

N_POOL = 120
CLASSES = list(range(10))


def digits_pool():
    X, y = load_digits(return_X_y=True)
    return (X[:N_POOL] / 16.0).astype(np.float32), y[:N_POOL].astype(int)


def fresh_net():
    torch.manual_seed(0)
    return NeuralNetClassifier(
        MLP,
        module__n_features=64,
        module__n_classes=10,
        criterion=torch.nn.CrossEntropyLoss,
        optimizer=torch.optim.Adam,
        lr=0.01,
        max_epochs=8,
        batch_size=32,
        train_split=None,
        warm_start=True,
        verbose=0,
    )


def bridge(url, token, project, directory):
    return LabelStudioBridge(
        url,
        token,
        project,
        directory,
        CLASSES,
        batch_size=5,
        n_initial=10,
        stopping=StabilizingPredictions(window=2),
        random_state=0,
    )


def sync(b, X_pool):
    return b.sync(
        fresh_net(), DynamicALSampler(random_state=0), X_pool, array_image_tasks(X_pool, (8, 8))
    )
