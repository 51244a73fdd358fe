"""skorch callbacks for the active learning training protocol.

- :class:`TrainUntilFit` ends a round's training once the accuracy on the labeled
  (training) data has stayed at or above a threshold for ``patience`` epochs, between a
  minimum and a maximum number of epochs: the paper's "train until convergence".
- :class:`ResetOptimizer` gives every ``fit``/``partial_fit`` call a fresh optimizer, as
  the official dynamicAL code does after each query, while the weights are warm-started.
"""

from ._optimizer import ResetOptimizer
from ._train_until_fit import StopTraining, TrainUntilFit

__all__ = ["ResetOptimizer", "StopTraining", "TrainUntilFit"]
