"""A real Ctrl-C stops ``skdynal run``: exit 130, one line, no truncated cell stored."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from skorch.callbacks import Callback

from skdynal import cli
from skdynal._interrupt import Interrupted
from skdynal.datasets import load_digits_split
from skdynal.experiments import _runner

ROOT = Path(__file__).resolve().parents[2]
ARGS = [
    "run",
    "--initial",
    "20",
    "--query",
    "10",
    "--rounds",
    "2",
    "--epochs",
    "40",
    "--strategies",
    "random",
    "margin",
    "--seeds",
    "3",
    "--no-progress",
    "--no-plot",
]


def _finished_cell_files(out):
    # Cells are written to a hidden temporary file and renamed; only the renamed ones count.
    return sorted(p for p in (Path(out) / "cells").glob("*.json") if not p.name.startswith("."))


def _cells(out):
    return {p.name: json.loads(p.read_text())["rows"] for p in _finished_cell_files(out)}


def _accuracies(rows):
    return [
        (r["strategy"], r["seed"], r["round"], r["n_labels"], r["test_accuracy"]) for r in rows
    ]


def test_sigint_stops_skdynal_run_and_a_rerun_matches_a_clean_run(tmp_path, capsys):
    out = tmp_path / "interrupted"
    env = {
        **os.environ,
        "OMP_NUM_THREADS": "1",
        "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]),
    }
    proc = subprocess.Popen(
        [sys.executable, "-m", "skdynal", *ARGS, "--out", str(out)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    deadline = time.monotonic() + 120
    while not _finished_cell_files(out) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert proc.poll() is None, proc.communicate()
    os.kill(proc.pid, signal.SIGINT)  # while the second cell trains
    _, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 130
    lines = stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("skdynal: interrupted"), stderr
    assert "Traceback" not in stderr
    stored = _cells(out)
    assert 1 <= len(stored) < 6  # finished cells kept, the rest not stored
    assert not (out / "results.csv").exists()

    assert cli.main([*ARGS, "--out", str(tmp_path / "clean")]) == 0
    clean = _cells(tmp_path / "clean")
    for name, rows in stored.items():  # every stored cell is a complete, clean cell
        assert _accuracies(rows) == _accuracies(clean[name])
    assert cli.main([*ARGS, "--out", str(out)]) == 0  # resumes
    assert {k: _accuracies(v) for k, v in _cells(out).items()} == {
        k: _accuracies(v) for k, v in clean.items()
    }
    capsys.readouterr()


_STATE = {"armed": False, "fits": 0}


class SigintInSecondFit(Callback):
    """A real SIGINT at the 2nd epoch of the 2nd fit (round 1's training) while armed."""

    def on_train_begin(self, net, **kwargs):
        _STATE["fits"] += 1
        self.epoch_ = 0

    def on_epoch_end(self, net, **kwargs):
        self.epoch_ += 1
        if _STATE["armed"] and _STATE["fits"] == 2 and self.epoch_ == 2:
            os.kill(os.getpid(), signal.SIGINT)


def test_interrupted_cell_is_not_stored_and_rerun_recomputes_it(tmp_path):
    data = load_digits_split(random_state=0)
    kwargs = dict(
        initial=20,
        query=10,
        rounds=2,
        seeds=[0],
        epochs=4,
        progress=False,
        plot=False,
        out=tmp_path,
        n_threads=1,
        net_kwargs={"callbacks": [("sigint", SigintInSecondFit())]},
    )
    clean = _runner.run_experiment(data, "mlp", ["random"], **{**kwargs, "out": None})
    _STATE.update(armed=True, fits=0)
    try:
        with pytest.raises(Interrupted, match="dropped, not stored"):
            _runner.run_experiment(data, "mlp", ["random"], **kwargs)
    finally:
        _STATE["armed"] = False
    assert _STATE["fits"] == 2  # stopped in round 1, no third fit
    assert not list((tmp_path / "cells").glob("*.json"))
    again = _runner.run_experiment(data, "mlp", ["random"], **kwargs)
    assert _accuracies(again.rows) == _accuracies(clean.rows)


def test_benchmark_worker_records_ctrl_c_when_idle_and_refuses_its_next_cell(monkeypatch):
    from skdynal.experiments import _benchmark

    previous = signal.getsignal(signal.SIGINT)
    monkeypatch.setattr(_benchmark, "_worker_interrupted", False)
    try:
        _benchmark._init_worker()
        os.kill(os.getpid(), signal.SIGINT)  # an idle worker: recorded, nothing raised
        time.sleep(0.01)
        assert _benchmark._worker_interrupted
    finally:
        signal.signal(signal.SIGINT, previous)
    task = _benchmark.BENCHMARK_TASKS["digits"].scaled(True)
    with pytest.raises(Interrupted, match="before the cell 'random' seed 0 started"):
        _benchmark._run_job((task, "fixed", "random", 0, "unused", True))
