"""Stopping rules for pool-based active learning."""

import math
import numbers
from typing import ClassVar

import numpy as np

from .._checks import HasMethods, StrictInterval
from ._base import BaseStoppingRule, _n_rows, cohen_kappa, predict_labels, predict_proba

__all__ = [
    "AnyRule",
    "ClassificationChange",
    "DynamicsPlateau",
    "LabelBudget",
    "OverallUncertainty",
    "StabilizingPredictions",
]

_POSITIVE_INT = StrictInterval(numbers.Integral, 1, None, closed="left")


def _json_id(v):
    return v.item() if isinstance(v, np.generic) else v


class _PredictionMemory:
    """Shared by the rules that compare this round's predicted classes with the last one's."""

    def _compare(self, ids, pred):
        """Return ``(previous, current)`` predictions on the ids seen in both rounds."""
        memory = self._memory
        previous = memory.get("pred")
        prev_ids = memory.get("ids")
        memory["ids"] = list(ids)
        memory["pred"] = [int(p) for p in pred]
        if previous is None:
            return None
        where = {pid: i for i, pid in enumerate(prev_ids)}
        common = [(where[pid], j) for j, pid in enumerate(ids) if pid in where]
        if not common:
            return None
        before = np.asarray([previous[i] for i, _ in common])
        now = np.asarray([int(pred[j]) for _, j in common])
        return before, now

    def _memory_to_json(self):
        if "pred" not in self._memory:
            return {}
        return {
            "ids": [_json_id(v) for v in self._memory["ids"]],
            "pred": list(self._memory["pred"]),
        }

    def _memory_from_json(self, memory):
        if memory.get("pred") is not None:
            self._memory = {"ids": list(memory["ids"]), "pred": [int(p) for p in memory["pred"]]}


class StabilizingPredictions(_PredictionMemory, BaseStoppingRule):
    """Stop once the model's predictions on a stop set have stopped changing.

    After every round the model predicts a class for each row of the stop set; the rule
    computes Cohen's kappa (:func:`~skdynal.stopping.cohen_kappa`) between these
    predictions and the previous round's, and stops when the mean of the last ``window``
    kappas is at least ``threshold``: the model's decisions agree with its previous ones
    almost perfectly beyond chance, so further labels are unlikely to change them.

    The stop set is ``X_stop`` when :meth:`update` gets one (it must keep its rows), or
    else the unlabeled rows, matched between rounds by ``pool_ids`` (the rows unlabeled in
    both rounds). Bloodgood and Vijay-Shanker draw the stop set once from the unlabeled
    data and need no labels for it; its size hardly mattered in their experiments.

    Parameters
    ----------
    window : int, default=3
        Number of successive kappas averaged ("k" in the paper, which uses 3).
    threshold : float, default=0.99
        Stop when the window's mean kappa is at least this (the paper's 0.99).

    Attributes
    ----------
    history_ : list of float
        Kappa of each round with the one before (NaN for the first round).

    References
    ----------
    .. [1] M. Bloodgood and K. Vijay-Shanker. A method for stopping active learning based on
       stabilizing predictions and the need for user-adjustable stopping. CoNLL 2009,
       pp. 39-47.

    Examples
    --------
    >>> import numpy as np
    >>> from skdynal.stopping import StabilizingPredictions
    >>> class Fixed:  # a model whose predictions never change
    ...     def predict_proba(self, X):
    ...         return np.eye(2)[np.asarray(X).ravel() % 2]
    >>> rule = StabilizingPredictions(window=2)
    >>> X = np.arange(6).reshape(-1, 1)
    >>> [rule.update(Fixed(), X, n_labeled=10) for _ in range(3)]
    [False, False, True]
    """

    _parameter_constraints: ClassVar[dict] = {
        "window": [_POSITIVE_INT],
        "threshold": [StrictInterval(numbers.Real, -1, 1, closed="both")],
    }

    def __init__(self, window=3, threshold=0.99):
        self.window = window
        self.threshold = threshold

    def _statistic(self, learner, X_unlabeled, ids, n_labeled, X_stop):
        if X_stop is not None:
            n = _n_rows(X_stop)
            known = self._memory.get("n_stop")
            if known is not None and known != n:
                raise ValueError(
                    f"X_stop has {n} rows but had {known} in the previous round; the stop set "
                    "must stay the same rows every round."
                )
            self._memory["n_stop"] = n
            X, ids = X_stop, list(range(n))
        else:
            X = X_unlabeled
        if _n_rows(X) == 0:
            return math.nan
        pred = predict_labels(learner, X)
        pair = self._compare(ids, pred)
        return math.nan if pair is None else cohen_kappa(*pair)

    def _met(self):
        recent = self.history_[-self.window :]
        if len(recent) < self.window or any(math.isnan(k) for k in recent):
            return False
        return float(np.mean(recent)) >= self.threshold


