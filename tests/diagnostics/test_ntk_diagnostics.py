import numpy as np
import pytest
import torch
from conftest import (
    N_CLASSES,
    brute_jacobian,
    brute_kernel,
    flat_block_matrix,
    make_data,
    make_net,
    one_hot,
)

from skdynal.diagnostics import (
    KernelTooLargeError,
    alignment,
    empirical_ntk,
    generalization_bound,
    ntk_mmd,
    training_dynamics,
)


def test_empirical_ntk_matches_entrywise_kernel(ce_net, data):
    X_labeled, _, X_query, _ = data
    expected = brute_kernel(ce_net.module_, X_labeled, X_query)
    theta = empirical_ntk(ce_net, X_labeled, X_query, batch_size=3)
    assert theta.shape == (7, 5, N_CLASSES, N_CLASSES)
    assert theta.dtype == np.float64
    np.testing.assert_allclose(theta, expected, rtol=1e-10, atol=1e-12)


def test_empirical_ntk_symmetric_and_psd_on_one_set(ce_net, data):
    X_labeled = data[0]
    theta = empirical_ntk(ce_net, X_labeled, batch_size=4)
    np.testing.assert_allclose(theta, brute_kernel(ce_net.module_, X_labeled, X_labeled),
                               rtol=1e-10, atol=1e-12)
    M = theta.transpose(0, 2, 1, 3).reshape(7 * N_CLASSES, 7 * N_CLASSES)
    np.testing.assert_allclose(M, flat_block_matrix(theta))
    np.testing.assert_allclose(M, M.T, atol=1e-12)
    assert np.linalg.eigvalsh(M).min() > -1e-10


def test_trace_structure_is_class_average(ce_net, data):
    X_labeled, _, X_query, _ = data
    full = brute_kernel(ce_net.module_, X_labeled, X_query)
    trace = empirical_ntk(ce_net, X_labeled, X_query, structure="trace", batch_size=2)
    expected = np.array([[np.trace(full[i, j]) / N_CLASSES for j in range(5)]
                         for i in range(7)])
    np.testing.assert_allclose(trace, expected, rtol=1e-10)


def test_recomputed_blocks_equal_cached(ce_net, data):
    X_labeled, _, X_query, _ = data
    cached = empirical_ntk(ce_net, X_labeled, X_query, batch_size=2)
    # room for the output and two Jacobian batches, not for caching X_query's Jacobians
    n_params = sum(p.numel() for p in ce_net.module_.parameters())
    out_bytes = 7 * 5 * N_CLASSES**2 * 8
    jac_bytes = 2 * 2 * N_CLASSES * n_params * 8
    tight = out_bytes + jac_bytes + 5 * N_CLASSES * n_params * 8 - 1
    recomputed = empirical_ntk(ce_net, X_labeled, X_query, batch_size=2, max_bytes=tight)
    np.testing.assert_allclose(recomputed, cached, rtol=1e-12)


def test_memory_guard_raises_before_computing(ce_net, data):
    X_labeled = data[0]
    with pytest.raises(KernelTooLargeError, match=r"GiB.*max_bytes=1000") as info:
        empirical_ntk(ce_net, X_labeled, max_bytes=1000)
    assert isinstance(info.value, MemoryError)
    assert isinstance(info.value, ValueError)
    assert "structure='trace'" in str(info.value)


def test_alignment_definition_1(ce_net, data):
    X_labeled, y_labeled, _, _ = data
    theta = brute_kernel(ce_net.module_, X_labeled, X_labeled)
    Y = one_hot(y_labeled)
    expected = sum(Y[i] @ theta[i, j] @ Y[j] for i in range(7) for j in range(7))
    assert alignment(ce_net, X_labeled, y_labeled, batch_size=3) == pytest.approx(
        expected, rel=1e-10
    )
    # a 2-D target matrix is used as is
    assert alignment(ce_net, X_labeled, 2 * Y) == pytest.approx(4 * expected, rel=1e-10)


