"""A cross-domain active learning benchmark: several tasks, many seeds, one command.

After CDALBench (Werner et al., NeurIPS 2024): an active learning method only earns its
place if it holds up over many repetitions and over tasks of different kinds. Every task
here runs every (strategy, training protocol) configuration over the same seeds; a seed
fixes the initial labeled set and the initial weights, so every configuration of a task
sees the same ones and all comparisons are paired by seed.

The benchmark's parts: the task table (:mod:`._tasks`), the scheduling of cells in worker
processes (:mod:`._scheduling`), the statistics (:mod:`._statistics`) and the report
(:mod:`._benchmark_report`); :func:`run_benchmark` here puts them together.
"""

import dataclasses
import os

from .._validation import check_positive_int
from ._benchmark_report import BenchmarkResults
from ._registry import available_strategies
from ._runner import ExperimentResults
from ._scheduling import CellJob, n_workers, run_jobs
from ._statistics import overall_ranks, summarize_task
from ._tasks import (
    BASELINE,
    BENCHMARK_TASKS,
    DEFAULT_BENCHMARK_STRATEGIES,
    TRAINING_PROTOCOLS,
    BenchmarkTask,
    task_experiment,
)

__all__ = [
    "BENCHMARK_TASKS",
    "DEFAULT_BENCHMARK_STRATEGIES",
    "TRAINING_PROTOCOLS",
    "BenchmarkResults",
    "BenchmarkTask",
    "overall_ranks",
    "run_benchmark",
    "summarize_task",
]


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
    if BASELINE not in strategies:
        strategies.insert(0, BASELINE)
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
    n_jobs = n_workers(n_jobs)
    jobs = [
        CellJob(task, protocol, strategy, seed, out, resume, stopping)
        for seed in range(max(task.first_seed + task.seeds for task in run_tasks))
        for task in run_tasks
        if seed in task.seed_list
        for protocol in training
        for strategy in strategies
    ]
    # The config (and data) of every task is checked here, before any worker starts.
    for task in run_tasks:
        task_experiment(task, strategies[:1], training[0], out, stopping)
    timings = run_jobs(jobs, n_jobs, progress)
    return _collect(run_tasks, strategies, training, out, timings, n_jobs, stopping)


def _collect(tasks, strategies, training, out, timings, n_jobs, stopping=None):
    """Every task's rows (all cells are stored by now), saved per training, as results."""
    task_rows = {}
    for task in tasks:
        rows = []
        for protocol in training:
            experiment = task_experiment(task, strategies, protocol, out, stopping)
            experiment_rows = experiment.run(progress=False)  # every cell is cached now
            results = ExperimentResults(
                experiment_rows,
                experiment.config,
                baseline=BASELINE,
                protocol=experiment.protocol,
            )
            results.save(os.path.join(out, task.name, protocol), plot=False)
            for row in experiment_rows:
                rows.append({**row, "training": protocol})
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