class ClassificationChange(_PredictionMemory, BaseStoppingRule):
    """Stop when (almost) no unlabeled row changes its predicted class between two rounds.

    The statistic is the fraction of the rows unlabeled in both this round and the previous
    one (matched by ``pool_ids``) whose predicted class changed; the rule stops when it is
    at most ``threshold``. Zhu, Wang and Hovy's criterion is ``threshold=0``: stop when no
    unlabeled example's prediction changes.

    Parameters
    ----------
    threshold : float, default=0.0
        Largest fraction of changed predictions at which to stop.

    Attributes
    ----------
    history_ : list of float
        Fraction of changed predictions in each round (NaN for the first round).

    References
    ----------
    .. [1] J. Zhu, H. Wang and E. Hovy. Multi-criteria-based strategy to stop active
       learning for data annotation. COLING 2008, pp. 1129-1136.
    """

    _parameter_constraints: ClassVar[dict] = {
        "threshold": [StrictInterval(numbers.Real, 0, 1, closed="both")],
    }

    def __init__(self, threshold=0.0):
        self.threshold = threshold

    def _statistic(self, learner, X_unlabeled, ids, n_labeled, X_stop):
        if _n_rows(X_unlabeled) == 0:
            return 0.0
        pred = predict_labels(learner, X_unlabeled)
        pair = self._compare(ids, pred)
        if pair is None:
            return math.nan
        before, now = pair
        return float(np.mean(before != now))

    def _met(self):
        last = self.history_[-1]
        return not math.isnan(last) and last <= self.threshold


class OverallUncertainty(BaseStoppingRule):
    """Stop when the model is, on average, certain about the unlabeled rows.

    The statistic is the mean normalised entropy of the predicted class distribution over
    the unlabeled rows, ``(1/N) sum_u H(p_u) / log K`` (0: every prediction certain,
    1: every prediction uniform over the K classes); the rule stops when it is at most
    ``threshold``. Zhu, Wang and Hovy's "overall uncertainty" criterion stops when the
    average uncertainty of the unlabeled examples falls below a threshold; normalising by
    ``log K`` makes one threshold fit any number of classes.

    Parameters
    ----------
    threshold : float, default=0.05
        Stop when the mean normalised entropy is at most this.

    Attributes
    ----------
    history_ : list of float
        Mean normalised entropy of each round (0.0 when nothing is left unlabeled).

    References
    ----------
    .. [1] J. Zhu, H. Wang and E. Hovy. Multi-criteria-based strategy to stop active
       learning for data annotation. COLING 2008, pp. 1129-1136.
    """

    _parameter_constraints: ClassVar[dict] = {
        "threshold": [StrictInterval(numbers.Real, 0, 1, closed="both")],
    }

    def __init__(self, threshold=0.05):
        self.threshold = threshold

    def _statistic(self, learner, X_unlabeled, ids, n_labeled, X_stop):
        if _n_rows(X_unlabeled) == 0:
            return 0.0
        proba = predict_proba(learner, X_unlabeled)
        k = proba.shape[1]
        if k < 2:
            return 0.0
        p = np.clip(proba, 0.0, None)
        p = p / p.sum(axis=1, keepdims=True)
        with np.errstate(divide="ignore", invalid="ignore"):
            entropy = -np.where(p > 0, p * np.log(p), 0.0).sum(axis=1)
        return float(np.mean(entropy) / math.log(k))

    def _met(self):
        return self.history_[-1] <= self.threshold


class LabelBudget(BaseStoppingRule):
    """Stop once the labeled set holds ``budget`` labels.

    The rule every project has, whether it says so or not: annotation money or time runs
    out. Active learning surveys list it as the usual stopping criterion in practice, and
    other rules are judged by how many labels they save against it.

    Parameters
    ----------
    budget : int
        Number of labels (the initial ones included) at which to stop.

    Attributes
    ----------
    history_ : list of float
        Labeled-set size at each round.

    References
    ----------
    .. [1] B. Settles. Active Learning Literature Survey. Computer Sciences Technical
       Report 1648, University of Wisconsin-Madison, 2009 (section 6.7, "Stopping
       criteria").
    """

    _parameter_constraints: ClassVar[dict] = {"budget": [_POSITIVE_INT]}

    def __init__(self, budget):
        self.budget = budget

    def _statistic(self, learner, X_unlabeled, ids, n_labeled, X_stop):
        if n_labeled is None:
            raise ValueError(
                "LabelBudget needs the labeled-set size: pass n_labeled=..., or a modAL "
                "learner (it reads len(learner.y_training))."
            )
        return float(n_labeled)

    def _met(self):
        return self.history_[-1] >= self.budget


