"""The engine end to end against the brute-force per-sample loop."""

import copy
import warnings

import pytest
import torch
import torch.nn.functional as F
from _oracle import grad_stats as brute_force_grad_stats
from torch import nn

from skdynal.gradients import _engine, grad_stats, reference_grad_stats, summed_loss_gradient

from . import _models
from ._helpers import assert_matches, cross_entropy, random_direction

B = 6


@pytest.fixture(autouse=True)
def _fresh_warning_registry(monkeypatch):
    monkeypatch.setattr(_engine, "_WARNED", set())


def _images(shape, seed=0):
    gen = torch.Generator().manual_seed(seed)
    return torch.randn(B, *shape, generator=gen, dtype=torch.float64)


def _pseudo_labels(model, x):
    with torch.no_grad():
        out = model(**x) if isinstance(x, dict) else model(x)
    return out.argmax(1)


def _labeled_direction(model, x, seed=5):
    """G as dynamicAL builds it: the summed gradient over a labeled batch."""
    gen = torch.Generator().manual_seed(seed)
    y = torch.randint(0, 3, (B,), generator=gen)
    return summed_loss_gradient(model, cross_entropy, [(x, y)])


CASES = {
    "mlp": (_models.mlp, lambda: _images((6,))),
    "vanilla_cnn": (_models.vanilla_cnn, lambda: _images((3, 8, 8))),
    "resnet": (_models.SmallResNet, lambda: _images((3, 8, 8))),
    "vgg": (_models.small_vgg, lambda: _images((3, 8, 8))),
    "conv1d": (_models.conv1d_net, lambda: _images((2, 12))),
    "text": (
        _models.TextNet,
        lambda: torch.randint(0, 12, (B, 7), generator=torch.Generator().manual_seed(0)),
    ),
}


def _prepare(name):
    torch.manual_seed(0)
    build, data = CASES[name]
    model = _models.randomize_batch_norm(build().double()).eval()
    x = data()
    return model, x


@pytest.mark.parametrize("name", list(CASES))
def test_end_to_end_matches_brute_force(name):
    model, x = _prepare(name)
    y = _pseudo_labels(model, x)
    direction = _labeled_direction(model, x)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # every layer of these models has a rule
        stats = grad_stats(model, cross_entropy, x, y, direction)
    assert_matches(stats, brute_force_grad_stats(model, cross_entropy, x, y, direction))


@pytest.mark.parametrize("name", ["mlp", "resnet"])
def test_without_direction(name):
    model, x = _prepare(name)
    y = _pseudo_labels(model, x)
    stats = grad_stats(model, cross_entropy, x, y)
    assert stats.dots is None
    assert_matches(stats, brute_force_grad_stats(model, cross_entropy, x, y))


def test_nll_on_probabilities():
    # skorch's NeuralNetClassifier default: the module returns probabilities, the loss
    # takes their log.
    torch.manual_seed(0)
    model = nn.Sequential(_models.mlp(), nn.Softmax(dim=-1)).double().eval()
    x = _images((6,))
    y = _pseudo_labels(model, x)

    def nll_of_probabilities(probs, targets):
        return F.nll_loss(torch.log(probs), targets, reduction="none")

    direction = random_direction(model, torch.Generator().manual_seed(3))
    stats = grad_stats(model, nll_of_probabilities, x, y, direction)
    brute = brute_force_grad_stats(model, nll_of_probabilities, x, y, direction)
    assert_matches(stats, brute)


def test_reused_module_falls_back_exactly_and_warns_once():
    torch.manual_seed(0)
    model = _models.ReusedLinear().double().eval()
    direction = random_direction(model, torch.Generator().manual_seed(3))
    with pytest.warns(UserWarning, match=r"inner \(called 2 times") as record:
        for seed in range(3):  # three batches, one warning
            x = _images((5,), seed=seed)
            y = _pseudo_labels(model, x)
            stats = grad_stats(model, cross_entropy, x, y, direction)
            assert_matches(stats, brute_force_grad_stats(model, cross_entropy, x, y, direction))
    relevant = [w for w in record if "torch.func" in str(w.message)]
    assert len(relevant) == 1
    assert "head" not in str(relevant[0].message)


def test_frozen_layers_are_left_out():
    model, x = _prepare("resnet")
    for p in list(model.stem.parameters()) + list(model.layer1.parameters()):
        p.requires_grad_(False)
    model.fc.bias.requires_grad_(False)
    model.layer2.bn1.weight.requires_grad_(False)  # only the bias of this layer trains
    y = _pseudo_labels(model, x)
    direction = random_direction(model, torch.Generator().manual_seed(3))
    assert "stem.0.weight" not in direction and "layer2.bn1.bias" in direction
    stats = grad_stats(model, cross_entropy, x, y, direction)
    assert_matches(stats, brute_force_grad_stats(model, cross_entropy, x, y, direction))


