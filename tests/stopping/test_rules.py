"""Stopping rules against values computed by hand."""

import math

import numpy as np
import pytest
from sklearn.metrics import cohen_kappa_score

from skdynal.stopping import (
    ClassificationChange,
    DynamicsPlateau,
    LabelBudget,
    OverallUncertainty,
    StabilizingPredictions,
    cohen_kappa,
)


class Scripted:
    """A 'model' that returns the next scripted probability table on each predict_proba."""

    def __init__(self, *tables, y_training=None, X_training=None):
        self.tables = [np.asarray(t, dtype=float) for t in tables]
        self.calls = 0
        self.y_training = y_training
        self.X_training = X_training

    def predict_proba(self, X):
        table = self.tables[min(self.calls, len(self.tables) - 1)]
        self.calls += 1
        return table[: len(X)]

    def predict(self, X):
        return self.predict_proba(X).argmax(axis=1)


def onehot(classes, k=3):
    return np.eye(k)[np.asarray(classes)]


# ---------------------------------------------------------------- Cohen's kappa
def test_cohen_kappa_by_hand():
    a = [0, 0, 1, 1, 2, 2, 0, 1]
    b = [0, 0, 1, 2, 2, 2, 1, 1]
    # p_o = 6/8; p_a = (3,3,2)/8, p_b = (2,3,3)/8, p_e = (6 + 9 + 6)/64 = 21/64
    p_o, p_e = 6 / 8, 21 / 64
    assert cohen_kappa(a, b) == pytest.approx((p_o - p_e) / (1 - p_e))
    assert cohen_kappa(a, b) == pytest.approx(cohen_kappa_score(a, b))
    assert cohen_kappa(a, b) == pytest.approx(0.627906976744186)


def test_cohen_kappa_constant_agreement_is_one_not_nan():
    assert cohen_kappa([2, 2, 2], [2, 2, 2]) == 1.0
    # constant but different: p_o = 0, p_e = 0 -> 0
    assert cohen_kappa([1, 1], [2, 2]) == 0.0


def test_cohen_kappa_refuses_unequal_lengths():
    with pytest.raises(ValueError, match="one length"):
        cohen_kappa([0, 1], [0])


# ---------------------------------------------------------------- stabilizing predictions
def test_stabilizing_predictions_mean_kappa_over_window():
    rounds = [
        onehot([0, 0, 1, 1, 2, 2, 0, 1]),
        onehot([0, 0, 1, 2, 2, 2, 1, 1]),  # kappa 0.6279 with round 0
        onehot([0, 0, 1, 2, 2, 2, 1, 1]),  # 1.0
        onehot([0, 0, 1, 2, 2, 2, 1, 1]),  # 1.0
        onehot([0, 0, 1, 2, 2, 2, 1, 1]),  # 1.0
    ]
    model = Scripted(*rounds)
    rule = StabilizingPredictions(window=3, threshold=0.99)
    X = np.zeros((8, 2))
    decisions = [rule.update(model, X, n_labeled=10 + i) for i in range(5)]
    assert math.isnan(rule.history_[0])
    assert rule.history_[1:] == pytest.approx([0.627906976744186, 1.0, 1.0, 1.0])
    # window means: round 3 -> (0.6279 + 1 + 1)/3 = 0.8760 < 0.99; round 4 -> 1.0
    assert decisions == [False, False, False, False, True]
    assert rule.stopped_at_ == 4
    assert rule.n_labeled_ == [10, 11, 12, 13, 14]


def test_stabilizing_predictions_matches_rows_by_pool_id():
    # round 0 predicts ids 10..13; round 1 lost id 11 (labeled) and reordered the rest
    model = Scripted(onehot([0, 1, 1, 2]), onehot([2, 0, 1]))
    rule = StabilizingPredictions(window=1, threshold=0.99)
    rule.update(model, np.zeros((4, 1)), pool_ids=[10, 11, 12, 13], n_labeled=0)
    rule.update(model, np.zeros((3, 1)), pool_ids=[13, 10, 12], n_labeled=1)
    # common ids 13, 10, 12: before (2, 0, 1), now (2, 0, 1): perfect agreement
    assert rule.history_[1] == 1.0
    assert rule.stop_