class DynamicsPlateau(BaseStoppingRule):
    """Stop when the best training-dynamics gain left in the pool has collapsed.

    dynamicAL's score ``Δ_u = ‖g_u‖² + γ⟨g_u, G⟩`` (with ``g_u`` the gradient of the loss of
    ``u`` at its pseudo label and ``G`` the summed gradient of the labeled set) is, for
    γ = 2, ``‖G + g_u‖² − ‖G‖²``: how much adding ``u`` to the labeled set would raise the
    squared norm of the training gradient, which is the first-order rate at which one
    gradient step lowers the training loss (Wang et al. 2022, Eq. 15). Its largest value
    over the pool, ``m_t = max_u Δ_u`` in round ``t``, is the most that one more label can
    still speed up training. The rule's statistic is that gain relative to the first round
    it saw, when the model was trained on the initial labeled set only,

    ``r_t = m_t / m_0``,

    and it stops when ``r_t <= threshold`` in ``patience`` successive rounds: the most
    promising unlabeled row would then change the training dynamics by less than
    ``threshold`` times what the best row could at the start, so labeling further rows
    teaches the model little. ``patience > 1`` guards against one noisy round. This is a
    rule of this package, derived here; the documentation ("Stopping rules") evaluates it
    against the published ones.

    Parameters
    ----------
    threshold : float, default=0.05
        Stop when the ratio is at most this.
    patience : int, default=2
        Number of successive rounds the ratio must stay at or below ``threshold``.
    scorer : object with ``score(learner, X)``, default=None
        Scores rows by Δ; default :class:`~skdynal.DynamicALSampler` with its defaults.
        Any strategy of the package with a ``score`` method fits (e.g. ``EGLSampler``).

    Attributes
    ----------
    history_ : list of float
        The ratio ``r_t`` of each round (NaN when the first round's gain is not positive).

    References
    ----------
    .. [1] H. Wang, W. Huang, Z. Wu, A. Margenot, H. Tong and J. He. Deep active learning by
       leveraging training dynamics. NeurIPS 2022.
    """

    _parameter_constraints: ClassVar[dict] = {
        "threshold": [StrictInterval(numbers.Real, 0, None, closed="left")],
        "patience": [_POSITIVE_INT],
        "scorer": [HasMethods(["score"]), None],
    }

    def __init__(self, threshold=0.05, patience=2, scorer=None):
        self.threshold = threshold
        self.patience = patience
        self.scorer = scorer

    def _statistic(self, learner, X_unlabeled, ids, n_labeled, X_stop):
        scorer = self.scorer
        if scorer is None:
            from ..strategies import DynamicALSampler

            scorer = DynamicALSampler()
        if _n_rows(X_unlabeled) == 0:
            return 0.0
        best = float(np.max(np.asarray(scorer.score(learner, X_unlabeled), dtype=np.float64)))
        first = self._memory.setdefault("first", best)
        if not np.isfinite(first) or first <= 0:
            return math.nan
        return best / first

    def _met(self):
        recent = self.history_[-self.patience :]
        if len(recent) < self.patience:
            return False
        return all(not math.isnan(r) and r <= self.threshold for r in recent)

    def _memory_to_json(self):
        return {"first": self._memory.get("first")}

    def _memory_from_json(self, memory):
        if memory.get("first") is not None:
            self._memory["first"] = float(memory["first"])


class AnyRule(BaseStoppingRule):
    """Stop as soon as any of several rules says stop (e.g. a rule and a label budget).

    Every rule is updated every round, so each keeps its own ``history_``.

    Parameters
    ----------
    rules : list of stopping rules

    Attributes
    ----------
    history_ : list of float
        1.0 for rounds where at least one rule said stop, else 0.0.
    rules_ : list
        The rules as updated (the objects passed in).

    References
    ----------
    .. [1] M. Bloodgood and K. Vijay-Shanker. A method for stopping active learning based on
       stabilizing predictions and the need for user-adjustable stopping. CoNLL 2009
       (combining a stopping rule with a budget).
    """

    _parameter_constraints: ClassVar[dict] = {"rules": [list]}

    def __init__(self, rules):
        self.rules = rules

    def _statistic(self, learner, X_unlabeled, ids, n_labeled, X_stop):
        if not self.rules or not all(isinstance(r, BaseStoppingRule) for r in self.rules):
            raise TypeError(
                f"rules must be a non-empty list of skdynal.stopping rules, got {self.rules!r}."
            )
        self.rules_ = self.rules
        said = [
            r.update(learner, X_unlabeled, pool_ids=ids, n_labeled=n_labeled, X_stop=X_stop)
            for r in self.rules
        ]
        return float(any(said))

    def _met(self):
        return self.history_[-1] == 1.0

    def _memory_to_json(self):
        return {"rules": [r.state_dict() for r in self.rules]}

    def _memory_from_json(self, memory):
        for rule, state in zip(self.rules, memory.get("rules", []), strict=False):
            rule.load_state_dict(state)
