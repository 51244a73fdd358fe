"""Input checks shared by all query strategies."""

import numbers

import numpy as np
import torch
from torch.utils.data import Dataset

__all__ = [
    "check_batch_size",
    "check_feature_shape",
    "check_finite_batch",
    "check_n_instances",
    "check_pool",
    "check_positive_int",
    "row_shape",
]

_FINITE_CHUNK_ROWS = 8192


def check_pool(X_pool):
    """Validate a pool of unlabeled inputs and return it as an array or tensor.

    Accepts numpy arrays (memory-mapped ones included, checked in chunks), torch tensors,
    torch ``Dataset`` objects (yielding ``(X, y)`` pairs as skorch expects, ``y`` unused;
    their values are checked batch by batch while scoring, never loaded whole) and nested
    sequences (converted with ``np.asarray``).

    Raises
    ------
    TypeError
        If the pool is not array-like.
    ValueError
        If the pool is empty, zero-dimensional, or holds NaN or infinite values.
    """
    if isinstance(X_pool, Dataset):
        if len(X_pool) == 0:
            raise ValueError("X_pool is empty: there is nothing to query.")
        return X_pool
    if isinstance(X_pool, (str, bytes)) or X_pool is None:
        raise TypeError(f"X_pool must be an array or tensor, got {type(X_pool).__name__}.")
    if not (isinstance(X_pool, np.ndarray) or torch.is_tensor(X_pool)):
        try:
            X_pool = np.asarray(X_pool)
        except (ValueError, TypeError) as exc:
            raise TypeError(
                f"X_pool must be an array or tensor, got {type(X_pool).__name__}: {exc}"
            ) from exc
    if X_pool.ndim == 0:
        raise ValueError("X_pool must have one row per sample; got a scalar.")
    if len(X_pool) == 0:
        raise ValueError("X_pool is empty: there is nothing to query.")
    if torch.is_tensor(X_pool):
        if X_pool.is_floating_point() and not bool(torch.isfinite(X_pool).all()):
            raise ValueError(_non_finite_message(X_pool))
    elif X_pool.dtype.kind in "fc":
        for start in range(0, len(X_pool), _FINITE_CHUNK_ROWS):
            if not np.isfinite(X_pool[start : start + _FINITE_CHUNK_ROWS]).all():
                raise ValueError(_non_finite_message(X_pool))
    elif X_pool.dtype.kind not in "biu":
        raise TypeError(
            f"X_pool must hold numbers; got an array of dtype {X_pool.dtype}."
        )
    return X_pool


def _non_finite_message(X_pool):
    shape = f" of shape {tuple(X_pool.shape)}" if hasattr(X_pool, "shape") else ""
    return (
        f"X_pool{shape} contains NaN or infinite values; "
        "remove or impute them before querying."
    )


def check_finite_batch(X_batch, X_pool):
    """Raise the pool's non-finite error if a floating batch holds NaN or infinity."""
    tensors = X_batch.values() if isinstance(X_batch, dict) else [X_batch]
    for tensor in tensors:
        if torch.is_tensor(tensor) and tensor.is_floating_point():
            if not bool(torch.isfinite(tensor).all()):
                raise ValueError(_non_finite_message(X_pool))


def row_shape(X):
    """Shape of one row of an array, tensor or ``Dataset`` (``None`` when unknown)."""
    if isinstance(X, Dataset):
        item = X[0]
        if isinstance(item, (tuple, list)):
            item = item[0]
        return tuple(np.shape(item)) if not isinstance(item, dict) else None
    if isinstance(X, dict):
        return None
    return tuple(X.shape[1:]) if torch.is_tensor(X) else tuple(np.shape(X)[1:])


def check_n_instances(n_instances, n_pool):
    """Validate ``n_instances`` against the pool size and return it as an int."""
    if isinstance(n_instances, bool) or not isinstance(n_instances, numbers.Integral):
        raise TypeError(f"n_instances must be an integer, got {n_instances!r}.")
    if n_instances < 1:
        raise ValueError(f"n_instances must be at least 1, got {n_instances}.")
    if n_instances > n_pool:
        raise ValueError(
            f"n_instances={n_instances} is larger than the pool ({n_pool} samples)."
        )
    return int(n_instances)


def check_feature_shape(X_pool, X_reference):
    """Raise if the rows of the pool and of the labeled set differ in shape."""
    if X_reference is None:
        return
    pool_shape, ref_shape = row_shape(X_pool), row_shape(X_reference)
    if pool_shape is not None and ref_shape is not None and pool_shape != ref_shape:
        raise ValueError(
            f"X_pool rows have shape {pool_shape} but the labeled data the net was trained "
            f"on has rows of shape {ref_shape}."
        )


def check_positive_int(value, name, *, minimum=1):
    """Return ``value`` as an int; ``ValueError`` naming ``name`` unless an integer >= minimum."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}.")
    return int(value)


def check_batch_size(batch_size):
    """Validate a batch size: a positive integer, or ``None`` for the net's own."""
    if batch_size is None:
        return None
    if isinstance(batch_size, bool) or not isinstance(batch_size, numbers.Integral):
        raise TypeError(f"batch_size must be a positive integer or None, got {batch_size!r}.")
    if batch_size < 1:
        raise ValueError(f"batch_size must be a positive integer or None, got {batch_size}.")
    return int(batch_size)
