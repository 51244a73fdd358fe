"""Types and helpers shared by the gradient computations."""

from typing import NamedTuple

import torch

__all__ = ["GradStats", "trainable_parameters"]


class GradStats(NamedTuple):
    """Per-sample gradient statistics of a batch.

    Attributes
    ----------
    sq_norms : torch.Tensor
        ``||g_u||^2`` for every sample, shape ``(B,)``.
    dots : torch.Tensor or None
        ``<g_u, G>`` for every sample, shape ``(B,)``, or ``None`` when no direction was given.
    """

    sq_norms: torch.Tensor
    dots: torch.Tensor | None


def trainable_parameters(module):
    """Return the parameters of ``module`` that require gradients, by qualified name.

    Parameters shared between submodules appear once, under their first name, exactly as in
    ``module.named_parameters()``.
    """
    return {name: p for name, p in module.named_parameters() if p.requires_grad}
