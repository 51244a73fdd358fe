"""Top-k selection with seeded tie-breaking, and the return contract with modAL."""

import functools
from importlib import metadata

import numpy as np

__all__ = ["modal_returns_scores", "select_top_k", "to_modal_result"]


def select_top_k(scores, n_instances, random_state):
    """Indices of the ``n_instances`` largest scores, largest first.

    Ties are broken by a random permutation drawn from ``random_state`` (a
    ``numpy.random.RandomState``), so the choice among equal scores is seedable.

    Raises
    ------
    ValueError
        If a score is NaN.
    """
    scores = np.asarray(scores, dtype=np.float64)
    if np.isnan(scores).any():
        raise ValueError(
            f"{int(np.isnan(scores).sum())} scores are NaN; the net's outputs or loss are "
            "not finite. Check the model before querying."
        )
    permutation = random_state.permutation(len(scores))
    order = np.argsort(-scores[permutation], kind="stable")[:n_instances]
    return permutation[order]


@functools.cache
def modal_returns_scores():
    """Whether the installed modAL unpacks ``(indices, scores)`` from a strategy (>= 0.4.2)."""
    try:
        version = metadata.version("modAL-python")
    except metadata.PackageNotFoundError:
        return False
    parts = []
    for part in version.split(".")[:3]:
        digits = "".join(ch for ch in part if ch.isdigit())
        parts.append(int(digits or 0))
    return tuple(parts) >= (0, 4, 2)


def to_modal_result(indices, scores):
    """What a query strategy returns to the installed modAL.

    modAL-python 0.4.1 expects the indices only; 0.4.2 and later first try to unpack
    ``(indices, scores)`` (and call the strategy a second time when that fails).
    """
    if modal_returns_scores():
        return indices, scores
    return indices
