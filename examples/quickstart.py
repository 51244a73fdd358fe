"""Active learning on scikit-learn's digits: dynamicAL against random and uncertainty sampling.

A small skorch MLP starts from 50 labels; each round it queries a batch from the pool, the
oracle labels it, and the net continues training (``warm_start=True``). The script prints
the test accuracy after each round (mean over seeds) and writes a learning-curve plot.

Run::

    python examples/quickstart.py --out quickstart.png
"""

import argparse
import time

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
import torch
from modAL.models import ActiveLearner
from modAL.uncertainty import entropy_sampling, margin_sampling, uncertainty_sampling
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split
from sklearn.utils import check_random_state
from skorch import NeuralNetClassifier

from skdynal import DynamicALSampler


class MLP(torch.nn.Module):
    def __init__(self, n_features=64, hidden=128, n_classes=10):
        super().__init__()
        self.layers = torch.nn.Sequential(
            torch.nn.Linear(n_features, hidden),
            torch.nn.ReLU(),
            torch.nn.Linear(hidden, n_classes),
        )

    def forward(self, X):
        return self.layers(X)


def random_sampling(learner, X_pool, n_instances=1, random_state=None):
    rng = check_random_state(random_state)
    return rng.choice(len(X_pool), size=n_instances, replace=False)


def strategies(seed):
    return {
        "dynamicAL": DynamicALSampler(gamma=2.0, random_state=seed),
        "random": lambda learner, X, n_instances=1: random_sampling(learner, X, n_instances, seed),
        "least confidence": uncertainty_sampling,
        "margin": margin_sampling,
        "entropy": entropy_sampling,
    }


def run_one(strategy, data, seed, args):
    X_train, y_train, X_test, y_test = data
    rng = np.random.RandomState(seed)
    labeled = rng.choice(len(X_train), size=args.initial, replace=False)
    pool = np.setdiff1d(np.arange(len(X_train)), labeled)
    torch.manual_seed(seed)
    net = NeuralNetClassifier(
        MLP, criterion=torch.nn.CrossEntropyLoss, optimizer=torch.optim.Adam, lr=1e-3,
        max_epochs=args.epochs, batch_size=32, warm_start=True, train_split=None, verbose=0,
        device="cuda" if torch.cuda.is_available() else "cpu",
    )
    learner = ActiveLearner(
        estimator=net, query_strategy=strategy,
        X_training=X_train[labeled], y_training=y_train[labeled],
    )
    accuracies = [learner.score(X_test, y_test)]
    for _ in range(args.rounds):
        idx, _ = learner.query(X_train[pool], n_instances=args.query)
        learner.teach(X_train[pool[idx]], y_train[pool[idx]])
        pool = np.delete(pool, idx)
        accuracies.append(learner.score(X_test, y_test))
    return accuracies


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--rounds", type=int, default=6)
    parser.add_argument("--initial", type=int, default=50)
    parser.add_argument("--query", type=int, default=50)
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument("--out", default="quickstart.png")
    args = parser.parse_args(argv)

    X, y = load_digits(return_X_y=True)
    X = (X / 16.0).astype(np.float32)
    X_train, X_test, y_train, y_test = train_test_split(
        X, y, test_size=0.3, stratify=y, random_state=0
    )
    data = (X_train, y_train, X_test, y_test)
    results = {}
    for seed in range(args.seeds):
        for name, strategy in strategies(seed).items():
            start = time.perf_counter()
            results.setdefault(name, []).append(run_one(strategy, data, seed, args))
            print(f"seed {seed}  {name:<17} {time.perf_counter() - start:5.1f} s", flush=True)

    labels = [args.initial + r * args.query for r in range(args.rounds + 1)]
    print("\nTest accuracy (mean over seeds) by number of labels")
    print(f"{'labels':>7} " + " ".join(f"{name:>17}" for name in results))
    for r, n_labels in enumerate(labels):
        row = " ".join(f"{np.mean([acc[r] for acc in runs]):>17.4f}" for runs in results.values())
        print(f"{n_labels:>7} {row}")

    fig, ax = plt.subplots(figsize=(6, 4))
    for name, runs in results.items():
        runs = np.asarray(runs)
        mean = runs.mean(axis=0)
        stderr = runs.std(axis=0, ddof=1) / np.sqrt(len(runs)) if len(runs) > 1 else 0 * mean
        ax.plot(labels, mean, marker="o", label=name)
        ax.fill_between(labels, mean - stderr, mean + stderr, alpha=0.2)
    ax.set_xlabel("labeled samples")
    ax.set_ylabel("test accuracy")
    ax.set_title(f"digits, {args.seeds} seeds (mean ± s.e.)")
    ax.legend()
    fig.tight_layout()
    fig.savefig(args.out, dpi=120)
    print(f"\nwrote {args.out}")


if __name__ == "__main__":
    main()
