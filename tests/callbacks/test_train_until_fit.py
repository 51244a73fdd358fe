"""TrainUntilFit and ResetOptimizer on real skorch nets."""

import numpy as np
import pytest
import torch
from modAL.models import ActiveLearner
from skorch import NeuralNetClassifier
from skorch.callbacks import EarlyStopping

from skdynal.callbacks import ResetOptimizer, StopTraining, TrainUntilFit


def _data(n=96, seed=0):
    rng = np.random.RandomState(seed)
    X = rng.randn(n, 2).astype(np.float32)
    y = (X[:, 0] + 0.3 * X[:, 1] > 0).astype(np.int64)
    return X, y


def _net(callbacks, max_epochs=200, lr=0.3, **kwargs):
    torch.manual_seed(0)
    return NeuralNetClassifier(
        torch.nn.Linear,
        module__in_features=2,
        module__out_features=2,
        criterion=torch.nn.CrossEntropyLoss,
        optimizer=torch.optim.SGD,
        lr=lr,
        max_epochs=max_epochs,
        batch_size=16,
        train_split=None,
        verbose=0,
        callbacks=callbacks,
        **kwargs,
    )


def test_stops_once_threshold_held_for_patience_epochs():
    X, y = _data()
    callback = TrainUntilFit(threshold=0.95, patience=4)
    net = _net([callback]).fit(X, y)
    accuracies = net.history[:, "train_acc"]
    streaks = net.history[:, "fit_streak"]
    assert len(net.history) < 200
    # the streak counts consecutive epochs at or above the threshold ...
    expected, run = [], 0
    for acc in accuracies:
        run = run + 1 if acc >= 0.95 else 0
        expected.append(run)
    assert streaks == expected
    # ... and training ended on the first epoch where it reached the patience
    assert streaks[-1] == 4 and all(s < 4 for s in streaks[:-1])
    assert callback.epochs_ == [len(net.history)] and callback.fitted_ == [True]


def test_running_accuracy_is_the_fraction_right_during_the_epoch():
    X, y = _data()
    seen = []

    class Record(TrainUntilFit):
        def on_batch_end(self, net, batch=None, training=None, y_pred=None, **kwargs):
            super().on_batch_end(net, batch=batch, training=training, y_pred=y_pred)
            _, yb = batch
            seen.append(int((y_pred.argmax(1) == yb).sum()))

    net = _net([Record(threshold=1.0, patience=1, max_epochs=3)], max_epochs=3).fit(X, y)
    per_epoch = np.add.reduceat(seen, [0, 6, 12])  # 96 samples / batch 16 = 6 batches
    np.testing.assert_allclose(net.history[:, "train_acc"], per_epoch / 96.0)


def test_eval_accuracy_is_the_accuracy_of_the_net_at_epoch_end():
    X, y = _data()
    net = _net(
        [TrainUntilFit(threshold=1.0, patience=1, accuracy="eval", max_epochs=2)], max_epochs=2
    ).fit(X, y)
    assert net.history[-1, "train_acc"] == pytest.approx(np.mean(net.predict(X) == y))


def test_min_and_max_epochs_bound_each_fit():
    X, y = _data()
    callback = TrainUntilFit(threshold=0.5, patience=1, min_epochs=7)
    net = _net([callback]).fit(X, y)
    assert callback.epochs_ == [7] and len(net.history) == 7
    unreachable = TrainUntilFit(threshold=1.0, patience=5, max_epochs=6)
    X_noisy, y_noisy = X, np.random.RandomState(1).randint(0, 2, len(y))
    net = _net([unreachable]).fit(X_noisy, y_noisy)
    assert len(net.history) == 6 and unreachable.fitted_ == [False]


def test_each_warm_start_fit_is_counted_on_its_own_with_modal_teach():
    X, y = _data(128)
    callback = TrainUntilFit(threshold=0.9, patience=3, min_epochs=5)
    net = _net([callback], warm_start=True)
    learner = ActiveLearner(estimator=net, X_training=X[:32], y_training=y[:32])
    learner.teach(X[32:64], y[32:64])
    assert len(callback.epochs_) == 2 and all(e >= 5 for e in callback.epochs_)
    assert len(net.history) == sum(callback.epochs_)


def test_works_together_with_skorch_early_stopping():
    X, y = _data()
    until_fit = TrainUntilFit(threshold=1.0, patience=50)
    early = EarlyStopping(
        monitor="train_loss", patience=2, threshold=0.5, threshold_mode="rel", lower_is_better=True
    )
    net = _net([until_fit, early]).fit(X, y)
    # EarlyStopping ends training long before the threshold could hold for 50 epochs
    assert len(net.history) < 50


def test_stop_training_is_a_keyboard_interrupt_subclass():
    assert issubclass(StopTraining, KeyboardInterrupt)


@pytest.mark.parametrize(
    "params, match",
    [
        ({"threshold": 0.0}, "threshold"),
        ({"threshold": 1.5}, "threshold"),
        ({"patience": 0}, "patience"),
        ({"min_epochs": -1}, "min_epochs"),
        ({"max_epochs": 0}, "max_epochs"),
        ({"min_epochs": 5, "max_epochs": 3}, "max_epochs"),
        ({"accuracy": "test"}, "accuracy"),
    ],
)
def test_bad_parameters_raise_clear_errors(params, match):
    X, y = _data()
    with pytest.raises(ValueError, match=match):
        _net([TrainUntilFit(**params)]).fit(X, y)


def test_max_epochs_above_the_nets_is_refused():
    X, y = _data()
    with pytest.raises(ValueError, match="net's max_epochs=10"):
        _net([TrainUntilFit(max_epochs=20)], max_epochs=10).fit(X, y)


