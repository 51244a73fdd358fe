"""The cross-domain benchmark: statistics on made-up curves, and a real quick run."""

import json
import math
import os

import numpy as np
import pytest

from skdynal.cli import main
from skdynal.experiments._benchmark import (
    BENCHMARK_TASKS,
    overall_ranks,
    run_benchmark,
    summarize_task,
)
from skdynal.experiments._statistics import holm


def _rows(config, seed, accuracies, n0=10, step=10):
    strategy, training = config
    return [
        {
            "strategy": strategy,
            "training": training,
            "seed": seed,
            "round": r,
            "n_labels": n0 + step * r,
            "test_accuracy": acc,
        }
        for r, acc in enumerate(accuracies)
    ]


def test_holm_adjustment_by_hand():
    adjusted = holm([0.01, 0.04, 0.03, math.nan])
    # sorted 0.01, 0.03, 0.04 -> 3*0.01, max(0.03, 2*0.03), max(0.06, 1*0.04)
    np.testing.assert_allclose(adjusted[:3], [0.03, 0.06, 0.06])
    assert math.isnan(adjusted[3])


def test_task_summary_on_made_up_curves():
    rows = []
    for seed in range(8):
        rows += _rows(("random", "fixed"), seed, [0.5, 0.6, 0.7])
        rows += _rows(("good", "fixed"), seed, [0.5, 0.7, 0.8 + 0.001 * seed])
        rows += _rows(("bad", "fixed"), seed, [0.5, 0.5, 0.55 + 0.001 * seed])
        # the same strategy under another training is another configuration
        rows += _rows(("good", "until-fit"), seed, [0.5, 0.5, 0.5])
    summary = {e["config"]: e for e in summarize_task(rows)}
    good, bad = summary["good [fixed]"], summary["bad [fixed]"]
    other = summary["good [until-fit]"]
    assert (good["strategy"], good["training"]) == ("good", "fixed")
    assert (other["strategy"], other["training"]) == ("good", "until-fit")
    # no random under until-fit: nothing to compare it with
    assert "diff_vs_random" not in other and "labels_to_random_final" not in other
    # AUC of [0.5, 0.7, 0.8] over equal steps = (0.6 + 0.75) / 2
    assert good["auc_mean"] == pytest.approx((0.6 + 0.75 + 0.0005 + 0.0035 / 8 * 0) / 2, abs=1e-3)
    assert good["diff_vs_random"] > 0 and good["wins_vs_random"] == 8
    assert bad["losses_vs_random"] == 8
    # 8 seeds all one way: exact two-sided Wilcoxon p = 2 / 2**8, Holm over 2 tests
    assert good["p_vs_random"] == pytest.approx(2 / 256)
    assert good["p_holm_vs_random"] == pytest.approx(2 * 2 / 256)
    # random ends at 0.7: good reaches it at 20 labels, bad never
    assert good["labels_to_random_final"] == 20
    assert bad["labels_to_random_final"] is None
    assert good["rank"] == 1 and good["top_group"] and not bad["top_group"]


def test_overall_ranks_average_over_tasks_and_seed_blocks():
    task_rows, summaries = {}, {}
    for task, order in (("a", ["x", "y"]), ("b", ["y", "x"]), ("c", ["x", "y"])):
        rows = []
        for seed in range(3):
            rows += _rows((order[0], "fixed"), seed, [0.5, 0.9])
            rows += _rows((order[1], "fixed"), seed, [0.5, 0.6])
        task_rows[task] = rows
        summaries[task] = summarize_task(rows)
    ranks, cd = overall_ranks(summaries, task_rows)
    by_config = {r["config"]: r for r in ranks}
    assert by_config["x [fixed]"]["mean_rank_tasks"] == pytest.approx(4 / 3)
    assert by_config["x [fixed]"]["mean_rank_blocks"] == pytest.approx(4 / 3)
    assert by_config["x [fixed]"]["n_blocks"] == 9
    # Nemenyi: q_0.05(k=2) / sqrt(2) * sqrt(k (k + 1) / (6 N)) = 1.96 * sqrt(1 / 9)
    assert cd == pytest.approx(1.959964 * math.sqrt(6 / 54), rel=1e-4)


