"""Input checks shared by all query strategies."""

import numpy as np
import scipy.sparse as sp
import torch
from torch.utils.data import Dataset

from ._checks import (
    BATCH_SIZE,
    HasMethods,
    Hidden,
    Interval,
    InvalidParameterError,
    Options,
    StrictInterval,
    StrOptions,
    check_batch_size,
    check_n_instances,
    check_positive_int,
)

__all__ = [
    "BATCH_SIZE",
    "HasMethods",
    "Hidden",
    "Interval",
    "InvalidParameterError",
    "NonFiniteValues",
    "Options",
    "StrOptions",
    "StrictInterval",
    "check_batch_size",
    "check_castable",
    "check_feature_shape",
    "check_finite_batch",
    "check_n_instances",
    "check_pool",
    "check_positive_int",
    "n_rows",
    "row_shape",
]

_FINITE_CHUNK_ROWS = 8192


def check_pool(X_pool):
    """Validate a pool of unlabeled inputs and return it as an array or tensor.

    Accepts numpy arrays (memory-mapped ones included, checked in chunks), torch tensors,
    torch ``Dataset`` objects (yielding ``(X, y)`` pairs as skorch expects, ``y`` unused;
    their values are checked batch by batch while scoring, never loaded whole), nested
    sequences (converted with ``np.asarray``), and, as skorch accepts them, dicts of arrays
    (one per keyword argument of the module's ``forward``) and scipy sparse matrices. The
    last two are returned wrapped in a ``skorch.dataset.Dataset``, which hands the module
    one dict of tensors per batch, or densifies the sparse rows one batch at a time.

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
    if sp.issparse(X_pool) and not sp.isspmatrix(X_pool):
        # scipy's sparse arrays (csr_array, ...) index to 1-D rows, which skorch's batches
        # cannot squeeze; the matrix classes (csr_matrix) give the 2-D rows skorch expects.
        X_pool = sp.csr_matrix(X_pool)
    if isinstance(X_pool, dict) or sp.issparse(X_pool):
        from skorch.dataset import Dataset as SkorchDataset

        check_finite_input(X_pool, "X_pool")
        if n_rows(X_pool) == 0:
            raise ValueError("X_pool is empty: there is nothing to query.")
        return SkorchDataset(X_pool)
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
    if torch.is_tensor(X_pool) or X_pool.dtype.kind in "fc":
        # names the first row, like the labeled set's check
        check_finite_input(X_pool, f"X_pool of shape {tuple(X_pool.shape)}")
    elif X_pool.dtype.kind not in "biu":
        raise TypeError(f"X_pool must hold numbers; got an array of dtype {X_pool.dtype}.")
    return X_pool


def _non_finite_message(X_pool):
    shape = f" of shape {tuple(X_pool.shape)}" if hasattr(X_pool, "shape") else ""
    return f"X_pool{shape} contains NaN or infinite values; remove or impute them before querying."


def n_rows(X):
    """Number of rows of an array, tensor, sparse matrix, ``Dataset`` or dict of arrays.

    A dict (one array per keyword argument of the module, as skorch accepts) must hold
    arrays with the same number of rows.
    """
    if isinstance(X, dict):
        if not X:
            raise ValueError("A dict input must hold at least one array.")
        lengths = {key: n_rows(value) for key, value in X.items()}
        if len(set(lengths.values())) != 1:
            raise ValueError(
                f"The arrays of a dict input must have the same number of rows; got {lengths}."
            )
        return next(iter(lengths.values()))
    if sp.issparse(X):
        return X.shape[0]
    return len(X)


def _parts(X):
    """The arrays or tensors inside ``X`` (the values of a dict), by name."""
    if isinstance(X, dict):
        return [(f"[{key!r}]", value) for key, value in X.items()]
    return [("", X)]


def check_finite_input(X, name):
    """Raise a ``ValueError`` naming ``name`` and the first row if ``X`` holds NaN or inf.

    Works on numpy arrays (in chunks), torch tensors, scipy sparse matrices and dicts of
    those; other inputs (a ``Dataset``, a list of strings) are left to later checks.
    """
    for suffix, part in _parts(X):
        if sp.issparse(part):
            data = np.asarray(part.data)
            if data.dtype.kind in "fc" and not np.isfinite(data).all():
                row = int(part.tocoo().row[~np.isfinite(part.tocoo().data)].min())
                raise ValueError(
                    f"{name}{suffix} contains NaN or infinite values (first in row {row}); "
                    "remove or impute them before querying."
                )
            continue
        if torch.is_tensor(part):
            if part.is_floating_point() and not bool(torch.isfinite(part).all()):
                bad = ~torch.isfinite(part.reshape(len(part), -1)).all(dim=1)
                row = int(torch.nonzero(bad)[0, 0])
                raise ValueError(
                    f"{name}{suffix} contains NaN or infinite values (first in row {row}); "
                    "remove or impute them before querying."
                )
            continue
        if isinstance(part, np.ndarray) and part.dtype.kind in "fc":
            for start in range(0, len(part), _FINITE_CHUNK_ROWS):
                chunk = np.asarray(part[start : start + _FINITE_CHUNK_ROWS])
                finite = np.isfinite(chunk.reshape(len(chunk), -1)).all(axis=1)
                if not finite.all():
                    row = start + int(np.flatnonzero(~finite)[0])
                    raise ValueError(
                        f"{name}{suffix} contains NaN or infinite values (first in row "
                        f"{row}); remove or impute them before querying."
                    )


def check_castable(X, dtype, name):
    """Raise if finite values of ``X`` overflow to infinity when cast to ``dtype``.

    The module computes in its own floating dtype (``float32`` for most nets): a float64
    value of ``1e300`` is finite, but the module would see ``inf``. Checked in chunks on
    numpy arrays, tensors, sparse matrices and dicts of those; the error names the row.
    """
    if not (isinstance(dtype, torch.dtype) and dtype.is_floating_point):
        return
    limit = torch.finfo(dtype).max
    for suffix, part in _parts(X):
        if sp.issparse(part):
            part = part.tocsr()
            data = np.abs(np.asarray(part.data, dtype=np.float64)) if part.nnz else None
            if data is None or part.dtype.kind not in "fc" or not (data > limit).any():
                continue
            row = int(np.searchsorted(part.indptr, np.flatnonzero(data > limit)[0], "right") - 1)
            _raise_overflow(name, suffix, row, float(data.max()), dtype, limit)
        elif torch.is_tensor(part):
            if part.is_floating_point() and torch.finfo(part.dtype).max > limit:
                big = (part.detach().abs() > limit).reshape(len(part), -1).any(dim=1)
                if bool(big.any()):
                    row = int(torch.nonzero(big)[0, 0])
                    value = float(part[row].detach().abs().max())
                    _raise_overflow(name, suffix, row, value, dtype, limit)
        elif isinstance(part, np.ndarray) and part.dtype.kind == "f":
            if float(np.finfo(part.dtype).max) <= limit:
                continue
            for start in range(0, len(part), _FINITE_CHUNK_ROWS):
                chunk = np.abs(np.asarray(part[start : start + _FINITE_CHUNK_ROWS]))
                big = (chunk.reshape(len(chunk), -1) > limit).any(axis=1)
                if big.any():
                    row = start + int(np.flatnonzero(big)[0])
                    value = float(np.abs(part[row]).max())
                    _raise_overflow(name, suffix, row, value, dtype, limit)


def _raise_overflow(name, suffix, row, value, dtype, limit):
    dtype_name = str(dtype).replace("torch.", "")
    raise ValueError(
        f"{name}{suffix} row {row} overflows {dtype_name} when cast to the module's dtype: "
        f"its largest absolute value is {value:.3g}, {dtype_name} holds at most "
        f"{limit:.3g}. Scale the features as for training (or drop the row)."
    )


class NonFiniteValues(ValueError):
    """Something a strategy computed (scores, embeddings, gradients) is NaN or infinite.

    Raised where the values are computed, with the rows they belong to; the strategy's
    ``select`` and ``score`` replace it by an error that says why (see
    :func:`skdynal._base.explain_non_finite`).

    Parameters
    ----------
    quantity : str
        What was computed, e.g. ``"scores"`` or ``"embeddings"``.
    rows : array-like of int or None
        The non-finite rows of ``source`` (``None`` when not per row).
    source : {"pool", "labeled set"}
        Whose rows they are.
    """

    def __init__(self, quantity, rows=None, source="pool"):
        self.quantity = quantity
        self.rows = None if rows is None else np.asarray(rows, dtype=np.intp)
        self.source = source
        where = "" if self.rows is None else f" in {len(self.rows)} rows of the {source}"
        super().__init__(f"The {quantity} are NaN or infinite{where}.")


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
