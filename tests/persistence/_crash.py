"""Kill a running active learning loop with SIGKILL, many times, and check what survives.

Run as a script, this module is a *zygote*: it imports torch, skorch and modAL once, then
for every JSON command on stdin forks a child that runs (or resumes) a
:class:`~skdynal.persistence.ResumableLoop` on a digits subset and reports its progress as
JSON lines on stdout. The driver (:func:`crash_campaign`, used by the tests and by
``benchmarks/crash_stress.py``) starts the zygote with ``subprocess.Popen`` and kills the
children with ``os.kill(pid, SIGKILL)``, either

- at a random time: after a random progress event, plus a random delay of 0-20 ms, or
- at a random internal point: the child SIGKILLs itself at the n-th call of a chosen
  function (after a round is recorded, after a label is committed, before training,
  between the files of a checkpoint, around the checkpoint's rename),

and restarts it. Forking from a warm zygote makes a restart cost milliseconds instead of
the seconds that importing torch takes.
"""

import faulthandler
import json
import os
import select
import signal
import subprocess
import sys
import tempfile
import time
import traceback
from collections import Counter
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[2]

# internal points where a child may SIGKILL itself: (module, attribute, when, max n-th call)
INJECTION_POINTS = {
    "after_record_round": ("_journal", "LabelJournal.record_round", "after", 3),
    "after_commit": ("_journal", "LabelJournal.commit_labels", "after", 12),
    "before_teach": ("_loop", "ResumableLoop._teach", "before", 3),
    "mid_save_files": ("_checkpoint", "_fsync_file", "after", 12),
    "around_rename": ("_checkpoint", "_fsync_dir", "after", 6),
}


# ---------------------------------------------------------------------- child side
def _emit(event, **data):
    os.write(1, (json.dumps({"event": event, **data}) + "\n").encode())


def _install_injection(name, nth):
    import importlib

    module_name, attr, when, _ = INJECTION_POINTS[name]
    module = importlib.import_module(f"skdynal.persistence.{module_name}")
    owner, _, attr_name = attr.rpartition(".")
    target = getattr(module, owner) if owner else module
    original = getattr(target, attr_name)
    calls = [0]

    def wrapper(*args, **kwargs):
        calls[0] += 1
        if when == "before" and calls[0] == nth:
            os.kill(os.getpid(), signal.SIGKILL)
        result = original(*args, **kwargs)
        if when == "after" and calls[0] == nth:
            os.kill(os.getpid(), signal.SIGKILL)
        return result

    setattr(target, attr_name, wrapper)


def run_child(cfg, pool):
    """Run or resume the loop described by ``cfg`` until ``cfg['rounds']`` rounds are done."""
    from skdynal.persistence import LabelJournal, ResumableLoop

    from ._helpers import HalfRandomUncertainty, initial_ids, make_net

    _emit("pid", pid=os.getpid())
    # a child stuck for a minute dumps every thread's stack to stderr and exits
    faulthandler.dump_traceback_later(60, exit=True)
    if cfg.get("inject"):
        _install_injection(*cfg["inject"])
    X, y = pool
    directory = Path(cfg["dir"])
    started = False
    if (directory / "journal.sqlite").exists():
        with LabelJournal(directory / "journal.sqlite") as journal:
            started = bool(journal.rounds())
    strategy = HalfRandomUncertainty(random_state=np.random.RandomState(cfg["seed"]))
    if started:
        loop = ResumableLoop.resume(directory, make_net(), X, query_strategy=strategy)
    else:
        init = initial_ids(y)
        loop = ResumableLoop.start(
            directory, make_net(), strategy, X, init, y[init], random_state=cfg["seed"]
        )
    _emit("ready", trained=loop.n_rounds_trained)
    while loop.n_rounds_trained <= cfg["rounds"]:
        _emit("query")
        ids = loop.query(cfg["batch"])
        _emit("queried", ids=ids)
        for pool_id in ids:
            _emit("label", id=pool_id)
            loop.commit_label(pool_id, int(y[pool_id]))
            _emit("labeled", id=pool_id)
    _emit("done", next=loop.query(cfg["batch"]))
    loop.close()


def _warm_up(directory, pool):
    from skdynal.persistence import ResumableLoop

    from ._helpers import HalfRandomUncertainty, initial_ids, make_net

    X, y = pool
    init = initial_ids(y)
    loop = ResumableLoop.start(
        directory, make_net(), HalfRandomUncertainty(0), X, init, y[init], random_state=0
    )
    for pool_id in loop.query(2):
        loop.commit_label(pool_id, int(y[pool_id]))
    loop.close()
    ResumableLoop.resume(directory, make_net(), X, trusted=[HalfRandomUncertainty]).close()


