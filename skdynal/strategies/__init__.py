"""Query strategies, each callable as a modAL ``query_strategy``."""

from ._albl import ALBLSampler
from ._badge import BADGESampler
from ._bald import BALDSampler
from ._coreset import CoresetSampler
from ._dynamical import DynamicALSampler
from ._gradient_variants import EGLSampler, InfluenceSampler
from ._random import RandomSampler
from ._uncertainty import EntropySampler, LeastConfidenceSampler, MarginSampler

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
]
