"""dynamicAL's gradient sums (the labeled set's ``G``, de-influence's chunk means) go
through the pool loop: a batch that runs out of memory is retried at half the size and
counted once."""

import numpy as np
import pytest
import torch
from _nets import fitted_net

from skdynal import BatchSizeReducedWarning, DynamicALSampler
from skdynal._adapter import resolve_learner


def _out_of_memory_above(limit):
    """A forward pre-hook that fails like CUDA does on batches of more than ``limit`` rows."""

    def hook(module, args):
        if len(args[0]) > limit:
            raise torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")

    return hook


def test_the_labeled_gradient_halves_the_batch_and_counts_it_once(labeled_and_pool):
    X_lab, y_lab, _ = labeled_and_pool
    net = fitted_net(X_lab, y_lab)
    adapter = resolve_learner(net, X_labeled=X_lab, y_labeled=y_lab)
    sampler = DynamicALSampler(batch_size=len(X_lab))
    expected = sampler.round_state(adapter)["direction"]
    handle = net.module_.register_forward_pre_hook(_out_of_memory_above(16))
    try:
        with pytest.warns(BatchSizeReducedWarning, match="batch_size=60.*batch_size=15"):
            direction = sampler.round_state(adapter)["direction"]
    finally:
        handle.remove()
    assert direction.keys() == expected.keys()
    for name, value in expected.items():
        torch.testing.assert_close(direction[name], value, rtol=1e-5, atol=1e-6)


def test_deinfluence_chunks_halve_the_batch(labeled_and_pool):
    X_lab, y_lab, X_pool = labeled_and_pool
    net = fitted_net(X_lab, y_lab)
    sampler = DynamicALSampler(selection="deinfluence", chunk_size=5, batch_size=8)
    chunk_mean = sampler._chunk_mean_gradient(resolve_learner(net), X_pool[:8])
    handle = net.module_.register_forward_pre_hook(_out_of_memory_above(4))
    try:
        with pytest.warns(BatchSizeReducedWarning):
            indices, _ = sampler.select(net, X_pool, 10, X_labeled=X_lab, y_labeled=y_lab)
        with pytest.warns(BatchSizeReducedWarning):
            halved = sampler._chunk_mean_gradient(resolve_learner(net), X_pool[:8])
    finally:
        handle.remove()
    assert len(np.unique(indices)) == 10
    for name, value in chunk_mean.items():
        torch.testing.assert_close(halved[name], value, rtol=1e-5, atol=1e-6)
