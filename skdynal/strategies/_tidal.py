"""TiDAL: query the pool rows whose predicted training dynamics are the most uncertain."""

import dataclasses
import math
from typing import ClassVar

import torch
from sklearn.exceptions import NotFittedError

from .._adapter import eval_mode
from .._base import BaseScoringStrategy
from .._validation import BATCH_SIZE, StrOptions
from ._tidal_module import backbone_probabilities, capture_stage_features, resolve_stages
from ._tidal_net import TiDALMixin, TiDALNetClassifier

__all__ = ["TiDALSampler"]


class TiDALSampler(BaseScoringStrategy):
    """Query strategy of TiDAL (Kye et al., ICCV 2023).

    The net must be trained with :class:`~skdynal.TiDALMixin` (for example a
    :class:`~skdynal.TiDALNetClassifier`): during training its prediction module ``h`` learns
    to predict each labeled sample's training dynamics, the running mean over epochs of the
    backbone's softmax output. Each pool sample is scored by the uncertainty of the
    predicted dynamics ``p~ = softmax(h(x))`` (module and backbone in ``eval()`` mode):

    - ``"entropy"`` (the paper's default): ``-sum_k p~_k log p~_k``;
    - ``"margin"``: ``-(p~_yhat - max_{k != yhat} p~_k)`` with ``yhat`` the backbone's
      predicted class, as the official code's margin option (a small margin is uncertain).

    The ``n_instances`` largest scores are queried. The labeled set is not needed.
    ``capabilities().net_class`` is :class:`~skdynal.TiDALNetClassifier`, the class the
    experiment runner builds its nets with; a net without the mixin is refused with a
    ``TypeError``.

    Parameters
    ----------
    uncertainty : {"entropy", "margin"}, default="entropy"
        How the predicted dynamics are turned into a score.
    batch_size : int, default=None
        Pool samples per batch; ``None`` uses the net's validation batch size.
    random_state : int, RandomState instance or None, default=None
        Breaks ties among equal scores.

    See Also
    --------
    TiDALMixin : records the dynamics and trains the prediction module.

    Notes
    -----
    Cost: one forward pass of the backbone and the (small) module over the pool; memory of
    one batch. Training costs one extra small module forward/backward per iteration.

    References
    ----------
    .. [1] S. M. Kye, K. Choi, H. Byun and B. Chang, "TiDAL: Learning Training Dynamics for
       Active Learning", ICCV 2023 (arXiv:2210.06788).

    Examples
    --------
    >>> from skdynal import TiDALSampler
    >>> TiDALSampler(uncertainty="margin")
    TiDALSampler(uncertainty='margin')
    """

    _parameter_constraints: ClassVar[dict] = {
        "uncertainty": [StrOptions({"entropy", "margin"})],
        "batch_size": BATCH_SIZE,
        "random_state": ["random_state"],
    }

    def __init__(self, uncertainty="entropy", batch_size=None, random_state=None):
        self.uncertainty = uncertainty
        self.batch_size = batch_size
        self.random_state = random_state

    def capabilities(self):
        return dataclasses.replace(super().capabilities(), net_class=TiDALNetClassifier)

    def round_state(self, adapter):
        """Check that the net trained TiDAL's prediction module (nothing to precompute)."""
        _check_tidal_net(adapter.net)
        return {}

    def score_batch(self, adapter, state, X_batch):
        """Uncertainty of the prediction module's output on one batch of the pool."""
        net = adapter.net
        head = net.tidal_module_
        stages = resolve_stages(adapter.module, net.tidal_stages)
        with eval_mode(head), torch.no_grad():
            with capture_stage_features(adapter.module, stages) as features:
                y_pred = adapter.forward(X_batch)
            probs = backbone_probabilities(net, y_pred)
            predicted = torch.softmax(head(features, probs.shape[1]), dim=1).double()
            return _uncertainty(predicted, probs.argmax(dim=1), self.uncertainty)


def _uncertainty(probs, backbone_labels, kind):
    if kind == "entropy":
        return -(probs * torch.log(probs.clamp_min(torch.finfo(probs.dtype).tiny))).sum(dim=1)
    rows = torch.arange(len(probs), device=probs.device)
    assigned = probs[rows, backbone_labels]
    others = probs.clone()
    others[rows, backbone_labels] = -math.inf
    return -(assigned - others.max(dim=1).values)


def _check_tidal_net(net):
    if not isinstance(net, TiDALMixin):
        raise TypeError(
            "TiDALSampler needs a net trained with skdynal's TiDALMixin, which records the "
            "training dynamics and trains the prediction module: use "
            "skdynal.TiDALNetClassifier instead of NeuralNetClassifier (or subclass "
            f"TiDALMixin with your net class); got a {type(net).__name__}."
        )
    head = getattr(net, "tidal_module_", None)
    if head is None or not head.materialized:
        raise NotFittedError(
            "The TiDAL prediction module of this net has not been trained yet: fit the "
            "net before querying."
        )
