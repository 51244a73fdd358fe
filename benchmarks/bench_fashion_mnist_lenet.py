"""How long LeNet takes to fit a small labeled set of real Fashion-MNIST on the CPU.

For each seed: a fresh :class:`skdynal.models.LeNet`, Adam (learning rate 1e-3), batch 64,
trained on ``--n-train`` training images (drawn with ``random_state=0``) until training
accuracy is at least ``--target`` or ``--max-epochs`` epochs have run, then scored on the
10,000 test images. Prints epochs, wall and CPU seconds (training plus the per-epoch
training-accuracy pass) and test accuracy. Needs the real files (``sudo apt-get install
dataset-fashion-mnist``, or ``--data-dir`` with the four IDX files).

Usage::

    OMP_NUM_THREADS=1 python benchmarks/bench_fashion_mnist_lenet.py --seeds 0 1 2
"""

import argparse
import time

import numpy as np
import torch
import torch.nn.functional as F

from skdynal.datasets import load_fashion_mnist
from skdynal.models import LeNet


def accuracy(model, X, y, batch=1000):
    model.eval()
    with torch.no_grad():
        pred = torch.cat([model(X[i : i + batch]).argmax(1) for i in range(0, len(X), batch)])
    model.train()
    return (pred == y).double().mean().item()


def fit_until(X, y, seed, *, target, max_epochs, lr, batch_size):
    """Train a fresh LeNet; returns (model, epochs, final training accuracy)."""
    torch.manual_seed(seed)
    model = LeNet()
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    order = torch.Generator().manual_seed(seed)
    train_acc, epochs = 0.0, 0
    while epochs < max_epochs and train_acc < target:
        epochs += 1
        for idx in torch.randperm(len(X), generator=order).split(batch_size):
            optimizer.zero_grad()
            F.cross_entropy(model(X[idx]), y[idx]).backward()
            optimizer.step()
        train_acc = accuracy(model, X, y)
    return model, epochs, train_acc


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0])
    parser.add_argument("--n-train", type=int, default=1000)
    parser.add_argument("--target", type=float, default=0.99)
    parser.add_argument("--max-epochs", type=int, default=100)
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument(
        "--data-dir",
        default=None,
        help="folder with the IDX files (default: the Debian package's)",
    )
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)

    start = time.perf_counter()
    data = load_fashion_mnist(args.data_dir, n_train=args.n_train, random_state=0)
    print(
        f"load_fashion_mnist(n_train={args.n_train}): {time.perf_counter() - start:.2f} s; "
        f"labels per class {np.bincount(data.y_train).tolist()}; torch threads "
        f"{torch.get_num_threads()}"
    )
    X, y = torch.from_numpy(data.X_train), torch.from_numpy(data.y_train)
    X_test, y_test = torch.from_numpy(data.X_test), torch.from_numpy(data.y_test)
    for seed in args.seeds:
        wall, cpu = time.perf_counter(), time.process_time()
        model, epochs, train_acc = fit_until(
            X,
            y,
            seed,
            target=args.target,
            max_epochs=args.max_epochs,
            lr=args.lr,
            batch_size=args.batch_size,
        )
        wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
        test_acc = accuracy(model, X_test, y_test)
        print(
            f"seed {seed}: {epochs} epochs, {wall:.1f} s wall, {cpu:.1f} s CPU, "
            f"train acc {train_acc:.3f}, test acc {test_acc:.4f} ({len(y_test)} images)"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
