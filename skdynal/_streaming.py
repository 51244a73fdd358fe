"""Stream a pool through the net in batches, with memory that does not grow with the pool."""

import warnings

import numpy as np
import torch
from torch.utils.data import Dataset, Subset
from tqdm.auto import tqdm

from ._adapter import explain_shape_errors
from ._validation import NonFiniteValues, check_finite_batch, n_rows

__all__ = ["BatchSizeReducedWarning", "map_pool", "pool_rows", "take_rows"]


class BatchSizeReducedWarning(UserWarning):
    """Scoring ran out of accelerator memory and went on with a smaller batch size."""


def _is_out_of_memory(exc):
    return isinstance(exc, torch.cuda.OutOfMemoryError) or (
        isinstance(exc, RuntimeError) and "out of memory" in str(exc).lower()
    )


def pool_rows(X, start, stop):
    """Rows ``start:stop`` of a pool, lazily (a ``Subset`` of a ``Dataset``, a slice else;
    a dict of arrays, as skorch accepts for a multi-input module, is sliced key by key)."""
    if isinstance(X, Dataset):
        return Subset(X, range(start, stop))
    if isinstance(X, dict):
        return {key: value[start:stop] for key, value in X.items()}
    return X[start:stop]


def take_rows(X, indices):
    """Rows ``indices`` of a pool (array, tensor or ``Dataset``), in that order."""
    if isinstance(X, Dataset):
        return Subset(X, [int(i) for i in indices])
    if torch.is_tensor(X):
        return X[torch.as_tensor(indices, dtype=torch.long, device=X.device)]
    return X[np.asarray(indices, dtype=np.intp)]


def map_pool(
    adapter,
    X_pool,
    batch_fn,
    *,
    y=None,
    batch_size=None,
    progress=False,
    desc=None,
    source="pool",
    quantity="per-row outputs",
    allow_negative_inf=False,
):
    """Apply ``batch_fn`` to the pool batch by batch and concatenate the results in row order.

    This is the one loop over a pool that every strategy's per-row work goes through. Rows
    are sliced lazily (a memory-mapped array or a torch ``Dataset`` is never loaded whole)
    and go through the net's own ``get_dataset`` and validation iterator, on its device. Only
    the outputs of ``batch_fn`` are kept, on the CPU. The rows of a ``Dataset`` are checked
    for NaN and infinity batch by batch (arrays are checked before scoring), and so are the
    floating outputs, which raise :class:`~skdynal._validation.NonFiniteValues` naming the
    rows.

    When a batch runs out of accelerator memory, it is retried with half the batch size (down
    to 1) and the run goes on at that size; one :class:`BatchSizeReducedWarning` says so.

    Parameters
    ----------
    adapter : NetAdapter
        The net.
    X_pool : ndarray, torch.Tensor, torch.utils.data.Dataset or dict of ndarray
        The rows (the pool, or the labeled set with ``source="labeled set"``).
    batch_fn : callable
        ``batch_fn(X_batch) -> tensor or tuple of tensors`` (or numpy arrays), each with
        the batch as first dimension; ``batch_fn(X_batch, y_batch)`` when ``y`` is given.
        A retried batch is passed again, so a ``batch_fn`` that accumulates (a sum of
        gradients) adds a batch's share only once it has computed it.
    y : array-like, default=None
        Targets of the rows (the labeled set's labels), sliced like ``X_pool`` and passed
        to ``batch_fn`` on the module's device.
    batch_size : int, default=None
        Rows per batch; ``None`` follows :meth:`NetAdapter.batch_size_for`.
    progress : bool, default=False
        Show a tqdm bar over the rows.
    desc : str, default=None
        Label of the progress bar.
    source : {"pool", "labeled set"}, default="pool"
        Whose rows these are, named when an output is not finite.
    quantity : str, default="per-row outputs"
        What the outputs are, named when one is not finite.
    allow_negative_inf : bool, default=False
        Whether ``-inf`` is a legitimate output (it marks rows left unscored).

    Returns
    -------
    outputs : ndarray or tuple of ndarray
        Like ``batch_fn``'s return value, concatenated over the rows (float outputs as
        float64).
    """
    n_pool = n_rows(X_pool)
    size = initial_size = adapter.batch_size_for(batch_size, n_pool)
    is_dataset = isinstance(X_pool, Dataset)
    pieces = []
    single = False
    start = 0
    with tqdm(total=n_pool, disable=not progress, desc=desc, unit="sample") as bar:
        while start < n_pool:
            stop = min(start + size, n_pool)
            try:
                outputs = []
                offset = start
                y_rows = None if y is None else pool_rows(y, start, stop)
                batches = adapter.iterate(pool_rows(X_pool, start, stop), y_rows, batch_size=size)
                for X_batch, y_batch in batches:
                    if is_dataset:
                        check_finite_batch(X_batch, X_pool)
                    with explain_shape_errors(X_pool, adapter.module):
                        result = batch_fn(X_batch) if y is None else batch_fn(X_batch, y_batch)
                    single = not isinstance(result, tuple)
                    arrays = tuple(_to_numpy(r) for r in ((result,) if single else result))
                    _check_finite_outputs(arrays, offset, source, quantity, allow_negative_inf)
                    offset += len(arrays[0])
                    outputs.append(arrays)
            except RuntimeError as exc:
                if not _is_out_of_memory(exc) or size == 1:
                    raise
                size = max(1, size // 2)
                if torch.cuda.is_available():
                    torch.cuda.empty_cache()
                continue
            pieces.extend(outputs)
            bar.update(stop - start)
            start = stop
    if size != initial_size:
        warnings.warn(
            f"Scoring ran out of memory with batch_size={initial_size}; it went on with "
            f"batch_size={size}. Pass batch_size={size} to skip the retries.",
            BatchSizeReducedWarning,
            stacklevel=3,
        )
    columns = tuple(np.concatenate(column) for column in zip(*pieces, strict=True))
    return columns[0] if single else columns


def _check_finite_outputs(arrays, offset, source, quantity, allow_negative_inf):
    for array in arrays:
        if array.dtype.kind != "f":
            continue
        bad = ~np.isfinite(array.reshape(len(array), -1))
        if allow_negative_inf:
            bad &= ~np.isneginf(array.reshape(len(array), -1))
        rows = np.flatnonzero(bad.any(axis=1))
        if len(rows):
            raise NonFiniteValues(quantity, rows + offset, source)


def _to_numpy(output):
    if not torch.is_tensor(output):
        array = np.asarray(output)
        return array.astype(np.float64) if array.dtype.kind == "f" else array
    array = output.detach().cpu()
    if array.is_floating_point():
        array = array.double()
    return array.numpy()
