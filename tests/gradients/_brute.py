"""Brute-force per-sample gradient statistics: one backward per sample, explicit flatten/dot.

Independent of the engine on purpose: no hooks, no torch.func, no rules.
"""

import torch


def brute_force_grad_stats(module, loss_fn, inputs, targets, direction=None, names=None):
    """Return ``(sq_norms, dots)`` as float64 tensors by looping over the samples.

    ``names`` restricts the gradient to those parameters (default: every parameter with
    ``requires_grad``). ``dots`` is ``None`` without a direction.
    """
    params = {n: p for n, p in module.named_parameters() if p.requires_grad}
    if names is not None:
        params = {n: params[n] for n in names}
    batch = targets.shape[0]
    sq_norms = torch.zeros(batch, dtype=torch.float64)
    dots = None if direction is None else torch.zeros(batch, dtype=torch.float64)
    flat_direction = None
    if direction is not None:
        flat_direction = torch.cat([direction[n].reshape(-1).double() for n in params])
    for u in range(batch):
        if isinstance(inputs, dict):
            x = {k: v[u : u + 1] for k, v in inputs.items()}
            out = module(**x)
        else:
            out = module(inputs[u : u + 1])
        loss = loss_fn(out, targets[u : u + 1]).sum()
        grads = torch.autograd.grad(loss, list(params.values()), allow_unused=True)
        flat = torch.cat(
            [
                (torch.zeros_like(p) if g is None else g).reshape(-1).double()
                for g, p in zip(grads, params.values(), strict=True)
            ]
        )
        sq_norms[u] = flat @ flat
        if direction is not None:
            dots[u] = flat @ flat_direction
    return sq_norms, dots
