"""Atomic, checksummed checkpoint directories."""

import hashlib
import json
import os
import re
import shutil
import uuid
from pathlib import Path

__all__ = [
    "CheckpointError",
    "CheckpointWriteError",
    "list_checkpoints",
    "read_checkpoint",
    "write_checkpoint",
]

MANIFEST = "MANIFEST.json"
FORMAT_VERSION = 1
_NAME = re.compile(r"^ckpt-(\d{6,})$")


class CheckpointError(ValueError):
    """A checkpoint is missing, incomplete, truncated, corrupted or does not fit the loop."""


class CheckpointWriteError(RuntimeError):
    """A checkpoint could not be written (e.g. the disk is full); no partial one was kept.

    Raised by :class:`ResumableLoop` after the round's labels were committed: the message
    says what is safe and what to do.
    """


def _sha256(path):
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _fsync_file(path):
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _fsync_dir(path):
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def list_checkpoints(root):
    """Finished checkpoint directories under ``root``, newest first (unverified)."""
    root = Path(root)
    if not root.is_dir():
        return []
    found = [(int(m.group(1)), p) for p in root.iterdir() if (m := _NAME.match(p.name))]
    return [p for _, p in sorted(found, reverse=True)]


def write_checkpoint(root, writers, state, *, keep=2):
    """Write a new checkpoint directory under ``root`` atomically.

    The files are written into a temporary directory, each one fsynced, then a manifest
    with the SHA-256 and size of every file (and ``state``) is written and fsynced, and
    the directory is renamed into place (``os.replace``) and its parent fsynced. A process
    killed at any point leaves either the complete new checkpoint or none (a leftover
    ``.tmp-*`` directory, removed by the next write).

    Parameters
    ----------
    root : str or path-like
        Directory holding the checkpoints (``ckpt-000000``, ``ckpt-000001``, ...).
    writers : dict of str to callable
        ``file name -> write(path)``; each callable writes one file at the given path.
    state : dict
        JSON-serialisable state stored in the manifest.
    keep : int, default=2
        Number of newest checkpoints kept; older ones are deleted after the new one is in
        place. Keep at least 2 to be able to fall back when the newest one is damaged.

    Returns
    -------
    path : pathlib.Path
        The new checkpoint directory.
    """
    from .._checks import check_positive_int  # imported here: it imports scikit-learn

    keep = check_positive_int(keep, "keep")
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    existing = list_checkpoints(root)
    number = int(_NAME.match(existing[0].name).group(1)) + 1 if existing else 0
    final = root / f"ckpt-{number:06d}"
    tmp = root / f".tmp-{final.name}-{uuid.uuid4().hex}"
    tmp.mkdir()
    try:
        _write_files(tmp, writers, state)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)  # e.g. disk full: free what was written
        raise
    os.replace(tmp, final)
    _fsync_dir(root)
    for old in list_checkpoints(root)[keep:]:
        shutil.rmtree(old, ignore_errors=True)
    for leftover in root.glob(".tmp-*"):
        shutil.rmtree(leftover, ignore_errors=True)
    return final


def _write_files(tmp, writers, state):
    files = {}
    for name, write in writers.items():
        if name == MANIFEST or "/" in name or name.startswith("."):
            raise ValueError(f"invalid checkpoint file name {name!r}.")
        path = tmp / name
        write(path)
        _fsync_file(path)
        files[name] = {"sha256": _sha256(path), "size": path.stat().st_size}
    manifest = {"format": FORMAT_VERSION, "files": files, "state": state}
    with open(tmp / MANIFEST, "w") as f:
        json.dump(manifest, f, sort_keys=True)
        f.flush()
        os.fsync(f.fileno())
    _fsync_dir(tmp)


def read_checkpoint(path):
    """Verify a checkpoint directory and return its state and file paths.

    Parameters
    ----------
    path : str or path-like
        A checkpoint directory written by :func:`write_checkpoint`.

    Returns
    -------
    state : dict
        The state stored in the manifest.
    files : dict of str to pathlib.Path
        The verified files.

    Raises
    ------
    CheckpointError
        If the manifest is missing or unreadable, or a file is missing, has the wrong
        size (truncated) or the wrong SHA-256 (corrupted). The message names the file.
    """
    path = Path(path)
    manifest_path = path / MANIFEST
    try:
        with open(manifest_path) as f:
            manifest = json.load(f)
    except FileNotFoundError:
        raise CheckpointError(f"checkpoint {path} has no {MANIFEST}: it is incomplete.") from None
    except (OSError, ValueError) as exc:
        raise CheckpointError(
            f"checkpoint manifest {manifest_path} is unreadable: {exc}"
        ) from None
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT_VERSION:
        raise CheckpointError(f"checkpoint manifest {manifest_path} has an unknown format.")
    files = {}
    for name, info in manifest.get("files", {}).items():
        file = path / name
        if not file.is_file():
            raise CheckpointError(f"checkpoint file {file} is missing.")
        size = file.stat().st_size
        if size != info["size"]:
            raise CheckpointError(
                f"checkpoint file {file} is {size} bytes, the manifest says {info['size']}: "
                "it is truncated or was overwritten."
            )
        if _sha256(file) != info["sha256"]:
            raise CheckpointError(
                f"checkpoint file {file} does not match its SHA-256 in the manifest: "
                "it is corrupted."
            )
        files[name] = file
    return manifest["state"], files
