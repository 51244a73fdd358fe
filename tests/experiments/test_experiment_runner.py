"""The experiment runner: protocol, seeding, resume, outputs, strategy registry."""

import csv
import json
import math
import os
from typing import ClassVar

import numpy as np
import pytest
import torch
from modAL.models import ActiveLearner
from sklearn.base import BaseEstimator
from skorch import NeuralNetClassifier

from skdynal import RandomSampler
from skdynal.datasets import load_digits_split
from skdynal.experiments import (
    RESULT_COLUMNS,
    _runner,
    available_strategies,
    make_strategy,
    register_strategy,
    run_experiment,
)
from skdynal.models import MLP

TIMING = ("query_seconds", "train_seconds")
TINY = dict(
    initial=20,
    query=10,
    rounds=2,
    epochs=2,
    batch_size=32,
    lr=1e-2,
    module_kwargs={"hidden": (16,)},
    progress=False,
)


@pytest.fixture(scope="module")
def data():
    return load_digits_split(random_state=0)


def without_timing(rows):
    return [{k: v for k, v in row.items() if k not in TIMING} for row in rows]


class PoolRecorder(BaseEstimator):
    """Queries the first rows of the pool; records what it saw."""

    calls: ClassVar[list] = []

    def __init__(self, random_state=None):
        self.random_state = random_state

    def __call__(self, learner, X_pool, n_instances=1):
        PoolRecorder.calls.append(
            {
                "seed": self.random_state,
                "n_pool": len(X_pool),
                "n_labeled": len(learner.X_training),
                "warm_start": learner.estimator.warm_start,
                "pool_rows": {row.tobytes() for row in np.asarray(X_pool)},
                "labeled_rows": {row.tobytes() for row in np.asarray(learner.X_training)},
            }
        )
        return np.arange(n_instances)


class Exploding(BaseEstimator):
    """Random sampling that raises on one seed while ``armed`` (a class switch)."""

    armed = True

    def __init__(self, explode_on=1, random_state=None):
        self.explode_on = explode_on
        self.random_state = random_state

    def __call__(self, learner, X_pool, n_instances=1):
        if Exploding.armed and self.random_state == self.explode_on:
            raise RuntimeError("simulated interruption")
        return np.random.RandomState(self.random_state).choice(
            len(X_pool), n_instances, replace=False
        )


def test_rows_have_the_protocol_shape(data):
    results = run_experiment(
        data, model="mlp", strategies=["random", "margin"], seeds=[3, 5], **TINY
    )
    rows = results.rows
    assert len(rows) == 2 * 2 * 3
    assert all(list(row) == RESULT_COLUMNS for row in rows)
    cells = {(r["strategy"], r["seed"]) for r in rows}
    assert cells == {("random", 3), ("random", 5), ("margin", 3), ("margin", 5)}
    for row in rows:
        assert row["n_labels"] == 20 + 10 * row["round"]
        assert 0.0 <= row["test_accuracy"] <= 1.0
        assert row["train_seconds"] > 0
        if row["round"] == 0:
            assert row["query_seconds"] is None
        else:
            assert row["query_seconds"] > 0
    # Same seed: same initial set and weights, so round 0 is identical across strategies.
    for seed in (3, 5):
        round0 = {r["test_accuracy"] for r in rows if r["seed"] == seed and r["round"] == 0}
        assert len(round0) == 1


def test_random_strategy_matches_a_hand_written_protocol(data):
    """Independent re-implementation of one cell: initial set, net seed, query, teach."""
    seed = 4
    results = run_experiment(data, model="mlp", strategies=["random"], seeds=[seed], **TINY)

    rng = np.random.RandomState(seed)
    labeled = rng.choice(len(data.X_train), size=20, replace=False)
    pool = np.setdiff1d(np.arange(len(data.X_train)), labeled)
    torch.manual_seed(seed)
    net = NeuralNetClassifier(
        MLP,
        module__hidden=(16,),
        module__n_features=64,
        module__n_classes=10,
        criterion=torch.nn.CrossEntropyLoss,
        optimizer=torch.optim.Adam,
        lr=1e-2,
        max_epochs=2,
        batch_size=32,
        train_split=None,
        warm_start=True,
        iterator_train__shuffle=True,
        verbose=0,
    )
    learner = ActiveLearner(
        net,
        query_strategy=RandomSampler(random_state=seed),
        X_training=data.X_train[labeled],
        y_training=data.y_train[labeled],
    )
    expected = [np.mean(net.predict(data.X_test) == data.y_test)]
    for _ in range(2):
        idx, _ = learner.query(data.X_train[pool], n_instances=10)
        learner.teach(data.X_train[pool[idx]], data.y_train[pool[idx]])
        pool = np.delete(pool, idx)
        expected.append(np.mean(net.predict(data.X_test) == data.y_test))
    assert [r["test_accuracy"] for r in results.rows] == pytest.approx(expected, abs=0)


