"""LADA (InfoMixup) against its baselines on Fashion-MNIST, scaled to one CPU core.

One command runs every missing (strategy, seed) cell, each saved as JSON as soon as it
finishes (so an interrupted run resumes where it stopped), then writes the learning-curve
plot and prints the results table for docs/lada.md::

    OMP_NUM_THREADS=1 python benchmarks/bench_lada.py

Protocol (the paper's, scaled down; see docs/lada.md): a LeNet-style CNN, a pool of
``--pool`` random training images, 2 labels per class to start, ``--rounds`` queries of
``--query`` images, ``--epochs`` Adam epochs per round (warm start), accuracy of the final
model of each round on ``--test`` random test images. ``--report`` only redraws the plot
and table from the saved cells.
"""

import argparse
import gzip
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import skdynal  # noqa: E402
from skdynal import (  # noqa: E402
    BADGESampler,
    DynamicALSampler,
    LADANetClassifier,
    LADASampler,
    MarginSampler,
    RandomSampler,
)

DATA = Path("/usr/share/datasets/fashion-mnist")
OUT = ROOT / "benchmarks" / "results" / "lada"
STATIC = ROOT / "docs" / "_static" / "lada"
STRATEGIES = ["lada", "lada-fixed", "acq-only", "random", "margin", "badge", "dynamical"]


def read_idx(path):
    """A tiny reader of the IDX format (big-endian header, unsigned bytes)."""
    with gzip.open(path, "rb") as f:
        data = f.read()
    n_dims = data[3]
    shape = tuple(int.from_bytes(data[4 + 4 * i : 8 + 4 * i], "big") for i in range(n_dims))
    return np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * n_dims).reshape(shape)


def load(split):
    prefix = "train" if split == "train" else "t10k"
    X = read_idx(DATA / f"{prefix}-images-idx3-ubyte.gz").astype(np.float32) / 255.0
    y = read_idx(DATA / f"{prefix}-labels-idx1-ubyte.gz").astype(np.int64)
    return ((X - 0.2860) / 0.3530)[:, None], y


class LeNet(torch.nn.Module):
    """LeNet-5 style: two 5x5 conv + max-pool stages, three linear layers (28x28 input)."""

    def __init__(self):
        super().__init__()
        self.features = torch.nn.Sequential(
            torch.nn.Conv2d(1, 6, 5, padding=2),
            torch.nn.ReLU(),
            torch.nn.MaxPool2d(2),
            torch.nn.Conv2d(6, 16, 5),
            torch.nn.ReLU(),
            torch.nn.MaxPool2d(2),
            torch.nn.Flatten(),
        )
        self.classifier = torch.nn.Sequential(
            torch.nn.Linear(16 * 5 * 5, 120),
            torch.nn.ReLU(),
            torch.nn.Linear(120, 84),
            torch.nn.ReLU(),
            torch.nn.Linear(84, 10),
        )

    def forward(self, X):
        return self.classifier(self.features(X))


def make_strategy(name, seed, args):
    lada = dict(
        subset_size=args.subset,
        n_lambda=args.n_lambda,
        generator_epochs=args.generator_epochs,
        random_state=seed,
    )
    return {
        "lada": lambda: LADASampler(**lada),
        "lada-fixed": lambda: LADASampler(alpha=args.alpha, **lada),
        "acq-only": lambda: LADASampler(acquisition_only=True, **lada),
        "random": lambda: RandomSampler(random_state=seed),
        "margin": lambda: MarginSampler(random_state=seed),
        "badge": lambda: BADGESampler(random_state=seed),
        "dynamical": lambda: DynamicALSampler(random_state=seed, selection="top_b"),
    }[name]()


def run_cell(name, seed, args, data):
    X_train, y_train, X_test, y_test = data
    rng = np.random.RandomState(seed)
    pool = rng.choice(len(X_train), size=args.pool, replace=False)
    test = rng.choice(len(X_test), size=args.test, replace=False)
    X, y = X_train[pool], y_train[pool]
    Xt, yt = X_test[test], y_test[test]
    labeled = np.concatenate(
        [rng.choice(np.flatnonzero(y == c), size=2, replace=False) for c in range(10)]
    )
    strategy = make_strategy(name, seed, args)
    torch.manual_seed(seed)
    net = LADANetClassifier(
        LeNet,
        criterion=torch.nn.CrossEntropyLoss,
        optimizer=torch.optim.Adam,
        lr=1e-3,
        max_epochs=args.epochs,
        batch_size=32,
        warm_start=True,
        train_split=None,
        verbose=0,
        lada_random_state=seed,
        iterator_valid__batch_size=500,
    )
    accuracies, n_labels, query_seconds = [], [], []
    start = time.perf_counter()
    for round_ in range(args.rounds + 1):
        net.fit(X[labeled], y[labeled])
        accuracies.append(float((net.predict(Xt) == yt).mean()))
        n_labels.append(len(labeled))
        if round_ == args.rounds:
            break
        unlabeled = np.setdiff1d(np.arange(len(X)), labeled)
        t0 = time.perf_counter()
        chosen, _ = strategy.select(
            net, X[unlabeled], args.query, X_labeled=X[labeled], y_labeled=y[labeled]
        )
        query_seconds.append(time.perf_counter() - t0)
        assert len(set(chosen.tolist())) == args.query
        labeled = np.concatenate([labeled, unlabeled[chosen]])
    return {
        "strategy": name,
        "seed": seed,
        "n_labels": n_labels,
        "accuracy": accuracies,
        "query_seconds": query_seconds,
        "seconds": time.perf_counter() - start,
        "config": vars(args),
        "skdynal": skdynal.__version__,
        "torch_threads": torch.get_num_threads(),
    }


