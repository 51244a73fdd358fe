"""Per-sample output Jacobians in factored form, and the tangent kernels they give.

The empirical neural tangent kernel ``Theta(x, x') = J(x) J(x')^T`` needs the Jacobian
``J(x) = d f(x) / d theta`` (``K`` outputs by ``P`` parameters) only through inner products,
and those split over layers. For a ``Linear`` layer on 2-D inputs the Jacobian of output
``k`` with respect to the weight is the outer product ``delta_k a^T`` of the layer's output
gradient and its input, so

.. math::

    \\langle J_k^W(x), J_l^W(x') \\rangle = (a \\cdot a') \\, (\\delta_k \\cdot \\delta'_l),

a product of two small Gram matrices: the Jacobian of the whole network (``K x P`` per
sample) is never formed. One forward pass with hooks records each layer's input and one
backward pass per output gives the output gradients (in ``eval()`` mode the samples of a
batch do not interact, so the gradient of ``sum_u f_k(x_u)`` at a layer's output is
``delta_k`` of every sample at once). Convolutions, ``Linear`` layers over sequences and
the layers of the gradient engine's :class:`MaterializingRule` (``BatchNorm``,
``LayerNorm``, ``GroupNorm``, registered custom rules) materialise their own per-sample
Jacobian, one layer at a time; every other parameter takes an exact ``torch.func`` path
restricted to it, as in :func:`grad_stats`.
"""

import itertools

import torch
from torch.func import functional_call, jacrev, vmap
from torch.utils._pytree import tree_map

from ._common import trainable_parameters
from ._engine import (
    DEFAULT_MAX_BUFFER_BYTES,
    _check_batch_norm,
    _check_buffer,
    _plan,
    _recorded_calls,
    _ruled_layers,
    _warn_fallback,
)
from ._labeled import forward
from ._rules import MaterializingRule, _chunk_size, _conv_geometry, _patches, get_rule

__all__ = ["JacobianFactors", "jacobian_factors", "loss_gradient_factors", "tangent_kernel"]

_STRUCTURES = ("full", "trace")


class JacobianFactors:
    """Per-sample output Jacobians of a batch, factored layer by layer.

    Attributes
    ----------
    outputs : torch.Tensor of shape (n, K)
        The module's outputs (detached).
    outer : list of (torch.Tensor or None, torch.Tensor, bool)
        One entry ``(a, delta, bias)`` per ``Linear`` layer on 2-D inputs: its input
        ``a`` of shape ``(n, d)`` (``None`` when the weight is not trainable), the output
        gradients ``delta`` of shape ``(n, K, p)`` (``delta[i, k]`` belongs to output ``k``),
        and whether the bias is trainable. The layer's Jacobian for output ``k`` is
        ``delta[i, k] a[i]^T`` (weight) and ``delta[i, k]`` (bias).
    dense : torch.Tensor of shape (n, K, P_dense) or None
        The materialised Jacobians of every other trainable parameter, concatenated.
    layout : tuple
        Which parameters each part holds (qualified names, in order); factors of two
        batches can be combined only when their layouts are equal.
    """

    def __init__(self, outputs, outer, dense, layout=()):
        self.outputs = outputs
        self.outer = outer
        self.dense = dense
        self.layout = tuple(layout)

    def __len__(self):
        return self.outputs.shape[0]

    @property
    def n_outputs(self):
        return self.outputs.shape[1]

    @property
    def nbytes(self):
        """Memory held by the factors, in bytes."""
        tensors = [self.outputs] + ([self.dense] if self.dense is not None else [])
        for a, delta, _ in self.outer:
            tensors.append(delta)
            if a is not None:
                tensors.append(a)
        return sum(t.numel() * t.element_size() for t in tensors)

    def rows(self, index):
        """The factors of the samples ``index`` (a slice or index tensor)."""
        outer = [
            (None if a is None else a[index], delta[index], bias) for a, delta, bias in self.outer
        ]
        dense = None if self.dense is None else self.dense[index]
        return type(self)(self.outputs[index], outer, dense, self.layout)

    @classmethod
    def stack(cls, first, rest, n):
        """The factors of ``n`` samples from ``first`` and the batches of ``rest``.

        Fills preallocated tensors batch by batch, so the batches and their concatenation
        are never all held at once.
        """

        def empty(t):
            return None if t is None else t.new_empty((n, *t.shape[1:]))

        out = cls(
            empty(first.outputs),
            [(empty(a), empty(delta), bias) for a, delta, bias in first.outer],
            empty(first.dense),
            first.layout,
        )
        start = 0
        for part in itertools.chain([first], rest):
            _check_layouts(first, part)
            rows = slice(start, start + len(part))
            out.outputs[rows] = part.outputs
            for (a, delta, _), (pa, pdelta, _) in zip(out.outer, part.outer, strict=True):
                if a is not None:
                    a[rows] = pa
                delta[rows] = pdelta
            if out.dense is not None:
                out.dense[rows] = part.dense
            start += len(part)
        if start != n:
            raise ValueError(f"expected the factors of {n} samples, got {start}.")
        return out

    @classmethod
    def concatenate(cls, parts):
        """Stack the factors of consecutive batches along the sample dimension."""
        parts = list(parts)
        if len(parts) == 1:
            return parts[0]
        first = parts[0]
        _check_layouts(first, *parts[1:])
        outer = []
        for i, (a, _, bias) in enumerate(first.outer):
            a_all = None if a is None else torch.cat([p.outer[i][0] for p in parts])
            outer.append((a_all, torch.cat([p.outer[i][1] for p in parts]), bias))
        dense = None if first.dense is None else torch.cat([p.dense for p in parts])
        return cls(torch.cat([p.outputs for p in parts]), outer, dense, first.layout)


