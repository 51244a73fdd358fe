"""CIFAR-10, SVHN and Caltech101 through torchvision's dataset classes, as numpy arrays.

The files are read by torchvision's own loading code (``torchvision.datasets.CIFAR10``,
``SVHN`` and ``Caltech101``); this module only adds the paper's splits, subsetting,
per-channel normalisation and clear errors when the files are missing.
"""

import numbers
import os
from typing import ClassVar

import numpy as np
import torch
from sklearn.utils import check_random_state

from .._torchvision import import_torchvision
from ._common import make_result, subset_indices

_torchvision = import_torchvision()
tv_datasets = _torchvision.datasets
transforms = _torchvision.transforms

__all__ = ["load_caltech101", "load_cifar10", "load_svhn"]

CIFAR10_URL = tv_datasets.CIFAR10.url
SVHN_URLS = {split: tv_datasets.SVHN.split_list[split][0] for split in ("train", "test")}
CALTECH101_URL = "https://data.caltech.edu/records/mzrjq-6wc02/files/caltech-101.zip"


class _CIFAR10ExistenceOnly(tv_datasets.CIFAR10):
    """torchvision's CIFAR10 with the per-file md5 checks replaced by existence checks.

    torchvision's ``check_integrity(path, None)`` only tests that the file exists, so
    blanking the per-file checksums keeps every other line of the real loader (pickle
    parsing, HWC layout, ``batches.meta``) and of ``download`` (which still verifies the
    md5 of the downloaded archive).
    """

    train_list: ClassVar = [[name, None] for name, _ in tv_datasets.CIFAR10.train_list]
    test_list: ClassVar = [[name, None] for name, _ in tv_datasets.CIFAR10.test_list]
    meta: ClassVar = {**tv_datasets.CIFAR10.meta, "md5": None}


class _SVHNExistenceOnly(tv_datasets.SVHN):
    """torchvision's SVHN whose integrity check tests only that the ``.mat`` file exists.

    ``download`` still fetches with the official md5 when the file is absent.
    """

    def _check_integrity(self):
        return os.path.isfile(os.path.join(self.root, self.filename))

    def download(self):
        if self._check_integrity():
            return
        super().download()


def _check_root(root):
    if root is None:
        raise TypeError("root is required: the folder that holds (or will hold) the data.")
    return os.path.abspath(os.path.expanduser(os.fspath(root)))


def _download_failed(name, folder, url, err):
    return OSError(
        f"Downloading {name} into {folder} failed ({type(err).__name__}: {err}). "
        f"On a machine without internet access, fetch {url} elsewhere and place it as "
        "described in docs/datasets.md, then call again with download=False."
    )


def _missing_files_error(name, missing, how_to):
    listed = ", ".join(missing)
    return FileNotFoundError(f"{name} files not found: looked for {listed}. {how_to}")


def _open_torchvision(factory, *, name, download, folder, url, required, how_to, corrupted):
    """Build a torchvision dataset, turning its bare RuntimeError into a precise error."""
    try:
        return factory()
    except RuntimeError as err:
        missing = [path for path in required if not os.path.exists(path)]
        if missing:
            raise _missing_files_error(name, missing, how_to) from err
        raise ValueError(
            f"{name} files in {folder} failed torchvision's checks ({err}). {corrupted}"
        ) from err
    except OSError as err:
        if download:
            raise _download_failed(name, folder, url, err) from err
        raise


def _to_float_images(uint8_nchw):
    return uint8_nchw.astype(np.float32) / np.float32(255.0)


def _subsets_result(train, test, *, n_train, n_test, rng, labels, channels_last, **result):
    """Subset two torchvision splits and build the result from their uint8 images.

    Images become float32 ``(N, C, H, W)`` in ``[0, 1]`` (``channels_last``: ``data`` is
    ``(N, H, W, C)``); ``labels`` names the label attribute; ``result`` holds the rest of
    :func:`make_result`'s arguments (``classes``, ``normalize``, ``description``).
    """
    arrays = []
    for split, n_keep, name in ((train, n_train, "n_train"), (test, n_test, "n_test")):
        keep = subset_indices(len(split.data), n_keep, rng, name=name)
        images = split.data[keep]
        if channels_last:
            images = images.transpose(0, 3, 1, 2)
        arrays += [
            _to_float_images(images),
            np.asarray(getattr(split, labels), dtype=np.int64)[keep],
        ]
    return make_result(*arrays, **result)


