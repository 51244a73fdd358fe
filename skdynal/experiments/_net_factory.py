"""The net of an experiment cell: skorch net, optimizer, protocol callbacks, learner."""

import inspect

import numpy as np
import torch
from modAL.models import ActiveLearner
from sklearn.base import clone
from skorch import NeuralNet, NeuralNetClassifier

from ..callbacks import ResetOptimizer, TrainUntilFit

__all__ = ["make_learner", "net_builder", "required_net_class"]

#: The optimizers a protocol may name (``"sgd"`` gets momentum 0.9 in :func:`net_builder`).
OPTIMIZERS = {"adam": torch.optim.Adam, "sgd": torch.optim.SGD, "adamw": torch.optim.AdamW}


def required_net_class(strategy):
    """The skorch net class that ``strategy`` needs, or None for any net.

    A strategy that needs its own net class (TiDAL records training dynamics while
    training) declares it in ``capabilities().net_class``; any other modAL query strategy
    (a function, a class of another package) scores the runner's plain net.
    """
    capabilities = getattr(strategy, "capabilities", None)
    return capabilities().net_class if callable(capabilities) else None


def _module_kwargs(module, X_train, n_classes, module_kwargs):
    """Fill ``n_classes``, ``in_channels`` and ``n_features`` from the data where accepted."""
    kwargs = dict(module_kwargs or {})
    try:
        accepted = inspect.signature(module).parameters
    except (TypeError, ValueError):
        return kwargs
    inferred = {"n_classes": n_classes, "n_features": int(np.prod(X_train.shape[1:]))}
    if X_train.ndim == 4:
        inferred["in_channels"] = int(X_train.shape[1])
    for key, value in inferred.items():
        if key in accepted and key not in kwargs:
            kwargs[key] = value
    return kwargs


def _module_class(model):
    """The module class of a model name or class (the protocol checked which it is)."""
    if isinstance(model, str):
        from ..models import get_model_class

        return get_model_class(model)
    return model


def _protocol_callbacks(protocol):
    """The skorch callbacks that the training protocol adds to every net."""
    callbacks = []
    if protocol.reset_optimizer:
        callbacks.append(("reset_optimizer", ResetOptimizer()))
    if protocol.train_until_fit:
        callbacks.append(("train_until_fit", TrainUntilFit(**protocol.train_until_fit)))
    return callbacks


def net_builder(protocol, X_train, n_classes):
    """``build(net_class=None) -> unfitted skorch net`` for the cells of ``protocol``.

    Parameters
    ----------
    protocol : ExperimentProtocol
    X_train : ndarray
        The pool (its shape fills the module's ``n_features`` and ``in_channels``).
    n_classes : int

    Returns
    -------
    build : callable
        ``build(net_class)`` gives a fresh net: a clone of the protocol's skorch net, or a
        ``net_class`` (default :class:`skorch.NeuralNetClassifier`) built from its module.
    """
    model = protocol.model
    warm_start = not protocol.reinit
    extra_callbacks = _protocol_callbacks(protocol)
    if isinstance(model, NeuralNet):
        template = clone(model).set_params(warm_start=warm_start)
        if extra_callbacks:
            template.set_params(callbacks=[*(template.callbacks or []), *extra_callbacks])

        def build_from_template(net_class=None):
            if net_class is not None and not isinstance(template, net_class):
                raise TypeError(
                    f"This strategy needs a {net_class.__name__} net; the given net is a "
                    f"{type(template).__name__}. Pass a {net_class.__name__} (or a module) "
                    "as the model."
                )
            return clone(template)

        return build_from_template
    module = _module_class(model)
    kwargs = _module_kwargs(module, X_train, n_classes, protocol.module_kwargs)
    optimizer = OPTIMIZERS[protocol.optimizer]
    params = {f"module__{k}": v for k, v in kwargs.items()}
    if protocol.optimizer == "sgd":
        params["optimizer__momentum"] = 0.9
    if protocol.weight_decay:
        params["optimizer__weight_decay"] = protocol.weight_decay
    params.update(protocol.net_kwargs)
    if extra_callbacks:
        params["callbacks"] = [*(params.get("callbacks") or []), *extra_callbacks]

    def build(net_class=None):
        return (net_class or NeuralNetClassifier)(
            module,
            criterion=torch.nn.CrossEntropyLoss,
            optimizer=optimizer,
            lr=protocol.lr,
            max_epochs=protocol.epochs,
            batch_size=protocol.batch_size,
            # No validation split: no model selection at all, least of all on the test set.
            train_split=None,
            warm_start=warm_start,
            iterator_train__shuffle=True,
            device=protocol.device,
            verbose=0,
            **params,
        )

    return build


def make_learner(net, strategy, X_labeled, y_labeled, *, inas, seed):
    """modAL's ``ActiveLearner``, or with ``inas`` settings (resolved) an iNAS learner."""
    if not inas:
        return ActiveLearner(
            estimator=net, query_strategy=strategy, X_training=X_labeled, y_training=y_labeled
        )
    from ..nas import FAMILIES, INASLearner

    return INASLearner(
        estimator=net,
        query_strategy=strategy,
        X_training=X_labeled,
        y_training=y_labeled,
        family=FAMILIES[inas["family"]](**inas["family_kwargs"]),
        initial_structure=tuple(inas["initial_structure"]),
        max_blocks=inas["max_blocks"],
        max_stacks=inas["max_stacks"],
        search_steps=inas["search_steps"],
        holdout=inas["holdout"],
        candidate_epochs=inas["candidate_epochs"],
        random_state=seed,
    )
