"""The benchmark's report: per-task and overall tables, stopping tables, plots, markdown."""

import dataclasses
import math
import os

import numpy as np

from ._report import write_csv, write_json
from ._statistics import overall_ranks, summarize_task
from ._summary import stopping_overview, summarize_stopping
from ._tasks import BASELINE, CONFIG_COLUMNS, config_label

__all__ = ["BenchmarkResults"]


class BenchmarkResults:
    """What :func:`run_benchmark` measured, with tables, plots and a markdown report.

    Attributes
    ----------
    task_rows : dict of str to list of dict
        Tidy rows per task; ``strategy`` and ``training`` name each row's configuration.
    task_summaries : dict of str to list of dict
        Per task and configuration: ``auc_mean``/``auc_stderr`` (normalised area under the
        learning curve), ``final_accuracy_mean``/``_stderr``, ``labels_to_random_final``
        (labels at which the mean curve first reaches random's final mean accuracy; None
        if never), for each of random, margin and BADGE under the same training the
        paired AUC difference, two-sided Wilcoxon p-value, Holm-adjusted over the task's
        configurations, wins and losses; ``rank`` and ``top_group`` (not significantly
        below the task's best configuration, Wilcoxon with Holm at 0.05).
    ranks : list of dict
        See :func:`overall_ranks`.
    critical_difference : float
        Nemenyi critical difference of the block mean ranks.
    stopping_summaries : dict of str to list of dict
        Per task, when each watched stopping rule stops
        (:func:`~skdynal.experiments.summarize_stopping`, per configuration, shown as
        ``"<strategy> [<training>]"`` in ``strategy``); empty without ``stopping``.
    """

    def __init__(
        self,
        task_rows,
        *,
        tasks,
        strategies,
        training,
        out,
        cell_seconds,
        n_jobs,
        stopping=None,
    ):
        self.task_rows = task_rows
        self.tasks = tasks
        self.strategies = strategies
        self.training = training
        self.out = out
        self.cell_seconds = cell_seconds
        self.n_jobs = n_jobs
        self.task_summaries = {name: summarize_task(rows) for name, rows in task_rows.items()}
        self.ranks, self.critical_difference = overall_ranks(self.task_summaries, task_rows)
        self.stopping = stopping
        self.stopping_summaries = (
            {}
            if not stopping
            else {
                name: [
                    {**entry, "strategy": config_label(entry["strategy"])}
                    for entry in summarize_stopping(rows, by=CONFIG_COLUMNS)
                ]
                for name, rows in task_rows.items()
            }
        )

    def stopping_table(self, name):
        """When each stopping rule stops on task ``name``, per configuration (markdown)."""
        lines = [
            "| rule | configuration | labels at stop (of budget) | accuracy / full-budget "
            "accuracy | stops below 98% of it | never stops |",
            "|" + "---|" * 6,
        ]
        entries = sorted(
            self.stopping_summaries.get(name, []),
            key=lambda e: (self.stopping.index(e["rule"]), e["strategy"]),
        )
        for e in entries:
            lines.append(
                f"| {e['rule']} | {e['strategy']} | {e['labels_mean']:.1f} of {e['budget']} "
                f"| {e['accuracy_ratio_mean']:.3f} | {e['early']}/{e['n_runs']} "
                f"| {e['never']}/{e['n_runs']} |"
            )
        return "\n".join(lines)

    def stopping_overview(self):
        """Per rule and configuration, across tasks: the mean share of the labeling budget
        (beyond the initial labels) used before the stop, the mean accuracy ratio, and the
        runs stopping below 98% of the whole budget's accuracy (list of dict)."""
        overview = stopping_overview(
            (
                (task.name, task.initial, self.stopping_summaries.get(task.name, []))
                for task in self.tasks
            ),
            rules=self.stopping,
        )
        for row in overview:  # the benchmark's rows name a (strategy, training) "config"
            row["config"] = row.pop("strategy")
        return overview

    def stopping_overview_table(self):
        """:meth:`stopping_overview` as markdown."""
        lines = [
            "| rule | configuration | share of the budget used | accuracy / full-budget "
            "accuracy (mean of tasks) | worst task | stops below 98% | never stops |",
            "|" + "---|" * 7,
        ]
        for r in self.stopping_overview():
            lines.append(
                f"| {r['rule']} | {r['config']} | {r['budget_used_mean']:.0%} "
                f"| {r['accuracy_ratio_mean']:.3f} | {r['worst_task']} "
                f"({r['worst_task_ratio']:.3f}) | {r['early']}/{r['n_runs']} "
                f"| {r['never']}/{r['n_runs']} |"
            )
        return "\n".join(lines)

    def task_table(self, name):
        """The summary of task ``name`` as a markdown table."""
        header = (
            "| configuration | AUC ± s.e. | final acc. ± s.e. | labels to random's final "
            "| Δ AUC vs random | p (Holm) | wins/losses | top group |"
        )
        lines = [header, "|" + "---|" * 8]
        for e in self.task_summaries[name]:
            reach = e.get("labels_to_random_final")
            reach = "—" if reach is None else f"{reach} / {e.get('random_final_labels')}"
            if "diff_vs_random" in e:
                diff = f"{e['diff_vs_random']:+.4f}"
                p = _format_p(e["p_holm_vs_random"])
                wins = f"{e['wins_vs_random']}/{e['losses_vs_random']}"
            else:
                diff = p = wins = ""
            lines.append(
                f"| {e['config']} | {e['auc_mean']:.4f} ± {_fmt(e['auc_stderr'])} | "
                f"{e['final_accuracy_mean']:.4f} ± {_fmt(e['final_accuracy_stderr'])} | "
                f"{reach} | {diff} | {p} | {wins} | {'yes' if e['top_group'] else ''} |"
            )
        return "\n".join(lines)

    def comparison_table(self, name, prefix="dynamical"):
        """Configurations whose strategy starts with ``prefix`` against random, margin and
        BADGE (paired AUC difference, Holm-adjusted Wilcoxon p, wins/losses)."""
        others = ("random", "margin", "badge")
        lines = [
            "| configuration | "
            + " | ".join(f"vs {o}: Δ AUC, p (Holm), W/L" for o in others)
            + " |",
            "|" + "---|" * (len(others) + 1),
        ]
        for e in self.task_summaries[name]:
            if not e["strategy"].startswith(prefix):
                continue
            cells = []
            for other in others:
                if f"diff_vs_{other}" in e:
                    cells.append(
                        f"{e[f'diff_vs_{other}']:+.4f}, {_format_p(e[f'p_holm_vs_{other}'])}, "
                        f"{e[f'wins_vs_{other}']}/{e[f'losses_vs_{other}']}"
                    )
                else:
                    cells.append("")
            lines.append(f"| {e['config']} | " + " | ".join(cells) + " |")
        return "\n".join(lines)

    def rank_table(self):
        """Mean ranks across tasks as a markdown table."""
        lines = [
            "| configuration | mean rank (seed blocks) | mean rank (tasks) | top group "
            "| significantly worse than random |",
            "|---|---|---|---|---|",
        ]
        for r in self.ranks:
            lines.append(
                f"| {r['config']} | {_fmt(r['mean_rank_blocks'], 2)} | "
                f"{r['mean_rank_tasks']:.2f} | {r['top_group_tasks']}/{r['n_tasks']} | "
                f"{r['worse_than_random_tasks']}/{r['n_tasks']} |"
            )
        return "\n".join(lines)

    def plot_ranks(self, path):
        """Critical-difference-style plot of the block mean ranks."""
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure

        ranks = [r for r in self.ranks if math.isfinite(r["mean_rank_blocks"])]
        fig = Figure(figsize=(8, 0.35 * len(ranks) + 1.5))
        FigureCanvasAgg(fig)
        ax = fig.add_subplot()
        ys = np.arange(len(ranks))[::-1]
        xs = [r["mean_rank_blocks"] for r in ranks]
        ax.scatter(xs, ys, color="tab:blue", zorder=3)
        for x, y, r in zip(xs, ys, ranks, strict=True):
            color = "tab:red" if r["config"].startswith("dynamical") else "black"
            ax.annotate(
                r["config"],
                (x, y),
                xytext=(6, -3),
                textcoords="offset points",
                fontsize=8,
                color=color,
            )
        if math.isfinite(self.critical_difference) and ranks:
            best = min(xs)
            ax.axvspan(
                best,
                best + self.critical_difference,
                color="tab:green",
                alpha=0.15,
                label=f"within Nemenyi CD = {self.critical_difference:.2f} of the best",
            )
            ax.legend(loc="upper right", fontsize=8)
        ax.set_xlim(right=max(xs) + 0.25 * (max(xs) - min(xs) + 1))
        ax.set_yticks([])
        ax.set_xlabel("mean rank of AUC over (task, seed) blocks (lower is better)")
        ax.set_title(f"{len(self.tasks)} tasks, {ranks[0]['n_blocks'] if ranks else 0} blocks")
        ax.grid(axis="x", alpha=0.3)
        fig.tight_layout()
        fig.savefig(path, dpi=110)
        return path

    def plot_task(self, name, path):
        """Learning curves of task ``name`` (mean ± s.e. over seeds)."""
        from ._report import plot_learning_curves

        return plot_learning_curves(
            [
                {**row, "strategy": config_label(tuple(row[c] for c in CONFIG_COLUMNS))}
                for row in self.task_rows[name]
            ],
            path,
            title=f"{name}: mean ± s.e. over seeds",
            baseline=config_label((BASELINE, self.training[0])),
        )

    def report(self, command=None):
        """The whole benchmark as markdown (the tables; the plots are linked by name)."""
        parts = ["# Benchmark results", ""]
        if command:
            parts += [f"Produced by `{command}`.", ""]
        parts += [
            "## Protocol",
            "",
            "| task | dataset | model | initial (balanced) | query "
            "| rounds | epochs (fixed / max) | min epochs (until fit) | lr | seeds |",
            "|" + "---|" * 10,
        ]
        for t in self.tasks:
            parts.append(
                f"| {t.name} | {t.dataset} {t.load_kwargs or ''} | {t.model} "
                f"{t.module_kwargs or ''} | {t.initial} | {t.query} | {t.rounds} | {t.epochs} "
                f"| {t.min_epochs} | {t.lr:g} | {t.seeds} |"
            )
        total = sum(self.cell_seconds.values())
        parts += [
            "",
            f"Training protocols: {', '.join(self.training)}. Cells computed in this "
            f"run: {len(self.cell_seconds)}, {total / 60:.1f} CPU-minutes in cells "
            f"({self.n_jobs} workers).",
            "",
        ]
        parts += [
            "## Across tasks",
            "",
            self.rank_table(),
            "",
            f"Nemenyi critical difference (alpha 0.05): {_fmt(self.critical_difference, 2)}"
            "; plot: `ranks.png`.",
            "",
        ]
        if self.stopping:
            parts += [
                "## Stopping rules across tasks",
                "",
                f"Rules watched in every cell: {', '.join(self.stopping)} (published "
                "settings). Every cell ran the whole budget; a rule that never says stop "
                'counts as stopping at the end of it. "Share of the budget used" counts the '
                "labels queried before the stop (the initial ones excluded).",
                "",
                self.stopping_overview_table(),
                "",
            ]
        for t in self.tasks:
            parts += [
                f"## {t.name}",
                "",
                self.task_table(t.name),
                "",
                self.comparison_table(t.name),
                "",
                f"Learning curves: `{t.name}.png`.",
                "",
            ]
            if self.stopping:
                parts += [self.stopping_table(t.name), ""]
        return "\n".join(parts)

    def save(self, out=None, command=None, plots=True):
        """Write ``benchmark.md``, ``summary.json``, ``ranks.csv`` and the plots into ``out``."""
        out = os.fspath(out or self.out)
        os.makedirs(out, exist_ok=True)
        paths = {"report": os.path.join(out, "benchmark.md")}
        with open(paths["report"], "w", encoding="utf-8") as f:
            f.write(self.report(command) + "\n")
        paths["summary"] = os.path.join(out, "summary.json")
        write_json(
            paths["summary"],
            {
                "tasks": {t.name: dataclasses.asdict(t) for t in self.tasks},
                "training": self.training,
                "strategies": self.strategies,
                "task_summaries": self.task_summaries,
                "ranks": self.ranks,
                "critical_difference": self.critical_difference,
                "cell_seconds_total": sum(self.cell_seconds.values()),
                **(
                    {"stopping": self.stopping, "stopping_summaries": self.stopping_summaries}
                    if self.stopping
                    else {}
                ),
            },
        )
        paths["ranks"] = os.path.join(out, "ranks.csv")
        write_csv(paths["ranks"], self.ranks, list(self.ranks[0]) if self.ranks else [])
        if plots:
            paths["ranks_plot"] = self.plot_ranks(os.path.join(out, "ranks.png"))
            for t in self.tasks:
                path = os.path.join(out, f"{t.name}.png")
                paths[f"{t.name}_plot"] = self.plot_task(t.name, path)
        return paths


def _fmt(value, digits=4):
    return "nan" if value is None or not math.isfinite(value) else f"{value:.{digits}f}"


def _format_p(p):
    if p is None or not math.isfinite(p):
        return "—"
    return f"{p:.3f}" if p >= 0.001 else f"{p:.1e}"
