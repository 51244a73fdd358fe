"""Parameter checks that need neither torch nor skorch (the label journal uses them too).

Every mistake in a parameter raises scikit-learn's ``InvalidParameterError``, a subclass of
both ``ValueError`` and ``TypeError``: one exception type for one kind of mistake, whether
the value has the wrong type or is out of range. Classes declare their parameters'
constraints in ``_parameter_constraints`` with the constraint objects re-exported here.
"""

import numbers

from sklearn.utils._param_validation import (
    HasMethods,
    Hidden,
    Interval,
    InvalidParameterError,
    Options,
    StrOptions,
    validate_parameter_constraints,
    validate_params,
)

__all__ = [
    "BATCH_SIZE",
    "HasMethods",
    "Hidden",
    "Interval",
    "InvalidParameterError",
    "Options",
    "StrOptions",
    "StrictInterval",
    "check_batch_size",
    "check_n_instances",
    "check_positive_int",
    "validate_parameter_constraints",
    "validate_params",
]


class StrictInterval(Interval):
    """An :class:`Interval` that refuses booleans: ``True`` is neither a count nor a fraction.

    ``bool`` is a subclass of ``int``, so a plain ``Interval(numbers.Integral, 1, None)``
    accepts ``True``; the hand-written checks this replaces never did.
    """

    def is_satisfied_by(self, val):
        return not isinstance(val, bool) and super().is_satisfied_by(val)


#: Rows per forward pass: a positive integer, or ``None`` for the net's own.
BATCH_SIZE = [StrictInterval(numbers.Integral, 1, None, closed="left"), None]


def check_n_instances(n_instances, n_pool):
    """Validate ``n_instances`` against the pool size and return it as an int."""
    if isinstance(n_instances, bool) or not isinstance(n_instances, numbers.Integral):
        raise InvalidParameterError(f"n_instances must be an integer, got {n_instances!r}.")
    if n_instances < 1:
        raise InvalidParameterError(f"n_instances must be at least 1, got {n_instances}.")
    if n_instances > n_pool:
        raise InvalidParameterError(
            f"n_instances={n_instances} is larger than the pool ({n_pool} samples)."
        )
    return int(n_instances)


def check_positive_int(value, name, *, minimum=1):
    """Return ``value`` as an int; ``InvalidParameterError`` naming ``name`` unless an integer
    >= ``minimum``."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < minimum:
        raise InvalidParameterError(f"{name} must be an integer >= {minimum}, got {value!r}.")
    return int(value)


def check_batch_size(batch_size):
    """Validate a batch size: a positive integer, or ``None`` for the net's own."""
    if batch_size is None:
        return None
    if isinstance(batch_size, bool) or not isinstance(batch_size, numbers.Integral):
        raise InvalidParameterError(
            f"batch_size must be a positive integer or None, got {batch_size!r}."
        )
    if batch_size < 1:
        raise InvalidParameterError(
            f"batch_size must be a positive integer or None, got {batch_size}."
        )
    return int(batch_size)