@pytest.mark.filterwarnings("ignore:There is a performance drop")
def test_layer_without_rule_falls_back_exactly():
    class WithToken(nn.Module):
        def __init__(self):
            super().__init__()
            self.offset = nn.Parameter(torch.randn(6))  # owned by the root: no rule
            self.bilinear = nn.Bilinear(6, 6, 4)  # no rule for Bilinear
            self.head = nn.Linear(4, 3)

        def forward(self, x):
            h = x + self.offset
            return self.head(torch.tanh(self.bilinear(h, h)))

    torch.manual_seed(0)
    model = WithToken().double().eval()
    x = _images((6,))
    y = _pseudo_labels(model, x)
    direction = random_direction(model, torch.Generator().manual_seed(3))
    with pytest.warns(UserWarning, match="no rule for Bilinear") as record:
        stats = grad_stats(model, cross_entropy, x, y, direction)
    assert "<root> (no rule for WithToken)" in str(record[0].message)
    assert_matches(stats, brute_force_grad_stats(model, cross_entropy, x, y, direction))


def test_tied_and_foreign_used_parameters_fall_back_exactly():
    class Tied(nn.Module):
        def __init__(self):
            super().__init__()
            self.embed = nn.Embedding(9, 5)
            self.mix = nn.Linear(5, 5)
            self.out = nn.Linear(5, 5, bias=False)
            self.out.weight = self.mix.weight  # one parameter in two layers
            self.head = nn.Linear(5, 3)

        def forward(self, tokens):
            h = self.embed(tokens).mean(1)
            h = torch.tanh(self.out(torch.tanh(self.mix(h))))
            # The embedding's weight used outside the Embedding layer (weight tying).
            scores = F.linear(h, self.embed.weight)
            return self.head(h) + scores[:, :3]

    torch.manual_seed(0)
    model = Tied().double().eval()
    x = torch.randint(0, 9, (B, 4), generator=torch.Generator().manual_seed(0))
    y = _pseudo_labels(model, x)
    direction = random_direction(model, torch.Generator().manual_seed(3))
    with pytest.warns(UserWarning) as record:
        stats = grad_stats(model, cross_entropy, x, y, direction)
    message = str(record[0].message)
    assert "embed (parameters used outside the layer)" in message
    assert "mix (parameters shared with another layer)" in message
    assert "head" not in message
    assert_matches(stats, brute_force_grad_stats(model, cross_entropy, x, y, direction))


@pytest.mark.filterwarnings("ignore:There is a performance drop")
def test_dict_inputs_with_fallback():
    class TwoInputs(nn.Module):
        def __init__(self):
            super().__init__()
            self.a = nn.Linear(4, 5)
            self.b = nn.Bilinear(5, 3, 3)

        def forward(self, first, second):
            return self.b(torch.tanh(self.a(first)), second)

    torch.manual_seed(0)
    model = TwoInputs().double().eval()
    x = {"first": _images((4,)), "second": _images((3,), seed=1)}
    y = _pseudo_labels(model, x)
    direction = random_direction(model, torch.Generator().manual_seed(3))
    with pytest.warns(UserWarning, match="Bilinear"):
        stats = grad_stats(model, cross_entropy, x, y, direction)
    assert_matches(stats, brute_force_grad_stats(model, cross_entropy, x, y, direction))


def test_module_left_unchanged():
    model, x = _prepare("vgg")
    model.train()
    model[0].eval()  # a mixed, non-default mode pattern must survive
    for bn in (model[1], model[5]):
        bn.eval()
    for p in model.parameters():
        p.grad = torch.full_like(p, 0.25)
    modes = [m.training for m in model.modules()]
    state = copy.deepcopy(model.state_dict())
    y = torch.zeros(B, dtype=torch.long)
    grad_stats(model, cross_entropy, x, y, random_direction(model))
    assert [m.training for m in model.modules()] == modes
    for key, value in model.state_dict().items():
        assert torch.equal(value, state[key]), key
    for p in model.parameters():
        assert torch.equal(p.grad, torch.full_like(p, 0.25))
    for m in model.modules():
        assert not m._forward_hooks and not m._forward_pre_hooks and not m._backward_hooks


def test_hooks_removed_when_forward_raises():
    model = _models.mlp().double().eval()
    with pytest.raises(RuntimeError):
        grad_stats(model, cross_entropy, _images((5,)), torch.zeros(B, dtype=torch.long))
    for m in model.modules():
        assert not m._forward_hooks and not m._forward_pre_hooks


