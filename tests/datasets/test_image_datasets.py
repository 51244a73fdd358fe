import os
import pickle
import urllib.error

import numpy as np
import pytest
import scipy.io

from skdynal._torchvision import import_torchvision
from skdynal.datasets import (
    load_caltech101,
    load_cifar10,
    load_dataset,
    load_svhn,
    write_caltech101_standin,
    write_cifar10_standin,
    write_svhn_standin,
)
from skdynal.datasets.standins import main as standins_main

CALTECH_COUNTS = [5, 6, 7, 8, 20]
# round(0.2 * n) per class, by hand: 1.0, 1.2, 1.4, 1.6, 4.0.
CALTECH_TEST_COUNTS = [1, 1, 1, 2, 4]


@pytest.fixture(scope="module")
def root(tmp_path_factory):
    root = tmp_path_factory.mktemp("data")
    write_cifar10_standin(root, n_train=23, n_test=7, random_state=0)
    write_svhn_standin(root, n_train=30, n_test=12, random_state=1)
    write_caltech101_standin(root, n_classes=5, per_class=CALTECH_COUNTS, random_state=2)
    return root


def _read_cifar_batches(folder, names):
    images, labels = [], []
    for name in names:
        with open(os.path.join(folder, name), "rb") as f:
            entry = pickle.load(f)
        images.append(entry["data"].reshape(-1, 3, 32, 32))
        labels.extend(entry["labels"])
    return np.concatenate(images), np.array(labels)


# ---------------------------------------------------------------- CIFAR-10


def test_cifar10_reads_the_pickled_batches(root):
    data = load_cifar10(root, verify_checksums=False, normalize=None)
    folder = os.path.join(root, "cifar-10-batches-py")
    train_images, train_labels = _read_cifar_batches(
        folder, [f"data_batch_{i}" for i in range(1, 6)]
    )
    test_images, test_labels = _read_cifar_batches(folder, ["test_batch"])
    assert data.X_train.shape == (23, 3, 32, 32) and data.X_test.shape == (7, 3, 32, 32)
    assert data.X_train.dtype == np.float32 and data.y_train.dtype == np.int64
    np.testing.assert_allclose(data.X_train, train_images / 255.0, rtol=0, atol=1e-7)
    np.testing.assert_allclose(data.X_test, test_images / 255.0, rtol=0, atol=1e-7)
    np.testing.assert_array_equal(data.y_train, train_labels)
    np.testing.assert_array_equal(data.y_test, test_labels)
    assert data.classes[:3] == ["airplane", "automobile", "bird"] and len(data.classes) == 10


def test_cifar10_normalises_with_training_statistics(root):
    raw = load_cifar10(root, verify_checksums=False, normalize=None)
    data = load_cifar10(root, verify_checksums=False)
    mean = raw.X_train.astype(np.float64).mean(axis=(0, 2, 3))
    std = raw.X_train.astype(np.float64).std(axis=(0, 2, 3))
    np.testing.assert_allclose(data.mean, mean, rtol=1e-6)
    np.testing.assert_allclose(data.std, std, rtol=1e-6)
    np.testing.assert_allclose(data.X_train.mean(axis=(0, 2, 3)), 0, atol=1e-5)
    np.testing.assert_allclose(data.X_train.std(axis=(0, 2, 3)), 1, atol=1e-5)
    expected_test = (raw.X_test - mean[:, None, None]) / std[:, None, None]
    np.testing.assert_allclose(data.X_test, expected_test, atol=1e-5)

    given = load_cifar10(root, verify_checksums=False, normalize=([0.5] * 3, [0.25] * 3))
    np.testing.assert_allclose(given.X_train, (raw.X_train - 0.5) / 0.25, atol=1e-6)
    with pytest.raises(ValueError, match="one value per channel"):
        load_cifar10(root, verify_checksums=False, normalize=([0.5], [0.25]))
    with pytest.raises(ValueError, match="normalize must be"):
        load_cifar10(root, verify_checksums=False, normalize="test")


