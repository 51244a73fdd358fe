"""Empirical neural tangent kernel of a fitted net, and the kernel quantities of the paper."""

import numbers

import numpy as np
import scipy.linalg
import torch

from .._adapter import eval_mode
from .._checks import check_batch_size
from .._functional import (
    functional_net,
    n_rows,
    one_hot_targets,
)
from ..gradients import JacobianFactors, jacobian_factors, tangent_kernel

__all__ = [
    "KernelTooLargeError",
    "alignment",
    "empirical_ntk",
    "generalization_bound",
    "ntk_mmd",
]

_STRUCTURES = ("full", "trace")
_METHODS = ("layerwise", "jacobian")
_DEFAULT_MAX_BYTES = 2**30
_GIB = 2**30


class KernelTooLargeError(MemoryError, ValueError):
    """The requested kernel (or its working memory) would exceed ``max_bytes``.

    Subclasses both :class:`MemoryError` and :class:`ValueError`: nothing was allocated; the
    arguments ask for more memory than the caller allowed.
    """


def empirical_ntk(
    learner,
    X,
    X2=None,
    *,
    structure="full",
    batch_size=32,
    max_bytes=_DEFAULT_MAX_BYTES,
    dtype=torch.float64,
    method="layerwise",
):
    """Empirical neural tangent kernel of a fitted net between two sets of inputs.

    With ``f(x; theta)`` in ``R^K`` the module's outputs (logits for a net trained with
    ``CrossEntropyLoss``) and ``J(x) = d f(x; theta) / d theta`` in ``R^{K x P}`` the
    Jacobian over all ``P`` trainable parameters, the kernel has ``K x K`` blocks

    .. math::

        \\Theta(x, x') = J(x) \\, J(x')^\\top \\in \\mathbb{R}^{K \\times K},

    the class structure the paper uses when it writes ``Theta(X, X)`` for a set of ``n``
    inputs as an ``nK x nK`` matrix (Section 3 of [1]_).

    Parameters
    ----------
    learner : skorch.NeuralNet or modAL learner
        A fitted net (or a modAL learner whose estimator is one). It is read in ``eval()``
        mode and never modified.
    X : array-like of shape (n_samples, ...)
        First set of inputs.
    X2 : array-like of shape (n_samples2, ...), default=None
        Second set of inputs; ``None`` means ``X``.
    structure : {"full", "trace"}, default="full"
        ``"full"`` returns the ``K x K`` blocks, shape ``(n, n2, K, K)``; reshape with
        ``theta.transpose(0, 2, 1, 3).reshape(n * K, n2 * K)`` to get the ``nK x n2K``
        matrix whose row ``i * K + k`` belongs to output ``k`` of sample ``i``.
        ``"trace"`` returns the class-averaged scalar kernel ``Tr Theta(x, x') / K``,
        shape ``(n, n2)``; it equals the scalar kernel ``k`` when ``Theta = k I_K``, the
        infinite-width form.
    batch_size : int, default=32
        Samples per forward pass (per Jacobian batch with ``method="jacobian"``, working
        memory ``batch_size * K * P`` numbers).
    max_bytes : int, default=2**30
        Upper bound on the memory the kernel and its Jacobians may take. When the output
        alone (or the output plus two Jacobian batches of ``batch_size * K * P`` numbers)
        exceeds it, a :class:`KernelTooLargeError` is raised before anything is computed,
        whichever the method. The Jacobians (factors) of ``X2`` are cached when they fit
        as well; otherwise they are recomputed per block.
    dtype : torch.dtype, default=torch.float64
        Computation dtype; the parameters are cast copies.
    method : {"layerwise", "jacobian"}, default="layerwise"
        ``"layerwise"``: the kernel as a sum over layers
        (:func:`skdynal.gradients.tangent_kernel`); for a ``Linear`` layer
        ``<J_k(x), J_l(x')> = (a . a') (delta_k . delta'_l)``, products of small Gram
        matrices of the layer's inputs ``a`` and output gradients ``delta`` (one forward
        and ``K`` backward passes per batch), so the ``K x P`` Jacobians are never formed;
        convolutions and normalisation layers materialise their own Jacobian, other layers
        take ``torch.func``. ``"jacobian"``: the whole per-sample Jacobians by
        ``torch.func`` (``vmap`` of ``jacrev``) and their inner products; slower, kept as
        the reference. Both are exact and agree to rounding.

    Returns
    -------
    theta : ndarray of float64
        Shape ``(n, n2, K, K)`` for ``structure="full"``, ``(n, n2)`` for ``"trace"``.

    Raises
    ------
    KernelTooLargeError
        If the kernel would need more than ``max_bytes``.

    References
    ----------
    .. [1] H. Wang, W. Huang, Z. Wu, A. Margenot, H. Tong and J. He, "Deep Active Learning
       by Leveraging Training Dynamics", NeurIPS 2022.
    .. [2] A. Jacot, F. Gabriel and C. Hongler, "Neural Tangent Kernel: Convergence and
       Generalization in Neural Networks", NeurIPS 2018.
    """
    structure = _check_structure(structure)
    method = _check_method(method)
    batch_size = check_batch_size(batch_size) or 32
    max_bytes = _check_max_bytes(max_bytes)
    fnet = functional_net(learner, dtype)
    same = X2 is None
    X2 = X if same else X2
    n, n2 = n_rows(X), n_rows(X2)
    with eval_mode(fnet.adapter.module):
        n_out = fnet.n_outputs(X)
        itemsize = torch.empty((), dtype=dtype).element_size()
        out_bytes = n * n2 * (n_out * n_out if structure == "full" else 1) * 8
        jac_bytes = 2 * min(batch_size, max(n, n2)) * n_out * fnet.n_params * itemsize
        if out_bytes + jac_bytes > max_bytes:
            raise KernelTooLargeError(
                f"The {structure!r} NTK of {n} x {n2} samples with K={n_out} outputs and "
                f"P={fnet.n_params} parameters needs about "
                f"{(out_bytes + jac_bytes) / _GIB:.3g} GiB ({out_bytes / _GIB:.3g} GiB for "
                f"the kernel, {jac_bytes / _GIB:.3g} GiB for two Jacobian batches), more "
                f"than max_bytes={max_bytes} ({max_bytes / _GIB:.3g} GiB). Use fewer "
                "samples, structure='trace' (K^2 times smaller), a smaller batch_size, or "
                "raise max_bytes if the memory is there."
            )
        if method == "layerwise":
            return _layerwise_ntk(
                fnet, X, X2, same, structure, batch_size, max_bytes - out_bytes, n_out
            )
        cache_bytes = n2 * n_out * fnet.n_params * itemsize
        cache = None
        if out_bytes + jac_bytes + cache_bytes <= max_bytes:
            cache = [fnet.jacobians(Xb).detach() for Xb, _ in fnet.batches(X2, None, batch_size)]

        def right_blocks():
            if cache is not None:
                yield from cache
            else:
                for Xb, _ in fnet.batches(X2, None, batch_size):
                    yield fnet.jacobians(Xb).detach()

        shape = (n, n2, n_out, n_out) if structure == "full" else (n, n2)
        theta = np.empty(shape, dtype=np.float64)
        row = 0
        left_source = (
            cache
            if (same and cache is not None)
            else (fnet.jacobians(Xb).detach() for Xb, _ in fnet.batches(X, None, batch_size))
        )
        for J_left in left_source:
            col = 0
            for J_right in right_blocks():
                if structure == "full":
                    block = torch.einsum("ikp,jlp->ijkl", J_left, J_right)
                else:
                    block = torch.einsum("ikp,jkp->ij", J_left, J_right) / n_out
                theta[row : row + len(J_left), col : col + len(J_right)] = (
                    block.double().cpu().numpy()
                )
                col += len(J_right)
            row += len(J_left)
    return theta


