"""Test-only settings of the strategies: the test net each needs, and fast parameters.

These used to be class attributes of the strategies (``_test_net_params``,
``_test_params``); they belong to the tests. The contract suite (``tests/test_common.py``),
the GPU, iNAS and benchmark scripts read them through :func:`net_params` and
:func:`strategy_params`.
"""

from skdynal import (
    BALDSampler,
    LADANetClassifier,
    LADASampler,
    TiDALNetClassifier,
    TiDALSampler,
)

#: Keyword arguments of ``_nets.make_net`` (and ``fitted_net``) per strategy class: a
#: dropout layer for MC dropout, or the skorch net class a strategy trains with.
NET_PARAMS = {
    BALDSampler: {"module__dropout": 0.2},
    LADASampler: {"net_class": LADANetClassifier},
    TiDALSampler: {"net_class": TiDALNetClassifier},
}

#: Strategy parameters that keep the tests fast (fewer generator epochs, fewer draws).
STRATEGY_PARAMS = {
    LADASampler: {"generator_epochs": 2, "n_lambda": 2},
}


def _lookup(table, strategy_class):
    for cls in strategy_class.__mro__:
        if cls in table:
            return dict(table[cls])
    return {}


def net_params(strategy_class):
    """A fresh dict of the test net's settings for ``strategy_class`` (empty if none)."""
    return _lookup(NET_PARAMS, strategy_class)


def strategy_params(strategy_class):
    """A fresh dict of the fast test parameters of ``strategy_class`` (empty if none)."""
    return _lookup(STRATEGY_PARAMS, strategy_class)
