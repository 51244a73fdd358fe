"""Test-only settings of the strategies: the test net each needs, and fast parameters.

The test net follows from what a strategy declares (``capabilities()``): its own skorch net
class (TiDAL's, LADA's), or a dropout layer for MC dropout (BALD); a new strategy needs no
line here. :data:`STRATEGY_PARAMS` only makes slow strategies faster. The contract suite
(``tests/test_common.py``), the GPU, iNAS and benchmark scripts read them through
:func:`net_params` and :func:`strategy_params`.
"""

from skdynal import LADASampler

#: The dropout probability of the test net of a strategy that needs dropout layers.
DROPOUT = 0.2

#: Strategy parameters that keep the tests fast (fewer generator epochs, fewer draws).
STRATEGY_PARAMS = {
    LADASampler: {"generator_epochs": 2, "n_lambda": 2},
}


def net_params(strategy_class):
    """A fresh dict of ``_nets.make_net`` (and ``fitted_net``) keyword arguments for
    ``strategy_class``: ``net_class`` and ``module__dropout`` as its default instance's
    ``capabilities()`` declares them (empty if it needs neither)."""
    capabilities = strategy_class(**strategy_params(strategy_class)).capabilities()
    params = {}
    if capabilities.net_class is not None:
        params["net_class"] = capabilities.net_class
    if capabilities.needs_dropout:
        params["module__dropout"] = DROPOUT
    return params


def strategy_params(strategy_class):
    """A fresh dict of the fast test parameters of ``strategy_class`` (empty if none)."""
    for cls in strategy_class.__mro__:
        if cls in STRATEGY_PARAMS:
            return dict(STRATEGY_PARAMS[cls])
    return {}
