"""What does a dynamicAL query cost with each batch selection, against the paper's top-b?

For each setting, fits the net on a class-balanced initial set, then times
``DynamicALSampler(selection=...).select`` on the same pool, same net, same process, and
prints the median of ``--repeats`` queries (after one untimed query, the selections
taking turns) and its ratio to top-b's. Settings: the suite's
sizes (digits MLP, Fashion-MNIST LeNet, the mid-budget Fashion-MNIST MLP) and a
20,000-row Fashion-MNIST pool.

    python benchmarks/bench_selection.py --threads 1 --repeats 3

The pairwise selections (``kmeans++``, ``farthest_first``) hold the candidates' gradients
in factored form (``n_candidates="auto"``: as many rows of largest score as fit in
``skdynal.strategies._dynamical.AUTO_CANDIDATE_BYTES``); the report gives how many that was.
"""

import argparse
import os
import statistics
import time
import warnings

import numpy as np
import torch
from skorch import NeuralNetClassifier

from skdynal import DynamicALSampler
from skdynal.experiments import initial_indices, load_experiment_data
from skdynal.models import MLP, LeNet

SELECTIONS = ("top_b", "class_balanced", "kmeans++", "farthest_first", "power", "softrank")

# name: (dataset, model, module, module kwargs, n_train, initial, query, epochs)
SETTINGS = {
    "digits MLP (suite)": ("digits", "mlp", MLP, {"n_features": 64}, None, 20, 20, 50),
    "Fashion-MNIST LeNet (suite)": ("fashion_mnist", "lenet", LeNet, {}, 6000, 20, 40, 60),
    "Fashion-MNIST MLP, mid budget (suite)": (
        "fashion_mnist",
        "mlp",
        MLP,
        {"n_features": 784, "hidden": (256, 128)},
        20000,
        1000,
        250,
        30,
    ),
    "Fashion-MNIST MLP, 20,000-row pool": (
        "fashion_mnist",
        "mlp",
        MLP,
        {"n_features": 784, "hidden": (256, 128)},
        21000,
        1000,
        250,
        30,
    ),
}


def fitted_net(module, module_kwargs, X, y, epochs):
    torch.manual_seed(0)
    net = NeuralNetClassifier(
        module,
        criterion=torch.nn.CrossEntropyLoss,
        optimizer=torch.optim.Adam,
        lr=1e-3,
        batch_size=64,
        max_epochs=epochs,
        train_split=None,
        verbose=0,
        **{f"module__{k}": v for k, v in module_kwargs.items()},
    )
    return net.fit(X, y)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=1, help="torch threads (cells use 1)")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--settings", nargs="+", default=list(SETTINGS), choices=list(SETTINGS))
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    print(
        f"torch {torch.__version__}, {args.threads} thread(s), median of {args.repeats} "
        f"queries, MALLOC_MMAP_THRESHOLD_={os.environ.get('MALLOC_MMAP_THRESHOLD_', 'unset')}"
    )
    for name in args.settings:
        dataset, model, module, module_kwargs, n_train, initial, query, epochs = SETTINGS[name]
        load = {} if n_train is None else {"n_train": n_train, "n_test": 100}
        data = load_experiment_data(dataset, model, **load)
        X, y = data["X_train"].astype(np.float32), data["y_train"]
        labeled = initial_indices(y, initial, np.random.RandomState(0), balanced=True)
        pool = np.setdiff1d(np.arange(len(X)), labeled)
        net = fitted_net(module, module_kwargs, X[labeled], y[labeled], epochs)
        print(f"\n{name}: pool {len(pool)}, labeled {initial}, batch {query}")
        print(f"{'selection':<16}{'seconds':>9}{'x top-b':>9}")
        strategies = {s: DynamicALSampler(selection=s, random_state=0) for s in SELECTIONS}
        times = {s: [] for s in SELECTIONS}
        # one untimed query first (lazy initialisation), then the selections take turns so
        # that a busy machine slows them alike
        for repeat in range(args.repeats + 1):
            for selection, strategy in strategies.items():
                start = time.perf_counter()
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    strategy.select(
                        net, X[pool], query, X_labeled=X[labeled], y_labeled=y[labeled]
                    )
                if repeat:
                    times[selection].append(time.perf_counter() - start)
        baseline = statistics.median(times["top_b"])
        for selection in SELECTIONS:
            seconds = statistics.median(times[selection])
            print(f"{selection:<16}{seconds:>9.2f}{seconds / baseline:>9.2f}")


if __name__ == "__main__":
    main()
