"""skdynal: deep active learning by leveraging training dynamics, for skorch and modAL."""

import importlib

from . import _catalog
from ._version import __version__ as __version__

#: The built-in strategies (``skdynal._catalog``), the nets and mixins they train with,
#: the pool loop's warning and the version.
__all__ = sorted(
    [
        *_catalog.STRATEGIES,
        *(name for name, (_, top_level) in _catalog.COMPANIONS.items() if top_level),
        "BatchSizeReducedWarning",
        "__version__",
    ]
)

# Imported on first use (PEP 562), so that ``import skdynal.persistence`` (the label
# journal) does not pay for torch and skorch.
_LAZY = {name: ".strategies" for name in __all__ if name != "__version__"}
_LAZY["BatchSizeReducedWarning"] = "._streaming"
_SUBPACKAGES = (
    "base",
    "callbacks",
    "datasets",
    "diagnostics",
    "distributed",
    "experiments",
    "gradients",
    "models",
    "persistence",
    "strategies",
)


def __getattr__(name):
    if name in _LAZY:
        value = getattr(importlib.import_module(_LAZY[name], __name__), name)
    elif name in _SUBPACKAGES:
        value = importlib.import_module(f".{name}", __name__)
    else:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    globals()[name] = value
    return value


def __dir__():
    return sorted(set(globals()) | set(__all__) | set(_SUBPACKAGES))
