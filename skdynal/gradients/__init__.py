"""Per-sample gradient statistics of a network: squared norms and dots with a direction.

Pure functions with no knowledge of query strategies. Every function takes a module (in
the mode it should be differentiated in), a per-sample loss ``loss_fn(outputs, targets) ->
(B,)``, a batch and optionally a parameter-shaped direction ``G`` keyed like
``module.named_parameters()`` (trainable parameters only), and returns a :class:`GradStats`.
"""

from ._common import GradStats, trainable_parameters
from ._labeled import forward, summed_loss_gradient
from ._reference import reference_grad_stats

__all__ = [
    "GradStats",
    "forward",
    "reference_grad_stats",
    "summed_loss_gradient",
    "trainable_parameters",
]
