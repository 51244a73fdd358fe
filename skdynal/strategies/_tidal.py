"""TiDAL: learn the training dynamics of the labeled set, query by their predicted uncertainty."""

import contextlib
import math
import numbers
from typing import ClassVar

import numpy as np
import torch
import torch.nn.functional as F
from sklearn.exceptions import NotFittedError
from skorch import NeuralNetClassifier
from skorch.dataset import unpack_data
from torch.nn.parameter import UninitializedParameter

from .._adapter import eval_mode, explain_shape_errors
from .._base import BaseScoringStrategy
from .._validation import check_batch_size, check_positive_int
from ._dynamical import _batch_len

__all__ = ["TiDALMixin", "TiDALNetClassifier", "TiDALSampler"]

_UNCERTAINTIES = ("entropy", "margin")
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


class _IndexedDataset(torch.utils.data.Dataset):
    """A dataset whose items are ``(X_i, y_i, i)``: the row index travels with the batch."""

    def __init__(self, dataset):
        self.dataset = dataset

    def __len__(self):
        return len(self.dataset)

    def __getitem__(self, i):
        Xi, yi = unpack_data(self.dataset[i])
        return Xi, yi, i


class _IndexedLoader:
    """Iterate ``(X, y)`` batches of an indexed loader, handing each batch's row indices to
    the net before the batch is used, so skorch and its callbacks see ordinary batches."""

    def __init__(self, loader, net):
        self.loader = loader
        self.net = net

    def __len__(self):
        return len(self.loader)

    def __iter__(self):
        for X_batch, y_batch, index in self.loader:
            self.net.tidal_batch_index_ = index
            self.net.tidal_batch_recorded_ = False
            yield X_batch, y_batch
        self.net.tidal_batch_index_ = None


class TiDALMixin:
    """Net mixin that records training dynamics and trains TiDAL's prediction module.

    Put it before the skorch net class, ``class Net(TiDALMixin, NeuralNetClassifier)``, or
    use :class:`TiDALNetClassifier`. During every ``fit`` (also the warm-started fits of an
    active-learning round) the net

    1. records, for each training row ``i``, the running mean over epochs of the backbone's
       softmax output ``p_i^(e)`` at the iteration where the row is seen,
       ``m_i^(e) = (e * m_i^(e-1) + p_i^(e)) / (e + 1)`` (the "training dynamics" of [1]_;
       ``e`` counts the epochs of the current ``fit`` from 0, as the official code restarts
       it each cycle), kept in ``tidal_dynamics_`` (shape ``(n_train, K)``);
    2. trains the prediction module ``tidal_module_`` (a :class:`TiDALHead` on the
       global-average-pooled outputs of ``tidal_stages``) jointly with the backbone on

       .. math::

           L = L_{\\mathrm{CE}}(f(x), y) + \\lambda \\,
               \\mathrm{KL}\\big(m^{(e)}(x) \\,\\|\\, \\mathrm{softmax}(h(x))\\big),

       the net's own loss plus ``tidal_weight`` times the KL divergence (averaged over the
       batch) from the updated running mean to the module's prediction, as the paper and
       its official code. The module's parameters are registered with skorch, so the net's
       optimizer (with its settings) updates them too, and they follow the net's device and
       train/eval mode.

    The backbone's softmax output is the module output itself when the criterion is
    ``torch.nn.NLLLoss`` (skorch's convention for ``NeuralNetClassifier``: the module returns
    probabilities) and the softmax of the module output otherwise.

    Parameters
    ----------
    tidal_stages : list of str, default=None
        Backbone submodules (names as in ``module.named_modules()``) whose outputs feed the
        prediction module; ``"name:input"`` takes the module's input instead. Features of a
        ``torch.nn.Linear`` (input or output) are channel-last and averaged over all but the
        first and last dimension; other features are channel-first ``(B, C, ...)`` and
        averaged over the dimensions after ``C``. ``None`` picks: the four stages
        ``layer1`` .. ``layer4`` when the module has them (torchvision's ResNets, as the
        paper); otherwise the outputs of every convolution layer and the inputs of every
        ``torch.nn.Linear`` (for an MLP: the network input and every hidden representation
        that enters a linear layer).
    tidal_width : int, default=128
        Width each stage is mapped to (the official code's ``interm_dim``).
    tidal_weight : float, default=1.0
        ``lambda``, the weight of the module's loss (the official ``WEIGHT``).
    tidal_detach : bool, default=False
        ``False`` (the paper): the module's loss also trains the backbone through the stage
        features. ``True`` (a deviation): the module is trained on detached features, so
        the backbone trains exactly as without TiDAL.
    *args, **kwargs
        Passed on to the skorch net.

    Attributes
    ----------
    tidal_module_ : TiDALHead
        The prediction module.
    tidal_dynamics_ : torch.Tensor of shape (n_train, K)
        The running means ``m_i`` after the last ``fit``, on the CPU in float64, rows in the
        order of the training dataset (the rows of ``X`` when ``train_split=None``).
    tidal_epochs_ : int
        Training epochs of the last ``fit``.

    References
    ----------
    .. [1] S. M. Kye, K. Choi, H. Byun and B. Chang, "TiDAL: Learning Training Dynamics for
       Active Learning", ICCV 2023 (arXiv:2210.06788).
    """

    def __init__(
        self,
        *args,
        tidal_stages=None,
        tidal_width=128,
        tidal_weight=1.0,
        tidal_detach=False,
        **kwargs,
    ):
        super().__init__(*args, **kwargs)
        self.tidal_stages = tidal_stages
        self.tidal_width = tidal_width
        self.tidal_weight = tidal_weight
        self.tidal_detach = tidal_detach

    # --- set-up --------------------------------------------------------------------------

    def initialize_module(self):
        """Initialise the backbone, then the prediction module on the backbone's device."""
        super().initialize_module()
        check_positive_int(self.tidal_width, "tidal_width")
        weight = self.tidal_weight
        if (
            isinstance(weight, bool)
            or not isinstance(weight, numbers.Real)
            or not math.isfinite(weight)
            or weight < 0
        ):
            raise ValueError(f"tidal_weight must be a finite number >= 0, got {weight!r}.")
        if not isinstance(self.tidal_detach, bool):
            raise TypeError(f"tidal_detach must be True or False, got {self.tidal_detach!r}.")
        stages = resolve_stages(self.module_, self.tidal_stages)
        reference = next(self.module_.parameters(), None)
        dtype = reference.dtype if reference is not None else None
        device = reference.device if reference is not None else self.device
        self.tidal_module_ = TiDALHead(len(stages), self.tidal_width, dtype=dtype, device=device)
        return self

    def get_iterator(self, dataset, training=False):
        """As skorch's; for training, the row indices of each batch reach the training step.

        The loader reads ``(X_i, y_i, i)`` items; the batches it yields are the usual
        ``(X, y)``, with the indices set on the net just before each batch is used.
        """
        if not training:
            return super().get_iterator(dataset, training=False)
        self.tidal_n_train_ = len(dataset)
        loader = super().get_iterator(_IndexedDataset(dataset), training=True)
        return _IndexedLoader(loader, self)

    def fit_loop(self, X, y=None, epochs=None, **fit_params):
        """Reset the recorded dynamics, then run skorch's fit loop."""
        self.tidal_dynamics_ = None
        self.tidal_epochs_ = 0
        return super().fit_loop(X, y, epochs=epochs, **fit_params)

    def run_single_epoch(self, iterator, training, prefix, step_fn, **fit_params):
        """Run one epoch; count the training epochs for the running mean."""
        super().run_single_epoch(iterator, training, prefix, step_fn, **fit_params)
        if training and iterator is not None:
            self.tidal_epochs_ += 1

    # --- training step --------------------------------------------------------------------

    def train_step_single(self, batch, **fit_params):
        """Backbone loss plus ``tidal_weight`` times the module's KL loss, and record."""
        index = getattr(self, "tidal_batch_index_", None)
        if index is None:
            raise ValueError(
                "TiDALMixin records training dynamics per row, so training batches must come "
                "from its own get_iterator (a subclass that overrides get_iterator must call "
                "super().get_iterator for training data)."
            )
        Xi, yi = unpack_data(batch)
        self._set_training(True)
        stages = resolve_stages(self.module_, self.tidal_stages)
        with capture_stage_features(self.module_, stages) as features:
            y_pred = self.infer(Xi, **fit_params)
        loss = self.get_loss(y_pred, yi, X=Xi, training=True)
        probs = backbone_probabilities(self, y_pred).detach()
        if probs.dim() != 2 or probs.shape[1] < 2:
            raise TypeError(
                "TiDAL predicts the training dynamics of the class probabilities, so the "
                "module must return one output per class (shape (n_samples, n_classes), "
                f"n_classes >= 2); it returned shape {tuple(y_pred.shape)}. A binary "
                "classifier with one logit (NeuralNetBinaryClassifier, BCEWithLogitsLoss) is "
                "not supported: return two logits and use CrossEntropyLoss."
            )
        if self.tidal_batch_recorded_:
            # The optimizer re-evaluates the same batch (e.g. LBFGS): record it once.
            target = self.tidal_dynamics_[torch.as_tensor(index).cpu()].to(probs.device)
        else:
            target = self._record_dynamics(index, probs)
            self.tidal_batch_recorded_ = True
        pooled = [f.detach() if self.tidal_detach else f for f in features]
        logits = self.tidal_module_(pooled, probs.shape[1])
        module_loss = F.kl_div(
            F.log_softmax(logits, dim=1), target.to(logits.dtype), reduction="batchmean"
        )
        total = loss + float(self.tidal_weight) * module_loss
        total.backward()
        self.history.record_batch("tidal_loss", module_loss.item())
        return {"loss": total, "y_pred": y_pred}

    def _record_dynamics(self, index, probs):
        """Update the running means of the batch's rows; return them (detached)."""
        if self.tidal_dynamics_ is None:
            self.tidal_dynamics_ = torch.zeros(
                self.tidal_n_train_, probs.shape[1], dtype=torch.float64
            )
        index = torch.as_tensor(index, dtype=torch.long).cpu()
        epoch = self.tidal_epochs_
        previous = self.tidal_dynamics_[index]
        updated = (previous * epoch + probs.double().cpu()) / (epoch + 1)
        self.tidal_dynamics_[index] = updated
        return updated.to(probs.device)


