"""Shared flags of the paper examples: cifar10_cnn.py, svhn_vgg.py, caltech101_resnet.py.

Each example is the paper's Figure 3 protocol for one dataset and network; this module
parses the common flags and runs :func:`skdynal.experiments.run_experiment`.
"""

import argparse

import torch

from skdynal.experiments import load_experiment_data, run_experiment

PAPER_STRATEGIES = [
    "dynamical",
    "random",
    "least-confidence",
    "margin",
    "entropy",
    "coreset",
    "badge",
    "albl",
]


def parse_args(argv, *, description, dataset, model, epochs=50, batch_size=64):
    """Parse the flags shared by the paper examples."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--data-dir", required=True, help="folder that holds the dataset")
    parser.add_argument("--download", action="store_true", help="download it if missing")
    parser.add_argument(
        "--no-verify-checksums",
        dest="verify_checksums",
        action="store_false",
        help="skip md5 checks (stand-in files)",
    )
    parser.add_argument("--initial", type=int, default=500, help="initial labeled set M")
    parser.add_argument("--query", type=int, default=500, help="queried per round b")
    parser.add_argument("--rounds", type=int, default=10, help="query rounds")
    parser.add_argument("--seeds", type=int, default=3, help="number of seeds")
    parser.add_argument("--epochs", type=int, default=epochs, help="epochs per round")
    parser.add_argument("--lr", type=float, default=1e-3, help="Adam learning rate")
    parser.add_argument("--batch-size", type=int, default=batch_size, help="batch size")
    parser.add_argument("--n-train", type=int, default=None, help="subsample the pool")
    parser.add_argument("--n-test", type=int, default=None, help="subsample the test set")
    parser.add_argument("--image-size", type=int, default=32, help="caltech101 image size")
    parser.add_argument("--strategies", nargs="+", default=PAPER_STRATEGIES)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--out", default=f"skdynal-results/{dataset}-{model}-paper")
    return parser.parse_args(argv)


def run(args, *, dataset, model, **data_kwargs):
    """Load the data, run every strategy and seed, print the tables; return the results."""
    if dataset == "caltech101":
        data_kwargs["image_size"] = args.image_size
    else:
        data_kwargs["verify_checksums"] = args.verify_checksums
    data = load_experiment_data(
        dataset,
        model,
        data_dir=args.data_dir,
        download=args.download,
        n_train=args.n_train,
        n_test=args.n_test,
        **data_kwargs,
    )
    results = run_experiment(
        data,
        model=model,
        strategies=args.strategies,
        dataset=dataset,
        initial=args.initial,
        query=args.query,
        rounds=args.rounds,
        seeds=args.seeds,
        epochs=args.epochs,
        lr=args.lr,
        batch_size=args.batch_size,
        device=args.device,
        out=args.out,
    )
    print(results.accuracy_table())
    print()
    print(results.summary_table())
    print(f"\nresults and learning_curve.png in {args.out}")
    return results