def test_mse_dynamics_is_residual_quadratic_form_and_near_alignment_at_zero_output(data):
    X_labeled, y_labeled, _, _ = data
    net = make_net(seed=3)
    module = net.module_
    theta = brute_kernel(module, X_labeled, X_labeled)
    F = module(torch.as_tensor(X_labeled)).detach().numpy()
    R = (F - one_hot(y_labeled)).reshape(-1)
    M = flat_block_matrix(theta)
    assert training_dynamics(net, X_labeled, y_labeled, loss="mse") == pytest.approx(
        R @ M @ R, rel=1e-10
    )
    # zero the last layer: outputs vanish and G_MSE equals the alignment exactly
    with torch.no_grad():
        module.out.weight.zero_()
        module.out.bias.zero_()
    assert training_dynamics(net, X_labeled, y_labeled, loss="mse") == pytest.approx(
        alignment(net, X_labeled, y_labeled), rel=1e-12
    )


def test_generalization_bound_against_explicit_inverse(ce_net, data):
    X_labeled, y_labeled, _, _ = data
    X, y = X_labeled[:5], y_labeled[:5]
    M = flat_block_matrix(brute_kernel(ce_net.module_, X, X))
    vecY = one_hot(y).reshape(-1)
    expected = np.sqrt(2 * vecY @ np.linalg.inv(M) @ vecY / 5)
    assert generalization_bound(ce_net, X, y) == pytest.approx(expected, rel=1e-6)
    expected_ridge = np.sqrt(2 * vecY @ np.linalg.inv(M + 0.5 * np.eye(15)) @ vecY / 5)
    assert generalization_bound(ce_net, X, y, ridge=0.5) == pytest.approx(
        expected_ridge, rel=1e-10
    )


def test_generalization_bound_trace_structure(ce_net, data):
    X_labeled, y_labeled, _, _ = data
    full = brute_kernel(ce_net.module_, X_labeled, X_labeled)
    k = np.trace(full, axis1=2, axis2=3) / N_CLASSES
    Y = one_hot(y_labeled)
    expected = np.sqrt(2 * np.trace(Y.T @ np.linalg.inv(k) @ Y) / 7)
    assert generalization_bound(ce_net, X_labeled, y_labeled, structure="trace") == (
        pytest.approx(expected, rel=1e-8)
    )


def test_generalization_bound_singular_kernel_says_what_to_do(ce_net):
    # nK = 60 > P = 43: the full kernel has rank at most P
    X, y = make_data(5, 20)
    with pytest.raises(ValueError, match="ridge"):
        generalization_bound(ce_net, X, y)
    assert np.isfinite(generalization_bound(ce_net, X, y, ridge=1e-3))


def test_ntk_mmd_matches_kernel_formula(ce_net, data):
    X_labeled, _, X_query, _ = data
    module = ce_net.module_
    def k(A, B):
        return np.trace(brute_kernel(module, A, B), axis1=2, axis2=3) / N_CLASSES
    mmd2 = k(X_labeled, X_labeled).mean() + k(X_query, X_query).mean() - 2 * k(
        X_labeled, X_query
    ).mean()
    assert ntk_mmd(ce_net, X_labeled, X_query, batch_size=3) == pytest.approx(
        np.sqrt(mmd2), rel=1e-9
    )
    assert ntk_mmd(ce_net, X_labeled, X_labeled) == pytest.approx(0.0, abs=1e-12)


def test_brute_jacobian_shape_sanity(ce_net, data):
    # the reference itself: J has one row per class and one column per parameter
    n_params = sum(p.numel() for p in ce_net.module_.parameters())
    assert brute_jacobian(ce_net.module_, data[0][0]).shape == (N_CLASSES, n_params)


@pytest.mark.parametrize(
    ("kwargs", "error"),
    [
        ({"structure": "diag"}, ValueError),
        ({"max_bytes": 0}, ValueError),
        ({"max_bytes": 1.5}, TypeError),
        ({"batch_size": 0}, ValueError),
        ({"dtype": torch.int64}, TypeError),
    ],
)
def test_empirical_ntk_rejects_bad_arguments(ce_net, data, kwargs, error):
    with pytest.raises(error):
        empirical_ntk(ce_net, data[0], **kwargs)


def test_labels_out_of_range_rejected(ce_net, data):
    with pytest.raises(ValueError, match=r"\[0, 3\)"):
        alignment(ce_net, data[0], np.full(7, 3))
    with pytest.raises(ValueError, match="rows"):
        alignment(ce_net, data[0], data[1][:3])
