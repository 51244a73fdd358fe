"""Tiny stand-in files in the real on-disk formats of CIFAR-10, SVHN, Caltech101, Fashion-MNIST.

No machine that runs the tests can download the real datasets. These writers produce a
few images in exactly the layout torchvision reads, so the real loading code can be
exercised end to end. The images are synthetic: each class has its own mean colour plus
noise, so a model can learn something, but nothing measured on them says anything about
the real datasets. CIFAR-10 and SVHN stand-ins fail torchvision's md5 checks by design;
load them with ``verify_checksums=False``.
"""

import gzip as _gzip
import os
import pickle

import numpy as np
import scipy.io
from PIL import Image
from sklearn.utils import check_random_state

from .._validation import check_positive_int

__all__ = [
    "write_caltech101_standin",
    "write_cifar10_standin",
    "write_fashion_mnist_standin",
    "write_svhn_standin",
]

CIFAR10_CLASSES = [
    "airplane",
    "automobile",
    "bird",
    "cat",
    "deer",
    "dog",
    "frog",
    "horse",
    "ship",
    "truck",
]
# Real Caltech101 folder names, including the two face classes that torchvision keeps.
CALTECH101_SAMPLE_CLASSES = [
    "Faces",
    "Faces_easy",
    "Leopards",
    "Motorbikes",
    "accordion",
    "airplanes",
    "anchor",
    "ant",
    "barrel",
    "bass",
]


def _balanced_labels(n, n_classes, rng):
    return rng.permutation(np.arange(n) % n_classes)


def _class_images(labels, n_classes, shape_chw, rng):
    """uint8 images ``(N, C, H, W)``: a per-class mean colour plus Gaussian noise."""
    colours = rng.uniform(40.0, 215.0, size=(n_classes, shape_chw[0], 1, 1))
    noise = rng.normal(0.0, 30.0, size=(len(labels), *shape_chw))
    return np.clip(colours[labels] + noise, 0, 255).astype(np.uint8)


def _prepare_split_writer(root, subfolder, n_train, n_test, random_state, *, min_train=1):
    """A writer's checked sizes, random state and created folder (``root`` or a subfolder)."""
    n_train = check_positive_int(n_train, "n_train", minimum=min_train)
    n_test = check_positive_int(n_test, "n_test")
    rng = check_random_state(random_state)
    folder = os.fspath(root) if subfolder is None else os.path.join(os.fspath(root), subfolder)
    os.makedirs(folder, exist_ok=True)
    return n_train, n_test, rng, folder


def write_cifar10_standin(root, n_train=50, n_test=10, random_state=0):
    """Write a tiny CIFAR-10 in the official python-pickle layout.

    Creates ``<root>/cifar-10-batches-py/`` with ``data_batch_1`` .. ``data_batch_5``
    (``n_train`` images spread over the five batches), ``test_batch`` and
    ``batches.meta``. Each batch is a pickled dict with the official keys
    (``batch_label``, ``labels``, ``data`` as a ``(n, 3072)`` uint8 array in
    channel-major order, ``filenames``); the meta dict has ``label_names``,
    ``num_cases_per_batch`` and ``num_vis``. Labels are balanced over the ten classes.

    Parameters
    ----------
    root : str or path-like
        Data folder (the value later passed to :func:`skdynal.datasets.load_cifar10`).
    n_train : int, default=50
        Training images (at least 5: one batch file each needs at least one).
    n_test : int, default=10
        Test images.
    random_state : int, RandomState instance or None, default=0
        Seed of the synthetic images and label order.

    Returns
    -------
    folder : str
        The ``cifar-10-batches-py`` folder written.
    """
    n_train, n_test, rng, folder = _prepare_split_writer(
        root, "cifar-10-batches-py", n_train, n_test, random_state, min_train=5
    )

    def dump(filename, batch_label, n):
        labels = _balanced_labels(n, 10, rng)
        images = _class_images(labels, 10, (3, 32, 32), rng)
        entry = {
            "batch_label": batch_label,
            "labels": [int(label) for label in labels],
            "data": images.reshape(n, 3 * 32 * 32),
            "filenames": [f"standin_{filename}_{i:05d}.png" for i in range(n)],
        }
        with open(os.path.join(folder, filename), "wb") as f:
            pickle.dump(entry, f, protocol=2)

    for i, part in enumerate(np.array_split(np.arange(n_train), 5), start=1):
        dump(f"data_batch_{i}", f"training batch {i} of 5", len(part))
    dump("test_batch", "testing batch 1 of 1", n_test)
    meta = {
        "num_cases_per_batch": int(np.ceil(n_train / 5)),
        "label_names": list(CIFAR10_CLASSES),
        "num_vis": 3 * 32 * 32,
    }
    with open(os.path.join(folder, "batches.meta"), "wb") as f:
        pickle.dump(meta, f, protocol=2)
    return folder