def load_cifar10(
    root,
    *,
    download=False,
    n_train=None,
    n_test=None,
    normalize="train",
    verify_checksums=True,
    random_state=None,
):
    """Load CIFAR-10's benchmark train (50,000) and test (10,000) splits as arrays.

    Reads ``<root>/cifar-10-batches-py`` with :class:`torchvision.datasets.CIFAR10`.

    Parameters
    ----------
    root : str or path-like
        Data folder; CIFAR-10 lives in ``<root>/cifar-10-batches-py`` (the layout of the
        official ``cifar-10-python.tar.gz``).
    download : bool, default=False
        Download and extract the official archive into ``root`` if the files are missing.
    n_train, n_test : int or None, default=None
        Keep a random subset of this many training / test images (None keeps all).
    normalize : {'train'} or (mean, std) or None, default='train'
        ``'train'``: subtract the per-channel mean and divide by the per-channel standard
        deviation of the returned training images (values first scaled to ``[0, 1]``).
        A ``(mean, std)`` pair of per-channel values uses those instead; None leaves the
        images in ``[0, 1]``.
    verify_checksums : bool, default=True
        Check the official md5 of every file (torchvision's behaviour). False checks only
        that the files exist; the rest of torchvision's loader runs unchanged. Use False
        only for small stand-in files such as those written by
        :func:`skdynal.datasets.write_cifar10_standin`.
    random_state : int, RandomState instance or None, default=None
        Seed of the ``n_train`` / ``n_test`` subsets.

    Returns
    -------
    data : sklearn.utils.Bunch
        ``X_train``, ``X_test``: float32 ``(N, 3, 32, 32)``; ``y_train``, ``y_test``: int64
        in ``0..9``; ``classes``: the ten class names from ``batches.meta``; ``mean``,
        ``std``: the float32 per-channel statistics applied (None if not normalised);
        ``description``.

    Raises
    ------
    FileNotFoundError
        If files are missing and ``download=False``; the message lists the paths.
    ValueError
        If the files exist but fail torchvision's checks (e.g. an md5 mismatch).
    OSError
        If ``download=True`` and the download fails.

    References
    ----------
    .. [1] A. Krizhevsky, "Learning Multiple Layers of Features from Tiny Images",
       Technical report, University of Toronto, 2009.
    """
    root = _check_root(root)
    rng = check_random_state(random_state)
    cls = tv_datasets.CIFAR10 if verify_checksums else _CIFAR10ExistenceOnly
    folder = os.path.join(root, cls.base_folder)
    names = [n for n, _ in cls.train_list + cls.test_list] + [cls.meta["filename"]]
    options = dict(
        name="CIFAR-10",
        download=download,
        folder=folder,
        url=CIFAR10_URL,
        required=[os.path.join(folder, n) for n in names],
        how_to=(
            "Pass download=True (command line: --download) to fetch it, or download "
            f"{CIFAR10_URL} and extract it into {root} so that {folder} holds "
            "data_batch_1..data_batch_5, test_batch and batches.meta."
        ),
        corrupted=(
            "Delete the folder and download again, or pass verify_checksums=False if these "
            "are stand-in files (e.g. from skdynal.datasets.write_cifar10_standin)."
        ),
    )
    train = _open_torchvision(lambda: cls(root, train=True, download=download), **options)
    test = _open_torchvision(lambda: cls(root, train=False, download=False), **options)

    # torchvision keeps CIFAR-10's images as (N, H, W, C) uint8.
    return _subsets_result(
        train,
        test,
        n_train=n_train,
        n_test=n_test,
        rng=rng,
        labels="targets",
        channels_last=True,
        classes=train.classes,
        normalize=normalize,
        description=f"CIFAR-10 from {folder} (benchmark train/test split).",
    )


