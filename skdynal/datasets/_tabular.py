"""A tabular task shipped with scikit-learn: the Wisconsin breast cancer data."""

import numpy as np
from sklearn.datasets import load_breast_cancer
from sklearn.model_selection import train_test_split
from sklearn.utils import Bunch

__all__ = ["load_breast_cancer_split"]


def load_breast_cancer_split(test_size=0.3, *, random_state=None):
    """scikit-learn's breast cancer data, standardised with the training statistics.

    569 samples with 30 real-valued features (cell nucleus measurements), malignant (0)
    or benign (1); it ships inside scikit-learn, so it needs no download. The split is
    stratified; each feature is centred and scaled with the mean and standard deviation of
    the training part only, so no test statistic leaks into the features.

    Parameters
    ----------
    test_size : float or int, default=0.3
        Fraction (float) or number (int) of samples in the test set.
    random_state : int, RandomState instance or None, default=None
        Seed of the stratified split.

    Returns
    -------
    data : sklearn.utils.Bunch
        ``X_train``, ``X_test`` (float32, 30 columns), ``y_train``, ``y_test`` (int64),
        ``classes`` (``['malignant', 'benign']``), ``mean``, ``std`` and ``description``.

    Examples
    --------
    >>> from skdynal.datasets import load_breast_cancer_split
    >>> load_breast_cancer_split(random_state=0).X_train.shape
    (398, 30)
    """
    cancer = load_breast_cancer()
    X_train, X_test, y_train, y_test = train_test_split(
        cancer.data,
        cancer.target,
        test_size=test_size,
        stratify=cancer.target,
        random_state=random_state,
    )
    mean = X_train.mean(axis=0)
    std = X_train.std(axis=0)
    std = np.where(std > 0, std, 1.0)
    return Bunch(
        X_train=((X_train - mean) / std).astype(np.float32),
        y_train=y_train.astype(np.int64),
        X_test=((X_test - mean) / std).astype(np.float32),
        y_test=y_test.astype(np.int64),
        classes=[str(name) for name in cancer.target_names],
        mean=mean.astype(np.float32),
        std=std.astype(np.float32),
        description="scikit-learn breast cancer (Wisconsin diagnostic), standardised with "
        "the training mean and standard deviation.",
    )
