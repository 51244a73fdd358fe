"""Exact per-sample gradient norms and dots from one forward and one backward pass.

Forward hooks record every ruled layer's input and the autograd edge of its output; one
backward of the summed loss asks only for the gradients at those outputs (no parameter
gradients are formed), and each layer's rule (:mod:`._rules`) turns input and output
gradient into the layer's share of ``||g_u||^2`` and ``<g_u, G>``, in a pre-hook of the
layer's autograd node as the backward pass reaches it, so that each output gradient is
released once used. Parameters that no rule can handle exactly take a ``torch.func`` path
restricted to them.
"""

import contextlib
import itertools
import warnings

import torch
from torch.autograd.graph import get_gradient_edge
from torch.overrides import TorchFunctionMode

from ._common import GradStats, trainable_parameters
from ._labeled import forward
from ._reference import accumulate_stats, per_sample_gradients
from ._rules import get_rule

__all__ = ["DEFAULT_CPU_MAX_BUFFER_BYTES", "DEFAULT_MAX_BUFFER_BYTES", "grad_stats"]

DEFAULT_MAX_BUFFER_BYTES = 128 * 2**20
# On the CPU every temporary above glibc's mmap threshold (at most 32 MiB) is a fresh
# mapping, page-faulted in on each batch; small, cache-sized chunks are reused instead.
# Measured with benchmarks/bench_engine.py: 128 MiB made the vanilla CNN ~1.5x slower.
DEFAULT_CPU_MAX_BUFFER_BYTES = 4 * 2**20

_WARNED = set()


