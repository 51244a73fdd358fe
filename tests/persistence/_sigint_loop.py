"""Run a ResumableLoop and send this process a real SIGINT during round 1's training.

Usage: ``python _sigint_loop.py DIRECTORY``. Used by ``test_interrupt_loop.py``; exits
through the uncaught :class:`skdynal._interrupt.Interrupted` (a KeyboardInterrupt).
"""

import os
import signal
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from skorch.callbacks import Callback

from skdynal.persistence import ResumableLoop
from tests.persistence._helpers import (
    HalfRandomUncertainty,
    initial_ids,
    make_net,
    make_pool,
)


class SigintInSecondFit(Callback):
    """A real SIGINT at the 2nd epoch of the 2nd fit call (round 1's training)."""

    def initialize(self):
        self.fits_ = 0
        return self

    def on_train_begin(self, net, **kwargs):
        self.fits_ += 1
        self.epoch_ = 0

    def on_epoch_end(self, net, **kwargs):
        self.epoch_ += 1
        if self.fits_ == 2 and self.epoch_ == 2:
            print("SIGINT", flush=True)
            os.kill(os.getpid(), signal.SIGINT)


if __name__ == "__main__":
    torch.set_num_threads(1)
    X, y = make_pool()
    init = initial_ids(y)
    net = make_net(max_epochs=5)
    net.set_params(callbacks=[SigintInSecondFit()])
    loop = ResumableLoop.start(
        sys.argv[1], net, HalfRandomUncertainty(random_state=3), X, init, y[init], random_state=7
    )
    ids = loop.query(n_instances=4)
    print("QUERIED", ids, flush=True)
    loop.commit_labels(ids, [int(y[i]) for i in ids])
    print("NOT INTERRUPTED", flush=True)