def test_reset_optimizer_gives_each_fit_a_fresh_optimizer_and_keeps_weights():
    X, y = _data()
    net = NeuralNetClassifier(
        torch.nn.Linear,
        module__in_features=2,
        module__out_features=2,
        criterion=torch.nn.CrossEntropyLoss,
        optimizer=torch.optim.Adam,
        lr=0.01,
        max_epochs=2,
        train_split=None,
        verbose=0,
        warm_start=True,
        callbacks=[ResetOptimizer()],
    )
    net.fit(X, y)
    first = net.optimizer_
    assert first.state  # Adam has moment estimates after training
    weights = net.module_.weight.detach().clone()
    net.fit(X, y)
    assert net.optimizer_ is not first
    # warm start: the second fit starts from the first fit's weights, so they moved on
    assert not torch.equal(net.module_.weight.detach(), weights)
    # without the callback skorch keeps the optimizer
    plain = NeuralNetClassifier(
        torch.nn.Linear,
        module__in_features=2,
        module__out_features=2,
        criterion=torch.nn.CrossEntropyLoss,
        max_epochs=1,
        train_split=None,
        verbose=0,
        warm_start=True,
    ).fit(X, y)
    kept = plain.optimizer_
    plain.fit(X, y)
    assert plain.optimizer_ is kept


def test_reset_optimizer_matches_a_net_trained_from_the_same_weights_with_a_new_adam():
    X, y = _data()

    def make(callbacks):
        torch.manual_seed(3)
        return NeuralNetClassifier(
            torch.nn.Linear,
            module__in_features=2,
            module__out_features=2,
            criterion=torch.nn.CrossEntropyLoss,
            optimizer=torch.optim.Adam,
            lr=0.05,
            max_epochs=3,
            train_split=None,
            verbose=0,
            warm_start=True,
            iterator_train__shuffle=False,
            callbacks=callbacks,
        )

    reset = make([ResetOptimizer()]).fit(X, y)
    reference = make([]).fit(X, y)
    reference.initialize_optimizer()  # what a fresh Adam at the start of round 2 means
    reset.fit(X, y)
    reference.fit(X, y)
    torch.testing.assert_close(reset.module_.weight, reference.module_.weight)


def test_every_fit_is_recorded_whoever_ends_it():
    X, y = _data()
    # EarlyStopping ends the fit (train loss stops improving); TrainUntilFit never fires
    callback = TrainUntilFit(threshold=1.0, patience=50)
    stopper = EarlyStopping(monitor="train_loss", patience=2, threshold=0.5)
    net = _net([stopper, callback], max_epochs=100).fit(X, y)
    assert len(net.history) < 100
    assert callback.epochs_ == [len(net.history)] and callback.fitted_ == [False]
    # partial_fit with fewer epochs than the net's max_epochs
    net = _net([callback], max_epochs=100, warm_start=True).fit(X, y, epochs=3)
    net.partial_fit(X, y, epochs=2)
    assert callback.epochs_ == [3, 2] and callback.fitted_ == [False, False]
    assert len(net.history) == 5


def test_binary_net_counts_a_sample_right_by_the_nets_own_threshold():
    from skorch import NeuralNetBinaryClassifier

    class ConstantLogit(torch.nn.Module):
        """Outputs logit(0.7) for every sample; lr=0 keeps it so."""

        def __init__(self):
            super().__init__()
            self.bias = torch.nn.Parameter(torch.tensor([np.log(0.7 / 0.3)], dtype=torch.float32))

        def forward(self, X):
            return self.bias.expand(len(X))

    X = np.zeros((32, 2), dtype=np.float32)
    y = np.ones(32, dtype=np.float32)
    for threshold, expected in [(0.5, 1.0), (0.9, 0.0)]:
        for accuracy in ("running", "eval"):
            net = NeuralNetBinaryClassifier(
                ConstantLogit,
                threshold=threshold,
                lr=0.0,
                max_epochs=2,
                train_split=None,
                verbose=0,
                callbacks=[TrainUntilFit(accuracy=accuracy, patience=5)],
            ).fit(X, y)
            # predict() agrees: sigmoid(logit) = 0.7 is class 1 only below the threshold
            assert (net.predict(X) == 1).mean() == expected
            assert net.history[:, "train_acc"] == [expected, expected], (threshold, accuracy)


@pytest.mark.parametrize("reset_first", [True, False])
def test_reset_optimizer_and_lr_scheduler_work_in_either_order(reset_first):
    from skorch.callbacks import LRScheduler

    X, y = _data()

    def make(callbacks):
        return _net(callbacks, max_epochs=4, lr=0.4, warm_start=True)

    def scheduler():
        return LRScheduler(policy=torch.optim.lr_scheduler.StepLR, step_size=1, gamma=0.5)

    def run(reset_first):
        order = [ResetOptimizer(), scheduler()]
        net = make(order if reset_first else order[::-1]).fit(X, y)
        first_lr = net.optimizer_.param_groups[0]["lr"]
        net.partial_fit(X, y)  # a second round: a fresh optimizer, the schedule goes on
        return net, first_lr

    net, first_lr = run(reset_first)
    # StepLR halved the lr after each of the 4 epochs, on the optimizer the net uses
    assert first_lr == pytest.approx(0.4 * 0.5**4)
    assert net.optimizer_.param_groups[0]["lr"] < 0.4
    reference, _ = run(reset_first=True)
    assert net.optimizer_.param_groups[0]["lr"] == reference.optimizer_.param_groups[0]["lr"]
    for a, b in zip(net.module_.parameters(), reference.module_.parameters(), strict=True):
        assert torch.equal(a, b)