def jacobian_factors(module, inputs, *, max_buffer_bytes=None):
    """Per-sample Jacobians of a module's outputs, factored layer by layer.

    Parameters
    ----------
    module : torch.nn.Module
        The network, already in the mode it should be differentiated in (normally
        ``eval()``) and in the dtype of the computation. It must return outputs of shape
        ``(n, K)`` (or a tuple whose first element has that shape). Its parameters,
        ``.grad`` attributes and mode are left unchanged and no hook is left behind.
    inputs : torch.Tensor or dict of str to torch.Tensor
        The batch, first dimension ``n``; a dict is passed as keyword arguments.
    max_buffer_bytes : int, default=None
        Bound on the temporary buffer of one convolution's unfolded input (the batch is
        processed in chunks below it); ``None`` means 128 MiB. The factors themselves are
        at most as large as the full Jacobians, ``n x K x P`` numbers, and usually far
        smaller (``n (d + K p)`` for a ``Linear`` layer instead of ``n K d p``).

    Returns
    -------
    factors : JacobianFactors
        Pass two of them to :func:`tangent_kernel`.

    See Also
    --------
    tangent_kernel : The kernel between two sets of factors.
    grad_stats : The same layer-wise identities for per-sample loss gradients.

    References
    ----------
    .. [1] A. Jacot, F. Gabriel and C. Hongler, "Neural Tangent Kernel: Convergence and
       Generalization in Neural Networks", NeurIPS 2018.
    .. [2] I. Goodfellow, "Efficient Per-Example Gradient Computations",
       arXiv:1510.01799, 2015.
    """
    if not isinstance(module, torch.nn.Module):
        raise TypeError(f"module must be a torch.nn.Module, got {type(module).__name__}.")
    max_buffer_bytes = (
        DEFAULT_MAX_BUFFER_BYTES if max_buffer_bytes is None else _check_buffer(max_buffer_bytes)
    )
    params = trainable_parameters(module)
    if not params:
        raise ValueError("module has no trainable parameters (requires_grad=True).")
    _check_batch_norm(module)

    all_layers, reasons = _plan(module, params)
    for layer in all_layers:
        if layer.name not in reasons and _kind(layer.module) is None:
            reasons[layer.name] = f"no Jacobian rule for {type(layer.module).__name__}"
    layers = [layer for layer in all_layers if layer.name not in reasons]
    with _recorded_calls(layers, detach_args=True) as (calls, tracker):
        with torch.enable_grad(), tracker:
            outputs = _check_outputs(forward(module, inputs))
    ruled = _ruled_layers(layers, calls, tracker, reasons)
    # A layer never called in the forward pass has a zero Jacobian: nothing to add.

    n, n_out = outputs.shape
    deltas = {id(layer.module): [] for layer in ruled}
    if ruled:
        edges = [calls[id(layer.module)].edge for layer in ruled]
        for k in range(n_out):
            grads = torch.autograd.grad(
                outputs[:, k].sum(), edges, retain_graph=k < n_out - 1, allow_unused=True
            )
            for layer, g in zip(ruled, grads, strict=True):
                if g is None:
                    shape, dtype, device = calls[id(layer.module)].output_meta
                    g = torch.zeros(shape, dtype=dtype, device=device)
                deltas[id(layer.module)].append(g.detach())
    outputs = outputs.detach()

    outer, dense, outer_names, dense_names = [], [], [], []
    for layer in ruled:
        key = id(layer.module)
        delta = torch.stack(deltas.pop(key), dim=1)  # (n, K, *output shape)
        args = calls[key].args
        calls[key].args = calls[key].edge = None
        with torch.no_grad():
            kind = _kind(layer.module)
            if kind == "linear" and args[0].dim() == 2:
                a = args[0] if "weight" in layer.params else None
                outer.append((a, delta, "bias" in layer.params))
                outer_names.append(tuple(layer.qualified.values()))
            else:
                grads = _DENSE[kind](layer.module, args, delta, layer.params, max_buffer_bytes)
                dense.extend(grads[name].reshape(n, n_out, -1) for name in layer.params)
                dense_names.extend(layer.qualified.values())
        del delta

    fallback = [
        qualified
        for layer in all_layers
        if layer.name in reasons
        for qualified in layer.qualified.values()
    ]
    if fallback:
        _warn_fallback(module, reasons)
        dense.append(_fallback_jacobians(module, inputs, fallback, params, n_out))
        dense_names.extend(fallback)
    dense = torch.cat(dense, dim=2) if dense else None
    return JacobianFactors(outputs, outer, dense, (tuple(outer_names), tuple(dense_names)))


