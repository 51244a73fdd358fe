"""Active learning by learning: an EXP4.P bandit over query strategies (Hsu & Lin, 2015)."""

import dataclasses
import math
import numbers
from typing import ClassVar

import numpy as np
import scipy.sparse as sp
import torch
from sklearn.base import clone
from skorch.dataset import Dataset as SkorchDataset
from torch.utils.data import Dataset

from .._base import BaseQueryStrategy
from .._validation import InvalidParameterError, StrictInterval
from ._coreset import CoresetSampler
from ._outputs import predict_probabilities
from ._random import RandomSampler
from ._uncertainty import EntropySampler, MarginSampler

__all__ = ["ALBLSampler"]


def _default_strategies():
    return [RandomSampler(), MarginSampler(), EntropySampler(), CoresetSampler()]


def _as_numpy(X):
    if torch.is_tensor(X):
        return X.detach().cpu().numpy()
    return np.asarray(X)


def _pool_rows(X_pool, indices):
    """Copies of the chosen pool rows as one numpy array (looked up later by value)."""
    if isinstance(X_pool, SkorchDataset) and X_pool.y is None and sp.issparse(X_pool.X):
        return X_pool.X[indices].toarray()
    if isinstance(X_pool, Dataset):
        items = [X_pool[int(i)] for i in indices]
        rows = [item[0] if isinstance(item, (tuple, list)) else item for item in items]
        if not all(torch.is_tensor(row) or isinstance(row, np.ndarray) for row in rows):
            raise TypeError(
                "ALBLSampler finds its queried rows in the next labeled set by value, so it "
                "needs pool rows that are arrays or tensors; got a "
                f"{type(X_pool).__name__} of {type(rows[0]).__name__} rows (a dict of arrays "
                "is wrapped in a skorch Dataset)."
            )
        return np.stack([_as_numpy(row) for row in rows]).copy()
    return _as_numpy(X_pool[indices]).copy()


def _row_key(row):
    return np.ascontiguousarray(row).tobytes()


