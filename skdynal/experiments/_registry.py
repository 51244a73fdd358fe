"""Query strategies by name, for the experiment runner and the command line.

A new strategy is one :func:`register_strategy` call. The built-in strategies come from
``skdynal._catalog`` (one line per class of :mod:`skdynal.strategies`, with its default
name), each followed by its parameter variants in ``_VARIANTS``. Entries naming a class
that this installation of skdynal does not have are listed as unavailable instead of
breaking the import.
"""

import importlib
import inspect
import math
from dataclasses import dataclass, field
from typing import Any

from .._catalog import STRATEGIES

__all__ = [
    "available_strategies",
    "make_strategy",
    "register_strategy",
    "registered_strategies",
]


@dataclass(frozen=True)
class _Entry:
    factory: Any
    description: str
    requires: tuple = field(default=())


def _strategy_class(class_name, params, from_protocol=None):
    """A factory building ``skdynal.strategies.<class_name>(random_state=..., **params)``.

    ``from_protocol`` maps constructor parameters to protocol keys (e.g. ALBL's horizon
    ``n_rounds`` is the experiment's ``rounds``) or to functions of the protocol; they are
    set when the protocol is known.
    """

    def factory(random_state, protocol=None):
        module = importlib.import_module("skdynal.strategies")
        kwargs = dict(params)
        for param, key in (from_protocol or {}).items():
            if callable(key) and protocol:
                kwargs[param] = key(protocol)
            elif protocol and protocol.get(key):
                kwargs[param] = protocol[key]
        return getattr(module, class_name)(random_state=random_state, **kwargs)

    return factory