class _PerSampleLoss(torch.nn.Module):
    """``module`` followed by a per-sample loss: outputs of shape ``(n, 1)``."""

    def __init__(self, module, loss_fn):
        super().__init__()
        self.module = module
        self.loss_fn = loss_fn

    def forward(self, *args, **kwargs):
        return self.loss_fn(self.module(*args, **kwargs)).unsqueeze(1)


def loss_gradient_factors(module, loss_fn, inputs, *, max_buffer_bytes=None):
    """Per-sample gradients of a per-sample loss, factored layer by layer.

    The gradient ``g_u = grad_theta loss_fn(module(x_u))`` of every sample of the batch, in
    the form of :func:`jacobian_factors` with a single output: ``Linear`` layers on 2-D
    inputs as the pair ``(a_u, delta_u)`` of the layer's input and the loss gradient at its
    output (``g_u^W = delta_u a_u^T``), every other trainable parameter materialised for
    its own layer only. One forward and one backward pass; the per-sample gradients of the
    whole network are never formed. ``tangent_kernel(left, right, "trace")`` then gives
    ``<g_u, g_v>`` for every pair of samples of two batches.

    Parameters
    ----------
    module : torch.nn.Module
        The network, in the mode it should be differentiated in (normally ``eval()``).
    loss_fn : callable
        ``loss_fn(outputs) -> (n,)``: the per-sample losses from the module's outputs; the
        targets, if any, are the function's business (for example the pseudo labels
        ``argmax outputs``).
    inputs : torch.Tensor or dict of str to torch.Tensor
        The batch, first dimension ``n``; a dict is passed as keyword arguments.
    max_buffer_bytes : int, default=None
        As in :func:`jacobian_factors`.

    Returns
    -------
    factors : JacobianFactors
        With ``n_outputs == 1``; its ``outputs`` are the per-sample losses.

    See Also
    --------
    jacobian_factors : The same for every output of the module.
    grad_stats : Only ``||g_u||^2`` and ``<g_u, G>``, at the cost of a backward pass.
    """
    if not isinstance(module, torch.nn.Module):
        raise TypeError(f"module must be a torch.nn.Module, got {type(module).__name__}.")
    return jacobian_factors(
        _PerSampleLoss(module, loss_fn), inputs, max_buffer_bytes=max_buffer_bytes
    )


