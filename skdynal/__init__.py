"""skdynal: deep active learning by leveraging training dynamics, for skorch and modAL."""

from ._version import __version__
from .strategies import DynamicALSampler

__all__ = ["DynamicALSampler", "__version__"]
