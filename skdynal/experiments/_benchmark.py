"""A cross-domain active learning benchmark: several tasks, many seeds, one command.

After CDALBench (Werner et al., NeurIPS 2024): an active learning method only earns its
place if it holds up over many repetitions and over tasks of different kinds. Every task
here runs every (strategy, training protocol) configuration over the same seeds; a seed
fixes the initial labeled set and the initial weights, so every configuration of a task
sees the same ones and all comparisons are paired by seed.
"""

import concurrent.futures
import dataclasses
import functools
import math
import multiprocessing
import os
import signal
import threading
import time

import numpy as np
from scipy import stats
from tqdm.auto import tqdm

from .._interrupt import Interrupted
from .._validation import check_positive_int
from ._protocol import ExperimentProtocol
from ._registry import available_strategies
from ._report import write_csv, write_json
from ._runner import Experiment, ExperimentResults
from ._summary import (
    _curve_aucs,
    _paired_pvalues,
    _rank_by_auc,
    _stderr,
    learning_curve_auc,
    learning_curves,
    summarize_stopping,
)

__all__ = [
    "BENCHMARK_TASKS",
    "DEFAULT_BENCHMARK_STRATEGIES",
    "TRAINING_PROTOCOLS",
    "BenchmarkResults",
    "BenchmarkTask",
    "run_benchmark",
]


@dataclasses.dataclass(frozen=True)
class BenchmarkTask:
    """One task of the benchmark: a dataset, a model and an active learning protocol.

    Parameters
    ----------
    name : str
        Name of the task in tables and folders.
    dataset : str
        Name accepted by :func:`skdynal.experiments.load_experiment_data`.
    model : str
        Model name (:data:`skdynal.models.MODELS`).
    initial, query, rounds : int
        Initial labeled set size (drawn class-balanced), samples per query, query rounds.
    epochs : int
        Epochs per round with fixed-epoch training, and the maximum with train-until-fit.
    min_epochs : int
        Minimum epochs per round with train-until-fit.
    lr, batch_size : float, int
        Adam's learning rate and the batch size.
    seeds : int
        Seeds of the full suite.
    module_kwargs : dict
        Extra module constructor arguments.
    load_kwargs : dict
        Extra arguments of the data loader (e.g. ``n_train`` to subsample the pool).
    quick : dict
        Overrides of the above for ``quick=True`` (the CI smoke run).
    first_seed : int
        The seeds are ``first_seed .. first_seed + seeds - 1``.
    """

    name: str
    dataset: str
    model: str
    initial: int
    query: int
    rounds: int
    epochs: int
    min_epochs: int
    lr: float
    batch_size: int
    seeds: int
    module_kwargs: dict = dataclasses.field(default_factory=dict)
    load_kwargs: dict = dataclasses.field(default_factory=dict)
    quick: dict = dataclasses.field(default_factory=dict)
    first_seed: int = 0

    @property
    def seed_list(self):
        """The task's seeds."""
        return list(range(self.first_seed, self.first_seed + self.seeds))

    def scaled(self, quick):
        """The task with its ``quick`` overrides applied when ``quick`` is true."""
        return dataclasses.replace(self, quick={}, **self.quick) if quick else self


_QUICK_SMALL = {"rounds": 2, "seeds": 2, "epochs": 10, "min_epochs": 2}

#: Cold starts of the small tasks: (task, initial labels, labels per query, rounds); two
#: labels per class to begin with and small batches; 10 seeds each.
_COLD_STARTS = (
    ("digits", 20, 10, 15),
    ("breast_cancer", 4, 4, 12),
    ("three_clust", 4, 4, 12),
    ("diverging_sin", 4, 4, 15),
)

