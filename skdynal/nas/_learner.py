"""A modAL active learner that searches its architecture between query rounds (iNAS)."""

import numbers
import time
from typing import ClassVar

import numpy as np
import torch
from modAL.models import ActiveLearner
from sklearn.base import clone
from sklearn.utils import check_random_state

from .. import _modal_compat
from .._checks import (
    HasMethods,
    InvalidParameterError,
    StrictInterval,
    validate_parameter_constraints,
    validate_params,
)
from .._interrupt import interrupt_guard, raise_if_interrupted
from .._random import seeded_global_rngs
from ._families import check_structure
from ._search import candidate_structures, holdout_split

# scikit-learn >= 1.8 with modAL 0.4.x (see skdynal._modal_compat).
_modal_compat.apply()

__all__ = ["FamilyMember", "INASLearner", "set_architecture"]

_SEED_MAX = 2**31 - 1


_POSITIVE_INT = [StrictInterval(numbers.Integral, 1, None, closed="left")]


class FamilyMember(torch.nn.Module):
    """The member ``structure`` of a plain callable ``family``, as a skorch module class.

    skorch builds (and rebuilds, with fresh weights) modules from a class and keyword
    arguments; this wraps ``family(structure)`` so any callable family works that way.
    """

    _parameter_constraints: ClassVar[dict] = {"family": [callable]}

    def __init__(self, family=None, structure=(1, 1)):
        super().__init__()
        validate_parameter_constraints(
            self._parameter_constraints, {"family": family}, caller_name="FamilyMember"
        )
        member = family(structure)
        if not isinstance(member, torch.nn.Module):
            raise InvalidParameterError(
                f"family({structure!r}) returned {type(member).__name__}, not a torch.nn.Module."
            )
        self.member = member

    def forward(self, *args, **kwargs):
        return self.member(*args, **kwargs)


def _architecture_params(family, structure):
    """``module`` and ``module__*`` parameters that make a skorch net the member ``structure``."""
    if getattr(family, "module_class", None) is not None and hasattr(family, "module_params"):
        module, kwargs = family.module_class, family.module_params(structure)
    else:
        module, kwargs = FamilyMember, {"family": family, "structure": tuple(structure)}
    params = {"module": module}
    params.update({f"module__{k}": v for k, v in kwargs.items()})
    return params


@validate_params(
    {"net": [HasMethods(["set_params"])], "family": [callable]},
    prefer_skip_nested_validation=True,
)
def set_architecture(net, family, structure):
    """Make the skorch ``net`` use the member ``structure`` of ``family`` (in place).

    The net's previous ``module`` and every ``module__*`` parameter are replaced, so
    keyword arguments meant for another module class cannot leak into the new one.
    """
    for key in [k for k in vars(net) if k.startswith("module__")]:
        delattr(net, key)
    net.set_params(**_architecture_params(family, structure))
    return net