def grad_stats(
    module,
    loss_fn,
    inputs,
    targets,
    direction=None,
    *,
    max_buffer_bytes=None,
):
    """Per-sample squared gradient norms and dots with a direction, at about backward cost.

    Computes, for every sample ``u`` of the batch, ``||g_u||^2`` and ``<g_u, G>`` where
    ``g_u`` is the gradient of ``loss_fn(module(x_u), y_u)`` with respect to all trainable
    parameters, without ever holding the per-sample gradients of the whole network
    (memory ``B x P``). One forward pass records each layer's input; one backward pass
    gives the gradient at each layer's output; a per-layer rule (see
    :func:`register_rule`) forms the layer's share of the statistics, using the Gram form
    or materialising that one layer's per-sample gradient, whichever is cheaper, on chunks
    of the batch that keep temporaries under ``max_buffer_bytes``.

    Rules exist for ``Linear`` (any number of leading dimensions), ``Conv1d``, ``Conv2d``,
    ``BatchNorm1d/2d/3d`` (eval mode), ``LayerNorm``, ``GroupNorm`` and ``Embedding``.
    Parameters of other layers, of layers called more than once in one forward pass, of
    parameters shared between layers or used outside their own layer take an exact but
    slower ``torch.func`` path restricted to those parameters; a ``UserWarning`` naming
    them is issued once per model class.

    Parameters
    ----------
    module : torch.nn.Module
        The network, already in the mode it should be differentiated in (normally
        ``eval()``, so that the samples of a batch do not interact). Its parameters,
        ``.grad`` attributes and mode are left unchanged and no hook is left behind.
    loss_fn : callable
        ``loss_fn(outputs, targets)`` returning the per-sample losses, shape ``(B,)``.
    inputs : torch.Tensor or dict of str to torch.Tensor
        The batch, first dimension ``B``; a dict is passed as keyword arguments.
    targets : torch.Tensor
        Targets of the batch, first dimension ``B``.
    direction : dict of str to torch.Tensor, default=None
        The direction ``G`` keyed like ``module.named_parameters()``, with an entry for
        every trainable parameter (e.g. from :func:`summed_loss_gradient`).
    max_buffer_bytes : int, default=None
        Bound on the temporary buffer of one layer's rule; the batch is processed in
        chunks below it. It does not bound the forward pass's own activations. ``None``
        means :data:`DEFAULT_CPU_MAX_BUFFER_BYTES` (4 MiB) for a batch on the CPU, where
        small chunks stay in cache and avoid fresh page-faulted allocations, and
        :data:`DEFAULT_MAX_BUFFER_BYTES` (128 MiB) on an accelerator.

    Returns
    -------
    stats : GradStats
        ``sq_norms`` and ``dots`` (``None`` without a direction), shape ``(B,)``, in the
        parameters' dtype (at least float32).

    See Also
    --------
    reference_grad_stats : The same statistics via ``torch.func`` (memory ``B x P``).
    last_layer_grad_stats : The approximation restricted to the final linear layer.

    References
    ----------
    .. [1] Wang, H., Huang, W., Wu, Z., Tong, H., Margenot, A. J., & He, J. (2022). Deep
       Active Learning by Leveraging Training Dynamics. NeurIPS 2022.
    .. [2] Goodfellow, I. (2015). Efficient Per-Example Gradient Computations.
       arXiv:1510.01799.
    .. [3] Bu, Z., Mao, J., & Xu, S. (2022). Scalable and Efficient Training of Large
       Convolutional Neural Networks with Differential Privacy. NeurIPS 2022 (mixed ghost
       clipping).
    """
    if not isinstance(module, torch.nn.Module):
        raise TypeError(f"module must be a torch.nn.Module, got {type(module).__name__}.")
    if max_buffer_bytes is not None:
        max_buffer_bytes = _check_buffer(max_buffer_bytes)
    params = _checked_parameters(module, direction)
    all_layers, fallback_reasons = _plan(module, params)
    layers = [layer for layer in all_layers if layer.name not in fallback_reasons]
    losses, calls, tracker = _recorded_losses(module, loss_fn, inputs, targets, layers)
    rule_buffer, fallback_buffer = _buffer_bounds(max_buffer_bytes, losses.device)
    sq_norms, dots = _zero_stats(losses, params, direction)

    ruled = _ruled_layers(layers, calls, tracker, fallback_reasons)
    if ruled:
        _accumulate_ruled(ruled, calls, losses, direction, sq_norms, dots, rule_buffer)
    del losses

    fallback = {
        name: params[name]
        for layer in all_layers
        if layer.name in fallback_reasons
        for name in layer.qualified.values()
    }
    if fallback:
        _warn_fallback(module, fallback_reasons)
        _fallback_stats(
            module, loss_fn, inputs, targets, fallback, direction, sq_norms, dots, fallback_buffer
        )
    return GradStats(sq_norms=sq_norms, dots=dots)


def _checked_parameters(module, direction):
    """The trainable parameters, after checking them, the BatchNorm layers and ``direction``."""
    params = trainable_parameters(module)
    if not params:
        raise ValueError("module has no trainable parameters (requires_grad=True).")
    _check_batch_norm(module)
    _check_direction(direction, params)
    return params


def _recorded_losses(module, loss_fn, inputs, targets, layers):
    """One forward pass with ``layers`` recorded: ``(losses, calls, tracker)``."""
    with _recorded_calls(layers) as (calls, tracker):
        with torch.enable_grad(), tracker:
            outputs = forward(module, inputs)
        with torch.enable_grad():
            losses = loss_fn(outputs, targets)
    _check_losses(losses)
    return losses, calls, tracker


def _buffer_bounds(max_buffer_bytes, device):
    """``(rules, fallback)`` buffer bounds for a batch on ``device``."""
    # vmap's per-chunk overhead dominates small chunks, so the fallback keeps the large bound.
    fallback = max_buffer_bytes or DEFAULT_MAX_BUFFER_BYTES
    if max_buffer_bytes is None:
        max_buffer_bytes = (
            DEFAULT_CPU_MAX_BUFFER_BYTES if device.type == "cpu" else DEFAULT_MAX_BUFFER_BYTES
        )
    return max_buffer_bytes, fallback


