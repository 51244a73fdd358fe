"""The contract every query strategy exported by skdynal follows.

Strategies are found by discovery: every class in ``skdynal.__all__`` (which lists the
built-in strategies of ``skdynal._catalog``) that derives from the package's query-strategy
base class is tested here without being listed, next to the example strategies of
docs/writing_a_strategy.md (``_doc_example.EXAMPLES``). The test net a strategy needs (a
dropout layer, its own net class) follows from its ``capabilities()``; fast parameters are
in ``tests/_strategy_settings.py``.
"""

import inspect
import numbers
import pickle

import _doc_example
import numpy as np
import pytest
import scipy.sparse
import torch
from _nets import (
    BinaryMLP,
    TupleLossClassifier,
    TupleLossMixin,
    TupleMLP,
    TwoInputMLP,
    fitted_net,
    make_net,
)
from _strategy_settings import net_params, strategy_params
from modAL.models import ActiveLearner
from sklearn.base import clone
from sklearn.exceptions import NotFittedError
from sklearn.linear_model import LogisticRegression
from sklearn.utils._param_validation import make_constraint
from skorch import NeuralNetBinaryClassifier, NeuralNetClassifier
from torch.utils.data import TensorDataset

import skdynal
from skdynal import _catalog
from skdynal._base import BaseQueryStrategy
from skdynal._validation import Interval, InvalidParameterError, Options, StrOptions


def _exported_strategies():
    classes = []
    for name in skdynal.__all__:
        obj = getattr(skdynal, name)
        if inspect.isclass(obj) and issubclass(obj, BaseQueryStrategy):
            classes.append(obj)
    return classes


#: The exported strategies and the documentation's example strategies.
STRATEGIES = [
    *_exported_strategies(),
    *(getattr(_doc_example, name) for name in _doc_example.EXAMPLES),
]


def build(strategy_class, **params):
    """A strategy with a fixed random_state and any per-class test settings."""
    return strategy_class(**{"random_state": 0, **strategy_params(strategy_class), **params})


def scores_available(strategy):
    """Whether the strategy scores every pool row (a public ``score`` method)."""
    return callable(getattr(strategy, "score", None))


def snapshot(module):
    return (
        {k: v.detach().clone() for k, v in module.state_dict().items()},
        [m.training for m in module.modules()],
        [None if p.grad is None else p.grad.clone() for p in module.parameters()],
    )


def assert_unchanged(module, before):
    state, modes, grads = before
    for key, value in module.state_dict().items():
        assert torch.equal(value, state[key]), key
    assert [m.training for m in module.modules()] == modes
    for p, grad in zip(module.parameters(), grads, strict=True):
        assert (p.grad is None) == (grad is None)
        assert grad is None or torch.equal(p.grad, grad)


def test_strategies_are_discovered():
    assert {cls.__name__ for cls in _exported_strategies()} == set(_catalog.STRATEGIES)
    assert skdynal.DynamicALSampler in STRATEGIES
    names = {cls.__name__ for cls in STRATEGIES}
    assert {
        "RandomSampler",
        "LeastConfidenceSampler",
        "MarginSampler",
        "EntropySampler",
        "CoresetSampler",
        "BADGESampler",
        "ALBLSampler",
        "EGLSampler",
        "InfluenceSampler",
        "BALDSampler",
    } <= names


@pytest.fixture(params=STRATEGIES, ids=lambda cls: cls.__name__)
def strategy_class(request):
    return request.param


@pytest.fixture
def fitted_mlp(strategy_class, labeled_and_pool):
    """The conftest net, with the strategy's test net settings when it has any."""
    X_lab, y_lab, _ = labeled_and_pool
    return fitted_net(X_lab, y_lab, **net_params(strategy_class))


