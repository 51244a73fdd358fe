"""Query strategies, each callable as a modAL ``query_strategy``."""

from ._dynamical import DynamicALSampler
from ._ntk_lookahead import NTKLookaheadSampler
from ._tidal import TiDALMixin, TiDALNetClassifier, TiDALSampler

__all__ = [
    "DynamicALSampler",
    "NTKLookaheadSampler",
    "TiDALMixin",
    "TiDALNetClassifier",
    "TiDALSampler",
]
