"""Score the pool on a Ray cluster, shard by shard, with the same answer as local scoring."""

import copy
import dataclasses
import mmap
import numbers
import os
import warnings
from typing import ClassVar

import numpy as np
import torch

from .._streaming import pool_rows, take_rows
from .._validation import NonFiniteValues, StrictInterval, check_castable, check_pool
from ..base import (
    BaseQueryStrategy,
    BaseScoringStrategy,
    NetAdapter,
    QueryBackend,
    run_hook,
)
from ._sharding import merge_top_k, shard_bounds, shard_top_k, tie_break_ranks

__all__ = ["RayScorer"]

_INSTALL_HINT = 'pip install "skdynal[ray]"'


def import_ray():
    """Import Ray, or raise an ImportError that names the extra to install."""
    try:
        import ray
    except ImportError as exc:
        raise ImportError(
            f"RayScorer needs Ray, which is not installed. Install the extra: {_INSTALL_HINT}"
        ) from exc
    return ray


# --- how a worker reads its rows ------------------------------------------------------------


class _StoredPool:
    """A pool put in Ray's object store by the driver (arrays, tensors, Datasets)."""

    checked_on_driver = True

    def __init__(self, ref):
        self.ref = ref

    def open(self):
        return import_ray().get(self.ref)


class _MemmapFile:
    """A whole-file ``numpy.memmap`` (a memory-mapped ``.npy`` among them) reopened on the
    worker from its file name and layout; its values are checked where they are read."""

    checked_on_driver = False

    def __init__(self, X):
        self.filename = X.filename
        self.dtype = X.dtype
        self.offset = X.offset
        self.shape = X.shape
        self.order = "F" if X.flags.f_contiguous and not X.flags.c_contiguous else "C"

    def open(self):
        return np.memmap(
            self.filename,
            dtype=self.dtype,
            mode="r",
            offset=self.offset,
            shape=self.shape,
            order=self.order,
        )


def _is_whole_file_memmap(X):
    return (
        isinstance(X, np.memmap)
        and X.filename is not None
        and isinstance(X.base, mmap.mmap)
        and (X.flags.c_contiguous or X.flags.f_contiguous)
    )


def _check_lazy_pool(X, what):
    """Checks of a file-backed pool that read its header only (values: on the workers)."""
    if X.ndim == 0:
        raise ValueError(f"{what} must have one row per sample; got a scalar.")
    if len(X) == 0:
        raise ValueError(f"{what} is empty: there is nothing to query.")
    if X.dtype.kind not in "biufc":
        raise TypeError(f"{what} must hold numbers; got an array of dtype {X.dtype}.")
    return X


def _load_npy(X_pool):
    """The memory map of the ``.npy`` file at the path ``X_pool``."""
    path = os.path.abspath(os.fspath(X_pool))
    if not os.path.isfile(path):
        raise FileNotFoundError(
            f"X_pool is the path {path!r}, which is not a file; give a .npy file that "
            "every Ray worker can read (or an array)."
        )
    try:
        view = np.load(path, mmap_mode="r", allow_pickle=False)
    except ValueError as exc:
        raise ValueError(
            f"X_pool path {path!r} is not a .npy array file that numpy can memory-map: {exc}"
        ) from exc
    if not isinstance(view, np.ndarray):
        raise ValueError(f"X_pool path {path!r} must be a .npy file, not an archive.")
    return _check_lazy_pool(view, f"X_pool ({path})")


class _RefusedFileRows(ValueError):
    """Rows of a file-backed pool hold values that the checks of a local query refuse.

    Raised where the rows are read (a worker, or the driver for a few rows); the driver then
    runs the local checks on the whole pool, whose error names the row as a local query does.
    """


def _check_file_rows(X_rows, dtype):
    """The local checks of the values of rows read from a file-backed pool."""
    try:
        check_pool(X_rows)
        check_castable(X_rows, dtype, "X_pool")
    except ValueError as exc:
        raise _RefusedFileRows(str(exc)) from None


# --- the worker side ----------------------------------------------------------------------

#: The last round's (adapter, strategy, state) in this worker process, keyed by the payload's
#: object id and device, so that a worker running several shards of a round unpickles the
#: net once.
_WORKER_CACHE = {}


