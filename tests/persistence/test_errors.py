"""Persistence errors say what happened: read-only folder, emptied journal, a second writer,
disk full while writing a checkpoint."""

import errno
import json
import os
import shutil
import socket
import subprocess
import sys

import pytest

from skdynal.persistence import (
    CheckpointWriteError,
    JournalLockedError,
    LabelJournal,
    ResumableLoop,
    read_checkpoint,
)
from skdynal.persistence import _loop as loop_module
from skdynal.persistence._checkpoint import list_checkpoints

from ._helpers import HalfRandomUncertainty, initial_ids, make_net, make_pool


def _start(path, X, y):
    init = initial_ids(y)
    return ResumableLoop.start(
        path, make_net(), HalfRandomUncertainty(3), X, init, y[init], random_state=1
    )


@pytest.fixture
def read_only():
    """Make a folder read-only, also for root (which ignores permission bits)."""
    made = []

    def make(path):
        if os.geteuid() == 0:
            if (
                shutil.which("chattr") is None
                or subprocess.run(["chattr", "+i", str(path)], capture_output=True).returncode != 0
            ):
                pytest.skip("running as root and chattr +i is unavailable here")
        else:
            path.chmod(0o555)
        made.append(path)

    yield make
    for path in made:
        if os.geteuid() == 0:
            subprocess.run(["chattr", "-i", str(path)], check=True)
        else:
            path.chmod(0o755)


def test_resume_in_a_read_only_folder_refuses_before_handing_out_ids(tmp_path, read_only):
    X, y = make_pool()
    _start(tmp_path / "loop", X, y).close()
    read_only(tmp_path / "loop")
    with pytest.raises(PermissionError, match=r"is not writable .*could not commit labels"):
        ResumableLoop.resume(tmp_path / "loop", make_net(), X, trusted=[HalfRandomUncertainty])


def test_start_in_a_read_only_folder_refuses(tmp_path, read_only):
    X, y = make_pool()
    (tmp_path / "loop").mkdir()
    read_only(tmp_path / "loop")
    with pytest.raises(PermissionError, match="is not writable"):
        _start(tmp_path / "loop", X, y)


@pytest.mark.parametrize("damage", ["zero-byte", "missing"])
def test_emptied_journal_offers_the_way_out_not_start_resume_ping_pong(tmp_path, damage):
    X, y = make_pool()
    _start(tmp_path / "loop", X, y).close()
    journal = tmp_path / "loop" / "journal.sqlite"
    for suffix in ("", "-wal", "-shm"):
        journal.with_name(journal.name + suffix).unlink(missing_ok=True)
    if damage == "zero-byte":
        journal.write_bytes(b"")
    for call in (
        lambda: ResumableLoop.resume(
            tmp_path / "loop", make_net(), X, trusted=[HalfRandomUncertainty]
        ),
        lambda: _start(tmp_path / "loop", X, y),
    ):
        with pytest.raises(ValueError) as info:
            call()
        message = str(info.value)
        assert "holds no rounds" in message and "1 checkpoint(s)" in message
        assert "put it back and call ResumableLoop.resume" in message
        assert "MANIFEST.json" in message and "ResumableLoop.start in a new one" in message
    # the way out works: the checkpoint lists the labeled set
    state, _ = read_checkpoint(list_checkpoints(tmp_path / "loop" / "checkpoints")[0])
    assert state["labeled_ids"] == initial_ids(y)


def test_zero_byte_journal_without_checkpoints_is_a_fresh_start(tmp_path):
    X, y = make_pool()
    (tmp_path / "loop").mkdir()
    (tmp_path / "loop" / "journal.sqlite").write_bytes(b"")
    with pytest.raises(ValueError, match=r"call ResumableLoop\.start again"):
        ResumableLoop.resume(tmp_path / "loop", make_net(), X, trusted=[HalfRandomUncertainty])
    loop = _start(tmp_path / "loop", X, y)  # and start does
    assert loop.n_rounds_trained == 1
    loop.close()


def test_a_second_writer_is_refused_with_the_first_ones_pid_and_host(tmp_path):
    X, y = make_pool()
    loop = _start(tmp_path / "loop", X, y)
    code = (
        "import sys; from skdynal.persistence import LabelJournal\n"
        "try:\n    LabelJournal(sys.argv[1], exclusive=True)\n"
        "except Exception as exc:\n    print(type(exc).__name__, exc)\n"
    )
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([os.getcwd(), os.environ.get("PYTHONPATH", "")]),
    }
    out = subprocess.run(
        [sys.executable, "-c", code, str(tmp_path / "loop" / "journal.sqlite")],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    ).stdout
    assert out.startswith("JournalLockedError")
    assert f"process {os.getpid()} on host {socket.gethostname()}" in out
    with pytest.raises(JournalLockedError, match=f"process {os.getpid()} on host"):
        ResumableLoop.resume(
            tmp_path / "loop", make_net(), X, trusted=[HalfRandomUncertainty]
        )  # same process, 2nd opening
    with LabelJournal(tmp_path / "loop" / "journal.sqlite") as reader:  # readers may
        assert len(reader) == 10
    loop.close()
    ResumableLoop.resume(
        tmp_path / "loop", make_net(), X, trusted=[HalfRandomUncertainty]
    ).close()  # released on close


def test_lock_of_a_killed_process_is_released(tmp_path):
    code = (
        "import os, sys; from skdynal.persistence import LabelJournal\n"
        "LabelJournal(sys.argv[1], exclusive=True); os._exit(0)\n"
    )
    subprocess.run(
        [sys.executable, "-c", code, str(tmp_path / "j.sqlite")],
        check=True,
        timeout=60,
        env={**os.environ, "PYTHONPATH": os.getcwd()},
    )
    assert json.loads((tmp_path / "j.sqlite.lock").read_text())["pid"] != os.getpid()
    LabelJournal(tmp_path / "j.sqlite", exclusive=True).close()


def test_disk_full_while_checkpointing_says_the_labels_are_safe(tmp_path, monkeypatch):
    X, y = make_pool()
    loop = _start(tmp_path / "loop", X, y)
    ids = loop.query(n_instances=4)
    real = loop_module._save_param_file

    def disk_full(net, name, path):
        if name == "optimizer.pt":
            with open(path, "wb") as f:
                f.write(b"partial")
            raise OSError(errno.ENOSPC, "No space left on device")
        real(net, name, path)

    monkeypatch.setattr(loop_module, "_save_param_file", disk_full)
    with pytest.raises(CheckpointWriteError) as info:
        loop.commit_labels(ids, [int(y[i]) for i in ids])
    message = str(info.value)
    assert "round 1's labels are committed in the journal and safe" in message
    assert "checkpoint could not be written" in message and "No space left" in message
    assert len(loop.journal) == 14 and loop.journal.open_round() is None
    root = tmp_path / "loop" / "checkpoints"
    assert [read_checkpoint(c)[0]["trained"] for c in list_checkpoints(root)] == [0]
    assert not list(root.glob(".tmp-*"))  # the partial checkpoint was removed
    monkeypatch.setattr(loop_module, "_save_param_file", real)
    loop.save()  # space freed: the same loop saves the round
    assert read_checkpoint(list_checkpoints(root)[0])[0]["trained"] == 1
    loop.close()
