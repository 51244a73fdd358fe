"""Mix two batches at the input or at a hidden layer of any module (manifold mixup).

A network ``f`` is split at a layer ``k`` into ``f = g_k o h_k``: ``h_k`` runs it up to
the layer, ``g_k`` on from there. Mixing at ``k`` feeds ``g_k`` the convex combination
``lam * h_k(x_a) + (1 - lam) * h_k(x_b)``. Instead of asking every model for ``h_k`` and
``g_k`` as methods, :func:`mixed_forward` uses a forward hook: it runs the whole module on
``[x_a; x_b]`` and the hook replaces the layer's output by the mix of its two halves, so the
layers after it see the mixed batch. That works for ``torch.nn.Sequential``, for skdynal's
own models and for any module whose chosen layer runs exactly once per forward pass, with
no change to the model. ``"input"`` (layer ``k = 0``) mixes the inputs themselves and works
for every module.
"""

import torch

__all__ = ["mixed_forward", "resolve_mix_layers"]

INPUT = "input"
_ACTIVATIONS = (
    torch.nn.ReLU,
    torch.nn.LeakyReLU,
    torch.nn.ELU,
    torch.nn.GELU,
    torch.nn.SiLU,
    torch.nn.Tanh,
    torch.nn.Sigmoid,
)
_RESNET_STAGES = ("layer1", "layer2")


def resolve_mix_layers(module, mix_layers):
    """The layer names to mix at: validated ``mix_layers``, or the default choice.

    Parameters
    ----------
    module : torch.nn.Module
        The network.
    mix_layers : sequence of str or None
        ``"input"`` and/or names of submodules (as in ``module.named_modules()``) whose
        output is mixed. ``None`` picks ``"input"`` and the first two hidden stages: the
        outputs of ``layer1`` and ``layer2`` when the module has them (ResNets), otherwise
        of its first two activation modules (ReLU, GELU, tanh, ...).

    Returns
    -------
    layers : list of str
    """
    named = dict(module.named_modules())
    if mix_layers is None:
        if all(name in named for name in _RESNET_STAGES):
            return [INPUT, *_RESNET_STAGES]
        activations = [n for n, m in named.items() if n and isinstance(m, _ACTIVATIONS)]
        return [INPUT, *activations[:2]]
    if isinstance(mix_layers, str):
        mix_layers = [mix_layers]
    try:
        layers = list(mix_layers)
    except TypeError:
        raise TypeError(
            f"mix_layers must be a list of layer names (or None), got {mix_layers!r}."
        ) from None
    if not layers or not all(isinstance(name, str) for name in layers):
        raise TypeError(
            f"mix_layers must be a non-empty list of layer names (or None), got {mix_layers!r}."
        )
    for name in layers:
        if name != INPUT and (name == "" or name not in named):
            available = [INPUT] + [n for n in named if n]
            raise ValueError(
                f"mix_layers names {name!r}, which is neither 'input' nor a submodule of "
                f"{type(module).__name__}; available: {available}."
            )
    return layers


def _mix(h_a, h_b, lam):
    """``lam * h_a + (1 - lam) * h_b``; ``lam`` of shape ``(B,)`` or ``(S, B)``.

    With ``S`` samples of ``lam`` the result stacks them: shape ``(S * B, ...)``, sample
    major (rows ``s * B .. (s + 1) * B - 1`` use ``lam[s]``).
    """
    lam = lam.to(h_a.dtype)
    tail = (1,) * (h_a.dim() - 1)
    if lam.dim() == 1:
        lam = lam.reshape(-1, *tail)
        return lam * h_a + (1 - lam) * h_b
    n_samples, n_rows = lam.shape
    lam = lam.reshape(n_samples, n_rows, *tail)
    mixed = lam * h_a.unsqueeze(0) + (1 - lam) * h_b.unsqueeze(0)
    return mixed.reshape(n_samples * n_rows, *h_a.shape[1:])


def mixed_forward(module, X_a, X_b, lam, layer=INPUT):
    """Run ``module`` on the mix of ``X_a`` and ``X_b`` at ``layer``.

    Parameters
    ----------
    module : torch.nn.Module
        The network; it is run as it is (mode and gradient mode are the caller's) and not
        modified: the hook is removed before returning.
    X_a, X_b : torch.Tensor of shape (B, ...)
        The two members of ``B`` pairs (row ``i`` of one with row ``i`` of the other).
    lam : torch.Tensor of shape (B,) or (S, B), or callable
        Mixing weights of ``X_a``'s side. A callable is called once as ``lam(h_a, h_b)``
        with the pair's features at ``layer`` (the inputs for ``"input"``) and must return
        such a tensor: this is how a generator network that looks at the feature maps
        chooses the weights.
    layer : str, default="input"
        ``"input"`` or the name of a submodule whose output is mixed; it must run exactly
        once per forward pass and return a tensor.

    Returns
    -------
    output : torch.Tensor
        The module output, ``(B, ...)`` for ``lam`` of shape ``(B,)``, ``(S * B, ...)``
        (sample major) for ``(S, B)``.
    """
    if X_a.shape != X_b.shape:
        raise ValueError(
            f"The two members of the pairs must have the same shape, got {tuple(X_a.shape)} "
            f"and {tuple(X_b.shape)}."
        )

    def weights(h_a, h_b):
        return lam(h_a, h_b) if callable(lam) else lam

    if layer == INPUT:
        return module(_mix(X_a, X_b, weights(X_a, X_b)))
    named = dict(module.named_modules())
    if layer not in named or layer == "":
        raise ValueError(f"{type(module).__name__} has no submodule named {layer!r}.")
    n_rows = X_a.shape[0]
    calls = []

    def hook(_layer, _args, output):
        calls.append(True)
        if len(calls) > 1:
            return None
        if not torch.is_tensor(output) or output.shape[0] != 2 * n_rows:
            raise ValueError(
                f"Cannot mix at {layer!r}: its output is not a tensor with one row per "
                "input row. Choose another layer in mix_layers."
            )
        h_a, h_b = output[:n_rows], output[n_rows:]
        return _mix(h_a, h_b, weights(h_a, h_b))

    handle = named[layer].register_forward_hook(hook)
    try:
        output = module(torch.cat([X_a, X_b], dim=0))
    finally:
        handle.remove()
    if len(calls) != 1:
        raise ValueError(
            f"Layer {layer!r} ran {len(calls)} times in one forward pass of "
            f"{type(module).__name__}; mixing needs a layer that runs exactly once (a module "
            "reused inside the network cannot be split there). Choose another layer in "
            "mix_layers."
        )
    return output
