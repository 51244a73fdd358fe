"""The stopping-rule protocol: one ``update`` per trained round, a latched decision."""

import math
import numbers

import numpy as np
from sklearn.base import BaseEstimator

__all__ = ["BaseStoppingRule", "cohen_kappa", "predict_labels", "predict_proba"]


def predict_labels(learner, X):
    """The classes ``learner.predict`` gives for ``X``: the model's own decision rule (a
    binary net's ``threshold`` included), which every pseudo label of skdynal follows.

    Raises a ``TypeError`` naming the object when it has no ``predict``.
    """
    method = getattr(learner, "predict", None)
    if method is None:
        raise TypeError(
            f"a stopping rule needs the model's predictions, but {type(learner).__name__} has "
            "no predict; pass a modAL ActiveLearner, a fitted skorch NeuralNetClassifier or "
            "another classifier."
        )
    labels = np.asarray(method(X)).reshape(-1)
    if labels.shape[0] != _n_rows(X):
        raise ValueError(f"predict returned {labels.shape[0]} labels for {_n_rows(X)} rows.")
    return labels


def predict_proba(learner, X):
    """Class probabilities of ``X`` from a modAL learner, a skorch net or any classifier.

    Returns a float64 array of shape ``(n_samples, n_classes)``; raises a ``TypeError``
    naming the object when it has no ``predict_proba``.
    """
    method = getattr(learner, "predict_proba", None)
    if method is None:
        raise TypeError(
            f"a stopping rule needs the model's class probabilities, but "
            f"{type(learner).__name__} has no predict_proba; pass a modAL ActiveLearner, a "
            "fitted skorch NeuralNetClassifier or another probabilistic classifier."
        )
    proba = np.asarray(method(X), dtype=np.float64)
    if proba.ndim != 2 or proba.shape[0] != _n_rows(X):
        raise ValueError(
            f"predict_proba returned shape {proba.shape} for {_n_rows(X)} rows; expected "
            "(n_rows, n_classes)."
        )
    if not np.isfinite(proba).all():
        raise ValueError("predict_proba returned non-finite values; the model has diverged.")
    return proba


def _n_rows(X):
    return len(X) if not hasattr(X, "shape") else int(X.shape[0])


def cohen_kappa(a, b):
    """Cohen's kappa between two label vectors of the same length.

    ``kappa = (p_o - p_e) / (1 - p_e)`` with ``p_o`` the observed agreement and
    ``p_e = sum_k p_a(k) p_b(k)`` the agreement expected by chance (Cohen 1960). When
    ``p_e = 1`` (both vectors hold one and the same class) the two agree perfectly and
    kappa is 1.0; scikit-learn's ``cohen_kappa_score`` gives NaN there.

    Parameters
    ----------
    a, b : array-like of shape (n,)
        Class labels; ``n >= 1``.

    Returns
    -------
    kappa : float

    References
    ----------
    .. [1] J. Cohen. A coefficient of agreement for nominal scales. Educational and
       Psychological Measurement 20(1), 37-46, 1960.
    """
    a = np.asarray(a).reshape(-1)
    b = np.asarray(b).reshape(-1)
    if a.shape != b.shape or a.size == 0:
        raise ValueError(
            f"cohen_kappa needs two non-empty label vectors of one length, got {a.size} and "
            f"{b.size} labels."
        )
    p_o = float(np.mean(a == b))
    classes = np.union1d(a, b)
    p_e = float(sum(np.mean(a == k) * np.mean(b == k) for k in classes))
    if math.isclose(p_e, 1.0):
        return 1.0
    return (p_o - p_e) / (1.0 - p_e)


def _row_ids(X, pool_ids, name="X_unlabeled"):
    n = _n_rows(X)
    if pool_ids is None:
        return list(range(n))
    ids = [v.item() if isinstance(v, np.generic) else v for v in pool_ids]
    if len(ids) != n:
        raise ValueError(f"pool_ids has {len(ids)} ids but {name} has {n} rows.")
    for v in ids:
        if isinstance(v, bool) or not isinstance(v, numbers.Integral | str):
            raise TypeError(f"pool ids must be integers or strings, got {v!r}.")
    if len(set(ids)) != len(ids):
        raise ValueError("pool_ids holds an id more than once.")
    return ids


