"""Per-sample gradient statistics of a network: squared norms and dots with a direction.

Pure functions with no knowledge of query strategies. Every function takes a module (in
the mode it should be differentiated in), a per-sample loss ``loss_fn(outputs, targets) ->
(B,)``, a batch and optionally a parameter-shaped direction ``G`` keyed like
``module.named_parameters()`` (trainable parameters only), and returns a :class:`GradStats`.

:func:`grad_stats` is the fast exact engine (one forward and one backward pass, per-layer
rules, see :func:`register_rule`); :func:`reference_grad_stats` is the simple
``torch.func`` reference; :func:`last_layer_grad_stats` is a closed-form approximation on
the final linear layer for very large models. :func:`jacobian_factors` and
:func:`tangent_kernel` give the empirical neural tangent kernel by the same layer-wise
identities, without the Jacobian of the whole network; :func:`loss_gradient_factors` gives
per-sample loss gradients in the same factored form, whose inner products
``<g_u, g_v>`` dynamicAL's gradient-space batch selections use.
"""

from ._common import GradStats, trainable_parameters
from ._engine import DEFAULT_CPU_MAX_BUFFER_BYTES, DEFAULT_MAX_BUFFER_BYTES, grad_stats
from ._kernel import JacobianFactors, jacobian_factors, loss_gradient_factors, tangent_kernel
from ._labeled import forward, summed_loss_gradient
from ._last_layer import last_layer_grad_stats
from ._reference import reference_grad_stats
from ._rules import GradRule, MaterializingRule, get_rule, register_rule

__all__ = [
    "DEFAULT_CPU_MAX_BUFFER_BYTES",
    "DEFAULT_MAX_BUFFER_BYTES",
    "GradRule",
    "GradStats",
    "JacobianFactors",
    "MaterializingRule",
    "forward",
    "get_rule",
    "grad_stats",
    "jacobian_factors",
    "last_layer_grad_stats",
    "loss_gradient_factors",
    "reference_grad_stats",
    "register_rule",
    "summed_loss_gradient",
    "tangent_kernel",
    "trainable_parameters",
]
