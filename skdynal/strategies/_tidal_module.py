"""TiDAL's prediction module and the backbone stage features it reads."""

import contextlib
import math

import torch
import torch.nn.functional as F
from torch.nn.parameter import UninitializedParameter

__all__ = ["TiDALHead", "backbone_probabilities", "capture_stage_features", "resolve_stages"]

_RESNET_STAGES = ("layer1", "layer2", "layer3", "layer4")
_CONV_TYPES = (torch.nn.Conv1d, torch.nn.Conv2d, torch.nn.Conv3d)


class TiDALHead(torch.nn.Module):
    """TiDAL's prediction module: pooled stage features to ``K`` logits.

    Each stage's features are global-average-pooled to ``(B, d_s)``, mapped by a linear layer
    and a ReLU to ``(B, width)``; the concatenation goes through a final linear layer to
    ``(B, K)``. The input widths ``d_s`` and ``K`` are read from the first call (the
    parameters are created uninitialised and materialised in place, so an optimizer built
    before that call keeps working).

    Parameters
    ----------
    n_stages : int
        Number of feature stages.
    width : int
        Width each stage is mapped to.
    dtype : torch.dtype, default=None
        Parameter dtype (the backbone's).
    device : torch.device, default=None
        Parameter device (the backbone's).

    References
    ----------
    .. [1] S. M. Kye, K. Choi, H. Byun and B. Chang, "TiDAL: Learning Training Dynamics for
       Active Learning", ICCV 2023 (arXiv:2210.06788).
    """

    def __init__(self, n_stages, width, dtype=None, device=None):
        super().__init__()
        self.n_stages = n_stages
        self.width = width
        factory = {"dtype": dtype, "device": device}
        for s in range(n_stages):
            self.register_parameter(f"stage{s}_weight", UninitializedParameter(**factory))
            self.register_parameter(f"stage{s}_bias", UninitializedParameter(**factory))
        self.out_weight = UninitializedParameter(**factory)
        self.out_bias = UninitializedParameter(**factory)

    @property
    def materialized(self):
        """Whether the parameters have been created (after the first call)."""
        return not isinstance(self.out_weight, UninitializedParameter)

    def _materialize(self, features, n_classes):
        with torch.no_grad():
            for s, feature in enumerate(features):
                _init_linear(
                    getattr(self, f"stage{s}_weight"),
                    getattr(self, f"stage{s}_bias"),
                    self.width,
                    feature.shape[1],
                )
            _init_linear(self.out_weight, self.out_bias, n_classes, self.n_stages * self.width)

    def forward(self, features, n_classes):
        """Logits ``(B, n_classes)`` from a list of pooled ``(B, d_s)`` stage features."""
        if len(features) != self.n_stages:
            raise ValueError(
                f"TiDAL's prediction module was built for {self.n_stages} stages, got "
                f"{len(features)} feature tensors."
            )
        if not self.materialized:
            self._materialize(features, n_classes)
        hidden = [
            F.relu(F.linear(f, getattr(self, f"stage{s}_weight"), getattr(self, f"stage{s}_bias")))
            for s, f in enumerate(features)
        ]
        return F.linear(torch.cat(hidden, dim=1), self.out_weight, self.out_bias)


def _init_linear(weight, bias, n_out, n_in):
    """Materialise and initialise like ``torch.nn.Linear``."""
    weight.materialize((n_out, n_in))
    bias.materialize((n_out,))
    torch.nn.init.kaiming_uniform_(weight, a=math.sqrt(5))
    bound = 1.0 / math.sqrt(n_in) if n_in > 0 else 0.0
    torch.nn.init.uniform_(bias, -bound, bound)


def resolve_stages(module, stages):
    """Return ``[(name, submodule, "input" | "output"), ...]`` for a stage specification.

    See ``tidal_stages`` of :class:`~skdynal.TiDALMixin`.
    """
    named = dict(module.named_modules())
    if stages is None:
        if all(name in named for name in _RESNET_STAGES):
            specs = list(_RESNET_STAGES)
        else:
            specs = [n for n, m in named.items() if isinstance(m, _CONV_TYPES)]
            specs += [f"{n}:input" for n, m in named.items() if isinstance(m, torch.nn.Linear)]
        if not specs:
            raise ValueError(
                f"Could not pick TiDAL feature stages for {type(module).__name__}: it has no "
                "layer1..layer4, convolution or Linear layers. Name them with tidal_stages."
            )
    else:
        if isinstance(stages, str) or not all(isinstance(s, str) for s in stages) or not stages:
            raise TypeError(
                f"tidal_stages must be a non-empty list of module names, got {stages!r}."
            )
        specs = list(stages)
    resolved = []
    for spec in specs:
        name, _, where = spec.partition(":")
        where = where or "output"
        if where not in ("input", "output"):
            raise ValueError(
                f"Stage {spec!r}: write 'name' for a module's output or 'name:input' for its "
                "input."
            )
        if name not in named or name == "":
            available = [n for n in named if n]
            raise ValueError(
                f"tidal_stages names {name!r}, which is not a submodule of "
                f"{type(module).__name__}; available: {available}."
            )
        resolved.append((name, named[name], where))
    return resolved


def _pool(tensor, channel_last):
    if tensor.dim() < 2:
        raise ValueError(f"A TiDAL stage produced a tensor of shape {tuple(tensor.shape)}.")
    if tensor.dim() == 2:
        return tensor
    if channel_last:
        return tensor.flatten(1, -2).mean(dim=1)
    return tensor.flatten(2).mean(dim=2)


@contextlib.contextmanager
def capture_stage_features(module, stages):
    """Collect the pooled features of ``stages`` during forward passes run in the block.

    Yields a list that is filled, in stage order, once the forward pass has run.
    """
    captured = {}
    handles = []

    def make_hook(position, where, channel_last):
        def hook(_module, inputs, output):
            value = inputs[0] if where == "input" else output
            if isinstance(value, (tuple, list)):
                value = value[0]
            captured[position] = _pool(value, channel_last)

        return hook

    features = []
    try:
        for position, (_, submodule, where) in enumerate(stages):
            channel_last = isinstance(submodule, torch.nn.Linear)
            handles.append(
                submodule.register_forward_hook(make_hook(position, where, channel_last))
            )
        yield features
        missing = [stages[p][0] for p in range(len(stages)) if p not in captured]
        if missing:
            raise ValueError(
                f"The TiDAL stages {missing} were not called in the forward pass; name "
                "submodules that the module's forward uses."
            )
        features.extend(captured[p] for p in range(len(stages)))
    finally:
        for handle in handles:
            handle.remove()


def backbone_probabilities(net, y_pred):
    """Class probabilities from the module output (skorch's convention for NLLLoss)."""
    if isinstance(y_pred, tuple):
        y_pred = y_pred[0]
    if isinstance(getattr(net, "criterion_", None), torch.nn.NLLLoss):
        return y_pred
    return torch.softmax(y_pred, dim=-1)
