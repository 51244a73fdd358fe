"""The same rule object from a plain modAL loop and from ResumableLoop."""

import numpy as np
import torch
from modAL.models import ActiveLearner
from skorch import NeuralNetClassifier

from skdynal import RandomSampler
from skdynal.models import MLP
from skdynal.persistence import ResumableLoop
from skdynal.stopping import LabelBudget, StabilizingPredictions


def net():
    torch.manual_seed(0)
    return NeuralNetClassifier(
        MLP,
        module__n_features=64,
        module__n_classes=10,
        criterion=torch.nn.CrossEntropyLoss,
        max_epochs=3,
        train_split=None,
        warm_start=True,
        verbose=0,
    )


def test_plain_modal_loop(digits):
    X, y = digits
    X, y = X[:200], y[:200]
    labeled = list(range(20))
    learner = ActiveLearner(
        net(), RandomSampler(random_state=0), X_training=X[:20], y_training=y[:20]
    )
    rule = LabelBudget(budget=40)
    stops = []
    for _ in range(3):
        pool = np.setdiff1d(np.arange(200), labeled)
        stops.append(rule.update(learner, X[pool], pool_ids=pool))
        idx, _ = learner.query(X[pool], n_instances=10)
        labeled.extend(pool[idx].tolist())
        learner.teach(X[pool[idx]], y[pool[idx]])
    assert stops == [False, False, True]
    assert rule.history_ == [20.0, 30.0, 40.0]


def test_resumable_loop(digits, tmp_path):
    X, y = digits
    X, y = X[:150], y[:150]
    loop = ResumableLoop.start(
        tmp_path, net(), RandomSampler(random_state=0), X, list(range(10)), y[:10].tolist(),
        random_state=0,
    )  # fmt: skip
    rule = StabilizingPredictions(window=1, threshold=0.5)
    for _ in range(2):
        labeled = set(loop.labeled()[0])
        ids = [i for i in range(150) if i not in labeled]
        rule.update(loop.learner, X[ids], pool_ids=ids)
        for pid in loop.query(n_instances=5):
            loop.commit_label(pid, int(y[pid]))
    loop.close()
    assert rule.n_labeled_ == [10, 15]
    assert len(rule.history_) == 2 and 0.0 <= rule.history_[1] <= 1.0