def test_every_task_is_defined_with_enough_seeds():
    for name, task in BENCHMARK_TASKS.items():
        assert task.seeds >= (10 if task.dataset == "fashion_mnist" or "cold" in name else 20)
    # the mid-budget regime: >= 1,000 initial labels, batches >= 250, >= 3,000 labels
    mid = BENCHMARK_TASKS["fashion_mnist_mid"]
    assert mid.initial >= 1000 and mid.query >= 250
    assert mid.initial + mid.query * mid.rounds >= 3000
    # the cold starts: two labels per class and small batches
    for name in ("digits", "breast_cancer", "three_clust", "diverging_sin"):
        cold, warm = BENCHMARK_TASKS[f"{name}_cold"], BENCHMARK_TASKS[name]
        n_classes = 10 if name == "digits" else 2
        assert cold.initial == 2 * n_classes and cold.query <= warm.query
        assert (cold.dataset, cold.model, cold.module_kwargs) == (
            warm.dataset,
            warm.model,
            warm.module_kwargs,
        )


@pytest.mark.slow
def test_quick_benchmark_runs_resumes_and_reports(tmp_path):
    kwargs = dict(
        tasks=["three_clust", "breast_cancer"],
        strategies=["dynamical"],
        training=["fixed", "until-fit"],
        quick=True,
        out=tmp_path,
        n_jobs=1,
        progress=False,
    )
    results = run_benchmark(**kwargs)
    paths = results.save(command="skdynal benchmark --quick")
    assert len(results.cell_seconds) == 2 * 2 * 2 * 2  # tasks x training x strategies x seeds
    rows = results.task_rows["three_clust"]
    configs = {(r["strategy"], r["training"]) for r in rows}
    assert configs == {(s, t) for s in ("random", "dynamical") for t in ("fixed", "until-fit")}
    # every configuration of a task starts from the same labeled set and weights:
    # round-0 accuracy is identical per seed within a training protocol
    for training in ("fixed", "until-fit"):
        start = {
            (r["seed"], r["test_accuracy"])
            for r in rows
            if r["round"] == 0 and r["training"] == training
        }
        assert len(start) == 2
    with open(paths["summary"], encoding="utf-8") as f:
        summary = json.load(f)
    assert set(summary["task_summaries"]) == {"three_clust", "breast_cancer"}
    assert (
        os.path.exists(paths["ranks_plot"])
        and "# Benchmark results" in open(paths["report"], encoding="utf-8").read()
    )
    again = run_benchmark(**kwargs)  # every cell is cached now
    assert again.cell_seconds == {}
    assert again.task_rows == results.task_rows


def test_benchmark_refuses_unknown_names(tmp_path):
    with pytest.raises(ValueError, match="Unknown or no tasks"):
        run_benchmark(["mnist"], out=tmp_path)
    with pytest.raises(ValueError, match="Unknown strategies"):
        run_benchmark(["digits"], ["nope"], out=tmp_path)
    with pytest.raises(ValueError, match="training protocols"):
        run_benchmark(["digits"], ["margin"], ["forever"], out=tmp_path)


def test_cli_benchmark_quick(tmp_path, capsys):
    code = main(
        [
            "benchmark",
            "--quick",
            "--tasks",
            "three_clust",
            "--strategies",
            "dynamical",
            "--jobs",
            "1",
            "--no-progress",
            "--out",
            str(tmp_path),
        ]
    )
    assert code == 0
    out = capsys.readouterr().out
    assert "dynamical [fixed]" in out and "random [fixed]" in out
    assert os.path.exists(tmp_path / "benchmark.md")


def test_first_seed_runs_fresh_repetitions(tmp_path):
    results = run_benchmark(
        ["three_clust"],
        ["dynamical"],
        quick=True,
        seeds=1,
        first_seed=5,
        out=tmp_path,
        n_jobs=1,
        progress=False,
    )
    assert {row["seed"] for row in results.task_rows["three_clust"]} == {5}
