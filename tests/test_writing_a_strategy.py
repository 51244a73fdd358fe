"""The strategies of docs/writing_a_strategy.md work as the page says.

The common contract tests (tests/test_common.py) run the page's strategies next to every
exported strategy; here: their code is the page's, the ten-line strategy's scores are what
it claims and the page's usage block runs, and the checklist works as written (a strategy
added through the public path only is a name of the registry and passes the contract
suite); tests/distributed/test_ray.py checks that RayScorer returns the same rows as a
local query, on the Ray instance it already runs.
"""

import re

import numpy as np
import torch
from _doc_example import (
    BLOCKS,
    EXAMPLES,
    CandidateLossSampler,
    PseudoLabelLossSampler,
    block_defining,
)
from _nets import fitted_net
from modAL.models import ActiveLearner
from test_common import STRATEGIES

from skdynal.base import BaseQueryStrategy, BaseScoringStrategy
from skdynal.experiments import (
    _registry,
    available_strategies,
    make_strategy,
    registered_strategies,
)


def test_the_example_is_ten_lines_of_the_page():
    body = [line for line in BLOCKS[0].splitlines() if line.strip()]
    assert len(body) <= 12  # imports, class, constraints, __init__, score_batch
    assert issubclass(PseudoLabelLossSampler, BaseScoringStrategy)


def test_scores_are_the_loss_at_the_predicted_label(labeled_and_pool):
    X_lab, y_lab, X_pool = labeled_and_pool
    net = fitted_net(X_lab, y_lab)
    scores = PseudoLabelLossSampler().score(net, X_pool)
    with torch.no_grad():
        logits = net.module_(torch.as_tensor(X_pool)).double()
    expected = -torch.log_softmax(logits, dim=1).max(dim=1).values.numpy()
    np.testing.assert_allclose(scores, expected, rtol=1e-5, atol=1e-6)
    indices, chosen = PseudoLabelLossSampler(random_state=0).select(net, X_pool, 5)
    np.testing.assert_array_equal(chosen, scores[indices])
    np.testing.assert_array_equal(np.sort(chosen)[::-1], np.sort(scores)[::-1][:5])


def test_the_usage_block_runs(labeled_and_pool):
    X_lab, y_lab, X_pool = labeled_and_pool
    namespace = {
        "PseudoLabelLossSampler": PseudoLabelLossSampler,
        "net": fitted_net(X_lab, y_lab),
        "X_init": X_lab,
        "y_init": y_lab,
        "X_pool": X_pool,
    }
    exec(compile(BLOCKS[1], "writing_a_strategy.md", "exec"), namespace)
    assert len(set(np.asarray(namespace["idx"]).tolist())) == 10
    assert namespace["scores"].shape == (len(X_pool),)


def test_a_strategy_added_through_the_public_path(labeled_and_pool, monkeypatch):
    """The checklist as a user follows it: a strategy that imports only ``skdynal.base``,
    registered with ``register_strategy``, is built by name and queries as documented; the
    contract suite (tests/test_common.py) runs it like a built-in strategy."""
    for name in EXAMPLES:
        imported = re.findall(r"^(?:from|import) (skdynal\S*)", block_defining(name), re.M)
        assert imported == ["skdynal.base"], name
    assert issubclass(CandidateLossSampler, BaseQueryStrategy)
    assert set(STRATEGIES) >= {CandidateLossSampler, PseudoLabelLossSampler}

    # The registry is global: the page's registration is undone after this test.
    monkeypatch.setattr(_registry, "_REGISTRY", dict(_registry._REGISTRY))
    assert "candidate-loss" not in available_strategies()
    (registration,) = [block for block in BLOCKS if "register_strategy(" in block]
    namespace = {"CandidateLossSampler": CandidateLossSampler}
    exec(compile(registration, "writing_a_strategy.md", "exec"), namespace)
    assert available_strategies()[-1] == "candidate-loss"
    assert registered_strategies()["candidate-loss"] == "largest losses among 200 random rows"
    assert namespace["sampler"].get_params() == {"n_candidates": 200, "random_state": 0}

    X_lab, y_lab, X_pool = labeled_and_pool
    learner = ActiveLearner(
        estimator=fitted_net(X_lab, y_lab),
        query_strategy=make_strategy("candidate-loss", random_state=3),
        X_training=X_lab,
        y_training=y_lab,
    )
    idx, _ = learner.query(X_pool, n_instances=10)
    # 200 candidates cover the pool of 120: the ten largest losses of the whole pool
    losses = PseudoLabelLossSampler().score(learner, X_pool)
    np.testing.assert_allclose(
        np.sort(losses[np.asarray(idx)]), np.sort(losses)[-10:], rtol=1e-6, atol=1e-7
    )
    sampler = CandidateLossSampler(n_candidates=20, random_state=3)
    indices, chosen = sampler.select(learner, X_pool, 5)
    candidates = np.random.RandomState(3).choice(len(X_pool), 20, replace=False)
    assert set(indices.tolist()) <= set(candidates.tolist())
    top = candidates[np.argsort(-losses[candidates], kind="stable")[:5]]
    np.testing.assert_array_equal(indices, top)
    np.testing.assert_allclose(chosen, losses[indices], rtol=1e-6, atol=1e-7)
