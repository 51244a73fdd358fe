"""Shared pieces of the dataset loaders: subsetting, normalisation and the result type."""

import numbers

import numpy as np
from sklearn.utils import Bunch

__all__ = ["channel_stats", "make_result", "subset_indices"]


def subset_indices(n_total, n_keep, rng, *, name):
    """Indices of a random subset of ``n_keep`` out of ``n_total`` items, in sorted order.

    ``n_keep=None`` keeps everything (``arange(n_total)``, no random draw).
    """
    if n_keep is None:
        return np.arange(n_total)
    if not isinstance(n_keep, numbers.Integral) or isinstance(n_keep, bool) or n_keep < 1:
        raise ValueError(f"{name} must be a positive integer or None, got {n_keep!r}.")
    if n_keep > n_total:
        raise ValueError(
            f"{name}={n_keep} is larger than the {n_total} samples available; "
            f"pass {name}=None to keep all of them."
        )
    return np.sort(rng.choice(n_total, size=n_keep, replace=False))


def channel_stats(images):
    """Per-channel mean and standard deviation of ``(N, C, H, W)`` images, in float64."""
    mean = images.mean(axis=(0, 2, 3), dtype=np.float64)
    std = images.std(axis=(0, 2, 3), dtype=np.float64)
    return mean, std


def _resolve_normalize(normalize, X_train):
    if normalize is None or normalize is False:
        return None, None
    if isinstance(normalize, str):
        if normalize != "train":
            raise ValueError(
                f"normalize must be 'train', None or a (mean, std) pair, got {normalize!r}."
            )
        mean, std = channel_stats(X_train)
    else:
        try:
            mean, std = normalize
        except (TypeError, ValueError):
            raise ValueError(
                f"normalize must be 'train', None or a (mean, std) pair, got {normalize!r}."
            ) from None
        mean = np.asarray(mean, dtype=np.float64).reshape(-1)
        std = np.asarray(std, dtype=np.float64).reshape(-1)
        n_channels = X_train.shape[1]
        if mean.shape != (n_channels,) or std.shape != (n_channels,):
            raise ValueError(
                f"normalize=(mean, std) needs one value per channel ({n_channels}); "
                f"got shapes {mean.shape} and {std.shape}."
            )
    if np.any(std <= 0):
        raise ValueError(f"Cannot normalise: a channel has standard deviation {std.min()!r} <= 0.")
    return mean, std


def make_result(X_train, y_train, X_test, y_test, classes, *, normalize, description):
    """Normalise ``(N, C, H, W)`` float images per channel and build the result Bunch."""
    mean, std = _resolve_normalize(normalize, X_train)
    if mean is not None:
        shift = mean.astype(np.float32)[None, :, None, None]
        scale = std.astype(np.float32)[None, :, None, None]
        X_train = (X_train - shift) / scale
        X_test = (X_test - shift) / scale
    return Bunch(
        X_train=np.ascontiguousarray(X_train, dtype=np.float32),
        y_train=np.asarray(y_train, dtype=np.int64),
        X_test=np.ascontiguousarray(X_test, dtype=np.float32),
        y_test=np.asarray(y_test, dtype=np.int64),
        classes=[str(c) for c in classes],
        mean=None if mean is None else mean.astype(np.float32),
        std=None if std is None else std.astype(np.float32),
        description=description,
    )
