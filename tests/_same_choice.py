"""Same scores and picks from a strategy on two copies of one fitted net (device, dtype).

Used by ``strategies/test_gpu.py`` (CUDA against CPU) and ``strategies/test_same_choice.py``
(float32 against float64 on the CPU, which runs everywhere).
"""

import copy

import numpy as np
import torch
from _strategy_settings import strategy_params

import skdynal
from skdynal import BALDSampler, DynamicALSampler
from skdynal.base import BaseScoringStrategy

#: Every exported strategy that ranks rows by a score, BALD aside: its scores are
#: MC-dropout estimates whose masks are drawn by a generator on the module's device, in
#: the module's dtype, so two copies of a net on other devices or dtypes draw other masks.
SCORING = [
    name
    for name in skdynal.__all__
    if isinstance(getattr(skdynal, name), type)
    and issubclass(getattr(skdynal, name), BaseScoringStrategy)
    and getattr(skdynal, name) is not BALDSampler
]

#: Select by the top-b rule (dynamicAL's default is the class-balanced batch).
_TOP_B = {DynamicALSampler: {"selection": "top_b"}}


def scores_and_picks(cls, net, X_lab, y_lab, X_pool, n_instances):
    """The scores of the whole pool and the top-b picks of ``cls`` on ``net``."""
    strategy = cls(random_state=0, **strategy_params(cls), **_TOP_B.get(cls, {}))
    kwargs = {"X_labeled": X_lab, "y_labeled": y_lab}
    scores = strategy.score(net, X_pool, **kwargs)
    picks, _ = strategy.select(net, X_pool, n_instances, **kwargs)
    return scores, picks


def moved_net(net, *, device=None, dtype=None):
    """A deep copy of the fitted skorch ``net`` with the same weights, every module and
    criterion moved to ``device`` and/or cast to ``dtype``."""
    net = copy.deepcopy(net)
    if device is not None:
        net.set_params(device=device)
    for value in vars(net).values():
        if isinstance(value, torch.nn.Module):
            value.to(device=device, dtype=dtype)
    return net


def scores_tolerance(reference, rtol):
    """An absolute tolerance: ``rtol`` times the largest reference score in magnitude (a
    tolerance relative to each score would be meaningless for scores near zero)."""
    return rtol * float(np.max(np.abs(reference)))


def assert_same_choice(reference_scores, scores, reference_picks, picks, tol):
    """Assert that two runs of a top-b strategy agree wherever their numbers decide.

    ``scores`` must equal ``reference_scores`` to ``tol`` (absolute). With b picks, both
    runs must pick every row whose reference score beats the (b+1)-th largest by more
    than ``2 * tol``, must leave every row that is more than ``2 * tol`` below the b-th
    largest, and must order two picked rows alike when their reference scores differ by
    more than ``2 * tol``. Since the scores differ by at most ``tol``, those rows are
    ranked the same way by both runs, so the rule demands identical picks whenever the
    gap between the b-th and the (b+1)-th reference score exceeds ``2 * tol``; only rows
    within ``2 * tol`` of that boundary may trade places.
    """
    reference_scores = np.asarray(reference_scores, dtype=np.float64)
    scores = np.asarray(scores, dtype=np.float64)
    np.testing.assert_allclose(scores, reference_scores, rtol=0, atol=tol)
    b = len(reference_picks)
    assert b < len(reference_scores), "nothing to decide: every row is picked"
    ranked = np.sort(reference_scores)[::-1]
    must_pick = np.flatnonzero(reference_scores > ranked[b] + 2 * tol)
    must_leave = np.flatnonzero(reference_scores < ranked[b - 1] - 2 * tol)
    for name, run in (("reference", reference_picks), ("other", picks)):
        run = np.asarray(run)
        assert len(run) == b and len(set(run.tolist())) == b, f"{name}: {run}"
        missing = np.setdiff1d(must_pick, run)
        assert not len(missing), f"the {name} run leaves the clearly better rows {missing}"
        wrong = np.intersect1d(must_leave, run)
        assert not len(wrong), f"the {name} run picks the clearly worse rows {wrong}"
        # largest first, wherever the reference scores order two picks clearly
        picked = reference_scores[run]
        later_but_clearly_better = picked[None, :] > picked[:, None] + 2 * tol
        assert not np.triu(later_but_clearly_better).any(), f"the {name} run's order: {run}"
