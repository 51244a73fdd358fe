"""Factored Jacobians and the tangent kernel against a brute-force per-sample Jacobian."""

import copy
import warnings

import pytest
import torch
from torch import nn

from skdynal.gradients import _engine, jacobian_factors, register_rule, tangent_kernel
from skdynal.gradients._rules import _RULES, MaterializingRule

from . import _models

N_LEFT, N_RIGHT = 5, 4


@pytest.fixture(autouse=True)
def _fresh_warning_registry(monkeypatch):
    monkeypatch.setattr(_engine, "_WARNED", set())


def brute_jacobian(module, inputs):
    """``(n, K, P)``: one ``torch.autograd.grad`` call per sample and output, no hooks."""
    params = [p for p in module.parameters() if p.requires_grad]
    rows = []
    n = next(iter(inputs.values())).shape[0] if isinstance(inputs, dict) else len(inputs)
    for i in range(n):
        if isinstance(inputs, dict):
            out = module(**{k: v[i : i + 1] for k, v in inputs.items()})
        else:
            out = module(inputs[i : i + 1])
        out = out[0] if isinstance(out, tuple) else out
        per_output = []
        for k in range(out.shape[1]):
            grads = torch.autograd.grad(out[0, k], params, retain_graph=True, allow_unused=True)
            per_output.append(
                torch.cat(
                    [
                        (torch.zeros_like(p) if g is None else g).reshape(-1)
                        for g, p in zip(grads, params, strict=True)
                    ]
                )
            )
        rows.append(torch.stack(per_output))
    return torch.stack(rows).double()


def check_kernel(module, left, right):
    """Both structures, left-right and left-left, against the brute-force Jacobian."""
    module.eval()
    before = copy.deepcopy(module.state_dict())
    J_left, J_right = brute_jacobian(module, left), brute_jacobian(module, right)
    f_left = jacobian_factors(module, left)
    f_right = jacobian_factors(module, right)
    full = torch.einsum("ikp,jlp->ijkl", J_left, J_right)
    scale = full.abs().max()
    assert scale > 0
    got = tangent_kernel(f_left, f_right, "full").double()
    assert got.shape == full.shape
    assert (got - full).abs().max() <= 1e-10 * scale
    trace = tangent_kernel(f_left, f_right, "trace").double()
    assert (trace - torch.einsum("ijkk->ij", full)).abs().max() <= 1e-10 * scale
    same = tangent_kernel(f_left, f_left, "full").double()
    assert (same - torch.einsum("ikp,jlp->ijkl", J_left, J_left)).abs().max() <= 1e-10 * scale
    # the factors are a faithful split of the samples
    halves = [f_left.rows(slice(0, 2)), f_left.rows(slice(2, None))]
    joined = type(f_left).concatenate(halves)
    assert torch.equal(
        tangent_kernel(joined, f_right, "trace"), tangent_kernel(f_left, f_right, "trace")
    )
    stacked = type(f_left).stack(halves[0], iter(halves[1:]), N_LEFT)
    assert torch.equal(
        tangent_kernel(stacked, f_right, "full"), tangent_kernel(f_left, f_right, "full")
    )
    with pytest.raises(ValueError, match="factors of 6 samples"):
        type(f_left).stack(halves[0], iter(halves[1:]), N_LEFT + 1)
    assert torch.equal(
        f_left.outputs,
        module(left).detach() if not isinstance(left, dict) else module(**left).detach(),
    )
    after = module.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)
    assert all(p.grad is None for p in module.parameters())
    assert not module.training


def _x(*shape, seed=0):
    gen = torch.Generator().manual_seed(seed)
    return torch.randn(*shape, generator=gen, dtype=torch.float64)


def test_mlp_is_pure_gram_products():
    torch.manual_seed(0)
    model = _models.mlp().double()
    factors = jacobian_factors(model.eval(), _x(N_LEFT, 6))
    assert factors.dense is None and len(factors.outer) == 3
    check_kernel(model, _x(N_LEFT, 6), _x(N_RIGHT, 6, seed=1))


def test_softmax_outputs_and_frozen_weight():
    torch.manual_seed(0)
    model = nn.Sequential(_models.mlp(), nn.Softmax(dim=1)).double()
    model[0][2].weight.requires_grad_(False)  # bias-only Linear
    model[0][0].bias.requires_grad_(False)
    check_kernel(model, _x(N_LEFT, 6), _x(N_RIGHT, 6, seed=1))


@pytest.mark.parametrize("make", [_models.vanilla_cnn, _models.SmallResNet, _models.small_vgg])
def test_conv_nets_with_batch_norm_in_eval(make):
    torch.manual_seed(0)
    model = _models.randomize_batch_norm(make().double())
    check_kernel(model, _x(N_LEFT, 3, 8, 8), _x(N_RIGHT, 3, 8, 8, seed=1))


def test_conv1d_group_norm_and_small_conv_buffer():
    torch.manual_seed(0)
    model = _models.randomize_batch_norm(_models.conv1d_net().double()).eval()
    check_kernel(model, _x(N_LEFT, 2, 12), _x(N_RIGHT, 2, 12, seed=1))
    left = _x(N_LEFT, 2, 12)
    small = jacobian_factors(model, left, max_buffer_bytes=1)  # one sample per chunk
    big = jacobian_factors(model, left)
    assert torch.allclose(small.dense, big.dense, rtol=1e-12, atol=0)


