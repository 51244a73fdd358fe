"""Evaluate the stopping rules of skdynal.stopping on the cross-domain suite's small tasks.

For every (task, seed, strategy) the active learning loop runs once with the task's
protocol (data, net, initial set, batch size and number of rounds of
``skdynal.experiments.BENCHMARK_TASKS``); after every trained round each rule is updated
on the same model and pool, and the test accuracy is recorded. Per rule and task the
script reports the labels at which the rule stops (the whole budget if it never does; the
budget is ``--rounds-factor`` times the suite's rounds, 2 by default, so that the rules
have room to stop), the accuracy then as a fraction of the accuracy with the whole budget,
and how often it stops before reaching 98% of that accuracy ("early").

Usage::

    nice -n 15 python benchmarks/evaluate_stopping.py --seeds 5 --out stopping-eval

It writes ``<out>/runs.json`` (every run's per-round statistics) and ``<out>/table.md``.
"""

import argparse
import json
import math
import time
from pathlib import Path

import numpy as np
import torch
from modAL.models import ActiveLearner

from skdynal.experiments import (
    BENCHMARK_TASKS,
    ExperimentProtocol,
    initial_indices,
    load_experiment_data,
    make_strategy,
)
from skdynal.experiments._net_factory import net_builder
from skdynal.stopping import (
    ClassificationChange,
    DynamicsPlateau,
    OverallUncertainty,
    StabilizingPredictions,
)

TASKS = ("digits", "breast_cancer", "three_clust", "diverging_sin")
STRATEGIES = ("dynamical-balanced", "random")


def make_rules():
    """The rules evaluated, with their published (or, for ours, default) settings."""
    return {
        "stabilizing (κ̄≥0.99, k=3)": StabilizingPredictions(window=3, threshold=0.99),
        "classification change (0%)": ClassificationChange(threshold=0.0),
        "overall uncertainty (≤0.05)": OverallUncertainty(threshold=0.05),
        "dynamics plateau (r≤0.05, 2 rounds)": DynamicsPlateau(threshold=0.05, patience=2),
    }


def run_one(task, seed, strategy_name, rounds_factor=2):
    data = load_experiment_data(task.dataset, task.model, **task.load_kwargs)
    X, y = data["X_train"], data["y_train"]
    X_test, y_test = data["X_test"], data["y_test"]
    protocol = ExperimentProtocol(
        model=task.model,
        strategies=[strategy_name],
        initial=task.initial,
        query=task.query,
        rounds=task.rounds * rounds_factor,
        seeds=[seed],
        epochs=task.epochs,
        lr=task.lr,
        batch_size=task.batch_size,
        optimizer="adam",
        device="cpu",
        initial_sampling="balanced",
        module_kwargs=task.module_kwargs or None,
    )
    torch.manual_seed(seed)
    net = net_builder(protocol, X, len(np.unique(y)))()
    labeled = list(initial_indices(y, task.initial, seed, balanced=True))
    strategy = make_strategy(strategy_name, random_state=seed)
    learner = ActiveLearner(net, strategy, X_training=X[labeled], y_training=y[labeled])
    rules = make_rules()
    n_labeled, accuracy = [], []
    n_rounds = task.rounds * rounds_factor
    for round_ in range(n_rounds + 1):
        unlabeled = np.setdiff1d(np.arange(len(X)), labeled)
        for rule in rules.values():
            rule.update(learner, X[unlabeled], pool_ids=unlabeled.tolist())
        n_labeled.append(len(labeled))
        accuracy.append(float(np.mean(learner.predict(X_test) == y_test)))
        if round_ == n_rounds:
            break
        idx, _ = learner.query(X[unlabeled], n_instances=task.query)
        chosen = unlabeled[np.asarray(idx)]
        labeled.extend(chosen.tolist())
        learner.teach(X[chosen], y[chosen])
    return {
        "task": task.name,
        "seed": seed,
        "strategy": strategy_name,
        "n_labeled": n_labeled,
        "accuracy": accuracy,
        "rules": {
            name: {
                "stopped_at": rule.stopped_at_,
                "history": [None if math.isnan(v) else v for v in rule.history_],
            }
            for name, rule in rules.items()
        },
    }


def summarize(runs):
    """Rows ``(rule, task, mean labels, labels of budget, mean acc ratio, early fraction)``."""
    rows = []
    for rule in make_rules():
        for task in TASKS:
            mine = [r for r in runs if r["task"] == task]
            if not mine:
                continue
            labels, ratios, early = [], [], []
            for r in mine:
                at = r["rules"][rule]["stopped_at"]
                at = len(r["accuracy"]) - 1 if at is None else at
                final = r["accuracy"][-1]
                labels.append(r["n_labeled"][at])
                ratios.append(r["accuracy"][at] / final)
                early.append(r["accuracy"][at] < 0.98 * final)
            rows.append(
                (
                    rule,
                    task,
                    float(np.mean(labels)),
                    mine[0]["n_labeled"][-1],
                    float(np.mean(ratios)),
                    float(np.mean(early)),
                )
            )
    return rows


def table(rows, n_runs):
    lines = [
        f"| rule | task | labels at stop (of budget) | accuracy / full-budget accuracy | "
        f"stops before 98% ({n_runs} runs per task) |",
        "|---|---|---|---|---|",
    ]
    for rule, task, labels, budget, ratio, early in rows:
        lines.append(f"| {rule} | {task} | {labels:.1f} of {budget} | {ratio:.3f} | {early:.0%} |")
    return "\n".join(lines)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--tasks", nargs="+", default=list(TASKS), choices=TASKS)
    parser.add_argument("--out", default="stopping-eval")
    parser.add_argument(
        "--rounds-factor",
        type=int,
        default=2,
        help="query rounds as a multiple of the suite's (room for the rules to stop)",
    )
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    runs = []
    start = time.time()
    for name in args.tasks:
        for seed in range(args.seeds):
            for strategy in STRATEGIES:
                runs.append(run_one(BENCHMARK_TASKS[name], seed, strategy, args.rounds_factor))
                print(
                    f"{name} seed {seed} {strategy}: final accuracy "
                    f"{runs[-1]['accuracy'][-1]:.3f} ({time.time() - start:.0f} s)",
                    flush=True,
                )
    (out / "runs.json").write_text(json.dumps(runs, indent=1))
    text = table(summarize(runs), args.seeds * len(STRATEGIES))
    (out / "table.md").write_text(text + "\n")
    print(text)


if __name__ == "__main__":
    main()
