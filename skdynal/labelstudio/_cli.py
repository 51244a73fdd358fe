"""``skdynal labelstudio``: active learning on digits with people labeling in Label Studio."""

import argparse
import os
import sys
import time

from ..stopping import available_stopping_rules

__all__ = ["build_parser", "main"]


def build_parser():
    parser = argparse.ArgumentParser(
        prog="skdynal labelstudio",
        description="Active learning with people labeling in Label Studio, on scikit-learn's "
        "digits (8x8 images, an MLP). Each call does what is due: imports the pool once, "
        "shows the next batch (tab 'skdynal: next batch', ordered by prediction score), "
        "pulls finished annotations into the label journal, retrains, consults the "
        "stopping rule and queries the next batch. Safe to rerun and to kill at any time.",
    )
    parser.add_argument("--url", default="http://127.0.0.1:8080", help="Label Studio's address")
    parser.add_argument(
        "--api-key",
        default=os.environ.get("LABEL_STUDIO_API_KEY"),
        help="API token (default: $LABEL_STUDIO_API_KEY)",
    )
    target = parser.add_mutually_exclusive_group(required=True)
    target.add_argument("--project", type=int, help="id of an existing project")
    target.add_argument(
        "--create-project", metavar="TITLE", help="create a project with this title first"
    )
    parser.add_argument("--dir", required=True, help="the loop's directory (journal, etc.)")
    parser.add_argument("--strategy", default="dynamical", help="query strategy (skdynal list)")
    parser.add_argument("--batch-size", type=int, default=10)
    parser.add_argument("--initial", type=int, default=10, help="size of the initial batch")
    parser.add_argument("--n-pool", type=int, default=300, help="digits rows in the pool")
    parser.add_argument("--epochs", type=int, default=30, help="training epochs per round")
    parser.add_argument(
        "--stop",
        choices=["none", *available_stopping_rules()],
        default="stabilizing",
        help="stopping rule (skdynal.stopping.make_stopping_rule), or none",
    )
    parser.add_argument("--budget", type=int, default=None, help="also stop at this many labels")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--watch",
        type=float,
        default=None,
        metavar="SECONDS",
        help="keep syncing every SECONDS until the rule says stop (default: sync once)",
    )
    return parser


def _digits(n_pool):
    import numpy as np
    from sklearn.datasets import load_digits

    X, _ = load_digits(return_X_y=True)
    return (X[:n_pool] / 16.0).astype(np.float32)


def _net(epochs, seed):
    import torch
    from skorch import NeuralNetClassifier

    from ..models import MLP

    torch.manual_seed(seed)
    return NeuralNetClassifier(
        MLP,
        module__n_features=64,
        module__n_classes=10,
        criterion=torch.nn.CrossEntropyLoss,
        optimizer=torch.optim.Adam,
        lr=0.01,
        max_epochs=epochs,
        batch_size=64,
        train_split=None,
        warm_start=True,
        verbose=0,
    )


def _rule(args):
    from .. import stopping

    rules = []
    if args.stop != "none":
        rules.append(stopping.make_stopping_rule(args.stop))
    if args.budget is not None:
        rules.append(stopping.LabelBudget(budget=args.budget))
    if len(rules) == 2:
        return stopping.AnyRule(rules)
    return rules[0] if rules else None


def main(argv=None):
    """Entry point of ``skdynal labelstudio``; returns the exit status."""
    args = build_parser().parse_args(argv)
    if not args.api_key:
        sys.stderr.write("skdynal labelstudio: pass --api-key or set LABEL_STUDIO_API_KEY\n")
        return 2
    from ..experiments import make_strategy
    from . import LabelStudioBridge, array_image_tasks

    classes = list(range(10))
    project = args.project
    if project is None:
        project = LabelStudioBridge.create_project(
            args.url, args.api_key, args.create_project, classes
        )
        print(f"created project {project}")
    X_pool = _digits(args.n_pool)
    bridge = LabelStudioBridge(
        args.url,
        args.api_key,
        project,
        args.dir,
        classes,
        batch_size=args.batch_size,
        n_initial=args.initial,
        stopping=_rule(args),
        random_state=args.seed,
    )
    tasks = array_image_tasks(X_pool, (8, 8), upscale=16)
    try:
        while True:
            report = bridge.sync(
                _net(args.epochs, args.seed),
                make_strategy(args.strategy, random_state=args.seed),
                X_pool,
                tasks,
            )
            print(report, flush=True)
            if args.watch is None or report.stop:
                break
            time.sleep(args.watch)
    except KeyboardInterrupt:
        sys.stderr.write("skdynal labelstudio: interrupted; rerun the command to go on\n")
        return 130
    finally:
        bridge.close()
    return 0
