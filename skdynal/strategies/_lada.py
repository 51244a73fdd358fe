"""LADA: look-ahead data acquisition via augmentation (InfoMixup)."""

import dataclasses
import math
import numbers
import warnings
from typing import ClassVar

import numpy as np
import torch
import torch.nn.functional as F
from skorch import NeuralNetClassifier
from skorch.dataset import Dataset as SkorchDataset
from torch.utils.data import Dataset

from .._adapter import eval_mode
from .._base import BaseQueryStrategy
from .._selection import select_top_k
from .._streaming import map_pool, take_rows
from .._validation import BATCH_SIZE, StrictInterval, check_positive_int
from ._mixing import INPUT, mixed_forward, resolve_mix_layers
from ._outputs import batch_probabilities, predict_nonlinearity

__all__ = ["LADAMixin", "LADANetClassifier", "LADASampler"]

_TINY = 1e-12
#: Smallest alpha the generator outputs (Beta(a, a) sampling is unstable for tiny a).
_ALPHA_FLOOR = 0.05
_GENERATOR_WIDTH = 32
_POOLED_SIZE = 4


def entropy(probabilities):
    """Shannon entropy (nats) of each row of class probabilities, differentiable."""
    return -(probabilities * torch.log(probabilities.clamp_min(_TINY))).sum(dim=-1)


def _summarise(features):
    """A fixed-size ``(B, D)`` summary of a feature batch for the generator.

    Image-like maps ``(B, C, H, W)`` (and sequences ``(B, C, T)``) are average-pooled to at
    most 4 x 4 (4) positions per channel, then flattened; anything else is flattened.
    """
    if features.dim() == 4:
        size = (min(_POOLED_SIZE, features.shape[2]), min(_POOLED_SIZE, features.shape[3]))
        features = F.adaptive_avg_pool2d(features, size)
    elif features.dim() == 3:
        features = F.adaptive_avg_pool1d(features, min(_POOLED_SIZE, features.shape[2]))
    return features.flatten(1)


class AlphaGenerator(torch.nn.Module):
    """The generator of InfoMixup: a pair's feature maps to its mixing parameter ``alpha``.

    ``[s(h_a), s(h_b)] -> Linear(2D, 32) - tanh - Linear(32, 1) - sigmoid``, scaled to
    ``alpha = 0.05 + (alpha_max - 0.05) * sigmoid``, with ``s`` the summary of
    ``_summarise`` (average pooling to at most 4 x 4 positions, then flattening). The
    authors' generator is a small LeNet on the concatenated feature maps with a sigmoid
    output (``alpha`` in (0, 1)); pooling first keeps this one small for any layer.

    Parameters
    ----------
    n_features : int
        ``D``, the size of one member's summary.
    alpha_max : float
        Largest ``alpha``.
    """

    def __init__(self, n_features, alpha_max):
        super().__init__()
        self.alpha_max = alpha_max
        self.hidden = torch.nn.Linear(2 * n_features, _GENERATOR_WIDTH)
        self.out = torch.nn.Linear(_GENERATOR_WIDTH, 1)

    def forward(self, h_a, h_b):
        z = torch.cat([_summarise(h_a), _summarise(h_b)], dim=1)
        gate = torch.sigmoid(self.out(torch.tanh(self.hidden(z)))).squeeze(1)
        return _ALPHA_FLOOR + (self.alpha_max - _ALPHA_FLOOR) * gate


def _rng_devices():
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        return list(range(torch.cuda.device_count()))
    return []


