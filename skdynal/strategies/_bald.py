"""BALD with Monte Carlo dropout (Houlsby et al. 2011; Gal, Islam & Ghahramani 2017)."""

import dataclasses
import numbers
from typing import ClassVar

import numpy as np
import torch
from sklearn.utils import check_random_state

from .._base import BaseScoringStrategy
from .._validation import BATCH_SIZE, StrictInterval
from ._outputs import batch_probabilities

__all__ = ["BALDSampler"]

_ELEMENTWISE = (torch.nn.Dropout,)
_CHANNELWISE = (torch.nn.Dropout1d, torch.nn.Dropout2d, torch.nn.Dropout3d)


def _dropout_layers(module):
    """The dropout layers that MC dropout samples (``p > 0``), by name."""
    layers = []
    for name, layer in module.named_modules():
        if isinstance(layer, _ELEMENTWISE + _CHANNELWISE) and layer.p > 0:
            layers.append((name, layer))
        elif isinstance(layer, (torch.nn.AlphaDropout, torch.nn.FeatureAlphaDropout)):
            raise ValueError(
                f"BALDSampler does not support {type(layer).__name__} (layer {name!r}); use "
                "torch.nn.Dropout, Dropout1d, Dropout2d or Dropout3d."
            )
    return layers


class _SampledDropout:
    """Forward hook applying a dropout mask drawn from an explicit generator.

    The layer itself stays in ``eval()`` mode (where it is the identity); the hook replaces
    its output by ``input * mask / (1 - p)``, elementwise for ``Dropout`` and per channel for
    ``Dropout1d/2d/3d``, as the layers do in training mode.
    """

    def __init__(self, generator):
        self.generator = generator

    def __call__(self, layer, args, output):
        inputs = args[0]
        keep = 1.0 - layer.p
        if isinstance(layer, _CHANNELWISE) and inputs.dim() >= 3:
            shape = inputs.shape[:2] + (1,) * (inputs.dim() - 2)
        else:
            shape = inputs.shape
        if keep == 0.0:
            return torch.zeros_like(inputs)
        uniform = torch.rand(
            shape,
            generator=self.generator,
            device=inputs.device,
            dtype=inputs.dtype if inputs.is_floating_point() else None,
        )
        return inputs * (uniform < keep).to(inputs.dtype) / keep


def _entropy(probabilities):
    return -torch.special.xlogy(probabilities, probabilities).sum(dim=-1)


class BALDSampler(BaseScoringStrategy):
    """BALD: query the rows on which MC-dropout samples of the net disagree most.

    The score is the mutual information between the label and the network weights under
    Monte Carlo dropout,

    .. math::

        I(y; \\omega \\mid x) = H\\Big[\\tfrac1T \\sum_t p_t(\\cdot \\mid x)\\Big]
        - \\tfrac1T \\sum_t H\\big[p_t(\\cdot \\mid x)\\big],

    with ``p_t`` the class probabilities (the net's ``predict_proba`` semantics) of the
    ``t``-th of ``T = n_samples`` forward passes with fresh dropout masks. Everything but the
    dropout layers stays in ``eval()`` mode (BatchNorm uses its running statistics).

    Cost: ``n_samples`` forward passes over the pool. Memory: ``n_pool x n_classes`` plus one
    batch.

    Parameters
    ----------
    n_samples : int, default=20
        Number of dropout masks ``T`` per pool row.
    batch_size : int, default=None
        Pool rows per forward pass. ``None`` uses the net's validation batch size.
    random_state : int, RandomState instance or None, default=None
        Seeds the ``torch.Generator`` that draws the dropout masks (the global torch RNG is
        not used), and breaks ties among equal scores.

    Notes
    -----
    The masks come from forward hooks on the ``torch.nn.Dropout``, ``Dropout1d``,
    ``Dropout2d`` and ``Dropout3d`` modules (with ``p > 0``); dropout applied with
    ``torch.nn.functional.dropout`` inside ``forward`` is not sampled. A module without
    such layers raises a ``ValueError``. The modes of all submodules are restored.

    The masks of a batch depend on the masks drawn for the batches before it (one generator
    draws them all, batch after batch), so the pool is scored in one piece
    (``capabilities().shardable`` is false) and the scores depend on ``batch_size``.

    References
    ----------
    .. [1] N. Houlsby, F. Huszár, Z. Ghahramani and M. Lengyel, "Bayesian Active Learning
       for Classification and Preference Learning", arXiv:1112.5745, 2011.
    .. [2] Y. Gal, R. Islam and Z. Ghahramani, "Deep Bayesian Active Learning with Image
       Data", ICML 2017.

    Examples
    --------
    >>> from skdynal import BALDSampler
    >>> BALDSampler(n_samples=10, random_state=0)
    BALDSampler(n_samples=10, random_state=0)
    """

    _parameter_constraints: ClassVar[dict] = {
        "n_samples": [StrictInterval(numbers.Integral, 1, None, closed="left")],
        "batch_size": BATCH_SIZE,
        "random_state": ["random_state"],
    }

    def __init__(self, n_samples=20, batch_size=None, random_state=None):
        self.n_samples = n_samples
        self.batch_size = batch_size
        self.random_state = random_state

    def capabilities(self):
        return dataclasses.replace(super().capabilities(), needs_dropout=True, shardable=False)

    def round_state(self, adapter):
        """The generator of the round's dropout masks, seeded from ``random_state``."""
        layers = _dropout_layers(adapter.module)
        if not layers:
            raise ValueError(
                "BALDSampler needs Monte Carlo dropout, but no dropout layer of the module "
                f"{type(adapter.module).__name__} has p > 0. Set a dropout probability above "
                "0 or use another strategy (e.g. EntropySampler)."
            )
        # Masks and tie-breaking draw from one RandomState, so one seed fixes both.
        seed = int(check_random_state(self.random_state).randint(np.iinfo(np.int32).max))
        generator = torch.Generator(device=adapter.device)
        generator.manual_seed(seed)
        return {"generator": generator}

    def score_batch(self, adapter, state, X_batch):
        """The mutual information of ``n_samples`` MC-dropout passes over one batch."""
        hook = _SampledDropout(state["generator"])
        layers = _dropout_layers(adapter.module)
        handles = [layer.register_forward_hook(hook) for _, layer in layers]
        mean_probabilities = 0.0
        mean_entropy = 0.0
        try:
            for _ in range(self.n_samples):
                probabilities = batch_probabilities(adapter, X_batch).double()
                mean_probabilities = mean_probabilities + probabilities / self.n_samples
                mean_entropy = mean_entropy + _entropy(probabilities) / self.n_samples
        finally:
            for handle in handles:
                handle.remove()
        return (_entropy(mean_probabilities) - mean_entropy).clamp(min=0.0)

    def select_from_outputs(self, adapter, state, outputs, n_instances, random_state, pool):
        if isinstance(self.random_state, numbers.Integral):
            # round_state drew the mask seed from a RandomState of this same seed: draw it
            # here too, so that ties are broken as when one RandomState drew both.
            random_state.randint(np.iinfo(np.int32).max)
        return super().select_from_outputs(
            adapter, state, outputs, n_instances, random_state, pool
        )
