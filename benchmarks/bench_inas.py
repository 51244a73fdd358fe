"""iNAS against the smallest and the largest fixed member of its family, per query strategy.

One command produces every number of docs/inas.md::

    OMP_NUM_THREADS=1 python benchmarks/bench_inas.py --out benchmarks/results/inas

Datasets: scikit-learn's digits (MLP family) and Fashion-MNIST (CNN family; the four IDX
files of Debian's dataset-fashion-mnist under /usr/share/datasets/fashion-mnist, or
``--fashion-root``). Every (dataset, architecture, strategy, seed) cell is written to its
own JSON file as soon as it finishes and skipped when the script runs again, so a crash
loses at most one cell. Cells run seed by seed, so an interrupted run still has every method
on the same seeds. ``--budget-minutes`` stops starting new cells after that wall time.

Architectures: ``inas`` (INASLearner, search from (1, 1) within the caps), ``small`` (the
fixed smallest member, (1, 1)) and ``large`` (the fixed largest member, (max_blocks,
max_stacks)). The fixed ones run through the same learner with ``search_steps=0``, so the
only difference is the search. Test data is used only to report accuracy after every fit.
"""

import argparse
import gzip
import json
import os
import sys
import time
import warnings

import numpy as np
import torch
from skorch import NeuralNetClassifier

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from skdynal import BALDSampler, CoresetSampler, DynamicALSampler, MarginSampler
from skdynal.datasets import load_digits_split
from skdynal.nas import CNNFamily, INASLearner, MLPFamily

ARCHITECTURES = ("inas", "small", "large")

# Scaled to one CPU core: the paper starts from 2,000 labels and queries 2,000 per round
# on CIFAR-10 with ResNets trained for 200 epochs (50 per candidate).
CONFIGS = {
    "digits": {
        "family": lambda: MLPFamily(n_features=64, n_classes=10, width=16, dropout=0.1),
        "family_text": "MLPFamily(width=16, dropout=0.1)",
        "max_blocks": 4,
        "max_stacks": 3,
        "initial": 40,
        "query": 40,
        "rounds": 4,
        "epochs": 20,
        "candidate_epochs": 10,
        "lr": 3e-3,
        "batch_size": 32,
        # BALD works with INASLearner (tests/nas) but did not fit the CPU budget here.
        "strategies": ("margin", "dynamical", "coreset"),
    },
    "fashion": {
        "family": lambda: CNNFamily(in_channels=1, n_classes=10, width=12, dropout=0.1),
        "family_text": "CNNFamily(width=12, dropout=0.1, head_pool=2), 28x28 inputs",
        "max_blocks": 2,
        "max_stacks": 3,
        "initial": 40,
        "query": 40,
        "rounds": 3,
        "epochs": 6,
        "candidate_epochs": 3,
        "lr": 3e-3,
        "batch_size": 32,
        "pool": 600,
        "test": 600,
        "strategies": ("margin", "dynamical", "coreset"),
    },
}


# ----------------------------------------------------------------------------- data


def _read_idx(path):
    with gzip.open(path, "rb") as f:
        raw = f.read()
    ndim = raw[3]
    shape = tuple(int.from_bytes(raw[4 + 4 * k : 8 + 4 * k], "big") for k in range(ndim))
    return np.frombuffer(raw, dtype=np.uint8, offset=4 + 4 * ndim).reshape(shape)


def load_data(name, fashion_root):
    """(X_train, y_train, X_test, y_test) for one dataset; a fixed subset for Fashion-MNIST."""
    if name == "digits":
        data = load_digits_split(test_size=0.25, random_state=0)
        return data.X_train, data.y_train, data.X_test, data.y_test
    cfg = CONFIGS["fashion"]
    X = _read_idx(os.path.join(fashion_root, "train-images-idx3-ubyte.gz"))
    y = _read_idx(os.path.join(fashion_root, "train-labels-idx1-ubyte.gz"))
    X_test = _read_idx(os.path.join(fashion_root, "t10k-images-idx3-ubyte.gz"))
    y_test = _read_idx(os.path.join(fashion_root, "t10k-labels-idx1-ubyte.gz"))
    rng = np.random.RandomState(0)
    train = rng.choice(len(X), cfg["pool"], replace=False)
    test = rng.choice(len(X_test), cfg["test"], replace=False)
    X, y, X_test, y_test = X[train], y[train], X_test[test], y_test[test]
    X = X.astype(np.float32)[:, None] / 255.0
    X_test = X_test.astype(np.float32)[:, None] / 255.0
    mean, std = X.mean(), X.std()  # statistics of the training subset only
    X, X_test = (X - mean) / std, (X_test - mean) / std
    return X, y.astype(np.int64), X_test, y_test.astype(np.int64)