def test_sequence_linear_layer_norm_and_embedding_fallback():
    torch.manual_seed(0)
    model = _models.TextNet().double()
    gen = torch.Generator().manual_seed(0)
    left = torch.randint(0, 12, (N_LEFT, 6), generator=gen)
    right = torch.randint(0, 12, (N_RIGHT, 6), generator=gen)
    with pytest.warns(UserWarning, match="embed"):
        check_kernel(model, left, right)


class Scale(nn.Module):
    """A layer with a parameter and no gradient rule."""

    def __init__(self, n):
        super().__init__()
        self.weight = nn.Parameter(torch.linspace(0.5, 1.5, n))

    def forward(self, x):
        return x * self.weight


def test_layer_without_rule_takes_torch_func():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(6, 8), nn.Tanh(), Scale(8), nn.Linear(8, 3)).double()
    with pytest.warns(UserWarning, match=r"2 \(no rule for Scale\)"):
        check_kernel(model, _x(N_LEFT, 6), _x(N_RIGHT, 6, seed=1))


def test_registered_materializing_rule_is_used(monkeypatch):
    class ScaleRule(MaterializingRule):
        def per_sample_gradients(self, module, args, delta, names):
            return {"weight": args[0] * delta}

    monkeypatch.setitem(_RULES, Scale, ScaleRule())
    register_rule(Scale, ScaleRule())
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(6, 8), nn.Tanh(), Scale(8), nn.Linear(8, 3)).double()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        check_kernel(model, _x(N_LEFT, 6), _x(N_RIGHT, 6, seed=1))


def test_reused_and_foreign_parameters_fall_back_exactly():
    torch.manual_seed(0)
    with pytest.warns(UserWarning, match="called 2 times"):
        check_kernel(_models.ReusedLinear().double(), _x(N_LEFT, 5), _x(N_RIGHT, 5, seed=1))

    class Tied(nn.Module):
        def __init__(self):
            super().__init__()
            self.a = nn.Linear(4, 4)
            self.b = nn.Linear(4, 3)

        def forward(self, x):
            h = torch.tanh(self.a(x))
            return self.b(h) + nn.functional.linear(h, self.a.weight)[:, :3]

    with pytest.warns(UserWarning, match="used outside"):
        check_kernel(Tied().double(), _x(N_LEFT, 4), _x(N_RIGHT, 4, seed=1))


def test_dict_inputs_tuple_outputs_and_unused_layer():
    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.a = nn.Linear(4, 5)
            self.unused = nn.Linear(4, 5)
            self.b = nn.Linear(5, 3)

        def forward(self, x, z):
            return self.b(torch.tanh(self.a(x))) * z, None

    torch.manual_seed(0)
    model = Net().double().eval()
    left = {"x": _x(N_LEFT, 4), "z": _x(N_LEFT, 1, seed=2)}
    right = {"x": _x(N_RIGHT, 4, seed=1), "z": _x(N_RIGHT, 1, seed=3)}
    J = brute_jacobian(model, left)
    theta = tangent_kernel(jacobian_factors(model, left), jacobian_factors(model, right))
    expected = torch.einsum("ikp,jlp->ijkl", J, brute_jacobian(model, right))
    assert (theta - expected).abs().max() <= 1e-10 * expected.abs().max()


def test_errors():
    model = _models.mlp().double()
    with pytest.raises(TypeError, match=r"torch\.nn\.Module"):
        jacobian_factors(lambda x: x, _x(2, 6))
    with pytest.raises(ValueError, match="batch statistics"):
        jacobian_factors(nn.Sequential(nn.Linear(6, 3), nn.BatchNorm1d(3)).train(), _x(2, 6))
    with pytest.raises(ValueError, match=r"\(n_samples, n_outputs\)"):
        jacobian_factors(nn.Linear(6, 3).double(), _x(2, 4, 6))
    factors = jacobian_factors(model.eval(), _x(2, 6))
    with pytest.raises(ValueError, match="structure"):
        tangent_kernel(factors, factors, "diag")
    other = jacobian_factors(nn.Linear(6, 3).double(), _x(2, 6))
    with pytest.raises(ValueError, match="do not split the parameters the same way"):
        tangent_kernel(factors, other)


def test_layer_skipped_for_some_batches_cannot_be_combined():
    class Branchy(nn.Module):
        def __init__(self):
            super().__init__()
            self.a = nn.Linear(4, 4)
            self.extra = nn.Linear(4, 4)
            self.b = nn.Linear(4, 3)

        def forward(self, x):
            h = torch.tanh(self.a(x))
            if x.sum() > 0:
                h = self.extra(h)
            return self.b(h)

    model = Branchy().double().eval()
    with_extra = jacobian_factors(model, _x(3, 4).abs())
    without = jacobian_factors(model, -_x(3, 4).abs())
    with pytest.raises(ValueError, match="method='jacobian'"):
        tangent_kernel(with_extra, without)
    with pytest.raises(ValueError, match="method='jacobian'"):
        type(with_extra).concatenate([with_extra, without])
    # the batch that skipped the layer is still exact on its own (zero Jacobian there)
    left = -_x(3, 4).abs()
    J = brute_jacobian(model, left)
    theta = tangent_kernel(jacobian_factors(model, left), jacobian_factors(model, left))
    assert torch.allclose(theta, torch.einsum("ikp,jlp->ijkl", J, J), rtol=1e-10, atol=0)
