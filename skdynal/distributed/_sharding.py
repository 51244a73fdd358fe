"""Split a pool into shards and merge per-shard top-k into the exact global top-k."""

import numbers

import numpy as np

from .._selection import permutation_ranks

__all__ = ["merge_top_k", "shard_bounds", "shard_top_k", "tie_break_ranks"]


def shard_bounds(n_rows, shard_size, batch_size=None):
    """Row ranges ``[(start, stop), ...]`` covering ``range(n_rows)`` in order.

    Parameters
    ----------
    n_rows : int
        Rows in the pool.
    shard_size : int
        Rows per shard (the last one may be shorter).
    batch_size : int, default=None
        When given, ``shard_size`` is rounded up to a multiple of it, so that every shard is
        cut into the same batches as the whole pool would be. Batches then hold the same
        rows locally and on the workers, which keeps floating-point results identical.

    Returns
    -------
    bounds : list of tuple of int
    """
    if isinstance(shard_size, bool) or not isinstance(shard_size, numbers.Integral):
        raise TypeError(f"shard_size must be a positive integer or None, got {shard_size!r}.")
    if shard_size < 1:
        raise ValueError(f"shard_size must be a positive integer or None, got {shard_size}.")
    shard_size = int(shard_size)
    if batch_size:
        shard_size = -(-shard_size // batch_size) * batch_size
    return [(start, min(start + shard_size, n_rows)) for start in range(0, n_rows, shard_size)]


def tie_break_ranks(n_rows, random_state):
    """Rank of every row in the random order that breaks ties among equal scores.

    :func:`skdynal._selection.select_top_k` draws ``random_state.permutation(n_rows)`` and
    sorts stably by decreasing score, so among equal scores the row that comes first in
    that permutation wins. This returns each row's position in the same permutation (its
    inverse), drawn the same way, so shards can apply the same order on their own.

    Returns
    -------
    ranks : ndarray of shape (n_rows,), dtype intp
    """
    return permutation_ranks(n_rows, random_state)


def _order(scores, ranks):
    """Positions sorted by decreasing score, then increasing rank."""
    return np.lexsort((ranks, -scores))


def shard_top_k(scores, ranks, k):
    """Positions of the ``k`` best rows of one shard, best first.

    Best means largest score, and among equal scores the smallest tie-break rank.

    Raises
    ------
    ValueError
        If a score is NaN (as the local selection does).
    """
    scores = np.asarray(scores, dtype=np.float64)
    if np.isnan(scores).any():
        raise ValueError(
            f"{int(np.isnan(scores).sum())} scores are NaN; the net's outputs or loss are "
            "not finite. Check the model before querying."
        )
    return _order(scores, np.asarray(ranks))[:k]


def merge_top_k(candidates, k):
    """The global top ``k`` from every shard's top ``k``.

    Every row of the global top ``k`` under the total order (score descending, rank
    ascending) is in the top ``k`` of its own shard, so merging the shards' candidates gives
    exactly the rows and order that sorting the whole pool would.

    Parameters
    ----------
    candidates : iterable of tuple of ndarray
        ``(indices, scores, ranks)`` per shard, indices into the whole pool.
    k : int

    Returns
    -------
    indices : ndarray of intp
    scores : ndarray of float64
    """
    indices, scores, ranks = (np.concatenate(column) for column in zip(*candidates, strict=True))
    best = _order(scores.astype(np.float64), ranks)[:k]
    return indices[best].astype(np.intp), scores[best].astype(np.float64)
