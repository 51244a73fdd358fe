"""Datasets of the dynamicAL experiments as numpy arrays that skorch and modAL accept.

Every loader returns a :class:`sklearn.utils.Bunch` with ``X_train``, ``y_train``,
``X_test``, ``y_test`` (float32 features, int64 labels), ``classes``, ``mean``, ``std``
and ``description``. :func:`load_digits_split` needs no download; CIFAR-10, SVHN and
Caltech101 are read by torchvision's dataset classes from a local folder (``download=True``
fetches them). The ``write_*_standin`` functions write tiny synthetic files in the real
formats for tests; ``python -m skdynal.datasets.standins --root DIR`` writes all three.
"""

from ._digits import load_digits_split
from ._images import load_caltech101, load_cifar10, load_svhn
from ._registry import DATASETS, load_dataset
from ._standins import write_caltech101_standin, write_cifar10_standin, write_svhn_standin

__all__ = [
    "DATASETS",
    "load_caltech101",
    "load_cifar10",
    "load_dataset",
    "load_digits_split",
    "load_svhn",
    "write_caltech101_standin",
    "write_cifar10_standin",
    "write_svhn_standin",
]
