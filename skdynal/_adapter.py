"""One place that turns a modAL learner or a skorch net into what scoring needs."""

import contextlib
import copy
import warnings
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from sklearn.exceptions import NotFittedError
from skorch import NeuralNet, NeuralNetBinaryClassifier, NeuralNetClassifier
from skorch.exceptions import NotInitializedError
from skorch.utils import to_tensor

from ._forward import forward
from ._validation import n_rows, row_shape

__all__ = ["NetAdapter", "eval_mode", "explain_shape_errors", "resolve_learner"]


@contextlib.contextmanager
def eval_mode(module):
    """Put ``module`` in ``eval()`` mode and restore every submodule's mode afterwards."""
    modes = [(m, m.training) for m in module.modules()]
    module.eval()
    try:
        yield module
    finally:
        for m, training in modes:
            m.training = training


@dataclass
class NetAdapter:
    """A fitted skorch net with the labeled set it was trained on.

    Scoring code goes through this object only, so that any skorch net works: the dataset,
    the iterator, the loss and the device all come from skorch's own hooks
    (``get_dataset``, ``iterator_valid``, ``get_loss``, ``device``).

    Attributes
    ----------
    net : skorch.NeuralNet
        The fitted net. Its module is read, never modified.
    X_labeled, y_labeled : array-like or None
        The labeled set (``None`` when the caller gave none).
    """

    net: NeuralNet
    X_labeled: Any = None
    y_labeled: Any = None

    @property
    def module(self):
        """The fitted ``torch.nn.Module`` (``net.module_``)."""
        return self.net.module_

    @property
    def device(self):
        """The device the module's parameters live on."""
        for p in self.module.parameters():
            return p.device
        return torch.device(self.net.device)

    @property
    def dtype(self):
        """The floating dtype of the module's parameters (inputs are cast to it)."""
        for p in self.module.parameters():
            if p.is_floating_point():
                return p.dtype
        return torch.get_default_dtype()

    @property
    def has_labeled(self):
        """Whether a non-empty labeled set is available."""
        return (
            self.X_labeled is not None and self.y_labeled is not None and len(self.y_labeled) > 0
        )

    def to_device(self, X):
        """Move a batch to the module's device, casting floating tensors to its dtype."""
        X = to_tensor(X, device=self.device)
        if isinstance(X, dict):
            return {k: self._cast(v) for k, v in X.items()}
        return self._cast(X)

    def _cast(self, tensor):
        if torch.is_tensor(tensor) and tensor.is_floating_point() and tensor.dtype != self.dtype:
            cast = tensor.to(self.dtype)
            if (
                torch.finfo(tensor.dtype).max > torch.finfo(self.dtype).max
                and not bool(torch.isfinite(cast).all())
                and bool(torch.isfinite(tensor).all())
            ):
                # Arrays are checked before scoring; this catches rows of a Dataset.
                name = str(self.dtype).replace("torch.", "")
                raise ValueError(
                    f"A batch of the input overflows {name} when cast to the module's dtype "
                    f"(largest absolute value {float(tensor.abs().max()):.3g}). Scale the "
                    "features as for training."
                )
            return cast
        return tensor

    @property
    def is_binary(self):
        """Whether the net is skorch's ``NeuralNetBinaryClassifier`` (one logit per sample)."""
        return isinstance(self.net, NeuralNetBinaryClassifier)

    def forward_first(self, out):
        """The first element of a (possibly tuple) module output, as ``forward`` returns."""
        return self._first_output(out)

    def _first_output(self, out):
        out = out[0] if isinstance(out, tuple) else out
        if self.is_binary and out.dim() == 2 and out.shape[1] == 1:
            out = out.reshape(-1)  # as NeuralNetBinaryClassifier.infer does
        return out

    def _loss_input(self, out):
        """What the net's ``get_loss`` receives: the whole output when it unpacks a tuple."""
        if isinstance(out, tuple) and _overrides_get_loss(self.net):
            return (self._first_output(out), *out[1:])
        return self._first_output(out)

    def predicted_labels(self, y_pred):
        """The class the net predicts from module output ``y_pred`` (its ``predict``).

        ``argmax`` over the outputs, or for a ``NeuralNetBinaryClassifier`` (a single logit)
        ``sigmoid(logit) > threshold`` as a float target, which its loss expects.
        """
        y_pred = self._first_output(y_pred).detach()
        if self.is_binary:
            probability = self.net._get_predict_nonlinearity()(y_pred)
            if probability.dim() == 2:
                probability = probability[:, -1]
            return (probability > self.net.threshold).to(y_pred.dtype)
        return y_pred.argmax(dim=-1)

    def iterate(self, X, y=None, batch_size=None):
        """Yield batches ``(X_batch, y_batch)`` on the module's device, in order.

        Uses the net's ``get_dataset`` and its validation iterator (no shuffling), with
        ``batch_size`` overriding the net's when given. ``y_batch`` is ``None`` when ``y`` is.
        """
        dataset = self.net.get_dataset(X, y)
        kwargs = self.net.get_params_for("iterator_valid")
        kwargs["batch_size"] = self.batch_size_for(batch_size, len(dataset))
        kwargs["shuffle"] = False
        if _is_data_loader(self.net.iterator_valid) and "generator" not in kwargs:
            # DataLoader draws a base seed even without shuffling; a private generator keeps
            # scoring from moving torch's global random state (and so the next training run).
            kwargs["generator"] = torch.Generator()
        batches = iter(self.net.iterator_valid(dataset, **kwargs))
        while True:
            with warnings.catch_warnings():
                # A read-only pool (np.load(..., mmap_mode="r")) is only ever read; torch's
                # warning about tensors on non-writable arrays would only alarm the user.
                warnings.filterwarnings("ignore", message="The given NumPy array is not writable")
                batch = next(batches, None)
            if batch is None:
                return
            X_batch, y_batch = batch
            yield self.to_device(X_batch), (None if y is None else to_tensor(y_batch, self.device))

    def check_labels(self):
        """``ValueError`` if an integer label of the labeled set is not one of the outputs.

        The module's output width is read off one forward pass on the first labeled row
        (in ``eval()`` mode, without gradients); a ``NeuralNetBinaryClassifier`` is skipped.
        """
        y = self.y_labeled
        y = y if torch.is_tensor(y) else torch.as_tensor(np.asarray(y))
        if self.is_binary or y.dim() != 1 or y.dtype.is_floating_point or y.dtype == torch.bool:
            return
        with eval_mode(self.module), torch.no_grad():
            for X_batch, _ in self.iterate(self.X_labeled, batch_size=1):
                out = self.forward(X_batch)
                break
        _check_label_range(y, out)

    def batch_size_for(self, batch_size, n_rows):
        """Rows per batch when streaming ``n_rows`` rows: the one batch-size rule.

        ``batch_size`` when given, else the net's validation batch size
        (``iterator_valid__batch_size``), else its ``batch_size``; ``None`` or ``-1`` (skorch's
        "everything at once") means ``n_rows``.
        """
        size = batch_size or self.net.get_params_for("iterator_valid").get(
            "batch_size", self.net.batch_size
        )
        return max(1, int(n_rows)) if size in (None, -1) else int(size)

    def forward(self, X_batch):
        """Module output on a batch (grad mode is the caller's); a tuple's first element."""
        return self._first_output(forward(self.module, X_batch))

    def forward_raw(self, X_batch):
        """The module's whole output on a batch, a tuple included (for the net's losses)."""
        return forward(self.module, X_batch)

    def per_sample_loss(self, check_labels=True):
        """Return ``loss_fn(y_pred, y_true) -> (B,)``: the net's own loss, one value per sample.

        The net's ``get_loss`` is called on a shallow view of the net whose criterion has
        ``reduction='none'``, so skorch's own transformations apply (for example the log that
        ``NeuralNetClassifier`` takes of probabilities before ``NLLLoss``) and the net itself
        is left untouched. With ``check_labels``, integer labels outside the module's outputs
        raise a ``ValueError`` (off for pseudo labels, which are in range by construction
        and may be traced by ``torch.func``).
        """
        criterion = getattr(self.net, "criterion_", None)
        if criterion is None or not hasattr(criterion, "reduction"):
            raise TypeError(
                f"The net's criterion {type(criterion).__name__} has no 'reduction' attribute; "
                "skdynal needs per-sample losses. Use a torch loss such as "
                "torch.nn.CrossEntropyLoss or torch.nn.NLLLoss."
            )
        per_sample = copy.copy(criterion)
        per_sample.reduction = "none"
        view = object.__new__(type(self.net))
        view.__dict__.update(self.net.__dict__)
        view.__dict__["criterion_"] = per_sample

        def loss_fn(y_pred, y_true):
            first = self._first_output(y_pred)
            if self.is_binary:
                y_true = y_true.to(first.dtype)
            elif check_labels:
                _check_label_range(y_true, first)
            loss = view.get_loss(self._loss_input(y_pred), y_true, X=None, training=False)
            if loss.dim() != 1 or loss.shape[0] != first.shape[0]:
                raise ValueError(
                    f"The net's loss returned shape {tuple(loss.shape)} with "
                    f"reduction='none'; expected one value per sample "
                    f"({first.shape[0]},)."
                )
            return loss

        return loss_fn

    def pseudo_label_loss(self):
        """Return ``loss_fn(y_pred, ignored) -> (B,)`` at the pseudo labels the net predicts.

        The pseudo label is ``argmax y_pred``, or for a ``NeuralNetBinaryClassifier``
        ``sigmoid(y_pred) > threshold`` (see :meth:`predicted_labels`).
        """
        loss_fn = self.per_sample_loss(check_labels=False)

        def pseudo_loss(y_pred, _targets=None):
            return loss_fn(y_pred, self.predicted_labels(y_pred))

        return pseudo_loss


