"""Sum of the loss gradients over a labeled set (the direction ``G`` of dynamicAL)."""

import torch

from .._forward import forward
from ._common import trainable_parameters

__all__ = ["forward", "summed_loss_gradient"]


def summed_loss_gradient(module, loss_fn, batches):
    """Gradient of the summed loss over labeled batches, keyed by parameter name.

    Parameters
    ----------
    module : torch.nn.Module
        The network, in the mode it should be differentiated in (normally ``eval()``).
    loss_fn : callable
        ``loss_fn(outputs, targets)`` returning per-sample losses of shape ``(B,)``.
    batches : iterable of (inputs, targets)
        The labeled set, on the module's device. ``inputs`` is passed to the module as is
        (a dict is passed as keyword arguments).

    Returns
    -------
    gradient : dict of str to torch.Tensor
        ``sum_{(x, y)} grad_theta loss(f(x), y)`` for every trainable parameter. The
        parameters' ``.grad`` attributes are left untouched.
    """
    params = trainable_parameters(module)
    names = list(params)
    total = {name: torch.zeros_like(p) for name, p in params.items()}
    for inputs, targets in batches:
        with torch.enable_grad():
            outputs = forward(module, inputs)
            loss = loss_fn(outputs, targets).sum()
            grads = torch.autograd.grad(loss, [params[n] for n in names], allow_unused=True)
        for name, g in zip(names, grads, strict=True):
            if g is not None:
                total[name] += g
    return total
