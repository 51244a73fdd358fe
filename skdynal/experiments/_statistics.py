"""The benchmark's statistics: paired Wilcoxon tests with Holm's correction, ranks and
the Nemenyi critical difference, on configurations keyed by ``(strategy, training)``."""

import math

import numpy as np
from scipy import stats

from ._summary import (
    curve_aucs,
    learning_curve_auc,
    learning_curves,
    paired_pvalues,
    rank_by_auc,
    standard_error,
)
from ._tasks import BASELINE, CONFIG_COLUMNS, config_label

__all__ = ["holm", "overall_ranks", "summarize_task", "wilcoxon_pvalue"]


def holm(pvalues):
    """Holm-Bonferroni adjusted p-values (NaN stays NaN).

    Parameters
    ----------
    pvalues : array-like of float

    Returns
    -------
    adjusted : ndarray of float
    """
    p = np.asarray(pvalues, dtype=np.float64)
    adjusted = np.full_like(p, math.nan)
    finite = np.flatnonzero(np.isfinite(p))
    order = finite[np.argsort(p[finite])]
    running = 0.0
    for rank, index in enumerate(order):
        running = max(running, min(1.0, (len(order) - rank) * p[index]))
        adjusted[index] = running
    return adjusted


def wilcoxon_pvalue(differences):
    """Two-sided Wilcoxon signed-rank p-value of paired differences (NaN when undefined)."""
    return paired_pvalues(np.asarray(differences, dtype=np.float64))[1]


def _labels_to_reach(curve_n, curve_acc, target):
    reached = np.flatnonzero(curve_acc >= target - 1e-12)
    return int(curve_n[reached[0]]) if len(reached) else None


def _mean_curve(by_seed):
    n_labels = next(iter(by_seed.values()))[0]
    return n_labels, np.mean([acc for _, acc in by_seed.values()], axis=0)


def _paired(by_seed_a, by_seed_b):
    seeds = sorted(set(by_seed_a) & set(by_seed_b))
    return np.array([by_seed_a[s] - by_seed_b[s] for s in seeds])


def summarize_task(rows, compare_with=("random", "margin", "badge")):
    """Per-configuration summary of one task (see :class:`BenchmarkResults`).

    Parameters
    ----------
    rows : list of dict
        The task's tidy rows, each with its configuration in ``strategy`` and ``training``.
    compare_with : tuple of str, default=("random", "margin", "badge")
        Strategies every configuration is compared with under the same training.

    Returns
    -------
    entries : list of dict
        Best mean AUC first; ``strategy`` and ``training`` name the configuration and
        ``config`` shows it (:func:`~skdynal.experiments._tasks.config_label`).
    """
    curves = learning_curves(rows, by=CONFIG_COLUMNS)
    aucs = curve_aucs(curves)
    entries = []
    for key, by_seed in curves.items():
        strategy, training = key
        values = np.array(list(aucs[key].values()))
        finals = np.array([acc[-1] for _, acc in by_seed.values()])
        entry = {
            "config": config_label(key),
            "strategy": strategy,
            "training": training,
            "n_seeds": len(values),
            "auc_mean": float(values.mean()),
            "auc_stderr": standard_error(values),
            "final_accuracy_mean": float(finals.mean()),
            "final_accuracy_stderr": standard_error(finals),
        }
        baseline = (BASELINE, training)
        if baseline in curves:
            target = _mean_curve(curves[baseline])[1][-1]
            entry["labels_to_random_final"] = _labels_to_reach(*_mean_curve(by_seed), target)
            entry["random_final_labels"] = int(_mean_curve(curves[baseline])[0][-1])
        for other in compare_with:
            other_key = (other, training)
            if other_key in aucs and other_key != key:
                diffs = _paired(aucs[key], aucs[other_key])
                entry[f"diff_vs_{other}"] = float(diffs.mean())
                entry[f"diff_vs_{other}_stderr"] = standard_error(diffs)
                entry[f"p_vs_{other}"] = wilcoxon_pvalue(diffs)
                entry[f"wins_vs_{other}"] = int(np.sum(diffs > 0))
                entry[f"losses_vs_{other}"] = int(np.sum(diffs < 0))
        entries.append(entry)
    for other in compare_with:
        column = f"p_vs_{other}"
        adjusted = holm([e.get(column, math.nan) for e in entries])
        for entry, p in zip(entries, adjusted, strict=True):
            if column in entry:
                entry[f"p_holm_vs_{other}"] = float(p)
    rank_by_auc(entries)
    _mark_top_group(entries, aucs)
    return entries


