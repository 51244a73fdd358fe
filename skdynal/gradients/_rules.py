"""Per-layer rules that turn a layer's input and output gradient into per-sample statistics.

For one call of a layer, the engine knows the layer's inputs ``args`` and ``delta``, the
gradient of the summed loss with respect to the layer's output. In ``eval()`` mode the
samples of a batch do not interact, so ``delta[u]`` is the gradient of sample ``u``'s own
loss, and each rule adds that layer's share of ``||g_u||^2`` and ``<g_u, G>`` to the
running totals without ever holding the per-sample gradients of the whole network.

A rule is any object with two methods (subclass :class:`GradRule`):

``supports(module, args)``
    Whether the rule can handle this call (checked during the forward pass). Calls it
    cannot handle make the layer's parameters take the exact ``torch.func`` fallback.
``accumulate(module, args, delta, params, directions, sq_norms, dots, max_buffer_bytes)``
    Add the layer's contribution in place to ``sq_norms`` and ``dots`` (both ``(B,)``;
    ``dots`` is ``None`` without a direction). ``params`` maps the module's own parameter
    names (``"weight"``, ``"bias"``) to the trainable parameters only; ``directions`` maps
    the same names to the matching parts of ``G`` (or is ``None``). Temporaries should stay
    under ``max_buffer_bytes``, e.g. by working on chunks of the batch.

:class:`MaterializingRule` is the simplest base for a new layer type: implement
``per_sample_gradients`` and the chunking, norms and dots come for free. Register a rule
with :func:`register_rule`.
"""

import math

import torch
import torch.nn.functional as F
from torch import nn

__all__ = [
    "GradRule",
    "MaterializingRule",
    "get_rule",
    "register_rule",
]


class GradRule:
    """Base class of the per-layer gradient rules (see the module docstring)."""

    def supports(self, module, args):
        """Whether this call of ``module`` on ``args`` can be handled; ``True`` by default."""
        return True

    def accumulate(
        self, module, args, delta, params, directions, sq_norms, dots, max_buffer_bytes
    ):
        """Add the layer's per-sample ``||g||^2`` and ``<g, G>`` to the running totals."""
        raise NotImplementedError


class MaterializingRule(GradRule):
    """Rule that materialises the layer's per-sample gradients, a chunk of the batch at a time.

    Subclasses implement :meth:`per_sample_gradients`; suitable for layers whose
    parameters are small (normalisation layers) or for quick support of a custom layer.
    """

    def per_sample_gradients(self, module, args, delta, names):
        """Return ``{name: tensor of shape (b, *param.shape)}`` for each name in ``names``."""
        raise NotImplementedError

    def bytes_per_sample(self, module, args, delta, params):
        """Size of the per-sample temporaries; used to chunk the batch."""
        return sum(p.numel() for p in params.values()) * delta.element_size()

    def accumulate(
        self, module, args, delta, params, directions, sq_norms, dots, max_buffer_bytes
    ):
        chunk = _chunk_size(self.bytes_per_sample(module, args, delta, params), max_buffer_bytes)
        batch = delta.shape[0]
        names = list(params)
        for start in range(0, batch, chunk):
            rows = slice(start, min(start + chunk, batch))
            chunk_args = tuple(
                a[rows] if isinstance(a, torch.Tensor) and a.dim() > 0 else a for a in args
            )
            grads = self.per_sample_gradients(module, chunk_args, delta[rows], names)
            for name in names:
                g = grads[name].reshape(rows.stop - rows.start, -1)
                sq_norms[rows] += _row_sq_norms(g).to(sq_norms.dtype)
                if dots is not None:
                    dots[rows] += (g @ directions[name].reshape(-1).to(g.dtype)).to(dots.dtype)