def tangent_kernel(left, right, structure="full"):
    """The tangent kernel between two sets of per-sample Jacobians in factored form.

    Parameters
    ----------
    left, right : JacobianFactors
        From :func:`jacobian_factors` of the same module (``n`` and ``n2`` samples).
    structure : {"full", "trace"}, default="full"
        ``"full"``: ``Theta[i, j, k, l] = <J_k(x_i), J_l(x'_j)>``, shape ``(n, n2, K, K)``.
        ``"trace"``: ``sum_k <J_k(x_i), J_k(x'_j)>``, shape ``(n, n2)`` (not divided by
        ``K``).

    Returns
    -------
    theta : torch.Tensor
    """
    if structure not in _STRUCTURES:
        raise ValueError(f"structure must be one of {_STRUCTURES}, got {structure!r}.")
    _check_layouts(left, right)
    n, n2, K = len(left), len(right), left.n_outputs
    full = structure == "full"
    theta = left.outputs.new_zeros((n, n2, K, K) if full else (n, n2))
    for (a, delta, bias), (a2, delta2, _) in zip(left.outer, right.outer, strict=True):
        if full:
            # (nK, p) @ (p, n2K) -> [i, k, j, l] -> [i, j, k, l]
            d_gram = (
                (delta.reshape(n * K, -1) @ delta2.reshape(n2 * K, -1).T)
                .reshape(n, K, n2, K)
                .permute(0, 2, 1, 3)
            )
        else:
            d_gram = delta.reshape(n, -1) @ delta2.reshape(n2, -1).T
        if a is not None:
            a_gram = a @ a2.T
            if bias:
                a_gram += 1.0
            if full:
                a_gram = a_gram[:, :, None, None]
            theta += d_gram.mul_(a_gram)
        elif bias:
            theta += d_gram
    if left.dense is not None:
        if full:
            P = left.dense.shape[2]
            theta += (
                (left.dense.reshape(n * K, P) @ right.dense.reshape(n2 * K, P).T)
                .reshape(n, K, n2, K)
                .permute(0, 2, 1, 3)
            )
        else:
            theta += left.dense.reshape(n, -1) @ right.dense.reshape(n2, -1).T
    return theta


def _check_layouts(first, *others):
    for other in others:
        if other.layout != first.layout or other.n_outputs != first.n_outputs:
            raise ValueError(
                "These Jacobian factors do not split the parameters the same way (different "
                "modules, or a module whose layers run differently from batch to batch, "
                "e.g. a layer skipped for some inputs); their kernel cannot be combined. "
                "Use the whole Jacobians instead (empirical_ntk(..., method='jacobian'))."
            )


def _kind(module):
    rule = get_rule(module)
    if rule is None:
        return None
    if isinstance(module, torch.nn.Linear) and type(module).forward is torch.nn.Linear.forward:
        return "linear"
    if isinstance(module, torch.nn.Conv1d | torch.nn.Conv2d) and type(module).forward in (
        torch.nn.Conv1d.forward,
        torch.nn.Conv2d.forward,
    ):
        return "conv"
    if isinstance(rule, MaterializingRule):
        return "materializing"
    return None