def zygote():
    """Serve JSON commands from stdin, one forked child per command."""
    import torch

    from ._helpers import make_pool

    torch.set_num_threads(1)
    pool = make_pool()
    # pay the one-off costs of a first fit (lazy imports inside torch.optim) before forking
    with tempfile.TemporaryDirectory() as warmup:
        _warm_up(warmup, pool)
    _emit("zygote-ready")
    for line in sys.stdin:
        cfg = json.loads(line)
        pid = os.fork()
        if pid == 0:
            code = 0
            try:
                run_child(cfg, pool)
            except BaseException:
                _emit("error", trace=traceback.format_exc())
                code = 1
            finally:
                os._exit(code)
        _, status = os.waitpid(pid, 0)
        _emit(
            "exit",
            pid=pid,
            killed=os.WIFSIGNALED(status) and os.WTERMSIG(status) == signal.SIGKILL,
            code=os.waitstatus_to_exitcode(status),
        )


# ---------------------------------------------------------------------- driver side
class Zygote:
    """A warm zygote process started with ``subprocess.Popen``.

    Its output is read from the raw pipe with ``os.read`` and split into lines here: a
    buffered ``readline`` can pull several lines out of the pipe at once, after which
    ``select`` on the pipe waits for output that was already read.
    """

    def __init__(self, timeout=120.0):
        self.timeout = timeout
        # one thread per process: worker pools of OpenMP/MKL/OpenBLAS do not survive fork
        env = {
            **os.environ,
            "OMP_NUM_THREADS": "1",
            "MKL_NUM_THREADS": "1",
            "OPENBLAS_NUM_THREADS": "1",
        }
        self.proc = subprocess.Popen(
            [sys.executable, "-c", "from tests.persistence._crash import zygote; zygote()"],
            cwd=ROOT,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            bufsize=0,
            env=env,
        )
        self._pending = b""
        self._expect("zygote-ready")

    def _read(self):
        while b"\n" not in self._pending:
            ready, _, _ = select.select([self.proc.stdout], [], [], self.timeout)
            if not ready:
                raise TimeoutError(
                    "crash-test harness produced no output for "
                    f"{self.timeout} s (a stuck child dumps its stack to "
                    "stderr after 60 s)"
                )
            chunk = os.read(self.proc.stdout.fileno(), 65536)
            if not chunk:
                raise RuntimeError("crash-test zygote exited unexpectedly")
            self._pending += chunk
        line, _, self._pending = self._pending.partition(b"\n")
        return json.loads(line)

    def _expect(self, event):
        message = self._read()
        if message["event"] != event:
            raise RuntimeError(f"expected {event!r} from the zygote, got {message}")
        return message

    def run(self, cfg, kill_after_event=None, delay=0.0):
        """Run one child; SIGKILL it ``delay`` s after its ``kill_after_event``-th event.

        Returns the child's events and whether it died by SIGKILL.
        """
        self.proc.stdin.write((json.dumps(cfg) + "\n").encode())
        pid = self._expect("pid")["pid"]
        events = []
        while True:
            message = self._read()
            if message["event"] == "exit":
                if not message["killed"] and message["code"] != 0:
                    raise RuntimeError(
                        f"crash-test child exited with code {message['code']} "
                        "(a hang dumps its stack to stderr)"
                    )
                return events, message["killed"]
            if message["event"] == "error":
                raise RuntimeError("crash-test child failed:\n" + message["trace"])
            events.append(message)
            if kill_after_event is not None and len(events) == kill_after_event:
                time.sleep(delay)
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:  # already finished and reaped
                    pass

    def close(self):
        self.proc.stdin.close()
        try:
            self.proc.wait(timeout=2)
        except subprocess.TimeoutExpired:  # idle, only tearing down torch: no need to wait
            self.proc.kill()
            self.proc.wait()
        self.proc.stdout.close()


def _journal_state(directory):
    """Integrity-check the journal; return its labels as a dict."""
    from skdynal.persistence import LabelJournal

    path = Path(directory) / "journal.sqlite"
    if not path.exists():
        return {}
    with LabelJournal(path) as journal:
        journal.check_integrity()
        ids, labels = journal.labels()
    return dict(zip(ids, labels, strict=True))


def _final_state(directory):
    """Journal rounds, the newest checkpoint's state and parameters, the saved strategy."""
    import torch

    from skdynal.persistence import LabelJournal, read_checkpoint
    from skdynal.persistence._checkpoint import list_checkpoints

    with LabelJournal(Path(directory) / "journal.sqlite") as journal:
        journal.check_integrity()
        rounds = [(r.round, r.pool_ids, r.labels, r.is_open) for r in journal.rounds()]
    state, files = read_checkpoint(list_checkpoints(Path(directory) / "checkpoints")[0])
    params = torch.load(files["params.pt"], weights_only=True)
    # the same strategy state is saved as the same JSON (its RandomState included)
    return rounds, state, params, files["strategy.json"].read_bytes()


