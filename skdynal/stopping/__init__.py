"""When to stop asking for labels: stopping rules for active learning.

Every rule is a scikit-learn-style object with one method to call after each trained
round, ``rule.update(learner, X_unlabeled, pool_ids=None)``, which returns ``True`` from the
first round the rule says stop. The same call works from a plain modAL loop, from
:class:`~skdynal.persistence.ResumableLoop`, from the Label Studio bridge
(:mod:`skdynal.labelstudio`) and from an evaluation script. See the documentation page
"Stopping rules" for which rule to use.
"""

from ._base import BaseStoppingRule, cohen_kappa
from ._names import available_stopping_rules, make_stopping_rule
from ._rules import (
    AnyRule,
    ClassificationChange,
    DynamicsPlateau,
    LabelBudget,
    OverallUncertainty,
    StabilizingPredictions,
)

__all__ = [
    "AnyRule",
    "BaseStoppingRule",
    "ClassificationChange",
    "DynamicsPlateau",
    "LabelBudget",
    "OverallUncertainty",
    "StabilizingPredictions",
    "available_stopping_rules",
    "cohen_kappa",
    "make_stopping_rule",
]
