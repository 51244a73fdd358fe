"""The strategy protocol: base classes and helpers for writing a query strategy.

A new strategy subclasses :class:`BaseScoringStrategy` (it ranks rows by a score) or
:class:`BaseQueryStrategy` (any other selection) and implements a few hooks; the base class
does the rest (input checks, parameter validation, the pool loop, the modAL return
contract), and :class:`~skdynal.distributed.RayScorer` and the experiment runner use the
same hooks. See the "Writing a strategy" page of the documentation.

The parameter constraints a strategy declares in ``_parameter_constraints`` use
scikit-learn's vocabulary; :class:`StrictInterval` (an ``Interval`` that refuses ``True``)
and ``StrOptions`` are re-exported here, with ``InvalidParameterError``, the error a bad
value raises.
"""

from ._adapter import NetAdapter
from ._base import (
    BaseQueryStrategy,
    BaseScoringStrategy,
    LocalPool,
    QueryBackend,
    StrategyCapabilities,
    run_hook,
)
from ._checks import InvalidParameterError, StrictInterval, StrOptions

__all__ = [
    "BaseQueryStrategy",
    "BaseScoringStrategy",
    "InvalidParameterError",
    "LocalPool",
    "NetAdapter",
    "QueryBackend",
    "StrOptions",
    "StrategyCapabilities",
    "StrictInterval",
    "run_hook",
]
