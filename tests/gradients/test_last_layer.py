"""The last-layer closed form against brute force restricted to that layer."""

import pytest
import torch
import torch.nn.functional as F
from _oracle import grad_stats as brute_force_grad_stats
from torch import nn

from skdynal.gradients import last_layer_grad_stats

from . import _models
from ._helpers import assert_matches, cross_entropy, random_direction

B = 6


def _data(*shape, seed=0):
    return torch.randn(
        B, *shape, dtype=torch.float64, generator=torch.Generator().manual_seed(seed)
    )


def _pseudo(model, x):
    with torch.no_grad():
        return model(x).argmax(-1)


@pytest.mark.parametrize("bias", [True, False])
def test_cross_entropy_matches_brute_force_on_last_layer(bias):
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(5, 8), nn.ReLU(), nn.Linear(8, 3, bias=bias)).double()
    model.eval()
    x = _data(5)
    y = _pseudo(model, x)
    direction = random_direction(model, torch.Generator().manual_seed(1))
    stats = last_layer_grad_stats(model, cross_entropy, x, y, direction)
    names = ["2.weight", "2.bias"] if bias else ["2.weight"]
    assert_matches(
        stats, brute_force_grad_stats(model, cross_entropy, x, y, direction, names=names)
    )


def test_closed_form_for_cross_entropy():
    # ||g||^2 = ||p - e_y||^2 (||h||^2 + 1), computed here by hand.
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(5, 8), nn.Tanh(), nn.Linear(8, 4)).double().eval()
    x = _data(5)
    y = _pseudo(model, x)
    with torch.no_grad():
        h = torch.tanh(model[0](x))
        residual = torch.softmax(model[2](h), 1) - F.one_hot(y, 4).double()
    expected = residual.pow(2).sum(1) * (h.pow(2).sum(1) + 1)
    stats = last_layer_grad_stats(model, cross_entropy, x, y)
    torch.testing.assert_close(stats.sq_norms, expected, rtol=1e-12, atol=0)
    assert stats.dots is None


def test_nll_on_probabilities_and_layer_by_name_or_module():
    torch.manual_seed(0)
    model = nn.Sequential(_models.mlp(), nn.Softmax(dim=-1)).double().eval()
    x = _data(6)
    y = _pseudo(model, x)

    def nll(probs, targets):
        return F.nll_loss(torch.log(probs), targets, reduction="none")

    direction = random_direction(model, torch.Generator().manual_seed(1))
    brute = brute_force_grad_stats(model, nll, x, y, direction, names=["0.4.weight", "0.4.bias"])
    assert_matches(last_layer_grad_stats(model, nll, x, y, direction), brute)
    assert_matches(last_layer_grad_stats(model, nll, x, y, direction, layer="0.4"), brute)
    assert_matches(last_layer_grad_stats(model, nll, x, y, direction, layer=model[0][4]), brute)
    # Another layer than the last one, by name.
    brute_first = brute_force_grad_stats(
        model, nll, x, y, direction, names=["0.0.weight", "0.0.bias"]
    )
    assert_matches(last_layer_grad_stats(model, nll, x, y, direction, layer="0.0"), brute_first)


def test_frozen_bias_and_sequence_input():
    torch.manual_seed(0)
    model = _models.TextNet().double().eval()
    model.head.bias.requires_grad_(False)
    tokens = torch.randint(0, 12, (B, 7), generator=torch.Generator().manual_seed(0))
    y = _pseudo(model, tokens)
    direction = random_direction(model, torch.Generator().manual_seed(1))
    stats = last_layer_grad_stats(model, cross_entropy, tokens, y, direction)
    assert_matches(
        stats,
        brute_force_grad_stats(model, cross_entropy, tokens, y, direction, names=["head.weight"]),
    )
    # A Linear applied to a (B, T, d) sequence.
    stats = last_layer_grad_stats(model, cross_entropy, tokens, y, direction, layer="proj")
    assert_matches(
        stats,
        brute_force_grad_stats(
            model, cross_entropy, tokens, y, direction, names=["proj.weight", "proj.bias"]
        ),
    )


def test_grad_mode_hooks_and_module_restored():
    torch.manual_seed(0)
    model = _models.mlp().double().eval()
    x = _data(6)
    y = _pseudo(model, x)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    with torch.no_grad():
        last_layer_grad_stats(model, cross_entropy, x, y)
        assert not torch.is_grad_enabled()
    assert torch.is_grad_enabled()
    for k, v in model.state_dict().items():
        assert torch.equal(v, before[k])
    assert all(p.grad is None for p in model.parameters())
    for m in model.modules():
        assert not m._forward_hooks and not m._forward_pre_hooks
    assert not model.training


def test_bad_arguments():
    torch.manual_seed(0)
    x = _data(5)
    y = torch.zeros(B, dtype=torch.long)
    with pytest.raises(ValueError, match=r"no torch\.nn\.Linear"):
        last_layer_grad_stats(nn.Sequential(nn.Conv1d(1, 1, 1)), cross_entropy, x, y)
    reused = _models.ReusedLinear().double().eval()
    with pytest.raises(ValueError, match="called 2 times"):
        last_layer_grad_stats(reused, cross_entropy, x, y, layer="inner")
    model = _models.mlp(n_in=5).double().eval()
    with pytest.raises(ValueError, match="no submodule"):
        last_layer_grad_stats(model, cross_entropy, x, y, layer="nope")
    with pytest.raises(TypeError, match="must be a torch"):
        last_layer_grad_stats(model, cross_entropy, x, y, layer="1")
    with pytest.raises(ValueError, match=r"lacks the entry '4\.bias'"):
        last_layer_grad_stats(model, cross_entropy, x, y, {"4.weight": model[4].weight})