def test_returns_unique_in_range_indices(strategy_class, fitted_mlp, labeled_and_pool):
    X_lab, y_lab, X_pool = labeled_and_pool
    indices, _ = build(strategy_class).select(
        fitted_mlp, X_pool, n_instances=7, X_labeled=X_lab, y_labeled=y_lab
    )
    assert indices.dtype.kind == "i"
    assert indices.shape == (7,)
    assert len(set(indices.tolist())) == 7
    assert indices.min() >= 0 and indices.max() < len(X_pool)


def test_query_whole_pool(strategy_class, fitted_mlp, labeled_and_pool):
    X_lab, y_lab, X_pool = labeled_and_pool
    X_pool = X_pool[:25]
    indices, _ = build(strategy_class).select(
        fitted_mlp, X_pool, n_instances=25, X_labeled=X_lab, y_labeled=y_lab
    )
    assert sorted(indices.tolist()) == list(range(25))


def test_same_random_state_same_indices(strategy_class, fitted_mlp, labeled_and_pool):
    X_lab, y_lab, X_pool = labeled_and_pool
    first, _ = build(strategy_class, random_state=3).select(
        fitted_mlp, X_pool, 10, X_labeled=X_lab, y_labeled=y_lab
    )
    second, _ = build(strategy_class, random_state=3).select(
        fitted_mlp, X_pool, 10, X_labeled=X_lab, y_labeled=y_lab
    )
    np.testing.assert_array_equal(first, second)


def test_net_left_unchanged(strategy_class, labeled_and_pool):
    X_lab, y_lab, X_pool = labeled_and_pool
    net = fitted_net(X_lab, y_lab, **{"module__dropout": 0.1, **net_params(strategy_class)})
    net.module_.train()
    before = snapshot(net.module_)
    strategy = build(strategy_class)
    strategy.select(net, X_pool, 5, X_labeled=X_lab, y_labeled=y_lab)
    if scores_available(strategy):
        strategy.score(net, X_pool, X_labeled=X_lab, y_labeled=y_lab)
    assert_unchanged(net.module_, before)
    net.module_.eval()
    before = snapshot(net.module_)
    strategy.select(net, X_pool, 5, X_labeled=X_lab, y_labeled=y_lab)
    assert_unchanged(net.module_, before)


def test_global_random_state_untouched(strategy_class, fitted_mlp, labeled_and_pool):
    X_lab, y_lab, X_pool = labeled_and_pool
    torch_state, numpy_state = torch.get_rng_state(), np.random.get_state()  # noqa: NPY002
    build(strategy_class).select(fitted_mlp, X_pool, 5, X_labeled=X_lab, y_labeled=y_lab)
    assert torch.equal(torch.get_rng_state(), torch_state)
    after = np.random.get_state()  # noqa: NPY002
    assert after[0] == numpy_state[0] and np.array_equal(after[1], numpy_state[1])


def test_two_rounds_in_modal_active_learner(strategy_class, digits):
    X, y = digits
    X_pool, y_pool = X[40:200], y[40:200]
    torch.manual_seed(0)
    learner = ActiveLearner(
        estimator=make_net(max_epochs=2, **net_params(strategy_class)),
        query_strategy=build(strategy_class),
        X_training=X[:40],
        y_training=y[:40],
    )
    remaining = np.arange(len(X_pool))
    for _ in range(2):
        idx, X_query = learner.query(X_pool[remaining], n_instances=8)
        assert len(set(np.asarray(idx).tolist())) == 8
        np.testing.assert_array_equal(X_query, X_pool[remaining][idx])
        learner.teach(X_query, y_pool[remaining][idx])
        remaining = np.delete(remaining, idx)
    assert len(learner.X_training) == 40 + 16
    assert len(remaining) == len(X_pool) - 16


def test_pickled_after_a_query_selects_the_same(strategy_class, fitted_mlp, labeled_and_pool):
    X_lab, y_lab, X_pool = labeled_and_pool
    strategy = build(strategy_class)
    strategy.select(fitted_mlp, X_pool, 3, X_labeled=X_lab, y_labeled=y_lab)
    restored = pickle.loads(pickle.dumps(strategy))
    assert type(restored) is strategy_class
    first, _ = strategy.select(fitted_mlp, X_pool, 6, X_labeled=X_lab, y_labeled=y_lab)
    second, _ = restored.select(fitted_mlp, X_pool, 6, X_labeled=X_lab, y_labeled=y_lab)
    np.testing.assert_array_equal(first, second)


