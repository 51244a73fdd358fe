"""A real Ctrl-C (SIGINT) stops training; skorch's own stops do not count as one."""

import os
import signal
import threading

import numpy as np
import pytest
import torch
from skorch import NeuralNetClassifier
from skorch.callbacks import Callback, EarlyStopping

from skdynal._interrupt import Interrupted, interrupt_guard
from skdynal.callbacks import StopTraining, TrainUntilFit


class SigintAt(Callback):
    """Send the process a real SIGINT at the end of epoch ``epoch``."""

    def __init__(self, epoch):
        self.epoch = epoch

    def on_epoch_end(self, net, **kwargs):
        if len(net.history) == self.epoch:
            os.kill(os.getpid(), signal.SIGINT)


class RaiseAt(Callback):
    def __init__(self, epoch, exc):
        self.epoch = epoch
        self.exc = exc

    def on_epoch_end(self, net, **kwargs):
        if len(net.history) == self.epoch:
            raise self.exc


def _net(callbacks, max_epochs=6):
    torch.manual_seed(0)
    return NeuralNetClassifier(
        torch.nn.Sequential(torch.nn.Linear(2, 2), torch.nn.Softmax(dim=-1)),
        max_epochs=max_epochs,
        lr=0.1,
        train_split=None,
        verbose=0,
        callbacks=callbacks,
    )


def _data():
    X = np.random.RandomState(0).randn(32, 2).astype("float32")
    return X, (X[:, 0] > 0).astype("int64")


def test_real_sigint_during_fit_raises_interrupted_after_stopping_training():
    net = _net([SigintAt(epoch=2)])
    with pytest.raises(Interrupted, match="round 7"), interrupt_guard("round 7 dropped"):
        net.fit(*_data())
    assert len(net.history) == 2  # training stopped at the signal, not after 6 epochs
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler  # restored


def test_sigint_swallowed_by_skorch_without_the_guard():
    # what the guard fixes: skorch returns normally after a real Ctrl-C
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        net = _net([SigintAt(epoch=2)]).fit(*_data())
    finally:
        signal.signal(signal.SIGINT, previous)
    assert len(net.history) == 2


@pytest.mark.parametrize(
    "stopper",
    [
        RaiseAt(3, KeyboardInterrupt()),  # what skorch's EarlyStopping raises
        RaiseAt(3, StopTraining()),
    ],
)
def test_callback_stops_are_not_interrupts(stopper):
    net = _net([stopper])
    with interrupt_guard("never"):
        net.fit(*_data())
    assert len(net.history) == 3


def test_early_stopping_and_train_until_fit_still_end_training():
    with interrupt_guard("never"):
        net = _net([EarlyStopping(monitor="train_loss", patience=1, threshold=10.0)], 8)
        net.fit(*_data())
        assert len(net.history) == 2
        net = _net([TrainUntilFit(threshold=0.5, patience=2)], 30).fit(*_data())
        assert len(net.history) < 30


def test_guard_outside_the_main_thread_does_nothing():
    seen = []

    def work():
        with interrupt_guard("x") as guard:
            seen.append(guard._installed)

    thread = threading.Thread(target=work)
    thread.start()
    thread.join()
    assert seen == [False]


def test_nested_guards_raise_once_and_restore_the_outer_handler():
    with pytest.raises(Interrupted, match="inner"):
        with interrupt_guard("outer") as outer:
            with interrupt_guard("inner"):
                os.kill(os.getpid(), signal.SIGINT)
    assert not outer.interrupted
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler
