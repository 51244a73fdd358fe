"""SVHN with VGG11 (batch norm): the paper's Figure 3 setting (M = 500, b = 500).

dynamicAL against random sampling and the paper's baselines (least confidence, margin,
entropy, Coreset, BADGE, ALBL) on SVHN's 73,257 training digits (the pool) and 26,032
test digits. Each seed starts from its own random 500 labeled images, queries 500 per
round and continues training the same net (warm start). Results (CSV, JSON, summary and
the learning-curve plot) go to ``--out``; an interrupted run resumes where it stopped.

Full scale, on a GPU (downloads SVHN into ./data/svhn the first time)::

    python examples/svhn_vgg.py --data-dir data --download --device cuda

Smoke run on the stand-in files of ``python -m skdynal.datasets.standins``::

    python examples/svhn_vgg.py --data-dir standins --no-verify-checksums \\
        --initial 20 --query 10 --rounds 1 --epochs 1 --seeds 1 --strategies dynamical random
"""

from _paper import parse_args, run


def main(argv=None):
    args = parse_args(argv, description=__doc__.splitlines()[0], dataset="svhn", model="vgg11")
    return run(args, dataset="svhn", model="vgg11")


if __name__ == "__main__":
    main()