def load_svhn(
    root,
    *,
    download=False,
    n_train=None,
    n_test=None,
    normalize="train",
    verify_checksums=True,
    random_state=None,
):
    """Load SVHN's benchmark train (73,257) and test (26,032) splits as arrays.

    Reads ``<root>/svhn/train_32x32.mat`` and ``test_32x32.mat`` with
    :class:`torchvision.datasets.SVHN`, which maps the files' label 10 to digit 0, so
    labels are the digits ``0..9``. The ``extra`` split is not used.

    Parameters
    ----------
    root : str or path-like
        Data folder; the ``.mat`` files live in ``<root>/svhn`` (a subfolder, so that one
        data folder can hold all datasets).
    download : bool, default=False
        Download the two official ``.mat`` files into ``<root>/svhn`` if missing.
    n_train, n_test : int or None, default=None
        Keep a random subset of this many training / test images (None keeps all).
    normalize : {'train'} or (mean, std) or None, default='train'
        As in :func:`load_cifar10`.
    verify_checksums : bool, default=True
        As in :func:`load_cifar10`; False only for stand-in files such as those written by
        :func:`skdynal.datasets.write_svhn_standin`.
    random_state : int, RandomState instance or None, default=None
        Seed of the ``n_train`` / ``n_test`` subsets.

    Returns
    -------
    data : sklearn.utils.Bunch
        As in :func:`load_cifar10`, with ``classes`` ``['0', ..., '9']``.

    Raises
    ------
    FileNotFoundError, ValueError, OSError
        As in :func:`load_cifar10`.

    References
    ----------
    .. [1] Y. Netzer, T. Wang, A. Coates, A. Bissacco, B. Wu and A. Y. Ng, "Reading Digits
       in Natural Images with Unsupervised Feature Learning", NIPS Workshop on Deep
       Learning and Unsupervised Feature Learning, 2011.
    """
    root = _check_root(root)
    rng = check_random_state(random_state)
    cls = tv_datasets.SVHN if verify_checksums else _SVHNExistenceOnly
    folder = os.path.join(root, "svhn")
    files = {split: os.path.join(folder, cls.split_list[split][1]) for split in SVHN_URLS}
    parts = {}
    for split in ("train", "test"):
        parts[split] = _open_torchvision(
            lambda split=split: cls(folder, split=split, download=download),
            name="SVHN",
            download=download,
            folder=folder,
            url=SVHN_URLS[split],
            required=[files["train"], files["test"]],
            how_to=(
                "Pass download=True (command line: --download) to fetch them, or download "
                f"{SVHN_URLS['train']} and {SVHN_URLS['test']} into {folder}."
            ),
            corrupted=(
                "Delete the file and download again, or pass verify_checksums=False if it "
                "is a stand-in file (e.g. from skdynal.datasets.write_svhn_standin)."
            ),
        )
    # torchvision keeps SVHN's images as (N, C, H, W) uint8 and labels with 10 -> 0 applied.
    return _subsets_result(
        parts["train"],
        parts["test"],
        n_train=n_train,
        n_test=n_test,
        rng=rng,
        labels="labels",
        channels_last=False,
        classes=[str(d) for d in range(10)],
        normalize=normalize,
        description=f"SVHN from {folder} (benchmark train/test split, label 10 -> 0).",
    )


def _check_image_size(image_size):
    if isinstance(image_size, numbers.Integral) and not isinstance(image_size, bool):
        size = (int(image_size), int(image_size))
    else:
        try:
            size = tuple(int(s) for s in image_size)
        except TypeError:
            size = ()
    if len(size) != 2 or min(size) < 1:
        raise ValueError(
            f"image_size must be a positive int or a (height, width) pair, got {image_size!r}."
        )
    return size


def _check_test_size(test_size):
    if (
        not isinstance(test_size, numbers.Real)
        or isinstance(test_size, bool)
        or not 0.0 < test_size < 1.0
    ):
        raise ValueError(f"test_size must be a float in (0, 1), got {test_size!r}.")
    return float(test_size)


def per_class_split(y, test_size, rng):
    """Split indices so that each class puts ``round(test_size * n_c)`` samples in test.

    Each class keeps at least one sample on either side. Returns sorted
    ``(train_indices, test_indices)``.
    """
    y = np.asarray(y)
    train, test = [], []
    for label in np.unique(y):
        members = np.flatnonzero(y == label)
        if len(members) < 2:
            raise ValueError(
                f"Class {label!r} has {len(members)} image(s); a train/test split needs at "
                "least 2 per class."
            )
        n_test = int(np.floor(test_size * len(members) + 0.5))
        n_test = min(max(n_test, 1), len(members) - 1)
        shuffled = rng.permutation(members)
        test.append(shuffled[:n_test])
        train.append(shuffled[n_test:])
    return np.sort(np.concatenate(train)), np.sort(np.concatenate(test))


def _to_rgb(image):
    return image.convert("RGB")