def test_stabilizing_predictions_fixed_stop_set_must_keep_its_rows():
    model = Scripted(onehot([0, 1]), onehot([0, 1]))
    rule = StabilizingPredictions()
    rule.update(model, np.zeros((5, 1)), X_stop=np.zeros((2, 1)), n_labeled=1)
    with pytest.raises(ValueError, match="stop set must stay the same rows"):
        rule.update(model, np.zeros((5, 1)), X_stop=np.zeros((3, 1)), n_labeled=2)


def test_latched_and_reset():
    model = Scripted(onehot([0, 1]))
    rule = StabilizingPredictions(window=1)
    assert [rule.update(model, np.zeros((2, 1)), n_labeled=1) for _ in range(3)] == [
        False,
        True,
        True,
    ]
    rule.reset()
    assert rule.update(model, np.zeros((2, 1)), n_labeled=1) is False
    assert len(rule.history_) == 1


# ---------------------------------------------------------------- classification change
def test_classification_change_fraction_on_common_rows():
    model = Scripted(onehot([0, 1, 2, 0, 1]), onehot([0, 2, 2, 1]), onehot([0, 2, 2, 1]))
    rule = ClassificationChange(threshold=0.0)
    rule.update(model, np.zeros((5, 1)), pool_ids=["a", "b", "c", "d", "e"], n_labeled=1)
    # "e" was labeled; b: 1 -> 2 and d: 0 -> 1 changed, 2 of the 4 common rows
    rule.update(model, np.zeros((4, 1)), pool_ids=["a", "b", "c", "d"], n_labeled=2)
    assert rule.history_[1] == 0.5
    assert not rule.stop_
    assert rule.update(model, np.zeros((4, 1)), pool_ids=["a", "b", "c", "d"], n_labeled=3)
    assert rule.history_[2] == 0.0
    assert rule.stopped_at_ == 2


def test_pool_without_ids_must_keep_its_rows():
    model = Scripted(onehot([0, 1, 2]), onehot([0, 1]))
    rule = ClassificationChange()
    rule.update(model, np.zeros((3, 1)), n_labeled=1)
    # without ids, rows are matched by position: 2 rows in common, none changed
    rule.update(model, np.zeros((2, 1)), n_labeled=2)
    assert rule.history_[1] == 0.0
    with pytest.raises(ValueError, match="pool_ids has 2 ids but X_unlabeled has 3 rows"):
        rule.update(model, np.zeros((3, 1)), pool_ids=[1, 2], n_labeled=3)


# ---------------------------------------------------------------- overall uncertainty
def test_overall_uncertainty_mean_normalised_entropy():
    proba = np.array([[0.5, 0.5], [1.0, 0.0], [0.9, 0.1]])
    # H/log2: 1, 0, -(0.9 ln 0.9 + 0.1 ln 0.1)/ln 2 = 0.4689955935892812
    expected = (1.0 + 0.0 + 0.4689955935892812) / 3
    rule = OverallUncertainty(threshold=0.5)
    assert rule.update(Scripted(proba), np.zeros((3, 1)), n_labeled=4) is True
    assert rule.history_ == pytest.approx([expected])
    assert expected == pytest.approx(0.4896651978630937)
    rule = OverallUncertainty(threshold=0.48)
    assert rule.update(Scripted(proba), np.zeros((3, 1)), n_labeled=4) is False


def test_overall_uncertainty_three_classes():
    proba = np.array([[1 / 3, 1 / 3, 1 / 3], [1.0, 0.0, 0.0]])
    rule = OverallUncertainty()
    rule.update(Scripted(proba), np.zeros((2, 1)), n_labeled=1)
    assert rule.history_ == pytest.approx([0.5])


