"""Each per-layer rule alone against the brute-force per-sample loop (float64)."""

import pytest
import torch
from _oracle import grad_stats as brute_force_grad_stats
from torch import nn

from skdynal.gradients import MaterializingRule, get_rule, grad_stats, register_rule
from skdynal.gradients._rules import _RULES, _use_gram

from ._helpers import assert_matches, random_direction, squared_error

B = 5


def _check_layer(layer, x, *, frozen=(), max_buffer_bytes=2**27, seed=0, with_direction=True):
    gen = torch.Generator().manual_seed(seed)
    layer = layer.double().eval()
    for name in frozen:
        getattr(layer, name).requires_grad_(False)
    with torch.no_grad():
        out = layer(x)
    targets = torch.randn(out.shape, dtype=torch.float64, generator=gen)
    direction = random_direction(layer, gen) if with_direction else None
    stats = grad_stats(
        layer, squared_error, x, targets, direction, max_buffer_bytes=max_buffer_bytes
    )
    brute = brute_force_grad_stats(layer, squared_error, x, targets, direction)
    assert_matches(stats, brute)
    return stats


def _x(*shape, seed=1):
    return torch.randn(*shape, dtype=torch.float64, generator=torch.Generator().manual_seed(seed))


@pytest.mark.parametrize("with_direction", [True, False])
@pytest.mark.parametrize("bias", [True, False])
@pytest.mark.parametrize(
    "shape",
    [
        (B, 7),  # 2-D: norm products
        (B, 2, 7),  # sequence with few positions: Gram form
        (B, 9, 7),  # sequence, materialised
        (B, 2, 3, 7),  # several leading dimensions
    ],
)
def test_linear(shape, bias, with_direction):
    torch.manual_seed(0)
    _check_layer(nn.Linear(7, 5, bias=bias), _x(*shape), with_direction=with_direction)


def test_linear_sequence_covers_both_forms():
    for with_dot in (True, False):
        assert _use_gram(2, 7, 5, with_dot)
        assert not _use_gram(9, 7, 5, with_dot)


CONV2D_CASES = [
    dict(in_channels=3, out_channels=4, kernel_size=3),
    dict(in_channels=3, out_channels=4, kernel_size=3, stride=2, padding=1),
    dict(in_channels=3, out_channels=5, kernel_size=(2, 3), stride=(2, 1), padding=(1, 2)),
    dict(in_channels=3, out_channels=4, kernel_size=3, dilation=2, padding=2),
    dict(in_channels=4, out_channels=6, kernel_size=3, groups=2, padding=1),
    dict(in_channels=4, out_channels=4, kernel_size=3, groups=4),  # depthwise
    dict(in_channels=3, out_channels=4, kernel_size=3, padding="same"),
    dict(in_channels=3, out_channels=4, kernel_size=3, padding=1, padding_mode="reflect"),
    dict(in_channels=3, out_channels=4, kernel_size=3, padding=1, padding_mode="circular"),
    dict(in_channels=8, out_channels=8, kernel_size=3),  # on 4x4: T = 4, Gram form
]


@pytest.mark.parametrize("with_direction", [True, False])
@pytest.mark.parametrize("bias", [True, False])
@pytest.mark.parametrize("kwargs", CONV2D_CASES)
def test_conv2d(kwargs, bias, with_direction):
    torch.manual_seed(0)
    size = (4, 4) if kwargs["in_channels"] == 8 else (7, 9)
    _check_layer(
        nn.Conv2d(**kwargs, bias=bias),
        _x(B, kwargs["in_channels"], *size),
        with_direction=with_direction,
    )


def test_conv_cases_cover_both_forms():
    # 3x3 conv 3->4 on 7x9: T = 35 -> materialise; 8->8 on 4x4: T = 4 -> Gram;
    # Conv1d 16->16, k=3 on length 5: T = 3 -> Gram.
    for with_dot in (True, False):
        assert not _use_gram(35, 27, 4, with_dot)
        assert _use_gram(4, 72, 8, with_dot)
        assert _use_gram(3, 48, 16, with_dot)


CONV1D_CASES = [
    dict(in_channels=3, out_channels=4, kernel_size=3),
    dict(in_channels=3, out_channels=4, kernel_size=4, stride=3, padding=2),
    dict(in_channels=3, out_channels=4, kernel_size=2, dilation=3),
    dict(in_channels=6, out_channels=4, kernel_size=3, groups=2, padding=1),
    dict(in_channels=3, out_channels=4, kernel_size=3, padding="same", padding_mode="replicate"),
    dict(in_channels=16, out_channels=16, kernel_size=3),  # on length 5: Gram form
]


@pytest.mark.parametrize("with_direction", [True, False])
@pytest.mark.parametrize("bias", [True, False])
@pytest.mark.parametrize("kwargs", CONV1D_CASES)
def test_conv1d(kwargs, bias, with_direction):
    torch.manual_seed(0)
    length = 5 if kwargs["in_channels"] == 16 else 11
    _check_layer(
        nn.Conv1d(**kwargs, bias=bias),
        _x(B, kwargs["in_channels"], length),
        with_direction=with_direction,
    )


def _with_running_stats(bn, seed=2):
    gen = torch.Generator().manual_seed(seed)
    bn.running_mean.copy_(torch.randn(bn.num_features, generator=gen))
    bn.running_var.copy_(torch.rand(bn.num_features, generator=gen) + 0.5)
    with torch.no_grad():
        bn.weight.copy_(torch.randn(bn.num_features, generator=gen))
        bn.bias.copy_(torch.randn(bn.num_features, generator=gen))
    return bn


