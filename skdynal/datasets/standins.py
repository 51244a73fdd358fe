"""Command line: write stand-in CIFAR-10, SVHN, Caltech101 and Fashion-MNIST files.

Usage::

    python -m skdynal.datasets.standins --root DIR [--random-state 0]

Then load them with ``verify_checksums=False`` for CIFAR-10 and SVHN (the stand-ins fail
the official md5 checks by design). Fashion-MNIST goes in torchvision's layout,
``DIR/FashionMNIST/raw``, where ``load_fashion_mnist(DIR)`` finds it. See
:mod:`skdynal.datasets._standins`.
"""

import argparse
import os

from ._standins import (
    write_caltech101_standin,
    write_cifar10_standin,
    write_fashion_mnist_standin,
    write_svhn_standin,
)

__all__ = ["main"]


def main(argv=None):
    """Parse ``argv`` and write the four stand-ins; returns the exit status 0."""
    parser = argparse.ArgumentParser(
        prog="python -m skdynal.datasets.standins",
        description="Write tiny synthetic CIFAR-10, SVHN, Caltech101 and Fashion-MNIST "
        "files in the real on-disk formats, for tests and smoke runs without internet "
        "access.",
    )
    parser.add_argument("--root", required=True, help="data folder to write into")
    parser.add_argument("--random-state", type=int, default=0, help="seed (default 0)")
    parser.add_argument(
        "--n-train",
        type=int,
        default=200,
        help="CIFAR-10, SVHN and Fashion-MNIST training images (default 200)",
    )
    parser.add_argument(
        "--n-test",
        type=int,
        default=50,
        help="CIFAR-10, SVHN and Fashion-MNIST test images (default 50)",
    )
    parser.add_argument(
        "--caltech-classes", type=int, default=5, help="Caltech101 classes (default 5, at most 10)"
    )
    parser.add_argument(
        "--caltech-per-class",
        type=int,
        default=10,
        help="Caltech101 images per class (default 10)",
    )
    args = parser.parse_args(argv)
    written = [
        write_cifar10_standin(args.root, args.n_train, args.n_test, args.random_state),
        write_svhn_standin(args.root, args.n_train, args.n_test, args.random_state),
        write_caltech101_standin(
            args.root,
            args.caltech_classes,
            args.caltech_per_class,
            random_state=args.random_state,
        ),
        write_fashion_mnist_standin(
            os.path.join(args.root, "FashionMNIST", "raw"),
            args.n_train,
            args.n_test,
            random_state=args.random_state,
        ),
    ]
    for folder in written:
        print(f"wrote {folder}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
