"""Stopping rules watched inside the runner's and the benchmark's cells."""

import json
import math
from pathlib import Path

import numpy as np
import pytest

from skdynal import cli
from skdynal.datasets import load_digits_split
from skdynal.experiments import (
    ExperimentProtocol,
    _runner,
    run_benchmark,
    run_experiment,
    summarize_stopping,
)
from skdynal.stopping import (
    ClassificationChange,
    LabelBudget,
    StabilizingPredictions,
    make_stopping_rule,
)

TINY = dict(
    initial=20,
    query=10,
    rounds=3,
    epochs=3,
    batch_size=32,
    lr=1e-2,
    module_kwargs={"hidden": (16,)},
    seeds=2,
    progress=False,
    n_threads=1,
)
RULES = {"budget 40": LabelBudget(budget=40), "change": "change", "stable": "stabilizing"}


@pytest.fixture(scope="module")
def data():
    return load_digits_split(random_state=0)


@pytest.fixture(scope="module")
def watched(data):
    return run_experiment(
        data, model="mlp", strategies=["random", "margin"], stopping=RULES, **TINY
    )


def test_rules_only_watch_the_accuracies_are_those_without_rules(data, watched):
    plain = run_experiment(data, model="mlp", strategies=["random", "margin"], **TINY)
    assert [r["test_accuracy"] for r in plain.rows] == [r["test_accuracy"] for r in watched.rows]
    assert "stopping" not in plain.rows[0]
    assert plain.stopping_summary() == [] and plain.stopping_table() == ""


def test_every_row_records_each_rule(watched):
    for row in watched.rows:
        assert set(row["stopping"]) == set(RULES)
        budget = row["stopping"]["budget 40"]
        assert budget == {"statistic": float(row["n_labels"]), "stop": row["n_labels"] >= 40}
        change = row["stopping"]["change"]
        if row["round"] == 0:  # nothing to compare with yet
            assert change == {"statistic": None, "stop": False}
        else:
            assert 0.0 <= change["statistic"] <= 1.0


def test_stopping_summary_from_the_rows_by_hand(watched):
    summary = {(e["strategy"], e["rule"]): e for e in watched.stopping_summary()}
    assert len(summary) == 2 * 3
    for strategy in ("random", "margin"):
        runs = {}
        for row in watched.rows:
            if row["strategy"] == strategy:
                runs.setdefault(row["seed"], {})[row["round"]] = row["test_accuracy"]
        # the budget rule stops in round 2 (20 + 2 x 10 labels) of every seed
        ratios = [runs[s][2] / runs[s][3] for s in runs]
        entry = summary[(strategy, "budget 40")]
        assert entry["labels_mean"] == 40.0 and entry["budget"] == 50
        assert entry["accuracy_ratio_mean"] == pytest.approx(np.mean(ratios))
        assert entry["early"] == sum(r < 0.98 for r in ratios)
        assert entry["never"] == 0 and entry["n_runs"] == 2


def test_summarize_stopping_on_made_up_rows():
    def row(seed, rnd, acc, stop):
        return {
            "strategy": "s",
            "seed": seed,
            "round": rnd,
            "n_labels": 10 + 5 * rnd,
            "test_accuracy": acc,
            "stopping": {"r": {"statistic": 0.0, "stop": stop}},
        }

    rows = [
        row(0, 0, 0.5, False),
        row(0, 1, 0.7, True),
        row(0, 2, 0.8, True),
        row(1, 0, 0.6, False),
        row(1, 1, 0.9, False),
        row(1, 2, 0.9, False),
    ]
    (entry,) = summarize_stopping(rows)
    assert entry["labels_mean"] == (15 + 20) / 2
    assert entry["accuracy_ratio_mean"] == pytest.approx((0.7 / 0.8 + 1.0) / 2)
    assert (entry["early"], entry["never"], entry["n_runs"]) == (1, 1, 2)
    with pytest.raises(ValueError, match="level must be in"):
        summarize_stopping(rows, level=1.5)


def test_cells_with_rules_are_stored_and_resumed(data, tmp_path, monkeypatch):
    kwargs = {**TINY, "seeds": 1, "out": tmp_path, "plot": False}
    plain = run_experiment(data, model="mlp", strategies=["random"], **kwargs)
    with_rules = run_experiment(
        data, model="mlp", strategies=["random"], stopping=["change"], **kwargs
    )
    assert "stopping" in with_rules.rows[0]  # the stored cell without rules was not used
    assert [r["test_accuracy"] for r in plain.rows] == [
        r["test_accuracy"] for r in with_rules.rows
    ]
    with open(with_rules.paths["stopping_csv"], encoding="utf-8") as f:
        assert f.readline().startswith("strategy,rule,n_runs,labels_mean")

    def no_training(*args, **kwargs):
        raise AssertionError("a stored cell was recomputed")

    monkeypatch.setattr(_runner, "_run_cell", no_training)
    again = run_experiment(data, model="mlp", strategies=["random"], stopping=["change"], **kwargs)
    assert again.rows == with_rules.rows