def write_svhn_standin(root, n_train=50, n_test=20, random_state=0):
    """Write a tiny SVHN in the official cropped-digits ``.mat`` format.

    Creates ``<root>/svhn/train_32x32.mat`` and ``test_32x32.mat`` (MATLAB v5, as
    :func:`scipy.io.loadmat` reads the official ones), each with ``X`` of shape
    ``(32, 32, 3, N)`` uint8 and ``y`` of shape ``(N, 1)`` uint8 holding ``1..10``, where,
    as in the official files, 10 stands for the digit 0.

    Parameters
    ----------
    root : str or path-like
        Data folder (the value later passed to :func:`skdynal.datasets.load_svhn`).
    n_train : int, default=50
        Training images.
    n_test : int, default=20
        Test images.
    random_state : int, RandomState instance or None, default=0
        Seed of the synthetic images and label order.

    Returns
    -------
    folder : str
        The ``svhn`` folder written.
    """
    n_train, n_test, rng, folder = _prepare_split_writer(
        root, "svhn", n_train, n_test, random_state
    )
    for filename, n in (("train_32x32.mat", n_train), ("test_32x32.mat", n_test)):
        digits = _balanced_labels(n, 10, rng)
        images = _class_images(digits, 10, (3, 32, 32), rng)
        stored_labels = np.where(digits == 0, 10, digits).astype(np.uint8).reshape(n, 1)
        scipy.io.savemat(
            os.path.join(folder, filename),
            {"X": np.ascontiguousarray(images.transpose(2, 3, 1, 0)), "y": stored_labels},
        )
    return folder


def write_caltech101_standin(root, n_classes=5, per_class=5, n_background=3, random_state=0):
    """Write a tiny Caltech101 in the layout of the extracted official archive.

    Creates ``<root>/caltech101/101_ObjectCategories/<class>/image_0001.jpg`` ... with
    consecutive numbers per class (torchvision counts the files and opens
    ``image_{i:04d}.jpg`` for ``i = 1..count``) and a ``BACKGROUND_Google`` folder, which
    torchvision requires and drops. Class names are real Caltech101 folder names, starting
    with ``Faces`` and ``Faces_easy``. Images are JPEGs of random sizes between 20 and 80
    pixels per side; the first image of the first class is grayscale (the real data has
    some). The annotation files (only for ``target_type='annotation'``) are not written.

    Parameters
    ----------
    root : str or path-like
        Data folder (the value later passed to :func:`skdynal.datasets.load_caltech101`).
    n_classes : int, default=5
        Number of classes, at most 10.
    per_class : int or sequence of int, default=5
        Images per class, one value for all or one per class (at least 2 each).
    n_background : int, default=3
        Images in ``BACKGROUND_Google``.
    random_state : int, RandomState instance or None, default=0
        Seed of the synthetic images and their sizes.

    Returns
    -------
    folder : str
        The ``101_ObjectCategories`` folder written.
    """
    n_classes = check_positive_int(n_classes, "n_classes")
    if n_classes > len(CALTECH101_SAMPLE_CLASSES):
        raise ValueError(
            f"n_classes must be at most {len(CALTECH101_SAMPLE_CLASSES)}, got {n_classes}."
        )
    if isinstance(per_class, (int, np.integer)):
        counts = [per_class] * n_classes
    else:
        counts = list(per_class)
        if len(counts) != n_classes:
            raise ValueError(f"per_class has {len(counts)} entries but n_classes is {n_classes}.")
    counts = [check_positive_int(c, "per_class", minimum=2) for c in counts]
    n_background = check_positive_int(n_background, "n_background", minimum=0)
    rng = check_random_state(random_state)
    folder = os.path.join(os.fspath(root), "caltech101", "101_ObjectCategories")
    colours = rng.uniform(40.0, 215.0, size=(n_classes + 1, 3))
    classes = [*CALTECH101_SAMPLE_CLASSES[:n_classes], "BACKGROUND_Google"]
    for label, (name, count) in enumerate(zip(classes, [*counts, n_background], strict=True)):
        class_dir = os.path.join(folder, name)
        os.makedirs(class_dir, exist_ok=True)
        for i in range(1, count + 1):
            height, width = rng.randint(20, 81, size=2)
            pixels = colours[label] + rng.normal(0.0, 30.0, size=(height, width, 3))
            image = Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8), mode="RGB")
            if label == 0 and i == 1:
                image = image.convert("L")
            image.save(os.path.join(class_dir, f"image_{i:04d}.jpg"), format="JPEG")
    return folder


