"""The contract suite's bad inputs through RayScorer: the same error as a local query.

Every exported strategy that RayScorer can shard (and the example strategy of
docs/writing_a_strategy.md) gets each bad input of tests/test_common.py, and the checks of
a local query's preparation (``QueryBackend.prepare``), once locally and once through
RayScorer on a local Ray instance. Both must raise the same exception type with the same
message; where an input is allowed (no labeled set for a strategy that does not need one,
an out-of-scale row the model copes with), both must choose the same rows with the same
scores. Bad values in file-backed pools and ``Dataset`` pools are found by the workers, the
others on the driver, before Ray is used.
"""

import copy
import inspect
import re
from pathlib import Path

import numpy as np
import pytest
import scipy.sparse
import torch
from _doc_example import PseudoLabelLossSampler
from _local_ray import local_ray
from _nets import BinaryMLP, fitted_net, make_net
from _strategy_settings import net_params, strategy_params
from modAL.models import ActiveLearner
from sklearn.exceptions import NotFittedError
from sklearn.linear_model import LogisticRegression
from skorch import NeuralNetBinaryClassifier
from torch.utils.data import TensorDataset

import skdynal
from skdynal.base import BaseQueryStrategy
from skdynal.distributed import RayScorer

ray = pytest.importorskip("ray")

pytestmark = [pytest.mark.ray, pytest.mark.slow]

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]


def _shardable_strategies():
    """The exported strategies RayScorer runs (sharded, reading the pool), and the doc's."""
    classes = [
        getattr(skdynal, name)
        for name in skdynal.__all__
        if inspect.isclass(getattr(skdynal, name))
        and issubclass(getattr(skdynal, name), BaseQueryStrategy)
    ]
    shardable = []
    for cls in [*classes, PseudoLabelLossSampler]:
        capabilities = cls(**strategy_params(cls)).capabilities()
        if capabilities.shardable and capabilities.reads_pool:
            shardable.append(cls)
    return shardable


STRATEGIES = _shardable_strategies()


@pytest.fixture(scope="module", autouse=True)
def ray_for_this_module():
    # Workers also import the helpers next to this file (_dying.py) by name.
    with local_ray(HERE):
        yield


_NETS = {}


def _net(strategy_class, X_lab, y_lab):
    """The contract suite's fitted net for ``strategy_class`` (fitted once per settings)."""
    params = net_params(strategy_class)
    key = repr(sorted(params.items(), key=lambda item: item[0]))
    if key not in _NETS:
        _NETS[key] = fitted_net(X_lab, y_lab, **params)
    return _NETS[key]


def build(strategy_class):
    return strategy_class(**{"random_state": 0, **strategy_params(strategy_class)})


# --- the inputs: each case gives the query's arguments, locally and through Ray ----------


class Query:
    """One query's arguments: ``select(learner, X_pool, n_instances, **labeled)``, or a modAL
    ``ActiveLearner`` built around the strategy (``modal=True``). ``remote_pool`` replaces
    the pool for RayScorer (a ``.npy`` path, which local strategies do not take)."""

    def __init__(self, learner, X_pool, n_instances=3, remote_pool=None, modal=False, **labeled):
        self.learner = learner
        self.X_pool = X_pool
        self.remote_pool = X_pool if remote_pool is None else remote_pool
        self.n_instances = n_instances
        self.modal = modal
        self.labeled = labeled

    def run(self, strategy, remote):
        X_pool = self.remote_pool if remote else self.X_pool
        if self.modal:
            learner = ActiveLearner(
                estimator=self.learner, query_strategy=strategy, **self.labeled
            )
            indices, _ = learner.query(X_pool, n_instances=self.n_instances)
            return np.asarray(indices), None
        return strategy.select(self.learner, X_pool, self.n_instances, **self.labeled)


def _with(X, row, column, value, dtype=None):
    X = X.astype(dtype or X.dtype)
    X[row, column] = value
    return X