def test_cifar10_subsets_are_seeded_rows_of_the_full_split(root):
    full = load_cifar10(root, verify_checksums=False, normalize=None)
    a = load_cifar10(
        root, verify_checksums=False, normalize=None, n_train=9, n_test=3, random_state=5
    )
    b = load_cifar10(
        root, verify_checksums=False, normalize=None, n_train=9, n_test=3, random_state=5
    )
    assert a.X_train.shape == (9, 3, 32, 32) and a.y_test.shape == (3,)
    np.testing.assert_array_equal(a.X_train, b.X_train)
    flat_full = full.X_train.reshape(23, -1)
    for x, y in zip(a.X_train.reshape(9, -1), a.y_train, strict=True):
        match = np.flatnonzero((flat_full == x).all(axis=1))
        assert len(match) == 1 and full.y_train[match[0]] == y
    with pytest.raises(ValueError, match="n_train=24 is larger than the 23"):
        load_cifar10(root, verify_checksums=False, n_train=24)


def test_cifar10_standin_fails_md5_check_with_advice(root):
    with pytest.raises(ValueError, match="verify_checksums=False"):
        load_cifar10(root)


def test_cifar10_missing_files_error_names_paths(tmp_path):
    with pytest.raises(FileNotFoundError) as info:
        load_cifar10(tmp_path)
    message = str(info.value)
    assert os.path.join(str(tmp_path), "cifar-10-batches-py", "data_batch_1") in message
    assert "download=True" in message and "--download" in message
    assert isinstance(info.value.__cause__, RuntimeError)


def test_cifar10_failed_download_is_explained(tmp_path, monkeypatch):
    cifar_module = import_torchvision().datasets.cifar

    def offline(*args, **kwargs):
        raise urllib.error.URLError("no network")

    monkeypatch.setattr(cifar_module, "download_and_extract_archive", offline)
    with pytest.raises(OSError, match=r"Downloading CIFAR-10 into .* failed"):
        load_cifar10(tmp_path, download=True)


# ---------------------------------------------------------------- SVHN


def test_svhn_reads_mat_files_and_maps_label_10_to_0(root):
    data = load_svhn(root, verify_checksums=False, normalize=None)
    mat = scipy.io.loadmat(os.path.join(root, "svhn", "train_32x32.mat"))
    stored = mat["y"].ravel()
    assert set(stored) == set(range(1, 11))
    expected_labels = np.where(stored == 10, 0, stored)
    np.testing.assert_array_equal(data.y_train, expected_labels)
    assert data.y_train.dtype == np.int64 and data.y_train.min() == 0
    expected_images = mat["X"].transpose(3, 2, 0, 1) / 255.0
    np.testing.assert_allclose(data.X_train, expected_images, rtol=0, atol=1e-7)
    assert data.X_test.shape == (12, 3, 32, 32)
    assert data.classes == [str(d) for d in range(10)]


def test_svhn_normalised_and_checksums(root):
    data = load_svhn(root, verify_checksums=False)
    np.testing.assert_allclose(data.X_train.mean(axis=(0, 2, 3)), 0, atol=1e-5)
    np.testing.assert_allclose(data.X_train.std(axis=(0, 2, 3)), 1, atol=1e-5)
    with pytest.raises(ValueError, match="verify_checksums=False"):
        load_svhn(root)


def test_svhn_missing_files(tmp_path):
    with pytest.raises(FileNotFoundError) as info:
        load_svhn(tmp_path)
    message = str(info.value)
    assert os.path.join(str(tmp_path), "svhn", "train_32x32.mat") in message
    assert os.path.join(str(tmp_path), "svhn", "test_32x32.mat") in message
    assert "download=True" in message


# ---------------------------------------------------------------- Caltech101


def test_caltech101_per_class_split(root):
    data = load_caltech101(root, normalize=None, random_state=0)
    assert data.classes == ["Faces", "Faces_easy", "Leopards", "Motorbikes", "accordion"]
    np.testing.assert_array_equal(np.bincount(data.y_test, minlength=5), CALTECH_TEST_COUNTS)
    np.testing.assert_array_equal(
        np.bincount(data.y_train, minlength=5),
        np.subtract(CALTECH_COUNTS, CALTECH_TEST_COUNTS),
    )
    # BACKGROUND_Google's 3 images are not loaded.
    assert len(data.y_train) + len(data.y_test) == sum(CALTECH_COUNTS)
    assert data.X_train.shape[1:] == (3, 32, 32) and data.X_train.dtype == np.float32
    assert 0.0 <= data.X_train.min() and data.X_train.max() <= 1.0