def test_protocol_stopping_field():
    protocol = ExperimentProtocol(stopping=["stabilizing", ("budget", LabelBudget(budget=9))])
    assert protocol.stopping_labels == ("stabilizing", "budget")
    rules = protocol.stopping_rules()
    assert rules[0][1].get_params() == make_stopping_rule("stabilizing").get_params()
    assert rules[1][1] is not protocol.stopping[1][1]  # a fresh clone per cell
    named = ExperimentProtocol(stopping="change")
    assert named.stopping == (("change", "change"),)
    assert ExperimentProtocol.from_dict(json.loads(json.dumps(named.to_dict()))) == named
    assert ExperimentProtocol().to_dict()["stopping"] is None
    with pytest.raises(ValueError, match=r"stopping rule 'budget'.*pass it again"):
        ExperimentProtocol.from_dict(protocol.to_dict())
    with pytest.raises(ValueError, match="Unknown stopping rule 'kappa'"):
        ExperimentProtocol(stopping=["kappa"])
    with pytest.raises(TypeError, match="must be a name from"):
        ExperimentProtocol(stopping=[3])
    with pytest.raises(ValueError, match="labels must be unique"):
        ExperimentProtocol(stopping=[StabilizingPredictions(), StabilizingPredictions(window=2)])
    with pytest.raises(ValueError, match="stopping is empty"):
        ExperimentProtocol(stopping=[])
    with pytest.raises(TypeError, match="takes a rule's name"):
        make_stopping_rule(ClassificationChange())


def test_cli_run_prints_where_each_rule_stops(tmp_path, capsys):
    code = cli.main(
        [
            "run",
            "--initial",
            "20",
            "--query",
            "10",
            "--rounds",
            "2",
            "--epochs",
            "2",
            "--seeds",
            "1",
            "--strategies",
            "random",
            "--stopping",
            "change",
            "uncertainty",
            "--no-progress",
            "--no-plot",
            "--out",
            str(tmp_path),
        ]
    )
    assert code == 0
    out = capsys.readouterr().out
    table = out.split("Stopping rules: where each would have stopped")[1]
    lines = [line.split() for line in table.strip().splitlines()[2:4]]
    assert [line[:2] for line in lines] == [["random", "change"], ["random", "uncertainty"]]
    assert all(line[4] == "40" for line in lines)  # "... of 40" labels


@pytest.mark.slow
def test_benchmark_reports_the_rules_per_task(tmp_path):
    results = run_benchmark(
        ["three_clust_cold"],
        ["margin"],
        quick=True,
        out=tmp_path,
        n_jobs=1,
        progress=False,
        stopping=["change", "dynamics"],
    )
    summaries = results.stopping_summaries["three_clust_cold"]
    assert {(e["strategy"], e["rule"]) for e in summaries} == {
        (f"{s} [fixed]", r) for s in ("random", "margin") for r in ("change", "dynamics")
    }
    overview = results.stopping_overview()
    assert [r["rule"] for r in overview] == ["change", "change", "dynamics", "dynamics"]
    for r in overview:
        entry = next(
            e for e in summaries if e["strategy"] == r["config"] and e["rule"] == r["rule"]
        )
        task = results.tasks[0]
        used = (entry["labels_mean"] - task.initial) / (entry["budget"] - task.initial)
        assert r["budget_used_mean"] == pytest.approx(used)
        assert math.isclose(r["accuracy_ratio_mean"], entry["accuracy_ratio_mean"])
    report = results.report()
    assert "## Stopping rules across tasks" in report
    assert "| change | margin [fixed] |" in report


def test_the_docs_example_runs_as_written(capsys):
    page = (Path(__file__).resolve().parents[2] / "docs" / "stopping.md").read_text()
    section = page.split("## In the experiment runner and the benchmark", 1)[1]
    snippet = section.split("```python", 1)[1].split("```", 1)[0]
    namespace = {}
    exec(compile(snippet, "docs/stopping.md", "exec"), namespace)
    summary = namespace["results"].stopping_summary()
    assert {(e["strategy"], e["rule"]) for e in summary} == {
        (s, r)
        for s in ("dynamical", "random")
        for r in ("stabilizing", "change", "uncertainty", "dynamics")
    }
    printed = capsys.readouterr().out.splitlines()
    assert len(printed) == 1 + len(summary) and printed[0].startswith("strategy")
