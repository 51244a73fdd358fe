"""A real Ctrl-C during a ResumableLoop's training stops it; resuming gives a clean run."""

import importlib
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from skdynal._interrupt import Interrupted
from skdynal.persistence import LabelJournal, ResumableLoop, read_checkpoint
from skdynal.persistence._checkpoint import list_checkpoints

from ._helpers import HalfRandomUncertainty, initial_ids, make_net, make_pool

HERE = Path(__file__).resolve().parent


def _clean_run(path, X, y):
    init = initial_ids(y)
    loop = ResumableLoop.start(
        path, make_net(max_epochs=5), HalfRandomUncertainty(3), X, init, y[init], random_state=7
    )
    ids = loop.query(n_instances=4)
    loop.commit_labels(ids, [int(y[i]) for i in ids])
    return loop


@pytest.mark.slow  # a child process interrupted mid-training, then a clean run
def test_sigint_during_training_stops_the_loop_and_resume_matches_a_clean_run(
    tmp_path, monkeypatch
):
    X, y = make_pool()
    path = os.pathsep.join([str(HERE.parents[1]), os.environ.get("PYTHONPATH", "")])
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": path}
    proc = subprocess.run(
        [sys.executable, str(HERE / "_sigint_loop.py"), str(tmp_path / "loop")],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert "SIGINT" in proc.stdout and "NOT INTERRUPTED" not in proc.stdout, proc.stderr
    assert proc.returncode != 0
    assert "Interrupted while training round 1" in proc.stderr
    # the labels are kept, round 1's training is not: only round 0's checkpoint exists
    checkpoints = list_checkpoints(tmp_path / "loop" / "checkpoints")
    assert [read_checkpoint(c)[0]["trained"] for c in checkpoints] == [0]
    with LabelJournal(tmp_path / "loop" / "journal.sqlite") as journal:
        rounds = journal.rounds()
        assert [(r.round, r.is_open) for r in rounds] == [(0, False), (1, False)]
        assert len(journal) == 14

    # the child saved its strategy under the import path it used; trust that class
    monkeypatch.syspath_prepend(str(HERE.parents[1]))
    child_class = importlib.import_module("tests.persistence._helpers").HalfRandomUncertainty
    resumed = ResumableLoop.resume(
        tmp_path / "loop", make_net(max_epochs=5), X, trusted=[child_class]
    )
    clean = _clean_run(tmp_path / "clean", X, y)
    assert resumed.n_rounds_trained == clean.n_rounds_trained == 2
    for (name, a), (_, b) in zip(
        resumed.learner.estimator.module_.state_dict().items(),
        clean.learner.estimator.module_.state_dict().items(),
        strict=True,
    ):
        assert torch.equal(a, b), name
    assert resumed.query(n_instances=4) == clean.query(n_instances=4)
    resumed.close()
    clean.close()


def test_interrupted_loop_object_refuses_to_go_on(tmp_path, monkeypatch):
    X, y = make_pool()
    loop = _clean_run(tmp_path / "loop", X, y)
    ids = loop.query(n_instances=4)

    def fake_teach(X_new, y_new, **kwargs):
        os.kill(os.getpid(), signal.SIGINT)

    monkeypatch.setattr(loop.learner, "teach", fake_teach)
    with pytest.raises(Interrupted, match="round 2"):
        loop.commit_labels(ids, [int(y[i]) for i in ids])
    with pytest.raises(RuntimeError, match=r"ResumableLoop\.resume"):
        loop.query(n_instances=4)
    loop.close()
