"""Base classes for query strategies: the modAL call protocol and the shared checks."""

import numpy as np
from sklearn.base import BaseEstimator
from sklearn.utils import check_random_state

from ._adapter import resolve_learner
from ._selection import select_top_k, to_modal_result
from ._validation import check_feature_shape, check_n_instances, check_pool

__all__ = ["BaseQueryStrategy", "BaseScoringStrategy"]


class BaseQueryStrategy(BaseEstimator):
    """Base class of skdynal's query strategies.

    A strategy is a scikit-learn estimator-like object (``get_params``, ``set_params`` and
    ``clone`` work; ``__init__`` only stores parameters) that modAL calls as
    ``strategy(learner, X_pool, n_instances=1)``.

    Subclasses implement ``_query(adapter, X_pool, n_instances, random_state)`` returning
    ``(indices, scores_or_None)``.

    Strategies whose selection is global (it looks at the whole pool at once, as k-center or
    k-means++ do) can also be run on shards of the pool, for example by
    :class:`skdynal.distributed.RayScorer`, by implementing three hooks:

    - ``_scoring_state(adapter) -> dict``: the round's driver-side state, computed once
      (for example the labeled set's embeddings); cheap to pickle.
    - ``_row_outputs(adapter, state, X_rows) -> tuple of ndarray``: per-row outputs (for
      example embeddings), each with one row per row of ``X_rows``; a row's outputs must not
      depend on the other rows.
    - ``_select_from_outputs(adapter, state, outputs, n_instances, random_state)``: the
      selection from the outputs of the whole pool (concatenated in row order), returning
      what ``_query`` returns.

    ``_query`` and the three hooks must give the same answer for the same random state.
    """

    #: Whether the strategy needs the labeled set (and raises without it).
    _needs_labeled = False

    def _scoring_state(self, adapter):
        """Driver-side state of a round, shared by every shard of the pool (default: none)."""
        return {}

    def _row_outputs(self, adapter, state, X_rows):
        """Per-row outputs of ``X_rows`` for a global selection (see the class docstring)."""
        raise NotImplementedError(
            f"{type(self).__name__} does not split its work into per-row outputs."
        )

    def _select_from_outputs(self, adapter, state, outputs, n_instances, random_state):
        """Selection from the per-row outputs of the whole pool (see the class docstring)."""
        raise NotImplementedError(
            f"{type(self).__name__} does not select from per-row outputs."
        )

    def __call__(self, learner, X_pool, n_instances=1, *, X_labeled=None, y_labeled=None):
        """Choose ``n_instances`` rows of ``X_pool`` to label (modAL's query protocol).

        Parameters
        ----------
        learner : modAL learner or skorch.NeuralNet
            A modAL ``ActiveLearner`` around a fitted skorch net, or a fitted net together
            with ``X_labeled`` and ``y_labeled``.
        X_pool : array-like of shape (n_pool, ...)
            The unlabeled pool.
        n_instances : int, default=1
            How many rows to choose.
        X_labeled, y_labeled : array-like, default=None
            The labeled set, for a bare net (or to override the learner's).

        Returns
        -------
        indices : ndarray of int
            With modAL-python 0.4.1, the indices into ``X_pool`` only. With modAL 0.4.2 and
            later, the tuple ``(indices, scores)`` that it unpacks.
        """
        indices, scores = self.select(
            learner, X_pool, n_instances, X_labeled=X_labeled, y_labeled=y_labeled
        )
        return to_modal_result(indices, scores)

    def select(self, learner, X_pool, n_instances=1, *, X_labeled=None, y_labeled=None):
        """Like calling the strategy, but always returns ``(indices, scores)``.

        ``scores`` holds the score of each chosen row (``None`` for strategies that do not
        rank by a score).
        """
        adapter, X_pool = self._prepare(learner, X_pool, X_labeled, y_labeled)
        n_instances = check_n_instances(n_instances, len(X_pool))
        random_state = check_random_state(self.random_state)
        indices, scores = self._query(adapter, X_pool, n_instances, random_state)
        return np.asarray(indices, dtype=np.intp), scores

    def _prepare(self, learner, X_pool, X_labeled, y_labeled):
        adapter = resolve_learner(learner, X_labeled=X_labeled, y_labeled=y_labeled)
        X_pool = check_pool(X_pool)
        check_feature_shape(X_pool, adapter.X_labeled)
        if self._needs_labeled and not adapter.has_labeled:
            raise ValueError(
                f"{type(self).__name__} needs the labeled set: give the ActiveLearner "
                "X_training and y_training, or pass X_labeled and y_labeled."
            )
        return adapter, X_pool


class BaseScoringStrategy(BaseQueryStrategy):
    """Base class of strategies that rank the pool by a score and query the largest.

    Subclasses implement ``_score_rows(adapter, state, X_rows) -> ndarray of float64``, the
    scores of some rows of the pool given the round's state from ``_scoring_state(adapter)``
    (default: an empty dict; override it to compute something once per round, such as
    dynamicAL's labeled-set gradient). A row's score must not depend on the other rows, so
    that shards of the pool can be scored apart (for example on a Ray cluster by
    :class:`skdynal.distributed.RayScorer`) and their top-k merged exactly. Subclasses that
    cannot be sharded may override ``_score(adapter, X_pool)`` instead.
    """

    def _score_rows(self, adapter, state, X_rows):
        """Scores of ``X_rows`` given the round's ``_scoring_state`` (shardable)."""
        raise NotImplementedError(
            f"{type(self).__name__} implements neither _score_rows nor _score."
        )

    def score(self, learner, X_pool, *, X_labeled=None, y_labeled=None):
        """Score every row of ``X_pool``; larger means more worth labeling.

        Parameters
        ----------
        learner : modAL learner or skorch.NeuralNet
            As in ``__call__``.
        X_pool : array-like of shape (n_pool, ...)
            The unlabeled pool.
        X_labeled, y_labeled : array-like, default=None
            The labeled set, for a bare net (or to override the learner's).

        Returns
        -------
        scores : ndarray of shape (n_pool,), dtype float64
        """
        adapter, X_pool = self._prepare(learner, X_pool, X_labeled, y_labeled)
        return self._score(adapter, X_pool)

    def _score(self, adapter, X_pool):
        return self._score_rows(adapter, self._scoring_state(adapter), X_pool)

    def _query(self, adapter, X_pool, n_instances, random_state):
        scores = self._score(adapter, X_pool)
        indices = select_top_k(scores, n_instances, random_state)
        return indices, scores[indices]
