"""Closed-form per-sample statistics restricted to the final linear layer."""

import torch
from torch.autograd.graph import get_gradient_edge

from ._common import GradStats
from ._labeled import forward

__all__ = ["last_layer_grad_stats"]


def last_layer_grad_stats(module, loss_fn, inputs, targets, direction=None, layer=None):
    """Per-sample gradient statistics over the parameters of one ``nn.Linear`` layer only.

    An approximation of the dynamicAL score for models too large for the full engine: the
    gradient ``g_u`` (and the direction ``G``) are restricted to the trainable parameters
    of the final linear layer. With ``h_u`` the layer's input and ``delta_u`` the gradient
    of the sample's loss with respect to the layer's output,
    ``||g_u||^2 = ||delta_u||^2 (||h_u||^2 + 1)`` (the ``+ 1`` only with a trainable bias)
    and ``<g_u, G> = delta_u^T G_W h_u + delta_u^T G_b``. For cross-entropy on logits with
    the pseudo label, ``delta_u = p_u - e_{y_u}``; here ``delta_u`` comes from autograd, so
    any loss (e.g. NLL on probabilities) is handled. Everything before the layer runs
    without autograd.

    Parameters
    ----------
    module : torch.nn.Module
        The network, in the mode it should be differentiated in (normally ``eval()``).
    loss_fn : callable
        ``loss_fn(outputs, targets)`` returning the per-sample losses, shape ``(B,)``.
    inputs : torch.Tensor or dict of str to torch.Tensor
        The batch, first dimension ``B``; a dict is passed as keyword arguments.
    targets : torch.Tensor
        Targets of the batch.
    direction : dict of str to torch.Tensor, default=None
        ``G``, keyed like ``module.named_parameters()``; only the entries of the layer's
        trainable parameters are used (e.g. ``"fc.weight"``, ``"fc.bias"``).
    layer : str or torch.nn.Linear, default=None
        The layer, by qualified name or as the submodule. Default: the last ``nn.Linear``
        in ``module.named_modules()`` order.

    Returns
    -------
    stats : GradStats
        ``sq_norms`` and ``dots`` (``None`` without a direction), shape ``(B,)``.

    References
    ----------
    .. [1] Wang, H., Huang, W., Wu, Z., Tong, H., Margenot, A. J., & He, J. (2022). Deep
       Active Learning by Leveraging Training Dynamics. NeurIPS 2022.
    .. [2] Ash, J. T., Zhang, C., Krishnamurthy, A., Langford, J., & Agarwal, A. (2020).
       Deep Batch Active Learning by Diverse, Uncertain Gradient Lower Bounds. ICLR 2020
       (last-layer gradient embeddings).
    """
    name, linear = _find_layer(module, layer)
    trainable = {
        local: p for local, p in linear.named_parameters(recurse=False) if p.requires_grad
    }
    if not trainable:
        raise ValueError(f"layer {name!r} has no trainable parameters.")
    if direction is not None:
        for local, p in trainable.items():
            key = f"{name}.{local}" if name else local
            if key not in direction:
                raise ValueError(f"direction lacks the entry {key!r} of the last layer.")
            if tuple(direction[key].shape) != tuple(p.shape):
                raise ValueError(
                    f"direction[{key!r}] has shape {tuple(direction[key].shape)}, "
                    f"the parameter has {tuple(p.shape)}."
                )

    captured = {"count": 0}
    grad_mode = torch.is_grad_enabled()

    def pre_hook(mod, args):
        captured["count"] += 1
        torch.set_grad_enabled(True)
        return tuple(a.detach().requires_grad_() if torch.is_tensor(a) else a for a in args)

    def post_hook(mod, args, output):
        captured["input"] = args[0].detach()
        captured["edge"] = get_gradient_edge(output)

    handles = [
        linear.register_forward_pre_hook(pre_hook),
        linear.register_forward_hook(post_hook, prepend=True),
    ]
    try:
        with torch.no_grad():
            outputs = forward(module, inputs)
            losses = loss_fn(outputs, targets)
            total = losses.sum() if isinstance(losses, torch.Tensor) else None
    finally:
        for handle in handles:
            handle.remove()
        torch.set_grad_enabled(grad_mode)
    if captured["count"] != 1:
        raise ValueError(
            f"layer {name!r} was called {captured['count']} times in one forward pass; "
            "last_layer_grad_stats needs exactly one call."
        )
    if not isinstance(losses, torch.Tensor) or losses.dim() != 1:
        raise ValueError("loss_fn must return per-sample losses of shape (B,).")
    (delta,) = torch.autograd.grad(total, [captured["edge"]])
    h = captured["input"]
    with torch.no_grad():
        if h.dim() != 2:
            batch = h.shape[0]
            h = h.reshape(batch, -1, h.shape[-1])
            delta = delta.reshape(batch, -1, delta.shape[-1])
        return _linear_stats(h, delta, trainable, direction, name)


def _linear_stats(h, delta, trainable, direction, name):
    acc = torch.promote_types(delta.dtype, torch.float32)
    prefix = f"{name}." if name else ""
    dots = None
    if h.dim() == 2:
        delta_sq = delta.pow(2).sum(1)
        sq = torch.zeros_like(delta_sq, dtype=acc)
        if "weight" in trainable:
            sq += delta_sq * h.pow(2).sum(1)
        if "bias" in trainable:
            sq += delta_sq
        if direction is not None:
            dots = torch.zeros_like(sq)
            if "weight" in trainable:
                w = direction[prefix + "weight"].to(delta.dtype)
                dots += ((delta @ w) * h).sum(1)
            if "bias" in trainable:
                dots += delta @ direction[prefix + "bias"].to(delta.dtype)
        return GradStats(sq_norms=sq, dots=dots)
    # Sequence input (B, T, d): materialise the layer's per-sample gradient.
    sq = torch.zeros(h.shape[0], dtype=acc, device=h.device)
    if direction is not None:
        dots = torch.zeros_like(sq)
    for local in trainable:
        if local == "weight":
            g = torch.bmm(delta.transpose(1, 2), h)
        else:
            g = delta.sum(1)
        g = g.reshape(g.shape[0], -1)
        sq += g.pow(2).sum(1)
        if dots is not None:
            dots += g @ direction[prefix + local].reshape(-1).to(g.dtype)
    return GradStats(sq_norms=sq, dots=dots)


def _find_layer(module, layer):
    if layer is None:
        found = [(n, m) for n, m in module.named_modules() if isinstance(m, torch.nn.Linear)]
        if not found:
            raise ValueError("module has no torch.nn.Linear layer; pass `layer` explicitly.")
        return found[-1]
    if isinstance(layer, str):
        modules = dict(module.named_modules())
        if layer not in modules:
            raise ValueError(f"module has no submodule named {layer!r}.")
        found = modules[layer]
        name = layer
    else:
        name = next((n for n, m in module.named_modules() if m is layer), None)
        if name is None:
            raise ValueError("layer is not a submodule of module.")
        found = layer
    if not isinstance(found, torch.nn.Linear):
        raise TypeError(f"layer {name!r} must be a torch.nn.Linear, got {type(found).__name__}.")
    return name, found
