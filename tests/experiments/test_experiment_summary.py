"""Learning-curve AUC, ranks and the paired comparison with the baseline."""

import math

import numpy as np
import pytest
from scipy import stats

from skdynal.experiments import learning_curve_auc, summarize
from skdynal.experiments._report import format_summary_table


def make_rows(curves, n_labels=(10, 20, 40)):
    rows = []
    for strategy, by_seed in curves.items():
        for seed, accuracies in by_seed.items():
            for rnd, (n, acc) in enumerate(zip(n_labels, accuracies, strict=True)):
                rows.append(
                    {
                        "strategy": strategy,
                        "seed": seed,
                        "round": rnd,
                        "n_labels": n,
                        "test_accuracy": acc,
                    }
                )
    return rows


def test_auc_is_the_trapezoid_mean_over_the_label_range():
    # Unequal spacing: (0.5 + 0.7) / 2 * 10 + (0.7 + 0.9) / 2 * 20 = 6 + 16 = 22, over 30.
    assert learning_curve_auc([10, 20, 40], [0.5, 0.7, 0.9]) == pytest.approx(22 / 30)
    assert learning_curve_auc([10, 20], [0.8, 0.8]) == pytest.approx(0.8)
    assert learning_curve_auc([10], [0.3]) == 0.3
    with pytest.raises(ValueError, match="strictly increasing"):
        learning_curve_auc([10, 10], [0.1, 0.2])
    with pytest.raises(ValueError, match="same non-zero length"):
        learning_curve_auc([10, 20], [0.1])


def test_paired_comparison_against_scipy():
    rng = np.random.RandomState(0)
    base = {s: list(rng.uniform(0.5, 0.9, 3)) for s in range(6)}
    better = {
        s: [a + d for a, d in zip(base[s], rng.uniform(-0.01, 0.05, 3), strict=True)]
        for s in range(6)
    }
    worse = {s: [a - 0.02 for a in base[s]] for s in range(6)}
    summary = summarize(make_rows({"random": base, "better": better, "worse": worse}))
    by_name = {e["strategy"]: e for e in summary}

    def auc(curve):
        # Independent: numpy's trapezoid divided by the label range.
        return np.trapezoid(curve, [10, 20, 40]) / 30

    a_base = np.array([auc(base[s]) for s in range(6)])
    a_better = np.array([auc(better[s]) for s in range(6)])
    diffs = a_better - a_base
    entry = by_name["better"]
    assert entry["auc_mean"] == pytest.approx(a_better.mean())
    assert entry["auc_stderr"] == pytest.approx(stats.sem(a_better))
    assert entry["diff_vs_baseline"] == pytest.approx(diffs.mean())
    assert entry["diff_stderr"] == pytest.approx(stats.sem(diffs))
    assert entry["p_ttest"] == pytest.approx(stats.ttest_rel(a_better, a_base).pvalue)
    assert entry["p_wilcoxon"] == pytest.approx(stats.wilcoxon(a_better, a_base).pvalue)
    assert entry["wins"] == int((diffs > 0).sum()) and entry["n_paired"] == 6
    finals = [better[s][-1] for s in range(6)]
    assert entry["final_accuracy_mean"] == pytest.approx(np.mean(finals))
    # A constant shift of -0.02: every seed loses, the t-test is degenerate but defined.
    assert by_name["worse"]["diff_vs_baseline"] == pytest.approx(-0.02)
    assert by_name["worse"]["wins"] == 0
    assert [e["strategy"] for e in summary] == ["better", "random", "worse"]
    assert [e["rank"] for e in summary] == [1, 2, 3]
    assert math.isnan(by_name["random"]["diff_vs_baseline"])
    assert by_name["random"]["wins"] is None


def test_ties_share_a_rank_and_no_baseline_leaves_comparisons_empty():
    curves = {"a": {0: [0.5, 0.6, 0.7]}, "b": {0: [0.5, 0.6, 0.7]}, "c": {0: [0.1, 0.2, 0.3]}}
    summary = summarize(make_rows(curves), baseline=None)
    assert [e["rank"] for e in summary] == [1, 1, 3]
    assert all(math.isnan(e["diff_vs_baseline"]) and math.isnan(e["auc_stderr"]) for e in summary)
    text = format_summary_table(summary, baseline=None)
    assert len(text.splitlines()) == 4


def test_pairs_only_on_common_seeds():
    curves = {"random": {0: [0.5] * 3, 1: [0.6] * 3}, "x": {1: [0.7] * 3, 2: [0.9] * 3}}
    entry = next(e for e in summarize(make_rows(curves)) if e["strategy"] == "x")
    assert entry["n_paired"] == 1 and entry["wins"] == 1
    assert entry["diff_vs_baseline"] == pytest.approx(0.1)
    assert math.isnan(entry["p_ttest"])
