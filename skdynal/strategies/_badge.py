"""BADGE: k-means++ seeding on last-layer gradient embeddings (Ash et al., ICLR 2020)."""

from typing import ClassVar

import numpy as np
import torch

from .._base import BaseQueryStrategy
from .._selection import kmeans_plusplus_from_distances
from .._validation import BATCH_SIZE, NonFiniteValues
from ._outputs import batch_embeddings

__all__ = ["BADGESampler", "kmeans_plusplus_seeding"]


def kmeans_plusplus_seeding(A, H, n_instances, random_state):
    """k-means++ seeding on the gradient embeddings ``g_i = a_i ⊗ h_i``.

    The first center is drawn uniformly; each next one with probability proportional to
    its squared distance to the nearest center so far (Arthur & Vassilvitskii, 2007). When
    every remaining row coincides with a center, the next is drawn uniformly among the rows
    not yet chosen.

    Parameters
    ----------
    A : torch.Tensor of shape (n, n_outputs)
    H : torch.Tensor of shape (n, n_features)
    n_instances : int
    random_state : numpy.random.RandomState
        Draws: ``randint(n)`` for the first center, then ``choice(n, p=...)`` (or ``choice``
        among the unchosen rows) for each next.

    Returns
    -------
    indices : ndarray of shape (n_instances,)
        Rows in the order chosen.
    distances : ndarray of shape (n_instances,)
        Each chosen row's squared distance to its nearest earlier center (``inf`` for the
        first).
    """
    finite = torch.isfinite(A).all(dim=1) & torch.isfinite(H).all(dim=1)
    if not bool(finite.all()):
        raise NonFiniteValues("gradient embeddings", torch.nonzero(~finite).reshape(-1).cpu())
    sq_norms = (A * A).sum(dim=1) * (H * H).sum(dim=1)

    def cross(center):
        return ((A @ A[center]) * (H @ H[center])).cpu().numpy()

    return kmeans_plusplus_from_distances(
        np.full(len(A), np.inf), sq_norms.cpu().numpy(), cross, n_instances, random_state
    )


class BADGESampler(BaseQueryStrategy):
    """BADGE: diverse, uncertain batches from k-means++ on gradient embeddings.

    Each pool row ``x`` is embedded as the gradient of the net's own loss at its pseudo
    label ``ŷ = argmax f(x)`` w.r.t. the weight of the embedding layer (by default the last
    ``torch.nn.Linear``): ``g_x = a_x ⊗ h_x``, with ``h_x`` the layer's input and ``a_x``
    the loss gradient w.r.t. the layer's output. For cross-entropy on the logits of the last
    layer, ``a_x = p(·|x) - onehot(ŷ)``, so ``||g_x||`` is large for uncertain rows. The batch
    is the k-means++ seeding of these embeddings.

    Cost: one forward and a backward through the head per pool batch, then
    ``O(n_instances x n_pool x (n_classes + n_features))``. Memory: ``A`` and ``H``
    (``n_pool x (n_classes + n_features)`` float64) and O(n_pool) per step; the
    ``n_pool x (n_classes · n_features)`` embedding matrix is never formed, distances use
    ``||a⊗h - a'⊗h'||² = ||a||²||h||² + ||a'||²||h'||² - 2 (a·a')(h·h')``.

    Parameters
    ----------
    embedding_layer : str, default=None
        Name (as in ``module.named_modules()``) of the layer whose weight gradient is the
        embedding; it must map one feature vector to one output vector per sample.
        ``None`` takes the last ``torch.nn.Linear``.
    batch_size : int, default=None
        Pool rows per forward pass. ``None`` uses the net's validation batch size.
    random_state : int, RandomState instance or None, default=None
        Drives the k-means++ draws.

    Notes
    -----
    The first center is drawn uniformly, as in k-means++; the authors' released code starts
    from the row of largest gradient norm instead. The bias gradient is not part of the
    embedding. ``select`` returns as scores each chosen row's squared distance to its
    nearest earlier center (``inf`` for the first).

    References
    ----------
    .. [1] J. T. Ash, C. Zhang, A. Krishnamurthy, J. Langford and A. Agarwal, "Deep Batch
       Active Learning by Diverse, Uncertain Gradient Lower Bounds", ICLR 2020.
    .. [2] D. Arthur and S. Vassilvitskii, "k-means++: The Advantages of Careful Seeding",
       SODA 2007.

    Examples
    --------
    >>> from skdynal import BADGESampler
    >>> BADGESampler(random_state=0)
    BADGESampler(random_state=0)
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

    def batch_outputs(self, adapter, state, X_batch):
        """``(H, A)`` of one batch: the embedding layer's inputs and the loss gradients
        w.r.t. its outputs at the pseudo labels, the factors of ``A ⊗ H``."""
        return batch_embeddings(
            adapter, X_batch, layer_name=self.embedding_layer, output_gradients=True
        )

    def select_from_outputs(self, adapter, state, outputs, n_instances, random_state, pool):
        """k-means++ seeding on the pool's gradient embeddings."""
        H, A = (torch.as_tensor(array, device=adapter.device) for array in outputs)
        return kmeans_plusplus_seeding(A, H, n_instances, random_state)
