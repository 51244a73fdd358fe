import numpy as np
import pytest
import torch
from _diagnostics_nets import (
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
    _ntk,
    alignment,
    empirical_ntk,
    generalization_bound,
    ntk_mmd,
    training_dynamics,
)
from skdynal.gradients import jacobian_factors


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
    np.testing.assert_allclose(
        theta, brute_kernel(ce_net.module_, X_labeled, X_labeled), rtol=1e-10, atol=1e-12
    )
    M = theta.transpose(0, 2, 1, 3).reshape(7 * N_CLASSES, 7 * N_CLASSES)
    np.testing.assert_allclose(M, flat_block_matrix(theta))
    np.testing.assert_allclose(M, M.T, atol=1e-12)
    assert np.linalg.eigvalsh(M).min() > -1e-10


def test_trace_structure_is_class_average(ce_net, data):
    X_labeled, _, X_query, _ = data
    full = brute_kernel(ce_net.module_, X_labeled, X_query)
    trace = empirical_ntk(ce_net, X_labeled, X_query, structure="trace", batch_size=2)
    expected = np.array([[np.trace(full[i, j]) / N_CLASSES for j in range(5)] for i in range(7)])
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

    mmd2 = (
        k(X_labeled, X_labeled).mean()
        + k(X_query, X_query).mean()
        - 2 * k(X_labeled, X_query).mean()
    )
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


@pytest.mark.parametrize("structure", ["full", "trace"])
def test_layerwise_blocks_recomputed_under_tight_memory_equal_jacobian(
    ce_net, data, structure, monkeypatch
):
    X_labeled, _, X_query, _ = data
    calls = []

    def counting(module, inputs, **kwargs):
        calls.append(len(inputs))
        return jacobian_factors(module, inputs, **kwargs)

    monkeypatch.setattr(_ntk, "jacobian_factors", counting)
    reference = empirical_ntk(ce_net, X_labeled, X_query, structure=structure, method="jacobian")
    n_params = sum(p.numel() for p in ce_net.module_.parameters())
    q2 = N_CLASSES**2 if structure == "full" else 1
    # exactly the guard's minimum: the output plus two Jacobian batches of one sample; the
    # factors of X_query (5 x 288 bytes) no longer fit in half of what is left
    tight = 7 * 5 * q2 * 8 + 2 * N_CLASSES * n_params * 8
    theta = empirical_ntk(
        ce_net, X_labeled, X_query, structure=structure, batch_size=1, max_bytes=tight
    )
    np.testing.assert_allclose(theta, reference, rtol=1e-12, atol=1e-14)
    assert sum(calls) > 7 + 5  # X_query's factors were recomputed for later left blocks
    calls.clear()
    empirical_ntk(ce_net, X_labeled, X_query, structure=structure, batch_size=1)
    assert sum(calls) == 7 + 5  # with room to cache, every sample is factored once
    with pytest.raises(KernelTooLargeError):
        empirical_ntk(
            ce_net, X_labeled, X_query, structure=structure, batch_size=1, max_bytes=tight - 1
        )


def test_layerwise_equals_jacobian_on_float32_cnn_with_batch_norm(digits):
    from _nets import DigitsCNN, fitted_net

    X, y = digits
    X = X.reshape(-1, 1, 8, 8)
    net = fitted_net(X[:40], y[:40], module=DigitsCNN)
    module = net.module_
    module.train()
    state = {k: v.clone() for k, v in module.state_dict().items()}
    grads = [p.grad.clone() for p in module.parameters()]  # left over from fitting
    for structure in ["full", "trace"]:
        layerwise = empirical_ntk(net, X[:9], X[40:46], structure=structure, batch_size=4)
        reference = empirical_ntk(
            net, X[:9], X[40:46], structure=structure, batch_size=4, method="jacobian"
        )
        scale = np.abs(reference).max()
        assert np.abs(layerwise - reference).max() <= 1e-12 * scale
        same = empirical_ntk(net, X[:9], structure=structure)
        np.testing.assert_allclose(
            same[:, :9],
            empirical_ntk(net, X[:9], X[:9], structure=structure, method="jacobian"),
            rtol=1e-11,
            atol=1e-12 * scale,
        )
    # the fitted float32 module is untouched: same weights, dtype, mode and .grad
    assert module.training
    assert all(torch.equal(state[k], v) for k, v in module.state_dict().items())
    for p, g in zip(module.parameters(), grads, strict=True):
        assert p.dtype == torch.float32 and torch.equal(p.grad, g)


def test_empirical_ntk_rejects_unknown_method(ce_net, data):
    with pytest.raises(ValueError, match="method must be one of"):
        empirical_ntk(ce_net, data[0], method="vmap")