def _inference_payload(net):
    """What workers need of the net: ``(view, parts)``.

    ``view`` is a shallow view of the net without callbacks, history and optimizers (not
    needed for scoring, possibly large, possibly unpicklable: open files, loggers, ``print``
    as a sink) and without its modules and criteria, which are in ``parts``, on the CPU.
    skorch pickles modules with the standard pickle, which cannot load a module class
    defined in a script's ``__main__``, a notebook or a function on the workers; shipped
    apart, they go through Ray's cloudpickle, which pickles such classes by value.
    """
    view = object.__new__(type(net))
    view.__dict__.update(net.__dict__)
    view.__dict__["callbacks"] = []
    view.__dict__["callbacks_"] = []
    view.__dict__.pop("history_", None)
    for name in getattr(net, "_optimizers", ["optimizer"]):
        view.__dict__.pop(name + "_", None)
    parts = {}
    for name in [*getattr(net, "_modules", ["module"]), *getattr(net, "_criteria", [])]:
        if name + "_" in view.__dict__:
            parts[name + "_"] = _on_cpu(view.__dict__.pop(name + "_"))
    return view, parts


def _on_cpu(part):
    """``part`` itself when it is on the CPU, else a CPU copy (the net is left alone)."""
    if not isinstance(part, torch.nn.Module):
        return part
    tensors = [*part.parameters(), *part.buffers()]
    if all(tensor.device.type == "cpu" for tensor in tensors):
        return part
    return copy.deepcopy(part).cpu()


