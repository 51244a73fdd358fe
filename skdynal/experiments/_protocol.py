"""The protocol of an active learning experiment: one frozen, validated dataclass."""

import ast
import dataclasses
import json
import numbers
import os
import re
from typing import ClassVar

import numpy as np
import torch
from skorch import NeuralNet

from .._checks import (
    HasMethods,
    InvalidParameterError,
    StrictInterval,
    StrOptions,
    validate_parameter_constraints,
)
from ._net_factory import OPTIMIZERS
from ._registry import make_strategy

__all__ = ["ExperimentProtocol"]

#: The ``format`` written into ``config.json``. Files without it were written before the
#: protocol was a dataclass (see :meth:`ExperimentProtocol.from_dict`).
CONFIG_FORMAT = 2

_TRAIN_UNTIL_FIT_KEYS = ("threshold", "patience", "min_epochs", "accuracy")
_INAS_DEFAULTS = {
    "family": None,
    "family_kwargs": {},
    "initial_structure": (1, 1),
    "max_blocks": 4,
    "max_stacks": 3,
    "search_steps": 1,
    "holdout": 0.2,
    "candidate_epochs": None,
}
#: Keys that config.json has held in every format and that every cell's rows depend on
#: (``seeds`` and ``strategies`` are in it too, but each cell has its own seed and strategy).
CELL_KEYS = (
    "dataset",
    "model",
    "initial",
    "query",
    "rounds",
    "epochs",
    "lr",
    "batch_size",
    "optimizer",
    "weight_decay",
    "device",
    "reinit",
)
# Keys of config.json that the data, not the protocol, determine.
_DERIVED_KEYS = ("n_train", "n_test", "protocol_key", "format", "model_spec", "strategy_specs")


def stable_repr(obj):
    """``repr`` without memory addresses, so that fingerprints survive a restart."""
    return re.sub(r" at 0x[0-9a-fA-F]+", "", repr(obj))


def _label_of(obj):
    if isinstance(obj, str):
        return obj
    return getattr(obj, "__name__", type(obj).__name__)


def _model_label(model):
    """The model's name in the rows: its registered name, class name or net module's name."""
    if isinstance(model, NeuralNet):
        if isinstance(model.module, torch.nn.Module):
            return type(model.module).__name__
        return _label_of(model.module)
    return _label_of(model)


# ----------------------------------------------------------------------------- checks


def _check_seeds(seeds):
    """The seeds as a tuple: ``n`` means ``0..n-1``; a list must hold distinct integers >= 0."""
    if isinstance(seeds, numbers.Integral):
        return tuple(range(int(seeds)))  # >= 1 by the constraint table
    seeds = list(seeds)
    if not seeds or any(
        isinstance(s, bool) or not isinstance(s, numbers.Integral) or s < 0 for s in seeds
    ):
        raise InvalidParameterError(
            f"seeds must be a non-empty list of integers >= 0, got {seeds!r}."
        )
    if len(set(seeds)) != len(seeds):
        raise InvalidParameterError(f"seeds must not repeat, got {seeds!r}.")
    return tuple(int(s) for s in seeds)


def _check_model(model):
    if isinstance(model, NeuralNet):
        return model
    if isinstance(model, str):
        from ..models import get_model_class

        try:
            get_model_class(model)
        except ValueError as err:  # an unknown name
            raise InvalidParameterError(str(err)) from None
        return model
    if isinstance(model, type) and issubclass(model, torch.nn.Module):
        return model
    raise InvalidParameterError(
        "model must be a model name (see skdynal.models.MODELS), a torch.nn.Module subclass "
        f"or an unfitted skorch NeuralNet, got {model!r}."
    )


def _labeled_pairs(given, *, empty, kind):
    """``[(label, spec), ...]`` from a dict of label -> spec or an iterable of specs and
    ``(label, spec)`` pairs (a spec is labeled by its name), with unique labels.

    ``empty`` is the message when there is none; ``kind`` is ``(what, noun)`` for the
    message on repeated labels (``("Strategy", "strategy")``).
    """
    if isinstance(given, dict):
        items = list(given.items())
    else:
        items = [
            item
            if isinstance(item, tuple) and len(item) == 2 and isinstance(item[0], str)
            else (_label_of(item), item)
            for item in given
        ]
    if not items:
        raise InvalidParameterError(empty)
    labels = [label for label, _ in items]
    duplicates = sorted({label for label in labels if labels.count(label) > 1})
    if duplicates:
        what, noun = kind
        raise InvalidParameterError(
            f"{what} labels must be unique, got {duplicates} more than once; pass a dict "
            f"{{label: {noun}}} to name them."
        )
    return items