def test_scores_agree_with_selection(strategy_class, fitted_mlp, labeled_and_pool):
    X_lab, y_lab, X_pool = labeled_and_pool
    strategy = build(strategy_class)
    indices, chosen_scores = strategy.select(
        fitted_mlp, X_pool, 9, X_labeled=X_lab, y_labeled=y_lab
    )
    if not scores_available(strategy):
        assert chosen_scores is None or len(chosen_scores) == 9
        return
    scores = strategy.score(fitted_mlp, X_pool, X_labeled=X_lab, y_labeled=y_lab)
    assert scores.dtype == np.float64 and scores.shape == (len(X_pool),)
    if strategy.capabilities().unscored_rows:  # -inf marks rows left unscored
        assert not np.isnan(scores).any() and not np.isposinf(scores).any()
        assert np.all(np.isfinite(scores[indices]))
    else:
        assert np.all(np.isfinite(scores))
    selection = getattr(strategy, "selection", "top_b")
    if selection in ("kmeans++", "farthest_first"):
        # each pick's squared distance to its nearest center; the first is the top score
        assert indices[0] == np.argmax(scores) and np.all(chosen_scores >= 0)
        return
    np.testing.assert_array_equal(chosen_scores, scores[indices])
    if selection == "class_balanced":
        # the best of each pseudo class: within a class, no unchosen row scores higher
        labels = fitted_mlp.predict_proba(X_pool).argmax(axis=1)
        unchosen = np.setdiff1d(np.arange(len(X_pool)), indices)
        for label in np.unique(labels[indices]):
            rest = scores[unchosen][labels[unchosen] == label]
            if len(rest):
                assert scores[indices][labels[indices] == label].min() >= rest.max()
        return
    assert chosen_scores.min() >= np.delete(scores, indices).max()


def test_clone_and_params_round_trip(strategy_class):
    strategy = build(strategy_class)
    cloned = clone(strategy)
    assert type(cloned) is strategy_class
    assert cloned.get_params() == strategy.get_params()
    assert cloned.set_params(random_state=5).get_params()["random_state"] == 5
    assert strategy.get_params()["random_state"] == 0


def test_returned_form_follows_installed_modal(
    strategy_class, fitted_mlp, labeled_and_pool, monkeypatch
):
    X_lab, y_lab, X_pool = labeled_and_pool
    strategy = build(strategy_class)
    plain = strategy(fitted_mlp, X_pool, 4, X_labeled=X_lab, y_labeled=y_lab)
    monkeypatch.setattr("skdynal._selection.modal_returns_scores", lambda: False)
    indices = strategy(fitted_mlp, X_pool, 4, X_labeled=X_lab, y_labeled=y_lab)
    assert isinstance(indices, np.ndarray) and indices.shape == (4,)
    monkeypatch.setattr("skdynal._selection.modal_returns_scores", lambda: True)
    indices_and_scores = strategy(fitted_mlp, X_pool, 4, X_labeled=X_lab, y_labeled=y_lab)
    assert isinstance(indices_and_scores, tuple) and len(indices_and_scores) == 2
    np.testing.assert_array_equal(indices_and_scores[0], indices)
    if isinstance(plain, tuple):
        np.testing.assert_array_equal(plain[0], indices)
    else:
        np.testing.assert_array_equal(plain, indices)


# --- bad input: a clear error, and nothing modified -------------------------------------


@pytest.mark.parametrize("n_instances", [0, -2, 121])
def test_bad_n_instances(strategy_class, fitted_mlp, labeled_and_pool, n_instances):
    X_lab, y_lab, X_pool = labeled_and_pool
    with pytest.raises(ValueError, match="n_instances"):
        build(strategy_class)(fitted_mlp, X_pool, n_instances, X_labeled=X_lab, y_labeled=y_lab)


