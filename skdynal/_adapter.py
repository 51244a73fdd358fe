"""One place that turns a modAL learner or a skorch net into what scoring needs."""

import contextlib
import copy
import warnings
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from sklearn.exceptions import NotFittedError
from skorch import NeuralNet
from skorch.exceptions import NotInitializedError
from skorch.utils import to_tensor

from ._validation import row_shape
from .gradients import forward

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
        return self.X_labeled is not None and self.y_labeled is not None and len(
            self.y_labeled
        ) > 0

    def to_device(self, X):
        """Move a batch to the module's device, casting floating tensors to its dtype."""
        X = to_tensor(X, device=self.device)
        if isinstance(X, dict):
            return {k: self._cast(v) for k, v in X.items()}
        return self._cast(X)

    def _cast(self, tensor):
        if torch.is_tensor(tensor) and tensor.is_floating_point() and tensor.dtype != self.dtype:
            return tensor.to(self.dtype)
        return tensor

    def iterate(self, X, y=None, batch_size=None):
        """Yield batches ``(X_batch, y_batch)`` on the module's device, in order.

        Uses the net's ``get_dataset`` and its validation iterator (no shuffling), with
        ``batch_size`` overriding the net's when given. ``y_batch`` is ``None`` when ``y`` is.
        """
        dataset = self.net.get_dataset(X, y)
        kwargs = self.net.get_params_for("iterator_valid")
        kwargs["batch_size"] = batch_size or kwargs.get("batch_size", self.net.batch_size)
        if kwargs["batch_size"] == -1:
            kwargs["batch_size"] = len(dataset)
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

    def n_batches(self, n_samples, batch_size=None):
        """Number of batches :meth:`iterate` yields for ``n_samples`` rows."""
        size = batch_size or self.net.get_params_for("iterator_valid").get(
            "batch_size", self.net.batch_size
        )
        size = n_samples if size == -1 else size
        return -(-n_samples // size)

    def forward(self, X_batch):
        """Module output on a batch (grad mode is the caller's)."""
        out = forward(self.module, X_batch)
        if isinstance(out, tuple):
            out = out[0]
        return out

    def per_sample_loss(self):
        """Return ``loss_fn(y_pred, y_true) -> (B,)``: the net's own loss, one value per sample.

        The net's ``get_loss`` is called on a shallow view of the net whose criterion has
        ``reduction='none'``, so skorch's own transformations apply (for example the log that
        ``NeuralNetClassifier`` takes of probabilities before ``NLLLoss``) and the net itself
        is left untouched.
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
            loss = view.get_loss(y_pred, y_true, X=None, training=False)
            if loss.dim() != 1 or loss.shape[0] != y_pred.shape[0]:
                raise ValueError(
                    f"The net's loss returned shape {tuple(loss.shape)} with "
                    f"reduction='none'; expected one value per sample "
                    f"({y_pred.shape[0]},)."
                )
            return loss

        return loss_fn

    def pseudo_label_loss(self):
        """Return ``loss_fn(y_pred, ignored) -> (B,)`` with pseudo labels ``argmax y_pred``."""
        loss_fn = self.per_sample_loss()

        def pseudo_loss(y_pred, _targets=None):
            return loss_fn(y_pred, y_pred.detach().argmax(dim=-1))

        return pseudo_loss


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
    if y_train is not None and len(X_train) != len(y_train):
        raise ValueError(
            f"The labeled set has {len(X_train)} inputs but {len(y_train)} labels."
        )
    if y_train is not None:
        y_train = np.asarray(y_train) if not torch.is_tensor(y_train) else y_train
    return NetAdapter(net=net, X_labeled=X_train, y_labeled=y_train)


@contextlib.contextmanager
def explain_shape_errors(X_pool, module):
    """Turn the module's failure on pool rows into a ``ValueError`` naming the shapes."""
    try:
        yield
    except RuntimeError as exc:
        message = str(exc)
        if "out of memory" in message.lower():
            raise
        raise ValueError(
            f"The module {type(module).__name__} failed on pool rows of shape "
            f"{row_shape(X_pool)}; "
            f"check that X_pool has the feature shape and dtype the net was trained on. "
            f"The module said: {message}"
        ) from exc