@pytest.mark.parametrize(
    ("layer", "shape"),
    [
        (lambda: nn.BatchNorm1d(4), (B, 4)),
        (lambda: nn.BatchNorm1d(4), (B, 4, 6)),
        (lambda: nn.BatchNorm2d(3), (B, 3, 5, 4)),
    ],
)
@pytest.mark.parametrize("frozen", [(), ("weight",), ("bias",)])
def test_batch_norm_eval(layer, shape, frozen):
    torch.manual_seed(0)
    _check_layer(_with_running_stats(layer().double()), _x(*shape), frozen=frozen)


@pytest.mark.parametrize(
    ("kwargs", "shape"),
    [
        (dict(normalized_shape=6), (B, 6)),
        (dict(normalized_shape=6), (B, 4, 6)),
        (dict(normalized_shape=(3, 6)), (B, 3, 6)),
        (dict(normalized_shape=6, bias=False), (B, 4, 6)),
    ],
)
def test_layer_norm(kwargs, shape):
    torch.manual_seed(0)
    layer = nn.LayerNorm(**kwargs)
    with torch.no_grad():
        for p in layer.parameters():
            p.normal_()
    _check_layer(layer, _x(*shape))


@pytest.mark.parametrize("shape", [(B, 6), (B, 6, 5), (B, 6, 3, 4)])
@pytest.mark.parametrize("frozen", [(), ("weight",), ("bias",)])
def test_group_norm(shape, frozen):
    torch.manual_seed(0)
    layer = nn.GroupNorm(3, 6)
    with torch.no_grad():
        for p in layer.parameters():
            p.normal_()
    _check_layer(layer, _x(*shape), frozen=frozen)


@pytest.mark.parametrize("padding_idx", [None, 0])
def test_embedding_repeated_indices(padding_idx):
    torch.manual_seed(0)
    # Repeated indices inside a sample (their gradients add up) and index 0 used often.
    x = torch.tensor(
        [[1, 1, 2, 0, 0], [3, 4, 3, 4, 3], [0, 5, 5, 5, 1], [2, 2, 2, 2, 2], [6, 0, 6, 1, 0]]
    )
    stats = _check_layer(nn.Embedding(8, 3, padding_idx=padding_idx), x)
    assert stats.sq_norms.shape == (B,)


def test_embedding_flat_indices():
    torch.manual_seed(0)
    _check_layer(nn.Embedding(8, 3), torch.tensor([1, 1, 4, 7, 0]))


@pytest.mark.parametrize(
    ("layer", "shape"),
    [
        (lambda: nn.Linear(7, 5), (B, 3, 7)),
        (lambda: nn.Conv2d(3, 4, 3, stride=2, padding=1), (B, 3, 7, 9)),
        (lambda: nn.Conv2d(8, 8, 3), (B, 8, 4, 4)),
        (lambda: nn.Conv1d(3, 4, 3), (B, 3, 11)),
        (lambda: nn.GroupNorm(3, 6), (B, 6, 5)),
    ],
)
def test_chunked_path_gives_same_result(layer, shape):
    torch.manual_seed(0)
    first = layer()
    second = layer()
    second.load_state_dict(first.state_dict())
    whole = _check_layer(first, _x(*shape), max_buffer_bytes=2**30)
    # One byte forces one sample per chunk in every rule.
    chunked = _check_layer(second, _x(*shape), max_buffer_bytes=1)
    torch.testing.assert_close(chunked.sq_norms, whole.sq_norms, rtol=1e-12, atol=0)
    torch.testing.assert_close(chunked.dots, whole.dots, rtol=1e-12, atol=0)


class Scale(nn.Module):
    def __init__(self, n):
        super().__init__()
        self.weight = nn.Parameter(torch.randn(n))

    def forward(self, x):
        return x * self.weight


class ScaleRule(MaterializingRule):
    def per_sample_gradients(self, module, args, delta, names):
        return {"weight": (args[0] * delta).reshape(delta.shape[0], -1, delta.shape[-1]).sum(1)}


def test_user_registered_rule_is_used_and_exact(recwarn):
    torch.manual_seed(0)
    register_rule(Scale, ScaleRule())
    try:
        assert isinstance(get_rule(Scale(3)), ScaleRule)
        _check_layer(Scale(4), _x(B, 3, 4))
    finally:
        _RULES.pop(Scale)
    assert not [w for w in recwarn if "torch.func" in str(w.message)]


def test_subclass_with_own_forward_gets_no_rule():
    class Shifted(nn.Linear):
        def forward(self, x):
            return super().forward(x + 1)

    class Plain(nn.Linear):
        pass

    assert get_rule(Shifted(2, 2)) is None
    assert get_rule(Plain(2, 2)) is get_rule(nn.Linear(2, 2))


def test_register_rule_rejects_bad_arguments():
    with pytest.raises(TypeError, match=r"nn\.Module subclass"):
        register_rule(int, ScaleRule())
    with pytest.raises(TypeError, match="accumulate"):
        register_rule(Scale, object())


@pytest.mark.parametrize("frozen", [("weight",), ("bias",)])
@pytest.mark.parametrize(
    ("layer", "shape"),
    [
        (lambda: nn.Linear(7, 5), (B, 7)),
        (lambda: nn.Linear(7, 5), (B, 9, 7)),
        (lambda: nn.Conv2d(3, 4, 3, stride=2), (B, 3, 7, 9)),
        (lambda: nn.Conv1d(3, 4, 3), (B, 3, 11)),
        (lambda: nn.LayerNorm(7), (B, 3, 7)),
    ],
)
def test_only_weight_or_only_bias_trainable(layer, shape, frozen):
    torch.manual_seed(0)
    _check_layer(layer(), _x(*shape), frozen=frozen)
