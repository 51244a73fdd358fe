"""Datasets of the dynamicAL experiments as numpy arrays that skorch and modAL accept.

Every loader returns a :class:`sklearn.utils.Bunch` with ``X_train``, ``y_train``,
``X_test``, ``y_test`` (float32 features, int64 labels), ``classes``, ``mean``, ``std``
and ``description``. :func:`load_digits_split`, :func:`load_breast_cancer_split` and the
synthetic tasks of CDALBench (:func:`load_three_clust`, :func:`load_diverging_sin`) need
no download; CIFAR-10, SVHN and
Caltech101 are read by torchvision's dataset classes from a local folder (``download=True``
fetches them); :func:`load_fashion_mnist` parses the four IDX files itself, by default
from where Debian's ``dataset-fashion-mnist`` package installs them. The
``write_*_standin`` functions write tiny synthetic files in the real formats for tests;
``python -m skdynal.datasets.standins --root DIR`` writes all four.
"""

from ._digits import load_digits_split
from ._fashion_mnist import load_fashion_mnist
from ._images import load_caltech101, load_cifar10, load_svhn
from ._registry import DATASETS, canonical_dataset_name, load_dataset
from ._standins import (
    write_caltech101_standin,
    write_cifar10_standin,
    write_fashion_mnist_standin,
    write_svhn_standin,
)
from ._synthetic import load_diverging_sin, load_three_clust
from ._tabular import load_breast_cancer_split

__all__ = [
    "DATASETS",
    "canonical_dataset_name",
    "load_breast_cancer_split",
    "load_caltech101",
    "load_cifar10",
    "load_dataset",
    "load_digits_split",
    "load_diverging_sin",
    "load_fashion_mnist",
    "load_svhn",
    "load_three_clust",
    "write_caltech101_standin",
    "write_cifar10_standin",
    "write_fashion_mnist_standin",
    "write_svhn_standin",
]