def test_non_integer_n_instances(strategy_class, fitted_mlp, labeled_and_pool):
    X_lab, y_lab, X_pool = labeled_and_pool
    with pytest.raises(TypeError, match="n_instances must be an integer"):
        build(strategy_class)(fitted_mlp, X_pool, 2.5, X_labeled=X_lab, y_labeled=y_lab)


def test_empty_pool(strategy_class, fitted_mlp, labeled_and_pool):
    X_lab, y_lab, X_pool = labeled_and_pool
    with pytest.raises(ValueError, match="empty"):
        build(strategy_class)(fitted_mlp, X_pool[:0], 1, X_labeled=X_lab, y_labeled=y_lab)


@pytest.mark.parametrize("bad_value", [np.nan, np.inf, -np.inf])
def test_non_finite_pool(strategy_class, fitted_mlp, labeled_and_pool, bad_value):
    X_lab, y_lab, X_pool = labeled_and_pool
    X_bad = X_pool.copy()
    X_bad[17, 5] = bad_value
    before = snapshot(fitted_mlp.module_)
    with pytest.raises(ValueError, match="NaN or infinite"):
        build(strategy_class)(fitted_mlp, X_bad, 3, X_labeled=X_lab, y_labeled=y_lab)
    assert_unchanged(fitted_mlp.module_, before)


def test_unfitted_net(strategy_class, labeled_and_pool):
    X_lab, y_lab, X_pool = labeled_and_pool
    with pytest.raises(NotFittedError, match="not fitted"):
        build(strategy_class)(
            make_net(**net_params(strategy_class)), X_pool, 3, X_labeled=X_lab, y_labeled=y_lab
        )


def test_unfitted_learner(strategy_class, labeled_and_pool):
    _, _, X_pool = labeled_and_pool
    learner = ActiveLearner(
        estimator=make_net(**net_params(strategy_class)), query_strategy=build(strategy_class)
    )
    with pytest.raises(NotFittedError, match="not fitted"):
        learner.query(X_pool, n_instances=3)


def test_missing_labeled_data(strategy_class, fitted_mlp, labeled_and_pool):
    _, _, X_pool = labeled_and_pool
    strategy = build(strategy_class)
    if not strategy.capabilities().needs_labeled:
        indices, _ = strategy.select(fitted_mlp, X_pool, 3)
        assert len(indices) == 3
        return
    with pytest.raises(ValueError, match="needs the labeled set"):
        strategy(fitted_mlp, X_pool, 3)


def test_only_half_of_labeled_set(strategy_class, fitted_mlp, labeled_and_pool):
    X_lab, _, X_pool = labeled_and_pool
    with pytest.raises(ValueError, match="both X_labeled and y_labeled"):
        build(strategy_class)(fitted_mlp, X_pool, 3, X_labeled=X_lab)


def test_pool_shape_mismatch_names_shapes(strategy_class, fitted_mlp, labeled_and_pool):
    X_lab, y_lab, X_pool = labeled_and_pool
    with pytest.raises(ValueError, match=r"\(63,\).*\(64,\)"):
        build(strategy_class)(fitted_mlp, X_pool[:, :63], 3, X_labeled=X_lab, y_labeled=y_lab)


def test_pool_shape_mismatch_without_labeled_set(strategy_class, fitted_mlp, labeled_and_pool):
    _, _, X_pool = labeled_and_pool
    strategy = build(strategy_class)
    needs_labeled = strategy.capabilities().needs_labeled
    expected = "needs the labeled set" if needs_labeled else r"shape \(63,\)"
    with pytest.raises(ValueError, match=expected):
        strategy(fitted_mlp, X_pool[:, :63], 3)


