"""TiDAL's net mixin: records each training row's dynamics and trains the prediction module."""

import math
import numbers

import torch
import torch.nn.functional as F
from skorch import NeuralNetClassifier
from skorch.dataset import unpack_data

from .._validation import check_positive_int
from ._tidal_module import (
    TiDALHead,
    backbone_probabilities,
    capture_stage_features,
    resolve_stages,
)

__all__ = ["TiDALMixin", "TiDALNetClassifier"]

#: Keys of the ``X`` part of a TiDAL training batch: the rows as skorch would batch them,
#: and their positions in the training dataset.
ROWS = "X"
ROW_INDEX = "row_index"


class _RowIndexedDataset(torch.utils.data.Dataset):
    """Items ``({"X": X_i, "row_index": i}, y_i)``: each row's position rides in the batch."""

    def __init__(self, dataset):
        self.dataset = dataset

    def __len__(self):
        return len(self.dataset)

    def __getitem__(self, i):
        Xi, yi = unpack_data(self.dataset[i])
        return {ROWS: Xi, ROW_INDEX: i}, yi


def _split_row_index(X_batch):
    """``(rows, row_index)`` of a TiDAL training batch's ``X``; ``ValueError`` for others."""
    if not (isinstance(X_batch, dict) and set(X_batch) == {ROWS, ROW_INDEX}):
        raise ValueError(
            "TiDALMixin records training dynamics per row, so training batches must come "
            "from its own get_iterator, which puts each batch's row indices in the batch (a "
            "subclass that overrides get_iterator must call super().get_iterator for "
            "training data)."
        )
    return X_batch[ROWS], torch.as_tensor(X_batch[ROW_INDEX], dtype=torch.long).cpu()


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
    2. trains the prediction module ``tidal_module_`` (a
       :class:`~skdynal.strategies._tidal_module.TiDALHead` on the global-average-pooled
       outputs of ``tidal_stages``) jointly with the backbone on

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

    Each training batch carries its rows' positions in the training dataset: its ``X`` is
    the dict ``{"X": rows, "row_index": positions}`` (``rows`` as skorch would batch them),
    which the training step unpacks before calling the module. Callbacks see these batches
    too (``batch[0]["X"]`` are the rows); prediction and validation batches are unchanged.

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
    tidal_recorded_epoch_ : torch.Tensor of shape (n_train,)
        The epoch of the last ``fit`` in which each row was last recorded (``-1``: never).
        A row's mean is updated at most once per epoch, so an optimizer that evaluates a
        batch more than once (``torch.optim.LBFGS``) records it once.
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
        """As skorch's; each training batch carries its rows' positions in ``dataset``.

        The training loader's ``X`` batches are ``{"X": rows, "row_index": positions}``
        (see the class description); other loaders are skorch's own.
        """
        if not training:
            return super().get_iterator(dataset, training=False)
        self.tidal_n_train_ = len(dataset)
        return super().get_iterator(_RowIndexedDataset(dataset), training=True)

    def fit_loop(self, X, y=None, epochs=None, **fit_params):
        """Reset the recorded dynamics, then run skorch's fit loop."""
        self.tidal_dynamics_ = None
        self.tidal_recorded_epoch_ = None
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
        Xi, yi = unpack_data(batch)
        Xi, index = _split_row_index(Xi)
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
        target = self._record_dynamics(index, probs)
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
        """Update the running means of the rows ``index`` not yet recorded this epoch.

        Returns the rows' running means (detached, on ``probs``' device).
        """
        if self.tidal_dynamics_ is None:
            n_train = self.tidal_n_train_
            self.tidal_dynamics_ = torch.zeros(n_train, probs.shape[1], dtype=torch.float64)
            self.tidal_recorded_epoch_ = torch.full((n_train,), -1, dtype=torch.long)
        epoch = self.tidal_epochs_
        previous = self.tidal_dynamics_[index]
        fresh = (self.tidal_recorded_epoch_[index] < epoch)[:, None]
        updated = (previous * epoch + probs.double().cpu()) / (epoch + 1)
        updated = torch.where(fresh, updated, previous)
        self.tidal_dynamics_[index] = updated
        self.tidal_recorded_epoch_[index] = epoch
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