def _normalize_strategies(strategies):
    """``((label, spec), ...)`` from names, objects, pairs or a dict of label -> spec."""
    if isinstance(strategies, str) or callable(strategies):
        strategies = [strategies]
    items = _labeled_pairs(
        strategies,
        empty="strategies is empty; give at least one strategy name or object.",
        kind=("Strategy", "strategy"),
    )
    for label, spec in items:
        if isinstance(spec, str):
            try:
                make_strategy(spec)
            except ValueError as err:  # an unknown name
                raise InvalidParameterError(str(err)) from None
        elif not callable(spec):
            raise InvalidParameterError(
                f"Strategy {label!r} must be a registered name or a modAL query strategy "
                f"(callable), got {spec!r}."
            )
    return tuple(items)


def _normalize_stopping(stopping):
    """``((label, rule), ...)`` from names, rules, pairs or a dict of label -> rule, or None."""
    from ..stopping import BaseStoppingRule, make_stopping_rule

    if stopping is None:
        return None
    if isinstance(stopping, str | BaseStoppingRule):
        stopping = [stopping]
    if not isinstance(stopping, dict):
        try:
            stopping = list(stopping)
        except TypeError:
            raise InvalidParameterError(
                "stopping must be None, a stopping rule or its name, a list of them or a dict "
                f"label -> rule, got {stopping!r}."
            ) from None
    items = _labeled_pairs(
        stopping,
        empty="stopping is empty; give None or at least one stopping rule.",
        kind=("Stopping rule", "rule"),
    )
    for label, spec in items:
        if isinstance(spec, str):
            try:
                make_stopping_rule(spec)
            except ValueError as err:  # an unknown name
                raise InvalidParameterError(str(err)) from None
        elif not isinstance(spec, BaseStoppingRule):
            raise InvalidParameterError(
                f"Stopping rule {label!r} must be a name from "
                "skdynal.stopping.available_stopping_rules() or a skdynal.stopping rule, got "
                f"{spec!r}."
            )
    return tuple(items)


def _check_kwargs(kwargs, name):
    if kwargs is None:
        return {}
    if not all(isinstance(k, str) for k in kwargs):
        raise InvalidParameterError(
            f"{name} must be None or a dict with string keys, got {kwargs!r}."
        )
    return dict(kwargs)


def _check_train_until_fit(train_until_fit):
    if train_until_fit is None or train_until_fit is False:
        return None
    if train_until_fit is True:
        params = {}
    else:  # a dict (the constraint table)
        unknown = sorted(set(train_until_fit) - set(_TRAIN_UNTIL_FIT_KEYS))
        if unknown:
            raise InvalidParameterError(
                f"train_until_fit got unknown keys {unknown}; allowed: "
                f"{list(_TRAIN_UNTIL_FIT_KEYS)} (the maximum is the protocol's epochs)."
            )
        params = dict(train_until_fit)
    from ..callbacks import TrainUntilFit

    callback = TrainUntilFit(**params)
    callback.initialize()  # validates
    return {key: getattr(callback, key) for key in _TRAIN_UNTIL_FIT_KEYS}


def _check_inas(inas):
    """The iNAS settings with the data-independent defaults filled in, or None."""
    if inas is None or inas is False:
        return None
    params = {} if inas is True else inas  # else a dict (the constraint table)
    unknown = sorted(set(params) - set(_INAS_DEFAULTS))
    if unknown:
        raise InvalidParameterError(
            f"inas got unknown keys {unknown}; allowed: {list(_INAS_DEFAULTS)}."
        )
    settings = {**_INAS_DEFAULTS, **params}
    if settings["family"] is not None:
        from ..nas import FAMILIES

        if settings["family"] not in FAMILIES:
            raise InvalidParameterError(
                f"inas family must be one of {sorted(FAMILIES)}, got {settings['family']!r}."
            )
    settings["family_kwargs"] = dict(settings["family_kwargs"])
    settings["initial_structure"] = [int(v) for v in settings["initial_structure"]]
    return settings