def _npy(X, tmp_path):
    path = tmp_path / "pool.npy"
    np.save(path, X)
    return path


#: ``name: (build(net, X_lab, y_lab, X_pool, tmp_path) -> Query, the local error or None)``.
#: ``None``: the input may be accepted (then both must choose the same rows).
CASES = {
    "n_instances=0": (
        lambda net, X_lab, y_lab, X, tmp: Query(net, X, 0, X_labeled=X_lab, y_labeled=y_lab),
        (ValueError, "n_instances"),
    ),
    "n_instances=-2": (
        lambda net, X_lab, y_lab, X, tmp: Query(net, X, -2, X_labeled=X_lab, y_labeled=y_lab),
        (ValueError, "n_instances"),
    ),
    "n_instances above the pool size": (
        lambda net, X_lab, y_lab, X, tmp: Query(net, X, 121, X_labeled=X_lab, y_labeled=y_lab),
        (ValueError, "n_instances"),
    ),
    "n_instances=2.5": (
        lambda net, X_lab, y_lab, X, tmp: Query(net, X, 2.5, X_labeled=X_lab, y_labeled=y_lab),
        (TypeError, "n_instances must be an integer"),
    ),
    "empty pool": (
        lambda net, X_lab, y_lab, X, tmp: Query(net, X[:0], 1, X_labeled=X_lab, y_labeled=y_lab),
        (ValueError, "empty"),
    ),
    "NaN in the pool": (
        lambda net, X_lab, y_lab, X, tmp: Query(
            net, _with(X, 17, 5, np.nan), X_labeled=X_lab, y_labeled=y_lab
        ),
        (ValueError, r"X_pool of shape \(120, 64\) contains NaN.*row 17"),
    ),
    "inf in the pool": (
        lambda net, X_lab, y_lab, X, tmp: Query(
            net, _with(X, 17, 5, np.inf), X_labeled=X_lab, y_labeled=y_lab
        ),
        (ValueError, "NaN or infinite"),
    ),
    "-inf in a tensor pool": (
        lambda net, X_lab, y_lab, X, tmp: Query(
            net, torch.from_numpy(_with(X, 17, 5, -np.inf)), X_labeled=X_lab, y_labeled=y_lab
        ),
        (ValueError, "NaN or infinite"),
    ),
    "NaN in a sparse pool": (
        lambda net, X_lab, y_lab, X, tmp: Query(
            net,
            scipy.sparse.csr_matrix(_with(X, 17, 5, np.nan)),
            X_labeled=X_lab,
            y_labeled=y_lab,
        ),
        (ValueError, "NaN or infinite.*row 17"),
    ),
    "NaN in a memory-mapped pool (read by the workers)": (
        lambda net, X_lab, y_lab, X, tmp: Query(
            net,
            np.load(_npy(_with(X, 97, 5, np.nan), tmp), mmap_mode="r"),
            X_labeled=X_lab,
            y_labeled=y_lab,
        ),
        (ValueError, r"X_pool of shape \(120, 64\) contains NaN.*row 97"),
    ),
    "NaN in a .npy path pool (read by the workers)": (
        lambda net, X_lab, y_lab, X, tmp: Query(
            net,
            np.load(_npy(_with(X, 97, 5, np.nan), tmp), mmap_mode="r"),
            remote_pool=str(tmp / "pool.npy"),
            X_labeled=X_lab,
            y_labeled=y_lab,
        ),
        (ValueError, r"X_pool of shape \(120, 64\) contains NaN.*row 97"),
    ),
    "NaN in a Dataset pool (read by the workers)": (
        lambda net, X_lab, y_lab, X, tmp: Query(
            net,
            TensorDataset(torch.from_numpy(_with(X, 97, 5, np.nan)), torch.zeros(len(X))),
            X_labeled=X_lab,
            y_labeled=y_lab,
        ),
        (ValueError, "X_pool contains NaN or infinite"),
    ),
    "a pool row overflowing float32": (
        lambda net, X_lab, y_lab, X, tmp: Query(
            net, _with(X, 17, 5, 1e300, np.float64), X_labeled=X_lab, y_labeled=y_lab
        ),
        (ValueError, "X_pool row 17 overflows float32"),
    ),
    "a memory-mapped pool row overflowing float32 (read by the workers)": (
        lambda net, X_lab, y_lab, X, tmp: Query(
            net,
            np.load(_npy(_with(X, 97, 5, 1e300, np.float64), tmp), mmap_mode="r"),
            X_labeled=X_lab,
            y_labeled=y_lab,
        ),
        (ValueError, "X_pool row 97 overflows float32"),
    ),
    "a pool of strings": (
        lambda net, X_lab, y_lab, X, tmp: Query(
            net, np.array([["a"] * 64] * 3), 1, X_labeled=X_lab, y_labeled=y_lab
        ),
        (TypeError, "X_pool"),
    ),
    "pool rows of another shape": (
        lambda net, X_lab, y_lab, X, tmp: Query(net, X[:, :63], X_labeled=X_lab, y_labeled=y_lab),
        (ValueError, r"\(63,\).*\(64,\)"),
    ),
    "pool rows of another shape, no labeled set": (
        lambda net, X_lab, y_lab, X, tmp: Query(net, X[:, :63]),
        (ValueError, r"needs the labeled set|shape \(63,\)"),
    ),
    "no labeled set": (
        lambda net, X_lab, y_lab, X, tmp: Query(net, X),
        None,  # refused by strategies that need it, as locally
    ),
    "half of the labeled set": (
        lambda net, X_lab, y_lab, X, tmp: Query(net, X, X_labeled=X_lab),
        (ValueError, "both X_labeled and y_labeled"),
    ),
    "NaN in the labeled set": (
        lambda net, X_lab, y_lab, X, tmp: Query(
            net, X, X_labeled=_with(X_lab, 3, 5, np.nan), y_labeled=y_lab
        ),
        (ValueError, r"labeled set X_labeled contains NaN.*row 3"),
    ),
    "a labeled row overflowing float32": (
        lambda net, X_lab, y_lab, X, tmp: Query(
            net, X, X_labeled=_with(X_lab, 3, 5, 1e300, np.float64), y_labeled=y_lab
        ),
        (ValueError, "labeled set X_labeled row 3 overflows float32"),
    ),
    "a label outside the module's outputs": (
        lambda net, X_lab, y_lab, X, tmp: Query(
            net, X, X_labeled=X_lab, y_labeled=np.where(np.arange(len(y_lab)) == 4, 12, y_lab)
        ),
        (ValueError, "label 12, outside the module's 10 outputs"),
    ),
    "non-finite parameters": (
        lambda net, X_lab, y_lab, X, tmp: Query(
            _nan_weight(net), X, X_labeled=X_lab, y_labeled=y_lab
        ),
        (ValueError, r"parameters are not finite: 'layers\.0\.weight'"),
    ),
    "an unfitted net": (
        lambda net, X_lab, y_lab, X, tmp: Query(
            make_net(**_own_settings(net)), X, X_labeled=X_lab, y_labeled=y_lab
        ),
        (NotFittedError, "not fitted"),
    ),
    "an unfitted net in a modAL learner": (
        lambda net, X_lab, y_lab, X, tmp: Query(make_net(**_own_settings(net)), X, modal=True),
        (NotFittedError, "not fitted"),
    ),
    "not a skorch net in a modAL learner": (
        lambda net, X_lab, y_lab, X, tmp: Query(
            LogisticRegression(max_iter=200).fit(X_lab, y_lab),
            X,
            2,
            modal=True,
            X_training=X_lab,
            y_training=y_lab,
        ),
        (TypeError, "skorch NeuralNet"),
    ),
    "not a learner": (
        lambda net, X_lab, y_lab, X, tmp: Query(object(), X, 2),
        (TypeError, "modAL learner"),
    ),
    "an out-of-scale pool row": (
        lambda net, X_lab, y_lab, X, tmp: Query(
            net, _with(X, 17, slice(None), 1e30), 5, X_labeled=X_lab, y_labeled=y_lab
        ),
        None,  # valid rows where every computed value is finite, else an explained error
    ),
    "a binary net with one logit": (
        lambda net, X_lab, y_lab, X, tmp: Query(
            _binary_net(net, X_lab, y_lab), X, 5, X_labeled=X_lab, y_labeled=y_lab % 2
        ),
        None,  # refused by TiDAL (its own net class), as locally
    ),
}


