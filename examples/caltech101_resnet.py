"""Caltech101 with ResNet18: the paper's Figure 3 setting (M = 500, b = 500).

dynamicAL against random sampling and the paper's baselines (least confidence, margin,
entropy, Coreset, BADGE, ALBL) on Caltech101's 101 classes, with 20% of each class held
out as the test set (fixed across seeds) and images resized to ``--image-size`` (32 by
default; 64 or more is closer to the usual setting and costs memory: 9,144 images x 3 x
size² x 4 bytes). Each seed starts from its own random 500 labeled images, queries 500
per round and continues training the same net (warm start). Results go to ``--out``;
an interrupted run resumes where it stopped.

Full scale, on a GPU (downloads Caltech101 into ./data/caltech101 the first time)::

    python examples/caltech101_resnet.py --data-dir data --download --device cuda

Smoke run on the stand-in files of ``python -m skdynal.datasets.standins``::

    python examples/caltech101_resnet.py --data-dir standins \\
        --initial 20 --query 10 --rounds 1 --epochs 1 --seeds 1 --strategies dynamical random
"""

from _paper import parse_args, run


def main(argv=None):
    args = parse_args(
        argv, description=__doc__.splitlines()[0], dataset="caltech101", model="resnet18"
    )
    return run(args, dataset="caltech101", model="resnet18")


if __name__ == "__main__":
    main()