class BaseStoppingRule(BaseEstimator):
    """Base class of the stopping rules: call :meth:`update` once after every trained round.

    ``update(learner, X_unlabeled, pool_ids=None, n_labeled=None, X_stop=None)`` computes
    the rule's statistic for the round, appends it to ``history_`` and returns ``True``
    from the first round the rule's condition holds on (the decision is latched: once a
    rule says stop it keeps saying so; :meth:`reset` forgets everything). The same call
    works from a plain modAL loop, from :class:`~skdynal.persistence.ResumableLoop` (its
    ``learner`` and the pool rows not in ``loop.labeled()``), from the Label Studio bridge
    and from an evaluation that feeds every rule the same rounds.

    Subclasses implement ``_statistic(learner, X_unlabeled, ids, n_labeled, X_stop)`` (return a
    float, NaN while undefined) and ``_met()`` (whether ``history_`` satisfies the rule);
    parameters are checked against ``_parameter_constraints`` at every ``update``.

    Attributes
    ----------
    history_ : list of float
        The statistic of every round so far (NaN where it is not defined yet).
    stop_ : bool
        Whether the rule has said stop.
    stopped_at_ : int or None
        Index (into ``history_``) of the round the rule first said stop.
    n_labeled_ : list of int
        Labeled-set size at each round (``len(learner.y_training)`` unless given).
    """

    def reset(self):
        """Forget every round seen so far; return ``self``."""
        for name in ("history_", "stop_", "stopped_at_", "n_labeled_", "_memory"):
            self.__dict__.pop(name, None)
        return self

    def _ensure_state(self):
        if not hasattr(self, "history_"):
            self.history_ = []
            self.n_labeled_ = []
            self.stop_ = False
            self.stopped_at_ = None
            self._memory = {}

    def update(self, learner, X_unlabeled, *, pool_ids=None, n_labeled=None, X_stop=None):
        """Record one trained round; return whether to stop.

        Parameters
        ----------
        learner : modAL learner, skorch net or classifier
            The model as trained in this round (needs ``predict_proba``).
        X_unlabeled : array-like of shape (n_unlabeled, ...)
            The rows still unlabeled after this round's training.
        pool_ids : sequence of int or str, default=None
            A stable id per row of ``X_unlabeled``; rules that compare rounds match rows
            by id. Without ids, ``X_unlabeled`` must keep its rows between rounds.
        n_labeled : int, default=None
            Labeled-set size; default ``len(learner.y_training)`` (modAL).
        X_stop : array-like, default=None
            A fixed stop set (the same rows every round) for the rules that compare
            successive rounds' predictions (:class:`StabilizingPredictions`); other rules
            ignore it.

        Returns
        -------
        stop : bool
        """
        self._validate_params()
        self._ensure_state()
        ids = _row_ids(X_unlabeled, pool_ids)
        if n_labeled is None:
            y = getattr(learner, "y_training", None)
            n_labeled = None if y is None else _n_rows(y)
        elif isinstance(n_labeled, bool) or not isinstance(n_labeled, numbers.Integral):
            raise TypeError(f"n_labeled must be an integer, got {n_labeled!r}.")
        value = float(self._statistic(learner, X_unlabeled, ids, n_labeled, X_stop))
        self.history_.append(value)
        self.n_labeled_.append(None if n_labeled is None else int(n_labeled))
        if not self.stop_ and self._met():
            self.stop_ = True
            self.stopped_at_ = len(self.history_) - 1
        return self.stop_

    def state_dict(self):
        """The rule's state as JSON-compatible data (for a journal or a checkpoint)."""
        self._ensure_state()
        return {
            "history": [None if math.isnan(v) else v for v in self.history_],
            "n_labeled": list(self.n_labeled_),
            "stopped_at": self.stopped_at_,
            "memory": self._memory_to_json(),
        }

    def load_state_dict(self, state):
        """Restore a state written by :meth:`state_dict`; return ``self``.

        Only plain data is read (lists, numbers, strings), never code.
        """
        if not isinstance(state, dict) or not {"history", "n_labeled", "stopped_at"} <= set(state):
            raise ValueError(
                "state must be a dict written by state_dict() with keys 'history', "
                f"'n_labeled' and 'stopped_at', got {state!r:.200}."
            )
        self.reset()
        self._ensure_state()
        self.history_ = [math.nan if v is None else float(v) for v in state["history"]]
        self.n_labeled_ = [None if v is None else int(v) for v in state["n_labeled"]]
        self.stopped_at_ = None if state["stopped_at"] is None else int(state["stopped_at"])
        self.stop_ = self.stopped_at_ is not None
        self._memory_from_json(state.get("memory") or {})
        return self

    def _memory_to_json(self):
        return {}

    def _memory_from_json(self, memory):
        pass

    def _statistic(self, learner, X_unlabeled, ids, n_labeled, X_stop):  # pragma: no cover
        raise NotImplementedError

    def _met(self):  # pragma: no cover
        raise NotImplementedError