def _layerwise_ntk(fnet, X, X2, same, structure, batch_size, budget, n_out):
    """``empirical_ntk`` from factored Jacobians, in blocks whose memory stays in ``budget``.

    ``budget`` is what the guard left after the output; it is at least two Jacobian
    batches, and the factors of a sample are never larger than its Jacobian.
    """
    module = fnet.module_in_dtype()
    itemsize = torch.empty((), dtype=fnet.dtype).element_size()
    q2 = n_out * n_out if structure == "full" else 1

    def factor_batches(X_rows):
        for X_batch, _ in fnet.batches(X_rows, None, batch_size):
            yield jacobian_factors(module, X_batch)

    def blocks(source, rows):
        """Concatenate consecutive batches of factors into blocks of about ``rows`` samples."""
        parts, count = [], 0
        for factors in source:
            parts.append(factors)
            count += len(factors)
            if count >= rows:
                yield JacobianFactors.concatenate(parts)
                parts, count = [], 0
        if parts:
            yield JacobianFactors.concatenate(parts)

    n, n2 = n_rows(X), n_rows(X2)
    right_batches = factor_batches(X2)
    first = next(right_batches, None)
    shape = (n, n2, n_out, n_out) if structure == "full" else (n, n2)
    theta = np.empty(shape, dtype=np.float64)
    if first is None or n == 0:
        return theta
    per_sample = max(1, first.nbytes // max(1, len(first)))
    cached = n2 * per_sample <= budget // 2
    right_rows = n2 if cached else max(batch_size, budget // 4 // per_sample)
    # Each left row also costs a row of the kernel block and its two Gram temporaries.
    left_rows = max(batch_size, budget // 4 // (per_sample + 3 * right_rows * q2 * itemsize))
    if cached:
        right = JacobianFactors.stack(first, right_batches, n2)
        right_blocks = [right]
        left_source = (
            (right.rows(slice(i, i + left_rows)) for i in range(0, n2, left_rows))
            if same
            else blocks(factor_batches(X), left_rows)
        )
    else:
        del first, right_batches
        right_blocks = None
        left_source = blocks(factor_batches(X), left_rows)
    row = 0
    for left in left_source:
        col = 0
        for right in right_blocks or blocks(factor_batches(X2), right_rows):
            block = tangent_kernel(left, right, structure)
            if structure == "trace":
                block = block / n_out
            theta[row : row + len(left), col : col + len(right)] = block.double().cpu().numpy()
            col += len(right)
        row += len(left)
    return theta


def alignment(learner, X, y, *, batch_size=None, dtype=torch.float64):
    """Alignment between the empirical NTK and the labels, ``Tr[Y^T Theta(X, X) Y]``.

    Definition 1 of [1]_ with the full class structure of the empirical kernel:

    .. math::

        A(X, Y) = \\operatorname{vec}(Y)^\\top \\, \\Theta(X, X) \\, \\operatorname{vec}(Y)
                = \\sum_{i, j} y_i^\\top \\Theta(x_i, x_j) \\, y_j
                = \\Big\\lVert \\sum_i J(x_i)^\\top y_i \\Big\\rVert^2,

    with ``y_i`` the one-hot label of ``x_i``. When ``Theta(x, x') = k(x, x') I_K`` (the
    infinite-width form) this is the paper's ``Tr[Y^T K Y]`` with ``Y`` the ``n x K`` label
    matrix. It is computed by the last identity (one backward pass per batch), never forming
    the ``nK x nK`` kernel.

    Parameters
    ----------
    learner : skorch.NeuralNet or modAL learner
        A fitted net; read in ``eval()`` mode, never modified.
    X : array-like of shape (n_samples, ...)
        Inputs.
    y : array-like of shape (n_samples,) or (n_samples, K)
        Class indices in ``[0, K)`` (one-hot encoded) or a target matrix used as is.
    batch_size : int, default=None
        Samples per batch; ``None`` uses the net's validation batch size.
    dtype : torch.dtype, default=torch.float64
        Computation dtype.

    Returns
    -------
    alignment : float

    References
    ----------
    .. [1] H. Wang, W. Huang, Z. Wu, A. Margenot, H. Tong and J. He, "Deep Active Learning
       by Leveraging Training Dynamics", NeurIPS 2022, Definition 1.
    """
    batch_size = check_batch_size(batch_size)
    fnet = functional_net(learner, dtype)
    with eval_mode(fnet.adapter.module):
        Y = one_hot_targets(y, fnet.n_outputs(X), n_rows(X))
        g = fnet.summed_gradient(_projection, X, Y, batch_size)
    return float(g @ g)


def generalization_bound(
    learner,
    X,
    y,
    *,
    structure="full",
    ridge=0.0,
    batch_size=32,
    max_bytes=_DEFAULT_MAX_BYTES,
    dtype=torch.float64,
):
    """The generalisation term ``B(X, Y) = sqrt(2 Tr[Y^T Theta^{-1} Y] / n)``.

    The data-dependent term of the NTK generalisation bound that Section 4.2 of [1]_ takes
    from Arora et al. [2]_ (their Theorem 5.1, there with a scalar kernel and ``y`` in
    ``R^n``): the smaller ``B``, the better the guarantee. With the empirical kernel's full
    class structure,

    .. math::

        B(X, Y) = \\sqrt{\\frac{2}{n}
            \\operatorname{vec}(Y)^\\top (\\Theta(X, X) + \\lambda I)^{-1}
            \\operatorname{vec}(Y)},

    ``Theta(X, X)`` the ``nK x nK`` empirical NTK and ``lambda`` the ``ridge``. With
    ``structure="trace"``, ``Theta`` is the ``n x n`` class-averaged kernel and the
    quadratic form is ``Tr[Y^T (Theta + lambda I)^{-1} Y]`` over the ``n x K`` label matrix.
    (The paper writes ``Tr[Y^T Theta^{-1} Y]``; which class structure it means could not be
    checked against its text, so both are offered.)

    Parameters
    ----------
    learner : skorch.NeuralNet or modAL learner
        A fitted net; read in ``eval()`` mode, never modified.
    X : array-like of shape (n_samples, ...)
        Inputs.
    y : array-like of shape (n_samples,) or (n_samples, K)
        Class indices (one-hot encoded) or a target matrix.
    structure : {"full", "trace"}, default="full"
        Kernel structure, as in :func:`empirical_ntk`.
    ridge : float, default=0.0
        Added to the kernel's diagonal. The empirical kernel has rank at most ``P`` (the
        number of parameters), so with ``nK > P`` it is singular and a positive ridge is
        needed.
    batch_size, max_bytes, dtype
        As in :func:`empirical_ntk`.

    Returns
    -------
    bound : float

    Raises
    ------
    ValueError
        If the kernel is not positive definite (numerically); the message says to use a
        ridge or the ``"trace"`` structure.

    References
    ----------
    .. [1] H. Wang, W. Huang, Z. Wu, A. Margenot, H. Tong and J. He, "Deep Active Learning
       by Leveraging Training Dynamics", NeurIPS 2022, Section 4.2.
    .. [2] S. Arora, S. Du, W. Hu, Z. Li and R. Wang, "Fine-Grained Analysis of
       Optimization and Generalization for Overparameterized Two-Layer Neural Networks",
       ICML 2019.
    """
    structure = _check_structure(structure)
    ridge = _check_ridge(ridge)
    theta = empirical_ntk(
        learner,
        X,
        structure=structure,
        batch_size=batch_size,
        max_bytes=max_bytes,
        dtype=dtype,
    )
    n = theta.shape[0]
    Y = one_hot_targets(y, _n_outputs_of(learner, X, theta, structure), n)
    if structure == "full":
        K = theta.shape[2]
        matrix = theta.transpose(0, 2, 1, 3).reshape(n * K, n * K)
        rhs = Y.reshape(-1)
    else:
        matrix, rhs = theta, Y
    matrix = (matrix + matrix.T) / 2 + ridge * np.eye(len(matrix))
    try:
        factor = scipy.linalg.cho_factor(matrix, lower=True)
    except np.linalg.LinAlgError as exc:
        raise ValueError(
            f"The {structure!r} empirical NTK of these {n} samples ({len(matrix)} x "
            f"{len(matrix)}) is not positive definite with ridge={ridge}; pass a positive "
            "ridge, or structure='trace'."
        ) from exc
    quad = float(np.sum(rhs * scipy.linalg.cho_solve(factor, rhs)))
    return float(np.sqrt(2.0 * quad / n))


def ntk_mmd(learner, X_initial, X_current, *, batch_size=32, dtype=torch.float64):
    """Maximum mean discrepancy between two input sets under the empirical NTK.

    Section 4.2 of [1]_ bounds the effect of the active learner's non-i.i.d. labeled set by
    the MMD between the initial (random) labeled set ``S_0`` and the current one ``S`` in the
    NTK's reproducing kernel Hilbert space. Here the kernel is the class-averaged scalar NTK
    ``k(x, x') = Tr[Theta(x, x')] / K = <J(x), J(x')>_F / K``, whose feature map is
    ``vec(J(x)) / sqrt(K)``, and the (biased, V-statistic) MMD is

    .. math::

        \\operatorname{MMD}(S_0, S) = \\Big\\lVert \\frac{1}{|S_0|} \\sum_{x \\in S_0} J(x)
            - \\frac{1}{|S|} \\sum_{x \\in S} J(x) \\Big\\rVert_F \\Big/ \\sqrt{K},

    equal to ``sqrt(mean k(S0, S0) + mean k(S, S) - 2 mean k(S0, S))``. Only the mean
    Jacobians are formed (memory ``K x P``), never the kernel. The paper's exact choice of
    kernel normalisation and estimator could not be checked against its text; this scalar
    kernel and the V-statistic are our reading.

    Parameters
    ----------
    learner : skorch.NeuralNet or modAL learner
        A fitted net; read in ``eval()`` mode, never modified.
    X_initial : array-like of shape (n_initial, ...)
        The initial labeled inputs ``S_0``.
    X_current : array-like of shape (n_current, ...)
        The current labeled inputs ``S``.
    batch_size : int, default=32
        Samples per Jacobian batch.
    dtype : torch.dtype, default=torch.float64
        Computation dtype.

    Returns
    -------
    mmd : float

    References
    ----------
    .. [1] H. Wang, W. Huang, Z. Wu, A. Margenot, H. Tong and J. He, "Deep Active Learning
       by Leveraging Training Dynamics", NeurIPS 2022, Section 4.2.
    .. [2] A. Gretton, K. Borgwardt, M. Rasch, B. Schoelkopf and A. Smola, "A Kernel
       Two-Sample Test", JMLR 2012.
    """
    batch_size = check_batch_size(batch_size) or 32
    fnet = functional_net(learner, dtype)
    with eval_mode(fnet.adapter.module):
        mean_initial = _mean_jacobian(fnet, X_initial, batch_size)
        mean_current = _mean_jacobian(fnet, X_current, batch_size)
    diff = mean_initial - mean_current
    return float(torch.sqrt((diff * diff).sum() / diff.shape[0]))


def _mean_jacobian(fnet, X, batch_size):
    n = n_rows(X)
    if n == 0:
        raise ValueError("Cannot compute an MMD with an empty set of inputs.")
    total = None
    for X_batch, _ in fnet.batches(X, None, batch_size):
        J = fnet.jacobians(X_batch).detach().to(torch.float64).sum(0)
        total = J if total is None else total + J
    return total / n


def _projection(outputs, targets):
    """``y_i^T f(x_i)`` per sample: its gradient is ``J(x_i)^T y_i``."""
    return (outputs * targets.to(outputs.dtype)).sum(1)


def _n_outputs_of(learner, X, theta, structure):
    if structure == "full":
        return theta.shape[2]
    fnet = functional_net(learner, torch.float64)
    with eval_mode(fnet.adapter.module):
        return fnet.n_outputs(X)


def _check_structure(structure):
    if structure not in _STRUCTURES:
        raise ValueError(f"structure must be one of {_STRUCTURES}, got {structure!r}.")
    return structure


def _check_method(method):
    if method not in _METHODS:
        raise ValueError(f"method must be one of {_METHODS}, got {method!r}.")
    return method


def _check_max_bytes(max_bytes):
    if isinstance(max_bytes, bool) or not isinstance(max_bytes, numbers.Integral):
        raise TypeError(f"max_bytes must be a positive integer, got {max_bytes!r}.")
    if max_bytes < 1:
        raise ValueError(f"max_bytes must be a positive integer, got {max_bytes}.")
    return int(max_bytes)


def _check_ridge(ridge):
    if isinstance(ridge, bool) or not isinstance(ridge, numbers.Real) or not ridge >= 0:
        raise ValueError(f"ridge must be a non-negative number, got {ridge!r}.")
    return float(ridge)
