"""The iNAS candidate generator and the hold-out split of the labeled set."""

import numbers

import numpy as np
from sklearn.model_selection import train_test_split
from sklearn.utils import check_random_state

from .._checks import InvalidParameterError, StrictInterval, validate_params
from ._families import check_structure

__all__ = ["candidate_structures", "holdout_split"]


_POSITIVE_INT = [StrictInterval(numbers.Integral, 1, None, closed="left")]


@validate_params(
    {"max_blocks": _POSITIVE_INT, "max_stacks": _POSITIVE_INT},
    prefer_skip_nested_validation=True,
)
def candidate_structures(structure, max_blocks=12, max_stacks=5):
    """The candidates of one iNAS step from ``structure = (i, j)``.

    In order: keep ``(i, j)``; one more block in every stack, ``(i + 1, j)``, if
    ``i < max_blocks``; one more stack with about the same number of blocks,
    ``(floor(i j / (j + 1)) + 1, j + 1)``, if ``j < max_stacks``. Both moves strictly
    increase the total number of blocks ``i * j`` and never decrease the number of stacks,
    so a search that starts from ``(1, 1)`` never shrinks. In the paper's list notation,
    ``[1]`` gives ``[1]``, ``[2]`` and ``[1, 1]``.

    Parameters
    ----------
    structure : tuple of (int, int)
        ``(blocks per stack, stacks)`` of the current architecture.
    max_blocks : int, default=12
        Largest number of blocks per stack (the paper's search space is 12 blocks, 5 stacks).
    max_stacks : int, default=5
        Largest number of stacks.

    Returns
    -------
    candidates : list of tuple of (int, int)
        The current structure first, then the allowed growths.

    Examples
    --------
    >>> from skdynal.nas import candidate_structures
    >>> candidate_structures((1, 1))
    [(1, 1), (2, 1), (1, 2)]
    >>> candidate_structures((3, 2))
    [(3, 2), (4, 2), (3, 3)]
    >>> candidate_structures((2, 2), max_blocks=2, max_stacks=2)
    [(2, 2)]

    References
    ----------
    .. [1] Y. Geifman and R. El-Yaniv, "Deep Active Learning with a Neural Architecture
       Search", NeurIPS 2019.
    """
    blocks, stacks = check_structure(structure)
    if blocks > max_blocks or stacks > max_stacks:
        raise InvalidParameterError(
            f"Structure {(blocks, stacks)} lies outside the search space (max_blocks="
            f"{max_blocks}, max_stacks={max_stacks}); raise the caps or start smaller."
        )
    candidates = [(blocks, stacks)]
    if blocks < max_blocks:
        candidates.append((blocks + 1, stacks))
    if stacks < max_stacks:
        candidates.append(((blocks * stacks) // (stacks + 1) + 1, stacks + 1))
    return candidates


@validate_params(
    {
        "y": ["array-like"],
        "holdout": [StrictInterval(numbers.Real, 0, 1, closed="neither")],
        "random_state": ["random_state"],
    },
    prefer_skip_nested_validation=True,
)
def holdout_split(y, holdout=0.2, random_state=None):
    """Split the indices of a labeled set into a search-training part and a hold-out part.

    Stratified by class when every class has at least two members and the hold-out part
    can hold one of each; otherwise a plain random split. Only the labels passed in are
    used: give it the learner's labeled training set, never test data.

    Parameters
    ----------
    y : array-like of shape (n_samples,)
        Labels of the labeled set.
    holdout : float, default=0.2
        Fraction of the labeled set held out to score the candidates, in ``(0, 1)``.
    random_state : int, RandomState instance or None, default=None
        Seed of the split.

    Returns
    -------
    train_idx, holdout_idx : ndarray of int
        Disjoint, sorted indices into ``y`` covering all of it.

    Examples
    --------
    >>> import numpy as np
    >>> from skdynal.nas import holdout_split
    >>> train, held = holdout_split(np.repeat([0, 1], 5), holdout=0.2, random_state=0)
    >>> len(train), len(held)
    (8, 2)
    """
    y = np.asarray(y)
    n = len(y)
    n_holdout = int(np.ceil(holdout * n))
    if n_holdout < 1 or n - n_holdout < 1:
        raise ValueError(
            f"A labeled set of {n} samples cannot be split with holdout={holdout}: both "
            "parts need at least one sample."
        )
    rng = check_random_state(random_state)
    indices = np.arange(n)
    _, counts = np.unique(y, return_counts=True)
    stratify = y if counts.min() >= 2 and len(counts) <= min(n_holdout, n - n_holdout) else None
    train_idx, holdout_idx = train_test_split(
        indices, test_size=n_holdout, stratify=stratify, random_state=rng
    )
    return np.sort(train_idx), np.sort(holdout_idx)