def test_not_a_skorch_net(strategy_class, labeled_and_pool):
    X_lab, y_lab, X_pool = labeled_and_pool
    learner = ActiveLearner(
        estimator=LogisticRegression(max_iter=200),
        query_strategy=build(strategy_class),
        X_training=X_lab,
        y_training=y_lab,
    )
    with pytest.raises(TypeError, match="skorch NeuralNet"):
        learner.query(X_pool, n_instances=2)


def test_not_a_learner(strategy_class, labeled_and_pool):
    _, _, X_pool = labeled_and_pool
    with pytest.raises(TypeError, match="modAL learner"):
        build(strategy_class)(object(), X_pool, 2)


def test_pool_of_strings(strategy_class, fitted_mlp, labeled_and_pool):
    X_lab, y_lab, _ = labeled_and_pool
    with pytest.raises(TypeError, match="X_pool"):
        build(strategy_class)(
            fitted_mlp, np.array([["a"] * 64] * 3), 1, X_labeled=X_lab, y_labeled=y_lab
        )


# --- non-finite values, wherever they enter (issue 14, item 2) ------------------------


def test_nan_in_labeled_set(strategy_class, fitted_mlp, labeled_and_pool):
    X_lab, y_lab, X_pool = labeled_and_pool
    X_bad = X_lab.copy()
    X_bad[3, 5] = np.nan
    with pytest.raises(ValueError, match=r"labeled set X_labeled contains NaN.*row 3"):
        build(strategy_class).select(fitted_mlp, X_pool, 3, X_labeled=X_bad, y_labeled=y_lab)


def test_non_finite_parameters(strategy_class, fitted_mlp, labeled_and_pool):
    X_lab, y_lab, X_pool = labeled_and_pool
    with torch.no_grad():
        fitted_mlp.module_.layers[0].weight[0, 0] = float("nan")
    with pytest.raises(ValueError, match=r"parameters are not finite: 'layers\.0\.weight'"):
        build(strategy_class).select(fitted_mlp, X_pool, 3, X_labeled=X_lab, y_labeled=y_lab)


def test_pool_row_overflowing_float32(strategy_class, fitted_mlp, labeled_and_pool):
    X_lab, y_lab, X_pool = labeled_and_pool
    X_bad = X_pool.astype(np.float64)
    X_bad[17, 5] = 1e300  # finite in float64, inf in the module's float32
    with pytest.raises(ValueError, match="X_pool row 17 overflows float32"):
        build(strategy_class).select(fitted_mlp, X_bad, 3, X_labeled=X_lab, y_labeled=y_lab)


def test_out_of_scale_pool_row(strategy_class, fitted_mlp, labeled_and_pool):
    """A row of 1e30 (finite in float32): valid indices when every computed value is
    finite, otherwise an error that blames the row, not the model."""
    X_lab, y_lab, X_pool = labeled_and_pool
    X_bad = X_pool.copy()
    X_bad[17] = 1e30
    try:
        indices, _ = build(strategy_class).select(
            fitted_mlp, X_bad, 5, X_labeled=X_lab, y_labeled=y_lab
        )
    except ValueError as exc:
        assert "pool row 17" in str(exc) and "The input is the problem" in str(exc)
        assert "1e+30" in str(exc)
    else:
        assert len(set(indices.tolist())) == 5 and indices.max() < len(X_bad)


# --- inputs skorch accepts (issue 14, item 4) -----------------------------------------


def _valid(indices, n_pool, n_instances):
    indices = np.asarray(indices)
    return (
        indices.shape == (n_instances,)
        and len(set(indices.tolist())) == n_instances
        and indices.min() >= 0
        and indices.max() < n_pool
    )


def _fit(module, X, y, net_class=None, **kwargs):
    params = {k: v for k, v in kwargs.items() if k != "net_class"}
    torch.manual_seed(0)
    return make_net(module=module, net_class=net_class or NeuralNetClassifier, **params).fit(X, y)


