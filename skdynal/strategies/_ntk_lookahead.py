"""Look-ahead active learning with the empirical NTK: Most Likely Model Output Change."""

import dataclasses
import numbers
from typing import ClassVar

import numpy as np
import scipy.linalg
import scipy.sparse as sp
import torch
from sklearn.utils import check_random_state
from skorch.dataset import Dataset as SkorchDataset
from torch.utils.data import Dataset

from .._adapter import eval_mode, explain_shape_errors
from .._base import BaseQueryStrategy, explain_non_finite
from .._functional import functional_net, one_hot_targets
from .._selection import select_top_k
from .._streaming import map_pool, take_rows
from .._validation import BATCH_SIZE, NonFiniteValues, StrictInterval, StrOptions
from ..diagnostics import KernelTooLargeError, empirical_ntk

__all__ = ["NTKLookaheadSampler"]

_BYTES = 8
_GIB = 2**30


class LinearisedLookahead:
    """Kernel regression of the linearised net, and its look-ahead by block-inverse updates.

    The network linearised around its current parameters and trained to convergence with
    the squared loss on the labeled set ``S`` (one-hot targets ``Y_S``) predicts

    .. math::

        f_S(x) = f_0(x) + \\Theta(x, S) A^{-1} (Y_S - f_0(S)),
        \\qquad A = \\Theta(S, S) + \\lambda I,

    with ``f_0`` the current outputs and ``Theta`` the empirical NTK. On the evaluation set
    ``U`` it keeps ``f_S(U)`` and the posterior kernel
    ``C = Theta(U, U) - Theta(U, S) A^{-1} Theta(S, U)`` (one factorisation of ``A``).
    Adding a candidate ``u`` in ``U`` with label ``e`` (one-hot) gives, by the block
    inverse (Schur complement ``s_u = C(u, u) + lambda I``) of the enlarged kernel,

    .. math::

        f_{S+u}(x) = f_S(x) + C(x, u) \\, s_u^{-1} (e - f_S(u)).

    Parameters
    ----------
    theta : ndarray
        Kernel over ``S`` then ``U``: shape ``(N, N, K, K)`` (full) or ``(N, N)`` (a scalar
        kernel ``k``, standing for ``k I_K``), ``N = n + m``.
    outputs : ndarray of shape (N, K)
        Current outputs ``f_0`` of the same rows.
    targets : ndarray of shape (n, K)
        One-hot labels of ``S``.
    ridge : float
        ``lambda``, added to the diagonal (absolute).
    """

    def __init__(self, theta, outputs, targets, ridge):
        n, n_out = targets.shape
        self.full = theta.ndim == 4
        self.n_outputs = n_out
        self.ridge = float(ridge)
        q = n_out if self.full else 1
        N = theta.shape[0]
        m = N - n
        self.m = m
        M = theta.transpose(0, 2, 1, 3).reshape(N * q, N * q) if self.full else theta
        A = M[: n * q, : n * q] + self.ridge * np.eye(n * q)
        try:
            factor = scipy.linalg.cho_factor(A, lower=True)
        except np.linalg.LinAlgError as exc:
            raise ValueError(
                "The labeled-set NTK plus the ridge is not positive definite (the empirical "
                "kernel has rank at most the number of parameters); increase ridge."
            ) from exc
        residual = targets - outputs[:n]
        K_US = M[n * q :, : n * q]
        if self.full:
            shift = K_US @ scipy.linalg.cho_solve(factor, residual.reshape(-1))
            self.f_lin = outputs[n:] + shift.reshape(m, n_out)
        else:
            self.f_lin = outputs[n:] + K_US @ scipy.linalg.cho_solve(factor, residual)
        self.C = M[n * q :, n * q :] - K_US @ scipy.linalg.cho_solve(factor, K_US.T)

    def _blocks(self, candidates):
        """``C(U, u)`` for each candidate and ``s_u``: shapes (c, m, K, K)/(c, m) and s."""
        c = np.asarray(candidates)
        if self.full:
            K = self.n_outputs
            C4 = self.C.reshape(self.m, K, self.m, K)
            cross = C4[:, :, c, :].transpose(2, 0, 1, 3)  # (c, m, K, K): [u, x, k, l]
            schur = C4[c, :, c, :] + self.ridge * np.eye(K)  # (c, K, K)
            return cross, schur
        return self.C[:, c].T, self.C[c, c] + self.ridge  # (c, m), (c,)

    def lookahead(self, candidates, labels):
        """Predictions on ``U`` after adding each candidate alone, shape (c, m, K)."""
        candidates = np.asarray(candidates)
        onehot = np.eye(self.n_outputs)[np.asarray(labels)]
        residual = onehot - self.f_lin[candidates]  # (c, K)
        cross, schur = self._blocks(candidates)
        if self.full:
            delta = np.linalg.solve(schur, residual[:, :, None])[:, :, 0]
            change = np.einsum("uxkl,ul->uxk", cross, delta)
        else:
            change = cross[:, :, None] * (residual / schur[:, None])[:, None, :]
        return self.f_lin[None] + change

    def add(self, candidate, label):
        """Add ``candidate`` with ``label`` to the labeled set (block-inverse update)."""
        onehot = np.eye(self.n_outputs)[label]
        residual = onehot - self.f_lin[candidate]
        cross, schur = self._blocks([candidate])
        if self.full:
            K = self.n_outputs
            cross = cross[0].reshape(self.m * K, K)  # C(U, u)
            solve = np.linalg.solve(schur[0], np.hstack([residual[:, None], cross.T]))
            self.f_lin = self.f_lin + (cross @ solve[:, 0]).reshape(self.m, K)
            self.C = self.C - cross @ solve[:, 1:]
        else:
            cross = cross[0]
            self.f_lin = self.f_lin + np.outer(cross, residual / schur[0])
            self.C = self.C - np.outer(cross, cross) / schur[0]