def _chunk_size(bytes_per_sample, max_buffer_bytes):
    return max(1, int(max_buffer_bytes // max(1, bytes_per_sample)))


def _add(total, rows, value):
    total[rows] += value.to(total.dtype)


# Cost, in multiply-adds, of one memory pass over one element of a materialised per-sample
# gradient (written by the GEMM, read for the norm and for the dot): such passes are memory
# bound, while the GEMMs run at full speed.
_PASS_COST = 8


def _use_gram(positions, in_features, out_features, with_dot):
    """Whether the Gram form is cheaper than materialising the layer's per-sample gradient.

    Per sample, the Gram form costs ``T^2 (d + p)`` multiply-adds (plus ``T d p`` for the
    dot, as ``<delta, G_W a>``); materialising costs ``T d p`` for the GEMM plus memory
    passes over the ``d p`` gradient entries (the dot then comes almost free). Gram wins
    for layers with few positions ``T`` (late conv layers, short sequences), never for
    early conv layers (``T = 1024``: gigabytes per batch). Mixed ghost clipping's rule of
    thumb ``2 T^2 <= d p`` is the same trade-off without a direction.
    """
    gram = positions * positions * (in_features + out_features)
    materialise = positions * in_features * out_features + _PASS_COST * in_features * out_features
    if with_dot:
        gram += positions * in_features * out_features
    return gram < materialise


def _row_sq_norms(x):
    """``(x * x).sum(1)`` for a 2-D ``x`` without a temporary of the size of ``x``."""
    return _row_dots(x, x)


def _row_dots(x, y):
    """``(x * y).sum(1)`` for 2-D ``x`` and ``y`` as one batched GEMM."""
    return torch.bmm(x.unsqueeze(1), y.unsqueeze(2)).reshape(-1)


def _accumulate_patches(a, delta, weight, params, directions, sq_norms, dots, max_buffer_bytes):
    """Shared core of Linear over sequences and of convolutions.

    ``a``: ``(B, groups, d, T)`` patches; ``delta``: ``(B, groups, p, T)``; the weight of group
    ``k`` is ``weight[k]`` of shape ``(p, d)``. Per sample ``g^W = sum_t delta_t a_t^T``.
    """
    batch, groups, d, positions = a.shape
    p = delta.shape[2]
    item = max(a.element_size(), 4)
    gram = _use_gram(positions, d, p, dots is not None)
    if gram:
        per_sample = groups * (2 * positions * positions + p * positions) * item
    else:
        per_sample = groups * (d * p + p * positions) * item
    chunk = _chunk_size(per_sample, max_buffer_bytes)
    dir_w = None if directions is None or "weight" not in params else directions["weight"]
    dir_b = None if directions is None or "bias" not in params else directions["bias"]
    for start in range(0, batch, chunk):
        rows = slice(start, min(start + chunk, batch))
        a_c = a[rows]
        d_c = delta[rows]
        b = a_c.shape[0]
        if "weight" in params:
            if gram:
                a_gram = torch.matmul(a_c.transpose(-1, -2), a_c)
                d_gram = torch.matmul(d_c.transpose(-1, -2), d_c)
                _add(sq_norms, rows, (a_gram * d_gram).reshape(b, -1).sum(1))
                del a_gram, d_gram
                if dots is not None:
                    projected = torch.matmul(dir_w.to(a_c.dtype), a_c)
                    _add(dots, rows, (projected * d_c).reshape(b, -1).sum(1))
            else:
                g = torch.matmul(d_c, a_c.transpose(-1, -2))
                _add(sq_norms, rows, _row_sq_norms(g.reshape(b, -1)))
                if dots is not None:
                    _add(dots, rows, g.reshape(b, -1) @ dir_w.reshape(-1).to(g.dtype))
                del g
        if "bias" in params:
            g_b = d_c.sum(-1).reshape(b, -1)
            _add(sq_norms, rows, g_b.pow(2).sum(1))
            if dots is not None:
                _add(dots, rows, g_b @ dir_b.reshape(-1).to(g_b.dtype))


class LinearRule(GradRule):
    """``nn.Linear`` on ``(B, d)`` (norm products) or ``(B, *, d)`` inputs (Gram or per layer)."""

    def supports(self, module, args):
        return len(args) == 1 and isinstance(args[0], torch.Tensor) and args[0].dim() >= 2

    def accumulate(
        self, module, args, delta, params, directions, sq_norms, dots, max_buffer_bytes
    ):
        a = args[0].detach()
        if a.dim() > 2:
            batch = a.shape[0]
            a = a.reshape(batch, -1, a.shape[-1]).transpose(1, 2).unsqueeze(1)
            delta = delta.reshape(batch, -1, delta.shape[-1]).transpose(1, 2).unsqueeze(1)
            dirs = None
            if directions is not None:
                dirs = {n: directions[n] for n in params}
                if "weight" in dirs:
                    dirs["weight"] = dirs["weight"].unsqueeze(0)
            _accumulate_patches(
                a, delta, module.weight, params, dirs, sq_norms, dots, max_buffer_bytes
            )
            return
        # Few, large kernels: on a busy CPU every small parallel op costs a thread wake-up.
        delta_sq = _row_sq_norms(delta)
        if "weight" in params:
            sq_norms += (_row_sq_norms(a) * delta_sq).to(sq_norms.dtype)
            if dots is not None:
                chunk = _chunk_size(a.shape[1] * a.element_size(), max_buffer_bytes)
                w = directions["weight"].to(delta.dtype)
                for start in range(0, a.shape[0], chunk):
                    rows = slice(start, start + chunk)
                    _add(dots, rows, _row_dots(delta[rows] @ w, a[rows]))
        if "bias" in params:
            sq_norms += delta_sq.to(sq_norms.dtype)
            if dots is not None:
                dots += (delta @ directions["bias"].to(delta.dtype)).to(dots.dtype)


class ConvRule(GradRule):
    """``nn.Conv1d`` / ``nn.Conv2d``: any stride, padding (mode), dilation, groups, bias."""

    def __init__(self, spatial_dims):
        self.spatial_dims = spatial_dims

    def supports(self, module, args):
        return (
            len(args) == 1
            and isinstance(args[0], torch.Tensor)
            and args[0].dim() == self.spatial_dims + 2
        )

    def accumulate(
        self, module, args, delta, params, directions, sq_norms, dots, max_buffer_bytes
    ):
        a, kernel, stride, dilation, padding = _conv_geometry(module, args[0].detach())
        batch, groups = a.shape[0], module.groups
        out_channels = module.out_channels
        delta = delta.reshape(batch, groups, out_channels // groups, -1)
        positions = delta.shape[-1]
        d = module.in_channels // groups * math.prod(kernel)
        p = out_channels // groups
        item = max(a.element_size(), 4)
        patches_bytes = groups * d * positions * item
        core_bytes = (
            groups
            * (
                2 * positions * positions + p * positions
                if _use_gram(positions, d, p, dots is not None)
                else d * p + p * positions
            )
            * item
        )
        chunk = _chunk_size(patches_bytes + core_bytes, max_buffer_bytes)
        dirs = None
        if directions is not None:
            dirs = {n: directions[n] for n in params}
            if "weight" in dirs:
                dirs["weight"] = dirs["weight"].reshape(groups, p, d)
        for start in range(0, batch, chunk):
            rows = slice(start, min(start + chunk, batch))
            patches = _patches(a[rows], kernel, dilation, padding, stride)
            patches = patches.reshape(patches.shape[0], groups, d, positions)
            _accumulate_patches(
                patches,
                delta[rows],
                module.weight,
                params,
                dirs,
                sq_norms[rows],
                None if dots is None else dots[rows],
                max_buffer_bytes,
            )


def _conv_geometry(module, a):
    """A conv layer's input and geometry in 2-D form, ready for :func:`_patches`.

    Padding modes other than zeros (and string padding) are applied to ``a`` here, so the
    returned ``padding`` is plain zero padding; a ``Conv1d`` input ``(n, c, L)`` becomes
    ``(n, c, 1, L)`` with a kernel of height 1. Returns
    ``(a, kernel, stride, dilation, padding)``, each geometry entry a pair.
    """
    spatial = a.dim() - 2
    kernel, stride, dilation = module.kernel_size, module.stride, module.dilation
    if isinstance(module.padding, str) or module.padding_mode != "zeros":
        mode = "constant" if module.padding_mode == "zeros" else module.padding_mode
        a = F.pad(a, module._reversed_padding_repeated_twice, mode=mode)
        padding = (0,) * spatial
    else:
        padding = module.padding
    if spatial == 1:
        a = a.unsqueeze(2)
        kernel, stride, dilation, padding = (
            (1, *kernel),
            (1, *stride),
            (1, *dilation),
            (0, *padding),
        )
    return a, kernel, stride, dilation, padding


def _patches(a, kernel, dilation, padding, stride):
    """``F.unfold`` by strided views and one copy (``aten::im2col`` is very slow on CPU)."""
    if any(padding):
        a = F.pad(a, (padding[1], padding[1], padding[0], padding[0]))
    for dim, (k, d, s) in enumerate(zip(kernel, dilation, stride, strict=True)):
        a = a.unfold(2 + dim, d * (k - 1) + 1, s)
    a = a[..., :: dilation[0], :: dilation[1]]
    batch, channels, out_h, out_w, k_h, k_w = a.shape
    return a.permute(0, 1, 4, 5, 2, 3).reshape(batch, channels * k_h * k_w, out_h * out_w)


class BatchNormRule(MaterializingRule):
    """``nn.BatchNorm1d/2d/3d`` in eval mode with running statistics."""

    def supports(self, module, args):
        return (
            not module.training
            and module.track_running_stats
            and module.running_mean is not None
            and len(args) == 1
            and isinstance(args[0], torch.Tensor)
            and args[0].dim() >= 2
        )

    def per_sample_gradients(self, module, args, delta, names):
        a = args[0].detach()
        batch, channels = a.shape[0], a.shape[1]
        delta = delta.reshape(batch, channels, -1)
        delta_sum = delta.sum(-1)
        grads = {}
        if "weight" in names:
            # sum_s delta (a - mean) / std, without a normalised copy of the input.
            a = a.reshape(batch, channels, -1)
            delta_a = torch.einsum("bcs,bcs->bc", delta, a)
            inv_std = torch.rsqrt(module.running_var + module.eps).to(delta.dtype)
            grads["weight"] = (delta_a - module.running_mean.to(delta.dtype) * delta_sum) * inv_std
        if "bias" in names:
            grads["bias"] = delta_sum
        return grads

    def bytes_per_sample(self, module, args, delta, params):
        return args[0][0].numel() * max(delta.element_size(), 4)


class LayerNormRule(MaterializingRule):
    """``nn.LayerNorm`` with elementwise affine parameters (with or without bias)."""

    def supports(self, module, args):
        return (
            len(args) == 1
            and isinstance(args[0], torch.Tensor)
            and args[0].dim() > len(module.normalized_shape)
        )

    def per_sample_gradients(self, module, args, delta, names):
        a = args[0].detach()
        batch = a.shape[0]
        delta = delta.reshape(batch, -1, *module.normalized_shape)
        grads = {}
        if "weight" in names:
            normalized = F.layer_norm(a, module.normalized_shape, eps=module.eps)
            normalized = normalized.reshape(batch, -1, *module.normalized_shape)
            grads["weight"] = (normalized * delta).sum(1)
        if "bias" in names:
            grads["bias"] = delta.sum(1)
        return grads

    def bytes_per_sample(self, module, args, delta, params):
        return args[0][0].numel() * max(delta.element_size(), 4)


class GroupNormRule(MaterializingRule):
    """``nn.GroupNorm`` with affine parameters."""

    def supports(self, module, args):
        return len(args) == 1 and isinstance(args[0], torch.Tensor) and args[0].dim() >= 2

    def per_sample_gradients(self, module, args, delta, names):
        a = args[0].detach()
        batch, channels = a.shape[0], a.shape[1]
        delta = delta.reshape(batch, channels, -1)
        grads = {}
        if "weight" in names:
            normalized = F.group_norm(a, module.num_groups, eps=module.eps)
            grads["weight"] = (normalized.reshape(batch, channels, -1) * delta).sum(-1)
        if "bias" in names:
            grads["bias"] = delta.sum(-1)
        return grads

    def bytes_per_sample(self, module, args, delta, params):
        return args[0][0].numel() * max(delta.element_size(), 4)


class EmbeddingRule(GradRule):
    """``nn.Embedding`` (dense gradients, repeated indices, ``padding_idx``).

    A sample's gradient has one row per distinct index it uses (the sum of the output
    gradients at that index), so only those rows are formed, never a vocabulary-sized one.
    """

    def supports(self, module, args):
        return (
            not module.scale_grad_by_freq
            and not module.sparse
            and len(args) == 1
            and isinstance(args[0], torch.Tensor)
            and args[0].dim() >= 1
        )

    def accumulate(
        self, module, args, delta, params, directions, sq_norms, dots, max_buffer_bytes
    ):
        if "weight" not in params:
            return
        indices = args[0]
        batch = indices.shape[0]
        indices = indices.reshape(batch, -1)
        delta = delta.reshape(batch, indices.shape[1], -1)
        sample = torch.arange(batch, device=indices.device).unsqueeze(1).expand_as(indices)
        keep = torch.ones_like(indices, dtype=torch.bool)
        if module.padding_idx is not None:
            keep = indices != module.padding_idx
        flat_idx, flat_sample, flat_delta = indices[keep], sample[keep], delta[keep]
        keys = flat_sample * module.num_embeddings + flat_idx
        unique_keys, inverse = torch.unique(keys, return_inverse=True)
        rows = flat_delta.new_zeros(unique_keys.shape[0], flat_delta.shape[1])
        rows.index_add_(0, inverse, flat_delta)
        sq_norms.index_add_(
            0, unique_keys // module.num_embeddings, rows.pow(2).sum(1).to(sq_norms.dtype)
        )
        if dots is not None:
            weight_dir = directions["weight"].to(flat_delta.dtype)
            contrib = (flat_delta * weight_dir[flat_idx]).sum(1)
            dots.index_add_(0, flat_sample, contrib.to(dots.dtype))


_RULES = {
    nn.Linear: LinearRule(),
    nn.Conv1d: ConvRule(1),
    nn.Conv2d: ConvRule(2),
    nn.BatchNorm1d: BatchNormRule(),
    nn.BatchNorm2d: BatchNormRule(),
    nn.BatchNorm3d: BatchNormRule(),
    nn.LayerNorm: LayerNormRule(),
    nn.GroupNorm: GroupNormRule(),
    nn.Embedding: EmbeddingRule(),
}


def register_rule(module_type, rule):
    """Register (or replace) the gradient rule for a module type.

    Parameters
    ----------
    module_type : type
        A subclass of :class:`torch.nn.Module` that owns parameters directly.
    rule : GradRule
        The rule; see :class:`GradRule` and :class:`MaterializingRule`.

    Examples
    --------
    >>> import torch
    >>> from skdynal.gradients import MaterializingRule, register_rule
    >>> class Scale(torch.nn.Module):
    ...     def __init__(self, n):
    ...         super().__init__()
    ...         self.weight = torch.nn.Parameter(torch.ones(n))
    ...     def forward(self, x):
    ...         return x * self.weight
    >>> class ScaleRule(MaterializingRule):
    ...     def per_sample_gradients(self, module, args, delta, names):
    ...         return {"weight": args[0] * delta}
    >>> register_rule(Scale, ScaleRule())
    """
    if not (isinstance(module_type, type) and issubclass(module_type, nn.Module)):
        raise TypeError(f"module_type must be a torch.nn.Module subclass, got {module_type!r}.")
    if not callable(getattr(rule, "accumulate", None)) or not callable(
        getattr(rule, "supports", None)
    ):
        raise TypeError("rule must have `supports` and `accumulate` methods (see GradRule).")
    _RULES[module_type] = rule


def get_rule(module):
    """Rule for ``module``, or ``None``.

    An exact type match wins; otherwise a registered base class is used only when the
    subclass does not override ``forward`` (a changed ``forward`` may change the gradient).
    """
    cls = type(module)
    if cls in _RULES:
        return _RULES[cls]
    for base in cls.__mro__[1:]:
        if base in _RULES:
            return _RULES[base] if cls.forward is base.forward else None
    return None