def test_dict_inputs_to_a_multi_input_module(strategy_class, labeled_and_pool):
    X_lab, y_lab, X_pool = labeled_and_pool
    halves = lambda X: {"left": X[:, :32], "right": X[:, 32:]}  # noqa: E731
    params = net_params(strategy_class)
    net = _fit(
        TwoInputMLP, halves(X_lab), y_lab, net_class=params.pop("net_class", None), **params
    )
    strategy = build(strategy_class)
    refusals = {
        skdynal.ALBLSampler: "ALBLSampler finds its queried rows",
        skdynal.LADASampler: "LADASampler mixes pool rows pairwise",
    }
    if strategy_class in refusals:
        with pytest.raises(TypeError, match=refusals[strategy_class]):
            strategy.select(net, halves(X_pool), 5, X_labeled=halves(X_lab), y_labeled=y_lab)
        return
    indices, _ = strategy.select(net, halves(X_pool), 5, X_labeled=halves(X_lab), y_labeled=y_lab)
    assert _valid(indices, len(X_pool), 5)


def test_binary_classifier_with_one_logit(strategy_class, labeled_and_pool):
    X_lab, y_lab, X_pool = labeled_and_pool
    y_bin = (y_lab % 2).astype(np.float32)
    dropout = net_params(strategy_class).get("module__dropout", 0.0)
    torch.manual_seed(0)
    net = NeuralNetBinaryClassifier(
        BinaryMLP,
        module__dropout=dropout,
        criterion=torch.nn.BCEWithLogitsLoss,
        max_epochs=3,
        lr=0.1,
        batch_size=32,
        train_split=None,
        verbose=0,
    ).fit(X_lab, y_bin)
    strategy = build(strategy_class)
    refusals = {
        skdynal.TiDALSampler: (TypeError, "TiDALNetClassifier"),
        skdynal.NTKLookaheadSampler: (ValueError, r"shape \(n_samples, n_outputs\)"),
    }
    if strategy_class in refusals:
        error, message = refusals[strategy_class]
        with pytest.raises(error, match=message):
            strategy.select(net, X_pool, 5, X_labeled=X_lab, y_labeled=y_bin)
        return
    indices, _ = strategy.select(net, X_pool, 5, X_labeled=X_lab, y_labeled=y_bin)
    assert _valid(indices, len(X_pool), 5)


def test_string_labels_through_the_nets_classes(strategy_class, labeled_and_pool):
    X_lab, y_lab, X_pool = labeled_and_pool
    names = np.array([f"digit {i}" for i in range(10)])
    net = fitted_net(X_lab, y_lab, classes=list(names), **net_params(strategy_class))
    by_index, _ = build(strategy_class).select(net, X_pool, 5, X_labeled=X_lab, y_labeled=y_lab)
    by_name, _ = build(strategy_class).select(
        net, X_pool, 5, X_labeled=X_lab, y_labeled=names[y_lab]
    )
    np.testing.assert_array_equal(by_name, by_index)


def test_scipy_sparse_pool(strategy_class, fitted_mlp, labeled_and_pool):
    X_lab, y_lab, X_pool = labeled_and_pool
    dense, _ = build(strategy_class).select(
        fitted_mlp, X_pool, 5, X_labeled=X_lab, y_labeled=y_lab
    )
    sparse, _ = build(strategy_class).select(
        fitted_mlp, scipy.sparse.csr_matrix(X_pool), 5, X_labeled=X_lab, y_labeled=y_lab
    )
    np.testing.assert_array_equal(sparse, dense)


def test_get_loss_unpacking_a_tuple_output(strategy_class, labeled_and_pool):
    X_lab, y_lab, X_pool = labeled_and_pool
    params = net_params(strategy_class)
    own_class = params.pop("net_class", None)
    tuple_class = TupleLossClassifier
    if own_class is not None:  # e.g. TiDALNetClassifier
        tuple_class = type("TupleLoss" + own_class.__name__, (TupleLossMixin, own_class), {})
    plain = fitted_net(X_lab, y_lab, **params, **({"net_class": own_class} if own_class else {}))
    tupled = _fit(TupleMLP, X_lab, y_lab, net_class=tuple_class, **params)
    tupled.module_.inner.load_state_dict(plain.module_.state_dict())
    expected, _ = build(strategy_class).select(plain, X_pool, 5, X_labeled=X_lab, y_labeled=y_lab)
    indices, _ = build(strategy_class).select(tupled, X_pool, 5, X_labeled=X_lab, y_labeled=y_lab)
    np.testing.assert_array_equal(indices, expected)