def _to_device(value, device):
    if torch.is_tensor(value):
        return value.to(device)
    if isinstance(value, dict):
        return {key: _to_device(item, device) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(_to_device(item, device) for item in value)
    return value


def _net_on(net, device):
    """Move a worker's own copy of the net (module and criterion) to ``device``."""
    net.device = device
    for name in [*getattr(net, "_modules", ["module"]), *getattr(net, "_criteria", [])]:
        part = getattr(net, name + "_", None)
        if isinstance(part, torch.nn.Module):
            part.to(device)
    return net


def _load_round(payload_ref, device):
    key = (payload_ref.binary(), device)
    if key not in _WORKER_CACHE:
        _WORKER_CACHE.clear()
        payload = import_ray().get(payload_ref)
        net = payload["net"]
        net.__dict__.update(payload["net_parts"])
        adapter = NetAdapter(net=_net_on(net, device))
        _WORKER_CACHE[key] = (adapter, payload["strategy"], _to_device(payload["state"], device))
    return _WORKER_CACHE[key]


def _run_shard(payload, source, start, stop, task, device, num_threads):
    """One shard's work on a Ray worker: a per-batch hook of the strategy over its rows.

    ``task`` is ``(hook, kwargs, top_k)``: the hook's name, its keyword arguments and, for
    strategies that rank by a score, ``(k, ranks)`` to return only the shard's best ``k``.
    ``payload``, ``kwargs`` and ``ranks`` come wrapped in lists, so that Ray hands over
    their object references instead of resolving them on every call.
    """
    torch.set_num_threads(num_threads)
    ray = import_ray()
    adapter, strategy, state = _load_round(payload[0], device)
    hook, kwargs, top_k = task
    kwargs = {} if kwargs is None else _to_device(ray.get(kwargs[0]), device)
    X_rows = pool_rows(source.open(), start, stop)
    if not source.checked_on_driver:
        _check_file_rows(X_rows, adapter.dtype)
    with warnings.catch_warnings():
        # Rows from the object store or a read-only memory map are not writable; scoring
        # only reads them.
        warnings.filterwarnings("ignore", message="The given NumPy array is not writable")
        try:
            outputs = run_hook(strategy, adapter, state, X_rows, hook, **kwargs)
        except NonFiniteValues as exc:
            rows = None if exc.rows is None else exc.rows + start
            raise NonFiniteValues(exc.quantity, rows, exc.source) from None
    if top_k is None:
        return outputs
    k, ranks = top_k
    shard_ranks = np.asarray(ray.get(ranks[0])[start:stop])
    best = shard_top_k(outputs, shard_ranks, k)
    return start + best, outputs[best], shard_ranks[best]


_REMOTE = {}


def _remote_run_shard(ray):
    if "run_shard" not in _REMOTE:
        _REMOTE["run_shard"] = ray.remote(_run_shard)
    return _REMOTE["run_shard"]


# --- the driver side ----------------------------------------------------------------------


def _put_payload(ray, adapter, strategy, state):
    """Put what workers need for a round (net, strategy, state) in the object store."""
    view, parts = _inference_payload(adapter.net)
    return ray.put(
        {
            "net": view,
            "net_parts": parts,
            "strategy": strategy,
            "state": _to_device(state, "cpu"),
        }
    )


class RayPool:
    """The pool as a wrapped strategy's selection sees it under :class:`RayScorer`.

    The same methods as :class:`skdynal.base.LocalPool`: :meth:`map` runs a per-batch hook
    of the strategy over the pool, shard by shard on the Ray workers (with ``rows``, over
    a few rows in the driver's process); :meth:`take` reads rows on the driver. One is
    made per round by the Ray backend, after the round's state is in the object store.

    Attributes
    ----------
    strategy, adapter, state
        The wrapped strategy, the driver's adapter and the round's state.
    X : array-like, torch Dataset or numpy.memmap
        The pool as the driver sees it (a memory map for file-backed pools).
    """

    def __init__(self, round_, X, source):
        self._round = round_
        self._source = source
        self.strategy = round_.strategy
        self.adapter = round_.adapter
        self.state = round_.state
        self.X = X

    def __len__(self):
        return len(self.X)

    def map(self, hook="batch_outputs", *, rows=None, **kwargs):
        """Run the strategy's per-batch ``hook`` over the pool (see ``LocalPool.map``).

        Without ``rows`` every shard runs on a worker and the outputs come back in row
        order; ``kwargs`` are put in the object store once per call.
        """
        if rows is not None:
            X_rows = self.take(rows)
            if not self._source.checked_on_driver:
                try:
                    _check_file_rows(X_rows, self.adapter.dtype)
                except _RefusedFileRows as exc:
                    self._raise_as_locally(exc)
            return run_hook(self.strategy, self.adapter, self.state, X_rows, hook, **kwargs)
        kwargs_ref = [self._round.ray.put(_to_device(kwargs, "cpu"))] if kwargs else None
        pieces = self.map_shards((hook, kwargs_ref, None))
        if isinstance(pieces[0], tuple):
            return tuple(np.concatenate(column) for column in zip(*pieces, strict=True))
        return np.concatenate(pieces)

    def take(self, indices):
        """The rows ``indices`` of the pool, in that order (read on the driver)."""
        return take_rows(self.X, indices)

    def map_shards(self, task):
        """Run ``task`` (see ``_run_shard``) on every shard, at most ``n_workers`` at a
        time; the shards' results in row order."""
        round_ = self._round
        ray = round_.ray
        n_rows = len(self.X)
        shard_size = round_.shard_size or -(-n_rows // round_.n_workers)
        batch_size = round_.adapter.batch_size_for(
            round_.strategy.get_params(deep=False).get("batch_size"), n_rows
        )
        bounds = shard_bounds(n_rows, shard_size, batch_size)
        device = "cuda" if round_.n_gpus > 0 else "cpu"
        remote = _remote_run_shard(ray).options(
            num_cpus=round_.n_cpus,
            num_gpus=round_.n_gpus,
            max_retries=round_.max_retries,
            retry_exceptions=False,
        )
        threads = max(1, int(round_.n_cpus))
        results = [None] * len(bounds)
        in_flight = {}
        next_shard = 0
        # On an error or Ctrl-C no new shard starts and the ones in flight are left to finish
        # (their results are dropped): ray.cancel() on a task whose reply is arriving aborts
        # the driver in Ray 2.x ("Tried to complete task that was not pending").
        while next_shard < len(bounds) or in_flight:
            while next_shard < len(bounds) and len(in_flight) < round_.n_workers:
                start, stop = bounds[next_shard]
                ref = remote.remote(
                    [round_.payload_ref], self._source, start, stop, task, device, threads
                )
                in_flight[ref] = next_shard
                next_shard += 1
            done, _ = ray.wait(list(in_flight), num_returns=1)
            for ref in done:
                try:
                    results[in_flight.pop(ref)] = ray.get(ref)
                except ray.exceptions.RayTaskError as exc:
                    self._raise_as_locally(exc)
        return results

    def _raise_as_locally(self, exc):
        """Raise the error a local query raises where a shard (or a few rows) failed.

        A worker's error arrives as Ray's task error; its cause, the strategy's own error,
        is raised instead (with the task error, which holds the worker's traceback, as its
        cause), so that the caller gets the same type and message as locally. Values that
        a worker refused in a file-backed pool are checked again on the driver with the
        local checks, whose error names the first such row of the pool.
        """
        cause = getattr(exc, "cause", exc)
        if isinstance(cause, _RefusedFileRows):
            default = QueryBackend()
            default.check_pool(self.X)
            default.check_pool_castable(self.X, self.adapter.dtype)
            raise ValueError(str(cause)) from exc  # the file changed since the worker read it
        if isinstance(cause, Exception) and cause is not exc:
            raise cause from exc
        raise exc


@dataclasses.dataclass
class _Round:
    """What one call of :class:`RayScorer` works with, once its parameters are checked."""

    ray: object
    adapter: NetAdapter
    strategy: BaseQueryStrategy
    state: dict
    payload_ref: object
    n_workers: int
    n_cpus: float
    n_gpus: float
    shard_size: int | None
    max_retries: int


class _RayBackend(QueryBackend):
    """The query path of :class:`~skdynal.base.QueryBackend`, with the pool on Ray workers.

    Every check of the inputs is the local one, with one exception: the values of a
    file-backed pool (a ``.npy`` path or a whole-file memory map) are not read on the
    driver but checked by the workers as they read their rows (:func:`_check_file_rows`).
    """

    def __init__(self, scorer):
        self.n_workers = scorer.n_workers
        self.n_cpus = scorer.n_cpus_per_worker
        self.n_gpus = scorer.n_gpus_per_worker
        self.shard_size = scorer.shard_size
        self.max_retries = scorer.max_retries
        self.address = scorer.address

    def check_pool(self, X_pool):
        """The driver's view of the pool: a memory map for file-backed pools (their header
        checked), the locally checked pool else (a tensor on the CPU: workers may have no
        GPU, or another one)."""
        if isinstance(X_pool, (str, os.PathLike)):
            return _load_npy(X_pool)
        if _is_whole_file_memmap(X_pool):
            return _check_lazy_pool(X_pool, "X_pool")
        X_pool = super().check_pool(X_pool)
        return X_pool.cpu() if torch.is_tensor(X_pool) else X_pool

    def check_pool_castable(self, X_pool, dtype):
        if not _is_whole_file_memmap(X_pool):  # else on the workers, with the values
            super().check_pool_castable(X_pool, dtype)

    def open_pool(self, strategy, adapter, state, X_pool):
        """Start Ray if needed and put the round (net, strategy, state) and the pool (unless
        workers read it from its file) in the object store."""
        ray = import_ray()
        if not ray.is_initialized():
            ray.init(address=self.address)
        source = (
            _MemmapFile(X_pool) if _is_whole_file_memmap(X_pool) else _StoredPool(ray.put(X_pool))
        )
        round_ = _Round(
            ray=ray,
            adapter=adapter,
            strategy=strategy,
            state=state,
            payload_ref=_put_payload(ray, adapter, strategy, state),
            n_workers=self.n_workers,
            n_cpus=self.n_cpus,
            n_gpus=self.n_gpus,
            shard_size=self.shard_size,
            max_retries=self.max_retries,
        )
        return RayPool(round_, X_pool, source)

    def select_from_pool(self, pool, n_instances, random_state):
        """Each shard's best rows merged into the pool's top ``n_instances`` for strategies
        that rank by a score; the local selection on the gathered outputs else."""
        if not pool.strategy.capabilities().ranks_by_score:
            return super().select_from_pool(pool, n_instances, random_state)
        ray = pool._round.ray
        ranks_ref = ray.put(tie_break_ranks(len(pool), random_state))
        task = ("batch_outputs", None, (n_instances, [ranks_ref]))
        return merge_top_k(pool.map_shards(task), n_instances)


class RayScorer(BaseQueryStrategy):
    """Run a query strategy's per-sample work on a Ray cluster; same answer as local.

    The driver resolves the learner, checks the inputs as a local query does (the same
    :class:`~skdynal.base.QueryBackend` path: a bad input gets the same error), computes the
    round's state once
    (:meth:`~skdynal.base.BaseQueryStrategy.round_state`: for dynamicAL the labeled-set
    gradient ``G``; for Coreset the labeled set's embeddings), puts the pickled skorch net,
    the strategy and that state in Ray's object store, and Ray tasks run the strategy's
    per-batch hooks on shards of the pool on CPU or GPU workers, at most ``n_workers`` at
    a time. Only the public strategy protocol is used, read from the strategy's
    ``capabilities()``:

    - strategies that rank by a row-wise score (``ranks_by_score``:
      :class:`~skdynal.DynamicALSampler` with ``selection="top_b"``, EGL, influence,
      margin, entropy, least confidence) return each shard's top ``n_instances`` as
      ``(index, score, tie-break rank)``, and the driver merges them into the exact global
      top ``n_instances``. The tie-break ranks come from the same permutation that the
      local selection draws from ``random_state``, so ties are broken the same way and the
      indices equal those of local scoring;
    - every other strategy (BADGE, Coreset, dynamicAL's class-balanced and de-influence
      selections) gets the ``batch_outputs`` of every shard, gathered in row order, and
      its ``select_from_outputs`` runs on the driver, as locally. The pool it is handed
      (a :class:`RayPool`) runs further passes (``pool.map``, such as dynamicAL's
      de-influence dots) on the shards too, and reads chosen rows on the driver.

    Strategies whose ``capabilities().shardable`` is false (or that do not read the pool)
    are refused with a ``TypeError``.

    Shards are cut at multiples of the scoring batch size, so every batch holds the same
    rows as when scoring locally, and scores agree with local ones to the last bits on the
    same hardware and thread count (within floating-point tolerance otherwise).

    The pool may be an array or tensor (put once in the object store), a torch ``Dataset``
    (pickled; it should read from storage every worker can reach), a memory-mapped ``.npy``
    (``numpy.load(path, mmap_mode="r")``) or the path of a ``.npy`` file. File-backed pools
    are opened with ``mmap_mode="r"`` on every worker, so the pool never passes through the
    driver: the path must be readable on every node (a shared file system), and its values
    are checked on the workers (a refused value is then looked for on the driver, so that
    the error names the row as locally).

    Parameters
    ----------
    strategy : query strategy, default=None
        The strategy to run (not modified). ``None`` means ``DynamicALSampler()``.
    n_workers : int, default=2
        Shards processed at the same time.
    n_cpus_per_worker : float, default=1
        CPUs Ray reserves per task; the task uses ``max(1, int(n_cpus_per_worker))``
        torch threads.
    n_gpus_per_worker : float, default=0
        GPUs Ray reserves per task (fractions share a GPU). With any, the worker moves its
        copy of the net to ``"cuda"``.
    shard_size : int, default=None
        Pool rows per task, rounded up to a multiple of the scoring batch size
        (:meth:`NetAdapter.batch_size_for`'s rule; a net that scores everything at once
        gives one shard). ``None`` splits the pool into ``n_workers`` shards. Smaller
        shards lose less work when a worker dies and balance uneven workers, at some
        overhead per task.
    max_retries : int, default=3
        How often Ray reruns a task whose worker died (errors raised by the scoring code
        itself are not retried).
    address : str, default=None
        Ray cluster to connect to when Ray is not initialized in this process yet
        (``ray.init(address=address)``); ``None`` starts a local instance. Ignored when Ray
        is already initialized.
    random_state : int, RandomState instance or None, default=None
        Seeds the selection's randomness (tie-breaking, k-means++ or k-center draws) when
        given; ``None`` uses the wrapped strategy's ``random_state``.

    Notes
    -----
    Workers see the net without the labeled set; whatever they need from it is in the
    round's state. Workers must be able to import skdynal (install it on every node, or use
    Ray's ``runtime_env``); the net's module is shipped with Ray's cloudpickle, so a module
    class defined in a script or a notebook works too.

    References
    ----------
    .. [1] P. Moritz et al., "Ray: A Distributed Framework for Emerging AI Applications",
       OSDI 2018.
    .. [2] H. Wang, W. Huang, Z. Wu, A. Margenot, H. Tong and J. He, "Deep Active Learning
       by Leveraging Training Dynamics", NeurIPS 2022.

    Examples
    --------
    >>> from skdynal import EGLSampler
    >>> from skdynal.distributed import RayScorer
    >>> RayScorer(EGLSampler(), n_workers=4)
    RayScorer(n_workers=4, strategy=EGLSampler())
    """

    _parameter_constraints: ClassVar[dict] = {
        "strategy": [BaseQueryStrategy, None],
        "n_workers": [StrictInterval(numbers.Integral, 1, None, closed="left")],
        "n_cpus_per_worker": [StrictInterval(numbers.Real, 0, None, closed="neither")],
        "n_gpus_per_worker": [StrictInterval(numbers.Real, 0, None, closed="left")],
        "shard_size": [StrictInterval(numbers.Integral, 1, None, closed="left"), None],
        "max_retries": [StrictInterval(numbers.Integral, 0, None, closed="left")],
        "address": [str, None],
        "random_state": ["random_state"],
    }

    def __init__(
        self,
        strategy=None,
        *,
        n_workers=2,
        n_cpus_per_worker=1,
        n_gpus_per_worker=0,
        shard_size=None,
        max_retries=3,
        address=None,
        random_state=None,
    ):
        self.strategy = strategy
        self.n_workers = n_workers
        self.n_cpus_per_worker = n_cpus_per_worker
        self.n_gpus_per_worker = n_gpus_per_worker
        self.shard_size = shard_size
        self.max_retries = max_retries
        self.address = address
        self.random_state = random_state

    def _strategy(self):
        if self.strategy is None:
            from ..strategies import DynamicALSampler

            return DynamicALSampler()
        return self.strategy

    def capabilities(self):
        """The wrapped strategy's capabilities."""
        return self._strategy().capabilities()

    def _seed(self, strategy):
        if self.random_state is not None:
            return self.random_state
        return getattr(strategy, "random_state", None)

    def select(self, learner, X_pool, n_instances=1, *, X_labeled=None, y_labeled=None):
        """Like calling the strategy, but always returns ``(indices, scores)``.

        Parameters
        ----------
        learner : modAL learner or skorch.NeuralNet
            A modAL ``ActiveLearner`` around a fitted skorch net, or a fitted net together
            with ``X_labeled`` and ``y_labeled``.
        X_pool : array-like, torch Dataset, numpy.memmap or path of a .npy file
            The unlabeled pool.
        n_instances : int, default=1
            How many rows to choose.
        X_labeled, y_labeled : array-like, default=None
            The labeled set, for a bare net (or to override the learner's).

        Returns
        -------
        indices : ndarray of int
        scores : ndarray of float64 or None
            What the wrapped strategy's ``select`` returns as scores.
        """
        strategy = self._check_strategy()
        return _RayBackend(self).select(
            strategy,
            learner,
            X_pool,
            n_instances,
            X_labeled=X_labeled,
            y_labeled=y_labeled,
            random_state=self._seed(strategy),
        )

    def score(self, learner, X_pool, *, X_labeled=None, y_labeled=None):
        """Score every row of the pool on the cluster (scoring strategies only).

        Parameters
        ----------
        learner : modAL learner or skorch.NeuralNet
            As in :meth:`select`.
        X_pool : array-like, torch Dataset, numpy.memmap or path of a .npy file
            The unlabeled pool.
        X_labeled, y_labeled : array-like, default=None
            The labeled set, for a bare net (or to override the learner's).

        Returns
        -------
        scores : ndarray of shape (n_pool,), dtype float64
        """
        strategy = self._check_strategy()
        if not isinstance(strategy, BaseScoringStrategy):
            raise TypeError(
                f"{type(strategy).__name__} does not rank rows by a score; use select()."
            )
        return _RayBackend(self).score(
            strategy, learner, X_pool, X_labeled=X_labeled, y_labeled=y_labeled
        )

    def _check_strategy(self):
        """Validate the parameters (and the wrapped strategy's) and return the strategy."""
        self.check_params()
        strategy = self._strategy()
        # The wrapped strategy's own select is never called, so its parameters are
        # validated here, once per call (scikit-learn's BaseEstimator validation).
        strategy.check_params()
        capabilities = strategy.capabilities()
        if not capabilities.shardable or not capabilities.reads_pool:
            reason = (
                "its per-row outputs depend on the other rows"
                if not capabilities.shardable
                else "it does not read the pool"
            )
            raise TypeError(
                f"{type(strategy).__name__} cannot be split into shards of the pool: "
                f"{reason} (capabilities().shardable / reads_pool). Run it locally instead."
            )
        return strategy