def auc(cell):
    """Normalised area under the accuracy curve (trapezoid over the label counts)."""
    x, a = np.asarray(cell["n_labels"], float), np.asarray(cell["accuracy"])
    return float(np.sum((a[1:] + a[:-1]) / 2 * np.diff(x)) / (x[-1] - x[0]))


def report(args):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    cells = {}
    for path in sorted(OUT.glob("*.json")):
        cell = json.loads(path.read_text())
        cells.setdefault(cell["strategy"], []).append(cell)
    STATIC.mkdir(parents=True, exist_ok=True)
    fig, ax = plt.subplots(figsize=(7, 4.5))
    rows = []
    for name in STRATEGIES:
        runs = cells.get(name, [])
        if not runs:
            continue
        acc = np.array([r["accuracy"] for r in runs]) * 100
        x = runs[0]["n_labels"]
        mean, se = acc.mean(0), acc.std(0, ddof=1) / np.sqrt(len(runs)) if len(runs) > 1 else 0
        ax.plot(x, mean, label=name, lw=2 if name.startswith("lada") else 1.2)
        ax.fill_between(x, mean - se, mean + se, alpha=0.15)
        aucs = np.array([auc(r) for r in runs]) * 100
        q = np.array([np.mean(r["query_seconds"]) for r in runs])
        n = len(runs)
        rows.append(
            (
                name,
                n,
                aucs.mean(),
                aucs.std(ddof=1) / np.sqrt(n) if n > 1 else 0,
                acc[:, -1].mean(),
                acc[:, -1].std(ddof=1) / np.sqrt(n) if n > 1 else 0,
                q.mean(),
            )
        )
    ax.set_xlabel("labeled images")
    ax.set_ylabel("test accuracy (%)")
    ax.set_title("Fashion-MNIST, LeNet, mean ± s.e. over seeds")
    ax.legend()
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(STATIC / "learning_curves.png", dpi=110)
    print("| strategy | seeds | AUC (%) ± s.e. | final accuracy (%) ± s.e. | s per query |")
    print("|---|---|---|---|---|")
    for name, n, a, ase, f, fse, q in rows:
        print(f"| {name} | {n} | {a:.2f} ± {ase:.2f} | {f:.2f} ± {fse:.2f} | {q:.2f} |")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--strategies", nargs="+", default=STRATEGIES, choices=STRATEGIES)
    parser.add_argument("--pool", type=int, default=5000)
    parser.add_argument("--test", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--query", type=int, default=10)
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--subset", type=int, default=1000)
    parser.add_argument("--n-lambda", type=int, default=3)
    parser.add_argument("--generator-epochs", type=int, default=5)
    parser.add_argument("--alpha", type=float, default=2.0)
    parser.add_argument("--report", action="store_true", help="only redraw plot and table")
    args = parser.parse_args()
    torch.set_num_threads(1)
    if not args.report:
        OUT.mkdir(parents=True, exist_ok=True)
        X_train, y_train = load("train")
        X_test, y_test = load("test")
        data = (X_train, y_train, X_test, y_test)
        config = {k: v for k, v in vars(args).items() if k not in ("report", "strategies")}
        for seed in range(args.seeds):
            for name in args.strategies:
                path = OUT / f"{name}_seed{seed}.json"
                if path.exists() and json.loads(path.read_text())["config"] == config:
                    continue
                cell = run_cell(name, seed, args, data)
                cell["config"] = config
                path.write_text(json.dumps(cell, indent=1))
                print(
                    f"{name} seed {seed}: final {cell['accuracy'][-1]:.4f} "
                    f"({cell['seconds']:.1f} s)",
                    flush=True,
                )
    report(args)


if __name__ == "__main__":
    main()