_SMALL_TASKS = (
    BenchmarkTask(
        "digits",
        "digits",
        "mlp",
        initial=20,
        query=20,
        rounds=10,
        epochs=50,
        min_epochs=10,
        lr=1e-3,
        batch_size=32,
        seeds=20,
        quick=_QUICK_SMALL,
    ),
    BenchmarkTask(
        "breast_cancer",
        "breast_cancer",
        "mlp",
        initial=10,
        query=10,
        rounds=10,
        epochs=50,
        min_epochs=10,
        lr=1e-3,
        batch_size=32,
        seeds=20,
        module_kwargs={"hidden": (64, 64)},
        quick=_QUICK_SMALL,
    ),
    BenchmarkTask(
        "three_clust",
        "three_clust",
        "mlp",
        initial=6,
        query=6,
        rounds=10,
        epochs=50,
        min_epochs=10,
        lr=1e-2,
        batch_size=32,
        seeds=20,
        module_kwargs={"hidden": (32, 32)},
        quick=_QUICK_SMALL,
    ),
    BenchmarkTask(
        "diverging_sin",
        "diverging_sin",
        "mlp",
        initial=10,
        query=10,
        rounds=10,
        epochs=50,
        min_epochs=10,
        lr=1e-2,
        batch_size=32,
        seeds=20,
        module_kwargs={"hidden": (32, 32)},
        quick=_QUICK_SMALL,
    ),
)
_COLD_BASE = {task.name: task for task in _SMALL_TASKS}

#: The tasks of the suite, by name.
BENCHMARK_TASKS = {
    task.name: task
    for task in (
        *_SMALL_TASKS,
        BenchmarkTask(
            "fashion_mnist",
            "fashion_mnist",
            "lenet",
            initial=20,
            query=40,
            rounds=8,
            epochs=60,
            min_epochs=10,
            lr=1e-3,
            batch_size=64,
            seeds=10,
            load_kwargs={"n_train": 6000, "n_test": 5000},
            quick={
                "rounds": 1,
                "seeds": 1,
                "epochs": 5,
                "min_epochs": 2,
                "load_kwargs": {"n_train": 1000, "n_test": 1000},
            },
        ),
        BenchmarkTask(
            "fashion_mnist_mid",
            "fashion_mnist",
            "mlp",
            initial=1000,
            query=250,
            rounds=8,
            epochs=30,
            min_epochs=10,
            lr=1e-3,
            batch_size=64,
            seeds=10,
            module_kwargs={"hidden": (256, 128)},
            load_kwargs={"n_train": 20000, "n_test": 5000},
            quick={
                "initial": 200,
                "query": 100,
                "rounds": 1,
                "seeds": 1,
                "epochs": 3,
                "min_epochs": 2,
                "load_kwargs": {"n_train": 2000, "n_test": 1000},
            },
        ),
        *(
            dataclasses.replace(
                _COLD_BASE[name],
                name=f"{name}_cold",
                initial=initial,
                query=query,
                rounds=rounds,
                seeds=10,
                quick=_QUICK_SMALL,
            )
            for name, initial, query, rounds in _COLD_STARTS
        ),
    )
}

#: Training protocols: fixed epochs per round, or the paper's "until convergence" (the
#: official code's: at least ``min_epochs``, then until the labeled-set accuracy has stayed
#: at or above 0.97 for 10 epochs, with a fresh optimizer after every query).
TRAINING_PROTOCOLS = {
    "fixed": {},
    "until-fit": {"train_until_fit": {"threshold": 0.97, "patience": 10}, "reset_optimizer": True},
}

#: Strategies of the full suite when none are given.
DEFAULT_BENCHMARK_STRATEGIES = (
    "random",
    "margin",
    "entropy",
    "coreset",
    "badge",
    "albl",
    "dynamical",
    "dynamical-balanced",
    "dynamical-topb",
)

_BASELINE = "random"


def _config_label(strategy, training):
    return f"{strategy} [{training}]"


@functools.lru_cache(maxsize=4)
def _task_data(dataset, model, load_items):
    from ._data import load_experiment_data

    return load_experiment_data(dataset, model, **dict(load_items))


