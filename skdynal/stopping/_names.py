"""The stopping rules by name, for the command line and for protocols written to JSON."""

from ._base import BaseStoppingRule
from ._rules import (
    ClassificationChange,
    DynamicsPlateau,
    OverallUncertainty,
    StabilizingPredictions,
)

__all__ = ["available_stopping_rules", "make_stopping_rule"]

_RULES = {
    "stabilizing": StabilizingPredictions,
    "change": ClassificationChange,
    "uncertainty": OverallUncertainty,
    "dynamics": DynamicsPlateau,
}


def available_stopping_rules():
    """Names accepted by :func:`make_stopping_rule` (and ``--stopping`` / ``--stop``).

    Returns
    -------
    names : list of str
        ``"stabilizing"`` (:class:`StabilizingPredictions`), ``"change"``
        (:class:`ClassificationChange`), ``"uncertainty"`` (:class:`OverallUncertainty`)
        and ``"dynamics"`` (:class:`DynamicsPlateau`). :class:`LabelBudget` has no name: it
        needs its budget.
    """
    return list(_RULES)


def make_stopping_rule(name, **params):
    """A stopping rule from its name, with its published defaults unless ``params`` say
    otherwise.

    Parameters
    ----------
    name : str
        One of :func:`available_stopping_rules`.
    **params
        Parameters of the rule's class.

    Returns
    -------
    rule : BaseStoppingRule

    Examples
    --------
    >>> from skdynal.stopping import make_stopping_rule
    >>> make_stopping_rule("stabilizing", window=2)
    StabilizingPredictions(window=2)
    """
    if isinstance(name, BaseStoppingRule):
        raise TypeError(f"make_stopping_rule takes a rule's name, got the rule {name!r}.")
    if name not in _RULES:
        raise ValueError(
            f"Unknown stopping rule {name!r}; choose from {', '.join(_RULES)} (or pass a "
            "skdynal.stopping rule object)."
        )
    return _RULES[name](**params)
