"""skdynal: deep active learning by leveraging training dynamics, for skorch and modAL."""

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
    LeastConfidenceSampler,
    MarginSampler,
    RandomSampler,
)

__all__ = [
    "ALBLSampler",
    "BADGESampler",
    "BALDSampler",
    "CoresetSampler",
    "DynamicALSampler",
    "EGLSampler",
    "EntropySampler",
    "InfluenceSampler",
    "LeastConfidenceSampler",
    "MarginSampler",
    "RandomSampler",
    "__version__",
]
