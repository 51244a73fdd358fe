"""Diagnostics of the dynamicAL paper: empirical NTK, training dynamics, alignment, bounds.

Every function takes a fitted skorch net (or a modAL learner whose estimator is one) plus
arrays, computes in ``eval()`` mode on detached float64 copies of the parameters, never
modifies the net, and returns float64 results.

References
----------
.. [1] H. Wang, W. Huang, Z. Wu, A. Margenot, H. Tong and J. He, "Deep Active Learning by
   Leveraging Training Dynamics", NeurIPS 2022 (arXiv:2110.08611).
"""

from ._dynamics import (
    SubsetApproximation,
    approximation_ratio,
    training_dynamics,
    training_dynamics_change,
)
from ._ntk import (
    KernelTooLargeError,
    alignment,
    empirical_ntk,
    generalization_bound,
    ntk_mmd,
)

__all__ = [
    "KernelTooLargeError",
    "SubsetApproximation",
    "alignment",
    "approximation_ratio",
    "empirical_ntk",
    "generalization_bound",
    "ntk_mmd",
    "training_dynamics",
    "training_dynamics_change",
]
