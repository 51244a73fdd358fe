"""Score the pool on a Ray cluster, shard by shard, with the same answer as local scoring."""

import copy
import math
import mmap
import numbers
import os
import warnings

import numpy as np
import torch
from sklearn.utils import check_random_state
from torch.utils.data import Dataset, Subset

from .._adapter import NetAdapter, resolve_learner
from .._base import BaseQueryStrategy, BaseScoringStrategy
from .._validation import check_feature_shape, check_n_instances, check_pool, check_positive_int
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


class _NpyFile:
    """A ``.npy`` file every worker can read, memory-mapped on the worker."""

    checked_on_driver = False

    def __init__(self, path):
        self.path = path

    def open(self):
        return np.load(self.path, mmap_mode="r", allow_pickle=False)


class _MemmapFile:
    """A whole-file ``numpy.memmap`` reopened on the worker from its file name and layout."""

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


def _pool_source(X_pool, ray):
    """``(view, source)``: a driver-side view of the pool (for its length and row shape) and
    a picklable description of how workers read it."""
    if isinstance(X_pool, (str, os.PathLike)):
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
        return _check_lazy_pool(view, f"X_pool ({path})"), _NpyFile(path)
    if _is_whole_file_memmap(X_pool):
        return _check_lazy_pool(X_pool, "X_pool"), _MemmapFile(X_pool)
    X_pool = check_pool(X_pool)
    if torch.is_tensor(X_pool):
        X_pool = X_pool.cpu()  # workers may have no GPU, or another one
    return X_pool, _StoredPool(ray.put(X_pool))


def _rows(X, start, stop):
    if isinstance(X, Dataset):
        return Subset(X, range(start, stop))
    return X[start:stop]


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


def _score_shard(payload, source, start, stop, task, ranks, device, num_threads):
    """One shard's work on a Ray worker.

    ``payload`` and ``ranks`` come wrapped in a list, so that Ray hands over their object
    references instead of resolving them on every call.
    """
    torch.set_num_threads(num_threads)
    adapter, strategy, state = _load_round(payload[0], device)
    X = source.open()
    X_rows = _rows(X, start, stop)
    if not source.checked_on_driver:
        check_pool(X_rows)
    with warnings.catch_warnings():
        # Rows from the object store or a read-only memory map are not writable; scoring
        # only reads them.
        warnings.filterwarnings("ignore", message="The given NumPy array is not writable")
        if task == "outputs":
            outputs = strategy._row_outputs(adapter, state, X_rows)
            return tuple(np.asarray(out) for out in outputs)
        if isinstance(task, tuple) and task[0] == "dots":
            direction = _to_device(import_ray().get(task[1][0]), device)
            return np.asarray(strategy._dot_rows(adapter, direction, X_rows), dtype=np.float64)
        scores = np.asarray(strategy._score_rows(adapter, state, X_rows), dtype=np.float64)
    if task == "scores":
        return scores
    k = task[1]
    shard_ranks = np.asarray(import_ray().get(ranks[0])[start:stop])
    best = shard_top_k(scores, shard_ranks, k)
    return start + best, scores[best], shard_ranks[best]


_REMOTE = {}


def _remote_score_shard(ray):
    if "score_shard" not in _REMOTE:
        _REMOTE["score_shard"] = ray.remote(_score_shard)
    return _REMOTE["score_shard"]


# --- the driver side ----------------------------------------------------------------------


def _sharding_kind(strategy):
    """``"top_k"`` for row-wise scores, ``"outputs"`` for global selections from per-row
    outputs; a TypeError for strategies whose work cannot be split into rows."""
    if not isinstance(strategy, BaseQueryStrategy):
        raise TypeError(
            "RayScorer wraps a skdynal query strategy (for example DynamicALSampler()), got "
            f"{type(strategy).__name__}."
        )
    from_outputs = getattr(strategy, "_selects_from_outputs", None)
    if from_outputs is not None and from_outputs():
        return "outputs"
    cls = type(strategy)
    if (
        isinstance(strategy, BaseScoringStrategy)
        and (cls._query is BaseScoringStrategy._query or hasattr(cls, "_select_with_dots"))
        and cls._score_rows is not BaseScoringStrategy._score_rows
    ):
        return "top_k"
    if cls._row_outputs is not BaseQueryStrategy._row_outputs:
        return "outputs"
    raise TypeError(
        f"{cls.__name__} cannot be split into shards of the pool: it implements neither "
        "row-wise scores (_score_rows, selected by top-k) nor per-row outputs "
        "(_row_outputs and _select_from_outputs). Run it locally instead."
    )


def _selects_with_dots(strategy):
    """Whether the strategy's selection needs more passes of dots over the pool."""
    check = getattr(strategy, "_selects_with_dots", None)
    return bool(check is not None and check())


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


def _check_resource(value, name, allow_zero):
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or math.isnan(value):
        raise ValueError(f"{name} must be a number, got {value!r}.")
    if value < 0 or (value == 0 and not allow_zero):
        bound = ">= 0" if allow_zero else "> 0"
        raise ValueError(f"{name} must be {bound}, got {value!r}.")
    return float(value)


