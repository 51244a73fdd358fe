import hashlib
import json

import pytest

from skdynal.persistence import CheckpointError, read_checkpoint, write_checkpoint
from skdynal.persistence._checkpoint import list_checkpoints


def writer(data):
    def write(path):
        path.write_bytes(data)

    return write


def test_round_trip_keep_and_cleanup(tmp_path):
    (tmp_path / ".tmp-ckpt-000009-dead").mkdir(parents=True)  # a save killed midway
    paths = [
        write_checkpoint(tmp_path, {"a.bin": writer(bytes([i]) * 100)}, {"step": i}, keep=2)
        for i in range(4)
    ]
    assert [p.name for p in paths] == [f"ckpt-00000{i}" for i in range(4)]
    assert list_checkpoints(tmp_path) == [paths[3], paths[2]]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ckpt-000002", "ckpt-000003"]
    state, files = read_checkpoint(paths[3])
    assert state == {"step": 3}
    assert files["a.bin"].read_bytes() == bytes([3]) * 100
    manifest = json.loads((paths[3] / "MANIFEST.json").read_text())
    assert manifest["files"]["a.bin"] == {
        "sha256": hashlib.sha256(bytes([3]) * 100).hexdigest(),
        "size": 100,
    }


@pytest.mark.parametrize(
    ("damage", "message"),
    [
        (lambda p: (p / "a.bin").write_bytes(b"x" * 50), "truncated"),
        (lambda p: (p / "a.bin").write_bytes(b"y" * 100), "corrupted"),
        (lambda p: (p / "a.bin").unlink(), "missing"),
        (lambda p: (p / "MANIFEST.json").unlink(), "incomplete"),
        (lambda p: (p / "MANIFEST.json").write_text("{"), "unreadable"),
        (lambda p: (p / "MANIFEST.json").write_text("[]"), "unknown format"),
    ],
)
def test_damage_is_detected(tmp_path, damage, message):
    path = write_checkpoint(tmp_path, {"a.bin": writer(b"x" * 100)}, {})
    damage(path)
    with pytest.raises(CheckpointError, match=message):
        read_checkpoint(path)


def test_bad_arguments(tmp_path):
    with pytest.raises(ValueError, match="keep"):
        write_checkpoint(tmp_path, {}, {}, keep=0)
    with pytest.raises(ValueError, match="invalid checkpoint file name"):
        write_checkpoint(tmp_path, {"MANIFEST.json": writer(b"")}, {})
