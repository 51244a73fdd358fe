"""The synthetic tasks of CDALBench: ThreeClust (a "honeypot") and DivergingSin."""

import numpy as np
from sklearn.utils import Bunch, check_random_state

__all__ = ["load_diverging_sin", "load_three_clust"]


def _split_and_scale(X, y, test_size, rng, description):
    """Shuffle, hold out ``test_size`` of the samples, min-max scale with the train range;
    the loaders' Bunch (``mean`` and ``std`` hold the offset and the scale)."""
    order = rng.permutation(len(y))
    n_test = round(len(y) * test_size)
    test, train = order[:n_test], order[n_test:]
    low, high = X[train].min(axis=0), X[train].max(axis=0)
    scale = np.where(high > low, high - low, 1.0)
    X = (X - low) / scale
    return Bunch(
        X_train=np.ascontiguousarray(X[train], dtype=np.float32),
        y_train=y[train].astype(np.int64),
        X_test=np.ascontiguousarray(X[test], dtype=np.float32),
        y_test=y[test].astype(np.int64),
        classes=["0", "1"],
        mean=low.astype(np.float32),
        std=scale.astype(np.float32),
        description=description,
    )


def load_three_clust(n_per_cluster=150, test_size=0.2, *, random_state=None):
    """CDALBench's ThreeClust: two separable clusters and a "honeypot" of pure label noise.

    Four 2-D Gaussian clusters with identity covariance and ``n_per_cluster`` samples each:
    class 1 at means (0, 0) and (4, 3), class 0 at means (0, 6) and (4, 3). The two
    clusters at (4, 3) overlap exactly with opposite labels, so no classifier does better
    than chance there; a strategy that keeps querying the most uncertain region spends its
    budget on that honeypot. Best achievable accuracy is about 75%. Features are min-max
    scaled to ``[0, 1]`` with the training range, as in CDALBench [1]_.

    Parameters
    ----------
    n_per_cluster : int, default=150
        Samples per cluster (CDALBench: 150, 600 in all).
    test_size : float, default=0.2
        Fraction held out as the test set (CDALBench: 0.2).
    random_state : int, RandomState instance or None, default=None
        Seed of the samples and of the split.

    Returns
    -------
    data : sklearn.utils.Bunch
        ``X_train``, ``X_test`` (float32, shape ``(n, 2)``), ``y_train``, ``y_test``
        (int64, 0 or 1), ``classes``, ``mean`` and ``std`` (the min-max offset and scale)
        and ``description``.

    References
    ----------
    .. [1] T. Werner, J. Burchert, M. Stubbemann and L. Schmidt-Thieme, "A Cross-Domain
       Benchmark for Active Learning", NeurIPS 2024 Datasets and Benchmarks.

    Examples
    --------
    >>> from skdynal.datasets import load_three_clust
    >>> data = load_three_clust(random_state=0)
    >>> data.X_train.shape, data.X_test.shape
    ((480, 2), (120, 2))
    """
    rng = check_random_state(random_state)
    means = [((0.0, 0.0), 1), ((4.0, 3.0), 1), ((0.0, 6.0), 0), ((4.0, 3.0), 0)]
    X = np.concatenate([rng.normal(mean, 1.0, size=(n_per_cluster, 2)) for mean, _ in means])
    y = np.repeat([label for _, label in means], n_per_cluster)
    return _split_and_scale(
        X,
        y,
        test_size,
        rng,
        "CDALBench ThreeClust: 4 Gaussian clusters in 2-D, two of them at the same place "
        "with opposite labels (a honeypot of label noise); min-max scaled.",
    )


def load_diverging_sin(
    n_per_class=1000, test_size=0.2, *, divergence=0.5, frequency=2.0, noise=0.3, random_state=None
):
    """CDALBench's DivergingSin: two classes along a sine that drift apart.

    For ``x`` evenly spaced in ``[0, 10]``, class 1 lies at ``sin(frequency x) +
    divergence x`` and class 0 at ``sin(frequency x) - divergence x``, each plus Gaussian
    noise of standard deviation ``noise``. The classes overlap near ``x = 0`` and separate
    as ``x`` grows, so the hard samples sit in one small region. Features are min-max
    scaled to ``[0, 1]`` with the training range, as in CDALBench [1]_.

    Parameters
    ----------
    n_per_class : int, default=1000
        Samples per class (CDALBench: 1,000).
    test_size : float, default=0.2
        Fraction held out as the test set (CDALBench: 0.2).
    divergence, frequency, noise : float, default=0.5, 2.0, 0.3
        Slope of the drift apart, frequency of the sine, noise level (CDALBench's values).
    random_state : int, RandomState instance or None, default=None
        Seed of the noise and of the split.

    Returns
    -------
    data : sklearn.utils.Bunch
        As :func:`load_three_clust`.

    References
    ----------
    .. [1] T. Werner, J. Burchert, M. Stubbemann and L. Schmidt-Thieme, "A Cross-Domain
       Benchmark for Active Learning", NeurIPS 2024 Datasets and Benchmarks.

    Examples
    --------
    >>> from skdynal.datasets import load_diverging_sin
    >>> load_diverging_sin(random_state=0).X_train.shape
    (1600, 2)
    """
    rng = check_random_state(random_state)
    x = np.linspace(0.0, 10.0, n_per_class)
    curve = np.sin(frequency * x)
    upper = np.column_stack([x, curve + divergence * x + rng.normal(0, noise, n_per_class)])
    lower = np.column_stack([x, curve - divergence * x + rng.normal(0, noise, n_per_class)])
    X = np.concatenate([upper, lower])
    y = np.repeat([1, 0], n_per_class)
    return _split_and_scale(
        X,
        y,
        test_size,
        rng,
        "CDALBench DivergingSin: two noisy sine curves in 2-D that drift apart along x; "
        "min-max scaled.",
    )