def test_queried_rows_leave_the_pool_and_join_the_labeled_set(data):
    PoolRecorder.calls = []
    run_experiment(data, model="mlp", strategies={"first": PoolRecorder()}, seeds=[7], **TINY)
    calls = PoolRecorder.calls
    assert [c["n_pool"] for c in calls] == [len(data.X_train) - 20, len(data.X_train) - 30]
    assert [c["n_labeled"] for c in calls] == [20, 30]
    assert all(c["seed"] == 7 and c["warm_start"] for c in calls)
    for c in calls:
        assert not c["pool_rows"] & c["labeled_rows"]
    # The rows handed out in round 1 are labeled in round 2.
    added = calls[1]["labeled_rows"] - calls[0]["labeled_rows"]
    assert len(added) == 10 and added <= calls[0]["pool_rows"]


def test_reinit_builds_a_net_without_warm_start(data):
    PoolRecorder.calls = []
    run_experiment(
        data, model="mlp", strategies={"first": PoolRecorder()}, seeds=[0], reinit=True, **TINY
    )
    assert [c["warm_start"] for c in PoolRecorder.calls] == [False, False]


def test_same_seed_same_results_and_other_seed_differs(data):
    first = run_experiment(
        data, model="mlp", strategies=["random", "dynamical"], seeds=[1], **TINY
    )
    second = run_experiment(
        data, model="mlp", strategies=["random", "dynamical"], seeds=[1], **TINY
    )
    other = run_experiment(
        data, model="mlp", strategies=["random", "dynamical"], seeds=[2], **TINY
    )
    assert without_timing(first.rows) == without_timing(second.rows)
    accuracies = [r["test_accuracy"] for r in first.rows]
    assert accuracies != [r["test_accuracy"] for r in other.rows]


def test_resume_after_interruption_recomputes_nothing_finished(data, tmp_path, monkeypatch):
    strategies = {"random": "random", "boom": Exploding(explode_on=1)}
    Exploding.armed = True
    with pytest.raises(RuntimeError, match="simulated interruption"):
        run_experiment(
            data, model="mlp", strategies=strategies, seeds=[0, 1], out=tmp_path, **TINY
        )
    stored = sorted(os.listdir(tmp_path / "cells"))
    assert len(stored) == 3  # random 0, random 1, boom 0; boom 1 was interrupted
    assert not (tmp_path / "results.csv").exists()

    computed = []
    real_run_cell = _runner._run_cell

    def counting_run_cell(label, strategy, seed, *args, **kwargs):
        computed.append((label, seed))
        return real_run_cell(label, strategy, seed, *args, **kwargs)

    monkeypatch.setattr(_runner, "_run_cell", counting_run_cell)
    Exploding.armed = False
    resumed = run_experiment(
        data, model="mlp", strategies=strategies, seeds=[0, 1], out=tmp_path, **TINY
    )
    assert computed == [("boom", 1)]

    stored_rows = []
    for name in stored:
        stored_rows += json.loads((tmp_path / "cells" / name).read_text())["rows"]
    key = lambda r: (r["strategy"], r["seed"], r["round"])  # noqa: E731
    resumed_finished = [r for r in resumed.rows if (r["strategy"], r["seed"]) != ("boom", 1)]
    # Timings included: the finished cells were read back, not recomputed.
    assert sorted(resumed_finished, key=key) == sorted(stored_rows, key=key)

    fresh = run_experiment(data, model="mlp", strategies=strategies, seeds=[0, 1], **TINY)
    assert without_timing(resumed.rows) == without_timing(fresh.rows)

    # resume=False and a changed protocol both recompute everything.
    computed.clear()
    run_experiment(
        data, model="mlp", strategies=strategies, seeds=[0, 1], out=tmp_path, resume=False, **TINY
    )
    assert len(computed) == 4
    computed.clear()
    run_experiment(
        data,
        model="mlp",
        strategies=strategies,
        seeds=[0, 1],
        out=tmp_path,
        **{**TINY, "epochs": 1},
    )
    assert len(computed) == 4


def test_outputs_written(data, tmp_path):
    results = run_experiment(
        data,
        model="mlp",
        strategies=["random", "entropy"],
        seeds=[0, 1],
        out=tmp_path,
        dataset="digits",
        **TINY,
    )
    with open(tmp_path / "results.csv", newline="") as f:
        table = list(csv.DictReader(f))
    assert list(table[0]) == RESULT_COLUMNS
    assert len(table) == len(results.rows) == 12
    for line, row in zip(table, results.rows, strict=True):
        assert line["dataset"] == "digits" and line["model"] == "mlp"
        assert float(line["test_accuracy"]) == row["test_accuracy"]
        assert line["query_seconds"] == ("" if row["round"] == 0 else line["query_seconds"])
    assert json.loads((tmp_path / "results.json").read_text()) == results.rows
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["baseline"] == "random"
    assert {s["strategy"] for s in summary["strategies"]} == {"random", "entropy"}
    png = (tmp_path / "learning_curve.png").read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 5000
    config = json.loads((tmp_path / "config.json").read_text())
    assert config["seeds"] == [0, 1] and config["initial"] == 20
    text = results.accuracy_table()
    assert text.splitlines()[0].split() == ["round", "labels", "random", "entropy"]
    assert len(text.splitlines()) == 4


