"""What do the strategies pick on Fashion-MNIST in the benchmark's first round?

Fits the benchmark's LeNet on the class-balanced initial set of each seed (the suite's
protocol: 20 labels, 60 epochs, Adam 1e-3), lets several strategies pick 40 pool images,
and prints, per strategy, the mean input norm of the picks relative to the pool's, the
share of the most frequent true class, the number of distinct classes, and the accuracy of
the net on the picks (how many it already gets right).

    python benchmarks/diagnose_picks.py --seeds 3
"""

import argparse
import warnings

import numpy as np
import torch
from modAL.models import ActiveLearner

from skdynal.experiments import BENCHMARK_TASKS, initial_indices, load_experiment_data
from skdynal.experiments._registry import make_strategy
from skdynal.experiments._runner import _Experiment


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument(
        "--strategies",
        nargs="+",
        default=["random", "margin", "entropy", "badge", "dynamical", "dynamical-gamma0"],
    )
    args = parser.parse_args()
    torch.set_num_threads(1)
    task = BENCHMARK_TASKS["fashion_mnist"]
    data = load_experiment_data(task.dataset, task.model, **task.load_kwargs)
    X, y = data["X_train"], data["y_train"]
    pool_norm = np.linalg.norm(X.reshape(len(X), -1), axis=1).mean()
    experiment = _Experiment(
        data,
        task.model,
        ["random"],
        initial=task.initial,
        query=task.query,
        rounds=1,
        seeds=1,
        epochs=task.epochs,
        lr=task.lr,
        batch_size=task.batch_size,
        optimizer="adam",
        weight_decay=0.0,
        device="cpu",
        reinit=False,
        train_until_fit=None,
        reset_optimizer=False,
        initial_sampling="balanced",
        module_kwargs=None,
        net_kwargs=None,
        dataset=task.name,
        baseline=None,
        out=None,
    )
    stats = {name: [] for name in args.strategies}
    for seed in range(args.seeds):
        labeled = initial_indices(y, task.initial, np.random.RandomState(seed), balanced=True)
        pool = np.setdiff1d(np.arange(len(X)), labeled)
        for name in args.strategies:
            torch.manual_seed(seed)
            net = experiment.build_net()
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                learner = ActiveLearner(
                    estimator=net, X_training=X[labeled], y_training=y[labeled]
                )
            strategy = make_strategy(
                name, random_state=seed, protocol={"query": task.query, "rounds": task.rounds}
            )
            result = strategy(learner, X[pool], n_instances=task.query)
            picks = np.asarray(result[0] if isinstance(result, tuple) else result)
            chosen = pool[picks]
            norms = np.linalg.norm(X[chosen].reshape(len(chosen), -1), axis=1)
            counts = np.bincount(y[chosen], minlength=10)
            stats[name].append(
                (
                    norms.mean() / pool_norm,
                    counts.max() / len(chosen),
                    (counts > 0).sum(),
                    float(np.mean(net.predict(X[chosen]) == y[chosen])),
                )
            )
    print(
        f"Fashion-MNIST, first query of {task.query} after {task.initial} balanced labels, "
        f"{args.seeds} seeds (mean)"
    )
    print(f"{'strategy':<20}{'norm / pool':>12}{'top class':>11}{'classes':>9}{'net right':>11}")
    for name, rows in stats.items():
        norm, top, classes, right = np.mean(rows, axis=0)
        print(f"{name:<20}{norm:>12.2f}{top:>11.2f}{classes:>9.1f}{right:>11.2f}")


if __name__ == "__main__":
    main()