class NTKLookaheadSampler(BaseQueryStrategy):
    """Look-ahead query strategy with the empirical NTK (Mohamadi, Bae & Sutherland, 2022).

    Instead of retraining the network once per candidate, the network is linearised around
    its current parameters (its empirical neural tangent kernel ``Theta``); retraining on
    ``S + {(x_u, yhat_u)}`` to convergence with the squared loss then has a closed form,
    and the kernel matrix of ``S`` is factorised once: each candidate costs one
    block-inverse (Schur complement) update (see :class:`LinearisedLookahead`), no SGD.

    A random subset ``U`` of the pool (``subset_size`` rows, drawn with ``random_state``)
    holds both the candidates and the points where the change is measured, as in the
    official code. Each candidate ``u`` in ``U`` is added with its pseudo label
    ``yhat_u = argmax f_0(x_u)`` (the network's current prediction) and scored by the
    *Most Likely Model Output Change* on ``U``:

    - ``objective="argmax"`` (default; the official code's ``pseudo_contrastive``): the
      fraction of ``x`` in ``U`` whose ``argmax f_{S+u}(x)`` differs from the reference's;
    - ``objective="output_change"`` (continuous): the mean over ``U`` of
      ``||f_{S+u}(x) - r(x)||^2``.

    The reference ``r`` is the network's current outputs ``f_0(U)`` (``"network"``,
    default, as the official batch mode) or the linearised model on ``S`` without the
    candidate, ``f_S(U)`` (``"linearised"``: only the candidate's own effect). Rows outside
    the subset score ``-inf`` (``capabilities().unscored_rows``). The subset couples the
    rows, so the pool is not split into shards.

    Parameters
    ----------
    subset_size : int, default=500
        Size of the pool subset ``U``; the whole pool when it is smaller. In ``select``
        and modAL queries it is raised to ``n_instances`` if that is larger.
    kernel : {"trace", "full"}, default="trace"
        ``"trace"`` (the official configuration): the class-averaged scalar kernel
        ``Tr Theta / K``, standing for ``(Tr Theta / K) I_K``; ``"full"``: the ``K x K``
        blocks (memory ``K^2`` times larger).
    objective : {"argmax", "output_change"}, default="argmax"
        See above.
    reference : {"network", "linearised"}, default="network"
        See above.
    mode : {"batch", "sequential"}, default="batch"
        ``"batch"``: query the ``n_instances`` best scores. ``"sequential"``: query the best
        one, add it with its pseudo label (updating ``f_S`` and the posterior kernel by the
        block inverse), rescore, and repeat.
    ridge : float, default=1e-5
        Regularisation of the kernel solve: ``ridge * mean(diag Theta(S, S))`` is added to
        the diagonal (the official ``ntk_diag_reg`` scaling). Must be positive when the
        kernel is singular (more outputs ``n K`` than parameters).
    kernel_batch_size : int, default=32
        Samples per forward pass when computing the NTK (see
        :func:`~skdynal.diagnostics.empirical_ntk`; the memory guard allows for two
        Jacobian batches of ``kernel_batch_size * K * P`` floats for ``P`` parameters,
        though the layer-wise kernel never forms them).
    max_bytes : int, default=2**30
        Memory guard: if the kernel over ``S`` and ``U`` and the matrices derived from it
        (about ``8 q^2 (N^2 + 2 n^2 + n m + m^2)`` bytes for ``n`` labeled rows, ``m``
        subset rows, ``N = n + m``, ``q = K`` for the full kernel and 1 for the trace) or
        the NTK's Jacobians would exceed it, a :class:`~skdynal.diagnostics.KernelTooLargeError`
        is raised before anything is computed.
    random_state : int, RandomState instance or None, default=None
        Draws the subset and breaks ties among equal scores.

    Notes
    -----
    The linearised model regresses the module's outputs (logits for a net trained with
    ``CrossEntropyLoss``) onto one-hot targets with the squared loss, as the paper (whose
    experiments train with the squared loss). Everything runs in float64, in ``eval()``
    mode, on detached copies of the parameters. Cost: the NTK over ``n + m`` rows (one
    forward and ``K`` backward passes per batch, then for each ``Linear`` layer products of
    Gram matrices of its inputs and output gradients, ``O(N^2 (d + K p))`` for a
    ``d -> p`` layer; see :func:`~skdynal.diagnostics.empirical_ntk`), one Cholesky
    factorisation of ``n q x n q``, then
    ``O(m^2 q^2 K)`` for scoring all candidates (``mode="sequential"`` repeats the scoring
    and an ``O(m^2 q^2)`` update per query).

    References
    ----------
    .. [1] M. A. Mohamadi, W. Bae and D. J. Sutherland, "Making Look-Ahead Active Learning
       Strategies Feasible with Neural Tangent Kernels", NeurIPS 2022 (arXiv:2206.12569).

    Examples
    --------
    >>> from skdynal import NTKLookaheadSampler
    >>> NTKLookaheadSampler(subset_size=200, mode="sequential")
    NTKLookaheadSampler(mode='sequential', subset_size=200)
    """

    _parameter_constraints: ClassVar[dict] = {
        "subset_size": [StrictInterval(numbers.Integral, 1, None, closed="left")],
        "kernel": [StrOptions({"trace", "full"})],
        "objective": [StrOptions({"argmax", "output_change"})],
        "reference": [StrOptions({"network", "linearised"})],
        "mode": [StrOptions({"batch", "sequential"})],
        "ridge": [StrictInterval(numbers.Real, 0, np.inf, closed="left")],
        "kernel_batch_size": BATCH_SIZE,
        "max_bytes": [StrictInterval(numbers.Integral, 1, None, closed="left")],
        "random_state": ["random_state"],
    }

    def __init__(
        self,
        subset_size=500,
        kernel="trace",
        objective="argmax",
        reference="network",
        mode="batch",
        ridge=1e-5,
        kernel_batch_size=32,
        max_bytes=2**30,
        random_state=None,
    ):
        self.subset_size = subset_size
        self.kernel = kernel
        self.objective = objective
        self.reference = reference
        self.mode = mode
        self.ridge = ridge
        self.kernel_batch_size = kernel_batch_size
        self.max_bytes = max_bytes
        self.random_state = random_state

    def capabilities(self):
        return dataclasses.replace(
            super().capabilities(),
            needs_labeled=True,
            reads_pool=False,
            shardable=False,
            unscored_rows=True,
        )

    def select_from_outputs(self, adapter, state, outputs, n_instances, random_state, pool):
        """Score the subset by look-ahead and take the best rows (or one at a time)."""
        subset, model, pseudo, reference = self._lookahead(adapter, pool.X, n_instances)
        if self.mode == "batch":
            scores = self._subset_scores(model, pseudo, reference)
            picked = select_top_k(scores, n_instances, random_state)
            return subset[picked], scores[picked]
        chosen, chosen_scores = [], []
        for _ in range(n_instances):
            scores = self._subset_scores(model, pseudo, reference)
            scores[chosen] = -np.inf
            best = int(select_top_k(scores, 1, random_state, allow_negative_inf=True)[0])
            chosen.append(best)
            chosen_scores.append(scores[best])
            model.add(best, pseudo[best])
            if self.reference == "linearised":
                reference = model.f_lin
        return subset[np.asarray(chosen)], np.asarray(chosen_scores)

    def score(self, learner, X_pool, *, X_labeled=None, y_labeled=None):
        """Score every row of ``X_pool``; larger means more worth labeling.

        Parameters
        ----------
        learner : modAL learner or skorch.NeuralNet
            As in ``__call__``.
        X_pool : array-like of shape (n_pool, ...)
            The unlabeled pool.
        X_labeled, y_labeled : array-like, default=None
            The labeled set, for a bare net (or to override the learner's).

        Returns
        -------
        scores : ndarray of shape (n_pool,), dtype float64
            The look-ahead score of each subset row (the subset of a one-row query),
            ``-inf`` for the other rows.
        """
        self.check_params()
        adapter, X_pool = self._prepare(learner, X_pool, X_labeled, y_labeled)
        try:
            subset, model, pseudo, reference = self._lookahead(adapter, X_pool, 0)
            scores = np.full(len(X_pool), -np.inf)
            scores[subset] = self._subset_scores(model, pseudo, reference)
        except NonFiniteValues as exc:
            raise explain_non_finite(adapter, X_pool, exc) from None
        return scores

    # --- pieces -------------------------------------------------------------------------

    def _lookahead(self, adapter, X_pool, n_instances):
        """The subset (the same for ``score`` and ``select``) and its kernel regression."""
        random_state = np.random.RandomState(_subset_seed(self.random_state))
        n_pool = len(X_pool)
        size = min(n_pool, max(int(self.subset_size), n_instances))
        if size == n_pool:
            subset = np.arange(n_pool)
        else:
            subset = np.sort(random_state.choice(n_pool, size, replace=False))
        return (subset, *self._build(adapter, X_pool, subset))

    def _build(self, adapter, X_pool, subset):
        """The kernel regression on the subset, pseudo labels and reference outputs."""
        X_lab, y_lab = adapter.X_labeled, adapter.y_labeled
        n, m = len(y_lab), len(subset)
        fnet = functional_net(adapter.net, torch.float64)
        with eval_mode(adapter.module), explain_shape_errors(X_pool, adapter.module):
            X_subset = _subset_rows(adapter, X_pool, subset, self.kernel_batch_size)
            X_all = _concatenate(X_lab, X_subset)
            outputs = np.concatenate(
                [
                    _outputs(adapter, fnet, X_lab, self.kernel_batch_size, "labeled set"),
                    _outputs(adapter, fnet, X_subset, self.kernel_batch_size, "pool", subset),
                ]
            )
            n_out = outputs.shape[1]
            q = n_out if self.kernel == "full" else 1
            N = n + m
            needed = _BYTES * q * q * (N * N + 2 * n * n + n * m + m * m)
            if needed > self.max_bytes:
                raise KernelTooLargeError(
                    f"NTKLookaheadSampler needs about {needed / _GIB:.3g} GiB for the "
                    f"{self.kernel!r} kernel of {n} labeled and {m} subset rows with "
                    f"K={n_out} outputs, more than max_bytes={self.max_bytes} "
                    f"({self.max_bytes / _GIB:.3g} GiB). Use a smaller subset_size, "
                    "kernel='trace', or raise max_bytes if the memory is there."
                )
            theta = empirical_ntk(
                adapter.net,
                X_all,
                structure=self.kernel,
                batch_size=self.kernel_batch_size,
                max_bytes=self.max_bytes,
            )
        if not np.isfinite(theta).all():
            raise NonFiniteValues("neural tangent kernel entries")
        targets = one_hot_targets(y_lab, n_out, n)
        model = LinearisedLookahead(theta, outputs, targets, self.ridge * _mean_diag(theta, n))
        pseudo = outputs[n:].argmax(axis=1)
        reference = outputs[n:] if self.reference == "network" else model.f_lin
        return model, pseudo, reference

    def _subset_scores(self, model, pseudo, reference):
        """Score every subset row as a candidate, in chunks bounded by ``max_bytes``."""
        m, K = reference.shape
        per_candidate = _BYTES * m * K * (K + 2)
        chunk = int(max(1, min(m, (self.max_bytes // 4) // per_candidate)))
        reference_labels = reference.argmax(axis=1)
        scores = np.empty(m)
        for start in range(0, m, chunk):
            candidates = np.arange(start, min(m, start + chunk))
            predictions = model.lookahead(candidates, pseudo[candidates])
            if self.objective == "argmax":
                changed = predictions.argmax(axis=2) != reference_labels[None]
                scores[candidates] = changed.mean(axis=1)
            else:
                scores[candidates] = ((predictions - reference[None]) ** 2).sum(2).mean(1)
        return scores


def _mean_diag(theta, n):
    if theta.ndim == 4:
        return float(np.einsum("iikk->", theta[:n, :n]) / (n * theta.shape[2]))
    return float(np.trace(theta[:n, :n]) / n)


def _outputs(adapter, fnet, X, batch_size, source, rows=None):
    """The module's outputs in float64 (the functional net's), through the pool loop.

    ``rows`` maps the rows of ``X`` to the pool's, for the error naming a non-finite one.
    """

    def batch_outputs(X_batch):
        with torch.no_grad():
            return fnet(fnet.params, _to_float64(X_batch))

    if isinstance(X, dict):
        X = SkorchDataset(X)  # one dict of tensors per batch, as check_pool gives the pool
    try:
        return map_pool(
            adapter, X, batch_outputs, batch_size=batch_size, source=source, quantity="outputs"
        )
    except NonFiniteValues as exc:
        if rows is None:
            raise
        raise NonFiniteValues(exc.quantity, rows[exc.rows], exc.source) from None


def _to_float64(X_batch):
    if isinstance(X_batch, dict):
        return {k: _to_float64(v) for k, v in X_batch.items()}
    return X_batch.to(torch.float64) if X_batch.is_floating_point() else X_batch


def _subset_rows(adapter, X_pool, subset, batch_size):
    """The subset's rows as an array, tensor or dict (a ``Dataset``'s through the pool loop).

    The rows of a ``Dataset`` come back as the net's iterator yields them, cast to the
    module's dtype (the kernel casts them again, so nothing changes).
    """
    if isinstance(X_pool, SkorchDataset) and X_pool.y is None:
        return _take(X_pool.X, subset)  # the dict or sparse matrix that check_pool wrapped
    if isinstance(X_pool, Dataset):
        rows = map_pool(
            adapter,
            take_rows(X_pool, subset),
            lambda X_batch: X_batch,
            batch_size=batch_size,
            quantity="rows",
        )
        if isinstance(rows, tuple):
            raise TypeError(
                "NTKLookaheadSampler needs pool rows that are single arrays or tensors; the "
                f"{type(X_pool).__name__} yields {len(rows)} tensors per row."
            )
        return rows
    return _take(X_pool, subset)


def _take(X, rows):
    if sp.issparse(X):
        return X.tocsr()[rows].toarray()
    if isinstance(X, dict):
        return {k: _take(v, rows) for k, v in X.items()}
    if torch.is_tensor(X):
        return X[torch.as_tensor(rows, device=X.device)]
    return np.asarray(X)[rows]


def _concatenate(X_first, X_second):
    if isinstance(X_first, dict) or isinstance(X_second, dict):
        return {k: _concatenate(X_first[k], X_second[k]) for k in X_first}
    if torch.is_tensor(X_first) or torch.is_tensor(X_second):
        first = torch.as_tensor(X_first)
        return torch.cat([first, torch.as_tensor(X_second, device=first.device)])
    return np.concatenate([np.asarray(X_first), np.asarray(X_second)])


def _subset_seed(random_state):
    """A seed for the subset draw, so ``score`` and ``select`` use the same subset."""
    if random_state is None or isinstance(random_state, np.random.RandomState):
        return check_random_state(random_state).randint(2**31 - 1)
    return random_state