def _experiment(task, strategies, training, out, stopping=None):
    data = _task_data(task.dataset, task.model, tuple(sorted(task.load_kwargs.items())))
    training_protocol = TRAINING_PROTOCOLS[training]
    until_fit = training_protocol.get("train_until_fit")
    protocol = ExperimentProtocol(
        model=task.model,
        strategies=list(strategies),
        initial=task.initial,
        query=task.query,
        rounds=task.rounds,
        seeds=task.seed_list,
        epochs=task.epochs,
        lr=task.lr,
        batch_size=task.batch_size,
        optimizer="adam",
        weight_decay=0.0,
        device="cpu",
        reinit=False,
        initial_sampling="balanced",
        module_kwargs=task.module_kwargs or None,
        dataset=task.name,
        baseline=_BASELINE,
        train_until_fit=until_fit and {**until_fit, "min_epochs": task.min_epochs},
        reset_optimizer=training_protocol.get("reset_optimizer", False),
        stopping=stopping,
    )
    return Experiment(data, protocol, out=os.path.join(out, task.name, training))


_worker_interrupted = False


def _record_interrupt(signum, frame):
    global _worker_interrupted
    _worker_interrupted = True


def _init_worker():
    # Ctrl-C reaches every process of the terminal's group. An idle worker only records
    # it (dying inside the executor's queue would break the pool) and refuses its next
    # cell; a busy one is stopped by the cell's own interrupt guard, which drops the cell.
    signal.signal(signal.SIGINT, _record_interrupt)
    # Workers start with SIGINT blocked (_spawning_workers): a Ctrl-C while this worker
    # was still importing waited, and is delivered (recorded) now.
    if hasattr(signal, "pthread_sigmask"):
        signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT})


class _spawning_workers:
    """Context manager around ``pool.submit``, which spawns the workers: SIGINT is held back.

    The main thread blocks SIGINT, so that a spawned worker starts with it blocked (the
    mask survives fork and exec) and a Ctrl-C while it imports waits for
    :func:`_init_worker` instead of printing a traceback from multiprocessing's bootstrap.
    Here, a SIGINT meanwhile is only recorded (another thread may take it), and raised as
    ``KeyboardInterrupt`` when the block ends, once the pool knows all of its workers.
    """

    def __enter__(self):
        self._active = hasattr(signal, "pthread_sigmask") and (
            threading.current_thread() is threading.main_thread()
        )
        self._received = False
        if self._active:
            self._previous = signal.signal(signal.SIGINT, self._record)
            self._mask = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})
        return self

    def _record(self, signum, frame):
        self._received = True

    def __exit__(self, exc_type, exc, tb):
        if self._active:
            signal.pthread_sigmask(signal.SIG_SETMASK, self._mask)  # a pending one: recorded
            previous = self._previous
            signal.signal(  # runs the pending Python handler first
                signal.SIGINT, signal.default_int_handler if previous is None else previous
            )
            if self._received and exc_type is None:
                raise KeyboardInterrupt
        return False


def _run_job(job):
    """Worker: one (task, training, strategy, seed) cell; returns its id and seconds."""
    import torch

    task, training, strategy, seed, out, resume, stopping = job
    if _worker_interrupted:
        raise Interrupted(f"Interrupted before the cell {strategy!r} seed {seed} started.")
    torch.set_num_threads(1)
    start = time.perf_counter()
    experiment = _experiment(task, [strategy], training, out, stopping)
    _, cached = experiment.cell(strategy, strategy, seed, resume=resume)
    return (task.name, training, strategy, seed), time.perf_counter() - start, cached