def _zero_stats(losses, params, direction):
    """Zeroed accumulators in the parameters' dtype, at least float32."""
    acc_dtype = torch.promote_types(next(iter(params.values())).dtype, torch.float32)
    sq_norms = torch.zeros(losses.shape[0], dtype=acc_dtype, device=losses.device)
    dots = None if direction is None else torch.zeros_like(sq_norms)
    return sq_norms, dots


def _local_direction(layer, direction):
    """``direction`` restricted to ``layer``'s parameters, keyed by their local names."""
    if direction is None:
        return None
    return {local: direction[qualified].detach() for local, qualified in layer.qualified.items()}


def _accumulate_ruled(ruled, calls, losses, direction, sq_norms, dots, max_buffer_bytes):
    """One backward pass of the summed loss, each ruled layer adding its share in place."""

    def apply_rule(layer, delta):
        call = calls[id(layer.module)]
        if delta is not None:
            with torch.no_grad():
                get_rule(layer.module).accumulate(
                    layer.module,
                    call.args,
                    delta.detach(),
                    layer.params,
                    _local_direction(layer, direction),
                    sq_norms,
                    dots,
                    max_buffer_bytes,
                )
        call.args = call.edge = None

    with torch.enable_grad():
        total = losses.sum()
    _backward_with_rules(
        total, [(layer, calls[id(layer.module)].edge) for layer in ruled], apply_rule
    )


def _backward_with_rules(total, layer_edges, apply_rule):
    """Backpropagate ``total`` once, calling ``apply_rule(layer, delta)`` for every layer.

    Layers with another ruled layer below them in the backward graph get their ``delta``
    in a pre-hook of their output's autograd node, just before it runs, so each gradient
    is used and released as the backward pass goes instead of all of them being held to
    the end. Only the gradients of the lowest ruled layers are requested from
    ``torch.autograd.grad`` (that makes the pass run through all the others).
    """
    root = total.grad_fn
    nodes = {}
    for layer, edge in layer_edges:
        nodes.setdefault(edge.node, []).append((layer, edge.output_nr))
    lowest = _nodes_without_ruled_descendants(root, set(nodes))
    hooked = [node for node in nodes if node not in lowest]

    def make_pre_hook(node):
        def pre_hook(grad_outputs):
            for layer, output_nr in nodes[node]:
                apply_rule(layer, grad_outputs[output_nr])
            return None

        return pre_hook

    handles = [node.register_prehook(make_pre_hook(node)) for node in hooked]
    requested = [(layer, edge) for layer, edge in layer_edges if edge.node in lowest]
    try:
        deltas = list(
            torch.autograd.grad(total, [edge for _, edge in requested], allow_unused=True)
        )
    finally:
        for handle in handles:
            handle.remove()
    for i, (layer, _) in enumerate(requested):
        delta, deltas[i] = deltas[i], None
        apply_rule(layer, delta)


def _nodes_without_ruled_descendants(root, ruled_nodes):
    """The ruled nodes from which no other ruled node is reachable in the backward graph."""
    below = {}  # node -> whether a ruled node is reachable from it (itself excluded)
    stack = [(root, False)]
    while stack:
        node, expanded = stack.pop()
        if node in below:
            continue
        children = [child for child, _ in node.next_functions if child is not None]
        if not expanded:
            stack.append((node, True))
            stack.extend((child, False) for child in children if child not in below)
            continue
        below[node] = any(child in ruled_nodes or below[child] for child in children)
    return {node for node in ruled_nodes if not below.get(node, False)}


class _Call:
    """What one forward pass did with a layer: how often it ran and, if once, its inputs,
    the autograd edge of its output and the output's shape, dtype and device."""

    __slots__ = ("args", "count", "edge", "output_meta")

    def __init__(self):
        self.count = 0
        self.args = None
        self.edge = None
        self.output_meta = None