class TiDALNetClassifier(TiDALMixin, NeuralNetClassifier):
    """skorch's ``NeuralNetClassifier`` with :class:`TiDALMixin`: ready for TiDALSampler.

    See :class:`TiDALMixin` for the ``tidal_*`` parameters; every other parameter is
    ``NeuralNetClassifier``'s.

    References
    ----------
    .. [1] S. M. Kye, K. Choi, H. Byun and B. Chang, "TiDAL: Learning Training Dynamics for
       Active Learning", ICCV 2023.

    Examples
    --------
    >>> import torch
    >>> from skdynal import TiDALNetClassifier
    >>> net = TiDALNetClassifier(
    ...     torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.ReLU(), torch.nn.Linear(8, 3)),
    ...     criterion=torch.nn.CrossEntropyLoss, tidal_width=16, train_split=None, verbose=0,
    ... )
    >>> net.tidal_width
    16
    """


# --- stage features ----------------------------------------------------------------------


def resolve_stages(module, stages):
    """Return ``[(name, submodule, "input" | "output"), ...]`` for a stage specification.

    See ``tidal_stages`` of :class:`TiDALMixin`.
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


# --- the query strategy ------------------------------------------------------------------


class TiDALSampler(BaseScoringStrategy):
    """Query strategy of TiDAL (Kye et al., ICCV 2023).

    The net must be trained with :class:`TiDALMixin` (for example a
    :class:`TiDALNetClassifier`): during training its prediction module ``h`` learns to
    predict each labeled sample's training dynamics, the running mean over epochs of the
    backbone's softmax output. Each pool sample is scored by the uncertainty of the
    predicted dynamics ``p~ = softmax(h(x))`` (module and backbone in ``eval()`` mode):

    - ``"entropy"`` (the paper's default): ``-sum_k p~_k log p~_k``;
    - ``"margin"``: ``-(p~_yhat - max_{k != yhat} p~_k)`` with ``yhat`` the backbone's
      predicted class, as the official code's margin option (a small margin is uncertain).

    The ``n_instances`` largest scores are queried. The labeled set is not needed.

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

    #: The common contract test (tests/test_common.py) queries with nets of this class.
    _test_net_params: ClassVar[dict] = {"net_class": TiDALNetClassifier}

    def __init__(self, uncertainty="entropy", batch_size=None, random_state=None):
        self.uncertainty = uncertainty
        self.batch_size = batch_size
        self.random_state = random_state

    def _score(self, adapter, X_pool):
        if self.uncertainty not in _UNCERTAINTIES:
            raise ValueError(
                f"uncertainty must be one of {list(_UNCERTAINTIES)}, got {self.uncertainty!r}."
            )
        batch_size = check_batch_size(self.batch_size)
        net = adapter.net
        head = _check_tidal_net(net)
        module = adapter.module
        stages = resolve_stages(module, net.tidal_stages)
        scores = np.empty(len(X_pool), dtype=np.float64)
        start = 0
        with eval_mode(module), eval_mode(head), torch.no_grad():
            for X_batch, _ in adapter.iterate(X_pool, batch_size=batch_size):
                n = _batch_len(X_batch)
                with explain_shape_errors(X_pool, module):
                    with capture_stage_features(module, stages) as features:
                        y_pred = adapter.forward(X_batch)
                    probs = backbone_probabilities(net, y_pred)
                    predicted = torch.softmax(head(features, probs.shape[1]), dim=1).double()
                scores[start : start + n] = (
                    _uncertainty(predicted, probs.argmax(dim=1), self.uncertainty).cpu().numpy()
                )
                start += n
        return scores


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
    return head


#: The net class the experiment runner builds for this strategy.
TiDALSampler._required_net_class = TiDALNetClassifier
