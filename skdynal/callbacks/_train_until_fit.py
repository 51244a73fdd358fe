"""Train each active learning round until the labeled data is fitted."""

import numbers
from typing import ClassVar

import numpy as np
import torch
from skorch.callbacks import Callback
from skorch.dataset import unpack_data

from .._checks import (
    InvalidParameterError,
    StrictInterval,
    StrOptions,
    validate_parameter_constraints,
)

__all__ = ["StopTraining", "TrainUntilFit"]


class StopTraining(KeyboardInterrupt):
    """Raised by :class:`TrainUntilFit` to end training.

    skorch ends ``fit``/``partial_fit`` on a ``KeyboardInterrupt`` (its own
    ``EarlyStopping`` raises one); this subclass lets a caller tell a planned stop from a
    real Ctrl-C.
    """


class TrainUntilFit(Callback):
    """End training once the training accuracy has stayed at or above a threshold.

    The dynamicAL paper trains every round "until convergence"; its official code trains
    at least a minimum number of epochs and then until the accuracy on the labeled set has
    stayed at or above 0.97 for more than 10 epochs [1]_. This callback does that within
    each ``fit``/``partial_fit`` call (so once per active learning round with modAL's
    ``teach`` and ``warm_start=True``), between ``min_epochs`` and ``max_epochs`` epochs of
    that call. It only ever looks at the data the net is fitted on, never at test data.

    The accuracy of an epoch is, with ``accuracy="running"`` (the official code's choice,
    free), the fraction of training samples whose prediction during that epoch's training
    steps was right; with ``accuracy="eval"``, the accuracy of the net at the end of the
    epoch, in ``eval()`` mode, on the whole training set (one more forward pass per epoch).
    It is recorded in the net's history as ``train_acc`` and the current streak of epochs
    at or above the threshold as ``fit_streak``.

    Training stops by raising :class:`StopTraining`, a ``KeyboardInterrupt`` that skorch
    catches (the way its own ``EarlyStopping`` works), so it combines with
    ``EarlyStopping``: whichever fires first ends the round. Every fit call is recorded in
    ``epochs_`` and ``fitted_``, whoever ended it (this callback, ``EarlyStopping``, the
    net's ``max_epochs`` or ``partial_fit(epochs=...)``).

    A sample counts as right when the net's own prediction rule gives its label: ``argmax``
    over the outputs, or for a ``NeuralNetBinaryClassifier`` ``sigmoid(logit) >
    threshold`` with the net's ``threshold``.

    Parameters
    ----------
    threshold : float, default=0.97
        Training accuracy in ``(0, 1]`` that counts as fitted.
    patience : int, default=10
        Consecutive epochs at or above ``threshold`` after which training stops (the
        official code's "more than 10 epochs" is ``patience=11``).
    min_epochs : int, default=1
        Epochs always trained in a fit call before stopping is considered.
    max_epochs : int or None, default=None
        Epochs after which a fit call stops even if the threshold is never reached. None
        uses the net's ``max_epochs``; a larger value than the net's is an error, since
        skorch never runs more than ``max_epochs`` epochs.
    accuracy : {"running", "eval"}, default="running"
        How the epoch's training accuracy is measured (see above).

    Attributes
    ----------
    epochs_ : list of int
        Epochs trained in each fit call so far (every call, whoever ended it).
    fitted_ : list of bool
        For each fit call, whether the threshold was met (``patience`` epochs at or above
        it after ``min_epochs``) when the call ended.

    References
    ----------
    .. [1] H. Wang, W. Huang, Z. Wu, A. Margenot, H. Tong and J. He, "Deep Active Learning
       by Leveraging Training Dynamics", NeurIPS 2022.

    Examples
    --------
    >>> import numpy as np, torch
    >>> from skorch import NeuralNetClassifier
    >>> from skdynal.callbacks import TrainUntilFit
    >>> X = np.random.RandomState(0).randn(64, 2).astype("float32")
    >>> y = (X[:, 0] > 0).astype("int64")
    >>> net = NeuralNetClassifier(torch.nn.Linear, module__in_features=2,
    ...                           module__out_features=2, criterion=torch.nn.CrossEntropyLoss,
    ...                           max_epochs=200, lr=0.5, train_split=None, verbose=0,
    ...                           callbacks=[TrainUntilFit(threshold=0.95, patience=3)])
    >>> _ = net.fit(X, y)
    >>> len(net.history) < 200
    True
    """

    #: Constraints on every parameter, checked once per fit by :meth:`check_params`.
    _parameter_constraints: ClassVar[dict] = {
        "threshold": [StrictInterval(numbers.Real, 0, 1, closed="right")],
        "patience": [StrictInterval(numbers.Integral, 1, None, closed="left")],
        "min_epochs": [StrictInterval(numbers.Integral, 0, None, closed="left")],
        "max_epochs": [StrictInterval(numbers.Integral, 1, None, closed="left"), None],
        "accuracy": [StrOptions({"running", "eval"})],
    }

    def __init__(
        self, threshold=0.97, patience=10, min_epochs=1, max_epochs=None, accuracy="running"
    ):
        self.threshold = threshold
        self.patience = patience
        self.min_epochs = min_epochs
        self.max_epochs = max_epochs
        self.accuracy = accuracy

    def check_params(self):
        """Check the parameters against ``_parameter_constraints``; return ``self``.

        Raises
        ------
        InvalidParameterError
            (a ``ValueError`` and a ``TypeError``) naming the first bad parameter, or
            ``max_epochs`` below ``max(1, min_epochs)``.
        """
        params = {name: getattr(self, name) for name in self._parameter_constraints}
        validate_parameter_constraints(
            self._parameter_constraints, params, caller_name=type(self).__name__
        )
        if self.max_epochs is not None and self.max_epochs < max(1, self.min_epochs):
            raise InvalidParameterError(
                f"max_epochs must be None or an integer >= max(1, min_epochs="
                f"{self.min_epochs}), got {self.max_epochs!r}."
            )
        return self

    def initialize(self):
        self.check_params()
        self.epochs_ = []
        self.fitted_ = []
        self._reset_fit()
        return self

    def _reset_fit(self):
        self._epoch = 0
        self._streak = 0
        self._correct = 0
        self._seen = 0
        self._fitted = False
        self._in_fit = False

    def on_train_begin(self, net, X=None, y=None, **kwargs):
        if self.max_epochs is not None and self.max_epochs > net.max_epochs:
            raise InvalidParameterError(
                f"TrainUntilFit(max_epochs={self.max_epochs}) exceeds the net's "
                f"max_epochs={net.max_epochs}; skorch never trains more than the net's "
                "max_epochs, so raise the net's max_epochs (or leave TrainUntilFit's "
                "max_epochs at None)."
            )
        self._reset_fit()
        self._in_fit = True
        self._history_start = len(net.history)

    def on_train_end(self, net, X=None, y=None, **kwargs):
        # skorch calls this after every fit/partial_fit, however training ended
        # (StopTraining, EarlyStopping's KeyboardInterrupt, max_epochs, partial_fit's epochs).
        if self._in_fit:
            # from the history: a callback listed before this one may end the fit in an
            # epoch whose on_epoch_end this callback never saw
            self.epochs_.append(len(net.history) - self._history_start)
            self.fitted_.append(self._fitted)
            self._in_fit = False

    def on_epoch_begin(self, net, **kwargs):
        self._correct = 0
        self._seen = 0

    def on_batch_end(self, net, batch=None, training=None, y_pred=None, **kwargs):
        if not training or self.accuracy != "running":
            return
        _, y_true = unpack_data(batch)
        if y_true is None:
            raise ValueError("TrainUntilFit needs labels: the training batches carry no y.")
        predicted = _predicted_classes(net, y_pred).reshape(-1)
        y_true = torch.as_tensor(y_true, device=predicted.device).reshape(-1)
        self._correct += int((predicted == y_true.to(predicted.dtype)).sum())
        self._seen += len(y_true)

    def on_epoch_end(self, net, dataset_train=None, **kwargs):
        self._epoch += 1
        if self.accuracy == "eval":
            accuracy = _eval_accuracy(net, dataset_train)
        else:
            accuracy = self._correct / self._seen if self._seen else 0.0
        self._streak = self._streak + 1 if accuracy >= self.threshold else 0
        net.history.record("train_acc", float(accuracy))
        net.history.record("fit_streak", self._streak)
        fitted = self._epoch >= self.min_epochs and self._streak >= self.patience
        self._fitted = bool(fitted)
        at_max = self.max_epochs is not None and self._epoch >= self.max_epochs
        at_net_max = self._epoch >= net.max_epochs
        if (fitted or at_max) and not at_net_max:
            raise StopTraining()


def _predicted_classes(net, y_pred):
    """The classes ``net.predict`` gives for module output ``y_pred``."""
    from .._adapter import NetAdapter

    if isinstance(y_pred, list):
        y_pred = tuple(y_pred)
    return NetAdapter(net).predicted_labels(y_pred)


def _eval_accuracy(net, dataset):
    correct = seen = 0
    for batch in net.get_iterator(dataset, training=False):
        _, y_true = unpack_data(batch)
        with torch.no_grad():
            y_pred = net.evaluation_step(batch, training=False)
        predicted = _predicted_classes(net, y_pred).cpu().reshape(-1)
        y_true = torch.as_tensor(np.asarray(y_true)).reshape(-1)
        correct += int((predicted == y_true.to(predicted.dtype)).sum())
        seen += len(y_true)
    return correct / seen if seen else 0.0
