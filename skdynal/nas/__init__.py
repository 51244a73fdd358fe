"""Incremental neural architecture search during active learning (iNAS).

Geifman and El-Yaniv (NeurIPS 2019): with few labels a small network generalises best,
with many a larger one, so the architecture is searched between query rounds. Before each
round's training the learner compares the current structure with one more block per stack
and one more stack, each trained from scratch on part of the labeled set and scored on the
rest, keeps the best and retrains it on all labeled data.

- :class:`INASLearner`: a modAL ``ActiveLearner`` whose fits run the search;
- :func:`candidate_structures`, :func:`holdout_split`: the search's two building blocks;
- architecture families, callables from a structure ``(blocks per stack, stacks)`` to an
  ``nn.Module``: :class:`ResNetFamily` (the paper's A(B, i, j)), :class:`CNNFamily`
  (28x28 and 32x32 images) and :class:`MLPFamily` (tabular data, digits).
"""

from ._families import (
    FAMILIES,
    ArchitectureFamily,
    CNNFamily,
    MLPFamily,
    ResNetFamily,
    StackedCNN,
    StackedMLP,
    StackedResNet,
    check_structure,
)
from ._learner import FamilyMember, INASLearner, set_architecture
from ._search import candidate_structures, holdout_split

__all__ = [
    "FAMILIES",
    "ArchitectureFamily",
    "CNNFamily",
    "FamilyMember",
    "INASLearner",
    "MLPFamily",
    "ResNetFamily",
    "StackedCNN",
    "StackedMLP",
    "StackedResNet",
    "candidate_structures",
    "check_structure",
    "holdout_split",
    "set_architecture",
]
