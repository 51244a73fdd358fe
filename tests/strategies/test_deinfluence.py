"""DynamicALSampler(selection="deinfluence") against a brute-force per-sample loop."""

import copy
import math

import numpy as np
import pytest
import torch
from _nets import DigitsCNN, DigitsMLP, fitted_net
from _oracle import pseudo_label_gradients
from torch.utils.data import TensorDataset

from skdynal import DynamicALSampler

MODELS = {
    "mlp": dict(module=DigitsMLP, image=False),
    "mlp-probabilities": dict(
        module=DigitsMLP, criterion=torch.nn.NLLLoss, module__probabilities=True, image=False
    ),
    "cnn-batchnorm": dict(module=DigitsCNN, image=True),
}


@pytest.fixture(scope="module")
def prepared():
    cache = {}

    def get(name):
        if name not in cache:
            from sklearn.datasets import load_digits

            X, y = load_digits(return_X_y=True)
            X = X / 16.0
            settings = dict(MODELS[name])
            if settings.pop("image"):
                X = X.reshape(-1, 1, 8, 8)
            net = fitted_net(X[:50], y[:50], module__dtype=torch.float64, **settings)
            cache[name] = (net, X[:50], y[:50], X[50:90])
        return cache[name]

    return get


def per_sample_gradients(module, X_pool, X_labeled, y_labeled, probabilities, head_only=False):
    """``(g, G)``: every pool sample's pseudo-label gradient as a row, one backward each,
    and the labeled set's summed gradient; float64, module in eval mode."""
    # DigitsMLP's final nn.Linear
    names = ["layers.2.weight", "layers.2.bias"] if head_only else None
    return pseudo_label_gradients(
        module, X_pool, X_labeled, y_labeled, probabilities=probabilities, names=names
    )


def brute_force_deinfluence(g, G, gamma, n_instances, chunk_size):
    """The chunked selection written out on materialised per-sample gradients."""
    if math.isinf(gamma):
        base = g @ G
    else:
        base = (g * g).sum(1) + gamma * (g @ G)
    D = np.zeros(g.shape[1])
    chosen, chosen_scores = [], []
    while len(chosen) < n_instances:
        size = min(chunk_size, n_instances - len(chosen))
        adjusted = base - g @ D
        candidates = np.array([u for u in range(len(g)) if u not in chosen])
        best = candidates[np.argsort(-adjusted[candidates], kind="stable")[:size]]
        chosen.extend(best.tolist())
        chosen_scores.extend(adjusted[best].tolist())
        D = D + g[best].mean(0)
    return np.array(chosen), np.array(chosen_scores)


def query(name, prepared, n_instances, **params):
    net, X_lab, y_lab, X_pool = prepared(name)
    return DynamicALSampler(selection="deinfluence", random_state=0, **params).select(
        net, X_pool, n_instances, X_labeled=X_lab, y_labeled=y_lab
    )


@pytest.mark.parametrize("name", list(MODELS))
@pytest.mark.parametrize("gamma", [0.0, 2.0, math.inf])
def test_matches_brute_force(prepared, name, gamma):
    # 11 = 4 + 4 + 3: two further chunks, the last one smaller.
    indices, scores = query(name, prepared, 11, gamma=gamma, chunk_size=4)
    net, X_lab, y_lab, X_pool = prepared(name)
    g, G = per_sample_gradients(
        net.module_, X_pool, X_lab, y_lab, probabilities=name.endswith("probabilities")
    )
    expected, expected_scores = brute_force_deinfluence(g, G, gamma, 11, 4)
    np.testing.assert_array_equal(indices, expected)
    np.testing.assert_allclose(
        scores, expected_scores, rtol=1e-9, atol=1e-12 * np.abs(expected_scores).max()
    )
    # The first chunk is ranked by the plain score, later ones by a visibly adjusted one.
    plain = brute_force_deinfluence(g, G, gamma, 40, 40)
    plain_of = dict(zip(plain[0], plain[1], strict=True))
    plain_scores = np.array([plain_of[u] for u in indices])
    np.testing.assert_allclose(scores[:4], plain_scores[:4], rtol=1e-9)
    assert np.all(np.abs(scores[4:] - plain_scores[4:]) > 1e-6 * np.abs(plain_scores).max())


def test_chunk_size_one(prepared):
    indices, scores = query("cnn-batchnorm", prepared, 5, chunk_size=1)
    net, X_lab, y_lab, X_pool = prepared("cnn-batchnorm")
    g, G = per_sample_gradients(net.module_, X_pool, X_lab, y_lab, probabilities=False)
    expected, expected_scores = brute_force_deinfluence(g, G, 2.0, 5, 1)
    np.testing.assert_array_equal(indices, expected)
    np.testing.assert_allclose(scores, expected_scores, rtol=1e-9)


@pytest.mark.parametrize("chunk_size", [7, 100])
def test_chunk_at_least_n_instances_is_top_b(prepared, chunk_size):
    net, X_lab, y_lab, X_pool = prepared("mlp")
    # Duplicated rows give tied scores, so the tie-breaking must agree too.
    X_pool = np.concatenate([X_pool, X_pool[:10]])
    for seed in range(3):
        chunked = DynamicALSampler(
            selection="deinfluence", chunk_size=chunk_size, random_state=seed
        ).select(net, X_pool, 7, X_labeled=X_lab, y_labeled=y_lab)
        top_b = DynamicALSampler(random_state=seed, selection="top_b").select(
            net, X_pool, 7, X_labeled=X_lab, y_labeled=y_lab
        )
        np.testing.assert_array_equal(chunked[0], top_b[0])
        np.testing.assert_array_equal(chunked[1], top_b[1])


