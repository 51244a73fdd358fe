"""dynamicAL: query the samples whose labels would speed up training the most."""

import math
import numbers

import torch

from .._adapter import eval_mode
from .._base import BaseScoringStrategy
from .._streaming import map_pool
from .._validation import check_batch_size
from ..gradients import (
    grad_stats,
    last_layer_grad_stats,
    reference_grad_stats,
    summed_loss_gradient,
)

__all__ = ["DynamicALSampler"]

_METHODS = {
    "exact": grad_stats,
    "vmap": reference_grad_stats,
    "last_layer": last_layer_grad_stats,
}


class DynamicALSampler(BaseScoringStrategy):
    """Query strategy of dynamicAL (Wang et al., NeurIPS 2022).

    After training on the labeled set S, every pool sample ``x_u`` is scored by how much
    labeling it would speed up training,

    .. math::

        \\Delta_u = \\lVert g_u \\rVert^2 + \\gamma \\langle g_u, G \\rangle,
        \\qquad g_u = \\nabla_\\theta \\ell(x_u, \\hat y_u),
        \\qquad G = \\sum_{(x, y) \\in S} \\nabla_\\theta \\ell(x, y),

    with the pseudo label ``ŷ_u = argmax f(x_u)``, gradients over all trainable parameters
    of the network, the net's own loss, and the network in ``eval()`` mode. The
    ``n_instances`` largest scores are queried.

    Parameters
    ----------
    gamma : float, default=2.0
        Weight of the alignment term. ``0`` gives expected gradient length (EGL);
        ``float("inf")`` ranks by ``<g_u, G>`` alone (influence with an identity Hessian).
        The paper's Figure 5 compares 0, 1, 2 and infinity; 2 was best.
    batch_size : int, default=None
        Pool samples per batch. ``None`` uses the net's validation batch size.
    method : {"exact", "vmap", "last_layer"}, default="exact"
        How per-sample gradient statistics are computed.

        - ``"exact"``: the fast exact engine, :func:`skdynal.gradients.grad_stats` (one
          forward and one backward pass per batch, per-layer rules, never the per-sample
          gradients of the whole network).
        - ``"vmap"``: the reference, :func:`skdynal.gradients.reference_grad_stats`;
          materialises each batch's per-sample gradients with ``torch.func`` (exact; memory
          ``batch_size x n_parameters``).
        - ``"last_layer"``: :func:`skdynal.gradients.last_layer_grad_stats`, gradients
          restricted to the final ``nn.Linear`` layer. An **approximation** of the paper's
          score, for models too large for the exact methods.
    random_state : int, RandomState instance or None, default=None
        Breaks ties among equal scores.
    progress : bool, default=False
        Show a tqdm progress bar over the pool.

    References
    ----------
    .. [1] H. Wang, W. Huang, Z. Wu, A. Margenot, H. Tong and J. He, "Deep Active Learning
       by Leveraging Training Dynamics", NeurIPS 2022.

    Examples
    --------
    >>> from skdynal import DynamicALSampler
    >>> DynamicALSampler(gamma=1.0)
    DynamicALSampler(gamma=1.0)
    """

    def __init__(
        self, gamma=2.0, batch_size=None, method="exact", random_state=None, progress=False
    ):
        self.gamma = gamma
        self.batch_size = batch_size
        self.method = method
        self.random_state = random_state
        self.progress = progress

    @property
    def _needs_labeled(self):
        return _check_gamma(self.gamma) != 0

    def _scoring_state(self, adapter):
        """Driver-side state of a scoring round: the labeled-set gradient ``G``.

        Returns a dict that is cheap to ship to workers: ``{"direction": G or None}`` with
        ``G`` keyed by parameter name, on the module's device.
        """
        gamma = _check_gamma(self.gamma)
        _check_method(self.method)
        batch_size = check_batch_size(self.batch_size)
        if gamma == 0:
            return {"direction": None}
        module = adapter.module
        with eval_mode(module):
            direction = summed_loss_gradient(
                module,
                _wrap_outputs(adapter, adapter.per_sample_loss()),
                adapter.iterate(adapter.X_labeled, adapter.y_labeled, batch_size),
            )
        return {"direction": direction}

    def _score_rows(self, adapter, state, X_rows):
        """Scores of ``X_rows`` given the round's :meth:`_scoring_state` (shardable)."""
        gamma = _check_gamma(self.gamma)
        stats_fn = _check_method(self.method)
        batch_size = check_batch_size(self.batch_size)
        module = adapter.module
        direction = state["direction"]
        loss_fn = _wrap_outputs(adapter, adapter.pseudo_label_loss())

        def batch_stats(X_batch):
            n = _batch_len(X_batch)
            dummy_targets = torch.zeros(n, dtype=torch.long, device=adapter.device)
            stats = stats_fn(module, loss_fn, X_batch, dummy_targets, direction)
            dots = stats.sq_norms.new_zeros(n) if stats.dots is None else stats.dots
            return stats.sq_norms, dots

        with eval_mode(module):
            sq_norms, dots = map_pool(
                adapter, X_rows, batch_stats, batch_size=batch_size,
                progress=self.progress, desc="dynamicAL",
            )
        if math.isinf(gamma):
            return dots
        return sq_norms + gamma * dots


def _wrap_outputs(adapter, loss_fn):
    """Apply ``loss_fn`` to the module output's first element when it returns a tuple."""

    def wrapped(outputs, targets):
        if isinstance(outputs, tuple):
            outputs = outputs[0]
        return loss_fn(outputs, targets)

    return wrapped


def _batch_len(X_batch):
    if isinstance(X_batch, dict):
        return len(next(iter(X_batch.values())))
    return len(X_batch)


def _check_gamma(gamma):
    if isinstance(gamma, bool) or not isinstance(gamma, numbers.Real):
        raise TypeError(f"gamma must be a non-negative number or float('inf'), got {gamma!r}.")
    gamma = float(gamma)
    if math.isnan(gamma) or gamma < 0:
        raise ValueError(f"gamma must be >= 0 (or float('inf')), got {gamma}.")
    return gamma




def _check_method(method):
    if method not in _METHODS:
        raise ValueError(f"method must be one of {sorted(_METHODS)}, got {method!r}.")
    return _METHODS[method]