class INASLearner(ActiveLearner):
    """modAL ``ActiveLearner`` that grows its network by incremental architecture search.

    Every fit of the learner (the initial fit on ``X_training`` and every :meth:`teach`)
    first runs ``search_steps`` steps of iNAS [1]_: from the current structure ``(i, j)``
    the candidates of :func:`~skdynal.nas.candidate_structures` (keep, one more block per
    stack, one more stack) are each trained from scratch on ``1 - holdout`` of the labeled
    set and scored by their accuracy on the other ``holdout``; the best is kept (ties go to
    the smaller, earlier candidate) and a step that keeps the structure ends the search.
    The chosen member of ``family`` is then trained from scratch on all labeled data with
    the estimator's own parameters, and queries are answered by that net.

    The search only ever sees ``X_training``/``y_training``, the labels the learner has
    been taught. Randomness (the hold-out splits, weight initialisation and shuffling of
    every candidate and of the final net) comes from ``random_state`` alone: the global
    generators are seeded inside each fit and restored afterwards.

    A real Ctrl-C (SIGINT) during a fit, which skorch would swallow and take for the end
    of training, stops the search at once with ``skdynal._interrupt.Interrupted`` (a
    ``KeyboardInterrupt``), the way :class:`~skdynal.persistence.ResumableLoop` stops: a
    candidate cut short is never ranked, and nothing is recorded for the fit.

    Parameters
    ----------
    estimator : skorch.NeuralNet
        An unfitted skorch net, usually ``NeuralNetClassifier`` with
        ``criterion=torch.nn.CrossEntropyLoss``. Its ``module`` and ``module__*``
        parameters are replaced by the chosen member of ``family``; everything else
        (optimizer, learning rate, epochs, batch size, callbacks, device) is used as is.
        The same object stays ``learner.estimator`` for the whole run.
    query_strategy : callable
        Any modAL query strategy, skdynal's included.
    X_training, y_training : array-like, default=None
        Initial labeled set; if given, the search and the fit run at construction.
    family : callable
        Factory from a structure ``(blocks, stacks)`` to an ``nn.Module``:
        :class:`~skdynal.nas.MLPFamily`, :class:`~skdynal.nas.CNNFamily`,
        :class:`~skdynal.nas.ResNetFamily` or any callable (its modules are wrapped in a
        ``FamilyMember`` module, ``net.module_.member``).
    initial_structure : tuple of (int, int), default=(1, 1)
        Structure before the first search (the paper's A(B, 1, 1)).
    max_blocks : int, default=12
        Largest number of blocks per stack (the paper's 12).
    max_stacks : int, default=5
        Largest number of stacks (the paper's 5).
    search_steps : int, default=1
        Search steps per fit (the paper's T, 1 by default); 0 turns the search off, which
        trains ``initial_structure`` as a fixed architecture.
    holdout : float, default=0.2
        Fraction of the labeled set that scores the candidates.
    candidate_epochs : int or None, default=None
        ``max_epochs`` of every candidate; None uses the estimator's ``max_epochs``.
    random_state : int, RandomState instance or None, default=None
        Seed of everything random in the search and the fits.
    bootstrap_init : bool, default=False
        As in modAL: fit the initial net on a bootstrap sample.
    on_transformed : bool, default=False
        As in modAL.
    **fit_kwargs
        Passed to the final net's ``fit`` (not to the candidates).

    Attributes
    ----------
    structures_ : list of tuple of (int, int)
        The structure trained at every fit, one per round (round 0 is the initial fit).
    search_history_ : list of dict
        One entry per fit: ``n_labeled``, ``n_search_train``, ``n_holdout``, ``steps`` (each
        a dict with ``start``, ``chosen`` and ``candidates``, a list of dicts with
        ``structure``, ``holdout_accuracy`` and ``seconds``), ``structure``,
        ``search_seconds`` and ``fit_seconds``.
    structure_ : tuple of (int, int)
        The current structure, ``structures_[-1]``.

    Examples
    --------
    >>> import torch
    >>> from modAL.uncertainty import margin_sampling
    >>> from skorch import NeuralNetClassifier
    >>> from skdynal.datasets import load_digits_split
    >>> from skdynal.nas import INASLearner, MLPFamily
    >>> data = load_digits_split(random_state=0)
    >>> net = NeuralNetClassifier(torch.nn.Linear, criterion=torch.nn.CrossEntropyLoss,
    ...                           max_epochs=5, lr=0.01, optimizer=torch.optim.Adam,
    ...                           train_split=None, verbose=0)
    >>> learner = INASLearner(net, margin_sampling, data.X_train[:60], data.y_train[:60],
    ...                       family=MLPFamily(width=16), random_state=0)
    >>> learner.structures_
    [(1, 1)]
    >>> idx, _ = learner.query(data.X_train[60:], n_instances=20)
    >>> learner.teach(data.X_train[60:][idx], data.y_train[60:][idx])
    >>> len(learner.structures_), learner.X_training.shape
    (2, (80, 64))

    References
    ----------
    .. [1] Y. Geifman and R. El-Yaniv, "Deep Active Learning with a Neural Architecture
       Search", NeurIPS 2019.
    """

    #: Constraints on the learner's own parameters, checked once per fit by :meth:`_validate`
    #: (``initial_structure`` by :func:`~skdynal.nas.check_structure` there too).
    _parameter_constraints: ClassVar[dict] = {
        "estimator": [HasMethods(["set_params", "initialize"])],
        "query_strategy": [callable],
        "family": [callable],
        "max_blocks": _POSITIVE_INT,
        "max_stacks": _POSITIVE_INT,
        "search_steps": [StrictInterval(numbers.Integral, 0, None, closed="left")],
        "holdout": [StrictInterval(numbers.Real, 0, 1, closed="neither")],
        "candidate_epochs": [*_POSITIVE_INT, None],
        "random_state": ["random_state"],
    }

    def __init__(
        self,
        estimator,
        query_strategy,
        X_training=None,
        y_training=None,
        *,
        family=None,
        initial_structure=(1, 1),
        max_blocks=12,
        max_stacks=5,
        search_steps=1,
        holdout=0.2,
        candidate_epochs=None,
        random_state=None,
        bootstrap_init=False,
        on_transformed=False,
        **fit_kwargs,
    ):
        # Set before modAL's __init__, which fits on X_training through _fit_to_known.
        self.family = family
        self.initial_structure = initial_structure
        self.max_blocks = max_blocks
        self.max_stacks = max_stacks
        self.search_steps = search_steps
        self.holdout = holdout
        self.candidate_epochs = candidate_epochs
        self.random_state = random_state
        self.structures_ = []
        self.search_history_ = []
        self._rng = None
        # modAL's own __init__ asserts this (an AssertionError); check it first, the same way.
        validate_parameter_constraints(
            {"query_strategy": self._parameter_constraints["query_strategy"]},
            {"query_strategy": query_strategy},
            caller_name=type(self).__name__,
        )
        super().__init__(
            estimator,
            query_strategy,
            X_training=X_training,
            y_training=y_training,
            bootstrap_init=bootstrap_init,
            on_transformed=on_transformed,
            **fit_kwargs,
        )

    # ------------------------------------------------------------------ validation

    def _validate(self):
        """Check every parameter (raising ``InvalidParameterError``); return the structure."""
        params = {name: getattr(self, name) for name in self._parameter_constraints}
        validate_parameter_constraints(
            self._parameter_constraints, params, caller_name=type(self).__name__
        )
        structure = check_structure(self.initial_structure)
        candidate_structures(structure, self.max_blocks, self.max_stacks)  # inside the caps
        return structure

    @property
    def structure_(self):
        if not self.structures_:
            raise AttributeError("structure_ exists after the first fit of the learner.")
        return self.structures_[-1]

    # ------------------------------------------------------------------ search

    def _seed(self):
        return int(self._rng.randint(_SEED_MAX))

    def _train_candidate(self, structure, X, y, seed):
        net = clone(self.estimator)
        set_architecture(net, self.family, structure)
        if self.candidate_epochs is not None:
            net.set_params(max_epochs=self.candidate_epochs)
        with seeded_global_rngs(seed):
            net.initialize()
            net.fit(X, y)
        # skorch ends fit on a Ctrl-C and returns: a candidate cut short is never ranked
        raise_if_interrupted()
        return net

    def _search(self, structure):
        """Run the search steps from ``structure``; return the chosen one and the record."""
        X, y = self.X_training, np.asarray(self.y_training)
        record = {"n_labeled": len(y), "steps": []}
        split_seed = self._seed()
        try:
            train_idx, held_idx = holdout_split(y, self.holdout, random_state=split_seed)
        except ValueError:
            # Too few labels to hold any out: keep the structure, record why.
            record.update(n_search_train=0, n_holdout=0, skipped="labeled set too small")
            return structure, record
        record.update(n_search_train=len(train_idx), n_holdout=len(held_idx))
        X_fit, y_fit = X[train_idx], y[train_idx]
        X_held, y_held = X[held_idx], y[held_idx]
        scores = {}  # a structure is trained once per fit, as in the authors' code
        for _ in range(self.search_steps):
            candidates = candidate_structures(structure, self.max_blocks, self.max_stacks)
            step = {"start": structure, "candidates": []}
            for candidate in candidates:
                if candidate not in scores:
                    start = time.perf_counter()
                    net = self._train_candidate(candidate, X_fit, y_fit, self._seed())
                    accuracy = float(np.mean(np.asarray(net.predict(X_held)) == y_held))
                    scores[candidate] = (accuracy, time.perf_counter() - start)
                    del net
                accuracy, seconds = scores[candidate]
                step["candidates"].append(
                    {"structure": candidate, "holdout_accuracy": accuracy, "seconds": seconds}
                )
            best = max(candidates, key=lambda c: scores[c][0])  # first maximum: smallest
            step["chosen"] = best
            record["steps"].append(step)
            if best == structure:
                break
            structure = best
        return structure, record

    # ------------------------------------------------------------------ modAL hooks

    def _fit_to_known(self, bootstrap=False, **fit_kwargs):
        message = (
            f"Interrupted while {type(self).__name__} searched and trained on "
            f"{len(self.y_training)} labels; no structure was chosen or recorded for this "
            "fit and its net is not trained. Call teach (or fit) again to redo it."
        )
        with interrupt_guard(message):
            return self._search_and_fit(bootstrap=bootstrap, **fit_kwargs)

    def _check_family_fits(self, structure):
        """Refuse, before any training, a family whose members cannot take the data.

        Builds the member ``structure`` (the search starts there and only grows) in a
        copy of the net, runs it on two labeled rows and checks it has an output per class.
        """
        X, y = self.X_training, np.asarray(self.y_training)
        net = clone(self.estimator)
        set_architecture(net, self.family, structure)
        shape = tuple(np.shape(X)[1:]) if hasattr(X, "shape") else None
        family = repr(self.family)
        try:
            with torch.random.fork_rng(devices=[]):
                net.initialize()
                out = net.forward(X[:2], training=False)
        except (RuntimeError, IndexError, ValueError, TypeError) as exc:
            first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            raise ValueError(
                f"The family {family} does not fit the data: its member {structure} cannot "
                f"take rows of shape {shape} ({type(exc).__name__}: {first}). Use a family "
                "for this input, e.g. MLPFamily(n_features=...) for flat rows (with "
                "n_features the number of values per row) or CNNFamily(in_channels=...) "
                "for images of shape (channels, height, width)."
            ) from None
        n_outputs = out.shape[-1] if out.dim() == 2 else 1
        if y.dtype.kind in "iu" and len(y) and int(y.max()) >= n_outputs:
            raise ValueError(
                f"The family {family} has {n_outputs} outputs, but the labels go up to "
                f"{int(y.max())}: give it n_classes={int(y.max()) + 1} (one output per "
                "class)."
            )

    def _search_and_fit(self, bootstrap=False, **fit_kwargs):
        structure = self._validate()
        if not self.structures_:
            self._check_family_fits(structure)
        if self._rng is None:
            self._rng = check_random_state(self.random_state)
        if self.structures_:
            structure = self.structures_[-1]
        start = time.perf_counter()
        if self.search_steps > 0:
            structure, record = self._search(structure)
        else:
            record = {"n_labeled": len(self.y_training), "steps": []}
        search_seconds = time.perf_counter() - start

        start = time.perf_counter()
        set_architecture(self.estimator, self.family, structure)
        with seeded_global_rngs(self._seed()):
            # A fresh network even when the estimator is warm-started.
            self.estimator.initialize()
            super()._fit_to_known(bootstrap=bootstrap, **fit_kwargs)
        raise_if_interrupted()
        record.update(
            structure=structure,
            search_seconds=search_seconds,
            fit_seconds=time.perf_counter() - start,
        )
        self.structures_.append(structure)
        self.search_history_.append(record)
        return self

    def _fit_on_new(self, X, y, bootstrap=False, **fit_kwargs):
        raise ValueError(
            "INASLearner retrains from scratch on all labeled data after every search; "
            "teach(..., only_new=True) is not supported."
        )