# ----------------------------------------------------------------------------- cells


def make_strategy(name, seed):
    if name == "margin":
        return MarginSampler()
    if name == "dynamical":
        return DynamicALSampler(selection="top_b")
    if name == "coreset":
        return CoresetSampler(random_state=seed)
    if name == "bald":
        return BALDSampler(n_samples=10, random_state=seed)
    raise ValueError(name)


def run_cell(dataset, arch, strategy_name, seed, arrays):
    cfg = CONFIGS[dataset]
    X_train, y_train, X_test, y_test = arrays
    family = cfg["family"]()
    net = NeuralNetClassifier(
        family.module_class,
        criterion=torch.nn.CrossEntropyLoss,
        optimizer=torch.optim.Adam,
        lr=cfg["lr"],
        max_epochs=cfg["epochs"],
        batch_size=cfg["batch_size"],
        train_split=None,
        iterator_train__shuffle=True,
        verbose=0,
    )
    largest = (cfg["max_blocks"], cfg["max_stacks"])
    search = {
        "inas": {"search_steps": 1, "initial_structure": (1, 1)},
        "small": {"search_steps": 0, "initial_structure": (1, 1)},
        "large": {"search_steps": 0, "initial_structure": largest},
    }[arch]
    # The same seed draws the same initial labeled set for every architecture and strategy.
    rng = np.random.RandomState(seed)
    labeled = rng.choice(len(X_train), cfg["initial"], replace=False)
    pool = np.setdiff1d(np.arange(len(X_train)), labeled)
    rows = []
    start = time.perf_counter()
    learner = INASLearner(
        estimator=net,
        query_strategy=make_strategy(strategy_name, seed),
        X_training=X_train[labeled],
        y_training=y_train[labeled],
        family=family,
        max_blocks=cfg["max_blocks"],
        max_stacks=cfg["max_stacks"],
        holdout=0.2,
        candidate_epochs=cfg["candidate_epochs"],
        random_state=seed,
        **search,
    )
    query_s = None
    for rnd in range(cfg["rounds"] + 1):
        if rnd > 0:
            t0 = time.perf_counter()
            idx, _ = learner.query(X_train[pool], n_instances=cfg["query"])
            query_s = time.perf_counter() - t0
            chosen = pool[np.asarray(idx)]
            learner.teach(X_train[chosen], y_train[chosen])
            pool = np.setdiff1d(pool, chosen)
        record = learner.search_history_[-1]
        rows.append(
            {
                "round": rnd,
                "n_labels": len(learner.y_training),
                "test_accuracy": float(np.mean(learner.predict(X_test) == y_test)),
                "structure": list(learner.structure_),
                "search_seconds": record["search_seconds"],
                "fit_seconds": record["fit_seconds"],
                "query_seconds": query_s,
                "candidates": [
                    [list(c["structure"]), c["holdout_accuracy"]]
                    for step in record["steps"]
                    for c in step["candidates"]
                ],
            }
        )
    return {"seconds": time.perf_counter() - start, "rows": rows}


# ----------------------------------------------------------------------------- summary


def auc(rows):
    """Area under the accuracy-vs-labels curve divided by its label range (trapezoids)."""
    n = np.array([r["n_labels"] for r in rows], dtype=float)
    acc = np.array([r["test_accuracy"] for r in rows])
    return float(np.sum((acc[1:] + acc[:-1]) / 2 * np.diff(n)) / (n[-1] - n[0]))


def mean_se(values):
    values = np.asarray(values, dtype=float)
    se = values.std(ddof=1) / np.sqrt(len(values)) if len(values) > 1 else float("nan")
    return values.mean(), se