def test_label_outside_the_module_outputs(strategy_class, fitted_mlp, labeled_and_pool):
    X_lab, y_lab, X_pool = labeled_and_pool
    y_bad = y_lab.copy()
    y_bad[4] = 12
    with pytest.raises(ValueError, match="label 12, outside the module's 10 outputs"):
        build(strategy_class).select(fitted_mlp, X_pool, 3, X_labeled=X_lab, y_labeled=y_bad)


def test_a_wrong_batch_never_reaches_the_user(labeled_and_pool, monkeypatch):
    X_lab, y_lab, X_pool = labeled_and_pool
    fitted_mlp = fitted_net(X_lab, y_lab)
    strategy = skdynal.RandomSampler(random_state=0)
    for wrong in ([3, 3, 5], [0, 1, len(X_pool)], [0, 1]):
        monkeypatch.setattr(
            skdynal.RandomSampler,
            "select_from_outputs",
            lambda *args, wrong=wrong: (np.array(wrong), None),
        )
        with pytest.raises(RuntimeError, match="no batch is returned rather than a wrong one"):
            strategy.select(fitted_mlp, X_pool, 3, X_labeled=X_lab, y_labeled=y_lab)


def test_k_center_and_k_means_plus_plus_refuse_nan_embeddings():
    from skdynal.strategies._badge import kmeans_plusplus_seeding
    from skdynal.strategies._coreset import k_center_greedy

    embeddings = torch.randn(6, 3, dtype=torch.float64)
    embeddings[2, 1] = float("nan")
    rng = np.random.RandomState(0)
    with pytest.raises(ValueError, match="embeddings are NaN or infinite in 1 rows of the pool"):
        k_center_greedy(embeddings, None, 3, rng)
    with pytest.raises(ValueError, match="gradient embeddings are NaN or infinite"):
        kmeans_plusplus_seeding(embeddings, embeddings.abs(), 3, rng)


# --- pools of every kind, with and without a NaN (issue 15, item 1) ----------------------


def pool_of_kind(X, kind, tmp_path):
    """``X`` as an array, a memory-mapped ``.npy`` file or a torch ``TensorDataset``."""
    if kind == "array":
        return X
    if kind == "memmap":
        path = tmp_path / "pool.npy"
        np.save(path, X)
        return np.load(path, mmap_mode="r")
    return TensorDataset(torch.as_tensor(X), torch.zeros(len(X)))


@pytest.mark.parametrize("kind", ["memmap", "dataset"])
def test_every_pool_kind_selects_the_same(
    strategy_class, fitted_mlp, labeled_and_pool, kind, tmp_path
):
    X_lab, y_lab, X_pool = labeled_and_pool
    labeled = {"X_labeled": X_lab, "y_labeled": y_lab}
    expected, expected_scores = build(strategy_class).select(fitted_mlp, X_pool, 6, **labeled)
    pool = pool_of_kind(X_pool, kind, tmp_path)
    indices, scores = build(strategy_class).select(fitted_mlp, pool, 6, **labeled)
    np.testing.assert_array_equal(indices, expected)
    if expected_scores is None:
        assert scores is None
    else:
        np.testing.assert_allclose(scores, expected_scores, rtol=1e-10, atol=0)


