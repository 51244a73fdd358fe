#!/usr/bin/env bash
# Run each paper example end to end (one round, one epoch) on small stand-in files written in
# the real on-disk formats, so that torchvision's real loading code runs. Used by
# `tox -e examples` and by .ci/run.  Usage: examples/run_on_standins.sh [WORKDIR] [PYTHON]
set -euo pipefail
work="${1:-$(mktemp -d)}"
python="${2:-python}"
cd "$(dirname "$0")/.."
export OMP_NUM_THREADS=1
"$python" -m skdynal.datasets.standins --root "$work/standins" --n-train 40 --n-test 10 \
    --caltech-classes 4 --caltech-per-class 10
small=(--initial 20 --query 10 --rounds 1 --epochs 1 --seeds 1 --batch-size 16
       --strategies dynamical random)
"$python" examples/cifar10_cnn.py --data-dir "$work/standins" --no-verify-checksums \
    "${small[@]}" --out "$work/out/cifar10"
"$python" examples/svhn_vgg.py --data-dir "$work/standins" --no-verify-checksums \
    "${small[@]}" --out "$work/out/svhn"
"$python" examples/caltech101_resnet.py --data-dir "$work/standins" \
    "${small[@]}" --out "$work/out/caltech101"
for name in cifar10 svhn caltech101; do
    test -s "$work/out/$name/results.csv" || { echo "no results for $name" >&2; exit 1; }
done
echo "examples ran on stand-ins: cifar10, svhn, caltech101"
