"""Query strategies, each callable as a modAL ``query_strategy``.

The classes are imported from their modules as listed in ``skdynal._catalog`` (one line
per built-in strategy), so that this package, ``skdynal.__all__``, the experiment
registry and the contract tests cannot disagree.
"""

import importlib

from .. import _catalog

__all__ = sorted([*_catalog.STRATEGIES, *_catalog.COMPANIONS])


def _import_all():
    modules = {name: entry.module for name, entry in _catalog.STRATEGIES.items()}
    modules.update({name: module for name, (module, _) in _catalog.COMPANIONS.items()})
    for name, module in modules.items():
        globals()[name] = getattr(importlib.import_module(f".{module}", __name__), name)


_import_all()
