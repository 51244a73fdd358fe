"""Training dynamics of a labeled set and how much a query set would change them."""

from typing import NamedTuple

import numpy as np
import torch

from .._adapter import eval_mode
from .._checks import check_batch_size
from .._functional import functional_net, n_rows, one_hot_targets

__all__ = [
    "SubsetApproximation",
    "approximation_ratio",
    "training_dynamics",
    "training_dynamics_change",
]

_LOSSES = ("net", "mse")


class SubsetApproximation(NamedTuple):
    """The change of training dynamics of a query set and its subset approximation.

    Attributes
    ----------
    change : float
        ``Delta(Q | S) = G(S u Q) - G(S)``, the exact change for the whole set.
    singles : ndarray of float64, shape (n_query,)
        ``Delta({x_u} | S)`` for every ``x_u`` in ``Q``; with the net's own loss and
        pseudo labels these are dynamicAL's scores with ``gamma = 2``.
    cross_terms : float
        ``sum_{u != v} <g_u, g_v>``: ``change = singles.sum() + cross_terms`` exactly.
    ratio : float
        ``R(Q | S) = singles.sum() / change``, the approximation ratio.
    """

    change: float
    singles: np.ndarray
    cross_terms: float
    ratio: float


def training_dynamics(learner, X, y, *, loss="net", batch_size=None, dtype=torch.float64):
    """Training dynamics ``G(S)`` of a labeled set: how fast gradient flow lowers its loss.

    Under gradient flow ``d theta / dt = -eta grad_theta L(S)`` on the summed training loss
    ``L(S) = sum_{(x, y) in S} l(f(x; theta), y)``, the loss decreases at the rate
    ``-dL/dt = eta ||grad_theta L(S)||^2``. The training dynamics are that rate without
    the learning rate (Eq. 8 of [1]_ for the cross-entropy loss):

    .. math::

        G(S) = \\Big\\lVert \\sum_{(x, y) \\in S} \\nabla_\\theta
               \\ell(f(x; \\theta), y) \\Big\\rVert^2 .

    With ``loss="mse"`` and ``l = ||f(x) - y||^2 / 2`` (``y`` one-hot), the gradient of a
    sample is ``J(x)^T (f(x) - y)``, so (Section 4.3 of [1]_)

    .. math::

        G_{MSE}(S) = \\operatorname{vec}(F - Y)^\\top \\, \\Theta(X, X) \\,
                     \\operatorname{vec}(F - Y),

    with ``F`` the ``n x K`` module outputs and ``Theta`` the empirical NTK; when the
    outputs are close to zero (as at initialisation) it is close to the alignment
    ``Tr[Y^T Theta Y]`` of :func:`alignment`.

    Parameters
    ----------
    learner : skorch.NeuralNet or modAL learner
        A fitted net; read in ``eval()`` mode, never modified.
    X : array-like of shape (n_samples, ...)
        Inputs of ``S``.
    y : array-like of shape (n_samples,)
        Their labels (class indices); with ``loss="mse"`` a 2-D ``(n_samples, K)`` target
        matrix is accepted too.
    loss : {"net", "mse"}, default="net"
        ``"net"``: the net's own per-sample loss, through skorch's ``get_loss`` (the
        cross-entropy for a ``NeuralNetClassifier`` with ``NLLLoss`` or
        ``CrossEntropyLoss``). ``"mse"``: ``||f(x) - y||^2 / 2`` on the module outputs.
    batch_size : int, default=None
        Samples per batch; ``None`` uses the net's validation batch size.
    dtype : torch.dtype, default=torch.float64
        Computation dtype; the parameters are cast copies.

    Returns
    -------
    dynamics : float

    References
    ----------
    .. [1] H. Wang, W. Huang, Z. Wu, A. Margenot, H. Tong and J. He, "Deep Active Learning
       by Leveraging Training Dynamics", NeurIPS 2022, Eq. 8 and Section 4.3.
    """
    loss = _check_loss(loss)
    batch_size = check_batch_size(batch_size)
    fnet = functional_net(learner, dtype)
    with eval_mode(fnet.adapter.module):
        loss_fn, targets = _loss_and_targets(fnet, loss, X, y)
        gradient = fnet.summed_gradient(loss_fn, X, targets, batch_size)
    return float(gradient @ gradient)


