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


@pytest.mark.slow
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
    clean = _runner.run_experiment(
        data, model="mlp", strategies=["random"], **{**kwargs, "out": None}
    )
    _STATE.update(armed=True, fits=0)
    try:
        with pytest.raises(Interrupted, match="dropped, not stored"):
            _runner.run_experiment(data, model="mlp", strategies=["random"], **kwargs)
    finally:
        _STATE["armed"] = False
    assert _STATE["fits"] == 2  # stopped in round 1, no third fit
    assert not list((tmp_path / "cells").glob("*.json"))
    again = _runner.run_experiment(data, model="mlp", strategies=["random"], **kwargs)
    assert _accuracies(again.rows) == _accuracies(clean.rows)


def test_benchmark_worker_records_ctrl_c_when_idle_and_refuses_its_next_cell(monkeypatch):
    from skdynal.experiments import _scheduling
    from skdynal.experiments._tasks import BENCHMARK_TASKS

    previous = signal.getsignal(signal.SIGINT)
    monkeypatch.setattr(_scheduling, "_worker_interrupted", False)
    try:
        _scheduling.init_worker()
        os.kill(os.getpid(), signal.SIGINT)  # an idle worker: recorded, nothing raised
        time.sleep(0.01)
        assert _scheduling._worker_interrupted
    finally:
        signal.signal(signal.SIGINT, previous)
    task = BENCHMARK_TASKS["digits"].scaled(True)
    job = _scheduling.CellJob(task, "fixed", "random", 0, "unused", resume=True)
    with pytest.raises(Interrupted, match="before the cell 'random' seed 0 started"):
        _scheduling.run_cell_job(job)


# ------------------------------------------------------------- Ctrl-C during the start-up


def _env():
    return {
        **os.environ,
        "OMP_NUM_THREADS": "1",
        "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]),
    }


def _maps(pid):
    try:
        return Path(f"/proc/{pid}/maps").read_text()
    except OSError:  # gone, or not Linux
        return ""


def _children(pid):
    """Pids of the spawned multiprocessing workers of ``pid``."""
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            ppid = int(stat.read_text().rsplit(")", 1)[1].split()[1])
            cmdline = (stat.parent / "cmdline").read_bytes()
        except (OSError, IndexError, ValueError):
            continue
        if ppid == pid and b"spawn_main" in cmdline:
            found.append(int(stat.parent.name))
    return found


def _wait_for(predicate, proc, timeout=60):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and proc.poll() is None:
        if predicate():
            return
        time.sleep(0.002)
    proc.kill()
    pytest.fail(f"never happened; {proc.communicate()}")


def _assert_one_line_130(proc, timeout=120):
    _, stderr = proc.communicate(timeout=timeout)
    lines = stderr.strip().splitlines()
    assert "Traceback" not in stderr, stderr
    assert len(lines) == 1 and lines[0].startswith("skdynal: interrupted"), stderr
    assert proc.returncode == 130, stderr


def _assert_nothing_half_written(out):
    files = [p for p in Path(out).rglob("*") if p.is_file()] if Path(out).exists() else []
    assert not [p for p in files if p.name.startswith(".")], files  # no temporary file left
    for path in files:
        if path.suffix == ".json":
            json.loads(path.read_text())


@pytest.mark.skipif(not Path("/proc/self/maps").exists(), reason="needs Linux's /proc")
@pytest.mark.parametrize("library", ["_multiarray_umath", "libtorch_cpu"])
def test_sigint_while_skdynal_run_imports_exits_130_with_one_line(tmp_path, library):
    # The SIGINT lands in the start-up imports: as soon as numpy's (scikit-learn's) or
    # torch's compiled library is loaded, well before the imports end.
    proc = subprocess.Popen(
        [sys.executable, "-m", "skdynal", *ARGS, "--out", str(tmp_path / "out")],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=_env(),
    )
    _wait_for(lambda: library in _maps(proc.pid), proc)
    os.kill(proc.pid, signal.SIGINT)
    _assert_one_line_130(proc)
    assert not (tmp_path / "out").exists()


@pytest.mark.slow
@pytest.mark.skipif(not Path("/proc/self/maps").exists(), reason="needs Linux's /proc")
def test_ctrl_c_to_the_group_while_benchmark_workers_import_exits_130_with_one_line(tmp_path):
    # Ctrl-C in a terminal reaches every process of the group: here while a spawned worker
    # of --jobs 2 is still importing torch, before the pool's initializer ran in it.
    out = tmp_path / "out"
    proc = subprocess.Popen(
        [
            *(sys.executable, "-m", "skdynal", "benchmark", "--quick", "--jobs", "2"),
            *("--tasks", "three_clust", "--strategies", "random", "--no-progress"),
            *("--out", str(out)),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=_env(),
        start_new_session=True,
    )
    try:
        _wait_for(lambda: any("libtorch_cpu" in _maps(pid) for pid in _children(proc.pid)), proc)
        os.killpg(proc.pid, signal.SIGINT)
        _assert_one_line_130(proc)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    _assert_nothing_half_written(out)
    assert not list(out.rglob("results.csv"))
