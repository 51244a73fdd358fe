"""The stopping rules with room to stop: the suite's small tasks at a longer budget.

The suite's own budgets (``skdynal benchmark --stopping ...``) end while most learning
curves still rise, which tests whether a rule stops too early more than how many labels
it saves. This script runs the suite's small tasks (``skdynal.experiments.BENCHMARK_TASKS``:
data, net, class-balanced initial set, batch size, epochs, learning rate) with
``--rounds-factor`` times their query rounds and the rules watching in every cell, and
prints, per task and rule, where the rule stops and the accuracy there (the same columns as
``skdynal benchmark --stopping``). Cells are stored per task under ``--out`` and resume.

Usage::

    python benchmarks/stopping_long_budget.py --tasks digits breast_cancer --seeds 10 \
        --out stopping-long
"""

import argparse
import os

from skdynal.experiments import (
    BENCHMARK_TASKS,
    ExperimentProtocol,
    load_experiment_data,
    run_experiment,
    stopping_overview,
)
from skdynal.stopping import available_stopping_rules

SMALL_TASKS = (
    "digits",
    "breast_cancer",
    "three_clust",
    "diverging_sin",
    "digits_cold",
    "breast_cancer_cold",
    "three_clust_cold",
    "diverging_sin_cold",
)


def task_protocol(name, strategies, seeds, rounds_factor, stopping):
    """The suite's protocol of task ``name`` with ``rounds_factor`` times its rounds."""
    task = BENCHMARK_TASKS[name]
    return ExperimentProtocol(
        model=task.model,
        strategies=list(strategies),
        initial=task.initial,
        query=task.query,
        rounds=task.rounds * rounds_factor,
        seeds=seeds,
        epochs=task.epochs,
        lr=task.lr,
        batch_size=task.batch_size,
        initial_sampling="balanced",
        module_kwargs=task.module_kwargs or None,
        dataset=name,
        stopping=list(stopping),
    )


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tasks", nargs="+", default=list(SMALL_TASKS), choices=SMALL_TASKS)
    parser.add_argument("--strategies", nargs="+", default=["dynamical", "random"])
    parser.add_argument("--seeds", type=int, default=10)
    parser.add_argument("--rounds-factor", type=int, default=3)
    parser.add_argument(
        "--stopping",
        nargs="+",
        default=available_stopping_rules(),
        choices=available_stopping_rules(),
    )
    parser.add_argument("--out", default="stopping-long")
    args = parser.parse_args(argv)
    per_task = []
    for name in args.tasks:
        task = BENCHMARK_TASKS[name]
        protocol = task_protocol(
            name, args.strategies, args.seeds, args.rounds_factor, args.stopping
        )
        data = load_experiment_data(task.dataset, task.model, **task.load_kwargs)
        results = run_experiment(
            data,
            protocol,
            out=os.path.join(args.out, name),
            progress=False,
            plot=False,
            n_threads=1,
        )
        budget = protocol.initial + protocol.query * protocol.rounds
        print(
            f"\n## {name}: {protocol.initial} + {protocol.query} x {protocol.rounds} = "
            f"{budget} labels, {args.seeds} seeds",
            flush=True,
        )
        print(results.stopping_table(), flush=True)
        per_task.append((name, protocol.initial, results.stopping_summary()))
    print(f"\n## Across the {len(args.tasks)} tasks")
    print(
        "| rule | strategy | share of the budget used | accuracy / full budget "
        "| below 98% | never |"
    )
    print("|---|---|---|---|---|---|")
    for r in stopping_overview(per_task, rules=args.stopping):
        print(
            f"| {r['rule']} | {r['strategy']} | {r['budget_used_mean']:.0%} | "
            f"{r['accuracy_ratio_mean']:.3f} | {r['early']}/{r['n_runs']} "
            f"| {r['never']}/{r['n_runs']} |"
        )


if __name__ == "__main__":
    main()
