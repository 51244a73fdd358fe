"""SIGKILL a running loop many times; nothing committed may be lost, the run must not change.

The whole suite kills a loop ``SKDYNAL_CRASH_KILLS`` times (default 32) at seeded random
points, plus once at the first and last call of every internal injection point. Set the
variable higher for a longer stress run (or use ``benchmarks/crash_stress.py``).
"""

import os
import signal
import subprocess
import sys
import textwrap

import pytest

from skdynal.persistence import LabelJournal

from ._crash import INJECTION_POINTS, Zygote, crash_campaign, reference_run, run_trial
from ._helpers import make_pool

CFG = {"rounds": 5, "batch": 4, "seed": 0}
pytestmark = [
    pytest.mark.skipif(
        not hasattr(os, "fork") or not hasattr(signal, "SIGKILL"),
        reason="needs os.fork and SIGKILL (POSIX)",
    ),
    pytest.mark.slow,  # forked children killed at every injection point: ~15 s in all
]


@pytest.fixture(scope="module")
def zygote():
    z = Zygote()
    yield z
    z.close()


@pytest.fixture(scope="module")
def reference(zygote, tmp_path_factory):
    return reference_run(zygote, tmp_path_factory.mktemp("reference"), CFG)


@pytest.mark.parametrize("point", sorted(INJECTION_POINTS))
def test_kill_at_each_injection_point(zygote, reference, tmp_path, point):
    # first and last call of the point, then a resumed run to completion
    last = INJECTION_POINTS[point][3]
    _, y = make_pool()
    phases = run_trial(
        zygote,
        tmp_path / "loop",
        [("inject", point, 1), ("inject", point, last)],
        CFG,
        reference,
        y,
    )
    assert phases == [f"inject:{point}"] * 2


def test_random_kills(zygote, tmp_path):
    n_kills = int(os.environ.get("SKDYNAL_CRASH_KILLS", "32"))
    stats = crash_campaign(
        tmp_path,
        n_kills=n_kills,
        seed=0,
        zygote=zygote,
        **{k: v for k, v in CFG.items() if k != "seed"},
    )
    assert stats["kills"] == n_kills
    # kills were spread over the phases, including mid-save
    assert len(stats["phases"]) >= 4
    assert any("save" in phase or "rename" in phase for phase in stats["phases"])


CHILD = textwrap.dedent("""
    import sys
    from skdynal.persistence import LabelJournal
    journal = LabelJournal(sys.argv[1])
    pending = journal.open_round()
    if pending is None:
        journal.record_round(list(range(400)), scores=[float(i) for i in range(400)])
        pending = journal.open_round()
    for pool_id in pending.remaining:
        journal.commit_label(pool_id, pool_id % 7)
        sys.stdout.write(f"{pool_id}\\n")
        sys.stdout.flush()
""")


def test_journal_survives_kills_in_a_tight_commit_loop(tmp_path):
    # a bare journal (no torch): kill a process committing labels as fast as it can
    path = tmp_path / "journal.sqlite"
    acknowledged = set()
    kills = 0
    for n_read in [1, 5, 17, 40, 3, 60, 9, 25]:
        proc = subprocess.Popen(
            [sys.executable, "-c", CHILD, str(path)],
            stdout=subprocess.PIPE,
            text=True,
            cwd=os.getcwd(),
        )
        for _ in range(n_read):
            line = proc.stdout.readline()
            if not line:
                break
            acknowledged.add(int(line))
        os.kill(proc.pid, signal.SIGKILL)
        kills += proc.wait() == -signal.SIGKILL
        with LabelJournal(path) as journal:
            summary = journal.check_integrity()
            ids, labels = journal.labels()
        assert acknowledged <= set(ids)
        assert len(ids) == len(set(ids)) == summary["labels"]
        assert labels == [i % 7 for i in ids]
        assert summary["open_queries"] == 400 - len(ids)
    assert kills == 8
