"""Base classes for query strategies: the modAL call protocol and the shared checks."""

import contextlib

import numpy as np
import torch
from sklearn.base import BaseEstimator
from sklearn.utils import check_random_state
from torch.utils.data import Dataset

from . import _modal_compat
from ._adapter import resolve_learner
from ._selection import check_selection, select_top_k, to_modal_result
from ._validation import (
    NonFiniteValues,
    check_castable,
    check_feature_shape,
    check_finite_input,
    check_n_instances,
    check_pool,
)

__all__ = ["BaseQueryStrategy", "BaseScoringStrategy", "explain_non_finite"]

_modal_compat.apply()


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
        raise NotImplementedError(f"{type(self).__name__} does not select from per-row outputs.")

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
        with _explained_non_finite(adapter, X_pool):
            indices, scores = self._query(adapter, X_pool, n_instances, random_state)
        indices = check_selection(indices, n_instances, len(X_pool), type(self).__name__)
        return indices, scores

    def _prepare(self, learner, X_pool, X_labeled, y_labeled):
        adapter = resolve_learner(learner, X_labeled=X_labeled, y_labeled=y_labeled)
        X_pool = check_pool(X_pool)
        check_finite_parameters(adapter.module)
        check_castable(X_pool, adapter.dtype, "X_pool")
        if adapter.X_labeled is not None:
            check_finite_input(adapter.X_labeled, "The labeled set X_labeled")
            check_castable(adapter.X_labeled, adapter.dtype, "The labeled set X_labeled")
        check_feature_shape(X_pool, adapter.X_labeled)
        if adapter.has_labeled:
            adapter.check_labels()
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

    Scores must be finite: a NaN or infinite score raises an error that says where it came
    from. A strategy that scores only some rows sets ``_unscored_rows_are_negative_inf``
    and gives the others ``-inf``.
    """

    #: Whether ``-inf`` marks rows left unscored (any other non-finite score is an error).
    _unscored_rows_are_negative_inf = False

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
        with _explained_non_finite(adapter, X_pool):
            scores = self._score(adapter, X_pool)
            bad = ~np.isfinite(scores)
            if self._unscored_rows_are_negative_inf:
                bad &= ~np.isneginf(scores)
            if bad.any():
                raise NonFiniteValues("scores", np.flatnonzero(bad))
        return scores

    def _score(self, adapter, X_pool):
        return self._score_rows(adapter, self._scoring_state(adapter), X_pool)

    def _query(self, adapter, X_pool, n_instances, random_state):
        scores = self._score(adapter, X_pool)
        indices = select_top_k(scores, n_instances, random_state)
        return indices, scores[indices]


def check_finite_parameters(module):
    """Raise a ``ValueError`` naming the first parameter or buffer that holds NaN.

    Infinite entries are left to the checks of what the strategy computes: a fixed net may
    hold ``-inf`` logits on purpose (probability 0), and the result then stays finite.
    """
    named = list(module.named_parameters()) + list(module.named_buffers())
    for name, tensor in named:
        if tensor.is_floating_point() and bool(torch.isnan(tensor).any()):
            raise ValueError(
                f"The model's parameters are not finite: {name!r} contains NaN. The net "
                "diverged in training (a smaller learning rate or gradient clipping helps); "
                "refit it before querying."
            )


def _largest_abs(X, row=None):
    """Largest absolute value of ``X`` (or of its row ``row``); ``None`` if not numeric."""
    parts = X.values() if isinstance(X, dict) else [X]
    largest = None
    for part in parts:
        try:
            if isinstance(part, Dataset) or hasattr(part, "tocsr"):
                return None
            values = part if row is None else part[row]
            value = float(np.abs(np.asarray(values, dtype=np.float64)).max())
        except (TypeError, ValueError, IndexError):
            return None
        largest = value if largest is None else max(largest, value)
    return largest


def explain_non_finite(adapter, X_pool, exc):
    """A ``ValueError`` saying where non-finite values came from, for a :class:`NonFiniteValues`.

    The inputs and the parameters were checked before scoring, so what is left is an
    overflow inside the model: the message names the row and compares its largest absolute
    value with the labeled set's, so that an out-of-scale input is told apart from a model
    whose own weights overflow.
    """
    source = exc.source
    X = X_pool if source == "pool" else adapter.X_labeled
    largest_param = max(
        (float(p.detach().abs().max()) for p in adapter.module.parameters() if p.numel()),
        default=0.0,
    )
    reference = _largest_abs(adapter.X_labeled) if adapter.X_labeled is not None else None
    if exc.rows is not None and len(exc.rows):
        row = int(exc.rows[0])
        more = f" (and {len(exc.rows) - 1} more rows)" if len(exc.rows) > 1 else ""
        where = f"{source} row {row}{more}"
        value = _largest_abs(X, row) if X is not None else None
    else:
        where, value = f"the {source}", _largest_abs(X) if X is not None else None
    message = (
        f"The {exc.quantity} computed for {where} are NaN or infinite, although the model's "
        "parameters and the input values are finite."
    )
    out_of_scale = value is not None and (
        value > 1e6 if reference is None else value > 1e3 * max(reference, 1.0)
    )
    if out_of_scale:
        seen = "" if reference is None else f", against at most {reference:.3g} in the labeled set"
        message += (
            f" The input is the problem: its largest absolute value is {value:.3g}{seen}, "
            "which overflows inside the model. Scale the features as for training, or drop "
            "the row."
        )
    else:
        message += (
            f" The model overflows: its largest absolute parameter is {largest_param:.3g}. "
            "Refit the net (a smaller learning rate, weight decay or gradient clipping help)."
        )
    return ValueError(message)


@contextlib.contextmanager
def _explained_non_finite(adapter, X_pool):
    try:
        yield
    except NonFiniteValues as exc:
        raise explain_non_finite(adapter, X_pool, exc) from None