def _nan_weight(net):
    net = copy.deepcopy(net)
    with torch.no_grad():
        net.module_.layers[0].weight[0, 0] = float("nan")
    return net


def _own_settings(net):
    """The ``make_net`` settings of a fitted test net (its class and dropout)."""
    settings = {"net_class": type(net)}
    dropout = net.get_params().get("module__dropout")
    return settings if dropout is None else {**settings, "module__dropout": dropout}


def _binary_net(net, X_lab, y_lab):
    torch.manual_seed(0)
    return NeuralNetBinaryClassifier(
        BinaryMLP,
        module__dropout=net.get_params().get("module__dropout", 0.0),
        criterion=torch.nn.BCEWithLogitsLoss,
        max_epochs=3,
        lr=0.1,
        batch_size=32,
        train_split=None,
        verbose=0,
    ).fit(X_lab, (y_lab % 2).astype(np.float32))


def _outcome(query, strategy, remote):
    try:
        return query.run(strategy, remote)
    except Exception as exc:  # the error is the outcome compared
        return exc


@pytest.mark.parametrize("case", list(CASES))
@pytest.mark.parametrize("strategy_class", STRATEGIES, ids=lambda cls: cls.__name__)
def test_bad_input_gives_the_local_error_through_ray(strategy_class, case, digits, tmp_path):
    X, y = digits
    X_lab, y_lab, X_pool = X[:60], y[:60], X[60:180]
    make_query, expected = CASES[case]
    query = make_query(_net(strategy_class, X_lab, y_lab), X_lab, y_lab, X_pool, tmp_path)
    local = _outcome(query, build(strategy_class), remote=False)
    # shards of 32 rows (4 shards), so that a bad row lies past the first shard
    remote = _outcome(query, RayScorer(build(strategy_class), shard_size=32), remote=True)
    if expected is not None:
        error, message = expected
        assert isinstance(local, error), local
        assert re.search(message, str(local)), str(local)
    if isinstance(local, Exception):
        assert type(remote) is type(local), remote
        assert str(remote) == str(local)
    else:
        assert not isinstance(remote, Exception), remote
        np.testing.assert_array_equal(remote[0], local[0])
        if local[1] is None:
            assert remote[1] is None
        else:
            np.testing.assert_allclose(remote[1], local[1], rtol=1e-12, atol=0)


def test_every_case_reaches_the_strategies_ray_runs():
    """The cases run through every shardable strategy, and there are some of those."""
    names = {cls.__name__ for cls in STRATEGIES}
    assert {"DynamicALSampler", "EGLSampler", "BADGESampler", "CoresetSampler"} <= names
    assert "BALDSampler" not in names and "RandomSampler" not in names


def test_a_bad_parameter_of_the_wrapped_strategy_is_refused_as_locally(digits):
    X, y = digits
    net = _net(skdynal.MarginSampler, X[:60], y[:60])
    strategy = skdynal.MarginSampler(batch_size=0)
    with pytest.raises(ValueError) as local:
        strategy.select(net, X[60:180], 3)
    with pytest.raises(ValueError) as remote:
        RayScorer(strategy).select(net, X[60:180], 3)
    assert type(remote.value) is type(local.value)
    assert str(remote.value) == str(local.value)
    assert "'batch_size' parameter of MarginSampler" in str(local.value)
