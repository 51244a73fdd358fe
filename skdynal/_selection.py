"""Top-k selection with seeded tie-breaking, and the return contract with modAL."""

import functools
from importlib import metadata

import numpy as np

from ._validation import NonFiniteValues

__all__ = [
    "check_selection",
    "class_balanced_top_k",
    "modal_returns_scores",
    "select_top_k",
    "to_modal_result",
]


def select_top_k(scores, n_instances, random_state, *, allow_negative_inf=False):
    """Indices of the ``n_instances`` largest scores, largest first.

    Ties are broken by a random permutation drawn from ``random_state`` (a
    ``numpy.random.RandomState``), so the choice among equal scores is seedable. With
    ``allow_negative_inf``, ``-inf`` marks rows that are taken only after all others.

    Raises
    ------
    NonFiniteValues
        A ``ValueError``, if a score is NaN or infinite (an overflow: the ranking would be
        arbitrary). The strategy turns it into an error that says why.
    """
    scores = np.asarray(scores, dtype=np.float64)
    bad = ~np.isfinite(scores)
    if allow_negative_inf:
        bad &= ~np.isneginf(scores)
    if bad.any():
        raise NonFiniteValues("scores", np.flatnonzero(bad))
    permutation = random_state.permutation(len(scores))
    order = np.argsort(-scores[permutation], kind="stable")[:n_instances]
    return permutation[order]


def class_balanced_top_k(scores, labels, n_instances, random_state):
    """The ``n_instances`` best rows with the classes taking turns.

    Rows are ranked by score within each class of ``labels`` (for example the pseudo
    labels); the selection takes the best
    row of every class first (the better scores first), then the second best of every
    class, and so on, so that a class with few rows simply drops out of later turns. Ties
    among equal scores are broken at random with ``random_state`` (a
    ``numpy.random.RandomState``).

    Returns
    -------
    indices : ndarray of int of shape (n_instances,)
    """
    scores = np.asarray(scores, dtype=np.float64)
    labels = np.asarray(labels)
    if scores.shape != labels.shape or scores.ndim != 1:
        raise ValueError(
            f"scores and labels must be 1-D of the same length, got {scores.shape} and "
            f"{labels.shape}."
        )
    if not np.isfinite(scores).all():
        raise NonFiniteValues("scores", np.flatnonzero(~np.isfinite(scores)))
    tie = random_state.random_sample(len(scores))
    by_score = np.lexsort((tie, -scores))
    turn = np.empty(len(scores), dtype=np.int64)
    for label in np.unique(labels):
        members = by_score[labels[by_score] == label]
        turn[members] = np.arange(len(members))
    return np.lexsort((tie, -scores, turn))[:n_instances]


def check_selection(indices, n_instances, n_pool, strategy_name):
    """The last check of every query: ``n_instances`` distinct row indices of the pool.

    A strategy that breaks this has a bug (or met values that no earlier check caught);
    raising here keeps a wrong batch from ever reaching the user.
    """
    indices = np.asarray(indices)
    if indices.dtype.kind not in "iu":
        raise RuntimeError(
            f"{strategy_name} returned indices of dtype {indices.dtype}, not integers; "
            "please report this as a bug."
        )
    indices = indices.astype(np.intp, copy=False)
    problems = []
    if indices.shape != (n_instances,):
        problems.append(f"{indices.size} indices for n_instances={n_instances}")
    if indices.size and (indices.min() < 0 or indices.max() >= n_pool):
        problems.append(f"indices outside [0, {n_pool})")
    if len(np.unique(indices)) != indices.size:
        problems.append("duplicate indices")
    if problems:
        raise RuntimeError(
            f"{strategy_name} returned {' and '.join(problems)}; no batch is returned rather "
            "than a wrong one. Please report this as a bug."
        )
    return indices


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