def _classify(directory, events, injected):
    """Name the phase a kill hit."""
    if injected:
        return injected
    if any(p.name.startswith(".tmp-") for p in (Path(directory) / "checkpoints").glob("*")):
        return "timer:mid_save"
    return f"timer:after_{events[-1]['event']}" if events else "timer:at_startup"


def run_trial(zygote, directory, plans, cfg, reference, y):
    """Run one loop in ``directory`` with the given kill plans, then to completion.

    Each plan is ``("inject", point, nth)`` or ``("timer", event_index, delay_s)``. After
    every run: the journal passes :meth:`LabelJournal.check_integrity`, every label whose
    ``label()`` call returned in an earlier run is still there with the oracle's value, and
    no committed label disappeared or changed. At the end: the journal's rounds (ids and
    labels, including the next open query), the newest checkpoint's state, the net's
    parameters and the strategy's random state equal ``reference`` bit for bit.

    Returns the phases of the kills that happened (a plan whose run finished before its
    kill point is skipped and the remaining plans are dropped).
    """
    import torch

    phases = []
    committed = {}
    for kind, where, when in plans:
        if kind == "inject":
            events, killed = zygote.run({**cfg, "dir": str(directory), "inject": [where, when]})
        else:
            events, killed = zygote.run(
                {**cfg, "dir": str(directory)}, kill_after_event=where, delay=when
            )
        if killed:
            phases.append(
                _classify(directory, events, f"inject:{where}" if kind == "inject" else None)
            )
        acknowledged = {e["id"] for e in events if e["event"] == "labeled"}
        labels = _journal_state(directory)
        lost = [pid for pid in committed if labels.get(pid) != committed[pid]]
        assert not lost, f"committed labels lost or changed: {lost}"
        missing = acknowledged - set(labels)
        assert not missing, f"acknowledged labels missing from the journal: {missing}"
        wrong = {pid: v for pid, v in labels.items() if v != int(y[pid])}
        assert not wrong, f"labels differ from the oracle: {wrong}"
        committed = labels
        if not killed:
            break
    events, killed = zygote.run({**cfg, "dir": str(directory)})
    assert not killed and events[-1]["event"] == "done", events[-1:]
    rounds, state, params, strategy = _final_state(directory)
    ref_rounds, ref_state, ref_params, ref_strategy = reference
    assert rounds == ref_rounds, "resumed run queried or labeled differently"
    assert state == ref_state, "checkpoint state differs"
    assert params.keys() == ref_params.keys()
    for key in params:
        assert torch.equal(params[key], ref_params[key]), f"parameter {key} differs"
    assert strategy == ref_strategy, "strategy state (random generator) differs"
    return phases


def reference_run(zygote, workdir, cfg):
    """An uninterrupted run; returns its final state for :func:`run_trial`."""
    directory = Path(workdir) / "reference"
    events, killed = zygote.run({**cfg, "dir": str(directory)})
    assert not killed and events[-1]["event"] == "done"
    return _final_state(directory)


def crash_campaign(
    workdir, *, n_kills=32, kills_per_trial=8, seed=0, rounds=5, batch=4, zygote=None
):
    """Kill loops at seeded random points until ``n_kills`` kills happened.

    Each trial is a fresh loop, killed up to ``kills_per_trial`` times (half at a random
    internal point, half at a random time) and checked by :func:`run_trial`.

    Returns
    -------
    stats : dict
        ``kills`` (total), ``phases`` (kills per phase), ``trials``.
    """
    from ._helpers import make_pool

    _, y = make_pool()
    rng = np.random.default_rng(seed)
    own = zygote is None
    zygote = Zygote() if own else zygote
    phases = Counter()
    trial = 0
    cfg = {"rounds": rounds, "batch": batch, "seed": seed}
    try:
        reference = reference_run(zygote, workdir, cfg)
        while sum(phases.values()) < n_kills:
            plans = []
            for _ in range(min(kills_per_trial, n_kills - sum(phases.values()))):
                if rng.random() < 0.5:
                    name = str(rng.choice(sorted(INJECTION_POINTS)))
                    nth = int(rng.integers(1, INJECTION_POINTS[name][3] + 1))
                    plans.append(("inject", name, nth))
                else:
                    plans.append(("timer", int(rng.integers(1, 16)), float(rng.uniform(0, 0.02))))
            phases.update(
                run_trial(zygote, Path(workdir) / f"trial{trial}", plans, cfg, reference, y)
            )
            trial += 1
    finally:
        if own:
            zygote.close()
    return {"kills": sum(phases.values()), "phases": dict(sorted(phases.items())), "trials": trial}


if __name__ == "__main__":  # pragma: no cover
    zygote()
