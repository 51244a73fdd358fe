"""skdynal: deep active learning by leveraging training dynamics, for skorch and modAL."""

from ._version import __version__
from .strategies import (
    DynamicALSampler,
    NTKLookaheadSampler,
    TiDALMixin,
    TiDALNetClassifier,
    TiDALSampler,
)

__all__ = [
    "DynamicALSampler",
    "NTKLookaheadSampler",
    "TiDALMixin",
    "TiDALNetClassifier",
    "TiDALSampler",
    "__version__",
]
