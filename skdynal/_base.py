"""Base classes for query strategies: the public strategy protocol and the shared checks."""

import contextlib
import dataclasses
from typing import ClassVar

import numpy as np
import torch
from sklearn.base import BaseEstimator
from sklearn.utils import check_random_state
from torch.utils.data import Dataset

from . import _modal_compat
from ._adapter import eval_mode, resolve_learner
from ._selection import check_selection, select_top_k, to_modal_result
from ._streaming import map_pool, take_rows
from ._validation import (
    NonFiniteValues,
    check_castable,
    check_feature_shape,
    check_finite_input,
    check_n_instances,
    check_pool,
    n_rows,
)

__all__ = [
    "BaseQueryStrategy",
    "BaseScoringStrategy",
    "LocalPool",
    "QueryBackend",
    "StrategyCapabilities",
    "explain_non_finite",
    "run_hook",
]

_modal_compat.apply()


@dataclasses.dataclass(frozen=True)
class StrategyCapabilities:
    """What a query strategy needs and how its work can be split.

    Returned by :meth:`BaseQueryStrategy.capabilities`; the base class, the experiment
    runner and :class:`~skdynal.distributed.RayScorer` read it, never the strategy's
    internals. A subclass overrides ``capabilities()`` and changes the fields it needs with
    :func:`dataclasses.replace`.

    Attributes
    ----------
    needs_labeled : bool, default=False
        The strategy needs the labeled set; a query without it raises a ``ValueError``.
    net_class : type or None, default=None
        The skorch net class the strategy is meant to score (for example
        :class:`~skdynal.TiDALNetClassifier`, which trains TiDAL's extra head); the
        experiment runner builds its nets with it.
    needs_dropout : bool, default=False
        The module must hold dropout layers (Monte Carlo dropout); a query on a module
        without one raises a ``ValueError``.
    reads_pool : bool, default=True
        Whether the selection needs per-row outputs of the pool (:meth:`batch_outputs`),
        computed by the pool loop. ``False`` when it needs none (random sampling) or reads
        the pool itself in ``select_from_outputs`` (NTK look-ahead, LADA and ALBL, which
        build their own subsets or mixtures of rows).
    ranks_by_score : bool, default=False
        The per-row outputs are one score per row and the selection takes the largest
        (ties broken by ``random_state``). Shards of the pool can then be ranked apart and
        their best rows merged exactly.
    shardable : bool, default=True
        Whether :meth:`batch_outputs` of a row depends on that row only, so that shards of
        the pool can be processed apart (on a Ray cluster).
    unscored_rows : bool, default=False
        ``-inf`` marks rows left unscored (any other non-finite output is an error).
    selects_uniformly : bool, default=False
        Every row is equally likely to be chosen (``n_instances / n_pool``); the bandit of
        :class:`~skdynal.ALBLSampler` uses it as that strategy's advice.
    """

    needs_labeled: bool = False
    net_class: type | None = None
    needs_dropout: bool = False
    reads_pool: bool = True
    ranks_by_score: bool = False
    shardable: bool = True
    unscored_rows: bool = False
    selects_uniformly: bool = False


def run_hook(strategy, adapter, state, X_rows, hook="batch_outputs", **kwargs):
    """Run a per-batch hook of ``strategy`` over ``X_rows`` and concatenate its outputs.

    The one pool loop of every strategy, locally and on a Ray worker: the module is put in
    ``eval()`` mode and ``strategy.<hook>(adapter, state, X_batch, **kwargs)`` runs on every
    batch through :func:`~skdynal._streaming.map_pool` (lazy slicing, out-of-memory halving,
    non-finite checks, progress bar), with the strategy's ``batch_size`` and ``progress``
    parameters when it has them.

    Returns
    -------
    outputs : ndarray or tuple of ndarray
        One row per row of ``X_rows``.
    """
    params = strategy.get_params(deep=False)
    capabilities = strategy.capabilities()
    scores = hook == "score_batch" or (hook == "batch_outputs" and capabilities.ranks_by_score)
    function = getattr(strategy, hook)
    with eval_mode(adapter.module):
        return map_pool(
            adapter,
            X_rows,
            lambda X_batch: function(adapter, state, X_batch, **kwargs),
            batch_size=params.get("batch_size"),
            progress=bool(params.get("progress", False)),
            desc=type(strategy).__name__,
            quantity="scores" if scores else f"per-row outputs of {type(strategy).__name__}",
            allow_negative_inf=capabilities.unscored_rows,
        )