def _idx_bytes(array):
    """IDX encoding of a uint8 array: 0, 0, type 0x08, ndim, big-endian dims, values."""
    array = np.ascontiguousarray(array, dtype=np.uint8)
    header = bytes([0, 0, 0x08, array.ndim]) + np.asarray(array.shape, dtype=">u4").tobytes()
    return header + array.tobytes()


def write_fashion_mnist_standin(root, n_train=60, n_test=20, gzip=True, random_state=0):
    """Write a tiny Fashion-MNIST as the four standard IDX files.

    Creates ``train-images-idx3-ubyte``, ``train-labels-idx1-ubyte``,
    ``t10k-images-idx3-ubyte`` and ``t10k-labels-idx1-ubyte`` (with ``.gz`` when ``gzip``)
    directly in ``root``: images as IDX type ``0x08`` (unsigned byte) of shape
    ``(N, 28, 28)``, labels of shape ``(N,)`` in ``0..9``, balanced over the classes. Each
    class has its own grey level (the same in train and test) plus noise, so a model can
    learn to tell them apart. To get torchvision's layout, pass ``<data>/FashionMNIST/raw``
    as ``root``.

    Parameters
    ----------
    root : str or path-like
        Folder to write the four files into (created if missing).
    n_train : int, default=60
        Training images.
    n_test : int, default=20
        Test images.
    gzip : bool, default=True
        Write gzip-compressed ``.gz`` files (as distributed) instead of plain IDX files.
    random_state : int, RandomState instance or None, default=0
        Seed of the synthetic images and label order.

    Returns
    -------
    folder : str
        The folder written.
    """
    n_train, n_test, rng, folder = _prepare_split_writer(root, None, n_train, n_test, random_state)
    # One grey level per class, shared by the train and test files.
    levels = rng.uniform(40.0, 215.0, size=(10, 1, 1))
    for prefix, n in (("train", n_train), ("t10k", n_test)):
        labels = _balanced_labels(n, 10, rng)
        noise = rng.normal(0.0, 30.0, size=(n, 28, 28))
        images = np.clip(levels[labels] + noise, 0, 255).astype(np.uint8)
        for kind, array in (("images-idx3", images), ("labels-idx1", labels)):
            name = os.path.join(folder, f"{prefix}-{kind}-ubyte")
            payload = _idx_bytes(array)
            if gzip:
                # mtime=0: the same seed writes byte-identical files.
                payload, name = _gzip.compress(payload, mtime=0), name + ".gz"
            with open(name, "wb") as f:
                f.write(payload)
    return folder
