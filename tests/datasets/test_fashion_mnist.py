import gzip
import os
import shutil
import struct
import types

import numpy as np
import pytest

import skdynal._torchvision
from skdynal._torchvision import import_torchvision
from skdynal.datasets import (
    DATASETS,
    _fashion_mnist,
    load_dataset,
    load_fashion_mnist,
    write_fashion_mnist_standin,
)
from skdynal.datasets._common import channel_stats
from skdynal.datasets._fashion_mnist import (
    DEBIAN_FASHION_MNIST_DIR,
    FASHION_MNIST_CLASSES,
    FASHION_MNIST_FILES,
    read_idx,
)
from skdynal.experiments import load_experiment_data

N_TRAIN, N_TEST = 40, 15
NAMES = list(FASHION_MNIST_FILES.values())


@pytest.fixture(scope="module")
def gz_root(tmp_path_factory):
    root = tmp_path_factory.mktemp("fmnist_gz")
    write_fashion_mnist_standin(root, n_train=N_TRAIN, n_test=N_TEST, gzip=True, random_state=3)
    return root


@pytest.fixture(scope="module")
def plain_root(tmp_path_factory):
    root = tmp_path_factory.mktemp("fmnist_plain")
    write_fashion_mnist_standin(root, n_train=N_TRAIN, n_test=N_TEST, gzip=False, random_state=3)
    return root


@pytest.fixture
def copy_of(tmp_path):
    def copy(root):
        target = tmp_path / "copy"
        shutil.copytree(root, target)
        return target

    return copy


def _torchvision_reads(folder):
    """The four plain files read by torchvision's own IDX reader (an independent parser)."""
    mnist = import_torchvision().datasets.mnist
    return {
        key: mnist.read_image_file(os.path.join(folder, name)).numpy()
        if "images" in key
        else mnist.read_label_file(os.path.join(folder, name)).numpy()
        for key, name in FASHION_MNIST_FILES.items()
    }


# ------------------------------------------------------------------------ IDX parsing


