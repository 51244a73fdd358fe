"""Stream a pool through the net in batches, with memory that does not grow with the pool."""

import warnings

import numpy as np
import torch
from torch.utils.data import Dataset, Subset
from tqdm.auto import tqdm

from ._adapter import explain_shape_errors
from ._validation import check_finite_batch

__all__ = ["BatchSizeReducedWarning", "map_pool"]

#: Rows handed to skorch at a time when the caller gives no batch size and the net's
#: validation batch size is unset; only used to bound memory, the result does not depend on it.
_DEFAULT_BATCH_SIZE = 256


class BatchSizeReducedWarning(UserWarning):
    """Scoring ran out of accelerator memory and went on with a smaller batch size."""


def _is_out_of_memory(exc):
    return isinstance(exc, torch.cuda.OutOfMemoryError) or (
        isinstance(exc, RuntimeError) and "out of memory" in str(exc).lower()
    )


def _rows(X_pool, start, stop):
    if isinstance(X_pool, Dataset):
        return Subset(X_pool, range(start, stop))
    return X_pool[start:stop]


def map_pool(adapter, X_pool, batch_fn, *, batch_size=None, progress=False, desc=None):
    """Apply ``batch_fn`` to the pool batch by batch and concatenate the results in row order.

    Rows are sliced lazily (a memory-mapped array or a torch ``Dataset`` is never loaded whole)
    and go through the net's own ``get_dataset`` and validation iterator, on its device. Only
    the outputs of ``batch_fn`` are kept, on the CPU.

    When a batch runs out of accelerator memory, it is retried with half the batch size (down
    to 1) and the run goes on at that size; one :class:`BatchSizeReducedWarning` says so.

    Parameters
    ----------
    adapter : NetAdapter
        The net.
    X_pool : ndarray, torch.Tensor or torch.utils.data.Dataset
        The pool.
    batch_fn : callable
        ``batch_fn(X_batch) -> tensor or tuple of tensors``, each with the batch as first
        dimension.
    batch_size : int, default=None
        Rows per batch; ``None`` uses the net's validation batch size.
    progress : bool, default=False
        Show a tqdm bar over the pool.
    desc : str, default=None
        Label of the progress bar.

    Returns
    -------
    outputs : ndarray or tuple of ndarray
        Like ``batch_fn``'s return value, concatenated over the pool (float outputs as float64).
    """
    size = batch_size or adapter.net.get_params_for("iterator_valid").get(
        "batch_size", adapter.net.batch_size
    )
    n_pool = len(X_pool)
    size = n_pool if size in (None, -1) else size
    initial_size = size
    is_dataset = isinstance(X_pool, Dataset)
    pieces = []
    single = False
    start = 0
    with tqdm(total=n_pool, disable=not progress, desc=desc, unit="sample") as bar:
        while start < n_pool:
            stop = min(start + size, n_pool)
            try:
                outputs = []
                for X_batch, _ in adapter.iterate(_rows(X_pool, start, stop), batch_size=size):
                    if is_dataset:
                        check_finite_batch(X_batch, X_pool)
                    with explain_shape_errors(X_pool, adapter.module):
                        result = batch_fn(X_batch)
                    single = not isinstance(result, tuple)
                    outputs.append(tuple(_to_numpy(r) for r in ((result,) if single else result)))
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


def _to_numpy(tensor):
    array = tensor.detach().cpu()
    if array.is_floating_point():
        array = array.double()
    return array.numpy()