def _entry_key(entry):
    return (entry["strategy"], entry["training"])


def _mark_top_group(entries, aucs, alpha=0.05):
    """``top_group``: not significantly below the best configuration (Wilcoxon, Holm)."""
    best = _entry_key(entries[0])
    keys = [_entry_key(e) for e in entries]
    p = [wilcoxon_pvalue(_paired(aucs[best], aucs[k])) if k != best else math.nan for k in keys]
    adjusted = holm(p)
    for entry, key, p_adj in zip(entries, keys, adjusted, strict=True):
        diff = _paired(aucs[best], aucs[key]).mean() if key != best else 0
        entry["p_holm_vs_best"] = float(p_adj)
        entry["top_group"] = bool(key == best or not (p_adj < alpha and diff > 0))


def overall_ranks(task_summaries, task_rows):
    """Mean rank of every configuration over tasks, and over (task, seed) blocks.

    Parameters
    ----------
    task_summaries : dict of str to list of dict
        :func:`summarize_task` of every task.
    task_rows : dict of str to list of dict
        The tasks' rows (configurations in ``strategy`` and ``training``).

    Returns
    -------
    ranks : list of dict
        ``config``, ``mean_rank_tasks`` (rank of its mean AUC in each task, averaged),
        ``mean_rank_blocks`` (rank of its AUC in each (task, seed) block, averaged; the
        Friedman/Nemenyi statistic), ``n_blocks``, ``top_group_tasks`` and
        ``worse_than_random_tasks`` (tasks where it is significantly below random).
    critical_difference : float
        Nemenyi critical difference of ``mean_rank_blocks`` at alpha = 0.05.
    """
    # In the order of their labels, as the report has always listed them.
    configs = sorted({_entry_key(e) for s in task_summaries.values() for e in s}, key=config_label)
    per_task = {c: [] for c in configs}
    top = {c: 0 for c in configs}
    worse = {c: 0 for c in configs}
    for summary in task_summaries.values():
        for entry in summary:
            key = _entry_key(entry)
            per_task[key].append(entry["rank"])
            top[key] += entry["top_group"]
            if entry.get("p_holm_vs_random", 1.0) < 0.05 and entry.get("diff_vs_random", 0) < 0:
                worse[key] += 1
    block_ranks = {c: [] for c in configs}
    for rows in task_rows.values():
        curves = learning_curves(rows, by=CONFIG_COLUMNS)
        seeds = set.intersection(*(set(by_seed) for by_seed in curves.values()))
        names = [c for c in configs if c in curves]
        if len(names) < len(configs):
            continue  # a block needs every configuration
        for seed in sorted(seeds):
            values = [learning_curve_auc(*curves[c][seed]) for c in names]
            ranks = stats.rankdata([-v for v in values])
            for config, rank in zip(names, ranks, strict=True):
                block_ranks[config].append(float(rank))
    n_blocks = min((len(v) for v in block_ranks.values()), default=0)
    k = len(configs)
    if n_blocks and k > 1:
        q = stats.studentized_range.ppf(0.95, k, np.inf) / math.sqrt(2)
        cd = float(q * math.sqrt(k * (k + 1) / (6.0 * n_blocks)))
    else:
        cd = math.nan
    ranks = [
        {
            "config": config_label(c),
            "mean_rank_tasks": float(np.mean(per_task[c])),
            "mean_rank_blocks": float(np.mean(block_ranks[c])) if block_ranks[c] else math.nan,
            "n_blocks": len(block_ranks[c]),
            "top_group_tasks": top[c],
            "worse_than_random_tasks": worse[c],
            "n_tasks": len(per_task[c]),
        }
        for c in configs
    ]
    ranks.sort(key=lambda r: (r["mean_rank_blocks"], r["mean_rank_tasks"]))
    return ranks, cd
