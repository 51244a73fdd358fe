"""Learning-curve summaries: normalised area under the curve, ranks, paired tests."""

import math
import warnings

import numpy as np
from scipy import stats

__all__ = [
    "learning_curve_auc",
    "learning_curves",
    "stopping_overview",
    "summarize",
    "summarize_stopping",
]
# curve_aucs, rank_by_auc, standard_error, paired_pvalues and row_key are shared with the
# benchmark's statistics; they are not part of skdynal.experiments' API.


def learning_curve_auc(n_labels, accuracy):
    """Normalised area under a learning curve.

    The trapezoid rule over the label counts, divided by the label range, so the result is
    the mean accuracy over the labeling budget and lies in ``[0, 1]``. A curve with a single
    point (no query round) has its accuracy as area.

    Parameters
    ----------
    n_labels : array-like of shape (n_points,)
        Labeled-set sizes, strictly increasing.
    accuracy : array-like of shape (n_points,)
        Test accuracy at each size.

    Returns
    -------
    auc : float

    Examples
    --------
    >>> learning_curve_auc([10, 20, 30], [0.5, 0.7, 0.7])
    0.65
    """
    x = np.asarray(n_labels, dtype=np.float64)
    y = np.asarray(accuracy, dtype=np.float64)
    if x.ndim != 1 or x.shape != y.shape or len(x) == 0:
        raise ValueError(
            f"n_labels and accuracy must be 1-D of the same non-zero length, got shapes "
            f"{x.shape} and {y.shape}."
        )
    if len(x) == 1:
        return float(y[0])
    if np.any(np.diff(x) <= 0):
        raise ValueError(f"n_labels must be strictly increasing, got {x.tolist()}.")
    area = np.sum((y[1:] + y[:-1]) / 2.0 * np.diff(x))
    return float(area / (x[-1] - x[0]))


def learning_curves(rows, by="strategy"):
    """Group tidy result rows into one curve per (strategy, seed).

    Parameters
    ----------
    rows : list of dict
        Tidy rows with ``seed``, ``round``, ``n_labels``, ``test_accuracy`` and the
        column(s) ``by``.
    by : str or tuple of str, default="strategy"
        The column that names a curve's configuration, or several columns whose values
        together name it (e.g. ``("strategy", "training")`` in the benchmark).

    Returns
    -------
    curves : dict
        ``{key: {seed: (n_labels, accuracy)}}`` with rows sorted by round, where ``key`` is
        ``row[by]``, or the tuple of the ``by`` columns; keys and seeds in order of first
        appearance.
    """
    grouped = {}
    for row in rows:
        grouped.setdefault(row_key(row, by), {}).setdefault(row["seed"], []).append(row)
    curves = {}
    for strategy, by_seed in grouped.items():
        curves[strategy] = {}
        for seed, seed_rows in by_seed.items():
            seed_rows = sorted(seed_rows, key=lambda r: r["round"])
            curves[strategy][seed] = (
                np.array([r["n_labels"] for r in seed_rows], dtype=np.float64),
                np.array([r["test_accuracy"] for r in seed_rows], dtype=np.float64),
            )
    return curves


def row_key(row, by="strategy"):
    """The configuration of a tidy row: ``row[by]``, or the tuple of the ``by`` columns."""
    return row[by] if isinstance(by, str) else tuple(row[column] for column in by)


def curve_aucs(curves):
    """``{key: {seed: AUC}}`` from the curves of :func:`learning_curves`."""
    return {
        key: {seed: learning_curve_auc(*curve) for seed, curve in by_seed.items()}
        for key, by_seed in curves.items()
    }


def rank_by_auc(entries):
    """Sort the entries best mean AUC first and give each its ``rank`` (ties share the lower)."""
    entries.sort(key=lambda e: -e["auc_mean"])
    means = [e["auc_mean"] for e in entries]
    for entry in entries:
        entry["rank"] = 1 + sum(m > entry["auc_mean"] for m in means)


def standard_error(values):
    """Standard error of the mean (sample standard deviation over sqrt(n)); NaN below 2."""
    values = np.asarray(values, dtype=np.float64)
    if len(values) < 2:
        return math.nan
    return float(values.std(ddof=1) / math.sqrt(len(values)))


