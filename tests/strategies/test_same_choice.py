"""The comparison rule of ``test_gpu.py``, checked by hand and run on the CPU.

On the CPU the two copies of one fitted net are float32 and float64 (rounding errors of
the size the GPU's float32 kernels make), so the rule that the GPU tests apply to CUDA
against CPU runs here on every machine.
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
from _strategy_settings import net_params

import skdynal


def test_the_rule_by_hand():
    reference = np.array([10.0, 9.0, 8.0, 7.95, 5.0, 1.0])
    # b = 3: rows 0 and 1 are clearly in, rows 4 and 5 clearly out; rows 2 and 3 are
    # within 2 * tol = 0.2 of the boundary and may trade places.
    assert_same_choice(reference, reference + 0.05, [0, 1, 2], [0, 1, 3], tol=0.1)
    with pytest.raises(AssertionError, match="clearly better rows"):
        assert_same_choice(reference, reference, [0, 1, 2], [0, 2, 3], tol=0.1)
    with pytest.raises(AssertionError, match="clearly worse rows"):
        assert_same_choice(reference, reference, [0, 1, 2], [0, 1, 4], tol=0.1)
    with pytest.raises(AssertionError, match="order"):
        assert_same_choice(reference, reference, [0, 1, 2], [1, 0, 2], tol=0.1)
    with pytest.raises(AssertionError, match="Not equal to tolerance"):
        assert_same_choice(reference, reference + 0.2, [0, 1, 2], [0, 1, 2], tol=0.1)
    # a gap of more than 2 * tol at the boundary leaves no choice
    assert_same_choice(reference, reference, [0, 1, 2], [0, 1, 2], tol=0.01)
    with pytest.raises(AssertionError, match="clearly"):
        assert_same_choice(reference, reference, [0, 1, 2], [0, 1, 3], tol=0.01)


@pytest.mark.parametrize("name", SCORING)
def test_float32_gives_the_float64_scores_and_picks(name, labeled_and_pool):
    X_lab, y_lab, X_pool = labeled_and_pool
    cls = getattr(skdynal, name)
    net = fitted_net(X_lab, y_lab, **net_params(cls))
    exact = scores_and_picks(cls, moved_net(net, dtype=torch.float64), X_lab, y_lab, X_pool, 10)
    rounded = scores_and_picks(cls, net, X_lab, y_lab, X_pool, 10)
    # float32 against float64 differs by about 2e-7 of the largest score on these nets
    tol = scores_tolerance(exact[0], 1e-5)
    assert_same_choice(exact[0], rounded[0], exact[1], rounded[1], tol)
