"""Every strategy on a CUDA net gives the same choice as on the CPU (skipped without CUDA)."""

import numpy as np
import pytest
import torch
from _nets import fitted_net
from _strategy_settings import net_params

import skdynal

pytestmark = [
    pytest.mark.gpu,
    pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA"),
]

DETERMINISTIC = [
    "LeastConfidenceSampler",
    "MarginSampler",
    "EntropySampler",
    "CoresetSampler",
    "RandomSampler",
]


@pytest.mark.parametrize("name", [n for n in skdynal.__all__ if n.endswith("Sampler")])
def test_runs_on_cuda(name, labeled_and_pool):
    X_lab, y_lab, X_pool = labeled_and_pool
    cls = getattr(skdynal, name)
    params = net_params(cls)
    cpu = fitted_net(X_lab, y_lab, **params)
    cuda = fitted_net(X_lab, y_lab, device="cuda", **params)
    kwargs = {"X_labeled": X_lab, "y_labeled": y_lab}
    on_cuda, _ = cls(random_state=0).select(cuda, X_pool, 10, **kwargs)
    assert len(set(on_cuda.tolist())) == 10
    if name in DETERMINISTIC:
        on_cpu, _ = cls(random_state=0).select(cpu, X_pool, 10, **kwargs)
        assert len(set(on_cpu.tolist()) & set(on_cuda.tolist())) >= 8
    assert np.all(on_cuda < len(X_pool))