def run_benchmark(
    tasks=None,
    strategies=None,
    training=("fixed",),
    *,
    seeds=None,
    first_seed=0,
    quick=False,
    out="skdynal-benchmark",
    n_jobs=None,
    resume=True,
    progress=True,
    stopping=None,
):
    """Run the cross-domain benchmark and summarise it.

    Every (task, training protocol, strategy, seed) cell is one active learning run
    (:func:`skdynal.experiments.run_experiment`'s protocol, class-balanced initial set,
    Adam, CPU), stored as soon as it finishes in ``out/<task>/<training>/cells``; an
    interrupted benchmark resumes where it stopped. Cells run in parallel, one torch
    thread each.

    Parameters
    ----------
    tasks : list of str, default=None
        Names from :data:`BENCHMARK_TASKS`; None runs all of them.
    strategies : list of str, default=None
        Registered strategy names (:func:`available_strategies`); None runs
        :data:`DEFAULT_BENCHMARK_STRATEGIES`. ``"random"`` is always added: it is what
        every configuration is compared with.
    training : sequence of str, default=("fixed",)
        Training protocols from :data:`TRAINING_PROTOCOLS`.
    seeds : int or None, default=None
        Seeds per task (``0..seeds-1``); None uses each task's own number (20 for the small
        tasks, 10 for Fashion-MNIST).
    first_seed : int, default=0
        The first seed: ``first_seed=20`` with 10 seeds runs seeds 20..29, fresh repetitions
        for checking a conclusion drawn from seeds 0..19.
    quick : bool, default=False
        The smoke-test scale of every task (2 rounds, 2 seeds, few epochs).
    out : str or path-like, default="skdynal-benchmark"
        Results folder.
    n_jobs : int, default=None
        Parallel worker processes; None uses every core the process may run on.
    resume : bool, default=True
        Reuse finished cells found in ``out``.
    progress : bool, default=True
        Show a progress bar over cells.
    stopping : list of str, default=None
        Stopping rules (names from :func:`skdynal.stopping.available_stopping_rules`) to
        watch inside every cell (see :class:`ExperimentProtocol`'s ``stopping``): the cells
        run the whole budget as without rules, and the report adds, per rule and task, the
        labels at which the rule stops and the accuracy there. Cells stored without the
        rules are recomputed once with them.

    Returns
    -------
    results : BenchmarkResults
    """
    task_names = list(BENCHMARK_TASKS) if tasks is None else list(tasks)
    unknown = [name for name in task_names if name not in BENCHMARK_TASKS]
    if unknown or not task_names:
        raise ValueError(
            f"Unknown or no tasks {unknown}; choose from {', '.join(BENCHMARK_TASKS)}."
        )
    strategies = list(DEFAULT_BENCHMARK_STRATEGIES if strategies is None else strategies)
    missing = [s for s in strategies if s not in available_strategies()]
    if missing:
        raise ValueError(
            f"Unknown strategies {missing}; choose from {', '.join(available_strategies())}."
        )
    if _BASELINE not in strategies:
        strategies.insert(0, _BASELINE)
    training = [training] if isinstance(training, str) else list(training)
    bad = [t for t in training if t not in TRAINING_PROTOCOLS]
    if bad or not training:
        raise ValueError(
            f"Unknown or no training protocols {bad}; choose from {', '.join(TRAINING_PROTOCOLS)}."
        )
    if stopping is not None:
        stopping = [stopping] if isinstance(stopping, str) else list(stopping)
    out = os.fspath(out)
    run_tasks = []
    for name in task_names:
        task = BENCHMARK_TASKS[name].scaled(quick)
        if seeds is not None:
            task = dataclasses.replace(task, seeds=check_positive_int(seeds, "seeds"))
        first_seed = check_positive_int(first_seed, "first_seed", minimum=0)
        run_tasks.append(dataclasses.replace(task, first_seed=first_seed))
    n_jobs = _n_jobs(n_jobs)
    jobs = [
        (task, protocol, strategy, seed, out, resume, stopping)
        for seed in range(max(task.first_seed + task.seeds for task in run_tasks))
        for task in run_tasks
        if seed in task.seed_list
        for protocol in training
        for strategy in strategies
    ]
    # The config (and data) of every task is checked here, before any worker starts.
    for task in run_tasks:
        _experiment(task, strategies[:1], training[0], out, stopping)
    timings = _run_jobs(jobs, n_jobs, progress)
    return _collect(run_tasks, strategies, training, out, timings, n_jobs, stopping)


def _n_jobs(n_jobs):
    if n_jobs is None:
        try:
            return max(1, len(os.sched_getaffinity(0)))
        except AttributeError:  # not on Linux
            return max(1, os.cpu_count() or 1)
    return check_positive_int(n_jobs, "n_jobs")


