"""skdynal: deep active learning by leveraging training dynamics, for skorch and modAL."""

from ._streaming import BatchSizeReducedWarning
from ._version import __version__
from .strategies import (
    ALBLSampler,
    BADGESampler,
    BALDSampler,
    CoresetSampler,
    DynamicALSampler,
    EGLSampler,
    EntropySampler,
    InfluenceSampler,
    LADAMixin,
    LADANetClassifier,
    LADASampler,
    LeastConfidenceSampler,
    MarginSampler,
    NTKLookaheadSampler,
    RandomSampler,
    TiDALMixin,
    TiDALNetClassifier,
    TiDALSampler,
)

__all__ = [
    "ALBLSampler",
    "BADGESampler",
    "BALDSampler",
    "BatchSizeReducedWarning",
    "CoresetSampler",
    "DynamicALSampler",
    "EGLSampler",
    "EntropySampler",
    "InfluenceSampler",
    "LADAMixin",
    "LADANetClassifier",
    "LADASampler",
    "LeastConfidenceSampler",
    "MarginSampler",
    "NTKLookaheadSampler",
    "RandomSampler",
    "TiDALMixin",
    "TiDALNetClassifier",
    "TiDALSampler",
    "__version__",
]
