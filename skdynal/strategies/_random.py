"""Uniform random sampling, the baseline every active learning strategy is compared with."""

import dataclasses
from typing import ClassVar

import torch

from .._base import BaseQueryStrategy

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

    _parameter_constraints: ClassVar[dict] = {"random_state": ["random_state"]}

    def __init__(self, random_state=None):
        self.random_state = random_state

    def capabilities(self):
        return dataclasses.replace(
            super().capabilities(), reads_pool=False, selects_uniformly=True
        )

    def batch_outputs(self, adapter, state, X_batch):
        """The module's output on a batch: only run to check the pool's feature shape."""
        with torch.no_grad():
            return adapter.forward(X_batch)

    def select_from_outputs(self, adapter, state, outputs, n_instances, random_state, pool):
        pool.map(rows=[0])  # one forward pass on the first row checks the feature shape
        indices = random_state.choice(len(pool), size=n_instances, replace=False)
        return indices, None