def _linear_dense(module, args, delta, params, max_buffer_bytes):
    """``Linear`` over ``(n, *, d)`` inputs: ``J_k^W = sum_t delta_{k,t} a_t^T``."""
    a = args[0]
    n, K = delta.shape[:2]
    a = a.reshape(n, -1, a.shape[-1])  # (n, T, d)
    delta = delta.reshape(n, K, -1, delta.shape[-1])  # (n, K, T, p)
    grads = {}
    if "weight" in params:
        grads["weight"] = torch.einsum("nktp,ntd->nkpd", delta, a)
    if "bias" in params:
        grads["bias"] = delta.sum(2)
    return grads


def _conv_dense(module, args, delta, params, max_buffer_bytes):
    """``Conv1d``/``Conv2d``: ``J_k^W = delta_k patches^T`` on the unfolded input."""
    a, kernel, stride, dilation, padding = _conv_geometry(module, args[0])
    n, K = delta.shape[:2]
    groups = module.groups
    p = module.out_channels // groups
    delta = delta.reshape(n, K, groups, p, -1)  # (n, K, groups, p, T)
    positions = delta.shape[-1]
    d = module.in_channels // groups * kernel[0] * kernel[1]
    grads = {}
    if "weight" in params:
        item = max(a.element_size(), 4)
        chunk = _chunk_size(groups * d * positions * item, max_buffer_bytes)
        weight = torch.empty((n, K, groups, p, d), dtype=delta.dtype, device=delta.device)
        for start in range(0, n, chunk):
            rows = slice(start, min(start + chunk, n))
            patches = _patches(a[rows], kernel, dilation, padding, stride)
            patches = patches.reshape(-1, 1, groups, d, positions)
            weight[rows] = delta[rows] @ patches.transpose(-1, -2)
        grads["weight"] = weight
    if "bias" in params:
        grads["bias"] = delta.sum(-1)
    return grads


def _materializing_dense(module, args, delta, params, max_buffer_bytes):
    """A :class:`MaterializingRule` applied to every (sample, output) pair as a batch."""
    n, K = delta.shape[:2]

    def repeat(t):
        if torch.is_tensor(t) and t.dim() > 0:
            return t.unsqueeze(1).expand(n, K, *t.shape[1:]).reshape(n * K, *t.shape[1:])
        return t

    expanded = tuple(repeat(a) for a in args)
    grads = get_rule(module).per_sample_gradients(
        module, expanded, delta.reshape(n * K, *delta.shape[2:]), list(params)
    )
    return {name: g.reshape(n, K, -1) for name, g in grads.items()}


_DENSE = {"linear": _linear_dense, "conv": _conv_dense, "materializing": _materializing_dense}


def _fallback_jacobians(module, inputs, names, params, n_out):
    """``torch.func`` Jacobians of the outputs restricted to ``names``: ``(n, K, P_names)``."""
    differentiable = {name: params[name].detach() for name in names}
    constants = {
        name: p.detach() for name, p in module.named_parameters() if name not in differentiable
    }
    constants.update(dict(module.named_buffers()))

    def single(diff, x):
        x = tree_map(lambda t: t.unsqueeze(0), x)
        if isinstance(x, dict):
            out = functional_call(module, (diff, constants), (), x)
        else:
            out = functional_call(module, (diff, constants), (x,))
        if isinstance(out, tuple):
            out = out[0]
        return out.squeeze(0)

    with torch.enable_grad():
        jac = vmap(jacrev(single), in_dims=(None, 0))(differentiable, inputs)
    n = next(iter(jac.values())).shape[0]
    return torch.cat([jac[name].detach().reshape(n, n_out, -1) for name in names], dim=2)


def _check_outputs(out):
    if isinstance(out, tuple):
        out = out[0]
    if not isinstance(out, torch.Tensor) or out.dim() != 2:
        shape = getattr(out, "shape", None)
        raise ValueError(
            "The tangent kernel needs module outputs of shape (n_samples, n_outputs); the "
            f"module returned {type(out).__name__} with shape {shape}."
        )
    return out