def test_caltech101_split_is_seeded(root):
    a = load_caltech101(root, image_size=8, random_state=7)
    b = load_caltech101(root, image_size=8, random_state=7)
    np.testing.assert_array_equal(a.X_test, b.X_test)
    np.testing.assert_array_equal(a.y_train, b.y_train)
    splits = {
        load_caltech101(root, image_size=8, normalize=None, random_state=seed).X_test.tobytes()
        for seed in range(4)
    }
    assert len(splits) > 1


def test_caltech101_grayscale_becomes_rgb_and_size_is_fixed(root):
    data = load_caltech101(root, image_size=(16, 24), normalize=None, random_state=0)
    assert data.X_train.shape[1:] == (3, 16, 24)
    images = np.concatenate([data.X_train, data.X_test])
    gray = [(img[0] == img[1]).all() and (img[1] == img[2]).all() for img in images]
    # The writer makes exactly one grayscale image (Faces/image_0001.jpg).
    assert sum(gray) == 1
    labels = np.concatenate([data.y_train, data.y_test])
    assert labels[np.flatnonzero(gray)[0]] == 0


def test_caltech101_normalisation_and_subsets(root):
    data = load_caltech101(root, n_train=10, n_test=4, random_state=0)
    assert data.X_train.shape == (10, 3, 32, 32) and data.X_test.shape == (4, 3, 32, 32)
    np.testing.assert_allclose(data.X_train.mean(axis=(0, 2, 3)), 0, atol=1e-5)
    np.testing.assert_allclose(data.X_train.std(axis=(0, 2, 3)), 1, atol=1e-5)


def test_caltech101_bad_inputs(root, tmp_path):
    with pytest.raises(ValueError, match="test_size"):
        load_caltech101(root, test_size=1.5)
    with pytest.raises(ValueError, match="image_size"):
        load_caltech101(root, image_size=0)
    with pytest.raises(FileNotFoundError) as info:
        load_caltech101(tmp_path / "empty")
    assert os.path.join(str(tmp_path / "empty"), "caltech101", "101_ObjectCategories") in str(
        info.value
    )
    assert not (tmp_path / "empty").exists()  # the failed call created no folders

    os.makedirs(tmp_path / "nobg" / "caltech101" / "101_ObjectCategories" / "ant")
    with pytest.raises(ValueError, match="BACKGROUND_Google"):
        load_caltech101(tmp_path / "nobg")


# ---------------------------------------------------------------- stand-in command line


def test_standins_command_line(tmp_path, capsys):
    status = standins_main(
        [
            "--root",
            str(tmp_path),
            "--n-train",
            "10",
            "--n-test",
            "5",
            "--caltech-classes",
            "3",
            "--caltech-per-class",
            "4",
        ]
    )
    assert status == 0
    assert "cifar-10-batches-py" in capsys.readouterr().out
    cifar = load_dataset("cifar10", root=tmp_path, verify_checksums=False)
    svhn = load_dataset("svhn", root=tmp_path, verify_checksums=False)
    caltech = load_dataset("caltech101", root=tmp_path, random_state=0)
    assert cifar.X_train.shape == (10, 3, 32, 32) and svhn.X_test.shape == (5, 3, 32, 32)
    assert len(caltech.classes) == 3 and len(caltech.y_test) == 3
    fashion = load_dataset("fashion_mnist", root=tmp_path)
    assert fashion.X_train.shape == (10, 1, 28, 28) and fashion.X_test.shape == (5, 1, 28, 28)
    assert os.path.join("FashionMNIST", "raw") in fashion.description


def test_download_flag_does_not_refetch_present_standins(root, monkeypatch):
    tv_datasets = import_torchvision().datasets

    def no_network(*args, **kwargs):
        raise AssertionError("tried to download although the files are present")

    monkeypatch.setattr(tv_datasets.cifar, "download_and_extract_archive", no_network)
    monkeypatch.setattr(tv_datasets.svhn, "download_url", no_network)
    assert load_cifar10(root, download=True, verify_checksums=False).X_train.shape[0] == 23
    assert load_svhn(root, download=True, verify_checksums=False).X_train.shape[0] == 30
