import numpy as np
import pytest
from sklearn.datasets import load_digits

from skdynal.datasets import DATASETS, load_dataset, load_digits_split


def test_shapes_dtypes_and_scaling():
    data = load_digits_split(test_size=0.25, random_state=0)
    assert data.X_train.shape == (1347, 64) and data.X_test.shape == (450, 64)
    assert data.X_train.dtype == np.float32 and data.y_train.dtype == np.int64
    assert data.classes == [str(d) for d in range(10)]
    assert data.mean is None and data.std is None
    # Every row is a real digit divided by 16, and every digit is used exactly once.
    raw = load_digits().data
    rows = np.vstack([data.X_train, data.X_test]) * 16
    np.testing.assert_array_equal(np.sort(rows, axis=0), np.sort(raw, axis=0))
    assert data.X_train.min() == 0.0 and data.X_train.max() == 1.0


def test_split_is_stratified_and_seeded():
    y = load_digits().target
    data = load_digits_split(test_size=0.25, random_state=3)
    expected = np.bincount(y) * 0.25
    assert np.all(np.abs(np.bincount(data.y_test, minlength=10) - expected) <= 1)
    again = load_digits_split(test_size=0.25, random_state=3)
    np.testing.assert_array_equal(data.X_train, again.X_train)
    np.testing.assert_array_equal(data.y_test, again.y_test)
    other = load_digits_split(test_size=0.25, random_state=4)
    assert not np.array_equal(data.y_test, other.y_test)


def test_image_variant_is_reshaped_flat_variant():
    flat = load_digits_split(random_state=1)
    image = load_digits_split(image=True, random_state=1)
    assert image.X_train.shape == (1347, 1, 8, 8)
    np.testing.assert_array_equal(image.X_train.reshape(-1, 64), flat.X_train)
    np.testing.assert_array_equal(image.y_test, flat.y_test)


def test_registry():
    assert set(DATASETS) == {
        "digits",
        "cifar10",
        "svhn",
        "caltech101",
        "breast_cancer",
        "three_clust",
        "diverging_sin",
        "fashion_mnist",
    }
    by_name = load_dataset("digits", test_size=100, random_state=0)
    assert by_name.X_test.shape == (100, 64)
    with pytest.raises(ValueError, match="Unknown dataset 'mnist'"):
        load_dataset("mnist")