def load_caltech101(
    root,
    *,
    image_size=32,
    test_size=0.2,
    download=False,
    n_train=None,
    n_test=None,
    normalize="train",
    random_state=None,
):
    """Load Caltech101 resized to a fixed size, with ``test_size`` of each class as test.

    Reads ``<root>/caltech101/101_ObjectCategories/<class>/image_NNNN.jpg`` with
    :class:`torchvision.datasets.Caltech101` (``target_type='category'``), which drops the
    ``BACKGROUND_Google`` folder and keeps the other 101 folders as classes (``Faces`` and
    ``Faces_easy`` are two classes, as in torchvision). Grayscale images are converted to
    RGB, then every image is resized to ``image_size`` (aspect ratio not kept).

    Parameters
    ----------
    root : str or path-like
        Data folder; the images live in ``<root>/caltech101/101_ObjectCategories``.
    image_size : int or (int, int), default=32
        Output height and width. Memory is ``N * 3 * H * W * 4`` bytes (about 110 MB for
        the 9,144 images at 32x32, 5.5 GB at 224x224).
    test_size : float, default=0.2
        Fraction of each class put in the test set (rounded to the nearest integer, at
        least one image per class on each side), drawn with ``random_state``.
    download : bool, default=False
        Download and extract the official archive into ``<root>/caltech101`` if missing.
    n_train, n_test : int or None, default=None
        After the split, keep a random subset of this many training / test images.
    normalize : {'train'} or (mean, std) or None, default='train'
        As in :func:`load_cifar10`.
    random_state : int, RandomState instance or None, default=None
        Seed of the per-class split and of the subsets. The same seed gives the same split.

    Returns
    -------
    data : sklearn.utils.Bunch
        As in :func:`load_cifar10`, with ``X`` of shape ``(N, 3, H, W)`` and ``classes`` the
        101 folder names in sorted order (label ``i`` is ``classes[i]``).

    Raises
    ------
    FileNotFoundError
        If ``101_ObjectCategories`` is missing and ``download=False``.
    ValueError
        If the folder lacks ``BACKGROUND_Google`` (torchvision requires it) or a class has
        fewer than two images.
    OSError
        If ``download=True`` and the download fails.

    References
    ----------
    .. [1] L. Fei-Fei, R. Fergus and P. Perona, "Learning generative visual models from
       few training examples: an incremental Bayesian approach tested on 101 object
       categories", CVPR Workshop on Generative-Model Based Vision, 2004.
    """
    root = _check_root(root)
    size = _check_image_size(image_size)
    test_size = _check_test_size(test_size)
    rng = check_random_state(random_state)
    folder = os.path.join(root, "caltech101")
    categories_dir = os.path.join(folder, "101_ObjectCategories")
    background = os.path.join(categories_dir, "BACKGROUND_Google")
    how_to = (
        "Pass download=True (command line: --download) to fetch it, or download "
        f"{CALTECH101_URL}, extract it and its inner 101_ObjectCategories.tar.gz so "
        f"that {categories_dir} holds one folder per class."
    )
    if not download and not os.path.isdir(categories_dir):
        # Checked here because torchvision would first create <root>/caltech101.
        raise _missing_files_error("Caltech101", [categories_dir], how_to)
    if os.path.isdir(categories_dir) and not os.path.isdir(background):
        raise ValueError(
            f"{background} is missing. torchvision's Caltech101 expects the archive's "
            "layout, which has this folder (it is dropped, not used as a class); create it "
            "(it may be empty) or re-extract the official archive."
        )
    transform = transforms.Compose(
        [transforms.Lambda(_to_rgb), transforms.Resize(size), transforms.ToTensor()]
    )
    dataset = _open_torchvision(
        lambda: tv_datasets.Caltech101(
            root, target_type="category", transform=transform, download=download
        ),
        name="Caltech101",
        download=download,
        folder=folder,
        url=CALTECH101_URL,
        required=[categories_dir],
        how_to=how_to,
        corrupted="Re-extract the official archive.",
    )

    y = np.asarray(dataset.y, dtype=np.int64)
    train_idx, test_idx = per_class_split(y, test_size, rng)
    train_idx = train_idx[subset_indices(len(train_idx), n_train, rng, name="n_train")]
    test_idx = test_idx[subset_indices(len(test_idx), n_test, rng, name="n_test")]

    def read(indices):
        images = np.empty((len(indices), 3, *size), dtype=np.float32)
        for row, index in enumerate(indices):
            image, _ = dataset[int(index)]
            images[row] = image.numpy() if isinstance(image, torch.Tensor) else image
        return images

    return make_result(
        read(train_idx),
        y[train_idx],
        read(test_idx),
        y[test_idx],
        dataset.categories,
        normalize=normalize,
        description=(
            f"Caltech101 from {categories_dir}, resized to {size[0]}x{size[1]}, "
            f"{test_size:g} of each class as test."
        ),
    )
