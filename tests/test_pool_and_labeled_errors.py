"""Errors that name the cause: the labeled set's NaN row before the parameters it spoiled,
the pool's NaN row, and scipy's sparse arrays as pools (issue 25, items 7, 12, 13)."""

import numpy as np
import pytest
import scipy.sparse as sp
import torch
from modAL.models import ActiveLearner
from skorch import NeuralNetClassifier

from skdynal import DynamicALSampler, MarginSampler

X = np.random.RandomState(0).rand(60, 5).astype(np.float32)
Y = np.arange(60) % 3


def _net():
    torch.manual_seed(0)
    return NeuralNetClassifier(
        torch.nn.Linear,
        module__in_features=5,
        module__out_features=3,
        criterion=torch.nn.CrossEntropyLoss,
        max_epochs=2,
        train_split=None,
        verbose=0,
    )


def test_nan_in_modal_x_training_is_named_by_row_not_blamed_on_the_parameters():
    X_training = X.copy()
    X_training[4, 1] = np.nan
    learner = ActiveLearner(_net(), DynamicALSampler(), X_training=X_training, y_training=Y)
    # training on the NaN row made the parameters NaN; the row is the cause to name
    assert not torch.isfinite(learner.estimator.module_.weight).all()
    with pytest.raises(ValueError, match=r"labeled set X_labeled contains NaN .*first in row 4"):
        learner.query(X, n_instances=2)


@pytest.mark.parametrize("as_tensor", [False, True])
def test_nan_in_the_pool_names_its_row(as_tensor):
    net = _net().fit(X, Y)
    pool = X.copy()
    pool[37, 2] = np.inf
    pool = torch.tensor(pool) if as_tensor else pool
    with pytest.raises(
        ValueError, match=r"X_pool of shape \(60, 5\) contains NaN .*first in row 37"
    ):
        MarginSampler()(net, pool, 2)


@pytest.mark.parametrize("strategy", [MarginSampler, DynamicALSampler])
def test_a_csr_array_pool_gives_the_batch_of_the_dense_pool(strategy):
    net = _net().fit(X, Y)
    dense = strategy(random_state=0).select(net, X, 4, X_labeled=X, y_labeled=Y)[0]
    for pool in (sp.csr_array(X), sp.csr_matrix(X), sp.coo_array(X)):
        chosen = strategy(random_state=0).select(net, pool, 4, X_labeled=X, y_labeled=Y)[0]
        np.testing.assert_array_equal(chosen, dense)