class LADASampler(BaseQueryStrategy):
    """InfoMixup: query pairs whose mixup is most informative (LADA [1]_).

    Each query

    1. draws a random subset of ``max(subset_size, n_instances)`` pool rows (the whole pool
       when smaller), splits it in two halves and pairs row ``i`` of the first half with
       row ``i`` of the second (an odd row out stays unpaired);
    2. picks the mixing layer uniformly among ``mix_layers`` (see
       :func:`~skdynal.strategies.mixed_forward`);
    3. trains a small generator (:class:`AlphaGenerator`, fresh each query) on the pairs'
       feature maps at that layer to output a per-pair ``alpha`` that maximises the mean
       entropy of the net's predictions on the mixed samples
       ``lam h(x_a) + (1 - lam) h(x_b)``, ``lam ~ Beta(alpha, alpha)`` drawn with
       ``rsample`` (reparameterised, so the entropy is differentiable in ``alpha``); the net
       is frozen (only the generator's parameters get gradients);
    4. scores each pair by ``H(x_a) + H(x_b) + mean_lam H(mix)`` (``n_lambda`` draws of
       ``lam`` from the final ``alpha``) and returns both members of the best pairs.

    With ``alpha`` set (the paper's fixed-alpha baseline, "LADA_fixed" in the authors' code)
    no generator is trained: ``lam ~ Beta(alpha, alpha)`` for every pair. With
    ``acquisition_only=True`` the mixing term is left out: pairs are scored by
    ``H(x_a) + H(x_b)`` on the same random pairs, and nothing is handed to the net (see
    Notes).

    Entropies use the probabilities of the net's ``predict_proba`` (softmax of logits with
    ``CrossEntropyLoss``, the output itself with ``NLLLoss``), in nats, with the module in
    ``eval()`` mode; its previous modes are restored and its parameters and gradients are
    never touched.

    **Odd n_instances.** ``n_instances // 2`` best pairs give both members; the last row is
    the member with the larger entropy of the next-best pair, or the unpaired row of the
    subset when every pair was taken. Returned scores are the pair scores (the unpaired
    row's own entropy).

    Parameters
    ----------
    subset_size : int, default=2000
        Rows of the pool drawn at random each query (the authors' 2,000).
    n_lambda : int, default=5
        Draws of ``lam`` per pair for the mixed entropy (the authors' ``numLambda``).
    generator_epochs : int, default=10
        Passes over the pairs to train the generator (the authors' ``Gepochs``; 0 keeps
        the randomly initialised generator).
    generator_lr : float, default=1e-3
        Adam learning rate of the generator (the authors use 5e-5).
    alpha_max : float, default=1.0
        Largest ``alpha`` the generator can output (the authors' sigmoid output: 1).
    mix_layers : list of str, default=None
        Layers to mix at: ``"input"`` and/or submodule names; ``None`` picks ``"input"``
        and the first two hidden stages (see :func:`~skdynal.strategies.resolve_mix_layers`).
    alpha : float, default=None
        ``None``: learn ``alpha`` per pair (InfoMixup). A number: fixed ``alpha`` for every
        pair, no generator (the fixed-alpha baseline).
    acquisition_only : bool, default=False
        Score the pairs by ``H(x_a) + H(x_b)`` only (no mixing, no generator).
    batch_size : int, default=None
        Pairs per forward pass (and per generator step). ``None`` uses the net's
        validation batch size.
    random_state : int, RandomState instance or None, default=None
        Draws the subset, the layer, the generator's initialisation and its ``lam``
        samples (in a forked torch random state, so torch's global one is untouched).

    Attributes
    ----------
    pairs_ : ndarray of shape (n_pairs, 2)
        Pool indices of the last query's pairs ``(x_a, x_b)``.
    pair_scores_ : ndarray of shape (n_pairs,)
        Their scores.
    mixed_entropy_ : ndarray of shape (n_pairs,)
        Their mixed-entropy terms ``mean_lam H(mix)`` (``None`` for acquisition only).
    layer_ : str
        The layer mixed at in the last query.
    alpha_ : ndarray of shape (n_pairs,)
        The ``alpha`` of every pair of the last query (``None`` for acquisition only).
    generator_losses_ : list of float
        Mean negative mixed entropy of each generator epoch in the last query.

    Notes
    -----
    **Teaching.** LADA also trains the net on the chosen pairs' mixup: when the net is a
    :class:`LADAMixin` net (for example :class:`LADANetClassifier`, the strategy's
    ``capabilities().net_class``), the query hands it the chosen pairs, their ``alpha`` and the
    layer through ``net.set_mixup_pairs`` (stored as ``net.lada_pairs_``); once the rows
    are taught, every training epoch adds a manifold-mixup step on them. With any other
    skorch net the strategy only queries. Pairs are handed over only for array or tensor
    pools (not ``Dataset`` pools, whose rows cannot be matched to the training set).

    Cost per query: one forward pass over the subset, ``generator_epochs`` forward and
    backward passes over it with ``n_lambda`` mixed copies of the layers after the mixing
    layer, and one more such forward pass to score.

    References
    ----------
    .. [1] Y. Kim, K. Song, J. Jang and I.-C. Moon, "LADA: Look-Ahead Data Acquisition via
       Augmentation for Deep Active Learning", NeurIPS 2021.

    Examples
    --------
    >>> from skdynal import LADASampler
    >>> LADASampler(subset_size=500, random_state=0)
    LADASampler(random_state=0, subset_size=500)
    """

    _parameter_constraints: ClassVar[dict] = {
        "subset_size": [StrictInterval(numbers.Integral, 2, None, closed="left")],
        "n_lambda": [StrictInterval(numbers.Integral, 1, None, closed="left")],
        "generator_epochs": [StrictInterval(numbers.Integral, 0, None, closed="left")],
        "generator_lr": [StrictInterval(numbers.Real, 0, math.inf, closed="neither")],
        "alpha_max": [StrictInterval(numbers.Real, _ALPHA_FLOOR, math.inf, closed="neither")],
        "mix_layers": [list, tuple, str, None],
        "alpha": [StrictInterval(numbers.Real, 0, math.inf, closed="neither"), None],
        "acquisition_only": ["boolean"],
        "batch_size": BATCH_SIZE,
        "random_state": ["random_state"],
    }

    def __init__(
        self,
        subset_size=2000,
        n_lambda=5,
        generator_epochs=10,
        generator_lr=1e-3,
        alpha_max=1.0,
        mix_layers=None,
        alpha=None,
        acquisition_only=False,
        batch_size=None,
        random_state=None,
    ):
        self.subset_size = subset_size
        self.n_lambda = n_lambda
        self.generator_epochs = generator_epochs
        self.generator_lr = generator_lr
        self.alpha_max = alpha_max
        self.mix_layers = mix_layers
        self.alpha = alpha
        self.acquisition_only = acquisition_only
        self.batch_size = batch_size
        self.random_state = random_state

    def capabilities(self):
        # The pairs couple rows and the generator trains on all of them: no shards.
        return dataclasses.replace(
            super().capabilities(),
            net_class=LADANetClassifier,
            reads_pool=False,
            shardable=False,
        )

    # --- the query ------------------------------------------------------------------------

    def entropy_and_rows(self, adapter, state, X_batch):
        """Per-batch hook: each row's prediction entropy, and the row as the net sees it.

        Returns
        -------
        entropy : torch.Tensor of shape (batch,)
        rows : torch.Tensor
            ``X_batch`` itself (cast to the module's dtype), so that the pairs can be mixed.
        """
        return entropy(batch_probabilities(adapter, X_batch).double()), X_batch

    def select_from_outputs(self, adapter, state, outputs, n_instances, random_state, pool):
        """Draw the pairs, learn their ``alpha``, score them and take the best pairs."""
        X_pool = pool.X
        if isinstance(getattr(X_pool, "X", None), dict):
            raise TypeError(
                "LADASampler mixes pool rows pairwise (x = lam * x_a + (1 - lam) * x_b), so "
                "it needs the pool as an array or a tensor; got a "
                f"{type(X_pool).__name__} (a dict of arrays, as for multi-input modules, is "
                "wrapped in a skorch Dataset)."
            )
        module = adapter.module
        layers = resolve_mix_layers(module, self.mix_layers)
        n_pool = len(pool)
        n_subset = min(n_pool, max(self.subset_size, n_instances))
        subset = random_state.choice(n_pool, size=n_subset, replace=False)
        n_pairs = n_subset // 2
        layer = layers[random_state.randint(len(layers))]
        seed = int(random_state.randint(2**31 - 1))

        H, X_rows = pool.map("entropy_and_rows", rows=subset)
        H_a, H_b = H[:n_pairs], H[n_pairs : 2 * n_pairs]

        self.layer_ = layer
        self.alpha_ = None
        self.generator_losses_ = []
        H_mix = np.zeros(n_pairs)
        if n_pairs and not self.acquisition_only:
            X_all = adapter.to_device(X_rows)
            X_a, X_b = X_all[:n_pairs], X_all[n_pairs : 2 * n_pairs]
            with torch.random.fork_rng(devices=_rng_devices()), eval_mode(module):
                torch.manual_seed(seed)
                H_mix, self.alpha_ = self._mixed_entropies(adapter, X_a, X_b, layer)
        pair_scores = H_a + H_b + H_mix
        self.pairs_ = np.stack([subset[:n_pairs], subset[n_pairs : 2 * n_pairs]], axis=1)
        self.pair_scores_ = pair_scores
        self.mixed_entropy_ = None if self.acquisition_only else H_mix

        order = select_top_k(pair_scores, n_pairs, random_state)
        n_full = min(n_instances // 2, n_pairs)
        chosen = order[:n_full]
        indices = np.stack([subset[chosen], subset[n_pairs + chosen]], axis=1).ravel()
        scores = np.repeat(pair_scores[chosen], 2)
        if len(indices) < n_instances:
            if n_full < n_pairs:
                pair = order[n_full]
                member = pair if H_a[pair] >= H_b[pair] else n_pairs + pair
                extra, extra_score = subset[member], pair_scores[pair]
            else:
                extra, extra_score = subset[2 * n_pairs], H[2 * n_pairs]
            indices = np.append(indices, extra)
            scores = np.append(scores, extra_score)

        if (
            not self.acquisition_only
            and n_full > 0
            and isinstance(adapter.net, LADAMixin)
            and not isinstance(X_pool, Dataset)
        ):
            adapter.net.set_mixup_pairs(
                pool.take(subset[chosen]),
                pool.take(subset[n_pairs + chosen]),
                alpha=self.alpha_[chosen],
                layer=layer,
            )
        return indices, scores

    def _mixed_entropies(self, adapter, X_a, X_b, layer):
        """Train the generator (or use the fixed alpha); return ``(H_mix, alpha)``."""
        module = adapter.module
        nonlinearity = predict_nonlinearity(adapter.net)
        n_pairs = len(X_a)
        batch_size = self.batch_size or n_pairs
        n_lambda = self.n_lambda
        state = {"generator": None}

        def make_lam(record=None):
            def lam(h_a, h_b):
                if self.alpha is not None:
                    alpha = torch.full(
                        (len(h_a),), float(self.alpha), dtype=h_a.dtype, device=h_a.device
                    )
                else:
                    if state["generator"] is None:
                        n_features = _summarise(h_a[:1]).shape[1]
                        state["generator"] = AlphaGenerator(n_features, float(self.alpha_max))
                        state["generator"].to(device=h_a.device, dtype=h_a.dtype)
                    alpha = state["generator"](h_a.detach(), h_b.detach())
                if record is not None:
                    record.append(alpha.detach())
                return torch.distributions.Beta(alpha, alpha).rsample((n_lambda,))

            return lam

        def mixed_entropy(X_a_batch, X_b_batch, record=None):
            out = mixed_forward(module, X_a_batch, X_b_batch, make_lam(record), layer)
            if isinstance(out, tuple):
                out = out[0]
            return entropy(nonlinearity(out)).reshape(n_lambda, len(X_a_batch)).mean(dim=0)

        if self.alpha is None and self.generator_epochs > 0:
            optimizer = None
            for _ in range(self.generator_epochs):
                permutation = torch.randperm(n_pairs, device=X_a.device)
                losses = []
                for start in range(0, n_pairs, batch_size):
                    batch = permutation[start : start + batch_size]
                    loss = -mixed_entropy(X_a[batch], X_b[batch]).mean()
                    generator = state["generator"]
                    if optimizer is None:
                        optimizer = torch.optim.Adam(
                            generator.parameters(), lr=float(self.generator_lr)
                        )
                    params = list(generator.parameters())
                    grads = torch.autograd.grad(loss, params)
                    for p, g in zip(params, grads, strict=True):
                        p.grad = g
                    optimizer.step()
                    losses.append(loss.item() * len(batch))
                self.generator_losses_.append(float(np.sum(losses) / n_pairs))

        def score_pairs(pairs):
            alpha = []
            H = mixed_entropy(pairs["a"], pairs["b"], alpha)
            return H.double(), alpha[0].double()

        # The scoring pass, by batches of pairs through the pool loop (all pairs in one
        # batch unless batch_size is set, as the lam draws of the seed were made before).
        with torch.no_grad():
            return map_pool(
                adapter,
                SkorchDataset({"a": X_a.cpu(), "b": X_b.cpu()}),
                score_pairs,
                batch_size=batch_size,
                quantity="mixed entropies",
            )


# --- the teaching half -------------------------------------------------------------------


def _row_keys(X, dtype=None):
    array = X.detach().cpu().numpy() if torch.is_tensor(X) else np.asarray(X)
    if dtype is not None:
        array = array.astype(dtype, copy=False)
    array = np.ascontiguousarray(array.reshape(len(array), -1))
    return [row.tobytes() for row in array]


class LADAMixin:
    """Net mixin that adds LADA's manifold-mixup step on the queried pairs to training.

    Put it before the skorch net class, ``class Net(LADAMixin, NeuralNetClassifier)``, or
    use :class:`LADANetClassifier`. :class:`LADASampler` hands the net the pairs it chose
    (``set_mixup_pairs``); once both members are in the training data (their labels are
    found by matching the rows of ``X`` given to ``fit``, as modAL's ``teach`` does), every
    training epoch ends with ``lada_mixup_steps`` extra optimizer steps on the loss

    .. math::

        -\\frac{1}{B} \\sum_i \\sum_c \\tilde y_{ic} \\log p_c\\big(g_k(\\lambda_i h_k(x_{a,i})
        + (1 - \\lambda_i) h_k(x_{b,i}))\\big),
        \\quad \\tilde y_i = \\lambda_i e_{y_{a,i}} + (1 - \\lambda_i) e_{y_{b,i}},

    with ``lambda_i ~ Beta(alpha_i, alpha_i)`` from each pair's learned ``alpha`` and ``k``
    the layer chosen by the query (as the authors' ``train_mixed``: one step per epoch on
    the latest query's pairs, in train mode, with the net's optimizer). The optimizer's
    gradients are cleared before the step, so it uses the mixup gradient alone (the
    authors' code adds it to the last training batch's stale gradient).

    Parameters
    ----------
    lada_mixup_steps : int, default=1
        Mixup steps per training epoch (0 turns the teaching step off).
    lada_random_state : int, RandomState instance or None, default=None
        Draws the ``lambda`` of the mixup steps (fixed at ``initialize``). ``None`` seeds
        it from torch's global generator at ``initialize`` (after the module is built),
        so ``torch.manual_seed`` makes the whole training reproducible, as for any skorch
        net.
    *args, **kwargs
        Passed on to the skorch net.

    Attributes
    ----------
    lada_pairs_ : dict or None
        The pairs of the last query: ``X_a``, ``X_b``, ``alpha`` (one per pair), ``layer``,
        and ``y_a``, ``y_b`` once known.
    lada_mixup_losses_ : list of float
        Loss of each mixup step of the last ``fit``.

    References
    ----------
    .. [1] Y. Kim, K. Song, J. Jang and I.-C. Moon, "LADA: Look-Ahead Data Acquisition via
       Augmentation for Deep Active Learning", NeurIPS 2021.
    """

    def __init__(self, *args, lada_mixup_steps=1, lada_random_state=None, **kwargs):
        super().__init__(*args, **kwargs)
        self.lada_mixup_steps = lada_mixup_steps
        self.lada_random_state = lada_random_state

    def initialize(self):
        """Initialise the net; forget earlier pairs and seed the ``lambda`` draws."""
        super().initialize()
        from sklearn.utils import check_random_state

        check_positive_int(self.lada_mixup_steps, "lada_mixup_steps", minimum=0)
        if self.lada_random_state is None:
            # Follow skorch's convention: torch's global seed makes training reproducible.
            seed = int(torch.randint(2**31 - 1, ()).item())
            self.lada_rng_ = np.random.RandomState(seed)
        else:
            self.lada_rng_ = check_random_state(self.lada_random_state)
        self.lada_pairs_ = None
        self.lada_mixup_losses_ = []
        return self

    def set_mixup_pairs(self, X_a, X_b, alpha, layer=INPUT, y_a=None, y_b=None):
        """Set the pairs that later training epochs mix (replacing earlier ones).

        Parameters
        ----------
        X_a, X_b : array-like of shape (n_pairs, ...)
            The pairs' members.
        alpha : float or array-like of shape (n_pairs,)
            Beta parameter of each pair's ``lambda``.
        layer : str, default="input"
            Where to mix (see :func:`~skdynal.strategies.mixed_forward`).
        y_a, y_b : array-like of shape (n_pairs,), default=None
            Labels; ``None`` finds them in the data of the next ``fit``.
        """
        if len(X_a) != len(X_b):
            raise ValueError(
                f"X_a and X_b must hold the same number of rows, got {len(X_a)} and {len(X_b)}."
            )
        alpha = np.broadcast_to(np.asarray(alpha, dtype=np.float64), (len(X_a),)).copy()
        if not np.all(np.isfinite(alpha) & (alpha > 0)):
            raise ValueError("alpha must be finite and > 0 for every pair.")
        if (y_a is None) != (y_b is None):
            raise ValueError("Give both y_a and y_b, or neither.")
        self.lada_pairs_ = {
            "X_a": X_a,
            "X_b": X_b,
            "alpha": alpha,
            "layer": layer,
            "y_a": None if y_a is None else np.asarray(y_a),
            "y_b": None if y_b is None else np.asarray(y_b),
        }
        return self

    def _find_pair_labels(self, X, y):
        pairs = self.lada_pairs_
        if pairs is None or pairs["y_a"] is not None or y is None:
            return
        try:
            X_array = X.detach().cpu().numpy() if torch.is_tensor(X) else np.asarray(X)
            keys = _row_keys(X_array)
            y_array = y.detach().cpu().numpy() if torch.is_tensor(y) else np.asarray(y)
            dtype = X_array.dtype
            keys_a = _row_keys(pairs["X_a"], dtype)
            keys_b = _row_keys(pairs["X_b"], dtype)
        except (TypeError, ValueError, AttributeError):
            warnings.warn(
                "LADA could not match the queried pairs to the training data (X is not an "
                "array); the mixup step is skipped. Pass y_a and y_b to set_mixup_pairs.",
                stacklevel=3,
            )
            self.lada_pairs_ = None
            return
        label_of = dict(zip(keys, y_array, strict=True))
        found = np.array(
            [a in label_of and b in label_of for a, b in zip(keys_a, keys_b, strict=True)]
        )
        if not found.any():
            return  # not taught yet: keep them pending
        if not found.all():
            warnings.warn(
                f"{int((~found).sum())} of {len(found)} LADA pairs are not in the training "
                "data; the mixup step uses the others.",
                stacklevel=3,
            )
        keep = np.flatnonzero(found)
        pairs["X_a"] = take_rows(pairs["X_a"], keep)
        pairs["X_b"] = take_rows(pairs["X_b"], keep)
        pairs["alpha"] = pairs["alpha"][keep]
        pairs["y_a"] = np.array([label_of[keys_a[i]] for i in keep])
        pairs["y_b"] = np.array([label_of[keys_b[i]] for i in keep])

    def fit_loop(self, X, y=None, epochs=None, **fit_params):
        """Find the pending pairs' labels in ``(X, y)``, then run skorch's fit loop."""
        self._find_pair_labels(X, y)
        self.lada_mixup_losses_ = []
        return super().fit_loop(X, y, epochs=epochs, **fit_params)

    def run_single_epoch(self, iterator, training, prefix, step_fn, **fit_params):
        """Run one epoch; after a training epoch, take the mixup steps."""
        super().run_single_epoch(iterator, training, prefix, step_fn, **fit_params)
        if training and iterator is not None:
            for _ in range(self.lada_mixup_steps):
                loss = self.lada_mixup_step()
                if loss is None:
                    break
                self.history.record("lada_mixup_loss", loss)

    def _soft_label_loss(self, output, targets):
        if isinstance(getattr(self, "criterion_", None), torch.nn.CrossEntropyLoss):
            log_p = F.log_softmax(output, dim=-1)
        else:
            log_p = torch.log(predict_nonlinearity(self)(output).clamp_min(_TINY))
        return -(targets * log_p).sum(dim=-1).mean()

    def lada_mixup_step(self):
        """One manifold-mixup step on the labeled pairs; returns its loss (``None`` if none).

        Gradients are cleared first, so the optimizer steps on the mixup loss's gradient
        alone; they are left in the parameters' ``.grad`` afterwards, as after any step.
        """
        pairs = self.lada_pairs_
        if pairs is None or pairs["y_a"] is None or len(pairs["y_a"]) == 0:
            return None
        self._set_training(True)
        device = next(self.module_.parameters()).device
        dtype = next(self.module_.parameters()).dtype

        def as_tensor(X):
            X = torch.as_tensor(np.asarray(X) if not torch.is_tensor(X) else X, device=device)
            return X.to(dtype) if X.is_floating_point() else X

        X_a, X_b = as_tensor(pairs["X_a"]), as_tensor(pairs["X_b"])
        alpha = pairs["alpha"]
        lam_np = self.lada_rng_.beta(alpha, alpha)
        lam = torch.as_tensor(lam_np, dtype=dtype, device=device)
        self.optimizer_.zero_grad(set_to_none=True)
        output = mixed_forward(self.module_, X_a, X_b, lam, pairs["layer"])
        if isinstance(output, tuple):
            output = output[0]
        y_a = torch.as_tensor(pairs["y_a"], dtype=torch.long, device=device)
        y_b = torch.as_tensor(pairs["y_b"], dtype=torch.long, device=device)
        lam_col = lam.unsqueeze(1)
        targets = lam_col * F.one_hot(y_a, output.shape[-1]).to(dtype) + (1 - lam_col) * F.one_hot(
            y_b, output.shape[-1]
        ).to(dtype)
        loss = self._soft_label_loss(output, targets)
        loss.backward()
        self.optimizer_.step()
        value = float(loss.item())
        self.lada_mixup_losses_.append(value)
        return value


class LADANetClassifier(LADAMixin, NeuralNetClassifier):
    """skorch's ``NeuralNetClassifier`` with :class:`LADAMixin`: LADA's teaching step.

    See :class:`LADAMixin` for the ``lada_*`` parameters; every other parameter is
    ``NeuralNetClassifier``'s. Labels must be class indices ``0 .. K-1``.

    References
    ----------
    .. [1] Y. Kim, K. Song, J. Jang and I.-C. Moon, "LADA: Look-Ahead Data Acquisition via
       Augmentation for Deep Active Learning", NeurIPS 2021.

    Examples
    --------
    >>> import torch
    >>> from skdynal import LADANetClassifier
    >>> net = LADANetClassifier(
    ...     torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.ReLU(), torch.nn.Linear(8, 3)),
    ...     criterion=torch.nn.CrossEntropyLoss, lada_random_state=0, train_split=None,
    ...     verbose=0,
    ... )
    >>> net.lada_mixup_steps
    1
    """
