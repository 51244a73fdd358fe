"""Scoring the pool on many workers: Ray, with the same answer as local scoring.

Ray is an optional dependency (``pip install "skdynal[ray]"``); it is imported when a
:class:`RayScorer` first runs, so this module imports without it.
"""

from ._ray import RayScorer
from ._sharding import merge_top_k, shard_bounds, shard_top_k, tie_break_ranks

__all__ = ["RayScorer", "merge_top_k", "shard_bounds", "shard_top_k", "tie_break_ranks"]