# ---------------------------------------------------------------- label budget
def test_label_budget_reads_y_training():
    rule = LabelBudget(budget=30)
    model = Scripted(onehot([0]), y_training=np.zeros(20))
    assert rule.update(model, np.zeros((1, 1))) is False
    model.y_training = np.zeros(30)
    assert rule.update(model, np.zeros((1, 1))) is True
    assert rule.history_ == [20.0, 30.0]


def test_label_budget_needs_a_size():
    with pytest.raises(ValueError, match="pass n_labeled"):
        LabelBudget(budget=3).update(Scripted(onehot([0])), np.zeros((1, 1)))


# ---------------------------------------------------------------- training dynamics
class TableScorer:
    """score(learner, X) -> the scripted scores of X's rows (X holds row keys)."""

    def __init__(self, table):
        self.table = table

    def score(self, learner, X):
        return np.asarray([self.table[int(k)] for k in np.asarray(X).ravel()])


def test_dynamics_plateau_ratio_and_patience():
    table = {10: 8.0, 11: 2.0, 12: 4.0, 13: 0.5, 14: 0.3, 15: 0.1}
    learner = Scripted(onehot([0]), y_training=np.zeros(2))
    rule = DynamicsPlateau(threshold=0.1, patience=2, scorer=TableScorer(table))
    assert not rule.update(learner, np.array([[10], [11]]))  # m_0 = 8: r = 1
    assert not rule.update(learner, np.array([[11], [13]]))  # 2 / 8 = 0.25
    assert not rule.update(learner, np.array([[13], [14]]))  # 0.5 / 8 = 0.0625 (1st)
    assert not rule.update(learner, np.array([[12], [15]]))  # 4 / 8 = 0.5: the run breaks
    assert not rule.update(learner, np.array([[14], [15]]))  # 0.3 / 8 = 0.0375 (1st)
    assert rule.update(learner, np.array([[15]]))  # 0.1 / 8 = 0.0125 (2nd): stop
    assert rule.history_ == pytest.approx([1.0, 0.25, 0.0625, 0.5, 0.0375, 0.0125])
    assert rule.stopped_at_ == 5
    # the first round's gain is part of the state
    again = DynamicsPlateau(threshold=0.1, scorer=TableScorer(table))
    again.load_state_dict(rule.state_dict())
    again.update(learner, np.array([[13]]))
    assert again.history_[-1] == pytest.approx(0.5 / 8)


def test_dynamics_plateau_non_positive_first_gain_is_nan():
    table = {5: -2.0, 6: 1.0}
    learner = Scripted(onehot([0]), y_training=np.zeros(2))
    rule = DynamicsPlateau(patience=1, scorer=TableScorer(table))
    assert rule.update(learner, np.array([[5]])) is False
    assert rule.update(learner, np.array([[6]])) is False
    assert math.isnan(rule.history_[0]) and math.isnan(rule.history_[1])


def test_dynamics_plateau_with_dynamical_sampler_on_a_real_net(fitted_mlp, labeled_and_pool):
    from modAL.models import ActiveLearner

    from skdynal import DynamicALSampler

    X_lab, y_lab, X_pool = labeled_and_pool
    learner = ActiveLearner(fitted_mlp, DynamicALSampler(), X_training=X_lab, y_training=y_lab)
    rule = DynamicsPlateau(patience=1)
    rule.update(learner, X_pool)
    rule.update(learner, X_pool[:40])
    pool = DynamicALSampler().score(learner, X_pool)
    assert rule.history_[0] == 1.0
    assert rule.history_[1] == pytest.approx(pool[:40].max() / pool.max())


# ---------------------------------------------------------------- checks and state
@pytest.mark.parametrize(
    ("rule", "message"),
    [
        (StabilizingPredictions(window=0), "window"),
        (StabilizingPredictions(threshold=2.0), "threshold"),
        (ClassificationChange(threshold=-0.1), "threshold"),
        (OverallUncertainty(threshold="low"), "threshold"),
        (LabelBudget(budget=True), "budget"),
        (DynamicsPlateau(scorer=object()), "scorer"),
    ],
)
def test_bad_parameters_are_named(rule, message):
    with pytest.raises((ValueError, TypeError), match=message):
        rule.update(Scripted(onehot([0])), np.zeros((1, 1)), n_labeled=1)


