"""ALBL: EXP4.P probabilities, importance weights, rewards and weight updates by hand."""

import math
import pickle

import numpy as np
import pytest
import torch
from _nets import make_net
from modAL.models import ActiveLearner
from sklearn.base import clone

from skdynal import ALBLSampler, InfluenceSampler, MarginSampler, RandomSampler

N_ROUNDS, DELTA = 5, 0.1


@pytest.fixture
def setup(digits):
    X, y = digits
    torch.manual_seed(0)
    strategy = ALBLSampler(
        [RandomSampler(), MarginSampler()], n_rounds=N_ROUNDS, delta=DELTA, random_state=0
    )
    learner = ActiveLearner(
        estimator=make_net(max_epochs=2),
        query_strategy=strategy,
        X_training=X[:40],
        y_training=y[:40],
    )
    return strategy, learner, X[40:200], y[40:200]


def query(learner, X_pool, n):
    idx, _ = learner.query(X_pool, n_instances=n)
    return np.asarray(idx)


def test_two_rounds_match_exp4p_by_hand(setup):
    strategy, learner, X_pool, y_pool = setup
    n, n_pool = 8, len(X_pool)
    margin_batch, _ = MarginSampler(random_state=0).select(learner, X_pool, n)

    idx = query(learner, X_pool, n)
    np.testing.assert_allclose(strategy.probabilities_, [0.5, 0.5])
    chosen = strategy.history_[0]["strategy"]
    if chosen == 1:
        assert sorted(idx.tolist()) == sorted(margin_batch.tolist())
    assert strategy.history_[0]["reward"] is None
    # q_j = p_random * n / n_pool + p_margin * [j in margin's batch]
    q = 0.5 * n / n_pool + 0.5 * np.isin(idx, margin_batch)
    before = strategy.log_weights_.copy()

    learner.teach(X_pool[idx], y_pool[idx])
    rest = np.delete(np.arange(n_pool), idx)
    query(learner, X_pool[rest], n)

    np.testing.assert_allclose(strategy.queried_weights_, 1.0 / q)
    np.testing.assert_array_equal(strategy.queried_y_, y_pool[idx])
    predictions = learner.estimator.predict(X_pool[idx])  # skorch's own prediction
    n_total = (40 + n) + (n_pool - n)
    reward = np.sum((predictions == y_pool[idx]) / q) / (n_total * N_ROUNDS)
    assert strategy.history_[0]["reward"] == pytest.approx(reward, rel=1e-12)
    assert strategy.history_[0]["n_labels_found"] == n

    p_min = math.sqrt(math.log(2) / (2 * N_ROUNDS))
    r_hat = np.zeros(2)
    r_hat[chosen] = reward / 0.5
    v_hat = np.array([1 / 0.5, 1 / 0.5])
    step = p_min / 2 * (r_hat + v_hat * math.sqrt(math.log(2 / DELTA) / (2 * N_ROUNDS)))
    np.testing.assert_allclose(strategy.log_weights_, before + step, rtol=1e-12)
    w = np.exp(before + step)
    np.testing.assert_allclose(
        strategy.probabilities_, (1 - 2 * p_min) * w / w.sum() + p_min, rtol=1e-12
    )
    np.testing.assert_allclose(strategy.weights_, w / w.max(), rtol=1e-12)
    assert strategy.probabilities_[chosen] > 0.5 or reward == 0
    assert len(strategy.history_) == 2


def test_labels_are_found_by_value_in_any_order(setup):
    strategy, learner, X_pool, y_pool = setup
    idx = query(learner, X_pool, 8)
    taught = idx[[5, 1, 3, 0, 7]]  # five of the eight, reordered
    learner.teach(X_pool[taught], y_pool[taught])
    query(learner, np.delete(X_pool, taught, axis=0), 4)
    assert strategy.history_[0]["n_labels_found"] == 5
    assert len(strategy.queried_weights_) == 5
    assert sorted(strategy.queried_y_.tolist()) == sorted(y_pool[taught].tolist())


def test_asking_again_before_teaching_repeats_the_round(setup):
    strategy, learner, X_pool, _ = setup
    first = query(learner, X_pool, 6)
    weights = strategy.log_weights_.copy()
    second = query(learner, X_pool, 6)
    np.testing.assert_array_equal(first, second)
    np.testing.assert_array_equal(strategy.log_weights_, weights)
    assert len(strategy.history_) == 1


