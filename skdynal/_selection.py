"""Top-k selection with seeded tie-breaking, and the return contract with modAL."""

import functools
from importlib import metadata

import numpy as np

from ._validation import NonFiniteValues

__all__ = [
    "check_selection",
    "class_balanced_top_k",
    "gumbel_top_k",
    "kmeans_plusplus_from_distances",
    "modal_returns_scores",
    "permutation_ranks",
    "rank_by_score",
    "select_top_k",
    "to_modal_result",
]


def rank_by_score(scores, tie_keys, *, first=None):
    """Rows by decreasing score, equal scores by increasing ``tie_keys``: the one tie rule.

    Every top-k of the package orders rows this way; only the random tie keys are drawn
    per caller (see :func:`select_top_k` and :func:`class_balanced_top_k`), each as it
    always was, so that a seed picks the same rows as before.

    Parameters
    ----------
    scores : ndarray of shape (n,)
        Float64 scores (``-inf`` sorts last).
    tie_keys : ndarray of shape (n,)
        Distinct keys (ranks or random floats): among equal scores the smaller key first.
    first : ndarray of shape (n,), default=None
        A key that comes before the score (the class-balanced turn).

    Returns
    -------
    order : ndarray of int of shape (n,)
    """
    keys = (tie_keys, -scores) if first is None else (tie_keys, -scores, first)
    return np.lexsort(keys)


def permutation_ranks(n_rows, random_state):
    """Each row's position in ``random_state.permutation(n_rows)``: the tie keys of
    :func:`select_top_k` (among equal scores, the row that comes first in the permutation)."""
    permutation = random_state.permutation(n_rows)
    ranks = np.empty(n_rows, dtype=np.intp)
    ranks[permutation] = np.arange(n_rows, dtype=np.intp)
    return ranks


def select_top_k(scores, n_instances, random_state, *, allow_negative_inf=False):
    """Indices of the ``n_instances`` largest scores, largest first.

    Ties are broken by a random permutation drawn from ``random_state`` (a
    ``numpy.random.RandomState``): :func:`rank_by_score` with :func:`permutation_ranks` as
    the tie keys, so the choice among equal scores is seedable. With
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
    ranks = permutation_ranks(len(scores), random_state)
    return rank_by_score(scores, ranks)[:n_instances]


def class_balanced_top_k(scores, labels, n_instances, random_state):
    """The ``n_instances`` best rows with the classes taking turns.

    Rows are ranked by score within each class of ``labels`` (for example the pseudo
    labels); the selection takes the best
    row of every class first (the better scores first), then the second best of every
    class, and so on, so that a class with few rows simply drops out of later turns. Ties
    among equal scores are broken at random with ``random_state`` (a
    ``numpy.random.RandomState``) by :func:`rank_by_score`, whose tie keys here are one
    ``random_sample`` draw per row (the draw this selection has always made, kept so that
    a seed picks the same rows).

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
    by_score = rank_by_score(scores, tie)
    turn = np.empty(len(scores), dtype=np.int64)
    for label in np.unique(labels):
        members = by_score[labels[by_score] == label]
        turn[members] = np.arange(len(members))
    return rank_by_score(scores, tie, first=turn)[:n_instances]