def test_read_idx_parses_header_and_big_endian_values(tmp_path):
    values = np.array([[1, -2, 300], [-40000 // 2, 7, 32767]], dtype=np.int16)
    path = tmp_path / "values.idx"
    # Type 0x0B (signed 16-bit), 2 dimensions, big-endian dims and values.
    path.write_bytes(
        bytes([0, 0, 0x0B, 2]) + struct.pack(">II", 2, 3) + values.astype(">i2").tobytes()
    )
    out = read_idx(path)
    assert out.shape == (2, 3) and out.dtype == np.int16
    np.testing.assert_array_equal(out, values)
    gz_path = tmp_path / "values.idx.gz"
    gz_path.write_bytes(gzip.compress(path.read_bytes()))
    np.testing.assert_array_equal(read_idx(gz_path), values)


def test_standin_files_are_real_idx_as_torchvision_reads_them(plain_root, gz_root):
    reference = _torchvision_reads(plain_root)
    assert reference["train_images"].shape == (N_TRAIN, 28, 28)
    assert reference["test_labels"].shape == (N_TEST,)
    # Balanced labels: 40 train images over 10 classes.
    np.testing.assert_array_equal(np.bincount(reference["train_labels"]), [4] * 10)
    for key, name in FASHION_MNIST_FILES.items():
        np.testing.assert_array_equal(read_idx(plain_root / name), reference[key])
        np.testing.assert_array_equal(read_idx(gz_root / f"{name}.gz"), reference[key])


# ----------------------------------------------------------------------------- loader


def test_loader_returns_the_files_pixels_scaled_to_unit_interval(plain_root):
    reference = _torchvision_reads(plain_root)
    data = load_fashion_mnist(plain_root, normalize=None)
    assert data.X_train.shape == (N_TRAIN, 1, 28, 28) and data.X_test.shape == (N_TEST, 1, 28, 28)
    assert data.X_train.dtype == np.float32 and data.X_test.dtype == np.float32
    assert data.y_train.dtype == np.int64 and data.y_test.dtype == np.int64
    assert data.X_train.flags.c_contiguous
    np.testing.assert_allclose(data.X_train[:, 0], reference["train_images"] / 255.0, atol=1e-7)
    np.testing.assert_allclose(data.X_test[:, 0], reference["test_images"] / 255.0, atol=1e-7)
    np.testing.assert_array_equal(data.y_train, reference["train_labels"])
    np.testing.assert_array_equal(data.y_test, reference["test_labels"])
    assert data.classes == FASHION_MNIST_CLASSES and len(data.classes) == 10
    assert data.classes[0] == "T-shirt/top" and data.classes[9] == "Ankle boot"
    assert data.mean is None and data.std is None
    assert str(plain_root) in data.description


def test_gzipped_and_plain_files_give_the_same_data(gz_root, plain_root):
    gz, plain = load_fashion_mnist(gz_root), load_fashion_mnist(plain_root)
    for key in ("X_train", "y_train", "X_test", "y_test", "mean", "std"):
        np.testing.assert_array_equal(gz[key], plain[key])


def test_train_normalisation_uses_training_statistics_only(gz_root):
    raw = load_fashion_mnist(gz_root, normalize=None)
    data = load_fashion_mnist(gz_root)
    mean, std = channel_stats(raw.X_train)
    assert data.mean.dtype == np.float32 and data.mean.shape == (1,)
    np.testing.assert_allclose(data.mean, mean, rtol=1e-6)
    np.testing.assert_allclose(data.std, std, rtol=1e-6)
    np.testing.assert_allclose(
        data.X_train, (raw.X_train - data.mean[0]) / data.std[0], rtol=1e-6, atol=1e-6
    )
    np.testing.assert_allclose(
        data.X_test, (raw.X_test - data.mean[0]) / data.std[0], rtol=1e-6, atol=1e-6
    )
    assert abs(float(data.X_train.mean())) < 1e-5
    assert abs(float(data.X_train.std()) - 1.0) < 1e-5
    # The test set was not used: its own statistics differ from the training ones.
    assert abs(float(raw.X_test.mean()) - mean[0]) > 1e-4


def test_given_mean_and_std_are_applied(gz_root):
    raw = load_fashion_mnist(gz_root, normalize=None)
    data = load_fashion_mnist(gz_root, normalize=(0.25, 0.5))
    np.testing.assert_allclose(data.X_test, (raw.X_test - 0.25) / 0.5, atol=1e-6)
    np.testing.assert_array_equal(data.mean, np.float32([0.25]))
    with pytest.raises(ValueError, match="one value per channel"):
        load_fashion_mnist(gz_root, normalize=([0.1, 0.2], [1.0, 1.0]))
    with pytest.raises(ValueError, match="normalize must be"):
        load_fashion_mnist(gz_root, normalize="test")


def test_torchvision_layout_is_found(gz_root, tmp_path):
    raw = tmp_path / "FashionMNIST" / "raw"
    shutil.copytree(gz_root, raw)
    data = load_fashion_mnist(tmp_path)
    np.testing.assert_array_equal(data.X_train, load_fashion_mnist(gz_root).X_train)
    assert str(raw) in data.description


def test_root_none_reads_the_debian_folder(gz_root, monkeypatch):
    assert DEBIAN_FASHION_MNIST_DIR == "/usr/share/datasets/fashion-mnist"
    monkeypatch.setattr(_fashion_mnist, "DEBIAN_FASHION_MNIST_DIR", str(gz_root))
    data = load_fashion_mnist()
    np.testing.assert_array_equal(data.y_test, load_fashion_mnist(gz_root).y_test)


def test_random_subsets(gz_root):
    full = load_fashion_mnist(gz_root, normalize=None)
    sub = load_fashion_mnist(gz_root, n_train=12, n_test=5, normalize=None, random_state=1)
    assert sub.X_train.shape == (12, 1, 28, 28) and sub.y_test.shape == (5,)
    # Every kept image is one of the full set's, with its own label, in file order.
    rows = [int(np.flatnonzero((full.X_train == x).all(axis=(1, 2, 3)))[0]) for x in sub.X_train]
    assert rows == sorted(rows) and len(set(rows)) == 12
    np.testing.assert_array_equal(full.y_train[rows], sub.y_train)
    again = load_fashion_mnist(gz_root, n_train=12, n_test=5, normalize=None, random_state=1)
    np.testing.assert_array_equal(again.X_train, sub.X_train)
    other = load_fashion_mnist(gz_root, n_train=12, n_test=5, normalize=None, random_state=2)
    assert not np.array_equal(other.X_train, sub.X_train)
    # Normalisation statistics are those of the returned subset.
    normalised = load_fashion_mnist(gz_root, n_train=12, random_state=1)
    np.testing.assert_allclose(normalised.mean, channel_stats(sub.X_train)[0], rtol=1e-6)
    with pytest.raises(ValueError, match="n_train=41 is larger than the 40"):
        load_fashion_mnist(gz_root, n_train=41)
    with pytest.raises(ValueError, match="n_test must be a positive integer"):
        load_fashion_mnist(gz_root, n_test=0)


# --------------------------------------------------------------------- clear errors


def test_missing_file_says_how_to_get_it(gz_root, copy_of):
    root = copy_of(gz_root)
    os.remove(root / "t10k-labels-idx1-ubyte.gz")
    with pytest.raises(FileNotFoundError) as info:
        load_fashion_mnist(root)
    message = str(info.value)
    assert f"Fashion-MNIST in {root} is incomplete: t10k-labels-idx1-ubyte[.gz] missing" in message
    # only the missing file is named as missing
    assert "found train-images-idx3-ubyte, train-labels-idx1-ubyte, t10k-images" in message
    assert os.path.join(str(root), "FashionMNIST", "raw") in message
    assert "download=True" in message and "apt-get install dataset-fashion-mnist" in message


def test_an_images_file_with_zero_images_is_named(gz_root, copy_of):
    import gzip as gz

    root = copy_of(gz_root)
    path = root / "train-images-idx3-ubyte.gz"
    with gz.open(path, "wb") as f:  # a valid IDX header for 0 images of 28x28
        f.write(struct.pack(">BBBBIII", 0, 0, 8, 3, 0, 28, 28))
    with pytest.raises(ValueError, match="holds 0 images") as info:
        load_fashion_mnist(root)
    assert str(path) in str(info.value)


def test_missing_debian_files_name_the_package(tmp_path, monkeypatch):
    monkeypatch.setattr(_fashion_mnist, "DEBIAN_FASHION_MNIST_DIR", str(tmp_path / "absent"))
    with pytest.raises(FileNotFoundError, match="apt-get install dataset-fashion-mnist") as info:
        load_fashion_mnist()
    assert "dpkg -L dataset-fashion-mnist" in str(info.value)
    with pytest.raises(ValueError, match="download=True needs a root"):
        load_fashion_mnist(download=True)


def _expect_error_naming(root, name, match):
    with pytest.raises(ValueError, match=match) as info:
        load_fashion_mnist(root)
    assert str(root / name) in str(info.value)


def test_truncated_files_are_reported_by_name(gz_root, plain_root, copy_of, tmp_path):
    root = copy_of(plain_root)
    name = "train-images-idx3-ubyte"
    path = root / name
    path.write_bytes(path.read_bytes()[:-100])
    _expect_error_naming(root, name, "is truncated")
    path.write_bytes(path.read_bytes()[:10])
    _expect_error_naming(root, name, "ends inside its IDX header")

    gz_copy = tmp_path / "gz"
    shutil.copytree(gz_root, gz_copy)
    gz_path = gz_copy / "t10k-images-idx3-ubyte.gz"
    gz_path.write_bytes(gz_path.read_bytes()[:-200])
    _expect_error_naming(gz_copy, "t10k-images-idx3-ubyte.gz", "not a valid gzip file")


def test_corrupt_files_are_reported_by_name(plain_root, copy_of):
    root = copy_of(plain_root)
    name = "train-labels-idx1-ubyte"
    good = (root / name).read_bytes()
    (root / name).write_bytes(b"\x08\x03" + good[2:])
    _expect_error_naming(root, name, "magic number is 0803")
    (root / name).write_bytes(good + b"\x00")
    _expect_error_naming(root, name, "longer than its header says")
    # A valid IDX file of the wrong kind: images where labels belong.
    (root / name).write_bytes((root / "t10k-images-idx3-ubyte").read_bytes())
    _expect_error_naming(root, name, r"labels are uint8 of shape \(N,\)")
    # Right format, wrong count, then a label outside 0-9.
    labels = np.frombuffer(good, dtype=np.uint8, offset=8)
    (root / name).write_bytes(bytes([0, 0, 8, 1]) + struct.pack(">I", 39) + labels[:39].tobytes())
    _expect_error_naming(root, name, "has 39 labels but its images file has 40")
    bad = labels.copy()
    bad[3] = 10
    (root / name).write_bytes(good[:8] + bad.tobytes())
    _expect_error_naming(root, name, "holds label 10")


# -------------------------------------------------------------------------- download


def _fake_torchvision(factory):
    return types.SimpleNamespace(datasets=types.SimpleNamespace(FashionMNIST=factory))


def test_download_goes_through_torchvision_fashion_mnist(tmp_path, monkeypatch):
    calls = []

    def fake_fashion_mnist(root, train=True, download=False):
        calls.append((root, train, download))
        write_fashion_mnist_standin(
            os.path.join(root, "FashionMNIST", "raw"), n_train=20, n_test=10
        )

    monkeypatch.setattr(
        skdynal._torchvision, "import_torchvision", lambda: _fake_torchvision(fake_fashion_mnist)
    )
    data = load_fashion_mnist(tmp_path, download=True)
    assert calls == [(str(tmp_path), True, True)]
    assert data.X_train.shape == (20, 1, 28, 28) and data.X_test.shape == (10, 1, 28, 28)
    # Files present: no second download.
    load_fashion_mnist(tmp_path, download=True)
    assert len(calls) == 1


def test_failed_download_raises_oserror(tmp_path, monkeypatch):
    def offline(root, train=True, download=False):
        raise RuntimeError("Error downloading train-images-idx3-ubyte.gz")

    monkeypatch.setattr(
        skdynal._torchvision, "import_torchvision", lambda: _fake_torchvision(offline)
    )
    with pytest.raises(OSError, match=r"Downloading Fashion-MNIST into .*failed.*Error downl"):
        load_fashion_mnist(tmp_path, download=True)


# ------------------------------------------------------------------ registry, runner


def test_registry_and_experiment_data(gz_root):
    assert DATASETS["fashion_mnist"] is load_fashion_mnist
    assert "fashion-mnist" not in DATASETS
    by_name = load_dataset("fashion_mnist", root=gz_root, n_train=10)
    alias = load_dataset("fashion-mnist", root=gz_root, n_train=10)
    np.testing.assert_array_equal(by_name.X_train, alias.X_train)
    images = load_experiment_data("fashion_mnist", "lenet", data_dir=gz_root, n_test=7)
    flat = load_experiment_data("fashion-mnist", "mlp", data_dir=gz_root, n_test=7)
    assert images.X_train.shape == (N_TRAIN, 1, 28, 28) and images.X_test.shape == (7, 1, 28, 28)
    assert flat.X_train.shape == (N_TRAIN, 784) and flat.X_test.shape == (7, 784)
    np.testing.assert_array_equal(flat.X_train, images.X_train.reshape(N_TRAIN, 784))
    np.testing.assert_array_equal(flat.y_test, images.y_test)


# ------------------------------------------------------------------- the real files

REAL = os.path.isfile(os.path.join(DEBIAN_FASHION_MNIST_DIR, "train-images-idx3-ubyte.gz"))
needs_real = pytest.mark.skipif(
    not REAL,
    reason=f"real Fashion-MNIST files not in {DEBIAN_FASHION_MNIST_DIR}: "
    "sudo apt-get install dataset-fashion-mnist",
)


@pytest.fixture(scope="module")
def real():
    return load_fashion_mnist()


@needs_real
def test_real_fashion_mnist_split_shapes_and_balance(real):
    assert real.X_train.shape == (60_000, 1, 28, 28) and real.X_test.shape == (10_000, 1, 28, 28)
    assert real.X_train.dtype == np.float32 and real.y_train.dtype == np.int64
    assert real.y_train.min() == 0 and real.y_train.max() == 9
    assert real.y_test.min() == 0 and real.y_test.max() == 9
    np.testing.assert_array_equal(np.bincount(real.y_train), [6000] * 10)
    np.testing.assert_array_equal(np.bincount(real.y_test), [1000] * 10)
    # Published pixel statistics of the training set (in [0, 1]): mean 0.2860, std 0.3530.
    np.testing.assert_allclose(real.mean, [0.2860], atol=1e-4)
    np.testing.assert_allclose(real.std, [0.3530], atol=1e-4)
    assert abs(float(real.X_train.mean())) < 1e-4 and np.isfinite(real.X_test).all()
    assert real.classes == FASHION_MNIST_CLASSES


@needs_real
def test_real_fashion_mnist_subset_for_the_lenet_runner():
    data = load_experiment_data("fashion_mnist", "lenet", n_train=500, n_test=200, random_state=0)
    assert data.X_train.shape == (500, 1, 28, 28) and data.X_test.shape == (200, 1, 28, 28)
    assert len(np.unique(data.y_train)) == 10


def test_runner_runs_one_lenet_round_on_standins(gz_root):
    from skdynal.experiments import run_experiment

    data = load_experiment_data("fashion_mnist", "lenet", data_dir=gz_root)
    results = run_experiment(
        data,
        model="lenet",
        strategies=["dynamical", "random"],
        initial=10,
        query=10,
        rounds=1,
        seeds=[0],
        epochs=2,
        batch_size=8,
        dataset="fashion_mnist",
        progress=False,
        plot=False,
    )
    final = {(r["strategy"], r["n_labels"]) for r in results.rows if r["round"] == 1}
    assert final == {("dynamical", 20), ("random", 20)}
    assert all(0.0 <= r["test_accuracy"] <= 1.0 for r in results.rows)
    assert all(r["model"] == "lenet" for r in results.rows)
