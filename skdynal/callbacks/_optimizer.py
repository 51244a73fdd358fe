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
    the net's current ``lr`` and ``optimizer__*`` parameters. Learning-rate schedulers that
    hold on to the old optimizer object are not rebuilt: put them after this callback only
    if they create their scheduler in ``on_train_begin`` (skorch's ``LRScheduler`` does).

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
        # A net initialised just now already has a fresh optimizer.
        self.n_resets_ = getattr(self, "n_resets_", 0) + 1
        net.initialize_optimizer()