def summarize(cells, datasets):
    lines = []
    for dataset in datasets:
        cfg = CONFIGS[dataset]
        lines += [
            f"### {dataset}",
            "",
            f"Family {cfg['family_text']}; caps {cfg['max_blocks']} blocks x "
            f"{cfg['max_stacks']} stacks, so small = (1, 1) and large = "
            f"({cfg['max_blocks']}, {cfg['max_stacks']}). {cfg['initial']} initial labels, "
            f"{cfg['rounds']} rounds of {cfg['query']}, {cfg['epochs']} epochs per fit, "
            f"{cfg['candidate_epochs']} per candidate.",
            "",
            "| strategy | architecture | seeds | AUC | final accuracy | "
            "AUC vs small | AUC vs large | seconds per run | search share |",
            "|---|---|---|---|---|---|---|---|---|",
        ]
        structures_lines = []
        for strategy in cfg["strategies"]:
            by_arch = {
                arch: {
                    seed: cell
                    for (d, a, s, seed), cell in cells.items()
                    if (d, a, s) == (dataset, arch, strategy)
                }
                for arch in ARCHITECTURES
            }
            common = sorted(set.intersection(*(set(v) for v in by_arch.values())))
            if not common:
                continue
            aucs = {a: np.array([auc(by_arch[a][s]["rows"]) for s in common]) for a in by_arch}
            for arch in ARCHITECTURES:
                runs = [by_arch[arch][s] for s in common]
                a_mean, a_se = mean_se(aucs[arch])
                f_mean, f_se = mean_se([r["rows"][-1]["test_accuracy"] for r in runs])
                secs = np.mean([r["seconds"] for r in runs])
                search = sum(row["search_seconds"] for r in runs for row in r["rows"])
                total = sum(r["seconds"] for r in runs)
                diffs = []
                for other in ("small", "large"):
                    if arch == "inas":
                        d_mean, d_se = mean_se(aucs["inas"] - aucs[other])
                        wins = int(np.sum(aucs["inas"] > aucs[other]))
                        diffs.append(f"{d_mean:+.4f} ± {d_se:.4f} ({wins}/{len(common)})")
                    else:
                        diffs.append("")
                lines.append(
                    f"| {strategy} | {arch} | {len(common)} | {a_mean:.4f} ± {a_se:.4f} | "
                    f"{f_mean:.4f} ± {f_se:.4f} | {diffs[0]} | {diffs[1]} | {secs:.1f} | "
                    f"{search / total:.0%} |"
                )
            per_round = []
            for rnd, row in enumerate(by_arch["inas"][common[0]]["rows"]):
                counts = {}
                for s in common:
                    key = tuple(by_arch["inas"][s]["rows"][rnd]["structure"])
                    counts[key] = counts.get(key, 0) + 1
                text = ", ".join(
                    f"({b},{j})×{c}" for (b, j), c in sorted(counts.items(), key=lambda x: -x[1])
                )
                per_round.append(f"| {rnd} | {row['n_labels']} | {text} |")
            structures_lines += [
                f"iNAS + {strategy} (structure picked after each round's search, "
                f"counted over {len(common)} seeds):",
                "",
                "| round | labels | structures (blocks, stacks) × seeds |",
                "|---|---|---|",
                *per_round,
                "",
            ]
        lines += ["", *structures_lines]
    return "\n".join(lines)


# ----------------------------------------------------------------------------- main


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="benchmarks/results/inas")
    parser.add_argument("--seeds", type=int, default=10)
    parser.add_argument("--datasets", nargs="+", default=["digits", "fashion"])
    parser.add_argument("--fashion-root", default="/usr/share/datasets/fashion-mnist")
    parser.add_argument("--budget-minutes", type=float, default=None)
    parser.add_argument("--summary-only", action="store_true")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    warnings.filterwarnings("ignore", message=".*force_all_finite.*", category=FutureWarning)
    cells_dir = os.path.join(args.out, "cells")
    os.makedirs(cells_dir, exist_ok=True)
    started = time.perf_counter()
    cells = {}
    arrays = {}
    for seed in range(args.seeds):
        for dataset in args.datasets:
            for strategy in CONFIGS[dataset]["strategies"]:
                for arch in ARCHITECTURES:
                    key = (dataset, arch, strategy, seed)
                    path = os.path.join(cells_dir, f"{dataset}__{arch}__{strategy}__{seed}.json")
                    if os.path.exists(path):
                        with open(path, encoding="utf-8") as f:
                            cells[key] = json.load(f)
                        continue
                    if args.summary_only:
                        continue
                    elapsed = (time.perf_counter() - started) / 60
                    if args.budget_minutes is not None and elapsed > args.budget_minutes:
                        continue
                    if dataset not in arrays:
                        arrays[dataset] = load_data(dataset, args.fashion_root)
                    cell = run_cell(dataset, arch, strategy, seed, arrays[dataset])
                    with open(path + ".tmp", "w", encoding="utf-8") as f:
                        json.dump(cell, f)
                    os.replace(path + ".tmp", path)
                    cells[key] = cell
                    print(
                        f"{dataset} {arch} {strategy} seed {seed}: final "
                        f"{cell['rows'][-1]['test_accuracy']:.4f}, {cell['seconds']:.1f} s, "
                        f"structures {[tuple(r['structure']) for r in cell['rows']]}",
                        flush=True,
                    )
    summary = summarize(cells, args.datasets)
    with open(os.path.join(args.out, "summary.md"), "w", encoding="utf-8") as f:
        f.write(summary + "\n")
    print(summary)


if __name__ == "__main__":
    main()
