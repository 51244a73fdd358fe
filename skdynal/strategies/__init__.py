"""Query strategies, each callable as a modAL ``query_strategy``."""

from ._albl import ALBLSampler
from ._badge import BADGESampler
from ._bald import BALDSampler
from ._coreset import CoresetSampler
from ._dynamical import DynamicALSampler
from ._gradient_variants import EGLSampler, InfluenceSampler
from ._lada import AlphaGenerator, LADAMixin, LADANetClassifier, LADASampler
from ._mixing import mixed_forward, resolve_mix_layers
from ._ntk_lookahead import NTKLookaheadSampler
from ._random import RandomSampler
from ._tidal import TiDALSampler
from ._tidal_net import TiDALMixin, TiDALNetClassifier
from ._uncertainty import EntropySampler, LeastConfidenceSampler, MarginSampler

__all__ = [
    "ALBLSampler",
    "AlphaGenerator",
    "BADGESampler",
    "BALDSampler",
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
    "mixed_forward",
    "resolve_mix_layers",
]
