"""Core-set selection by greedy k-center on embeddings (Sener & Savarese, ICLR 2018)."""

from typing import ClassVar

import numpy as np
import torch

from .._base import BaseQueryStrategy
from .._validation import BATCH_SIZE, NonFiniteValues
from ._outputs import batch_embeddings, embeddings

__all__ = ["CoresetSampler", "k_center_greedy"]

_CHUNK_ROWS = 1024


def _min_squared_distances(X, centers, chunk_rows=_CHUNK_ROWS):
    """Squared distance from every row of ``X`` to its nearest row of ``centers``.

    Blocks of ``chunk_rows x chunk_rows`` distances at a time: memory O(n + chunk_rows²).
    Uses ``||x - c||² = ||x||² + ||c||² - 2 x·c`` (one matrix product per block).
    """
    x_sq = (X * X).sum(dim=1)
    c_sq = (centers * centers).sum(dim=1)
    nearest = torch.full((len(X),), float("inf"), dtype=X.dtype, device=X.device)
    for start in range(0, len(X), chunk_rows):
        stop = start + chunk_rows
        best = nearest[start:stop]
        for c_start in range(0, len(centers), chunk_rows):
            c_stop = c_start + chunk_rows
            block = X[start:stop] @ centers[c_start:c_stop].T
            block.mul_(-2.0).add_(x_sq[start:stop, None]).add_(c_sq[None, c_start:c_stop])
            torch.minimum(best, block.min(dim=1).values.clamp_(min=0.0), out=best)
    return nearest


def k_center_greedy(pool, centers, n_instances, random_state, chunk_rows=_CHUNK_ROWS):
    """Greedy k-center: repeatedly take the pool row farthest from every center so far.

    Parameters
    ----------
    pool : torch.Tensor of shape (n_pool, n_features)
    centers : torch.Tensor of shape (n_centers, n_features) or None
        The starting centers (the labeled set's embeddings). With none, the first row is
        drawn uniformly at random.
    n_instances : int
    random_state : numpy.random.RandomState
        Breaks ties (and draws the first row when there are no centers).
    chunk_rows : int
        Block size of the distance computations.

    Returns
    -------
    indices : ndarray of shape (n_instances,)
        Pool rows in the order chosen.
    distances : ndarray of shape (n_instances,)
        Each chosen row's distance to its nearest center at the time it was chosen
        (``inf`` for a first row drawn without centers).
    """
    _check_finite_embeddings(pool, "pool")
    if centers is not None:
        _check_finite_embeddings(centers, "labeled set")
    n_pool = len(pool)
    # Distances are kept in the order of a random permutation of the pool, so that argmax
    # (the first maximum) breaks ties at random.
    permutation = random_state.permutation(n_pool)
    order = torch.as_tensor(permutation, device=pool.device)
    has_centers = centers is not None and len(centers) > 0
    if has_centers:
        nearest = _min_squared_distances(pool, centers, chunk_rows)[order]
    else:
        nearest = torch.full((n_pool,), float("inf"), dtype=pool.dtype, device=pool.device)
    sq_norms = (pool * pool).sum(dim=1)
    chosen = np.empty(n_instances, dtype=np.intp)
    distances = np.empty(n_instances, dtype=np.float64)
    for step in range(n_instances):
        # Without centers the first row is the permutation's first, a uniform draw.
        best = int(torch.argmax(nearest)) if has_centers or step else 0
        chosen[step] = best
        distances[step] = float(nearest[best])
        if step + 1 == n_instances:
            break
        row = permutation[best]
        to_new = (sq_norms + sq_norms[row] - 2.0 * (pool @ pool[row])).clamp_(min=0.0)[order]
        torch.minimum(nearest, to_new, out=nearest)
        nearest[best] = -float("inf")
    return permutation[chosen], np.sqrt(distances)


def _check_finite_embeddings(X, source):
    finite = torch.isfinite(X).all(dim=1)
    if not bool(finite.all()):
        raise NonFiniteValues("embeddings", torch.nonzero(~finite).reshape(-1).cpu(), source)


class CoresetSampler(BaseQueryStrategy):
    """Core-set selection: greedy k-center cover of the pool in embedding space.

    Every pool row and every labeled row is embedded (by default the input of the net's
    last ``torch.nn.Linear``, i.e. the penultimate representation). Starting from the
    labeled set as centers, the pool row farthest from its nearest center is queried and
    becomes a center, ``n_instances`` times (the 2-approximation of the k-center problem
    that Sener & Savarese use as their core-set solution). Without a labeled set the first
    row is drawn at random.

    Cost: one forward pass over the pool and the labeled set, plus
    ``O((n_labeled + n_instances) x n_pool x n_features)`` distance arithmetic. Memory:
    the embeddings (``(n_pool + n_labeled) x n_features`` in float64) and distance blocks of
    at most ``1024 x 1024``; no full distance matrix is formed.

    Parameters
    ----------
    embedding_layer : str, default=None
        Name (as in ``module.named_modules()``) of the layer whose **input** is the
        embedding. ``None`` takes the last ``torch.nn.Linear``.
    batch_size : int, default=None
        Rows per forward pass. ``None`` uses the net's validation batch size.
    random_state : int, RandomState instance or None, default=None
        Breaks ties between equally far rows, and draws the first row without a labeled
        set.

    Notes
    -----
    Embeddings are taken with the module in ``eval()`` mode and compared in float64 on the
    module's device. The scores returned by ``select`` are each chosen row's Euclidean
    distance to its nearest center when it was chosen.

    References
    ----------
    .. [1] O. Sener and S. Savarese, "Active Learning for Convolutional Neural Networks: A
       Core-Set Approach", ICLR 2018.

    Examples
    --------
    >>> from skdynal import CoresetSampler
    >>> CoresetSampler(embedding_layer="layers.0")
    CoresetSampler(embedding_layer='layers.0')
    """

    _parameter_constraints: ClassVar[dict] = {
        "embedding_layer": [str, None],
        "batch_size": BATCH_SIZE,
        "random_state": ["random_state"],
    }

    def __init__(self, embedding_layer=None, batch_size=None, random_state=None):
        self.embedding_layer = embedding_layer
        self.batch_size = batch_size
        self.random_state = random_state

    def round_state(self, adapter):
        """The labeled set's embeddings, the starting centers (``None`` without a labeled set)."""
        centers = None
        if adapter.X_labeled is not None and len(adapter.X_labeled):
            centers, _ = embeddings(
                adapter,
                adapter.X_labeled,
                layer_name=self.embedding_layer,
                batch_size=self.batch_size,
                source="labeled set",
            )
        return {"centers": centers}

    def batch_outputs(self, adapter, state, X_batch):
        """Embeddings of one batch of the pool (the input of the embedding layer)."""
        with torch.no_grad():
            return batch_embeddings(adapter, X_batch, layer_name=self.embedding_layer)

    def select_from_outputs(self, adapter, state, outputs, n_instances, random_state, pool):
        """Greedy k-center on the pool's embeddings, from the labeled set's."""
        embedded = torch.as_tensor(outputs, device=adapter.device)
        centers = state["centers"]
        if centers is not None:
            centers = centers.to(adapter.device)
        return k_center_greedy(embedded, centers, n_instances, random_state)