def test_works_under_no_grad_and_agrees_with_reference():
    model, x = _prepare("vanilla_cnn")
    y = _pseudo_labels(model, x)
    direction = random_direction(model)
    with torch.no_grad():
        stats = grad_stats(model, cross_entropy, x, y, direction)
        assert not torch.is_grad_enabled()
    ref = reference_grad_stats(model, cross_entropy, x, y, direction)
    torch.testing.assert_close(stats.sq_norms, ref.sq_norms, rtol=1e-10, atol=0)
    torch.testing.assert_close(stats.dots, ref.dots, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("name", ["resnet", "conv1d", "text"])
def test_memory_bound_chunking_gives_same_result(name):
    model, x = _prepare(name)
    y = _pseudo_labels(model, x)
    direction = random_direction(model)
    whole = grad_stats(model, cross_entropy, x, y, direction, max_buffer_bytes=2**30)
    chunked = grad_stats(model, cross_entropy, x, y, direction, max_buffer_bytes=64)
    torch.testing.assert_close(chunked.sq_norms, whole.sq_norms, rtol=1e-12, atol=0)
    torch.testing.assert_close(chunked.dots, whole.dots, rtol=1e-12, atol=1e-15)


@pytest.mark.parametrize("name", ["mlp", "vanilla_cnn", "resnet"])
def test_float32_within_tolerance_of_float64(name):
    model64, x64 = _prepare(name)
    y = _pseudo_labels(model64, x64)
    direction64 = _labeled_direction(model64, x64)
    model32 = copy.deepcopy(model64).float()
    direction32 = {k: v.float() for k, v in direction64.items()}
    stats = grad_stats(model32, cross_entropy, x64.float(), y, direction32)
    assert stats.sq_norms.dtype == torch.float32
    sq, dots = brute_force_grad_stats(model64, cross_entropy, x64, y, direction64)
    delta64 = sq + 2 * dots
    delta32 = stats.sq_norms.double() + 2 * stats.dots.double()
    assert (delta32 - delta64).abs().max() <= 1e-3 * delta64.abs().max()


def test_bad_inputs_are_rejected_clearly():
    model, x = _prepare("resnet")
    y = _pseudo_labels(model, x)
    with pytest.raises(ValueError, match="per-sample losses"):
        grad_stats(model, lambda o, t: F.cross_entropy(o, t), x, y)
    with pytest.raises(ValueError, match="do not depend on the module's parameters"):
        grad_stats(model, lambda o, t: cross_entropy(o.detach(), t), x, y)
    with pytest.raises(ValueError, match="lacks the trainable parameters"):
        grad_stats(model, cross_entropy, x, y, {"fc.weight": model.fc.weight})
    bad = random_direction(model)
    bad["fc.bias"] = torch.zeros(7, dtype=torch.float64)
    with pytest.raises(ValueError, match="shape"):
        grad_stats(model, cross_entropy, x, y, bad)
    with pytest.raises(ValueError, match="max_buffer_bytes"):
        grad_stats(model, cross_entropy, x, y, max_buffer_bytes=0)
    model.layer1.bn1.train()
    with pytest.raises(ValueError, match=r"layer1\.bn1.*eval"):
        grad_stats(model, cross_entropy, x, y)
    frozen = _models.mlp().requires_grad_(False)
    with pytest.raises(ValueError, match="no trainable parameters"):
        grad_stats(frozen, cross_entropy, torch.randn(B, 6), y)
    with pytest.raises(TypeError, match=r"torch\.nn\.Module"):
        grad_stats(lambda x: x, cross_entropy, x, y)


def test_user_hooks_that_change_inputs_and_outputs_are_respected():
    torch.manual_seed(0)
    model = _models.mlp().double().eval()
    model[0].register_forward_hook(lambda mod, args, out: out * 2 + 1)
    model[2].register_forward_pre_hook(lambda mod, args: (args[0] - 0.5,))
    x = _images((6,))
    y = _pseudo_labels(model, x)
    direction = random_direction(model, torch.Generator().manual_seed(3))
    stats = grad_stats(model, cross_entropy, x, y, direction)
    assert_matches(stats, brute_force_grad_stats(model, cross_entropy, x, y, direction))
    assert len(model[0]._forward_hooks) == 1 and len(model[2]._forward_pre_hooks) == 1


def test_default_buffer_bound_is_small_on_the_cpu_and_explicit_bound_is_used(monkeypatch):
    from skdynal.gradients import DEFAULT_CPU_MAX_BUFFER_BYTES
    from skdynal.gradients._rules import ConvRule

    seen = []
    accumulate = ConvRule.accumulate

    def recording(self, module, args, delta, params, dirs, sq, dots, max_buffer_bytes):
        seen.append(max_buffer_bytes)
        return accumulate(self, module, args, delta, params, dirs, sq, dots, max_buffer_bytes)

    monkeypatch.setattr(ConvRule, "accumulate", recording)
    model, x = _prepare("vanilla_cnn")
    y = _pseudo_labels(model, x)
    grad_stats(model, cross_entropy, x, y)
    assert seen and set(seen) == {DEFAULT_CPU_MAX_BUFFER_BYTES}
    assert DEFAULT_CPU_MAX_BUFFER_BYTES == 4 * 2**20
    seen.clear()
    grad_stats(model, cross_entropy, x, y, max_buffer_bytes=12345)
    assert set(seen) == {12345}