class ALBLSampler(BaseQueryStrategy):
    """Active learning by learning (ALBL): a bandit that learns which strategy to follow.

    Each round, every base strategy proposes a batch; the bandit EXP4.P picks one strategy
    at random with probabilities learned from past rewards, and its batch is queried. The
    reward of a round, computed at the next call once the queried labels are in the labeled
    set and the net has been retrained, is the importance-weighted accuracy (IW-ACC) of the
    current net on all rows ALBL has queried so far:

    .. math::

        r = \\frac{1}{n\\,T} \\sum_{j \\text{ queried}} \\frac{[f(x_j) = y_j]}{q_j},

    with ``q_j`` the probability that row ``j`` was queried in its round, ``n`` the number of
    labeled plus pool rows now, and ``T = n_rounds``. This estimates the net's accuracy on
    the whole data set without bias when a uniform strategy is among the experts.

    EXP4.P (Beygelzimer et al., 2011) runs with the ``N`` base strategies as both experts and
    actions (identity advice, ``K = N``), as ALBL's reference implementation does: with
    weights ``w``, ``W = Σ_i w_i``,

    - choice probabilities ``p_i = (1 - K p_min) w_i / W + p_min``;
    - after a round in which strategy ``c`` was followed and reward ``r`` observed:
      ``r̂_i = r [i = c] / p_i``, ``v̂_i = 1 / p_i`` and
      ``w_i ← w_i exp((p_min / 2)(r̂_i + v̂_i sqrt(ln(N / δ) / (K T))))``.

    The probability that a row is queried is ``q_j = Σ_i p_i π_ij``, where ``π_ij`` is 1
    when strategy ``i``'s batch holds row ``j`` (0 otherwise), and ``n_instances / n_pool``
    for a uniform strategy (:class:`RandomSampler`).

    How the labels reach the bandit: ALBL keeps a copy of the rows it queried. At the next
    call it looks each of them up, by exact value, in the labeled set it is given (the modAL
    learner's ``X_training``/``y_training``, which ``teach`` extends, or
    ``X_labeled``/``y_labeled``), and compares the label found with the current net's
    prediction (``argmax`` of its ``predict_proba``). If none of the previous round's rows
    is labeled yet, that round is discarded and the new query replaces it (same round
    number, so asking twice without teaching gives the same rows and leaves the bandit
    unchanged).

    State persists on the object across rounds (and through pickling); ``clone`` gives a
    fresh bandit. Cost per round: the sum of the base strategies' costs plus one forward
    pass over the queried rows.

    Parameters
    ----------
    strategies : list of query strategies, default=None
        The experts. ``None`` uses ``[RandomSampler(), MarginSampler(), EntropySampler(),
        CoresetSampler()]``. They are cloned each round; a strategy whose ``random_state``
        is ``None`` gets a seed drawn from this sampler's ``random_state``.
    n_rounds : int, default=20
        The horizon ``T`` of EXP4.P: how many query rounds are planned. It scales the
        reward and sets the default ``p_min``.
    delta : float, default=0.1
        Confidence parameter ``δ`` of EXP4.P, in (0, 1).
    p_min : float, default=None
        Smallest probability of choosing any strategy, in ``[0, 1/N]``. ``None`` uses
        ``min(sqrt(ln N / (N T)), 1/N)``.
    random_state : int, RandomState instance or None, default=None
        Drives the choice of strategy and the seeds of the base strategies. Rounds are
        numbered, so the same seed gives the same sequence of choices.

    Attributes
    ----------
    log_weights_ : ndarray of shape (n_strategies,)
        Natural log of the EXP4.P weights ``w``.
    probabilities_ : ndarray of shape (n_strategies,)
        The choice probabilities ``p`` of the latest round.
    history_ : list of dict
        One entry per round: ``strategy`` (index of the strategy followed),
        ``probabilities``, ``n_instances``, ``reward`` (``None`` until observed) and
        ``n_labels_found``.
    queried_X_, queried_y_, queried_weights_ : ndarray
        The rows whose labels were found, their labels and importance weights ``1 / q``.
    p_min_ : float
        The ``p_min`` of the latest round (``p_min``, or its default).

    References
    ----------
    .. [1] W.-N. Hsu and H.-T. Lin, "Active Learning by Learning", AAAI 2015.
    .. [2] A. Beygelzimer, J. Langford, L. Li, L. Reyzin and R. E. Schapire, "Contextual
       Bandit Algorithms with Supervised Learning Guarantees", AISTATS 2011.

    Examples
    --------
    >>> from skdynal import ALBLSampler, MarginSampler, RandomSampler
    >>> ALBLSampler([RandomSampler(), MarginSampler()], n_rounds=10)
    ALBLSampler(n_rounds=10, strategies=[RandomSampler(), MarginSampler()])
    """

    _parameter_constraints: ClassVar[dict] = {
        "strategies": [list, tuple, None],
        "n_rounds": [StrictInterval(numbers.Integral, 1, None, closed="left")],
        "delta": [StrictInterval(numbers.Real, 0, 1, closed="neither")],
        "p_min": [StrictInterval(numbers.Real, 0, 1, closed="both"), None],
        "random_state": ["random_state"],
    }

    def __init__(self, strategies=None, n_rounds=20, delta=0.1, p_min=None, random_state=None):
        self.strategies = strategies
        self.n_rounds = n_rounds
        self.delta = delta
        self.p_min = p_min
        self.random_state = random_state

    def capabilities(self):
        # The base strategies read the pool themselves (through their own ``select``).
        needs_labeled = any(s.capabilities().needs_labeled for s in self._base_strategies())
        return dataclasses.replace(
            super().capabilities(), needs_labeled=needs_labeled, reads_pool=False, shardable=False
        )

    @property
    def weights_(self):
        """EXP4.P weights, scaled so that the largest is 1."""
        return np.exp(self.log_weights_ - self.log_weights_.max())

    def check_params(self):
        """Check the parameters: the constraint table, then the strategies and ``p_min``.

        Raises
        ------
        sklearn.utils._param_validation.InvalidParameterError
            Also when ``strategies`` is empty or holds something other than a skdynal
            query strategy, or ``p_min`` exceeds ``1 / n_strategies``.
        """
        super().check_params()
        n_strategies = len(self._base_strategies())
        if self.p_min is not None and self.p_min > 1.0 / n_strategies:
            raise InvalidParameterError(
                f"p_min must be in [0, 1/n_strategies] = [0, {1.0 / n_strategies:g}], "
                f"got {self.p_min!r}."
            )
        return self

    def _base_strategies(self):
        if self.strategies is None:
            return _default_strategies()
        if not self.strategies:
            raise InvalidParameterError(
                "strategies must be a non-empty list of skdynal query strategies or None, "
                f"got {self.strategies!r}."
            )
        for strategy in self.strategies:
            if not isinstance(strategy, BaseQueryStrategy) or isinstance(strategy, ALBLSampler):
                raise InvalidParameterError(
                    "Every entry of strategies must be a skdynal query strategy (not an "
                    f"ALBLSampler), got {strategy!r}."
                )
        return list(self.strategies)

    def _resolved_p_min(self, n_strategies):
        """``p_min``, or its default ``min(sqrt(ln N / (N T)), 1 / N)``."""
        if self.p_min is None:
            return min(
                math.sqrt(math.log(n_strategies) / (n_strategies * self.n_rounds)),
                1.0 / n_strategies,
            )
        return float(self.p_min)

    def _choice_probabilities(self, p_min):
        weights = np.exp(self.log_weights_ - self.log_weights_.max())
        n_strategies = len(weights)
        return (1.0 - n_strategies * p_min) * weights / weights.sum() + p_min

    def select_from_outputs(self, adapter, state, outputs, n_instances, random_state, pool):
        """Follow one base strategy, drawn by EXP4.P; each runs its own ``select`` on the pool."""
        X_pool = pool.X
        _pool_rows(X_pool, [0])  # refuses pools whose rows cannot be looked up by value
        strategies = self._base_strategies()
        n_strategies = len(strategies)
        n_rounds, delta = int(self.n_rounds), float(self.delta)
        p_min = self._resolved_p_min(n_strategies)
        if not hasattr(self, "log_weights_"):
            self.log_weights_ = np.zeros(n_strategies)
            self.history_ = []
            self.queried_X_ = None
            self.queried_y_ = None
            self.queried_weights_ = np.empty(0)
            self._pending_rows = None
            self._pending_weights = None
        elif len(self.log_weights_) != n_strategies:
            raise ValueError(
                f"This ALBLSampler learned weights for {len(self.log_weights_)} strategies but "
                f"now has {n_strategies}; clone it to start a new bandit."
            )
        if self._pending_rows is not None:
            self._observe_reward(adapter, len(X_pool), n_rounds, delta, p_min)

        probabilities = self._choice_probabilities(p_min)
        round_seed = int(random_state.randint(np.iinfo(np.int32).max))
        rng = np.random.RandomState(
            np.random.SeedSequence([round_seed, len(self.history_)]).generate_state(1)
        )
        chosen = int(rng.choice(n_strategies, p=probabilities))
        seeds = rng.randint(np.iinfo(np.int32).max, size=n_strategies)

        n_pool = len(X_pool)
        query_probability = np.zeros(n_pool)
        batches = []
        for strategy, seed, p in zip(strategies, seeds, probabilities, strict=True):
            strategy = clone(strategy)
            if "random_state" in strategy.get_params() and strategy.random_state is None:
                strategy.set_params(random_state=int(seed))
            batch, _ = strategy.select(
                adapter.net,
                X_pool,
                n_instances,
                X_labeled=adapter.X_labeled,
                y_labeled=adapter.y_labeled,
            )
            batches.append(batch)
            if strategy.capabilities().selects_uniformly:
                query_probability += p * n_instances / n_pool
            else:
                query_probability[batch] += p
        indices = batches[chosen]
        self._pending_rows = _pool_rows(X_pool, indices)
        self._pending_weights = 1.0 / query_probability[indices]
        self.probabilities_ = probabilities
        self.p_min_ = p_min
        self.history_.append(
            {
                "strategy": chosen,
                "probabilities": probabilities,
                "n_instances": n_instances,
                "reward": None,
                "n_labels_found": 0,
            }
        )
        return indices, None

    def _find_labels(self, adapter, rows):
        """Labels of ``rows`` looked up by value in the labeled set; -1 where absent."""
        labels = np.full(len(rows), -1, dtype=np.int64)
        found = np.zeros(len(rows), dtype=bool)
        if not adapter.has_labeled:
            return labels, found
        X_labeled = _as_numpy(adapter.X_labeled)
        y_labeled = _as_numpy(adapter.y_labeled)
        rows = rows.astype(X_labeled.dtype, copy=False)
        wanted = {_row_key(row): k for k, row in enumerate(rows)}
        for row, label in zip(X_labeled, y_labeled, strict=True):
            k = wanted.get(_row_key(row))
            if k is not None:
                labels[k] = label
                found[k] = True
        return labels, found

    def _observe_reward(self, adapter, n_pool, n_rounds, delta, p_min):
        entry = self.history_[-1]
        rows, weights = self._pending_rows, self._pending_weights
        self._pending_rows = self._pending_weights = None
        labels, found = self._find_labels(adapter, rows)
        if not found.any():
            # Asked again before teaching: the unanswered round is replaced by this one.
            self.history_.pop()
            return
        if self.queried_X_ is None:
            self.queried_X_ = rows[found]
            self.queried_y_ = labels[found]
        else:
            self.queried_X_ = np.concatenate([self.queried_X_, rows[found]])
            self.queried_y_ = np.concatenate([self.queried_y_, labels[found]])
        self.queried_weights_ = np.concatenate([self.queried_weights_, weights[found]])

        predictions = predict_probabilities(adapter, self.queried_X_).argmax(axis=1)
        n_total = len(adapter.y_labeled) + n_pool
        correct = predictions == self.queried_y_
        reward = float((self.queried_weights_ * correct).sum() / (n_total * n_rounds))

        probabilities = entry["probabilities"]
        n_strategies = len(probabilities)
        reward_estimate = np.zeros(n_strategies)
        reward_estimate[entry["strategy"]] = reward / probabilities[entry["strategy"]]
        variance_bound = 1.0 / probabilities
        confidence = math.sqrt(math.log(n_strategies / delta) / (n_strategies * n_rounds))
        self.log_weights_ = self.log_weights_ + (p_min / 2.0) * (
            reward_estimate + variance_bound * confidence
        )
        entry["reward"] = reward
        entry["n_labels_found"] = int(found.sum())
