"""Breast cancer and CDALBench's synthetic tasks."""

import numpy as np
import pytest

from skdynal.datasets import (
    DATASETS,
    load_breast_cancer_split,
    load_dataset,
    load_diverging_sin,
    load_three_clust,
)


def _all_rows(data):
    return np.concatenate([data.X_train, data.X_test]), np.concatenate([data.y_train, data.y_test])


def test_three_clust_follows_cdalbench_specification():
    data = load_three_clust(random_state=0)
    assert data.X_train.shape == (480, 2) and data.X_test.shape == (120, 2)
    assert data.X_train.dtype == np.float32 and data.y_train.dtype == np.int64
    # min-max scaled with the training range
    np.testing.assert_allclose(data.X_train.min(axis=0), 0.0, atol=1e-7)
    np.testing.assert_allclose(data.X_train.max(axis=0), 1.0, atol=1e-6)
    X, y = _all_rows(data)
    assert np.bincount(y).tolist() == [300, 300]
    raw = X * data.std + data.mean
    # class 1 (cluster at (0, 0)) and class 0 (cluster at (0, 6)) are far apart; the
    # honeypot at (4, 3) holds both labels in equal numbers
    honeypot = np.linalg.norm(raw - [4.0, 3.0], axis=1) < 1.0
    counts = np.bincount(y[honeypot], minlength=2)
    assert counts.min() > 0.6 * counts.max()
    near_origin = np.linalg.norm(raw - [0.0, 0.0], axis=1) < 1.0
    assert np.mean(y[near_origin] == 1) > 0.95
    near_top = np.linalg.norm(raw - [0.0, 6.0], axis=1) < 1.0
    assert np.mean(y[near_top] == 0) > 0.95


def test_diverging_sin_classes_separate_along_x():
    data = load_diverging_sin(random_state=0)
    assert data.X_train.shape == (1600, 2) and data.X_test.shape == (400, 2)
    X, y = _all_rows(data)
    raw = X * data.std + data.mean
    curve = np.sin(2.0 * raw[:, 0])
    offset = raw[:, 1] - curve
    right = raw[:, 0] > 5
    # beyond x = 5 the classes sit 2.5 above and below the sine, far beyond the noise
    assert np.all(offset[right & (y == 1)] > 0) and np.all(offset[right & (y == 0)] < 0)
    left = raw[:, 0] < 0.5
    assert np.mean(np.abs(offset[left]) < 1.0) > 0.9  # and overlap near x = 0


def test_synthetic_tasks_are_seeded():
    for loader in (load_three_clust, load_diverging_sin):
        a, b, c = loader(random_state=3), loader(random_state=3), loader(random_state=4)
        np.testing.assert_array_equal(a.X_train, b.X_train)
        assert not np.array_equal(a.X_train, c.X_train)


def test_breast_cancer_is_standardised_with_training_statistics_only():
    data = load_breast_cancer_split(random_state=0)
    assert data.X_train.shape == (398, 30) and data.X_test.shape == (171, 30)
    np.testing.assert_allclose(data.X_train.mean(axis=0), 0.0, atol=1e-5)
    np.testing.assert_allclose(data.X_train.std(axis=0), 1.0, atol=1e-4)
    assert abs(float(data.X_test.mean())) > 1e-4  # the test set was not used to scale
    assert data.classes == ["malignant", "benign"]


@pytest.mark.parametrize("name", ["breast_cancer", "three_clust", "diverging_sin"])
def test_registered_by_name(name):
    assert name in DATASETS
    data = load_dataset(name, random_state=0)
    assert set(np.unique(data.y_train)) == {0, 1}
