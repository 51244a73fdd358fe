"""A read-only functional view of a fitted net, in a chosen dtype.

Every diagnostic (:mod:`skdynal.diagnostics`) and the NTK look-ahead strategy differentiate the
network's outputs or losses with respect to its trainable parameters. This module, shared by
both packages, builds detached copies of the parameters and buffers (cast to the
computation dtype, float64 by default) and calls the module through
:func:`torch.func.functional_call`, so the fitted net's parameters, ``.grad`` attributes and
dtype are never touched. Callers wrap their work in :func:`skdynal._adapter.eval_mode`.
"""

import copy
import itertools

import numpy as np
import torch
from torch.func import functional_call, grad, jacrev, vmap
from torch.utils._pytree import tree_map

from ._adapter import resolve_learner
from .gradients import trainable_parameters

__all__ = [
    "FunctionalNet",
    "check_dtype",
    "functional_net",
    "n_rows",
    "one_hot_targets",
]


class FunctionalNet:
    """Detached, dtype-cast parameters of a fitted module and functional calls into it.

    Parameters
    ----------
    adapter : skdynal._adapter.NetAdapter
        The resolved net.
    dtype : torch.dtype
        Floating dtype of the computation; parameters, floating buffers and floating inputs
        are cast copies.
    """

    def __init__(self, adapter, dtype):
        self.adapter = adapter
        self.dtype = dtype
        module = adapter.module
        trainable = trainable_parameters(module)
        if not trainable:
            raise ValueError(
                f"The module {type(module).__name__} has no trainable parameters; the "
                "neural tangent kernel and the training dynamics are not defined."
            )
        self.names = list(trainable)
        self.params = {name: self._cast(p.detach()) for name, p in trainable.items()}
        self.constants = {
            name: self._cast(p.detach())
            for name, p in module.named_parameters()
            if name not in trainable
        }
        self.constants.update({name: self._cast(b) for name, b in module.named_buffers()})
        self.n_params = sum(p.numel() for p in self.params.values())

    def module_in_dtype(self):
        """The module itself when it already computes in ``dtype``, else a cast deep copy.

        For the hook-based computations (:func:`skdynal.gradients.jacobian_factors`), which
        need a real module rather than a functional call. The copy keeps the module's mode
        and which parameters are trainable; the fitted module is never modified.
        """
        module = self.adapter.module
        tensors = itertools.chain(module.parameters(), module.buffers())
        if all(t.dtype == self.dtype for t in tensors if t.is_floating_point()):
            return module
        return copy.deepcopy(module).to(self.dtype)

    def _cast(self, tensor):
        if torch.is_tensor(tensor) and tensor.is_floating_point():
            return tensor.to(self.dtype)
        return tensor

    def batches(self, X, y=None, batch_size=None):
        """Yield ``(X_batch, y_batch)`` through the net's own iterator, inputs cast."""
        for X_batch, y_batch in self.adapter.iterate(X, y, batch_size):
            yield tree_map(self._cast, X_batch), y_batch

    def __call__(self, params, X_batch):
        """Module outputs on a batch, shape ``(B, K)``, with ``params`` as trainable weights."""
        module = self.adapter.module
        tensors = (params, self.constants)
        if isinstance(X_batch, dict):
            out = functional_call(module, tensors, args=(), kwargs=X_batch)
        else:
            out = functional_call(module, tensors, (X_batch,))
        if isinstance(out, tuple):
            out = out[0]
        if out.dim() != 2:
            raise ValueError(
                f"The diagnostics need module outputs of shape (n_samples, n_outputs); the "
                f"module {type(module).__name__} returned shape {tuple(out.shape)}."
            )
        return out

    def n_outputs(self, X):
        """Number of outputs K of the module, from a forward pass on the first batch of X."""
        for X_batch, _ in self.batches(_first_row(X), batch_size=1):
            with torch.no_grad():
                return self(self.params, X_batch).shape[1]
        raise ValueError("Cannot determine the number of outputs from an empty input.")

    def jacobians(self, X_batch):
        """Per-sample Jacobians of the outputs, flattened: shape ``(B, K, P)``.

        Row ``[i, k]`` is ``d f_k(x_i) / d theta`` over all trainable parameters, in the
        order of ``module.named_parameters()``.
        """

        def single(params, x):
            x = tree_map(lambda t: t.unsqueeze(0), x)
            return self(params, x).squeeze(0)

        jac = vmap(jacrev(single), in_dims=(None, 0))(self.params, X_batch)
        batch, n_out = next(iter(jac.values())).shape[:2]
        return torch.cat([jac[n].reshape(batch, n_out, -1) for n in self.names], dim=2)

    def summed_gradient(self, loss_fn, X, y, batch_size=None):
        """Flat gradient ``sum_i d loss_fn(f(x_i), y_i) / d theta``, float64, shape ``(P,)``.

        ``loss_fn(outputs, targets)`` returns one value per sample.
        """
        total = torch.zeros(self.n_params, dtype=torch.float64, device=self.adapter.device)

        def summed(params, X_batch, y_batch):
            return loss_fn(self(params, X_batch), y_batch).sum()

        for X_batch, y_batch in self.batches(X, y, batch_size):
            grads = grad(summed)(self.params, X_batch, y_batch)
            total += self.flatten(grads).to(torch.float64)
        return total

    def per_sample_gradients(self, loss_fn, X_batch, y_batch):
        """Per-sample loss gradients of a batch, flattened, shape ``(B, P)``."""

        def single(params, x, y):
            x = tree_map(lambda t: t.unsqueeze(0), x)
            return loss_fn(self(params, x), y.unsqueeze(0)).sum()

        grads = vmap(grad(single), in_dims=(None, 0, 0))(self.params, X_batch, y_batch)
        batch = next(iter(grads.values())).shape[0]
        return torch.cat([grads[n].reshape(batch, -1) for n in self.names], dim=1)

    def flatten(self, tensors):
        """Concatenate a parameter-shaped dict into one flat vector."""
        return torch.cat([tensors[n].reshape(-1) for n in self.names])