_SKORCH_GET_LOSS = {
    NeuralNet.get_loss,
    NeuralNetClassifier.get_loss,
    NeuralNetBinaryClassifier.get_loss,
}


def _overrides_get_loss(net):
    """Whether the net's class defines its own ``get_loss`` (which may unpack a tuple)."""
    return type(net).get_loss not in _SKORCH_GET_LOSS


def _check_label_range(y_true, y_pred):
    """``ValueError`` (not torch's ``IndexError``) for class indices outside the outputs."""
    if not (torch.is_tensor(y_true) and y_pred.dim() == 2 and y_true.dim() == 1):
        return
    if y_true.dtype.is_floating_point or y_true.dtype == torch.bool or not len(y_true):
        return
    n_outputs = y_pred.shape[1]
    try:
        low, high = int(y_true.min()), int(y_true.max())
    except RuntimeError:
        # Inside torch.func transforms (vmap, grad) a tensor has no item(); the labels were
        # checked on the way in.
        return
    if low < 0 or high >= n_outputs:
        bad = low if low < 0 else high
        raise ValueError(
            f"The labeled set holds the label {bad}, outside the module's {n_outputs} "
            f"outputs (class indices 0 to {n_outputs - 1}). Encode the labels as class "
            "indices, or give the module one output per class."
        )