def _deinfluence_chunk(protocol):
    """The official code's ratio: 100 per chunk for 500 per query, five chunks a query."""
    return max(1, int(protocol.get("query") or 0) // 5)


_TOP_B = {"selection": "top_b"}
_DEINF = {"selection": "deinfluence"}
_DEINF_DESCRIPTION = "; de-influence selection in 5 chunks per query (the official code's default)"

#: Parameter variants of the built-in strategies, listed after their class's default entry:
#: name: (class in skdynal.strategies, constructor parameters, description[, from protocol])
_VARIANTS = {
    "dynamical-topb": (
        "DynamicALSampler",
        {"gamma": 2.0, **_TOP_B},
        "dynamicAL, gamma=2, top-b (the paper's Eq. 15 and batch selection)",
    ),
    "dynamical-balanced": (
        "DynamicALSampler",
        {"gamma": 2.0, "selection": "class_balanced"},
        "dynamicAL, gamma=2, the largest scores with the pseudo classes taking turns",
    ),
    "dynamical-kmeanspp": (
        "DynamicALSampler",
        {"gamma": 2.0, "selection": "kmeans++"},
        "dynamicAL, gamma=2, k-means++ in gradient space from the score's center",
    ),
    "dynamical-farthest": (
        "DynamicALSampler",
        {"gamma": 2.0, "selection": "farthest_first"},
        "dynamicAL, gamma=2, farthest-first traversal in gradient space from the center",
    ),
    "dynamical-power": (
        "DynamicALSampler",
        {"gamma": 2.0, "selection": "power"},
        "dynamicAL, gamma=2, batch sampled with p ∝ squared distance to the center",
    ),
    "dynamical-softrank": (
        "DynamicALSampler",
        {"gamma": 2.0, "selection": "softrank"},
        "dynamicAL, gamma=2, batch sampled with p ∝ 1 / rank of the score",
    ),
    "dynamical-gamma0": (
        "DynamicALSampler",
        {"gamma": 0.0, **_TOP_B},
        "dynamicAL with gamma=0 (= EGL), top-b",
    ),
    "dynamical-gamma1": (
        "DynamicALSampler",
        {"gamma": 1.0, **_TOP_B},
        "dynamicAL with gamma=1, top-b",
    ),
    "dynamical-inf": (
        "DynamicALSampler",
        {"gamma": math.inf, **_TOP_B},
        "dynamicAL alignment term alone (gamma=inf), top-b",
    ),
    "dynamical-deinf": (
        "DynamicALSampler",
        {"gamma": 2.0, **_DEINF},
        "dynamicAL, gamma=2" + _DEINF_DESCRIPTION,
        {"chunk_size": _deinfluence_chunk},
    ),
    "dynamical-gamma0-deinf": (
        "DynamicALSampler",
        {"gamma": 0.0, **_DEINF},
        "dynamicAL, gamma=0" + _DEINF_DESCRIPTION,
        {"chunk_size": _deinfluence_chunk},
    ),
    "dynamical-gamma1-deinf": (
        "DynamicALSampler",
        {"gamma": 1.0, **_DEINF},
        "dynamicAL, gamma=1" + _DEINF_DESCRIPTION,
        {"chunk_size": _deinfluence_chunk},
    ),
    "lada-fixed": ("LADASampler", {"alpha": 2.0}, "LADA with a fixed alpha=2 (no generator)"),
    "lada-acq-only": (
        "LADASampler",
        {"acquisition_only": True},
        "LADA's pairs scored by H(x1) + H(x2), no mixing",
    ),
}


def _builtin_entries():
    """Every built-in entry, in the catalog's order, each class's variants after it."""
    unknown = {cls for cls, *_ in _VARIANTS.values()} - set(STRATEGIES)
    if unknown:  # a variant of a class that is not in the catalog: a bug of this module
        raise RuntimeError(f"_VARIANTS names classes missing from skdynal._catalog: {unknown}")
    entries = {}
    for cls, builtin in STRATEGIES.items():
        entries[builtin.name] = (cls, {}, builtin.description, builtin.from_protocol)
        entries.update({name: v for name, v in _VARIANTS.items() if v[0] == cls})
    return entries


_REGISTRY = {
    name: _Entry(_strategy_class(cls, params, *rest), description, requires=(cls,))
    for name, (cls, params, description, *rest) in _builtin_entries().items()
}


def register_strategy(name, factory, *, description="", overwrite=False):
    """Make a query strategy available by name to the runner and the command line.

    Parameters
    ----------
    name : str
        Lower-case name used on the command line (e.g. ``"my-strategy"``).
    factory : callable
        ``factory(random_state) -> strategy``; called once per (strategy, seed) cell with
        the cell's seed, so that a fresh strategy (no state carried between cells) is
        seeded like the rest of the cell. A factory that also accepts a ``protocol``
        keyword gets the experiment's protocol (a dict with ``initial``, ``query``,
        ``rounds``, ``epochs``, ...).
    description : str, default=""
        One line shown by ``skdynal list``.
    overwrite : bool, default=False
        Replace an existing entry of the same name instead of raising.

    Examples
    --------
    >>> from skdynal.experiments import register_strategy
    >>> from skdynal import DynamicALSampler
    >>> def gamma3(random_state):
    ...     return DynamicALSampler(gamma=3.0, random_state=random_state)
    >>> register_strategy("dynamical-gamma3", gamma3, description="dynamicAL, gamma=3",
    ...                   overwrite=True)
    """
    if not isinstance(name, str) or not name or name != name.strip():
        raise ValueError(f"name must be a non-empty string without spaces, got {name!r}.")
    if not callable(factory):
        raise TypeError(f"factory must be callable as factory(random_state), got {factory!r}.")
    if name in _REGISTRY and not overwrite:
        raise ValueError(
            f"A strategy named {name!r} is already registered; pass overwrite=True to replace it."
        )
    _REGISTRY[name] = _Entry(factory, description)


def _is_available(entry):
    if not entry.requires:
        return True
    module = importlib.import_module("skdynal.strategies")
    return all(hasattr(module, cls) for cls in entry.requires)


def registered_strategies():
    """Every registered name with its description, available in this installation or not.

    Returns
    -------
    strategies : dict of str to str
    """
    return {name: entry.description for name, entry in _REGISTRY.items()}


def available_strategies():
    """Names of the registered strategies that this installation can build, in
    registration order.

    Returns
    -------
    names : list of str
    """
    return [name for name, entry in _REGISTRY.items() if _is_available(entry)]


def make_strategy(name, random_state=None, protocol=None):
    """Build the strategy registered under ``name``, seeded with ``random_state``.

    Parameters
    ----------
    name : str
        A name from :func:`available_strategies`.
    random_state : int or None, default=None
        Passed to the strategy's factory.
    protocol : dict, default=None
        The experiment's protocol (``rounds``, ``query``, ...), for strategies whose
        parameters depend on it (ALBL's horizon ``n_rounds`` is ``rounds``).

    Returns
    -------
    strategy : callable
        A modAL query strategy.

    Raises
    ------
    ValueError
        If ``name`` is unknown or its class is missing from this installation; the message
        lists the valid names.
    """
    entry = _REGISTRY.get(name)
    if entry is None or not _is_available(entry):
        state = "unknown" if entry is None else "not available in this installation"
        raise ValueError(
            f"Strategy {name!r} is {state}; choose from {', '.join(available_strategies())}."
        )
    if protocol is not None and _accepts_protocol(entry.factory):
        return entry.factory(random_state, protocol=protocol)
    return entry.factory(random_state)


def _accepts_protocol(factory):
    try:
        return "protocol" in inspect.signature(factory).parameters
    except (TypeError, ValueError):
        return False
