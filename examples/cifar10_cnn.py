"""CIFAR-10 with the vanilla CNN: the paper's Figure 3 setting (M = 500, b = 500).

dynamicAL against random sampling and the paper's baselines (least confidence, margin,
entropy, Coreset, BADGE, ALBL). Each seed starts from its own random 500 labeled images,
queries 500 per round, continues training the same net (warm start), and measures the
accuracy on the 10,000 test images after every round. Results (CSV, JSON, summary and
the learning-curve plot) go to ``--out``; an interrupted run resumes where it stopped.

Full scale, on a GPU (downloads CIFAR-10 into ./data the first time)::

    python examples/cifar10_cnn.py --data-dir data --download --device cuda

Smoke run on the stand-in files of ``python -m skdynal.datasets.standins``::

    python examples/cifar10_cnn.py --data-dir standins --no-verify-checksums \\
        --initial 20 --query 10 --rounds 1 --epochs 1 --seeds 1 --strategies dynamical random
"""

from _paper import parse_args, run


def main(argv=None):
    args = parse_args(argv, description=__doc__.splitlines()[0], dataset="cifar10", model="cnn")
    return run(args, dataset="cifar10", model="cnn")


if __name__ == "__main__":
    main()