def _encode_labels(net, y):
    """Class indices for labels given by name, through the net's ``classes``."""
    y = np.asarray(y)
    if y.dtype.kind not in "USO":
        return y
    classes = getattr(net, "classes", None)
    if classes is None or not len(classes):
        raise ValueError(
            f"The labels are not numbers (dtype {y.dtype}) and the net has no 'classes': "
            "skorch trains on class indices. Pass classes=[...] to the net (label i is "
            "classes[i]) or encode the labels as integers."
        )
    index = {label: i for i, label in enumerate(np.asarray(classes).tolist())}
    unknown = [label for label in np.unique(y).tolist() if label not in index]
    if unknown:
        raise ValueError(
            f"The labels {unknown[:5]} are not in the net's classes {list(index)[:20]}."
        )
    return np.array([index[label] for label in y.tolist()], dtype=np.int64)


def _is_data_loader(iterator):
    return isinstance(iterator, type) and issubclass(iterator, torch.utils.data.DataLoader)


def resolve_learner(learner, X_labeled=None, y_labeled=None):
    """Build a :class:`NetAdapter` from a modAL learner or a bare fitted skorch net.

    Parameters
    ----------
    learner : modAL learner or skorch.NeuralNet
        A modAL ``ActiveLearner`` (or any object with ``estimator``, ``X_training`` and
        ``y_training``) whose estimator is a fitted skorch net, or the fitted net itself.
    X_labeled, y_labeled : array-like, default=None
        The labeled set. Required with a bare net when the strategy needs it; with a modAL
        learner they override ``learner.X_training`` / ``learner.y_training``.

    Returns
    -------
    adapter : NetAdapter
    """
    if isinstance(learner, NeuralNet):
        net, X_train, y_train = learner, None, None
    elif hasattr(learner, "estimator"):
        net = learner.estimator
        X_train = getattr(learner, "X_training", None)
        y_train = getattr(learner, "y_training", None)
    else:
        raise TypeError(
            "Expected a modAL learner (with an 'estimator' attribute) or a fitted skorch "
            f"NeuralNet, got {type(learner).__name__}."
        )
    if not isinstance(net, NeuralNet):
        raise TypeError(
            "skdynal scores neural networks through skorch: the estimator must be a "
            f"skorch NeuralNet (for example NeuralNetClassifier), got {type(net).__name__}."
        )
    try:
        net.check_is_fitted()
    except NotInitializedError as exc:
        raise NotFittedError(
            f"This {type(net).__name__} is not fitted yet: fit it (or give the ActiveLearner "
            "initial X_training and y_training) before querying."
        ) from exc
    if (X_labeled is None) != (y_labeled is None):
        raise ValueError("Pass both X_labeled and y_labeled, or neither.")
    if X_labeled is not None:
        X_train, y_train = X_labeled, y_labeled
    if y_train is not None and n_rows(X_train) != len(y_train):
        raise ValueError(
            f"The labeled set has {n_rows(X_train)} inputs but {len(y_train)} labels."
        )
    if y_train is not None and not torch.is_tensor(y_train):
        y_train = _encode_labels(net, y_train)
    return NetAdapter(net=net, X_labeled=X_train, y_labeled=y_train)


@contextlib.contextmanager
def explain_shape_errors(X_pool, module):
    """Turn the module's failure on pool rows into a ``ValueError`` naming the shapes."""
    try:
        yield
    except RuntimeError as exc:
        message = str(exc)
        if "out of memory" in message.lower() or isinstance(exc, NotImplementedError):
            raise
        raise ValueError(
            f"The module {type(module).__name__} failed on pool rows of shape "
            f"{row_shape(X_pool)}; "
            f"check that X_pool has the feature shape and dtype the net was trained on. "
            f"The module said: {message}"
        ) from exc