def test_state_survives_pickling_and_clone_starts_over(setup):
    strategy, learner, X_pool, y_pool = setup
    idx = query(learner, X_pool, 8)
    learner.teach(X_pool[idx], y_pool[idx])
    rest = np.delete(X_pool, idx, axis=0)
    copy = pickle.loads(pickle.dumps(strategy))
    np.testing.assert_array_equal(copy.log_weights_, strategy.log_weights_)
    a, _ = strategy.select(learner, rest, 5)
    b, _ = copy.select(learner, rest, 5)
    np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(copy.log_weights_, strategy.log_weights_)
    assert [h["strategy"] for h in copy.history_] == [h["strategy"] for h in strategy.history_]
    assert [h["reward"] for h in copy.history_] == [h["reward"] for h in strategy.history_]
    fresh = clone(strategy)
    assert not hasattr(fresh, "log_weights_")
    assert [type(s) for s in fresh.strategies] == [RandomSampler, MarginSampler]
    assert all(c is not s for c, s in zip(fresh.strategies, strategy.strategies, strict=True))


def test_same_seed_same_sequence_of_choices(digits):
    X, y = digits
    runs = []
    for _ in range(2):
        torch.manual_seed(0)
        strategy = ALBLSampler(
            [RandomSampler(), MarginSampler()], n_rounds=3, p_min=0.3, random_state=7
        )
        learner = ActiveLearner(
            estimator=make_net(max_epochs=1),
            query_strategy=strategy,
            X_training=X[:30],
            y_training=y[:30],
        )
        pool, labels, picked = X[30:130], y[30:130], []
        for _ in range(3):
            idx = query(learner, pool, 5)
            picked.append(idx.tolist())
            learner.teach(pool[idx], labels[idx])
            pool, labels = np.delete(pool, idx, axis=0), np.delete(labels, idx)
        runs.append((picked, [h["strategy"] for h in strategy.history_], strategy.log_weights_))
    assert runs[0][0] == runs[1][0] and runs[0][1] == runs[1][1]
    np.testing.assert_array_equal(runs[0][2], runs[1][2])


def test_parameters(fitted_mlp, labeled_and_pool):
    X_lab, y_lab, X_pool = labeled_and_pool
    two = ALBLSampler([RandomSampler(), MarginSampler()], n_rounds=1, random_state=0)
    two.select(fitted_mlp, X_pool, 2, X_labeled=X_lab, y_labeled=y_lab)
    assert two.p_min_ == 0.5  # sqrt(ln 2 / 2) > 1/2 is clipped to 1/N
    default = ALBLSampler(n_rounds=8, random_state=0)
    default.select(fitted_mlp, X_pool, 2, X_labeled=X_lab, y_labeled=y_lab)
    assert default.p_min_ == pytest.approx(math.sqrt(math.log(4) / 32))
    assert len(default.probabilities_) == 4
    assert ALBLSampler([InfluenceSampler(), RandomSampler()]).capabilities().needs_labeled
    assert not ALBLSampler().capabilities().needs_labeled


@pytest.mark.parametrize(
    ("params", "error", "match"),
    [
        ({"strategies": []}, TypeError, "non-empty list"),
        ({"strategies": [object()]}, TypeError, "skdynal query strategy"),
        ({"strategies": [ALBLSampler()]}, TypeError, "not an ALBLSampler"),
        ({"n_rounds": 0}, ValueError, "n_rounds"),
        ({"n_rounds": 2.5}, TypeError, "n_rounds"),
        ({"delta": 1.5}, ValueError, "delta"),
        ({"strategies": [RandomSampler(), MarginSampler()], "p_min": 0.7}, ValueError, "p_min"),
    ],
)
def test_bad_parameters(fitted_mlp, labeled_and_pool, params, error, match):
    X_lab, y_lab, X_pool = labeled_and_pool
    with pytest.raises(error, match=match):
        ALBLSampler(**params).select(fitted_mlp, X_pool, 2, X_labeled=X_lab, y_labeled=y_lab)


def test_changing_the_strategies_after_a_round(fitted_mlp, labeled_and_pool):
    X_lab, y_lab, X_pool = labeled_and_pool
    strategy = ALBLSampler([RandomSampler(), MarginSampler()])
    strategy.select(fitted_mlp, X_pool, 2, X_labeled=X_lab, y_labeled=y_lab)
    strategy.set_params(strategies=[RandomSampler()])
    with pytest.raises(ValueError, match="clone it"):
        strategy.select(fitted_mlp, X_pool, 2, X_labeled=X_lab, y_labeled=y_lab)
