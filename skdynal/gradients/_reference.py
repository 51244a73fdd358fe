"""Vectorised reference computation of per-sample gradient statistics with ``torch.func``.

This path materialises the per-sample gradients of a batch (memory ``B x P``). It is exact
and simple, and serves as the reference that faster engines are tested against.
"""

import torch
from torch.func import functional_call, grad, vmap
from torch.utils._pytree import tree_map

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
    per_sample = per_sample_gradients(module, loss_fn, inputs, targets, params, chunk_size)
    batch = inputs.shape[0]
    sq_norms = inputs.new_zeros(batch, dtype=_param_dtype(params))
    dots = None if direction is None else torch.zeros_like(sq_norms)
    accumulate_stats(per_sample, direction, sq_norms, dots)
    return GradStats(sq_norms=sq_norms, dots=dots)


def per_sample_gradients(module, loss_fn, inputs, targets, params, chunk_size=None):
    """Per-sample gradients with respect to ``params`` only, by ``vmap`` of ``grad``.

    ``params`` maps qualified names to (a subset of) the module's parameters; every other
    parameter and buffer is held constant. ``inputs`` may be a tensor or a dict of tensors
    (passed as keyword arguments). Returns a dict of name to a tensor of shape
    ``(B, *param.shape)``: memory ``B x sum(param sizes)`` per chunk of ``chunk_size``.
    """
    differentiable = {name: p.detach() for name, p in params.items()}
    constants = {
        name: p.detach() for name, p in module.named_parameters() if name not in differentiable
    }
    constants.update(dict(module.named_buffers()))

    def sample_loss(diff, x, y):
        x = tree_map(lambda t: t.unsqueeze(0), x)
        if isinstance(x, dict):
            out = functional_call(module, (diff, constants), (), x)
        else:
            out = functional_call(module, (diff, constants), (x,))
        return loss_fn(out, y.unsqueeze(0)).sum()

    with torch.enable_grad():
        return vmap(grad(sample_loss), in_dims=(None, 0, 0), chunk_size=chunk_size)(
            differentiable, inputs, targets
        )


def accumulate_stats(per_sample, direction, sq_norms, dots):
    """Add each per-sample gradient's squared norm to ``sq_norms`` and its dot with
    ``direction`` to ``dots`` (skipped when ``dots`` is ``None``), in place."""
    batch = sq_norms.shape[0]
    with torch.no_grad():
        for name, g in per_sample.items():
            flat = g.reshape(batch, -1)
            sq_norms += flat.pow(2).sum(1).to(sq_norms.dtype)
            if dots is not None:
                dots += (flat @ direction[name].reshape(-1).to(flat.dtype)).to(dots.dtype)


def _param_dtype(params):
    for p in params.values():
        return p.dtype
    return torch.get_default_dtype()