# ----------------------------------------------------------------------------- config.json


def _kwargs_to_json(kwargs):
    """JSON scalars as they are; any other value as ``{"repr": ...}``."""
    return {
        key: value
        if value is None or isinstance(value, (bool, int, float, str))
        else {"repr": stable_repr(value)}
        for key, value in kwargs.items()
    }


def _from_repr(text, what):
    """The Python literal whose repr is ``text``, or a ValueError naming ``what``."""
    try:
        value = ast.literal_eval(text)
    except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
        value = None
    else:
        if stable_repr(value) == text:
            return value
    raise ValueError(
        f"config.json records {what} only as the text {text!r}, which is not a Python "
        f"literal; pass the object again (ExperimentProtocol.from_dict(config, "
        f"{what.split('[')[0]}=...))."
    )


def _kwargs_from_json(kwargs, name, legacy):
    if not isinstance(kwargs, dict):
        raise ValueError(f"config.json's {name} must be a dict, got {kwargs!r}.")
    out = {}
    for key, value in kwargs.items():
        what = f"{name}[{key!r}]"
        if legacy and name == "net_kwargs":
            # Before format 2 every net argument was written as its repr.
            out[key] = _from_repr(value, what)
        elif legacy and isinstance(value, str):
            # Before format 2 a text value was either a string or the repr of an object.
            raise ValueError(
                f"config.json (written before format {CONFIG_FORMAT}) records {what} as the "
                f"text {value!r}, which is either a string or the repr of an object; pass "
                f"{name} again (ExperimentProtocol.from_dict(config, {name}=...))."
            )
        elif isinstance(value, dict) and set(value) == {"repr"}:
            out[key] = _from_repr(value["repr"], what)
        else:
            out[key] = value
    return out


def _spec_to_json(spec):
    return spec if isinstance(spec, str) else {"repr": stable_repr(spec)}


def _spec_from_json(spec, what, override):
    if isinstance(spec, str):
        return spec
    raise ValueError(
        f"config.json records {what} as the object {spec.get('repr')!r}, which cannot be "
        f"rebuilt from text; pass it again (ExperimentProtocol.from_dict(config, {override}=...))."
    )


def _legacy_name(label, what, override):
    """A label of a file written before format 2, which must be a registered name."""
    try:
        if override == "model":
            from ..models import get_model_class

            get_model_class(label)
        else:
            make_strategy(label)
    except ValueError:
        raise ValueError(
            f"config.json (written before format {CONFIG_FORMAT}) records {what} as "
            f"{label!r}, which is not a registered name (it labels an object, or a name "
            f"given under another label); pass {override} again "
            f"(ExperimentProtocol.from_dict(config, {override}=...))."
        ) from None
    return label


def _as_is(value):
    return value


def _pairs_to_json(pairs):
    return None if pairs is None else {label: _spec_to_json(spec) for label, spec in pairs}


#: How the fields whose config.json value is not the (normalised) field itself are written;
#: every other field is written as it is.
_TO_JSON = {
    "model": _model_label,
    "strategies": lambda strategies: [label for label, _ in strategies],
    "seeds": list,
    "train_until_fit": lambda settings: None if settings is None else dict(settings),
    "inas": lambda settings: None if settings is None else json.loads(json.dumps(settings)),
    "module_kwargs": _kwargs_to_json,
    "net_kwargs": _kwargs_to_json,
    "stopping": _pairs_to_json,
}