def test_score_stays_plain_delta(prepared):
    net, X_lab, y_lab, X_pool = prepared("mlp")
    plain = DynamicALSampler().score(net, X_pool, X_labeled=X_lab, y_labeled=y_lab)
    deinf = DynamicALSampler(selection="deinfluence", chunk_size=2).score(
        net, X_pool, X_labeled=X_lab, y_labeled=y_lab
    )
    np.testing.assert_array_equal(plain, deinf)


def test_net_not_modified(prepared):
    module = prepared("cnn-batchnorm")[0].module_
    module.train()
    before = copy.deepcopy(module.state_dict())
    grads = [None if p.grad is None else p.grad.clone() for p in module.parameters()]
    query("cnn-batchnorm", prepared, 9, chunk_size=3)
    assert module.training
    for key, value in module.state_dict().items():
        assert torch.equal(value, before[key]), key
    for p, grad in zip(module.parameters(), grads, strict=True):
        assert (p.grad is None and grad is None) or torch.equal(p.grad, grad)
    module.eval()


def test_same_seed_same_picks_and_ties(prepared):
    net, X_lab, y_lab, X_pool = prepared("mlp")
    X_pool = np.repeat(X_pool[:4], 8, axis=0)  # eight copies of four rows: many ties

    def picks(seed):
        return tuple(
            DynamicALSampler(selection="deinfluence", chunk_size=3, random_state=seed).select(
                net, X_pool, 9, X_labeled=X_lab, y_labeled=y_lab
            )[0]
        )

    seen = {picks(seed) for seed in range(5)}
    assert len(seen) > 1
    assert picks(3) == picks(3)


def test_dataset_and_tensor_pools_agree(prepared):
    net, X_lab, y_lab, X_pool = prepared("cnn-batchnorm")
    sampler = DynamicALSampler(selection="deinfluence", chunk_size=3, random_state=0)
    expected = sampler.select(net, X_pool, 8, X_labeled=X_lab, y_labeled=y_lab)
    tensor = torch.from_numpy(X_pool)
    dataset = TensorDataset(tensor, torch.zeros(len(X_pool)))
    for pool in (tensor, dataset):
        got = sampler.select(net, pool, 8, X_labeled=X_lab, y_labeled=y_lab)
        np.testing.assert_array_equal(got[0], expected[0])
        np.testing.assert_allclose(got[1], expected[1], rtol=1e-12)


def test_vmap_method_matches_exact(prepared):
    exact = query("cnn-batchnorm", prepared, 8, chunk_size=3)
    vmap = query("cnn-batchnorm", prepared, 8, chunk_size=3, method="vmap")
    np.testing.assert_array_equal(vmap[0], exact[0])
    np.testing.assert_allclose(vmap[1], exact[1], rtol=1e-9)


def test_last_layer_method_matches_brute_force_on_the_head(prepared):
    indices, scores = query("mlp", prepared, 8, chunk_size=3, method="last_layer")
    net, X_lab, y_lab, X_pool = prepared("mlp")
    g, G = per_sample_gradients(
        net.module_, X_pool, X_lab, y_lab, probabilities=False, head_only=True
    )
    expected, expected_scores = brute_force_deinfluence(g, G, 2.0, 8, 3)
    np.testing.assert_array_equal(indices, expected)
    np.testing.assert_allclose(scores, expected_scores, rtol=1e-9)


@pytest.mark.parametrize(
    ("params", "match"),
    [
        (dict(selection="topb"), r"'selection' parameter .* must be a str among .*'topb'"),
        (dict(selection=None), r"'selection' parameter .* must be a str among .*None"),
        (dict(selection="deinfluence", chunk_size=0), r"'chunk_size' .* an int in the range \[1"),
        (dict(selection="deinfluence", chunk_size=2.5), r"'chunk_size' .* must be an int"),
        (dict(selection="deinfluence", chunk_size=True), r"'chunk_size' .* must be an int"),
        (dict(chunk_size=-3), r"'chunk_size' .* an int in the range \[1"),
    ],
)
def test_bad_parameters(prepared, params, match):
    net, X_lab, y_lab, X_pool = prepared("mlp")
    with pytest.raises(ValueError, match=match):
        DynamicALSampler(**params).select(net, X_pool, 3, X_labeled=X_lab, y_labeled=y_lab)


def test_egl_and_influence_samplers_take_the_option(prepared):
    from skdynal import EGLSampler, InfluenceSampler

    net, X_lab, y_lab, X_pool = prepared("mlp")
    for variant, gamma in ((EGLSampler, 0.0), (InfluenceSampler, math.inf)):
        got = variant(selection="deinfluence", chunk_size=3, random_state=0).select(
            net, X_pool, 7, X_labeled=X_lab, y_labeled=y_lab
        )
        expected = query("mlp", prepared, 7, gamma=gamma, chunk_size=3)
        np.testing.assert_array_equal(got[0], expected[0])
        np.testing.assert_array_equal(got[1], expected[1])
