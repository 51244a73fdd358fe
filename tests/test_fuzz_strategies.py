"""Fuzz every exported strategy with bad and edge inputs (hypothesis).

Each call either works correctly (distinct in-range integer indices, as many as asked) or
raises one of the documented errors (``ValueError``, ``TypeError``, ``NotFittedError``);
in both cases the net is left exactly as it was.
"""

import numpy as np
import pytest
from _nets import fitted_net
from _strategy_settings import net_params
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sklearn.exceptions import NotFittedError
from test_common import STRATEGIES, assert_unchanged, build, snapshot

DOCUMENTED_ERRORS = (ValueError, TypeError, NotFittedError)

#: Inputs tried, counted by the tests below (reported in docs/reliability.md).
EXAMPLES_PER_STRATEGY = 40


DEFECTS = [
    None,
    None,
    None,
    None,
    "empty",
    "fewer features",
    "more features",
    "extra dimension",
    "float16",
    "float64",
    "int64",
    "bool",
    "strings",
    "nan",
    "inf",
    "n_instances",
]


@st.composite
def queries(draw):
    """A pool and an ``n_instances``: well formed, or with one defect (the drawn one)."""
    defect = draw(st.sampled_from(DEFECTS))
    n_rows = 0 if defect == "empty" else draw(st.integers(min_value=1, max_value=12))
    n_features = {"fewer features": 63, "more features": 65}.get(defect, 64)
    shape = (n_rows, n_features, 1) if defect == "extra dimension" else (n_rows, n_features)
    size = int(np.prod(shape))
    X_pool = np.asarray(
        draw(st.lists(st.floats(0, 1, width=32), min_size=size, max_size=size)),
        dtype=np.float32,
    ).reshape(shape)
    if defect in ("nan", "inf"):
        row = draw(st.integers(0, n_rows - 1))
        X_pool[row, draw(st.integers(0, n_features - 1))] = np.nan if defect == "nan" else np.inf
    if defect in ("float16", "float64", "int64", "bool"):
        X_pool = X_pool.astype(defect)
    if defect == "strings":
        X_pool = X_pool.astype(str)
    n_instances = draw(st.integers(min_value=1, max_value=max(1, n_rows)))
    if defect == "n_instances":
        n_instances = draw(
            st.one_of(
                st.sampled_from([0, -1, n_rows + 1, 0.5, 2.0, "3", None, True]),
                st.integers(max_value=0),
            )
        )
    return X_pool, n_instances


@pytest.fixture(scope="module")
def labeled(digits_module):
    X, y = digits_module
    return X[:60], y[:60]


@pytest.fixture(scope="module")
def digits_module():
    from sklearn.datasets import load_digits

    X, y = load_digits(return_X_y=True)
    return (X / 16.0).astype(np.float32), y.astype(np.int64)


@pytest.mark.slow  # hypothesis: about 1-2 s per strategy, ~20 s in all
@pytest.mark.parametrize("strategy_class", STRATEGIES, ids=lambda cls: cls.__name__)
def test_bad_and_edge_inputs(strategy_class, labeled):
    X_lab, y_lab = labeled
    net = fitted_net(X_lab, y_lab, **net_params(strategy_class))
    before = snapshot(net.module_)
    outcomes = {"worked": 0, "refused": 0}

    @settings(
        max_examples=EXAMPLES_PER_STRATEGY,
        deadline=None,
        derandomize=True,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    )
    @given(query=queries(), with_labels=st.sampled_from([True, True, False]))
    def check(query, with_labels):
        X_pool, n_instances = query
        labels = dict(X_labeled=X_lab, y_labeled=y_lab) if with_labels else {}
        try:
            indices, _ = build(strategy_class).select(net, X_pool, n_instances, **labels)
        except DOCUMENTED_ERRORS as exc:
            assert str(exc), "errors must say what was wrong"
            outcomes["refused"] += 1
        else:
            indices = np.asarray(indices)
            assert indices.dtype.kind == "i"
            assert len(indices) == n_instances == len(set(indices.tolist()))
            assert indices.min() >= 0 and indices.max() < len(X_pool)
            assert X_pool.shape[1:] == (64,)
            assert np.isfinite(X_pool.astype(np.float64)).all()
            outcomes["worked"] += 1
        assert_unchanged(net.module_, before)

    check()
    assert outcomes["worked"] + outcomes["refused"] == EXAMPLES_PER_STRATEGY
    print(f"{strategy_class.__name__}: {outcomes}")
    assert outcomes["refused"] > 0 and outcomes["worked"] > 0