@dataclasses.dataclass(frozen=True)
class ExperimentProtocol:
    """Everything that determines the rows of :func:`~skdynal.experiments.run_experiment`.

    The protocol of the dynamicAL experiments [1]_ as one frozen dataclass: the model, the
    strategies, the active learning budget, the training settings and the seeds. Every
    field is checked, and normalised, when the protocol is built; what can only be checked
    against the data (that the pool holds ``initial + query * rounds`` samples) is checked
    when the protocol is run. How a run is carried out (output folder, resuming, progress
    bar, plot, torch threads) is not part of the protocol: those stay keywords of
    :func:`~skdynal.experiments.run_experiment`.

    :meth:`to_dict` gives the protocol's part of ``config.json``, which
    :meth:`from_dict` and :meth:`read` turn back into a protocol.

    Parameters
    ----------
    model : str, torch.nn.Module subclass or skorch.NeuralNet, default="mlp"
        A name from :data:`skdynal.models.MODELS` or a module class: a
        :class:`skorch.NeuralNetClassifier` with ``CrossEntropyLoss`` is built from it and
        the protocol parameters, with ``n_classes``, ``in_channels`` and ``n_features``
        filled from the data when the module accepts them. An unfitted skorch net is
        cloned per seed instead (its own epochs, optimizer and so on are used; only
        ``warm_start`` is set from ``reinit``).
    strategies : list or dict, default=("dynamical", "random")
        Names from :func:`skdynal.experiments.available_strategies`, strategy objects or
        modAL query functions, ``(label, strategy)`` pairs, or a dict label -> strategy.
        Strategy objects are cloned per cell and get the cell's seed as ``random_state``
        when theirs is None. Stored as a tuple of ``(label, strategy)`` pairs.
    initial : int, default=500
        Size of the initial labeled set (the paper's M).
    query : int, default=500
        Samples queried per round (the paper's b).
    rounds : int, default=5
        Query rounds (R); the learning curve has ``rounds + 1`` points.
    seeds : int or list of int, default=3
        The seeds (an int ``n`` means ``0..n-1``); stored as a tuple. A seed fixes the
        initial set, the net's initial weights and shuffling (torch and numpy are seeded)
        and the strategy's ``random_state``.
    epochs : int, default=50
        Training epochs per fit (skorch ``max_epochs``).
    lr : float, default=1e-3
        Learning rate.
    batch_size : int, default=64
        Training and inference batch size.
    optimizer : {"adam", "sgd", "adamw"}, default="adam"
        ``"sgd"`` uses momentum 0.9.
    weight_decay : float, default=0.0
        Optimizer weight decay, >= 0.
    device : str, default="cpu"
        Torch device of the net.
    reinit : bool, default=False
        Re-initialise the net before each fit instead of warm-starting.
    train_until_fit : bool, dict or None, default=None
        None or False trains ``epochs`` epochs per fit. True, or a dict of
        :class:`skdynal.callbacks.TrainUntilFit` parameters (``threshold``, ``patience``,
        ``min_epochs``, ``accuracy``), trains every fit until the accuracy on the labeled
        set has stayed at or above the threshold for ``patience`` epochs, with ``epochs``
        as the maximum (the paper's "train until convergence"). The test set is never
        looked at. Stored as None or the dict of all four parameters.
    reset_optimizer : bool, default=False
        Give every fit a fresh optimizer (:class:`skdynal.callbacks.ResetOptimizer`), as the
        official dynamicAL code does after each query; weights stay warm-started.
    initial_sampling : {"random", "balanced"}, default="random"
        How the initial labeled set is drawn: uniformly, or the same number of samples
        per class (see :func:`~skdynal.experiments.initial_indices`).
    inas : bool, dict or None, default=None
        Grow the architecture during active learning with iNAS
        (:class:`skdynal.nas.INASLearner`): True, or a dict with ``family`` (a name from
        :data:`skdynal.nas.FAMILIES`; default ``"mlp"`` for flat rows, ``"cnn"`` for
        images), ``family_kwargs``, ``initial_structure`` ((1, 1)), ``max_blocks`` (4),
        ``max_stacks`` (3), ``search_steps`` (1; 0 trains ``initial_structure`` as a fixed
        architecture), ``holdout`` (0.2) and ``candidate_epochs`` (None: ``epochs``). The
        net is then rebuilt from the family every round and trained from scratch; ``model``
        only supplies the training settings. Rows get ``structure`` and ``search_seconds``.
        Stored as None or the dict of all settings.
    module_kwargs : dict, default=None
        Extra module constructor arguments (e.g. ``{"width": 16}``). Stored as a dict.
    net_kwargs : dict, default=None
        Extra :class:`skorch.NeuralNetClassifier` arguments (override the built ones).
        Stored as a dict.
    dataset : str, default="data"
        Name of the data, recorded in the rows.
    baseline : str or None, default="random"
        Strategy that the summary compares the others with.
    stopping : str, stopping rule, list or dict, default=None
        Stopping rules to evaluate (:mod:`skdynal.stopping`): names from
        :func:`skdynal.stopping.available_stopping_rules`, rule objects, ``(label, rule)``
        pairs, or a dict label -> rule. The rules only watch: every cell still runs the
        whole budget, and after every trained round each rule (a fresh clone per cell) is
        updated on the model, the unlabeled pool (rows identified by their index in
        ``X_train``) and a fixed stop set (the pool of round 0), so each row records the
        rule's statistic and whether it has said stop by then. The rules use no random
        numbers the training could see, so the accuracies are those of the same protocol
        without rules. Stored as None or a tuple of ``(label, rule)`` pairs.

    References
    ----------
    .. [1] H. Wang, W. Huang, Z. Wu, A. Margenot, H. Tong and J. He, "Deep Active Learning
       by Leveraging Training Dynamics", NeurIPS 2022.

    Examples
    --------
    >>> from skdynal.experiments import ExperimentProtocol
    >>> protocol = ExperimentProtocol(strategies=["random"], initial=20, query=10, seeds=2)
    >>> protocol.seeds, protocol.labels
    ((0, 1), ('random',))
    >>> ExperimentProtocol.from_dict(protocol.to_dict()) == protocol
    True
    >>> try:
    ...     ExperimentProtocol(rounds=-1)
    ... except ValueError as err:
    ...     print(err.__class__.__name__, str(err)[:59])
    InvalidParameterError The 'rounds' parameter of ExperimentProtocol must be an int
    """

    model: object = "mlp"
    strategies: object = ("dynamical", "random")
    initial: int = 500
    query: int = 500
    rounds: int = 5
    seeds: object = 3
    epochs: int = 50
    lr: float = 1e-3
    batch_size: int = 64
    optimizer: str = "adam"
    weight_decay: float = 0.0
    device: str = "cpu"
    reinit: bool = False
    train_until_fit: object = None
    reset_optimizer: bool = False
    initial_sampling: str = "random"
    inas: object = None
    module_kwargs: object = None
    net_kwargs: object = None
    dataset: str = "data"
    baseline: object = "random"
    stopping: object = None

    _POSITIVE_INT: ClassVar[list] = [StrictInterval(numbers.Integral, 1, None, closed="left")]
    _parameter_constraints: ClassVar[dict] = {
        "model": [str, type, NeuralNet],
        "strategies": [str, list, tuple, dict, callable],
        "initial": _POSITIVE_INT,
        "query": _POSITIVE_INT,
        "rounds": [StrictInterval(numbers.Integral, 0, None, closed="left")],
        "seeds": [StrictInterval(numbers.Integral, 1, None, closed="left"), "array-like"],
        "epochs": _POSITIVE_INT,
        "lr": [StrictInterval(numbers.Real, 0, None, closed="neither")],
        "batch_size": _POSITIVE_INT,
        "optimizer": [StrOptions(set(OPTIMIZERS))],
        "weight_decay": [StrictInterval(numbers.Real, 0, None, closed="left")],
        "device": [str, torch.device],
        "reinit": ["boolean"],
        "train_until_fit": ["boolean", dict, None],
        "reset_optimizer": ["boolean"],
        "initial_sampling": [StrOptions({"random", "balanced"})],
        "inas": ["boolean", dict, None],
        "module_kwargs": [dict, None],
        "net_kwargs": [dict, None],
        "dataset": [str],
        "baseline": [str, None],
        "stopping": [str, list, tuple, dict, HasMethods(["update", "get_params"]), None],
    }

    def __post_init__(self):
        # One place states what every field accepts (the package's constraint objects and
        # scikit-learn's InvalidParameterError, as for every estimator); the normalisers
        # below check what a type cannot say (registered names, distinct seeds, ...).
        validate_parameter_constraints(
            self._parameter_constraints,
            {field.name: getattr(self, field.name) for field in dataclasses.fields(self)},
            caller_name=type(self).__name__,
        )
        normalized = {
            "model": _check_model(self.model),
            "strategies": _normalize_strategies(self.strategies),
            "seeds": _check_seeds(self.seeds),
            "lr": float(self.lr),
            "weight_decay": float(self.weight_decay),
            "device": str(self.device),
            "reinit": bool(self.reinit),
            "train_until_fit": _check_train_until_fit(self.train_until_fit),
            "reset_optimizer": bool(self.reset_optimizer),
            "inas": _check_inas(self.inas),
            "module_kwargs": _check_kwargs(self.module_kwargs, "module_kwargs"),
            "net_kwargs": _check_kwargs(self.net_kwargs, "net_kwargs"),
            "stopping": _normalize_stopping(self.stopping),
        }
        for name in ("initial", "query", "rounds", "epochs", "batch_size"):
            normalized[name] = int(getattr(self, name))
        for name, value in normalized.items():
            object.__setattr__(self, name, value)

    @property
    def labels(self):
        """The strategies' labels, in order (tuple of str)."""
        return tuple(label for label, _ in self.strategies)

    @property
    def stopping_labels(self):
        """The stopping rules' labels, in order (tuple of str; empty without rules)."""
        return () if self.stopping is None else tuple(label for label, _ in self.stopping)

    def stopping_rules(self):
        """Fresh, unfitted copies of the stopping rules: a list of ``(label, rule)``."""
        from sklearn.base import clone

        from ..stopping import make_stopping_rule

        return [
            (label, make_stopping_rule(spec) if isinstance(spec, str) else clone(spec))
            for label, spec in self.stopping or ()
        ]

    # ------------------------------------------------------------------ the data's part

    def check_pool(self, n_train):
        """Raise a ValueError unless a training set of ``n_train`` samples fits the budget.

        The one check of the budget against the data: :func:`run_experiment` makes it
        before any training, and ``skdynal run`` reports its message as a usage error.
        """
        pool = n_train - self.initial
        if pool <= 0:
            raise ValueError(
                f"initial={self.initial} leaves no pool: the training set of {self.dataset!r} "
                f"has {n_train} samples."
            )
        if self.query > pool:
            raise ValueError(
                f"query={self.query} is larger than the pool: the training set of "
                f"{self.dataset!r} has {n_train} samples, {pool} after the initial "
                f"{self.initial}."
            )
        if self.query * self.rounds > pool:
            raise ValueError(
                f"rounds={self.rounds} of query={self.query} need {self.query * self.rounds} "
                f"pool samples, but the training set of {self.dataset!r} has {pool} after the "
                f"initial {self.initial}; lower rounds (at most {pool // self.query}) or query."
            )

    def resolved_inas(self, X_train, n_classes):
        """The iNAS settings completed from the data (family and its sizes), or None."""
        if self.inas is None:
            return None
        from ..nas import FAMILIES

        settings = dict(self.inas)
        if settings["family"] is None:
            settings["family"] = "mlp" if X_train.ndim == 2 else "cnn"
        if settings["family"] not in FAMILIES:
            raise ValueError(
                f"inas family must be one of {sorted(FAMILIES)}, got {settings['family']!r}."
            )
        kwargs = dict(settings["family_kwargs"])
        kwargs.setdefault("n_classes", n_classes)
        if settings["family"] == "mlp":
            kwargs.setdefault("n_features", int(np.prod(X_train.shape[1:])))
        elif X_train.ndim == 4:
            kwargs.setdefault("in_channels", int(X_train.shape[1]))
        settings["family_kwargs"] = kwargs
        settings["initial_structure"] = list(settings["initial_structure"])
        return settings

    # ------------------------------------------------------------------ config.json

    def to_dict(self):
        """The protocol as the JSON-ready dict that ``config.json`` starts with.

        One key per field, in the fields' order, with the values of ``config.json``
        (``seeds`` a list, ``strategies`` the labels, ``model`` its label, ``stopping`` a
        dict label -> spec), plus ``format``, ``model_spec`` and ``strategy_specs``: registered
        names as they are, objects as ``{"repr": ...}``. ``module_kwargs`` and ``net_kwargs``
        values that are not JSON scalars are written as ``{"repr": ...}`` too.

        Returns
        -------
        config : dict
        """
        config = {
            field.name: _TO_JSON.get(field.name, _as_is)(getattr(self, field.name))
            for field in dataclasses.fields(self)
        }
        config["format"] = CONFIG_FORMAT
        config["model_spec"] = _spec_to_json(self.model)
        config["strategy_specs"] = {label: _spec_to_json(spec) for label, spec in self.strategies}
        return config

    @classmethod
    def from_dict(cls, config, **overrides):
        """The protocol recorded in a ``config.json`` dict.

        Files written before ``format`` 2 (no ``format`` key) are read too: their
        ``model`` and ``strategies`` are taken as registered names, their ``net_kwargs``
        from the reprs they hold; options they predate take their defaults. What a file
        cannot describe (a model or strategy given as an object, an argument that is no
        Python literal, and in old files any text value of ``module_kwargs``) raises a
        ValueError saying which field to pass again in ``overrides``.

        Parameters
        ----------
        config : mapping
            The contents of ``config.json`` (or :meth:`to_dict`).
        **overrides
            Fields that replace those of ``config`` (e.g. ``model=MyModule``).

        Returns
        -------
        protocol : ExperimentProtocol
        """
        if not isinstance(config, dict):
            raise TypeError(f"config must be a dict (read from config.json), got {config!r}.")
        fields = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(overrides) - fields)
        if unknown:
            raise TypeError(f"Unknown protocol fields {unknown}; allowed: {sorted(fields)}.")
        fmt = config.get("format")
        legacy = fmt is None
        if not legacy and fmt != CONFIG_FORMAT:
            raise ValueError(
                f"config.json has format {fmt!r}; this skdynal reads format {CONFIG_FORMAT} "
                "and older files without a format."
            )
        unknown = sorted(set(config) - fields - set(_DERIVED_KEYS))
        if unknown:
            raise ValueError(f"config.json has unknown keys {unknown}: not an experiment config.")
        required = {*CELL_KEYS, "seeds", "strategies", "baseline"}
        missing = sorted(required - set(config) - set(overrides))
        if missing:
            raise ValueError(f"config.json lacks the keys {missing}: not an experiment config.")
        params = {key: config[key] for key in fields & set(config)}
        if "model" not in overrides:
            if legacy:
                params["model"] = _legacy_name(config["model"], "model", "model")
            else:
                params["model"] = _spec_from_json(config["model_spec"], "the model", "model")
        if "strategies" not in overrides:
            if legacy:
                params["strategies"] = [
                    _legacy_name(label, f"strategy {label!r}", "strategies")
                    for label in config["strategies"]
                ]
            else:
                specs = config["strategy_specs"]
                params["strategies"] = [
                    (label, _spec_from_json(specs[label], f"strategy {label!r}", "strategies"))
                    for label in config["strategies"]
                ]
        if "stopping" not in overrides and config.get("stopping") is not None:
            if not isinstance(config["stopping"], dict):
                raise ValueError(
                    f"config.json's stopping must be null or a dict, got {config['stopping']!r}."
                )
            params["stopping"] = [
                (label, _spec_from_json(spec, f"stopping rule {label!r}", "stopping"))
                for label, spec in config["stopping"].items()
            ]
        for name in ("module_kwargs", "net_kwargs"):
            if name not in overrides and name in config:
                params[name] = _kwargs_from_json(config[name], name, legacy)
        params.update(overrides)
        return cls(**params)

    @classmethod
    def read(cls, path, **overrides):
        """The protocol recorded in the ``config.json`` at ``path`` (see :meth:`from_dict`).

        Parameters
        ----------
        path : str or path-like
            A ``config.json`` file, or the results folder that holds one.
        **overrides
            Fields that replace those of the file.

        Returns
        -------
        protocol : ExperimentProtocol
        """
        path = os.fspath(path)
        if os.path.isdir(path):
            path = os.path.join(path, "config.json")
        with open(path, encoding="utf-8") as f:
            try:
                config = json.load(f)
            except ValueError as err:
                raise ValueError(f"{path} is not valid JSON: {err}") from None
        return cls.from_dict(config, **overrides)