@pytest.mark.parametrize("kind", ["array", "memmap", "dataset"])
def test_nan_in_a_pool_of_every_kind(strategy_class, fitted_mlp, labeled_and_pool, kind, tmp_path):
    """Never a batch chosen from a pool holding NaN: an error naming the pool."""
    X_lab, y_lab, X_pool = labeled_and_pool
    X_bad = X_pool.copy()
    X_bad[17, 5] = np.nan
    pool = pool_of_kind(X_bad, kind, tmp_path)
    before = snapshot(fitted_mlp.module_)
    with pytest.raises(
        ValueError, match=r"X_pool( of shape \(120, 64\))? contains NaN or infinite"
    ):
        build(strategy_class).select(fitted_mlp, pool, 3, X_labeled=X_lab, y_labeled=y_lab)
    assert_unchanged(fitted_mlp.module_, before)


# --- parameter validation (issue 15, item 3) ---------------------------------------------


class _Unknown:
    """A value of a type that no constraint allows."""

    def __repr__(self):
        return "_Unknown()"


def _candidates(constraint):
    """Values just outside ``constraint`` (each kind of constraint gives its own)."""
    if isinstance(constraint, Interval):
        integral = constraint.type is numbers.Integral
        step = 1 if integral else 0.5
        values = [True] if constraint.left is None or constraint.left <= 1 else []  # a flag
        values += [] if integral else [np.nan]
        if integral:
            values.append(1.5)  # not an integer
        for bound, side, closed in (
            (constraint.left, -1, constraint.closed in ("left", "both")),
            (constraint.right, 1, constraint.closed in ("right", "both")),
        ):
            if bound is None:
                continue
            if np.isinf(bound):
                values.append(float(bound) if not closed else None)
            else:
                values.append(bound + side * step if closed else bound)
        return [v for v in values if v is not None]
    if isinstance(constraint, StrOptions):
        return ["not-" + "-".join(sorted(constraint.options))]
    if isinstance(constraint, Options):
        return [_Unknown()]
    if constraint == "random_state":
        return [-1, "seed"]
    if constraint == "boolean":
        return ["yes", 2]
    return [_Unknown(), "text", 1.5]


def invalid_values(constraints):
    """Values that satisfy none of ``constraints``: at least one per kind of constraint."""
    checks = [make_constraint(c) for c in constraints]
    values = [_Unknown()]
    for constraint in constraints:
        values.extend(_candidates(constraint))
    invalid = {}
    for value in values:
        if not any(check.is_satisfied_by(value) for check in checks):
            invalid.setdefault(repr(value), value)
    return list(invalid.values())


def test_parameter_constraints_cover_every_parameter(strategy_class):
    signature = inspect.signature(strategy_class.__init__)
    names = {n for n, p in signature.parameters.items() if n != "self" and p.kind != p.VAR_KEYWORD}
    assert set(strategy_class._parameter_constraints) == names


def test_numeric_parameters_refuse_true(strategy_class, fitted_mlp, labeled_and_pool):
    """``True`` is a flag, never a count or a weight (``bool`` is an ``int`` subclass)."""
    X_lab, y_lab, X_pool = labeled_and_pool
    for name, constraints in strategy_class._parameter_constraints.items():
        if not any(isinstance(c, Interval) for c in constraints) or "boolean" in constraints:
            continue
        strategy = build(strategy_class, **{name: True})
        with pytest.raises(InvalidParameterError, match=f"'{name}' parameter"):
            strategy.select(fitted_mlp, X_pool, 2, X_labeled=X_lab, y_labeled=y_lab)


def test_a_bad_value_of_every_parameter_is_refused(strategy_class, fitted_mlp, labeled_and_pool):
    X_lab, y_lab, X_pool = labeled_and_pool
    for name, constraints in strategy_class._parameter_constraints.items():
        bad_values = invalid_values(constraints)
        assert bad_values, f"no invalid value found for {name}: {constraints}"
        for value in bad_values:
            strategy = build(strategy_class, **{name: value})
            message = f"'{name}' parameter of {strategy_class.__name__} must be"
            with pytest.raises(InvalidParameterError, match=message):
                strategy.select(fitted_mlp, X_pool, 2, X_labeled=X_lab, y_labeled=y_lab)