def test_predictions_follow_the_models_own_decision_rule():
    # A binary net with threshold 0.9 predicts 0 for p = 0.8: the rules compare what
    # predict() says, not the argmax of the probabilities.
    class Thresholded:
        threshold = 0.9

        def __init__(self, p):
            self.p = np.asarray(p, dtype=float)

        def predict_proba(self, X):
            return np.stack([1 - self.p, self.p], axis=1)[: len(X)]

        def predict(self, X):
            return (self.p[: len(X)] > self.threshold).astype(int)

    X, ids = np.zeros((4, 1)), np.arange(4)
    rule = ClassificationChange()
    rule.update(Thresholded([0.8, 0.2, 0.95, 0.1]), X, pool_ids=ids, n_labeled=1)
    # by argmax nothing changes (rows 0 and 2 stay class 1); by the threshold row 2 does
    rule.update(Thresholded([0.6, 0.2, 0.85, 0.1]), X, pool_ids=ids, n_labeled=2)
    assert rule.history_[-1] == pytest.approx(0.25)  # only row 2 crosses 0.9


def test_model_without_predict_proba_is_named():
    with pytest.raises(TypeError, match="object has no predict_proba"):
        OverallUncertainty().update(object(), np.zeros((1, 1)), n_labeled=1)


def test_state_dict_round_trip_gives_the_same_next_decision():
    tables = [onehot([0, 1, 2]), onehot([0, 1, 1]), onehot([0, 1, 1]), onehot([0, 1, 1])]
    a = StabilizingPredictions(window=2)
    model = Scripted(*tables)
    for i in range(3):
        a.update(model, np.zeros((3, 1)), pool_ids=[7, 8, 9], n_labeled=i)
    import json

    state = json.loads(json.dumps(a.state_dict()))
    b = StabilizingPredictions(window=2).load_state_dict(state)
    assert b.n_labeled_ == a.n_labeled_
    assert np.allclose(b.history_[1:], a.history_[1:]) and math.isnan(b.history_[0])
    model_a, model_b = Scripted(tables[3]), Scripted(tables[3])
    assert a.update(model_a, np.zeros((3, 1)), pool_ids=[7, 8, 9], n_labeled=3) == b.update(
        model_b, np.zeros((3, 1)), pool_ids=[7, 8, 9], n_labeled=3
    )
    assert a.history_[-1] == b.history_[-1] == 1.0


def test_load_state_dict_refuses_junk():
    with pytest.raises(ValueError, match="written by state_dict"):
        ClassificationChange().load_state_dict({"history": []})


def test_any_rule_stops_at_the_first_member_and_updates_all():
    from skdynal.stopping import AnyRule

    budget, change = LabelBudget(budget=12), ClassificationChange()
    rule = AnyRule([budget, change])
    model = Scripted(onehot([0, 1]), onehot([1, 1]), onehot([1, 0]))
    decisions = [rule.update(model, np.zeros((2, 1)), n_labeled=n) for n in (10, 11, 12)]
    assert decisions == [False, False, True]
    assert budget.history_ == [10.0, 11.0, 12.0]
    assert change.history_[1:] == [0.5, 0.5]
    assert rule.history_ == [0.0, 0.0, 1.0]


@pytest.mark.parametrize(
    "rule",
    [
        StabilizingPredictions(threshold=True),
        ClassificationChange(threshold=True),
        OverallUncertainty(threshold=True),
    ],
)
def test_a_boolean_threshold_is_refused(rule):
    # as for every numeric parameter of the package (StrictInterval): True is not 1.0
    with pytest.raises((ValueError, TypeError), match="threshold"):
        rule.update(Scripted(onehot([0])), np.zeros((1, 1)), n_labeled=1)