def paired_pvalues(differences):
    """Two-sided paired t-test and Wilcoxon signed-rank p-values (NaN when undefined)."""
    if len(differences) < 2 or np.all(differences == 0):
        return math.nan, math.nan
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        p_t = float(stats.ttest_1samp(differences, 0.0).pvalue)
        try:
            p_w = float(stats.wilcoxon(differences).pvalue)
        except ValueError:
            p_w = math.nan
    return p_t, p_w


def summarize(rows, baseline="random"):
    """Per-strategy summary of learning curves, with a paired comparison to a baseline.

    Parameters
    ----------
    rows : list of dict
        Tidy rows with ``strategy``, ``seed``, ``round``, ``n_labels`` and
        ``test_accuracy`` (as produced by :func:`skdynal.experiments.run_experiment`).
    baseline : str or None, default="random"
        Strategy that every other one is compared with, paired by seed. None, or a name
        absent from ``rows``, leaves the comparison columns NaN.

    Returns
    -------
    summary : list of dict
        One dict per strategy, best mean AUC first, with

        - ``strategy``, ``n_seeds``;
        - ``auc_mean``, ``auc_stderr``: normalised area under the learning curve
          (:func:`learning_curve_auc`), mean and standard error over seeds;
        - ``rank``: 1 for the largest mean AUC (ties share the lower rank);
        - ``final_accuracy_mean``, ``final_accuracy_stderr``: accuracy after the last round;
        - ``diff_vs_baseline``, ``diff_stderr``: mean paired AUC difference (strategy minus
          baseline) over the seeds both ran, and its standard error;
        - ``p_ttest``, ``p_wilcoxon``: two-sided p-values of the paired t-test and of the
          Wilcoxon signed-rank test on those differences;
        - ``wins``: seeds where the strategy's AUC is larger than the baseline's, out of
          ``n_paired``.
    """
    curves = learning_curves(rows)
    aucs = curve_aucs(curves)
    summary = []
    for strategy, by_seed in aucs.items():
        values = np.array(list(by_seed.values()))
        finals = np.array([curve[1][-1] for curve in curves[strategy].values()])
        entry = {
            "strategy": strategy,
            "n_seeds": len(values),
            "auc_mean": float(values.mean()),
            "auc_stderr": standard_error(values),
            "rank": None,
            "final_accuracy_mean": float(finals.mean()),
            "final_accuracy_stderr": standard_error(finals),
            "diff_vs_baseline": math.nan,
            "diff_stderr": math.nan,
            "p_ttest": math.nan,
            "p_wilcoxon": math.nan,
            "wins": None,
            "n_paired": 0,
        }
        if baseline is not None and baseline in aucs and strategy != baseline:
            seeds = [seed for seed in by_seed if seed in aucs[baseline]]
            diffs = np.array([by_seed[s] - aucs[baseline][s] for s in seeds])
            if len(diffs):
                p_t, p_w = paired_pvalues(diffs)
                entry.update(
                    diff_vs_baseline=float(diffs.mean()),
                    diff_stderr=standard_error(diffs),
                    p_ttest=p_t,
                    p_wilcoxon=p_w,
                    wins=int(np.sum(diffs > 0)),
                    n_paired=len(diffs),
                )
        summary.append(entry)
    rank_by_auc(summary)
    return summary