@contextlib.contextmanager
def _recorded_calls(layers, detach_args=False):
    """Hooks on ``layers`` that record each one's :class:`_Call` while the block runs.

    Yields ``(calls, tracker)``: ``calls`` maps ``id(module)`` to its :class:`_Call`;
    ``tracker`` (a :class:`_ForeignUse` to enter around the forward pass) notes layers
    whose parameters are used outside the layer. ``detach_args`` keeps the inputs of a
    layer detached from the graph.
    """
    calls = {id(layer.module): _Call() for layer in layers}
    param_owner = {id(p): layer.module for layer in layers for p in layer.params.values()}
    stack, handles = [], []

    def pre_hook(mod, args):
        calls[id(mod)].count += 1
        stack.append(mod)

    def post_hook(mod, args, output):
        stack.pop()
        call = calls[id(mod)]
        if (
            call.count == 1
            and isinstance(output, torch.Tensor)
            and output.grad_fn is not None
            and get_rule(mod).supports(mod, args)
        ):
            call.args = (
                tuple(a.detach() if torch.is_tensor(a) else a for a in args)
                if detach_args
                else args
            )
            call.edge = get_gradient_edge(output)
            call.output_meta = (output.shape, output.dtype, output.device)
        else:
            call.args = call.edge = None

    try:
        for layer in layers:
            handles.append(layer.module.register_forward_pre_hook(pre_hook))
            handles.append(layer.module.register_forward_hook(post_hook, prepend=True))
        yield calls, _ForeignUse(param_owner, stack)
    finally:
        for handle in handles:
            handle.remove()


def _ruled_layers(layers, calls, tracker, reasons):
    """The layers whose rule applies after a recorded forward pass (called exactly once,
    with a supported input and output, parameters used only inside); the others get their
    reason in ``reasons``. A layer never called has no gradient: it is in neither."""
    ruled = []
    for layer in layers:
        call = calls[id(layer.module)]
        if id(layer.module) in tracker.foreign:
            reasons[layer.name] = "parameters used outside the layer"
        elif call.count > 1:
            reasons[layer.name] = f"called {call.count} times in one forward pass"
        elif call.count == 1 and call.edge is None:
            reasons[layer.name] = "unsupported input or output"
        elif call.count == 1:
            ruled.append(layer)
    return ruled


class _Layer:
    """A module handled by a rule: its own trainable parameters, local and qualified names."""

    def __init__(self, name, module, params, qualified):
        self.name = name
        self.module = module
        self.params = params
        self.qualified = qualified


class _ForeignUse(TorchFunctionMode):
    """Flags ruled layers whose parameters are used by an op outside that layer's forward.

    Such a use (e.g. ``F.linear(h, self.embedding.weight)`` in a parent's ``forward``) adds
    a gradient term the layer's rule does not see.
    """

    def __init__(self, param_owner, stack):
        super().__init__()
        self.param_owner = param_owner
        self.stack = stack
        self.foreign = set()

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        owners = self.param_owner
        for arg in itertools.chain(args, kwargs.values()):
            # Flat scan (plus one level of lists, as in torch.cat): this runs for every op.
            items = arg if isinstance(arg, list | tuple) else (arg,)
            for item in items:
                if isinstance(item, torch.Tensor) and id(item) in owners:
                    owner = owners[id(item)]
                    if not self.stack or self.stack[-1] is not owner:
                        self.foreign.add(id(owner))
        return func(*args, **kwargs)


