"""The built-in query strategies, one line each: the list everything else derives from.

``skdynal.__all__`` and ``skdynal.strategies`` (its imports and ``__all__``), the
experiment registry (:func:`skdynal.experiments.available_strategies`), the contract suite
(``tests/test_common.py``) and the strategy list of the API page read this table. A
built-in strategy is its module in ``skdynal/strategies/`` plus one line in
:data:`STRATEGIES`. This module imports nothing, so that ``import skdynal`` stays light.
"""

from typing import NamedTuple

__all__ = ["COMPANIONS", "STRATEGIES", "Builtin"]


class Builtin(NamedTuple):
    """One built-in strategy.

    Attributes
    ----------
    module : str
        The module of ``skdynal.strategies`` that defines the class (``"_margin"``).
    name : str
        Its name in the experiment registry and on the command line (``"margin"``),
        built with the default parameters.
    description : str
        One line for ``skdynal list``.
    from_protocol : dict, default=None
        Constructor parameters set from the experiment protocol (ALBL's horizon
        ``n_rounds`` is the protocol's ``rounds``).
    """

    module: str
    name: str
    description: str
    from_protocol: dict | None = None


#: Class name -> :class:`Builtin`, in the order of ``skdynal list``.
STRATEGIES = {
    "DynamicALSampler": Builtin(
        "_dynamical",
        "dynamical",
        "dynamicAL, gamma=2, DynamicALSampler's default (k-means++ in gradient space)",
    ),
    "RandomSampler": Builtin("_random", "random", "uniform random sampling"),
    "LeastConfidenceSampler": Builtin(
        "_uncertainty", "least-confidence", "1 - max softmax probability"
    ),
    "MarginSampler": Builtin(
        "_uncertainty", "margin", "smallest gap between the two top probabilities"
    ),
    "EntropySampler": Builtin("_uncertainty", "entropy", "entropy of the predicted distribution"),
    "CoresetSampler": Builtin("_coreset", "coreset", "greedy k-center on last-layer embeddings"),
    "BADGESampler": Builtin("_badge", "badge", "k-means++ on last-layer gradient embeddings"),
    "ALBLSampler": Builtin(
        "_albl",
        "albl",
        "active learning by learning (EXP4.P over random, margin, entropy, coreset)",
        {"n_rounds": "rounds"},
    ),
    "EGLSampler": Builtin("_gradient_variants", "egl", "expected gradient length"),
    "InfluenceSampler": Builtin(
        "_gradient_variants", "influence", "influence of the pseudo-labeled sample"
    ),
    "BALDSampler": Builtin(
        "_bald", "bald", "BALD with Monte Carlo dropout (needs dropout layers)"
    ),
    "TiDALSampler": Builtin("_tidal", "tidal", "TiDAL: entropy of predicted training dynamics"),
    "NTKLookaheadSampler": Builtin(
        "_ntk_lookahead", "ntk", "NTK look-ahead (MLMOC, linearised network)"
    ),
    "LADASampler": Builtin(
        "_lada",
        "lada",
        "LADA InfoMixup: pairs scored with a learned-alpha mixup (net: LADANetClassifier)",
    ),
}

#: The other public names of ``skdynal.strategies`` (the nets and mixins some strategies
#: train with, LADA's helpers): name -> (module, whether ``skdynal`` exports it too).
COMPANIONS = {
    "AlphaGenerator": ("_lada", False),
    "LADAMixin": ("_lada", True),
    "LADANetClassifier": ("_lada", True),
    "TiDALMixin": ("_tidal_net", True),
    "TiDALNetClassifier": ("_tidal_net", True),
    "mixed_forward": ("_mixing", False),
    "resolve_mix_layers": ("_mixing", False),
}