def training_dynamics_change(
    learner,
    X_query,
    y_query=None,
    *,
    X_labeled=None,
    y_labeled=None,
    loss="net",
    batch_size=None,
    dtype=torch.float64,
):
    """Change of training dynamics ``Delta(Q | S)`` and its subset approximation.

    Adding a query set ``Q`` (labeled with pseudo labels ``y_u = argmax f(x_u)``, or with
    ``y_query`` when given) to the labeled set ``S`` changes the training dynamics by

    .. math::

        \\Delta(Q \\mid S) = G(S \\cup Q) - G(S)
            = \\lVert g_Q \\rVert^2 + 2 \\langle g_Q, G_S \\rangle
            = \\sum_{u \\in Q} \\Delta(\\{x_u\\} \\mid S)
              + \\sum_{u \\neq v \\in Q} \\langle g_u, g_v \\rangle,

    with ``g_u`` the loss gradient of ``x_u``, ``g_Q = sum_u g_u``, ``G_S`` the summed loss
    gradient of ``S`` and ``Delta({x_u} | S) = ||g_u||^2 + 2 <g_u, G_S>`` (Eq. 13 of [1]_).
    dynamicAL's subset approximation drops the cross terms and ranks samples by the singles;
    its approximation ratio is (Eq. 14 of [1]_ as we read it)

    .. math::

        R(Q \\mid S) = \\frac{\\sum_{u \\in Q} \\Delta(\\{x_u\\} \\mid S)}
                            {\\Delta(Q \\mid S)} .

    ``Delta(Q | S)`` is formed from ``g_Q`` and ``G_S`` directly, not as a difference of two
    large ``G`` values.

    Parameters
    ----------
    learner : skorch.NeuralNet or modAL learner
        A fitted net; read in ``eval()`` mode, never modified. A modAL learner supplies the
        labeled set ``S`` (``X_training``, ``y_training``).
    X_query : array-like of shape (n_query, ...)
        The query set ``Q``.
    y_query : array-like of shape (n_query,), default=None
        Labels for ``Q``; ``None`` uses the pseudo labels, as dynamicAL does.
    X_labeled, y_labeled : array-like, default=None
        The labeled set ``S``; required with a bare net, override the learner's otherwise.
    loss : {"net", "mse"}, default="net"
        As in :func:`training_dynamics`.
    batch_size : int, default=None
        Samples per batch; ``None`` uses the net's validation batch size. Per-sample
        gradients of one query batch are held at once (``batch_size x P`` numbers).
    dtype : torch.dtype, default=torch.float64
        Computation dtype.

    Returns
    -------
    result : SubsetApproximation
        ``change``, ``singles``, ``cross_terms`` and ``ratio``.

    References
    ----------
    .. [1] H. Wang, W. Huang, Z. Wu, A. Margenot, H. Tong and J. He, "Deep Active Learning
       by Leveraging Training Dynamics", NeurIPS 2022, Eq. 13-14.
    """
    loss = _check_loss(loss)
    batch_size = check_batch_size(batch_size)
    fnet = functional_net(learner, dtype, X_labeled=X_labeled, y_labeled=y_labeled)
    adapter = fnet.adapter
    if not adapter.has_labeled:
        raise ValueError(
            "The change of training dynamics needs the labeled set S: pass X_labeled and "
            "y_labeled, or a modAL learner with X_training and y_training."
        )
    n_query = n_rows(X_query)
    if n_query == 0:
        raise ValueError("X_query is empty.")
    with eval_mode(adapter.module):
        if y_query is None:
            y_query = _pseudo_labels(fnet, X_query, batch_size)
        loss_fn, labeled_targets = _loss_and_targets(
            fnet, loss, adapter.X_labeled, adapter.y_labeled
        )
        _, query_targets = _loss_and_targets(fnet, loss, X_query, y_query)
        G_S = fnet.summed_gradient(loss_fn, adapter.X_labeled, labeled_targets, batch_size)
        singles = np.empty(n_query, dtype=np.float64)
        g_Q = torch.zeros_like(G_S)
        sq_norm_sum = 0.0
        start = 0
        for X_batch, y_batch in fnet.batches(X_query, query_targets, batch_size):
            g = fnet.per_sample_gradients(loss_fn, X_batch, y_batch).detach().double()
            sq_norms = (g * g).sum(1)
            singles[start : start + len(g)] = (sq_norms + 2.0 * (g @ G_S)).cpu().numpy()
            sq_norm_sum += float(sq_norms.sum())
            g_Q += g.sum(0)
            start += len(g)
    sq_norm_Q = float(g_Q @ g_Q)
    change = sq_norm_Q + 2.0 * float(g_Q @ G_S)
    ratio = float(singles.sum() / change) if change != 0 else float("nan")
    return SubsetApproximation(
        change=change, singles=singles, cross_terms=sq_norm_Q - sq_norm_sum, ratio=ratio
    )


def approximation_ratio(
    learner, X_query, *, X_labeled=None, y_labeled=None, batch_size=None, dtype=torch.float64
):
    """Approximation ratio ``R(Q | S)`` of dynamicAL's subset approximation.

    ``R(Q | S) = sum_{u in Q} Delta({x_u} | S) / Delta(Q | S)`` with pseudo labels and the
    net's own loss; a shortcut for ``training_dynamics_change(...).ratio``. See
    :func:`training_dynamics_change` for the definitions and parameters.

    Returns
    -------
    ratio : float
        ``nan`` when ``Delta(Q | S)`` is exactly zero.

    References
    ----------
    .. [1] H. Wang, W. Huang, Z. Wu, A. Margenot, H. Tong and J. He, "Deep Active Learning
       by Leveraging Training Dynamics", NeurIPS 2022, Eq. 14.
    """
    return training_dynamics_change(
        learner,
        X_query,
        X_labeled=X_labeled,
        y_labeled=y_labeled,
        batch_size=batch_size,
        dtype=dtype,
    ).ratio


def _pseudo_labels(fnet, X, batch_size):
    labels = []
    with torch.no_grad():
        for X_batch, _ in fnet.batches(X, None, batch_size):
            labels.append(fnet(fnet.params, X_batch).argmax(dim=1).cpu())
    return torch.cat(labels).numpy()


def _loss_and_targets(fnet, loss, X, y):
    """Per-sample loss function and the targets to iterate with it."""
    if loss == "net":
        y = y.detach().cpu().numpy() if torch.is_tensor(y) else np.asarray(y)
        if y.shape[:1] != (n_rows(X),):
            raise ValueError(f"X has {n_rows(X)} rows but y has shape {y.shape}.")
        return fnet.adapter.per_sample_loss(), y
    Y = one_hot_targets(y, fnet.n_outputs(X), n_rows(X))
    return _half_squared_error, Y


def _half_squared_error(outputs, targets):
    return 0.5 * (outputs - targets.to(outputs.dtype)).pow(2).sum(1)


def _check_loss(loss):
    if loss not in _LOSSES:
        raise ValueError(f"loss must be one of {_LOSSES}, got {loss!r}.")
    return loss
