"""Seeding of the global random generators that skorch, torch and modAL draw from."""

import contextlib
import random

import numpy as np

__all__ = ["seeded_global_rngs"]


@contextlib.contextmanager
def seeded_global_rngs(seed):
    """Seed the global torch (CPU and initialised CUDA devices), numpy and ``random``
    generators for the duration of the block, and restore their states afterwards.

    skorch shuffles with torch's global generator, and modAL query functions and user
    strategies may draw from numpy's or Python's.
    """
    import torch  # here, not at the top: the label journal imports this module

    devices = []
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        devices = list(range(torch.cuda.device_count()))
    np_state = np.random.get_state()  # noqa: NPY002
    py_state = random.getstate()
    with torch.random.fork_rng(devices=devices):
        torch.manual_seed(seed)
        np.random.seed(seed)  # noqa: NPY002
        random.seed(seed)
        try:
            yield
        finally:
            np.random.set_state(np_state)  # noqa: NPY002
            random.setstate(py_state)
