"""LADA (InfoMixup): the mixing interface, the generator, the pair scores, the teaching step."""

import copy

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from _nets import DigitsMLP, fitted_net, make_net
from modAL.models import ActiveLearner
from scipy.stats import beta
from skorch import NeuralNetClassifier

from skdynal import LADANetClassifier, LADASampler
from skdynal.models import CNN
from skdynal.strategies import AlphaGenerator, mixed_forward, resolve_mix_layers
from skdynal.strategies._lada import entropy


def _lada_net(X, y, seed=0, **kwargs):
    return fitted_net(X, y, seed=seed, net_class=LADANetClassifier, **kwargs)


def _entropy_np(p):
    return -(p * np.log(np.clip(p, 1e-12, None))).sum(axis=1)


# --- mixing at a layer -------------------------------------------------------------------


def test_mixed_forward_at_hidden_layer_of_sequential_matches_split():
    torch.manual_seed(0)
    module = torch.nn.Sequential(
        torch.nn.Linear(5, 7), torch.nn.ReLU(), torch.nn.Linear(7, 3)
    ).double()
    X_a, X_b = torch.randn(4, 5, dtype=torch.float64), torch.randn(4, 5, dtype=torch.float64)
    lam = torch.tensor([0.0, 0.25, 0.5, 0.9], dtype=torch.float64)
    out = mixed_forward(module, X_a, X_b, lam, layer="1")
    h_a, h_b = module[1](module[0](X_a)), module[1](module[0](X_b))
    expected = module[2](lam[:, None] * h_a + (1 - lam[:, None]) * h_b)
    torch.testing.assert_close(out, expected, rtol=0, atol=1e-12)
    # input mixing, and S samples of lam stacked sample major
    lam2 = torch.stack([lam, 1 - lam])
    out2 = mixed_forward(module, X_a, X_b, lam2, layer="input")
    for s in range(2):
        mix = lam2[s][:, None] * X_a + (1 - lam2[s][:, None]) * X_b
        torch.testing.assert_close(out2[4 * s : 4 * (s + 1)], module(mix), rtol=0, atol=1e-12)


def test_mixed_forward_on_skdynal_cnn_and_callable_lam():
    torch.manual_seed(0)
    module = CNN(in_channels=1, n_classes=4, width=3).double().eval()
    X_a = torch.randn(3, 1, 8, 8, dtype=torch.float64)
    X_b = torch.randn(3, 1, 8, 8, dtype=torch.float64)
    seen = {}

    def lam(h_a, h_b):
        seen["shapes"] = (h_a.shape, h_b.shape)
        return torch.full((3,), 0.3, dtype=torch.float64)

    out = mixed_forward(module, X_a, X_b, lam, layer="features.1")
    assert seen["shapes"] == (torch.Size([3, 3, 8, 8]),) * 2
    first = module.features[:2]
    rest = torch.nn.Sequential(*module.features[2:], module.classifier)
    expected = rest(0.3 * first(X_a) + 0.7 * first(X_b))
    torch.testing.assert_close(out, expected, rtol=0, atol=1e-12)
    assert resolve_mix_layers(module, None) == ["input", "features.1", "features.3"]


