"""scikit-learn's handwritten digits as a seeded, stratified train/test split."""

import numpy as np
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split
from sklearn.utils import Bunch

__all__ = ["load_digits_split"]


def load_digits_split(test_size=0.25, *, image=False, random_state=None):
    """Load scikit-learn's 8x8 digits, scaled to ``[0, 1]``, split into train and test.

    The 1,797 images ship inside scikit-learn, so this needs no download. Pixel values
    (integers 0-16) are divided by 16; no statistics of the data are used, so the test set
    cannot leak into the scaling.

    Parameters
    ----------
    test_size : float or int, default=0.25
        Fraction (float in ``(0, 1)``) or number (int) of samples in the test set.
    image : bool, default=False
        If False, ``X`` has shape ``(N, 64)`` (for :class:`skdynal.models.MLP`); if True,
        ``(N, 1, 8, 8)`` (for :class:`skdynal.models.CNN` with ``in_channels=1``).
    random_state : int, RandomState instance or None, default=None
        Seed of the stratified split. The same seed gives the same split.

    Returns
    -------
    data : sklearn.utils.Bunch
        ``X_train``, ``X_test`` (float32), ``y_train``, ``y_test`` (int64, 0-9),
        ``classes`` (``['0', ..., '9']``), ``mean`` and ``std`` (None: no normalisation)
        and ``description``.

    Examples
    --------
    >>> from skdynal.datasets import load_digits_split
    >>> data = load_digits_split(test_size=0.25, random_state=0)
    >>> data.X_train.shape, data.X_train.dtype, data.y_train.dtype
    ((1347, 64), dtype('float32'), dtype('int64'))
    >>> load_digits_split(image=True, random_state=0).X_test.shape
    (450, 1, 8, 8)
    """
    digits = load_digits()
    X = (digits.data / 16.0).astype(np.float32)
    y = digits.target.astype(np.int64)
    X_train, X_test, y_train, y_test = train_test_split(
        X, y, test_size=test_size, stratify=y, random_state=random_state
    )
    if image:
        X_train = X_train.reshape(-1, 1, 8, 8)
        X_test = X_test.reshape(-1, 1, 8, 8)
    return Bunch(
        X_train=np.ascontiguousarray(X_train),
        y_train=y_train,
        X_test=np.ascontiguousarray(X_test),
        y_test=y_test,
        classes=[str(c) for c in digits.target_names],
        mean=None,
        std=None,
        description="scikit-learn digits (UCI optical recognition of handwritten digits), "
        "pixels / 16.",
    )