def kmeans_plusplus_from_distances(
    sq_distances, sq_norms, cross, n_instances, random_state, *, greedy=False, first=None
):
    """k-means++ seeding (or farthest-first traversal) from given squared distances.

    Rows are points ``g_u`` of an inner-product space known only through ``sq_norms``
    (``||g_u||²``) and ``cross(v)`` (``<g_u, g_v>`` for every row ``u``). Each row starts
    at the squared distance ``sq_distances[u]`` to the nearest *fixed* center (for
    dynamicAL, the point ``c`` of its score; ``inf`` for plain k-means++); every chosen row
    becomes a further center, and a row's distance is to its nearest center,
    ``D²(u) = min(D²(u), ||g_u||² + ||g_v||² - 2 <g_u, g_v>)`` after choosing ``v``.

    The first row is the farthest from the fixed centers (ties broken at random; uniformly
    at random when every distance is ``inf``). Each next is drawn with probability
    proportional to ``D²(u)`` (Arthur & Vassilvitskii's D² sampling), or with ``greedy``
    the farthest row is taken (Gonzalez's farthest-first traversal). Rows already chosen
    have ``D² = 0``; when no unchosen row has a positive distance, the next is drawn
    uniformly among the unchosen rows.

    Parameters
    ----------
    sq_distances : ndarray of shape (n,)
        Squared distance of every row to the fixed centers (non-negative, or ``inf``).
    sq_norms : ndarray of shape (n,)
        ``||g_u||²``.
    cross : callable
        ``cross(v) -> ndarray of shape (n,)``: ``<g_u, g_v>`` for every row ``u``.
    n_instances : int
        Rows to choose, at most ``n``.
    random_state : numpy.random.RandomState
        Draws: ``randint`` among the farthest rows when several tie (or ``randint(n)`` when
        every distance is ``inf``) for the first row, then ``choice(n, p=...)`` (or
        ``choice`` among the unchosen rows) for each next one; with ``greedy``, ``randint``
        among the farthest rows whenever several tie.
    greedy : bool, default=False
        Farthest-first traversal instead of D² sampling.
    first : int, default=None
        The first row, when it is chosen otherwise (for dynamicAL with ``gamma=inf``, whose
        fixed center is at infinity: the row of largest score). No draw for it.

    Returns
    -------
    indices : ndarray of shape (n_instances,)
        Rows in the order chosen.
    distances : ndarray of shape (n_instances,)
        Each chosen row's squared distance to its nearest center when it was chosen.

    References
    ----------
    .. [1] D. Arthur and S. Vassilvitskii, "k-means++: The Advantages of Careful Seeding",
       SODA 2007.
    .. [2] T. F. Gonzalez, "Clustering to minimize the maximum intercluster distance",
       Theoretical Computer Science 38, 1985.
    """
    nearest = np.array(sq_distances, dtype=np.float64)
    sq_norms = np.asarray(sq_norms, dtype=np.float64)
    n = len(nearest)
    bad = np.isnan(nearest) | ~np.isfinite(sq_norms)
    if bad.any():
        raise NonFiniteValues("squared distances", np.flatnonzero(bad))
    chosen = np.empty(n_instances, dtype=np.intp)
    distances = np.empty(n_instances, dtype=np.float64)
    is_chosen = np.zeros(n, dtype=bool)
    for step in range(n_instances):
        if step:
            last = chosen[step - 1]
            to_last = sq_norms + sq_norms[last] - 2.0 * np.asarray(cross(last), dtype=np.float64)
            np.minimum(nearest, np.maximum(to_last, 0.0), out=nearest)
            nearest[is_chosen] = 0.0
        if step == 0 and first is not None:
            index = int(first)
        elif np.isposinf(nearest).all():
            index = random_state.randint(n)
        elif greedy or step == 0:
            weights = np.where(is_chosen, -np.inf, nearest)
            farthest = np.flatnonzero(weights == weights.max())
            index = (
                farthest[random_state.randint(len(farthest))] if len(farthest) > 1 else farthest[0]
            )
        else:
            total = nearest.sum()
            if total > 0:
                index = random_state.choice(n, p=nearest / total)
            else:
                index = random_state.choice(np.flatnonzero(~is_chosen))
        chosen[step] = index
        distances[step] = nearest[index]
        is_chosen[index] = True
    return chosen, distances


def gumbel_top_k(log_weights, n_instances, random_state):
    """``n_instances`` rows drawn without replacement with probability ∝ ``exp(log_weights)``.

    The Gumbel-top-k trick (Kool et al., 2019): the rows of the largest
    ``log_weights + Gumbel noise``, one ``random_state.gumbel`` draw per row; rows of weight
    0 (``-inf``) come last. Used for stochastic batch acquisition (Kirsch et al., 2023).

    Returns
    -------
    indices : ndarray of shape (n_instances,)
    keys : ndarray of shape (n_instances,)
        The perturbed log weights of the chosen rows.
    """
    log_weights = np.asarray(log_weights, dtype=np.float64)
    keys = log_weights + random_state.gumbel(size=len(log_weights))
    keys[np.isneginf(log_weights)] = -np.inf
    indices = select_top_k(keys, n_instances, random_state, allow_negative_inf=True)
    return indices, keys[indices]


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
