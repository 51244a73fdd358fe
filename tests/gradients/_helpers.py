"""Shared test utilities for the gradient engine tests."""

import torch
import torch.nn.functional as F


def cross_entropy(outputs, targets):
    return F.cross_entropy(outputs, targets, reduction="none")


def squared_error(outputs, targets):
    """A per-sample loss for single layers: nonlinear in the output, any output shape."""
    return (outputs.tanh() - targets).pow(2).reshape(outputs.shape[0], -1).sum(1)


def random_direction(module, generator=None):
    return {
        name: torch.randn(p.shape, dtype=p.dtype, generator=generator)
        for name, p in module.named_parameters()
        if p.requires_grad
    }


def assert_matches(stats, brute, rtol=1e-9):
    """Engine stats agree with the brute-force loop, relative to the largest magnitude."""
    sq, dots = brute
    assert stats.sq_norms.shape == sq.shape
    scale = sq.abs().max().clamp_min(1e-300)
    err = (stats.sq_norms.double() - sq).abs().max()
    assert err <= rtol * scale, f"sq_norms off by {err / scale:.3g} (relative)"
    assert torch.all(sq > 0), "degenerate test: a per-sample gradient is zero"
    if dots is None:
        assert stats.dots is None
        return
    scale = dots.abs().max().clamp_min(1e-300)
    err = (stats.dots.double() - dots).abs().max()
    assert err <= rtol * scale, f"dots off by {err / scale:.3g} (relative)"