def functional_net(learner, dtype, X_labeled=None, y_labeled=None):
    """Resolve ``learner`` and build its :class:`FunctionalNet`."""
    adapter = resolve_learner(learner, X_labeled=X_labeled, y_labeled=y_labeled)
    return FunctionalNet(adapter, check_dtype(dtype))


def check_dtype(dtype):
    """Validate the computation dtype (a floating ``torch.dtype``)."""
    if not isinstance(dtype, torch.dtype) or not dtype.is_floating_point:
        raise TypeError(
            f"dtype must be a floating torch.dtype such as torch.float64, got {dtype!r}."
        )
    return dtype


def one_hot_targets(y, n_outputs, n_samples):
    """Return the target matrix ``Y`` of shape ``(n, K)`` as float64 numpy.

    ``y`` is either a 1-D array of class indices in ``[0, K)`` (one-hot encoded, as the
    paper's label matrix) or a 2-D array of shape ``(n, K)`` used as is.
    """
    y = y.detach().cpu().numpy() if torch.is_tensor(y) else np.asarray(y)
    if y.shape[0] != n_samples:
        raise ValueError(f"X has {n_samples} rows but y has {y.shape[0]}.")
    if y.ndim == 2:
        if y.shape[1] != n_outputs:
            raise ValueError(
                f"A 2-D y must have one column per network output ({n_outputs}); got "
                f"shape {y.shape}."
            )
        return y.astype(np.float64)
    if y.ndim != 1 or y.dtype.kind not in "iub":
        raise ValueError(
            "y must be a 1-D array of integer class indices or a 2-D (n_samples, n_outputs) "
            f"target matrix; got shape {y.shape} and dtype {y.dtype}."
        )
    if len(y) and (y.min() < 0 or y.max() >= n_outputs):
        raise ValueError(
            f"Class indices must lie in [0, {n_outputs}) (the network has {n_outputs} "
            f"outputs); got values from {y.min()} to {y.max()}."
        )
    Y = np.zeros((n_samples, n_outputs), dtype=np.float64)
    Y[np.arange(n_samples), y.astype(np.int64)] = 1.0
    return Y


def n_rows(X):
    """Number of samples in an array, tensor or dict of them."""
    if isinstance(X, dict):
        return len(next(iter(X.values())))
    return len(X)


def _first_row(X):
    if isinstance(X, dict):
        return {k: v[:1] for k, v in X.items()}
    return X[:1]
