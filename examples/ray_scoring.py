"""Score an active-learning pool on Ray: a local instance, or a cluster with --address.

    python examples/ray_scoring.py                       # starts a local Ray instance
    python examples/ray_scoring.py --address auto        # on a node of a running cluster
    python examples/ray_scoring.py --address ray://head:10001 --pool /shared/pool.npy

The query equals the one of local scoring: same indices, same scores.
"""

import argparse
import tempfile
from pathlib import Path

import numpy as np
import ray
import torch
from sklearn.datasets import load_digits
from skorch import NeuralNetClassifier

from skdynal import DynamicALSampler
from skdynal.distributed import RayScorer
from skdynal.models import MLP


def main(address=None, pool_path=None, n_workers=2, n_instances=20):
    # Train on 100 labeled digits; the other 1697 are the unlabeled pool.
    X, y = load_digits(return_X_y=True)
    X = (X / 16.0).astype(np.float32)
    X_labeled, y_labeled, X_pool = X[:100], y[:100], X[100:]
    torch.manual_seed(0)
    net = NeuralNetClassifier(
        MLP,
        module__hidden=(64,),
        criterion=torch.nn.CrossEntropyLoss,
        max_epochs=20,
        lr=0.1,
        warm_start=True,
        train_split=None,
        verbose=0,
    ).fit(X_labeled, y_labeled)

    # None starts a local instance; "auto" or "ray://<head>:10001" joins a cluster, whose
    # workers need skdynal installed (or runtime_env={"py_modules": [skdynal]}).
    if not ray.is_initialized():
        ray.init(address=address)

    # The pool as a .npy file that every worker memory-maps itself: on a cluster, a path on
    # a file system that all nodes share. Arrays work too (put in the object store once).
    if pool_path is None:
        pool_path = Path(tempfile.mkdtemp()) / "pool.npy"
        np.save(pool_path, X_pool)

    strategy = DynamicALSampler(gamma=2.0, random_state=0)
    scorer = RayScorer(strategy, n_workers=n_workers, n_cpus_per_worker=1)
    indices, scores = scorer.select(
        net, pool_path, n_instances, X_labeled=X_labeled, y_labeled=y_labeled
    )

    local_indices, local_scores = strategy.select(
        net, np.load(pool_path), n_instances, X_labeled=X_labeled, y_labeled=y_labeled
    )
    assert np.array_equal(indices, local_indices)
    assert np.allclose(scores, local_scores, rtol=1e-5)
    print("queried rows:", indices.tolist())
    print("same as local scoring; largest score", float(scores[0]))
    return indices, scores


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--address", default=None, help="Ray cluster address (default: local)")
    parser.add_argument("--pool", default=None, help=".npy pool every worker can read")
    parser.add_argument("--n-workers", type=int, default=2)
    args = parser.parse_args()
    main(args.address, args.pool, args.n_workers)
