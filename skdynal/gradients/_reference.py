"""Vectorised reference computation of per-sample gradient statistics with ``torch.func``.

This path materialises the per-sample gradients of a batch (memory ``B x P``). It is exact
and simple, and serves as the reference that faster engines are tested against.
"""

import torch
from torch.func import functional_call, grad, vmap

from ._common import GradStats, trainable_parameters

__all__ = ["reference_grad_stats"]


def reference_grad_stats(module, loss_fn, inputs, targets, direction=None, *, chunk_size=None):
    """Per-sample squared gradient norms and dots with ``direction`` via ``torch.func``.

    Parameters
    ----------
    module : torch.nn.Module
        The network, already in the mode it should be differentiated in (normally ``eval()``,
        so that the samples of a batch do not interact).
    loss_fn : callable
        ``loss_fn(outputs, targets)`` returning the per-sample losses, shape ``(B,)``.
    inputs : torch.Tensor
        Batch of inputs, first dimension ``B``.
    targets : torch.Tensor
        Targets of the batch, first dimension ``B``.
    direction : dict of str to torch.Tensor, default=None
        A parameter-shaped direction ``G``, keyed like ``module.named_parameters()``, over the
        trainable parameters. When given, the dots ``<g_u, G>`` are returned as well.
    chunk_size : int, default=None
        Passed to :func:`torch.func.vmap` to bound memory.

    Returns
    -------
    stats : GradStats
        ``sq_norms`` of shape ``(B,)`` and ``dots`` of shape ``(B,)`` (``None`` without a
        direction), in the dtype of the parameters.
    """
    params = trainable_parameters(module)
    trainable = {name: p.detach() for name, p in params.items()}
    constants = {
        name: p.detach() for name, p in module.named_parameters() if name not in trainable
    }
    constants.update(dict(module.named_buffers()))

    def sample_loss(trainable, x, y):
        out = functional_call(module, (trainable, constants), (x.unsqueeze(0),))
        return loss_fn(out, y.unsqueeze(0)).sum()

    per_sample = vmap(grad(sample_loss), in_dims=(None, 0, 0), chunk_size=chunk_size)(
        trainable, inputs, targets
    )
    batch = inputs.shape[0]
    sq_norms = inputs.new_zeros(batch, dtype=_param_dtype(params))
    dots = None if direction is None else torch.zeros_like(sq_norms)
    for name, g in per_sample.items():
        flat = g.reshape(batch, -1)
        sq_norms += flat.pow(2).sum(1)
        if direction is not None:
            dots += flat @ direction[name].reshape(-1).to(flat.dtype)
    return GradStats(sq_norms=sq_norms, dots=dots)


def _param_dtype(params):
    for p in params.values():
        return p.dtype
    return torch.get_default_dtype()
