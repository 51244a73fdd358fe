"""Strategies on a CUDA net (skipped without CUDA).

Every exported strategy selects distinct pool rows on a net fitted on CUDA. For the
comparison with the CPU, the CUDA net is the fitted CPU net moved to the GPU (the same
weights), so that the strategy's own numbers are compared: every strategy that ranks by a
score, BALD aside (its dropout masks come from a generator on the device), gives the CPU's
scores to a tolerance and the CPU's picks wherever those scores decide them by more than it
(``_same_choice.assert_same_choice``; ``test_same_choice.py`` runs the rule on the CPU).
Random sampling, which reads no net, picks the CPU's rows exactly.
"""

import numpy as np
import pytest
import torch
from _nets import fitted_net
from _same_choice import (
    SCORING,
    assert_same_choice,
    moved_net,
    scores_and_picks,
    scores_tolerance,
)
from _strategy_settings import net_params, strategy_params

import skdynal

pytestmark = [
    pytest.mark.gpu,
    pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA"),
]

#: Tolerance of the scores, relative to the largest CPU score: float32 kernels on the GPU
#: sum in another order than on the CPU (about 1e-6 of a score; TF32 is off for matmul).
GPU_RTOL = 1e-4


@pytest.mark.parametrize("name", [n for n in skdynal.__all__ if n.endswith("Sampler")])
def test_selects_distinct_pool_rows_on_cuda(name, labeled_and_pool):
    X_lab, y_lab, X_pool = labeled_and_pool
    cls = getattr(skdynal, name)
    kwargs = {"X_labeled": X_lab, "y_labeled": y_lab}
    # fitted on CUDA: the nets that a strategy trains with (TiDAL's, LADA's) train there too
    cuda = fitted_net(X_lab, y_lab, device="cuda", **net_params(cls))
    picks, _ = cls(random_state=0, **strategy_params(cls)).select(cuda, X_pool, 10, **kwargs)
    assert len(set(picks.tolist())) == 10
    assert np.all((picks >= 0) & (picks < len(X_pool)))
    if name == "RandomSampler":  # reads no net: the seed alone decides
        cpu = fitted_net(X_lab, y_lab)
        on_cpu, _ = cls(random_state=0).select(cpu, X_pool, 10, **kwargs)
        np.testing.assert_array_equal(picks, on_cpu)


@pytest.mark.parametrize("name", SCORING)
def test_cuda_gives_the_cpu_scores_and_picks(name, labeled_and_pool):
    X_lab, y_lab, X_pool = labeled_and_pool
    cls = getattr(skdynal, name)
    cpu = fitted_net(X_lab, y_lab, **net_params(cls))
    on_cpu = scores_and_picks(cls, cpu, X_lab, y_lab, X_pool, 10)
    on_cuda = scores_and_picks(cls, moved_net(cpu, device="cuda"), X_lab, y_lab, X_pool, 10)
    tol = scores_tolerance(on_cpu[0], GPU_RTOL)
    assert_same_choice(on_cpu[0], on_cuda[0], on_cpu[1], on_cuda[1], tol)