def _run_jobs(jobs, n_jobs, progress):
    timings = {}
    with tqdm(total=len(jobs), disable=not progress, unit="cell", desc="benchmark") as bar:
        if n_jobs == 1:
            for job in jobs:
                key, seconds, cached = _run_job(job)
                timings[key] = (seconds, cached)
                bar.update(1)
            return timings
        context = multiprocessing.get_context("spawn")
        with concurrent.futures.ProcessPoolExecutor(
            n_jobs, mp_context=context, initializer=_init_worker
        ) as pool:
            try:
                with _spawning_workers():
                    futures = [pool.submit(_run_job, job) for job in jobs]
                for future in concurrent.futures.as_completed(futures):
                    key, seconds, cached = future.result()
                    timings[key] = (seconds, cached)
                    bar.set_postfix_str(f"{key[0]} {key[2]} seed {key[3]}")
                    bar.update(1)
            except BaseException:
                # running cells end at once on Ctrl-C (their guard drops them); pending
                # ones are never started
                pool.shutdown(wait=True, cancel_futures=True)
                raise
    return timings


def _collect(tasks, strategies, training, out, timings, n_jobs, stopping=None):
    task_rows = {}
    for task in tasks:
        rows = []
        for protocol in training:
            experiment = _experiment(task, strategies, protocol, out, stopping)
            experiment_rows = experiment.run(progress=False)  # every cell is cached now
            results = ExperimentResults(
                experiment_rows,
                experiment.config,
                baseline=_BASELINE,
                protocol=experiment.protocol,
            )
            results.save(os.path.join(out, task.name, protocol), plot=False)
            for row in experiment_rows:
                rows.append({**row, "strategy": _config_label(row["strategy"], protocol)})
        task_rows[task.name] = rows
    seconds = {key: value[0] for key, value in timings.items() if not value[1]}
    return BenchmarkResults(
        task_rows,
        tasks=tasks,
        strategies=strategies,
        training=training,
        out=out,
        cell_seconds=seconds,
        n_jobs=n_jobs,
        stopping=stopping,
    )


# ----------------------------------------------------------------------------- analysis


def _holm(pvalues):
    """Holm-Bonferroni adjusted p-values (NaN stays NaN)."""
    p = np.asarray(pvalues, dtype=np.float64)
    adjusted = np.full_like(p, math.nan)
    finite = np.flatnonzero(np.isfinite(p))
    order = finite[np.argsort(p[finite])]
    running = 0.0
    for rank, index in enumerate(order):
        running = max(running, min(1.0, (len(order) - rank) * p[index]))
        adjusted[index] = running
    return adjusted


def _wilcoxon(differences):
    return _paired_pvalues(np.asarray(differences, dtype=np.float64))[1]


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
    """Per-configuration summary of one task (see :class:`BenchmarkResults`)."""
    curves = learning_curves(rows)
    aucs = _curve_aucs(curves)
    entries = []
    for config, by_seed in curves.items():
        strategy, training = config.rsplit(" [", 1)
        training = training.rstrip("]")
        values = np.array(list(aucs[config].values()))
        finals = np.array([acc[-1] for _, acc in by_seed.values()])
        entry = {
            "config": config,
            "strategy": strategy,
            "training": training,
            "n_seeds": len(values),
            "auc_mean": float(values.mean()),
            "auc_stderr": _stderr(values),
            "final_accuracy_mean": float(finals.mean()),
            "final_accuracy_stderr": _stderr(finals),
        }
        random_config = _config_label(_BASELINE, training)
        if random_config in curves:
            target = _mean_curve(curves[random_config])[1][-1]
            entry["labels_to_random_final"] = _labels_to_reach(*_mean_curve(by_seed), target)
            entry["random_final_labels"] = int(_mean_curve(curves[random_config])[0][-1])
        for other in compare_with:
            other_config = _config_label(other, training)
            if other_config in aucs and other_config != config:
                diffs = _paired(aucs[config], aucs[other_config])
                entry[f"diff_vs_{other}"] = float(diffs.mean())
                entry[f"diff_vs_{other}_stderr"] = _stderr(diffs)
                entry[f"p_vs_{other}"] = _wilcoxon(diffs)
                entry[f"wins_vs_{other}"] = int(np.sum(diffs > 0))
                entry[f"losses_vs_{other}"] = int(np.sum(diffs < 0))
        entries.append(entry)
    for other in compare_with:
        key = f"p_vs_{other}"
        adjusted = _holm([e.get(key, math.nan) for e in entries])
        for entry, p in zip(entries, adjusted, strict=True):
            if key in entry:
                entry[f"p_holm_vs_{other}"] = float(p)
    _rank_by_auc(entries)
    _mark_top_group(entries, aucs)
    return entries


