"""Uniform random sampling, the baseline every active learning strategy is compared with."""

import torch

from .._adapter import eval_mode, explain_shape_errors
from .._base import BaseQueryStrategy
from .._streaming import _rows

__all__ = ["RandomSampler"]


class RandomSampler(BaseQueryStrategy):
    """Query pool rows uniformly at random, without replacement.

    The net is not used to choose, only checked: it must be fitted, and one forward pass on
    the first pool row makes sure the pool has the feature shape the net expects.

    Parameters
    ----------
    random_state : int, RandomState instance or None, default=None
        Draws the rows. The same seed gives the same rows.

    See Also
    --------
    ALBLSampler : treats this strategy as the uniform expert of its bandit.

    References
    ----------
    .. [1] B. Settles, "Active Learning Literature Survey", Computer Sciences Technical
       Report 1648, University of Wisconsin-Madison, 2009 (random sampling as the
       passive-learning baseline).

    Examples
    --------
    >>> from skdynal import RandomSampler
    >>> RandomSampler(random_state=0)
    RandomSampler(random_state=0)
    """

    #: ALBL treats the strategy's choice as uniform over the pool (``n / n_pool`` per row).
    _uniform_advice = True

    def __init__(self, random_state=None):
        self.random_state = random_state

    def _query(self, adapter, X_pool, n_instances, random_state):
        module = adapter.module
        first_row = _rows(X_pool, 0, 1)
        with eval_mode(module), torch.no_grad():
            for X_batch, _ in adapter.iterate(first_row, batch_size=1):
                with explain_shape_errors(X_pool, module):
                    adapter.forward(X_batch)
        indices = random_state.choice(len(X_pool), size=n_instances, replace=False)
        return indices, None