class LocalPool:
    """The pool as a strategy's selection sees it, scored in this process.

    :meth:`BaseQueryStrategy.select_from_outputs` receives one to run further passes over
    the pool (:meth:`map`) and to read chosen rows (:meth:`take`). It is the pool object of
    :class:`QueryBackend`; :class:`~skdynal.distributed.RayScorer`'s backend hands over an
    object with the same methods that runs the passes on shards.

    Attributes
    ----------
    X : array-like or torch.utils.data.Dataset
        The pool itself (for strategies that hand it on whole, such as ALBL).
    """

    def __init__(self, strategy, adapter, state, X):
        self.strategy = strategy
        self.adapter = adapter
        self.state = state
        self.X = X

    def __len__(self):
        return len(self.X)

    def map(self, hook="batch_outputs", *, rows=None, **kwargs):
        """Run the strategy's per-batch ``hook`` (a method name) over the pool.

        Parameters
        ----------
        hook : str, default="batch_outputs"
            The name of a method ``hook(adapter, state, X_batch, **kwargs)``.
        rows : array-like of int, default=None
            Only these rows, in this order (for a few rows; runs in this process).
        **kwargs
            Passed on to the hook (picklable, to run on shards).

        Returns
        -------
        outputs : ndarray or tuple of ndarray
        """
        X = self.X if rows is None else self.take(rows)
        return run_hook(self.strategy, self.adapter, self.state, X, hook, **kwargs)

    def take(self, indices):
        """The rows ``indices`` of the pool, in that order."""
        return take_rows(self.X, indices)