def _mark_top_group(entries, aucs, alpha=0.05):
    """``top_group``: not significantly below the best configuration (Wilcoxon, Holm)."""
    best = entries[0]["config"]
    p = [
        _wilcoxon(_paired(aucs[best], aucs[e["config"]])) if e["config"] != best else math.nan
        for e in entries
    ]
    adjusted = _holm(p)
    for entry, p_adj in zip(entries, adjusted, strict=True):
        diff = _paired(aucs[best], aucs[entry["config"]]).mean() if entry["config"] != best else 0
        entry["p_holm_vs_best"] = float(p_adj)
        entry["top_group"] = bool(entry["config"] == best or not (p_adj < alpha and diff > 0))


def overall_ranks(task_summaries, task_rows):
    """Mean rank of every configuration over tasks, and over (task, seed) blocks.

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
    configs = sorted({e["config"] for s in task_summaries.values() for e in s})
    per_task = {c: [] for c in configs}
    top = {c: 0 for c in configs}
    worse = {c: 0 for c in configs}
    for summary in task_summaries.values():
        for entry in summary:
            per_task[entry["config"]].append(entry["rank"])
            top[entry["config"]] += entry["top_group"]
            if entry.get("p_holm_vs_random", 1.0) < 0.05 and entry.get("diff_vs_random", 0) < 0:
                worse[entry["config"]] += 1
    block_ranks = {c: [] for c in configs}
    for rows in task_rows.values():
        curves = learning_curves(rows)
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
            "config": c,
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


class BenchmarkResults:
    """What :func:`run_benchmark` measured, with tables, plots and a markdown report.

    Attributes
    ----------
    task_rows : dict of str to list of dict
        Tidy rows per task; ``strategy`` is the configuration ``"<strategy> [<training>]"``.
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
        (:func:`~skdynal.experiments.summarize_stopping`, per configuration); empty
        without ``stopping``.
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
            else {name: summarize_stopping(rows) for name, rows in task_rows.items()}
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
        overview = {}
        for task in self.tasks:
            initial = task.initial
            for e in self.stopping_summaries.get(task.name, []):
                entry = overview.setdefault(
                    (e["rule"], e["strategy"]),
                    {"rule": e["rule"], "config": e["strategy"], "used": [], "ratio": []},
                )
                entry["used"].append((e["labels_mean"] - initial) / (e["budget"] - initial))
                entry["ratio"].append(e["accuracy_ratio_mean"])
                entry["early"] = entry.get("early", 0) + e["early"]
                entry["never"] = entry.get("never", 0) + e["never"]
                entry["n_runs"] = entry.get("n_runs", 0) + e["n_runs"]
                entry["worst_task"] = min(
                    entry.get("worst_task", (math.inf, "")), (e["accuracy_ratio_mean"], task.name)
                )
        rows = []
        for (rule, _), entry in sorted(
            overview.items(), key=lambda item: (self.stopping.index(item[0][0]), item[0][1])
        ):
            rows.append(
                {
                    "rule": rule,
                    "config": entry["config"],
                    "n_tasks": len(entry["used"]),
                    "budget_used_mean": float(np.mean(entry["used"])),
                    "accuracy_ratio_mean": float(np.mean(entry["ratio"])),
                    "worst_task": entry["worst_task"][1],
                    "worst_task_ratio": entry["worst_task"][0],
                    "early": entry["early"],
                    "never": entry["never"],
                    "n_runs": entry["n_runs"],
                }
            )
        return rows

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
            self.task_rows[name],
            path,
            title=f"{name}: mean ± s.e. over seeds",
            baseline=_config_label(_BASELINE, self.training[0]),
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
