"""The two ends of dynamicAL's γ: expected gradient length (γ = 0) and influence (γ = ∞)."""

import inspect
from typing import ClassVar

from ._dynamical import DynamicALSampler

__all__ = ["EGLSampler", "InfluenceSampler"]

_DEFAULT_METHOD = inspect.signature(DynamicALSampler.__init__).parameters["method"].default


class _FixedGammaSampler(DynamicALSampler):
    """dynamicAL's scoring with ``gamma`` fixed by the class instead of a parameter."""

    _parameter_constraints: ClassVar[dict] = {
        name: constraints
        for name, constraints in DynamicALSampler._parameter_constraints.items()
        if name != "gamma"
    }
    _gamma = None

    def __init__(
        self,
        batch_size=None,
        method=_DEFAULT_METHOD,
        random_state=None,
        progress=False,
        selection="top_b",
        chunk_size=100,
        n_candidates="auto",
        beta=1.0,
    ):
        self.batch_size = batch_size
        self.method = method
        self.random_state = random_state
        self.progress = progress
        self.selection = selection
        self.chunk_size = chunk_size
        self.n_candidates = n_candidates
        self.beta = beta

    @property
    def gamma(self):
        """The class's fixed ``gamma`` (not a parameter)."""
        return self._gamma


_PARAMETERS = """
    Parameters
    ----------
    batch_size : int, default=None
        Pool samples per batch. ``None`` uses the net's validation batch size.
    method : str, default as in :class:`DynamicALSampler`
        How per-sample gradient statistics are computed; see :class:`DynamicALSampler`.
    random_state : int, RandomState instance or None, default=None
        Breaks ties among equal scores.
    progress : bool, default=False
        Show a tqdm progress bar over the pool.
    selection : str, default="top_b"
        How the batch is picked from the scores: ``"top_b"``, ``"class_balanced"``,
        ``"deinfluence"``, ``"kmeans++"``, ``"farthest_first"``, ``"softrank"``, and, for
        :class:`EGLSampler` only (whose center ``c`` is the origin), ``"power"``; see
        :class:`DynamicALSampler` (with ``"deinfluence"`` the same unscaled de-influence
        term is subtracted).
    chunk_size : int, default=100
        Samples per chunk with ``selection="deinfluence"``.
    n_candidates : int or "auto", default="auto"
        Rows of the pairwise selections; see :class:`DynamicALSampler`.
    beta : float, default=1.0
        Exponent of the ``"power"`` and ``"softrank"`` selections.
"""


class EGLSampler(_FixedGammaSampler):
    __doc__ = f"""Expected gradient length: query the rows whose pseudo-label gradient is largest.

    Score: ``||g_u||²`` with ``g_u = ∇_θ ℓ(f(x_u; θ), ŷ_u)`` over all trainable parameters,
    the pseudo label ``ŷ_u = argmax f(x_u)`` and the net in ``eval()`` mode. This is
    :class:`DynamicALSampler` with ``gamma=0`` (the same gradient code): the first term of
    dynamicAL's score, and the ``γ = 0`` point of the paper's Figure 5. It needs no labeled
    set. Cost and memory are those of :class:`DynamicALSampler` without the labeled-set
    gradient.

    Settles et al. weight the gradient length by the predicted probability of every label;
    like the dynamicAL paper, this uses the pseudo label only.
    {_PARAMETERS}
    References
    ----------
    .. [1] B. Settles, M. Craven and S. Ray, "Multiple-Instance Active Learning", NeurIPS
       2008.
    .. [2] H. Wang, W. Huang, Z. Wu, A. Margenot, H. Tong and J. He, "Deep Active Learning
       by Leveraging Training Dynamics", NeurIPS 2022.

    Examples
    --------
    >>> from skdynal import EGLSampler
    >>> EGLSampler(batch_size=128)
    EGLSampler(batch_size=128)
    """

    _gamma = 0.0


class InfluenceSampler(_FixedGammaSampler):
    __doc__ = f"""Influence (identity Hessian): query the rows most aligned with the labeled set.

    Score: ``<g_u, G>`` with ``g_u`` the pseudo-label gradient of pool row ``x_u`` and
    ``G = Σ_(x,y)∈S ∇_θ ℓ(f(x; θ), y)`` the summed gradient over the labeled set, all
    trainable parameters, net in ``eval()`` mode. This is :class:`DynamicALSampler` with
    ``gamma=float("inf")`` (the same gradient code): dynamicAL's second term alone, the
    ``γ = ∞`` point of the paper's Figure 5, i.e. the influence function of Koh & Liang with
    the Hessian replaced by the identity. Needs the labeled set.
    {_PARAMETERS}
    References
    ----------
    .. [1] P. W. Koh and P. Liang, "Understanding Black-box Predictions via Influence
       Functions", ICML 2017.
    .. [2] H. Wang, W. Huang, Z. Wu, A. Margenot, H. Tong and J. He, "Deep Active Learning
       by Leveraging Training Dynamics", NeurIPS 2022.

    Examples
    --------
    >>> from skdynal import InfluenceSampler
    >>> InfluenceSampler()
    InfluenceSampler()
    """

    _gamma = float("inf")
