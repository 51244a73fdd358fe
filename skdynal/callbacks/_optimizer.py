"""A fresh optimizer at the start of every fit."""

from skorch.callbacks import Callback

__all__ = ["ResetOptimizer"]


class ResetOptimizer(Callback):
    """Re-create the net's optimizer at the start of every ``fit``/``partial_fit`` call.

    With ``warm_start=True`` skorch keeps both the weights and the optimizer state (Adam's
    moment estimates, SGD's momentum) from one active learning round to the next. The
    official dynamicAL code [1]_ instead builds a new optimizer after every query. Add this
    callback to get that protocol; the weights stay warm-started.

    The optimizer is rebuilt with :meth:`skorch.NeuralNet.initialize_optimizer`, so it has
    the net's current ``lr`` and ``optimizer__*`` parameters. skorch's ``LRScheduler``
    builds its scheduler on the optimizer in ``on_train_begin``; one listed before this
    callback would hold the old optimizer and step nothing, so its ``on_train_begin`` is
    run again on the new optimizer: the order of the two callbacks does not matter. In later
    fits the schedule goes on from the epoch count in the history, applied to the fresh
    optimizer's ``lr``.

    References
    ----------
    .. [1] H. Wang, W. Huang, Z. Wu, A. Margenot, H. Tong and J. He, "Deep Active Learning
       by Leveraging Training Dynamics", NeurIPS 2022; code at
       github.com/haonan3/Deep-Active-Learning-by-Leveraging-Training-Dynamics.

    Examples
    --------
    >>> import torch
    >>> from skorch import NeuralNetClassifier
    >>> from skdynal.callbacks import ResetOptimizer
    >>> net = NeuralNetClassifier(torch.nn.Linear, module__in_features=4,
    ...                           module__out_features=2, warm_start=True,
    ...                           criterion=torch.nn.CrossEntropyLoss,
    ...                           callbacks=[ResetOptimizer()])
    """

    def on_train_begin(self, net, X=None, y=None, **kwargs):
        from skorch.callbacks import LRScheduler

        self.n_resets_ = getattr(self, "n_resets_", 0) + 1
        net.initialize_optimizer()
        # A scheduler built after the first fit starts at the history's epoch
        # (last_epoch >= 0), which torch only allows on an optimizer that has an
        # 'initial_lr': the fresh optimizer's lr is where the schedule goes on from.
        for group in net.optimizer_.param_groups:
            group.setdefault("initial_lr", group["lr"])
        # Schedulers notified before this callback were built on the old optimizer: build
        # them again on the new one (LRScheduler.on_train_begin only reads the history).
        for _, callback in net.callbacks_:
            if callback is self:
                break
            if isinstance(callback, LRScheduler):
                callback.on_train_begin(net, X=X, y=y, **kwargs)