def _plan(module, params):
    """Split the trainable parameters into ruled layers and fallback reasons by layer name."""
    by_id = {id(p): name for name, p in params.items()}
    owners = {}
    for mod_name, mod in module.named_modules():
        for _, p in mod.named_parameters(recurse=False):
            if id(p) in by_id:
                owners.setdefault(id(p), []).append(mod_name)
    layers, reasons = [], {}
    for mod_name, mod in module.named_modules():
        own = {local: p for local, p in mod.named_parameters(recurse=False) if id(p) in by_id}
        if not own:
            continue
        if get_rule(mod) is None:
            reasons[mod_name] = f"no rule for {type(mod).__name__}"
        elif any(len(owners[id(p)]) > 1 for p in own.values()):
            reasons[mod_name] = "parameters shared with another layer"
        layer = _Layer(mod_name, mod, own, {local: by_id[id(p)] for local, p in own.items()})
        layers.append(layer)
    return layers, reasons


def _fallback_stats(
    module, loss_fn, inputs, targets, params, direction, sq_norms, dots, max_buffer_bytes
):
    """Add the shares of ``params`` (name to parameter) by the ``torch.func`` reference path,
    in chunks whose per-sample gradients stay under ``max_buffer_bytes``."""
    numel = sum(p.numel() for p in params.values())
    item = next(iter(params.values())).element_size()
    chunk = max(1, int(max_buffer_bytes // max(1, numel * item)))
    per_sample = per_sample_gradients(
        module, loss_fn, inputs, targets, params, min(chunk, sq_norms.shape[0])
    )
    accumulate_stats(per_sample, direction, sq_norms, dots)


def _warn_fallback(module, reasons):
    key = (type(module).__module__, type(module).__qualname__, tuple(sorted(reasons.items())))
    if key in _WARNED:
        return
    _WARNED.add(key)
    listing = "; ".join(f"{name or '<root>'} ({why})" for name, why in sorted(reasons.items()))
    warnings.warn(
        f"grad_stats: exact but slow torch.func path for the parameters of {listing} "
        f"in {type(module).__name__}. Register a rule with skdynal.gradients.register_rule "
        "to speed this up.",
        UserWarning,
        stacklevel=3,
    )


def _check_buffer(max_buffer_bytes):
    if isinstance(max_buffer_bytes, bool) or not isinstance(max_buffer_bytes, int | float):
        raise TypeError(f"max_buffer_bytes must be a number, got {max_buffer_bytes!r}.")
    if not max_buffer_bytes > 0:
        raise ValueError(f"max_buffer_bytes must be positive, got {max_buffer_bytes!r}.")
    return max_buffer_bytes


def _check_batch_norm(module):
    for name, mod in module.named_modules():
        if isinstance(mod, torch.nn.modules.batchnorm._BatchNorm) and (
            mod.training or not mod.track_running_stats or mod.running_mean is None
        ):
            raise ValueError(
                f"BatchNorm layer {name!r} normalises with batch statistics (training mode "
                "or no running statistics), so the samples of a batch interact and "
                "per-sample gradients are not defined. Call module.eval() first."
            )


def _check_direction(direction, params):
    if direction is None:
        return
    if not isinstance(direction, dict):
        raise TypeError(
            f"direction must be a dict of parameter name to tensor, got {type(direction)}."
        )
    missing = [n for n in params if n not in direction]
    if missing:
        raise ValueError(f"direction lacks the trainable parameters {missing}.")
    for name, p in params.items():
        if tuple(direction[name].shape) != tuple(p.shape):
            raise ValueError(
                f"direction[{name!r}] has shape {tuple(direction[name].shape)}, "
                f"the parameter has {tuple(p.shape)}."
            )


def _check_losses(losses):
    if not isinstance(losses, torch.Tensor) or losses.dim() != 1:
        shape = getattr(losses, "shape", None)
        raise ValueError(
            "loss_fn must return per-sample losses of shape (B,), got "
            f"{type(losses).__name__} with shape {shape}. Use reduction='none'."
        )
    if not losses.requires_grad:
        raise ValueError(
            "loss_fn returned losses that do not depend on the module's parameters (no "
            "autograd graph). It must compute them from the outputs with differentiable "
            "torch operations, without .detach(), .item() or NumPy."
        )
