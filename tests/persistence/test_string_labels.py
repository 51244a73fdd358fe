"""String class labels in ResumableLoop, through the skorch net's ``classes``."""

import numpy as np
import pytest
import torch
from skorch import NeuralNetClassifier

from skdynal import MarginSampler
from skdynal.persistence import ResumableLoop

NAMES = ["cat", "dog", "eel"]


def _data():
    rng = np.random.RandomState(0)
    X = rng.randn(60, 4).astype(np.float32)
    y = np.array(NAMES)[np.argmax(X[:, :3], axis=1)]
    return X, y


def _net(classes=NAMES):
    torch.manual_seed(0)
    return NeuralNetClassifier(
        torch.nn.Linear,
        module__in_features=4,
        module__out_features=3,
        criterion=torch.nn.CrossEntropyLoss,
        classes=classes,
        max_epochs=3,
        lr=0.1,
        train_split=None,
        verbose=0,
        warm_start=True,
    )


def test_string_labels_train_through_the_nets_classes_and_resume(tmp_path):
    X, y = _data()
    loop = ResumableLoop.start(
        tmp_path, _net(), MarginSampler(random_state=0), X, np.arange(9), y[:9]
    )
    ids = loop.query(4)
    assert loop.commit_labels(ids, y[ids])
    # the journal keeps the labels the person gave; the net trained on class indices
    assert loop.journal.rounds()[-1].labels == {i: str(y[i]) for i in ids}
    assert set(loop.learner.y_training.tolist()) <= {0, 1, 2}
    assert list(loop.learner.estimator.classes_) == NAMES
    expected = loop.query(3)
    loop.close()
    resumed = ResumableLoop.resume(tmp_path, _net(), X)
    assert resumed.query(3) == expected
    np.testing.assert_array_equal(
        resumed.learner.y_training, [NAMES.index(v) for v in np.concatenate([y[:9], y[ids]])]
    )
    resumed.close()


def test_string_labels_without_classes_are_refused_before_anything_is_stored(tmp_path):
    X, y = _data()
    with pytest.raises(ValueError, match="string labels need the net's classes"):
        ResumableLoop.start(
            tmp_path, _net(classes=None), MarginSampler(random_state=0), X, np.arange(9), y[:9]
        )


def test_a_label_outside_the_classes_is_refused_and_the_round_stays_open(tmp_path):
    X, y = _data()
    loop = ResumableLoop.start(
        tmp_path, _net(), MarginSampler(random_state=0), X, np.arange(9), y[:9]
    )
    ids = loop.query(2)
    with pytest.raises(ValueError, match="'fox' are not among the net's classes"):
        loop.commit_label(ids[0], "fox")
    record = loop.journal.rounds()[-1]
    assert record.is_open and record.labels == {}
    assert loop.commit_label(ids[0], y[ids[0]]) is False  # one of two labels: round still open
    loop.close()
