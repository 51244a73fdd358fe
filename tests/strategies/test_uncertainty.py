"""Least confidence, margin and entropy pick the hand-computed rows."""

import numpy as np
import pytest
import torch
from _fixed import lookup_net
from _nets import fitted_net

from skdynal import EntropySampler, LeastConfidenceSampler, MarginSampler

# Rows of class probabilities chosen so that each criterion prefers a different row.
PROBABILITIES = np.array(
    [
        [0.9, 0.025, 0.025, 0.025, 0.025],  # 0: confident
        [0.5, 0.5, 0.0, 0.0, 0.0],  # 1: smallest margin (0)
        [0.4, 0.2, 0.2, 0.2, 0.0],  # 2: least confident (max 0.4)
        [0.41, 0.1475, 0.1475, 0.1475, 0.1475],  # 3: largest entropy
        [0.7, 0.2, 0.1, 0.0, 0.0],  # 4
    ]
)
# Hand-computed: 1 - max p; 1 - (p1 - p2); -sum p ln p.
LEAST_CONFIDENCE = [0.1, 0.5, 0.6, 0.59, 0.3]
MARGIN = [1 - 0.875, 1.0, 1 - 0.2, 1 - 0.2625, 1 - 0.5]
ENTROPY = [
    -(0.9 * np.log(0.9) + 4 * 0.025 * np.log(0.025)),
    np.log(2),
    -(0.4 * np.log(0.4) + 3 * 0.2 * np.log(0.2)),
    -(0.41 * np.log(0.41) + 4 * 0.1475 * np.log(0.1475)),
    -(0.7 * np.log(0.7) + 0.2 * np.log(0.2) + 0.1 * np.log(0.1)),
]
CASES = [
    (LeastConfidenceSampler, LEAST_CONFIDENCE, [2, 3, 1]),
    (MarginSampler, MARGIN, [1, 2, 3]),
    (EntropySampler, ENTROPY, [3, 2, 4]),
]


def logits_net():
    """CrossEntropyLoss: the module returns logits, predict_proba applies softmax."""
    with np.errstate(divide="ignore"):
        logits = np.log(PROBABILITIES)
    shifts = np.arange(len(logits))[:, None] * 3.0  # softmax ignores a per-row shift
    return lookup_net(logits + shifts)


def probabilities_net():
    """NLLLoss: the module returns the probabilities themselves."""
    return lookup_net(PROBABILITIES, criterion=torch.nn.NLLLoss)


@pytest.mark.parametrize("make_net", [logits_net, probabilities_net])
@pytest.mark.parametrize(("strategy_class", "expected", "top_three"), CASES)
def test_known_scores_and_choice(make_net, strategy_class, expected, top_three):
    net, ids = make_net()
    strategy = strategy_class(random_state=0)
    np.testing.assert_allclose(strategy.score(net, ids), expected, rtol=1e-12, atol=1e-12)
    indices, scores = strategy.select(net, ids, 3)
    assert indices.tolist() == top_three
    np.testing.assert_allclose(scores, np.asarray(expected)[top_three], rtol=1e-12)


def test_scores_follow_skorch_predict_proba(labeled_and_pool):
    X_lab, y_lab, X_pool = labeled_and_pool
    for criterion, kwargs in [
        (torch.nn.CrossEntropyLoss, {}),
        (torch.nn.NLLLoss, {"module__probabilities": True}),
    ]:
        net = fitted_net(X_lab, y_lab, criterion=criterion, **kwargs)
        proba = net.predict_proba(X_pool).astype(np.float64)
        ordered = np.sort(proba, axis=1)
        np.testing.assert_allclose(
            LeastConfidenceSampler().score(net, X_pool), 1 - ordered[:, -1], atol=1e-6
        )
        np.testing.assert_allclose(
            MarginSampler(batch_size=7).score(net, X_pool),
            1 - (ordered[:, -1] - ordered[:, -2]),
            atol=1e-6,
        )
        np.testing.assert_allclose(
            EntropySampler().score(net, X_pool),
            -(proba * np.log(np.clip(proba, 1e-30, None))).sum(axis=1),
            atol=1e-5,
        )


def test_ties_are_broken_by_the_seed():
    table = np.tile([[0.5, 0.5]], (6, 1))
    net, ids = lookup_net(table, criterion=torch.nn.NLLLoss)
    chosen = {tuple(MarginSampler(random_state=s).select(net, ids, 2)[0]) for s in range(20)}
    assert len(chosen) > 1
    assert (
        MarginSampler(random_state=4).select(net, ids, 2)[0].tolist()
        == MarginSampler(random_state=4).select(net, ids, 2)[0].tolist()
    )


def test_outputs_that_are_not_probabilities_raise():
    # NLLLoss means the module must return probabilities; these are logits.
    net, ids = lookup_net(np.array([[2.0, -1.0], [0.5, 0.3]]), criterion=torch.nn.NLLLoss)
    with pytest.raises(ValueError, match="not probabilities"):
        EntropySampler().score(net, ids)


def test_margin_needs_two_classes():
    net, ids = lookup_net(np.ones((3, 1)), criterion=torch.nn.NLLLoss)
    with pytest.raises(ValueError, match="at least two classes"):
        MarginSampler().score(net, ids)


@pytest.mark.parametrize("strategy_class", [LeastConfidenceSampler, MarginSampler])
@pytest.mark.parametrize(("batch_size", "error"), [(0, ValueError), (2.5, TypeError)])
def test_bad_batch_size(strategy_class, batch_size, error):
    net, ids = probabilities_net()
    with pytest.raises(error, match="batch_size"):
        strategy_class(batch_size=batch_size).score(net, ids)
