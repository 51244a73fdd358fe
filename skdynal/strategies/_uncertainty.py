"""Uncertainty sampling: least confidence, smallest margin and largest entropy."""

from typing import ClassVar

import numpy as np
from scipy.special import entr

from .._base import BaseScoringStrategy
from .._validation import BATCH_SIZE
from ._outputs import batch_probabilities

__all__ = ["EntropySampler", "LeastConfidenceSampler", "MarginSampler"]


class _UncertaintySampler(BaseScoringStrategy):
    """Scores computed from the class probabilities of the net's ``predict_proba``."""

    _parameter_constraints: ClassVar[dict] = {
        "batch_size": BATCH_SIZE,
        "random_state": ["random_state"],
    }

    def __init__(self, batch_size=None, random_state=None):
        self.batch_size = batch_size
        self.random_state = random_state

    def score_batch(self, adapter, state, X_batch):
        probabilities = batch_probabilities(adapter, X_batch).double().cpu().numpy()
        return self._uncertainty(probabilities)


_PARAMETERS = """
    Parameters
    ----------
    batch_size : int, default=None
        Pool rows per forward pass. ``None`` uses the net's validation batch size.
    random_state : int, RandomState instance or None, default=None
        Breaks ties among equal scores.
"""

_PROBABILITIES = """
    The class probabilities ``p(y | x)`` are those of the net's ``predict_proba``: the
    softmax of the module output when the criterion is ``CrossEntropyLoss``, the module
    output itself when it is ``NLLLoss`` (or whatever the net's ``predict_nonlinearity``
    says). They are computed in batches with the module in ``eval()`` mode. Cost: one
    forward pass over the pool; memory ``n_pool x n_classes``.
"""


class LeastConfidenceSampler(_UncertaintySampler):
    __doc__ = f"""Query the rows whose most likely class is the least likely.

    Score: ``1 - max_y p(y | x)``; the ``n_instances`` largest are queried.
    {_PROBABILITIES}{_PARAMETERS}
    References
    ----------
    .. [1] D. D. Lewis and W. A. Gale, "A Sequential Algorithm for Training Text
       Classifiers", SIGIR 1994.
    .. [2] B. Settles, "Active Learning Literature Survey", University of
       Wisconsin-Madison, 2009.

    Examples
    --------
    >>> from skdynal import LeastConfidenceSampler
    >>> LeastConfidenceSampler(batch_size=512)
    LeastConfidenceSampler(batch_size=512)
    """

    @staticmethod
    def _uncertainty(probabilities):
        return 1.0 - probabilities.max(axis=1)


class MarginSampler(_UncertaintySampler):
    __doc__ = f"""Query the rows with the smallest gap between the two most likely classes.

    Score: ``1 - (p_(1) - p_(2))`` with ``p_(1) >= p_(2)`` the two largest class
    probabilities; the ``n_instances`` largest scores (smallest margins) are queried.
    {_PROBABILITIES}{_PARAMETERS}
    References
    ----------
    .. [1] T. Scheffer, C. Decomain and S. Wrobel, "Active Hidden Markov Models for
       Information Extraction", IDA 2001.

    Examples
    --------
    >>> from skdynal import MarginSampler
    >>> MarginSampler(random_state=0)
    MarginSampler(random_state=0)
    """

    @staticmethod
    def _uncertainty(probabilities):
        if probabilities.shape[1] < 2:
            raise ValueError(
                "MarginSampler needs at least two classes; the net predicts "
                f"{probabilities.shape[1]}."
            )
        top_two = np.partition(probabilities, -2, axis=1)[:, -2:]
        return 1.0 - (top_two[:, 1] - top_two[:, 0])


class EntropySampler(_UncertaintySampler):
    __doc__ = f"""Query the rows whose predicted class distribution has the largest entropy.

    Score: ``-sum_y p(y | x) log p(y | x)`` (natural log, ``0 log 0 = 0``); the
    ``n_instances`` largest are queried.
    {_PROBABILITIES}{_PARAMETERS}
    References
    ----------
    .. [1] C. E. Shannon, "A Mathematical Theory of Communication", Bell System Technical
       Journal, 1948.
    .. [2] B. Settles, "Active Learning Literature Survey", University of
       Wisconsin-Madison, 2009.

    Examples
    --------
    >>> from skdynal import EntropySampler
    >>> EntropySampler()
    EntropySampler()
    """

    @staticmethod
    def _uncertainty(probabilities):
        return entr(np.clip(probabilities, 0.0, None)).sum(axis=1)