def test_strategy_objects_modal_functions_and_registry_entries(data):
    from modAL.uncertainty import margin_sampling

    register_strategy(
        "test-random-copy",
        lambda random_state: RandomSampler(random_state=random_state),
        description="registered by a test",
        overwrite=True,
    )
    assert "test-random-copy" in available_strategies()
    results = run_experiment(
        data,
        model="mlp",
        strategies=["random", "test-random-copy", ("mine", RandomSampler()), margin_sampling],
        seeds=[0],
        **TINY,
    )
    by_label = {}
    for row in results.rows:
        by_label.setdefault(row["strategy"], []).append(row["test_accuracy"])
    assert list(by_label) == ["random", "test-random-copy", "mine", "margin_sampling"]
    # A RandomSampler object gets the cell's seed, so all three random ones coincide.
    assert by_label["random"] == by_label["test-random-copy"] == by_label["mine"]


def test_module_classes_and_skorch_nets_as_models(data):
    from _nets import DigitsMLP, make_net

    by_class = run_experiment(
        data,
        model=DigitsMLP,
        strategies=["random"],
        seeds=[0],
        reinit=True,
        **{**TINY, "module_kwargs": {"hidden": 8}},
    )
    assert by_class.config["model"] == "DigitsMLP"
    PoolRecorder.calls = []
    template = make_net(max_epochs=1)
    by_net = run_experiment(
        data,
        model=template,
        strategies={"first": PoolRecorder()},
        seeds=[0, 1],
        reinit=True,
        **{**TINY, "module_kwargs": None},
    )
    # The template is cloned per cell, never fitted itself; warm_start follows reinit.
    assert not hasattr(template, "module_")
    assert [c["warm_start"] for c in PoolRecorder.calls] == [False] * 4
    assert by_net.config["model"] == "DigitsMLP"
    seed0 = [r["test_accuracy"] for r in by_net.rows if r["seed"] == 0]
    assert seed0 != [r["test_accuracy"] for r in by_net.rows if r["seed"] == 1]


def test_registry_builds_seeded_strategies_and_lists_valid_names():
    strategy = make_strategy("dynamical", random_state=3)
    assert strategy.get_params()["gamma"] == 2.0 and strategy.random_state == 3
    assert make_strategy("dynamical-inf").gamma == math.inf
    assert make_strategy("albl", protocol={"rounds": 7}).n_rounds == 7
    with pytest.raises(ValueError, match=r"choose from dynamical, .*random"):
        make_strategy("no-such-strategy")
    with pytest.raises(ValueError, match="already registered"):
        register_strategy("random", lambda random_state: None)
    with pytest.raises(TypeError, match="callable"):
        register_strategy("not-callable", 3)


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"strategies": ["random", "nope"]}, ValueError, "'nope' is unknown; choose from"),
        ({"strategies": []}, ValueError, "strategies is empty"),
        ({"strategies": [("a", "random"), ("a", "margin")]}, ValueError, "unique"),
        ({"strategies": [("a", 3)]}, TypeError, "registered name or a modAL"),
        ({"seeds": [1, 1]}, ValueError, "must not repeat"),
        ({"seeds": 0}, ValueError, "The 'seeds' parameter of ExperimentProtocol must be"),
        ({"initial": 5000}, ValueError, "leaves no pool"),
        ({"rounds": -1}, ValueError, "The 'rounds' parameter of ExperimentProtocol must be"),
        ({"optimizer": "lbfgs"}, ValueError, "The 'optimizer' parameter of ExperimentProtocol"),
        ({"model": "transformer"}, ValueError, "Unknown model"),
        ({"model": 3}, TypeError, "The 'model' parameter of ExperimentProtocol"),
    ],
)
def test_bad_arguments_raise_clear_errors(data, kwargs, error, match):
    params = {**TINY, "strategies": ["random"], "seeds": [0], **kwargs}
    model = params.pop("model", "mlp")
    with pytest.raises(error, match=match):
        run_experiment(data, model=model, **params)


def test_bad_data_raises():
    with pytest.raises(TypeError, match="mapping"):
        run_experiment([1, 2, 3], model="mlp", strategies=["random"], progress=False)
    X = np.zeros((10, 4), dtype=np.float32)
    bad = {"X_train": X, "y_train": np.zeros(9, int), "X_test": X, "y_test": np.zeros(10, int)}
    with pytest.raises(ValueError, match="lengths differ"):
        run_experiment(bad, model="mlp", strategies=["random"], progress=False)