class BaseQueryStrategy(BaseEstimator):
    """Base class of skdynal's query strategies: the strategy protocol.

    A strategy is a scikit-learn estimator (``get_params``, ``set_params`` and ``clone``
    work; ``__init__`` only stores parameters, declared with their constraints in
    ``_parameter_constraints`` and validated once per call) that modAL calls as
    ``strategy(learner, X_pool, n_instances=1)``. Every query runs the same steps:

    1. ``state = round_state(adapter)``: what the round computes once, on the driver (for
       example the labeled set's gradient or embeddings); cheap to pickle.
    2. ``outputs``: :meth:`batch_outputs` on every batch of the pool, through the one pool
       loop (:func:`run_hook`), concatenated in row order (skipped when
       ``capabilities().reads_pool`` is false).
    3. ``select_from_outputs(adapter, state, outputs, n_instances, random_state, pool)``:
       the chosen rows and their scores.

    Subclasses implement the hooks and declare what they need in :meth:`capabilities`.
    See the "Writing a strategy" page of the documentation.
    """

    #: Constraints of the constructor parameters, checked once per call (scikit-learn's
    #: ``_parameter_constraints``; see ``sklearn.utils._param_validation``).
    _parameter_constraints: ClassVar[dict] = {}

    def check_params(self):
        """Check the parameters against ``_parameter_constraints``; return ``self``.

        ``select`` and ``score`` call it once per call; a wrapper that runs the hooks itself
        (:class:`~skdynal.distributed.RayScorer`) calls it instead.

        Raises
        ------
        sklearn.utils._param_validation.InvalidParameterError
            A ``ValueError`` and a ``TypeError``, naming the parameter, the strategy and the
            values allowed.
        """
        self._validate_params()
        return self

    def capabilities(self):
        """What the strategy needs and how its work splits (:class:`StrategyCapabilities`)."""
        return StrategyCapabilities()

    def round_state(self, adapter):
        """What a round computes once, before the pool is streamed (default: nothing).

        Parameters
        ----------
        adapter : NetAdapter
            The fitted net and the labeled set.

        Returns
        -------
        state : dict
            Passed to every hook; cheap to pickle (it is shipped to Ray workers).
        """
        return {}

    def batch_outputs(self, adapter, state, X_batch):
        """Per-row outputs of one batch of the pool (scores, probabilities, embeddings).

        Called with the module in ``eval()`` mode and the batch on its device; grad mode is
        the hook's choice. Unless ``capabilities().shardable`` is false, a row's outputs
        must not depend on the other rows.

        Returns
        -------
        outputs : torch.Tensor or tuple of torch.Tensor
            Each with the batch as first dimension.
        """
        raise NotImplementedError(f"{type(self).__name__} does not implement batch_outputs.")

    def select_from_outputs(self, adapter, state, outputs, n_instances, random_state, pool):
        """Choose ``n_instances`` rows from the outputs of the whole pool.

        Parameters
        ----------
        adapter : NetAdapter
        state : dict
            From :meth:`round_state`.
        outputs : ndarray, tuple of ndarray or None
            :meth:`batch_outputs` of every pool row, in row order (float outputs as
            float64); ``None`` when ``capabilities().reads_pool`` is false.
        n_instances : int
        random_state : numpy.random.RandomState
        pool : LocalPool
            For further passes over the pool (``pool.map(hook, **kwargs)``) and the chosen
            rows (``pool.take(indices)``); ``len(pool)`` is the pool size.

        Returns
        -------
        indices : ndarray of int
        scores : ndarray of float or None
            The score each chosen row was chosen with (``None`` without scores).
        """
        raise NotImplementedError(f"{type(self).__name__} does not implement select_from_outputs.")

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

        ``scores`` holds the score each chosen row was chosen with (``None`` for strategies
        that do not rank by a score).
        """
        self.check_params()
        return QueryBackend().select(
            self,
            learner,
            X_pool,
            n_instances,
            X_labeled=X_labeled,
            y_labeled=y_labeled,
            random_state=self.random_state,
        )

    def _prepare(self, learner, X_pool, X_labeled, y_labeled):
        """``(adapter, X_pool)`` after the checks of every query (:meth:`QueryBackend.prepare`)."""
        return QueryBackend().prepare(self, learner, X_pool, X_labeled, y_labeled)


class QueryBackend:
    """Where a query runs: the one path of every query, in this process or on a cluster.

    :meth:`BaseQueryStrategy.select` and :meth:`BaseScoringStrategy.score` run through this
    class, in this process; :class:`~skdynal.distributed.RayScorer` runs the same
    :meth:`select` and :meth:`score` through a subclass whose passes over the pool run on Ray
    workers. The checks of the learner, the labeled set, the net's parameters, the pool and
    the strategy's capabilities, the round's state, the explanation of non-finite values and
    the check of the chosen rows are therefore the same wherever the pool is processed: a bad
    input gets the same error.

    A subclass changes where the pool is read and processed by overriding the hooks
    :meth:`check_pool`, :meth:`check_pool_castable`, :meth:`open_pool` and
    :meth:`select_from_pool`.
    """

    def prepare(self, strategy, learner, X_pool, X_labeled=None, y_labeled=None):
        """Resolve the learner and check every input of a query of ``strategy``.

        Parameters
        ----------
        strategy : BaseQueryStrategy
        learner : modAL learner or skorch.NeuralNet
        X_pool : array-like
            The pool, as the caller gave it.
        X_labeled, y_labeled : array-like, default=None
            The labeled set, for a bare net (or to override the learner's).

        Returns
        -------
        adapter : NetAdapter
        X_pool : array-like, torch Dataset or numpy.memmap
            The pool as :meth:`check_pool` returns it.
        """
        adapter = resolve_learner(learner, X_labeled=X_labeled, y_labeled=y_labeled)
        X_pool = self.check_pool(X_pool)
        if adapter.X_labeled is not None:
            # Before the parameters: a net trained on a NaN row has NaN parameters, and the
            # row is the cause to name.
            check_finite_input(adapter.X_labeled, "The labeled set X_labeled")
        check_finite_parameters(adapter.module)
        self.check_pool_castable(X_pool, adapter.dtype)
        if adapter.X_labeled is not None:
            check_castable(adapter.X_labeled, adapter.dtype, "The labeled set X_labeled")
        check_feature_shape(X_pool, adapter.X_labeled)
        if adapter.has_labeled:
            adapter.check_labels()
        check_capabilities(strategy, adapter)
        return adapter, X_pool

    def select(
        self,
        strategy,
        learner,
        X_pool,
        n_instances=1,
        *,
        X_labeled=None,
        y_labeled=None,
        random_state=None,
    ):
        """Choose ``n_instances`` rows of ``X_pool`` with ``strategy``: ``(indices, scores)``.

        The strategy's parameters are not checked here (its caller does:
        :meth:`BaseQueryStrategy.check_params`).

        Parameters
        ----------
        strategy : BaseQueryStrategy
        learner, X_pool, n_instances, X_labeled, y_labeled
            As in :meth:`BaseQueryStrategy.select`.
        random_state : int, RandomState instance or None, default=None
            Seeds the selection's randomness.

        Returns
        -------
        indices : ndarray of int
        scores : ndarray of float or None
        """
        adapter, X_pool = self.prepare(strategy, learner, X_pool, X_labeled, y_labeled)
        n_instances = check_n_instances(n_instances, len(X_pool))
        random_state = check_random_state(random_state)
        with _explained_non_finite(adapter, X_pool):
            state = strategy.round_state(adapter)
            pool = self.open_pool(strategy, adapter, state, X_pool)
            indices, scores = self.select_from_pool(pool, n_instances, random_state)
        indices = check_selection(indices, n_instances, len(X_pool), type(strategy).__name__)
        return indices, scores

    def score(self, strategy, learner, X_pool, *, X_labeled=None, y_labeled=None):
        """The scores of every row of ``X_pool`` (:meth:`BaseScoringStrategy.score_batch`).

        Returns
        -------
        scores : ndarray of shape (n_pool,), dtype float64
        """
        adapter, X_pool = self.prepare(strategy, learner, X_pool, X_labeled, y_labeled)
        with _explained_non_finite(adapter, X_pool):
            state = strategy.round_state(adapter)
            return self.open_pool(strategy, adapter, state, X_pool).map("score_batch")

    # --- the hooks of a backend -------------------------------------------------------------

    def check_pool(self, X_pool):
        """Check the pool's structure and values; return it as the round reads it.

        Here the whole pool is checked (a ``Dataset``'s rows as the pool loop reads them),
        and dicts and sparse matrices come back wrapped in a ``Dataset``.
        """
        return check_pool(X_pool)

    def check_pool_castable(self, X_pool, dtype):
        """Raise if finite values of the pool overflow the module's ``dtype``."""
        check_castable(X_pool, dtype, "X_pool")

    def open_pool(self, strategy, adapter, state, X_pool):
        """The pool object of one round (:class:`LocalPool` here), once its state is known."""
        return LocalPool(strategy, adapter, state, X_pool)

    def select_from_pool(self, pool, n_instances, random_state):
        """The round's selection: the strategy's :meth:`~BaseQueryStrategy.select_from_outputs`
        on the per-row outputs of the whole pool (none when it does not read the pool)."""
        strategy = pool.strategy
        if strategy.capabilities().reads_pool:
            outputs = pool.map()
        else:
            outputs = None
            _check_dataset_rows(pool.adapter, pool.X)
        return strategy.select_from_outputs(
            pool.adapter, pool.state, outputs, n_instances, random_state, pool
        )


def _check_dataset_rows(adapter, X_pool):
    """Read a ``Dataset`` pool once for its NaN check, for a selection that does not stream it.

    Arrays are checked whole before the query; the rows of a ``Dataset`` only as the pool
    loop reads them, so a strategy that reads a few rows (or none) would not see a NaN.
    """
    if isinstance(X_pool, Dataset):
        map_pool(adapter, X_pool, _no_outputs, quantity="rows")


def _no_outputs(X_batch):
    return torch.zeros(n_rows(X_batch), dtype=torch.bool)


def check_capabilities(strategy, adapter):
    """Raise if the net or the labeled set lack what ``strategy.capabilities()`` needs."""
    capabilities = strategy.capabilities()
    name = type(strategy).__name__
    if capabilities.needs_labeled and not adapter.has_labeled:
        raise ValueError(
            f"{name} needs the labeled set: give the ActiveLearner X_training and "
            "y_training, or pass X_labeled and y_labeled."
        )
    if capabilities.needs_dropout and not any(
        isinstance(m, torch.nn.modules.dropout._DropoutNd) for m in adapter.module.modules()
    ):
        raise ValueError(
            f"{name} needs Monte Carlo dropout, but the module {type(adapter.module).__name__} "
            "has no dropout layer (torch.nn.Dropout and its variants); add one, or choose "
            "another strategy."
        )


class BaseScoringStrategy(BaseQueryStrategy):
    """Base class of strategies that rank the pool by a score and query the largest.

    Subclasses implement :meth:`score_batch`, the scores of one batch of the pool given the
    round's state. A row's score must not depend on the other rows, so that shards of the
    pool can be scored apart (for example on a Ray cluster by
    :class:`skdynal.distributed.RayScorer`) and their top-k merged exactly.

    Scores must be finite: a NaN or infinite score raises an error that says where it came
    from. A strategy that scores only some rows declares
    ``capabilities().unscored_rows`` and gives the others ``-inf``.
    """

    def capabilities(self):
        return dataclasses.replace(super().capabilities(), ranks_by_score=True)

    def score_batch(self, adapter, state, X_batch):
        """Scores of one batch of the pool; larger means more worth labeling.

        Parameters
        ----------
        adapter : NetAdapter
        state : dict
            From :meth:`round_state`.
        X_batch : torch.Tensor or dict of torch.Tensor
            A batch of pool rows on the module's device.

        Returns
        -------
        scores : torch.Tensor of shape (batch,)
        """
        raise NotImplementedError(f"{type(self).__name__} does not implement score_batch.")

    def batch_outputs(self, adapter, state, X_batch):
        return self.score_batch(adapter, state, X_batch)

    def select_from_outputs(self, adapter, state, outputs, n_instances, random_state, pool):
        indices = select_top_k(
            outputs,
            n_instances,
            random_state,
            allow_negative_inf=self.capabilities().unscored_rows,
        )
        return indices, outputs[indices]

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
        self.check_params()
        return QueryBackend().score(
            self, learner, X_pool, X_labeled=X_labeled, y_labeled=y_labeled
        )


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
