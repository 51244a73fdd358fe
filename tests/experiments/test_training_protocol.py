"""The runner's training protocol options: train until fit, fresh optimizer, balanced start."""

import itertools
import json
import os

import numpy as np
import pytest

from skdynal.datasets import load_digits_split
from skdynal.experiments import run_experiment
from skdynal.experiments._runner import initial_indices

TINY = dict(
    initial=20,
    query=10,
    rounds=2,
    epochs=30,
    batch_size=32,
    lr=1e-2,
    module_kwargs={"hidden": (16,)},
    progress=False,
    seeds=1,
)


@pytest.fixture(scope="module")
def data():
    return load_digits_split(random_state=0)


def test_balanced_initial_set_has_the_same_count_per_class():
    y = np.repeat(np.arange(4), [50, 30, 20, 100])
    indices = initial_indices(y, 10, 0, balanced=True)
    counts = np.bincount(y[indices], minlength=4)
    assert len(np.unique(indices)) == 10
    assert sorted(counts.tolist()) == [2, 2, 3, 3]
    np.testing.assert_array_equal(indices, initial_indices(y, 10, 0, balanced=True))


def test_balanced_initial_set_tops_up_from_other_classes_when_one_is_small():
    y = np.array([0] * 50 + [1] * 2)
    indices = initial_indices(y, 10, 1, balanced=True)
    assert len(np.unique(indices)) == 10
    assert np.sum(y[indices] == 1) == 2


def test_uniform_initial_set_is_the_runners_historical_draw():
    y = np.arange(100) % 3
    expected = np.random.RandomState(5).choice(100, size=7, replace=False)
    np.testing.assert_array_equal(initial_indices(y, 7, np.random.RandomState(5)), expected)


def test_runner_draws_a_balanced_initial_set(data):
    results = run_experiment(
        data, model="mlp", strategies=["random"], initial_sampling="balanced", **TINY
    )
    assert results.config["initial_sampling"] == "balanced"
    # 20 labels over 10 classes: the round-0 net saw 2 of each
    assert results.rows[0]["n_labels"] == 20


def test_train_until_fit_trains_each_round_until_the_threshold_holds(data):
    fixed = run_experiment(data, model="mlp", strategies=["random"], **TINY)
    fitted = run_experiment(
        data,
        model="mlp",
        strategies=["random"],
        train_until_fit={"threshold": 0.9, "patience": 2},
        **TINY,
    )
    assert [r["train_epochs"] for r in fixed.rows] == [30, 30, 30]
    epochs = [r["train_epochs"] for r in fitted.rows]
    assert all(2 <= e <= 30 for e in epochs) and epochs != [30, 30, 30]
    assert fitted.config["train_until_fit"] == {
        "threshold": 0.9,
        "patience": 2,
        "min_epochs": 1,
        "accuracy": "running",
    }
    assert fitted.config["protocol_key"] != fixed.config["protocol_key"]


def test_protocol_options_are_recorded_in_config_json(data, tmp_path):
    run_experiment(
        data,
        model="mlp",
        strategies=["random"],
        train_until_fit=True,
        reset_optimizer=True,
        initial_sampling="balanced",
        out=tmp_path,
        plot=False,
        **TINY,
    )
    with open(os.path.join(tmp_path, "config.json"), encoding="utf-8") as f:
        config = json.load(f)
    assert config["train_until_fit"]["threshold"] == 0.97
    assert config["reset_optimizer"] is True
    assert config["initial_sampling"] == "balanced"


def test_default_protocol_key_is_unchanged_by_the_new_options(data):
    # cells stored before the options existed must still be found
    a = run_experiment(data, model="mlp", strategies=["random"], **{**TINY, "rounds": 0})
    b = run_experiment(
        data,
        model="mlp",
        strategies=["random"],
        train_until_fit=None,
        reset_optimizer=False,
        initial_sampling="random",
        **{**TINY, "rounds": 0},
    )
    assert a.config["protocol_key"] == b.config["protocol_key"]


@pytest.mark.parametrize(
    "kwargs, error, match",
    [
        ({"train_until_fit": {"threshold": 2}}, ValueError, "threshold"),
        ({"train_until_fit": {"max_epochs": 5}}, ValueError, "unknown keys"),
        ({"train_until_fit": "yes"}, TypeError, "train_until_fit"),
        ({"initial_sampling": "stratified"}, ValueError, "initial_sampling"),
    ],
)
def test_bad_protocol_options_raise(data, kwargs, error, match):
    with pytest.raises(error, match=match):
        run_experiment(data, model="mlp", strategies=["random"], **kwargs, **TINY)


def test_runner_grows_the_architecture_with_inas(data):
    results = run_experiment(
        data,
        model="mlp",
        strategies=["margin"],
        inas={"max_blocks": 2, "max_stacks": 2, "candidate_epochs": 2},
        **{**TINY, "epochs": 3, "initial": 40},
    )
    structures = [tuple(r["structure"]) for r in results.rows]
    assert all(b <= 2 and s <= 2 for b, s in structures)
    # the search never shrinks the network
    for (b0, s0), (b1, s1) in itertools.pairwise(structures):
        assert s1 >= s0 and b1 * s1 >= b0 * s0
    assert all(r["search_seconds"] >= 0 for r in results.rows)
    assert results.config["inas"]["family"] == "mlp"
    assert results.config["inas"]["family_kwargs"] == {"n_classes": 10, "n_features": 64}


def test_runner_fixed_family_member_is_the_inas_baseline(data):
    results = run_experiment(
        data,
        model="mlp",
        strategies=["margin"],
        inas={"search_steps": 0, "initial_structure": (2, 2)},
        **{**TINY, "epochs": 2, "initial": 40},
    )
    assert {tuple(r["structure"]) for r in results.rows} == {(2, 2)}


def test_cli_runs_inas(tmp_path, capsys):
    from skdynal.cli import main

    code = main(
        [
            "run",
            "--strategies",
            "margin",
            "--initial",
            "40",
            "--query",
            "20",
            "--rounds",
            "1",
            "--seeds",
            "1",
            "--epochs",
            "2",
            "--inas",
            "--max-blocks",
            "2",
            "--max-stacks",
            "2",
            "--no-plot",
            "--no-progress",
            "--out",
            str(tmp_path),
        ]
    )
    assert code == 0
    config = json.load(open(tmp_path / "config.json", encoding="utf-8"))
    assert config["inas"]["max_blocks"] == 2 and config["inas"]["search_steps"] == 1
    rows = json.load(open(tmp_path / "results.json", encoding="utf-8"))
    assert all("structure" in row for row in rows)


def test_cli_gives_dropout_to_the_inas_family_for_bald(tmp_path):
    from skdynal.cli import main

    code = main(
        [
            "run",
            "--strategies",
            "bald",
            "--dropout",
            "0.2",
            "--initial",
            "40",
            "--query",
            "20",
            "--rounds",
            "1",
            "--seeds",
            "1",
            "--epochs",
            "2",
            "--fixed-structure",
            "1",
            "2",
            "--no-plot",
            "--no-progress",
            "--out",
            str(tmp_path),
        ]
    )
    assert code == 0
    config = json.load(open(tmp_path / "config.json", encoding="utf-8"))
    assert config["inas"]["family_kwargs"]["dropout"] == 0.2
    assert config["inas"]["search_steps"] == 0
    assert config["inas"]["initial_structure"] == [1, 2]