def test_layer_run_twice_is_refused():
    relu = torch.nn.ReLU()

    class Twice(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.lin = torch.nn.Linear(3, 3)
            self.act = relu

        def forward(self, X):
            return self.act(self.lin(self.act(X)))

    with pytest.raises(ValueError, match="ran 2 times"):
        mixed_forward(Twice(), torch.randn(2, 3), torch.randn(2, 3), torch.rand(2), "act")


# --- the generator ------------------------------------------------------------------------


def test_beta_rsample_gradient_reaches_generator_and_matches_finite_differences():
    torch.manual_seed(0)
    generator = AlphaGenerator(4, alpha_max=3.0).double()
    h_a, h_b = torch.randn(6, 4, dtype=torch.float64), torch.randn(6, 4, dtype=torch.float64)
    alpha = generator(h_a, h_b)
    torch.manual_seed(1)
    lam = torch.distributions.Beta(alpha, alpha).rsample()
    lam.sum().backward()
    for p in generator.parameters():
        assert p.grad is not None and torch.isfinite(p.grad).all() and p.grad.abs().sum() > 0
    # Implicit reparameterisation: with u = F(lam; a, a) held fixed,
    # d lam / d a = -(dF/da)(lam) / f(lam), checked with scipy's Beta cdf and pdf.
    a = alpha.detach().clone().requires_grad_(True)
    torch.manual_seed(1)
    draw = torch.distributions.Beta(a, a).rsample()
    (grad,) = torch.autograd.grad(draw.sum(), a)
    lam_np, a_np, eps = draw.detach().numpy(), a.detach().numpy(), 1e-6
    dF = beta.cdf(lam_np, a_np + eps, a_np + eps) - beta.cdf(lam_np, a_np - eps, a_np - eps)
    expected = -dF / (2 * eps) / beta.pdf(lam_np, a_np, a_np)
    np.testing.assert_allclose(grad.numpy(), expected, rtol=1e-3, atol=1e-6)


def test_training_the_generator_raises_mixed_entropy(labeled_and_pool):
    X_lab, y_lab, X_pool = labeled_and_pool
    net = fitted_net(X_lab, y_lab, max_epochs=200)  # confident enough for mixing to matter
    common = dict(
        subset_size=120,
        n_lambda=16,
        alpha_max=8.0,
        mix_layers=["input"],
        generator_lr=0.05,
        random_state=0,
    )
    untrained = LADASampler(generator_epochs=0, **common)
    trained = LADASampler(generator_epochs=30, **common)
    untrained.select(net, X_pool, 4, X_labeled=X_lab, y_labeled=y_lab)
    trained.select(net, X_pool, 4, X_labeled=X_lab, y_labeled=y_lab)
    np.testing.assert_array_equal(untrained.pairs_, trained.pairs_)
    assert trained.generator_losses_[-1] < trained.generator_losses_[0]
    assert trained.mixed_entropy_.mean() > untrained.mixed_entropy_.mean() + 0.03
    assert trained.alpha_.mean() > untrained.alpha_.mean()


# --- scores and picks ---------------------------------------------------------------------


def test_pair_score_is_the_three_term_sum_by_hand(labeled_and_pool, monkeypatch):
    X_lab, y_lab, X_pool = labeled_and_pool
    net = fitted_net(X_lab, y_lab)
    n_lambda = 3
    lam = torch.tensor([0.2, 0.5, 0.7])

    def fixed_rsample(self, sample_shape=()):
        shape = torch.Size(sample_shape) + self.concentration1.shape
        return lam.to(self.concentration1.dtype)[:, None].expand(shape).clone()

    monkeypatch.setattr(torch.distributions.Beta, "rsample", fixed_rsample)
    strategy = LADASampler(
        subset_size=40, n_lambda=n_lambda, alpha=2.0, mix_layers=["input"], random_state=3
    )
    indices, scores = strategy.select(net, X_pool, 6, X_labeled=X_lab, y_labeled=y_lab)
    pairs = strategy.pairs_
    p_a, p_b = net.predict_proba(X_pool[pairs[:, 0]]), net.predict_proba(X_pool[pairs[:, 1]])
    mixed = np.mean(
        [
            _entropy_np(net.predict_proba(w * X_pool[pairs[:, 0]] + (1 - w) * X_pool[pairs[:, 1]]))
            for w in lam.tolist()
        ],
        axis=0,
    )
    expected = _entropy_np(p_a) + _entropy_np(p_b) + mixed
    np.testing.assert_allclose(strategy.pair_scores_, expected, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(strategy.mixed_entropy_, mixed, rtol=1e-5, atol=1e-6)
    best = np.argsort(-expected)[:3]
    np.testing.assert_array_equal(indices, pairs[best].ravel())
    np.testing.assert_allclose(scores, np.repeat(expected[best], 2), rtol=1e-5)


def test_acquisition_only_scores_entropy_sum(labeled_and_pool):
    X_lab, y_lab, X_pool = labeled_and_pool
    net = _lada_net(X_lab, y_lab)
    strategy = LADASampler(subset_size=50, acquisition_only=True, random_state=1)
    strategy.select(net, X_pool, 4, X_labeled=X_lab, y_labeled=y_lab)
    pairs = strategy.pairs_
    expected = _entropy_np(net.predict_proba(X_pool[pairs[:, 0]])) + _entropy_np(
        net.predict_proba(X_pool[pairs[:, 1]])
    )
    np.testing.assert_allclose(strategy.pair_scores_, expected, rtol=1e-5, atol=1e-6)
    assert strategy.mixed_entropy_ is None and net.lada_pairs_ is None


@pytest.mark.parametrize("n_instances", [8, 7])
def test_both_members_returned_never_a_duplicate(labeled_and_pool, n_instances):
    X_lab, y_lab, X_pool = labeled_and_pool
    net = fitted_net(X_lab, y_lab)
    strategy = LADASampler(subset_size=60, generator_epochs=2, n_lambda=2, random_state=0)
    indices, _ = strategy.select(net, X_pool, n_instances, X_labeled=X_lab, y_labeled=y_lab)
    assert len(indices) == n_instances == len(set(indices.tolist()))
    order = np.argsort(-strategy.pair_scores_, kind="stable")
    pairs = strategy.pairs_
    np.testing.assert_array_equal(
        indices[: 8 if n_instances == 8 else 6], pairs[order[: n_instances // 2]].ravel()
    )
    if n_instances == 7:
        a, b = pairs[order[3]]
        h = _entropy_np(net.predict_proba(X_pool[[a, b]]))
        assert indices[-1] == (a if h[0] >= h[1] else b)


def test_whole_pool_odd_takes_the_unpaired_row(labeled_and_pool):
    X_lab, y_lab, X_pool = labeled_and_pool
    net = fitted_net(X_lab, y_lab)
    strategy = LADASampler(subset_size=2, generator_epochs=1, n_lambda=2, random_state=0)
    indices, _ = strategy.select(net, X_pool[:9], 9, X_labeled=X_lab, y_labeled=y_lab)
    assert sorted(indices.tolist()) == list(range(9))
    assert indices[-1] not in strategy.pairs_


def test_same_seed_same_picks_and_alphas(labeled_and_pool):
    X_lab, y_lab, X_pool = labeled_and_pool
    net = fitted_net(X_lab, y_lab)
    runs = []
    for _ in range(2):
        strategy = LADASampler(subset_size=80, generator_epochs=3, n_lambda=3, random_state=7)
        indices, scores = strategy.select(net, X_pool, 10, X_labeled=X_lab, y_labeled=y_lab)
        runs.append((indices, scores, strategy.alpha_, strategy.layer_))
    np.testing.assert_array_equal(runs[0][0], runs[1][0])
    np.testing.assert_array_equal(runs[0][1], runs[1][1])
    np.testing.assert_array_equal(runs[0][2], runs[1][2])
    assert runs[0][3] == runs[1][3]
    other, _ = LADASampler(subset_size=80, generator_epochs=3, n_lambda=3, random_state=8).select(
        net, X_pool, 10, X_labeled=X_lab, y_labeled=y_lab
    )
    assert not np.array_equal(other, runs[0][0])


def test_query_leaves_net_untouched(labeled_and_pool):
    X_lab, y_lab, X_pool = labeled_and_pool
    net = _lada_net(X_lab, y_lab)
    net.module_.zero_grad(set_to_none=True)
    state = copy.deepcopy(net.module_.state_dict())
    LADASampler(subset_size=60, generator_epochs=3, n_lambda=2, random_state=0).select(
        net, X_pool, 6, X_labeled=X_lab, y_labeled=y_lab
    )
    for key, value in net.module_.state_dict().items():
        assert torch.equal(value, state[key])
    assert all(p.grad is None for p in net.module_.parameters())
    assert len(net.lada_pairs_["alpha"]) == 3


@pytest.mark.parametrize(
    "params, error, match",
    [
        ({"subset_size": 1}, ValueError, "subset_size"),
        ({"n_lambda": 0}, ValueError, "n_lambda"),
        ({"generator_epochs": -1}, ValueError, "generator_epochs"),
        ({"generator_lr": 0.0}, ValueError, "generator_lr"),
        ({"alpha": -1.0}, ValueError, "alpha"),
        ({"alpha_max": 0.01}, ValueError, "alpha_max"),
        ({"acquisition_only": "yes"}, TypeError, "acquisition_only"),
        ({"mix_layers": ["nope"]}, ValueError, "nope"),
        ({"mix_layers": [3]}, TypeError, "mix_layers"),
        ({"batch_size": 0}, ValueError, "batch_size"),
    ],
)
def test_bad_parameters(labeled_and_pool, params, error, match):
    X_lab, y_lab, X_pool = labeled_and_pool
    net = fitted_net(X_lab, y_lab)
    with pytest.raises(error, match=match):
        LADASampler(random_state=0, **params).select(
            net, X_pool, 4, X_labeled=X_lab, y_labeled=y_lab
        )


# --- the teaching step --------------------------------------------------------------------


def _soft_ce(net, X_a, X_b, y_a, y_b, lam, layer):
    """The mixup loss pair by pair (a brute-force loop), averaged."""
    losses = []
    for i in range(len(X_a)):
        out = mixed_forward(net.module_, X_a[i : i + 1], X_b[i : i + 1], lam[i : i + 1], layer)
        log_p = F.log_softmax(out, dim=1)[0]
        losses.append(-(lam[i] * log_p[y_a[i]] + (1 - lam[i]) * log_p[y_b[i]]))
    return torch.stack(losses).mean()


def test_mixup_step_leaves_no_stale_gradient(digits):
    X, y = digits
    torch.manual_seed(0)
    net = LADANetClassifier(
        DigitsMLP,
        criterion=torch.nn.CrossEntropyLoss,
        optimizer=torch.optim.SGD,
        lr=0.1,
        max_epochs=1,
        batch_size=16,
        train_split=None,
        verbose=0,
        lada_random_state=0,
    ).fit(X[:40], y[:40])
    X_a, X_b, y_a, y_b = X[40:45], X[45:50], y[40:45], y[45:50]
    alpha = np.array([0.5, 1.0, 2.0, 0.3, 4.0])
    net.set_mixup_pairs(X_a, X_b, alpha, layer="layers.1", y_a=y_a, y_b=y_b)
    for p in net.module_.parameters():
        p.grad = torch.full_like(p, 123.0)  # a stale gradient that must not be used
    before = [p.detach().clone() for p in net.module_.parameters()]
    lam = torch.as_tensor(copy.deepcopy(net.lada_rng_).beta(alpha, alpha), dtype=torch.float32)
    reference = copy.deepcopy(net.module_)
    loss = net.lada_mixup_step()
    ref_net = copy.copy(net)
    ref_net.module_ = reference
    ref_loss = _soft_ce(
        ref_net,
        torch.as_tensor(X_a),
        torch.as_tensor(X_b),
        torch.as_tensor(y_a),
        torch.as_tensor(y_b),
        lam,
        "layers.1",
    )
    grads = torch.autograd.grad(ref_loss, list(reference.parameters()))
    assert loss == pytest.approx(ref_loss.item(), rel=1e-5)
    for p, p0, g in zip(net.module_.parameters(), before, grads, strict=True):
        torch.testing.assert_close(p.grad, g, rtol=1e-5, atol=1e-6)
        torch.testing.assert_close(p.detach(), p0 - 0.1 * g, rtol=1e-5, atol=1e-6)


def test_teaching_in_modal_loop_mixes_the_queried_pairs(digits):
    X, y = digits
    X_pool, y_pool = X[40:200], y[40:200]
    torch.manual_seed(0)
    learner = ActiveLearner(
        estimator=make_net(net_class=LADANetClassifier, max_epochs=2, lada_random_state=0),
        query_strategy=LADASampler(subset_size=60, generator_epochs=2, n_lambda=2, random_state=0),
        X_training=X[:40],
        y_training=y[:40],
    )
    assert learner.estimator.lada_mixup_losses_ == []
    idx, X_query = learner.query(X_pool, n_instances=6)
    pairs = learner.estimator.lada_pairs_
    np.testing.assert_array_equal(pairs["X_a"], X_pool[idx[0::2]])
    np.testing.assert_array_equal(pairs["X_b"], X_pool[idx[1::2]])
    assert pairs["y_a"] is None
    learner.teach(X_query, y_pool[idx])
    np.testing.assert_array_equal(pairs["y_a"], y_pool[idx[0::2]])
    np.testing.assert_array_equal(pairs["y_b"], y_pool[idx[1::2]])
    losses = learner.estimator.lada_mixup_losses_
    assert len(losses) == 2 and all(np.isfinite(losses))
    assert learner.estimator.history[-1, "lada_mixup_loss"] == losses[-1]


def test_plain_net_gets_no_pairs_and_required_net_class(labeled_and_pool):
    X_lab, y_lab, X_pool = labeled_and_pool
    net = fitted_net(X_lab, y_lab)
    assert isinstance(net, NeuralNetClassifier) and not hasattr(net, "lada_pairs_")
    LADASampler(subset_size=40, generator_epochs=1, n_lambda=2, random_state=0).select(
        net, X_pool, 4, X_labeled=X_lab, y_labeled=y_lab
    )
    assert not hasattr(net, "lada_pairs_")
    assert LADASampler().capabilities().net_class is LADANetClassifier


def test_entropy_helper():
    p = torch.tensor([[0.5, 0.5, 0.0], [1.0, 0.0, 0.0]])
    torch.testing.assert_close(entropy(p), torch.tensor([np.log(2.0), 0.0], dtype=torch.float32))


def test_mixup_lambdas_follow_torch_seed_without_random_state(digits):
    X, y = digits
    draws = []
    for _ in range(2):
        torch.manual_seed(5)
        net = make_net(net_class=LADANetClassifier, max_epochs=1).fit(X[:40], y[:40])
        draws.append(net.lada_rng_.beta(1.0, 1.0, size=4))
    np.testing.assert_array_equal(draws[0], draws[1])