def summarize_stopping(rows, level=0.98, by="strategy"):
    """When each stopping rule stops, and what accuracy it stops at, per strategy.

    For every (strategy, seed) curve whose rows carry ``stopping`` records (a protocol with
    ``stopping`` rules), a rule stops at the first round whose record says ``stop``; a rule
    that never says stop is counted as stopping at the end of the budget. The accuracy
    there is compared with the accuracy after the whole budget (the last round).

    Parameters
    ----------
    rows : list of dict
        Tidy rows of :func:`skdynal.experiments.run_experiment` run with ``stopping``.
    level : float, default=0.98
        A stop is "early" when its accuracy is below ``level`` times the whole budget's.
    by : str or tuple of str, default="strategy"
        The column(s) naming a configuration (see :func:`learning_curves`); the entries'
        ``strategy`` is that name (a tuple for several columns).

    Returns
    -------
    summary : list of dict
        One dict per (strategy, rule), strategies and rules in order of first appearance,
        with ``strategy``, ``rule``, ``n_runs``; ``labels_mean`` (labels at the stop, mean
        over seeds) and ``budget`` (labels of the whole budget); ``accuracy_ratio_mean``
        (accuracy at the stop over the whole budget's, mean over seeds); ``early`` (seeds
        stopping below ``level``) and ``never`` (seeds where the rule never said stop).
        Empty when no row has records.
    """
    if not 0 < level <= 1:
        raise ValueError(f"level must be in (0, 1], got {level!r}.")
    grouped = {}
    for row in rows:
        if "stopping" in row:
            grouped.setdefault(row_key(row, by), {}).setdefault(row["seed"], []).append(row)
    summary = []
    for strategy, by_seed in grouped.items():
        runs = [sorted(seed_rows, key=lambda r: r["round"]) for seed_rows in by_seed.values()]
        for rule in runs[0][0]["stopping"]:
            labels, ratios, early, never = [], [], 0, 0
            for run in runs:
                final = run[-1]["test_accuracy"]
                at = next((r for r in run if r["stopping"][rule]["stop"]), None)
                never += at is None
                at = run[-1] if at is None else at
                labels.append(at["n_labels"])
                ratios.append(at["test_accuracy"] / final if final > 0 else math.nan)
                early += at["test_accuracy"] < level * final
            summary.append(
                {
                    "strategy": strategy,
                    "rule": rule,
                    "n_runs": len(runs),
                    "labels_mean": float(np.mean(labels)),
                    "budget": max(run[-1]["n_labels"] for run in runs),
                    "accuracy_ratio_mean": float(np.mean(ratios)),
                    "early": int(early),
                    "never": int(never),
                }
            )
    return summary


def stopping_overview(tasks, rules=None):
    """Each stopping rule across tasks, per strategy, from per-task stopping summaries.

    Parameters
    ----------
    tasks : iterable of (str, int, list of dict)
        ``(task name, initial labels, summarize_stopping(rows))`` for every task.
    rules : sequence of str, default=None
        The rules' order in the result; None keeps their order of first appearance.

    Returns
    -------
    overview : list of dict
        One dict per (rule, strategy), by rule then strategy, with ``rule``, ``strategy``,
        ``n_tasks``; ``budget_used_mean``: the share of the labeling budget beyond the
        initial labels used before the stop, mean over tasks; ``accuracy_ratio_mean``: the
        tasks' mean accuracy ratios, averaged; ``worst_task`` and ``worst_task_ratio``: the
        task with the lowest mean ratio; ``early``, ``never`` and ``n_runs`` summed over
        tasks.
    """
    grouped = {}
    for name, initial, summary in tasks:
        for e in summary:
            entry = grouped.setdefault(
                (e["rule"], e["strategy"]),
                {"used": [], "ratio": [], "early": 0, "never": 0, "n_runs": 0, "worst": []},
            )
            entry["used"].append((e["labels_mean"] - initial) / (e["budget"] - initial))
            entry["ratio"].append(e["accuracy_ratio_mean"])
            entry["worst"].append((e["accuracy_ratio_mean"], name))
            for key in ("early", "never", "n_runs"):
                entry[key] += e[key]
    order = list(rules) if rules is not None else list(dict.fromkeys(r for r, _ in grouped))
    overview = []
    for (rule, strategy), entry in sorted(
        grouped.items(), key=lambda item: (order.index(item[0][0]), item[0][1])
    ):
        worst_ratio, worst_task = min(entry["worst"])
        overview.append(
            {
                "rule": rule,
                "strategy": strategy,
                "n_tasks": len(entry["used"]),
                "budget_used_mean": float(np.mean(entry["used"])),
                "accuracy_ratio_mean": float(np.mean(entry["ratio"])),
                "worst_task": worst_task,
                "worst_task_ratio": worst_ratio,
                "early": entry["early"],
                "never": entry["never"],
                "n_runs": entry["n_runs"],
            }
        )
    return overview
