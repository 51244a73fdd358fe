"""Query strategies, each callable as a modAL ``query_strategy``."""

from ._dynamical import DynamicALSampler

__all__ = ["DynamicALSampler"]