class RayScorer(BaseQueryStrategy):
    """Run a query strategy's per-sample work on a Ray cluster; same answer as local.

    The driver resolves the learner and computes the round's state once (for dynamicAL the
    labeled-set gradient ``G``; for Coreset the labeled set's embeddings), puts the pickled
    skorch net, the strategy and that state in Ray's object store, and Ray tasks score
    shards of the pool on CPU or GPU workers, at most ``num_workers`` at a time:

    - strategies that rank by a row-wise score (:class:`~skdynal.DynamicALSampler`, EGL,
      influence, margin, entropy, least confidence) return each shard's top
      ``n_instances`` as ``(index, score, tie-break rank)``, and the driver merges them into
      the exact global top ``n_instances``. The tie-break ranks come from the same
      permutation that the local selection draws from ``random_state``, so ties are broken
      the same way and the indices equal those of local scoring;
    - strategies whose selection is global (BADGE, Coreset) return per-row outputs
      (embeddings), and the driver runs the selection on them, as locally;
    - dynamicAL's ``selection="deinfluence"`` needs one more pass over the pool per chunk
      after the first: workers return every row's score, then, for each further chunk,
      every row's dot ``<g_u, D>`` with the direction ``D`` that the driver computes from
      the chunks chosen so far; the driver runs the chunked selection as locally, with the
      same tie-breaking draws.

    Shards are cut at multiples of the scoring batch size, so every batch holds the same
    rows as when scoring locally, and scores agree with local ones to the last bits on the
    same hardware and thread count (within floating-point tolerance otherwise).

    The pool may be an array or tensor (put once in the object store), a torch ``Dataset``
    (pickled; it should read from storage every worker can reach), a memory-mapped ``.npy``
    (``numpy.load(path, mmap_mode="r")``) or the path of a ``.npy`` file. File-backed pools
    are opened with ``mmap_mode="r"`` on every worker, so the pool never passes through the
    driver: the path must be readable on every node (a shared file system), and its values
    are checked for NaN on the workers.

    Parameters
    ----------
    strategy : query strategy, default=None
        The strategy to run (not modified). ``None`` means ``DynamicALSampler()``.
    num_workers : int, default=2
        Shards scored at the same time.
    num_cpus_per_worker : float, default=1
        CPUs Ray reserves per task; the task uses ``max(1, int(num_cpus_per_worker))``
        torch threads.
    num_gpus_per_worker : float, default=0
        GPUs Ray reserves per task (fractions share a GPU). With any, the worker moves its
        copy of the net to ``"cuda"``.
    shard_size : int, default=None
        Pool rows per task, rounded up to a multiple of the scoring batch size. ``None``
        splits the pool into ``num_workers`` shards. Smaller shards lose less work when a
        worker dies and balance uneven workers, at some overhead per task.
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

    The wrapped strategy's row-wise hooks are ``_scoring_state``, ``_score_rows`` (top-k
    strategies) or ``_row_outputs`` and ``_select_from_outputs`` (global ones); see
    :class:`skdynal._base.BaseQueryStrategy`. A scoring strategy whose selection needs more
    passes (``_selects_with_dots()`` true) also implements ``_dot_rows`` and
    ``_select_with_dots``, as :class:`~skdynal.DynamicALSampler` does.

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
    >>> RayScorer(EGLSampler(), num_workers=4)
    RayScorer(num_workers=4, strategy=EGLSampler())
    """

    def __init__(
        self,
        strategy=None,
        *,
        num_workers=2,
        num_cpus_per_worker=1,
        num_gpus_per_worker=0,
        shard_size=None,
        max_retries=3,
        address=None,
        random_state=None,
    ):
        self.strategy = strategy
        self.num_workers = num_workers
        self.num_cpus_per_worker = num_cpus_per_worker
        self.num_gpus_per_worker = num_gpus_per_worker
        self.shard_size = shard_size
        self.max_retries = max_retries
        self.address = address
        self.random_state = random_state

    def _strategy(self):
        if self.strategy is None:
            from ..strategies import DynamicALSampler

            return DynamicALSampler()
        return self.strategy

    @property
    def _needs_labeled(self):
        return self._strategy()._needs_labeled

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
        scores : ndarray of float64
            What the wrapped strategy's ``select`` returns as scores.
        """
        strategy = self._strategy()
        kind = _sharding_kind(strategy)
        ray, adapter, view, source = self._prepare_round(
            strategy, learner, X_pool, X_labeled, y_labeled
        )
        n_instances = check_n_instances(n_instances, len(view))
        random_state = check_random_state(self._seed(strategy))
        state = strategy._scoring_state(adapter)
        if kind == "top_k" and _selects_with_dots(strategy):
            return self._select_with_dots(
                ray, adapter, strategy, state, view, source, n_instances, random_state
            )
        if kind == "top_k":
            ranks_ref = ray.put(tie_break_ranks(len(view), random_state))
            candidates = self._map_shards(
                ray,
                adapter,
                strategy,
                state,
                view,
                source,
                ("top_k", n_instances),
                ranks_ref,
            )
            return merge_top_k(candidates, n_instances)
        outputs = self._map_shards(ray, adapter, strategy, state, view, source, "outputs")
        outputs = tuple(np.concatenate(column) for column in zip(*outputs, strict=True))
        indices, scores = strategy._select_from_outputs(
            adapter, state, outputs, n_instances, random_state
        )
        return np.asarray(indices, dtype=np.intp), scores

    def score(self, learner, X_pool, *, X_labeled=None, y_labeled=None):
        """Score every row of the pool on the cluster (row-wise scoring strategies only).

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
        strategy = self._strategy()
        if _sharding_kind(strategy) != "top_k":
            raise TypeError(
                f"{type(strategy).__name__} does not rank rows by a score; use select()."
            )
        ray, adapter, view, source = self._prepare_round(
            strategy, learner, X_pool, X_labeled, y_labeled
        )
        state = strategy._scoring_state(adapter)
        pieces = self._map_shards(ray, adapter, strategy, state, view, source, "scores")
        return np.concatenate(pieces)

    def _prepare_round(self, strategy, learner, X_pool, X_labeled, y_labeled):
        self._check_params()
        ray = import_ray()
        adapter = resolve_learner(learner, X_labeled=X_labeled, y_labeled=y_labeled)
        if not ray.is_initialized():
            ray.init(address=self.address)
        view, source = _pool_source(X_pool, ray)
        check_feature_shape(view, adapter.X_labeled)
        if strategy._needs_labeled and not adapter.has_labeled:
            raise ValueError(
                f"{type(strategy).__name__} needs the labeled set: give the ActiveLearner "
                "X_training and y_training, or pass X_labeled and y_labeled."
            )
        return ray, adapter, view, source

    def _check_params(self):
        check_positive_int(self.num_workers, "num_workers")
        check_positive_int(self.max_retries, "max_retries", minimum=0)
        _check_resource(self.num_cpus_per_worker, "num_cpus_per_worker", allow_zero=False)
        _check_resource(self.num_gpus_per_worker, "num_gpus_per_worker", allow_zero=True)
        if self.shard_size is not None:
            check_positive_int(self.shard_size, "shard_size")

    def _batch_size(self, adapter, strategy):
        size = getattr(strategy, "batch_size", None) or adapter.net.get_params_for(
            "iterator_valid"
        ).get("batch_size", adapter.net.batch_size)
        return None if size in (None, -1) else int(size)

    def _select_with_dots(
        self, ray, adapter, strategy, state, view, source, n_instances, random_state
    ):
        """A selection that needs more passes of dots over the pool (dynamicAL's
        de-influence): every pass is sharded, the selection runs on the driver."""
        payload_ref = _put_payload(ray, adapter, strategy, state)

        def pool_dots(direction):
            direction_ref = ray.put(_to_device(direction, "cpu"))
            pieces = self._map_shards(
                ray,
                adapter,
                strategy,
                state,
                view,
                source,
                ("dots", [direction_ref]),
                payload_ref=payload_ref,
            )
            return np.concatenate(pieces)

        scores = np.concatenate(
            self._map_shards(
                ray, adapter, strategy, state, view, source, "scores", payload_ref=payload_ref
            )
        )
        indices, chosen_scores = strategy._select_with_dots(
            adapter, view, scores, n_instances, random_state, pool_dots
        )
        return np.asarray(indices, dtype=np.intp), chosen_scores

    def _map_shards(
        self,
        ray,
        adapter,
        strategy,
        state,
        view,
        source,
        task,
        ranks_ref=None,
        payload_ref=None,
    ):
        """Run ``task`` on every shard, at most ``num_workers`` at a time; results in order."""
        n_rows = len(view)
        shard_size = self.shard_size or -(-n_rows // self.num_workers)
        bounds = shard_bounds(n_rows, shard_size, self._batch_size(adapter, strategy))
        if payload_ref is None:
            payload_ref = _put_payload(ray, adapter, strategy, state)
        device = "cuda" if self.num_gpus_per_worker > 0 else "cpu"
        remote = _remote_score_shard(ray).options(
            num_cpus=self.num_cpus_per_worker,
            num_gpus=self.num_gpus_per_worker,
            max_retries=self.max_retries,
            retry_exceptions=False,
        )
        threads = max(1, int(self.num_cpus_per_worker))
        results = [None] * len(bounds)
        in_flight = {}
        next_shard = 0
        try:
            while next_shard < len(bounds) or in_flight:
                while next_shard < len(bounds) and len(in_flight) < self.num_workers:
                    start, stop = bounds[next_shard]
                    ref = remote.remote(
                        [payload_ref], source, start, stop, task, [ranks_ref], device, threads
                    )
                    in_flight[ref] = next_shard
                    next_shard += 1
                done, _ = ray.wait(list(in_flight), num_returns=1)
                for ref in done:
                    results[in_flight.pop(ref)] = ray.get(ref)
        except BaseException:
            for ref in in_flight:
                ray.cancel(ref)
            raise
        return results
