"""A modAL active learning loop that survives being killed at any point."""

import functools
import hashlib
import json
import numbers
import os
import pickle
import tempfile
import warnings
from pathlib import Path

import numpy as np

from .._interrupt import interrupt_guard
from .._random import seeded_global_rngs
from ._checkpoint import (
    CheckpointError,
    CheckpointWriteError,
    list_checkpoints,
    read_checkpoint,
    write_checkpoint,
)
from ._journal import JournalError, LabelJournal, _as_id_list, _as_label
from ._state import UntrustedCheckpointError, decode_strategy, encode_strategy, trusted_table

__all__ = ["ResumableLoop", "ResumeWarning"]

JOURNAL_FILE = "journal.sqlite"
CHECKPOINT_DIR = "checkpoints"
_QUERY, _FIT = 0, 1
STRATEGY_FILE = "strategy.json"
#: The files a checkpoint may hold, by the estimator's format; anything else is refused.
_ALLOWED_FILES = {
    "skorch": {"MANIFEST.json", STRATEGY_FILE, "params.pt", "optimizer.pt", "history.json"},
    "refit": {"MANIFEST.json", STRATEGY_FILE},
}


class ResumeWarning(UserWarning):
    """Resuming skipped a damaged checkpoint, or a replayed query differs from the journal."""


def _warn_renamed(old, new):
    warnings.warn(
        f"ResumableLoop.{old} is deprecated and will be removed in a future release; use "
        f"ResumableLoop.{new} (the name LabelJournal uses).",
        FutureWarning,
        stacklevel=3,
    )


def _label_encoder(estimator):
    """``label -> class index`` from a skorch net's ``classes``, or None.

    skorch trains on class indices; string labels need the net's ``classes`` (the same list
    its ``predict`` maps back to).
    """
    classes = getattr(estimator, "classes", None)
    if classes is None:
        return None
    return {(c.item() if isinstance(c, np.generic) else c): i for i, c in enumerate(classes)}


def _encode_labels(estimator, labels):
    """Labels as the net trains on them: class indices when the net has ``classes``."""
    labels = list(labels)
    encoder = _label_encoder(estimator)
    if encoder is not None:
        unknown = sorted({repr(y) for y in labels if y not in encoder})
        if unknown:
            raise ValueError(
                f"labels {', '.join(unknown)} are not among the net's classes "
                f"{list(encoder)}; add them to the net's classes (the class indices it "
                "trains on) or fix the labels."
            )
        return np.asarray([encoder[y] for y in labels], dtype=np.int64)
    if any(isinstance(y, str) for y in labels):
        raise ValueError(
            "string labels need the net's classes: skorch trains on class indices, so pass "
            "classes=[...] (every label, in the order of the module's outputs) to the net, or "
            "give class indices 0..K-1 as labels."
        )
    return np.asarray(labels)


def _active_learner(estimator, query_strategy):
    from modAL.models import ActiveLearner  # imported late: the journal alone needs no modAL

    from .._modal_compat import apply

    apply()  # scikit-learn >= 1.8 with modAL 0.4.x, also for strategies not from skdynal
    return ActiveLearner(estimator, query_strategy)


def _is_skorch(estimator):
    return hasattr(estimator, "save_params") and hasattr(estimator, "load_params")


def _strategy_description(strategy):
    if hasattr(strategy, "get_params"):
        name = type(strategy).__name__
        params = strategy.get_params(deep=False)
    else:
        name = getattr(strategy, "__qualname__", type(strategy).__name__)
        name = f"{getattr(strategy, '__module__', '')}.{name}".lstrip(".")
        params = {}
    return name, params


def _save_param_file(net, name, path):
    """Write one of a skorch net's checkpoint files: parameters and optimizer state as
    ``torch.save`` of their ``state_dict`` (tensors only), the history as JSON."""
    import torch

    if name == "params.pt":
        torch.save(net.module_.state_dict(), path)
    elif name == "optimizer.pt":
        torch.save(net.optimizer_.state_dict(), path)
    else:
        net.history.to_file(str(path))


def _write_skorch_files(net):
    """``file name -> write(path)`` for a skorch net's checkpoint files."""
    return {
        name: functools.partial(_save_param_file, net, name)
        for name in ("params.pt", "optimizer.pt", "history.json")
    }


def _load_skorch_files(net, files):
    """Load parameters and optimizer state with ``torch.load(weights_only=True)`` (tensors
    and plain containers only: no code runs) and the history as JSON."""
    import torch
    from skorch.history import History

    for name, target in (("params.pt", net.module_), ("optimizer.pt", net.optimizer_)):
        try:
            state = torch.load(files[name], map_location=net.device, weights_only=True)
        except pickle.UnpicklingError as exc:
            raise UntrustedCheckpointError(
                f"{files[name]} holds more than tensors (torch.load with weights_only=True "
                f"refused it: {str(exc).splitlines()[0]}); resume never loads code. If the "
                "checkpoint is yours, move the checkpoints folder aside and resume with "
                "query_strategy=: the journal retrains every round."
            ) from None
        except Exception as exc:
            raise CheckpointError(f"{files[name]} could not be loaded: {exc!r}") from None
        try:
            target.load_state_dict(state)
        except Exception as exc:
            raise CheckpointError(
                f"{files[name]} does not fit the net passed to resume ({exc}); pass a net "
                "built like the original."
            ) from None
    try:
        net.history = History.from_file(str(files["history.json"]))
    except (ValueError, OSError, UnicodeDecodeError) as exc:
        raise CheckpointError(f"{files['history.json']} is not a JSON history: {exc}") from None


def _check_checkpoint_files(ckpt, listed=None, fmt=None):
    """Refuse a file in a checkpoint folder (or its manifest) that resume does not read.

    Called before anything but the directory listing is read; again with the manifest's
    files and the estimator format once the manifest is read.
    """
    allowed = set().union(*_ALLOWED_FILES.values()) if fmt is None else _ALLOWED_FILES[fmt]
    present = {p.name for p in Path(ckpt).iterdir()} if listed is None else listed
    if listed is not None:
        present |= {p.name for p in Path(ckpt).iterdir()}
    extra = sorted(present - allowed)
    if extra:
        raise UntrustedCheckpointError(
            f"checkpoint {ckpt} holds {Path(ckpt) / extra[0]}"
            + (f" (and {', '.join(extra[1:])})" if len(extra) > 1 else "")
            + f", which resume does not read: a checkpoint holds only {sorted(allowed)}. "
            "Nothing was loaded from it. Pickles (strategy.pkl, estimator.pkl of older "
            "skdynal versions) are never loaded: they can run code. Remove the file if you "
            "put it there; otherwise move the checkpoints folder aside and resume with "
            "query_strategy=: the journal retrains every round."
        )


def _derived_seed(random_state, round_number, purpose):
    return int(np.random.SeedSequence([random_state, round_number, purpose]).generate_state(1)[0])


def _pool_fingerprint(X_pool, pool_ids):
    digest = hashlib.sha256()
    digest.update(json.dumps([str(X_pool.dtype), list(X_pool.shape), pool_ids]).encode())
    if X_pool.dtype == object:
        digest.update(pickle.dumps(X_pool, protocol=4))
    else:
        digest.update(np.ascontiguousarray(X_pool).tobytes())
    return digest.hexdigest()


def _check_writable(directory):
    """Refuse a loop directory where the journal or checkpoints cannot be written.

    Checked before any work is handed out: otherwise the first
    :meth:`ResumableLoop.commit_label` would fail after the expert has answered.
    """
    for folder in (directory, directory / CHECKPOINT_DIR):
        if not folder.is_dir():
            continue
        try:
            with tempfile.TemporaryFile(dir=folder, prefix=".write-check-"):
                pass
        except OSError as exc:
            raise PermissionError(
                f"{folder} is not writable ({exc.strerror or exc}): the loop could not "
                "commit labels or write checkpoints there. Make it writable, or copy the "
                "loop directory to a writable place and resume from the copy."
            ) from None
    path = directory / JOURNAL_FILE
    if path.is_file() and not os.access(path, os.W_OK):
        raise PermissionError(
            f"{path} is read-only: the loop could not commit labels to it. Make it writable "
            "(chmod u+w), or copy the loop directory and resume from the copy."
        )


def _orphaned_checkpoints_error(directory, journal_path):
    """The journal holds no round but checkpoints exist: neither start nor resume fits."""
    checkpoints = list_checkpoints(directory / CHECKPOINT_DIR)
    size = journal_path.stat().st_size if journal_path.exists() else 0
    return ValueError(
        f"{journal_path} holds no rounds ({size} bytes) but {directory / CHECKPOINT_DIR} "
        f"holds {len(checkpoints)} checkpoint(s): the journal was emptied or replaced, so "
        "this loop can neither be resumed nor started over in place. If you have a backup "
        f"of {JOURNAL_FILE}, put it back and call ResumableLoop.resume. Otherwise the "
        f"labeled set of the newest checkpoint is listed in {checkpoints[0] / 'MANIFEST.json'} "
        "(state: labeled_ids, labels); move the directory aside and call "
        "ResumableLoop.start in a new one."
    )


def _check_pool(X_pool, pool_ids):
    """The pool as one array (it is fingerprinted and indexed by row) and its id list."""
    # Imported here: they import torch and scipy, which ``import skdynal.persistence`` and
    # the label journal alone must not.
    import scipy.sparse as sp
    from torch.utils.data import Dataset

    from .._validation import check_pool

    if isinstance(X_pool, dict | Dataset) or sp.issparse(X_pool):
        raise TypeError(
            "ResumableLoop needs X_pool as one array or tensor (it is fingerprinted and "
            f"indexed by row), got {type(X_pool).__name__}."
        )
    X_pool = np.asarray(X_pool)
    if X_pool.dtype.kind in "biufc":
        check_pool(X_pool)  # one row per sample, not empty, finite
    else:
        # e.g. strings for a scikit-learn pipeline: only the row checks apply
        check_pool(np.zeros(X_pool.shape[:1]))
    if pool_ids is None:
        ids = list(range(len(X_pool)))
    else:
        try:
            ids = _as_id_list(pool_ids)
        except JournalError as exc:
            raise ValueError(f"invalid pool_ids: {exc}") from None
        if len(ids) != len(X_pool):
            raise ValueError(f"pool_ids has {len(ids)} ids but X_pool has {len(X_pool)} rows.")
    return X_pool, ids


class ResumableLoop:
    """A modAL ``ActiveLearner`` whose labels, rounds and state survive a crash.

    Construct one with :meth:`start` (a new loop) or :meth:`resume` (after a crash or a
    planned stop), never directly. The loop owns a directory holding

    - ``journal.sqlite``: a :class:`LabelJournal`; each round is recorded before its ids
      are returned by :meth:`query`, each label is committed by :meth:`commit_label` as it
      arrives;
    - ``checkpoints/ckpt-NNNNNN/``: atomic, checksummed checkpoints (see
      :func:`write_checkpoint`) with the net's parameters and optimizer state (tensors,
      read back with ``torch.load(weights_only=True)``), its history (JSON), the query
      strategy as data (``strategy.json``: its class's import path, ``get_params()`` and
      fitted attributes, its random generators' states) and the labeled set. Nothing in a
      checkpoint is a pickle: resuming never runs code from the folder (see
      docs/reliability.md, "What a checkpoint folder may contain, and what resume
      trusts"). An estimator that is not a skorch net is refitted on the checkpoint's
      labeled set on resume. The two newest checkpoints are kept.

    The learner is trained (``ActiveLearner.teach`` with the round's samples, in query
    order) exactly when the last label of a round is committed, and a checkpoint is
    written right after. Round 0 is the initial labeled set.

    Determinism: every query and every training runs with torch's, numpy's and Python's
    global random generators seeded from ``(random_state, round, purpose)`` and restored
    afterwards, so training (skorch's shuffling, dropout, a fresh net's initialisation) does
    not depend on what the process did before. :meth:`resume` loads the newest good
    checkpoint and replays from the journal whatever happened after it: queries are
    recomputed (advancing the strategy's state exactly as the first time, and checked
    against the journal's ids) and completed rounds are trained. A resumed loop therefore
    asks for the same next query as a loop that never stopped.

    Attributes
    ----------
    learner : modAL.models.ActiveLearner
        The wrapped learner; use it for predictions. Do not teach it directly.
    journal : LabelJournal
        The loop's journal.
    directory : pathlib.Path
        The loop's directory.
    n_rounds_trained : int
        Number of rounds (including round 0) the learner has been trained on.

    Examples
    --------
    >>> loop = ResumableLoop.start(path, net, strategy, X_pool, init_ids, y_init,
    ...                            random_state=0)                       # doctest: +SKIP
    >>> for _ in range(10):                                               # doctest: +SKIP
    ...     for pool_id in loop.query(n_instances=8):
    ...         loop.commit_label(pool_id, ask_the_oracle(pool_id))
    >>> loop = ResumableLoop.resume(path, new_net(), X_pool)  # after a crash # doctest: +SKIP
    """

    #: Name of the label journal inside the loop's directory.
    JOURNAL_FILE = JOURNAL_FILE

    def __init__(
        self,
        directory,
        learner,
        journal,
        X_pool,
        pool_ids,
        *,
        random_state,
        keep_checkpoints,
        score_fn,
        queried,
        trained,
    ):
        self.directory = Path(directory)
        self.learner = learner
        self.journal = journal
        self._X_pool = X_pool
        self._ids = pool_ids
        self._row = {pid: i for i, pid in enumerate(pool_ids)}
        self._random_state = random_state
        self._keep = keep_checkpoints
        self._score_fn = score_fn
        self._queried = queried
        self._trained = trained
        self._interrupted = None  # the message of a real interrupt that left state behind

    def _check_usable(self):
        if self._interrupted is not None:
            raise RuntimeError(
                f"{self._interrupted} This ResumableLoop object holds a half-done step; "
                "reopen the loop with ResumableLoop.resume."
            )

    # ------------------------------------------------------------------ construction
    @classmethod
    def start(
        cls,
        directory,
        estimator,
        query_strategy,
        X_pool,
        initial_ids,
        y_initial,
        *,
        pool_ids=None,
        random_state=None,
        keep_checkpoints=2,
        score_fn=None,
    ):
        """Start a new loop in an empty (or new) directory and train on the initial labels.

        Parameters
        ----------
        directory : str or path-like
            Where the journal and checkpoints go. Must not hold a started loop.
        estimator : estimator
            A skorch net (its parameters and optimizer state are saved; use
            ``warm_start=True`` to keep training across rounds) or any sklearn-style
            estimator (not saved: :meth:`resume` refits the one it is given on the
            checkpoint's labeled set).
        query_strategy : callable
            Any modAL-protocol strategy ``strategy(learner, X_pool, n_instances=1)``
            returning indices into ``X_pool`` (or ``(indices, scores)``): a
            scikit-learn-style estimator (saved as data with its state, e.g. a
            ``RandomState``) or a module-level function (saved by import path). A
            TypeError names a parameter a checkpoint cannot hold as data.
        X_pool : array-like of shape (n_samples, ...)
            The whole pool, labeled rows included. Must be passed unchanged to
            :meth:`resume` (it is fingerprinted).
        initial_ids : sequence of int or str
            Pool ids of the initial labeled set (round 0).
        y_initial : sequence of int or str
            Their class labels.
        pool_ids : sequence of int or str, default=None
            A stable id per pool row; default ``0 .. n_samples - 1``.
        random_state : int, default=None
            Seed of the loop's training and queries. None draws one from the OS and
            records it in the journal, so a resumed loop still reproduces the run.
        keep_checkpoints : int, default=2
            Number of checkpoints kept (at least 2 allows falling back from a damaged one).
        score_fn : callable, default=None
            ``score_fn(learner, X_unlabeled) -> scores`` (one per row) computed at each
            query and recorded with the queried ids. Without it, scores are recorded only
            if the strategy returns ``(indices, scores)``.

        Returns
        -------
        loop : ResumableLoop

        Raises
        ------
        PermissionError
            If the directory is not writable (checked before anything is written).
        JournalLockedError
            If another process has the loop open; the message names its pid and host.
        """
        directory = Path(directory)
        X_pool, ids = _check_pool(X_pool, pool_ids)
        if random_state is None:
            random_state = int(np.random.SeedSequence().entropy % (2**63))
        if (
            not isinstance(random_state, numbers.Integral)
            or isinstance(random_state, bool)
            or random_state < 0
        ):
            raise TypeError(
                "random_state must be a non-negative int or None (a RandomState instance "
                f"cannot be recorded in the journal), got {random_state!r}."
            )
        if not callable(query_strategy):
            raise TypeError(f"query_strategy must be callable, got {query_strategy!r}.")
        encode_strategy(query_strategy)  # TypeError naming what a checkpoint cannot hold
        from .._checks import check_positive_int  # imported here: it imports scikit-learn

        keep_checkpoints = check_positive_int(keep_checkpoints, "keep_checkpoints")
        directory.mkdir(parents=True, exist_ok=True)
        _check_writable(directory)
        journal = LabelJournal(directory / JOURNAL_FILE, exclusive=True)
        try:
            if journal.rounds():
                raise ValueError(
                    f"{directory} already holds a started loop; use ResumableLoop.resume."
                )
            if list_checkpoints(directory / CHECKPOINT_DIR):
                raise _orphaned_checkpoints_error(directory, directory / JOURNAL_FILE)
            journal.set_meta(
                "loop",
                {
                    "random_state": int(random_state),
                    "keep_checkpoints": keep_checkpoints,
                    "pool_fingerprint": _pool_fingerprint(X_pool, ids),
                    "n_pool": len(ids),
                },
                overwrite=True,
            )
            loop = cls(
                directory,
                _active_learner(estimator, query_strategy),
                journal,
                X_pool,
                ids,
                random_state=int(random_state),
                keep_checkpoints=keep_checkpoints,
                score_fn=score_fn,
                queried=-1,
                trained=-1,
            )
            unknown = [
                pid for pid in _as_id_list(initial_ids, "initial_ids") if pid not in loop._row
            ]
            if unknown:
                raise ValueError(f"initial_ids {unknown!r} are not in pool_ids.")
            y_checked = [_as_label(y) for y in y_initial]
            _encode_labels(estimator, y_checked)
            if len(y_checked) != len(initial_ids):
                raise ValueError(
                    f"got {len(initial_ids)} initial_ids but {len(y_checked)} labels."
                )
            journal.record_round(
                initial_ids, strategy="initial", params={"n_instances": len(initial_ids)}
            )
            loop._queried = 0
            loop.commit_labels(initial_ids, y_checked)
        except BaseException:
            journal.close()
            raise
        return loop

    @classmethod
    def resume(
        cls,
        directory,
        estimator,
        X_pool,
        *,
        pool_ids=None,
        query_strategy=None,
        trusted=(),
        fallback=True,
        score_fn=None,
    ):
        """Reopen a loop after a crash or a planned stop.

        Loads the newest checkpoint that verifies, checks it against the journal, then
        replays from the journal what happened after it (queries are recomputed and
        compared with the journal; completed rounds are trained) and saves a checkpoint if
        it trained anything. The open round's remaining queries are returned by the next
        :meth:`query`.

        Parameters
        ----------
        directory : str or path-like
            The loop's directory.
        estimator : estimator
            For a skorch net: a net built like the original (it is initialised and its
            parameters, optimizer state and history are loaded). Any other estimator is
            refitted on the checkpoint's labeled set (with the seed its last fit had).
        X_pool, pool_ids
            The same pool and ids as given to :meth:`start` (checked by fingerprint).
        query_strategy : callable, default=None
            With a checkpoint, the strategy is rebuilt from its ``strategy.json`` (the
            saved parameters and state win) and ``query_strategy`` only adds its class
            (and those nested in it) to the trusted ones. Without one (a crash during
            round 0) the loop is rebuilt from ``estimator`` and ``query_strategy``.
        trusted : iterable of class or function, default=()
            Strategy classes or module-level functions a checkpoint may name besides
            skdynal's strategies and modAL's uncertainty, margin and entropy sampling.
        fallback : bool, default=True
            If the newest checkpoint is damaged, warn (:class:`ResumeWarning`) and use the
            previous one. With False, raise :class:`CheckpointError` instead.
        score_fn : callable, default=None
            As in :meth:`start`.

        Raises
        ------
        CheckpointError
            If no checkpoint can be used (each is missing files, truncated, corrupted or
            does not match the journal), or the newest one is damaged and ``fallback`` is
            False. The journal is only read, so it stays usable.
        UntrustedCheckpointError
            A :class:`CheckpointError` raised at once (no fallback) if a checkpoint holds a
            file it may not hold (e.g. a pickle), a ``.pt`` file with more than tensors, or
            names a strategy class that is not trusted; the message names the file. No
            code from the folder runs.
        ValueError
            If the directory holds no loop, or the pool differs from the one it started
            with, or the journal was emptied while checkpoints remain (the message says
            how to recover).
        PermissionError
            If the directory is not writable: checked before any id is handed out.
        JournalLockedError
            If another process has the loop open; the message names its pid and host.
        """
        directory = Path(directory)
        path = directory / JOURNAL_FILE
        if not path.is_file():
            if list_checkpoints(directory / CHECKPOINT_DIR):
                raise _orphaned_checkpoints_error(directory, path)
            raise ValueError(f"{directory} holds no loop journal ({JOURNAL_FILE}); use start.")
        X_pool, ids = _check_pool(X_pool, pool_ids)
        _check_writable(directory)
        journal = LabelJournal(path, exclusive=True)
        try:
            journal.check_integrity()
            if not journal.rounds() and list_checkpoints(directory / CHECKPOINT_DIR):
                raise _orphaned_checkpoints_error(directory, path)
            if not journal.rounds():
                raise ValueError(
                    f"the loop in {directory} stopped before recording its initial labels; "
                    "call ResumableLoop.start again."
                )
            config = journal.get_meta("loop")
            if config is None:
                raise ValueError(f"{path} was not written by ResumableLoop.start.")
            if config["pool_fingerprint"] != _pool_fingerprint(X_pool, ids):
                raise ValueError(
                    f"X_pool or pool_ids differ from the pool the loop in {directory} started "
                    "with; pass the same pool (same rows, order, dtype and ids)."
                )
            table = trusted_table(query_strategy, trusted)
            loop = None
            errors = []
            for ckpt in list_checkpoints(directory / CHECKPOINT_DIR):
                try:
                    loop = cls._from_checkpoint(
                        ckpt, directory, estimator, journal, X_pool, ids, config, score_fn, table
                    )
                    break
                except UntrustedCheckpointError:
                    raise
                except CheckpointError as exc:
                    if not fallback:
                        raise
                    errors.append(str(exc))
                    warnings.warn(
                        f"skipping damaged checkpoint: {exc}", ResumeWarning, stacklevel=2
                    )
            if loop is None and errors:
                raise CheckpointError(
                    "no usable checkpoint in "
                    f"{directory / CHECKPOINT_DIR}: "
                    + " | ".join(errors)
                    + f". The journal {path} is intact and was not "
                    "modified; its labels can be read with LabelJournal."
                )
            if loop is None:
                if query_strategy is None:
                    raise ValueError(
                        "no checkpoint was written yet (the loop stopped during round 0); "
                        "pass query_strategy= to rebuild the loop from the journal."
                    )
                loop = cls(
                    directory,
                    _active_learner(estimator, query_strategy),
                    journal,
                    X_pool,
                    ids,
                    random_state=config["random_state"],
                    keep_checkpoints=config["keep_checkpoints"],
                    score_fn=score_fn,
                    queried=0,
                    trained=-1,
                )
            loop._replay()
        except BaseException:
            journal.close()
            raise
        return loop

    @classmethod
    def _from_checkpoint(
        cls, ckpt, directory, estimator, journal, X_pool, ids, config, score_fn, table
    ):
        _check_checkpoint_files(ckpt)
        state, files = read_checkpoint(ckpt)
        fmt = state.get("estimator_format")
        if fmt not in _ALLOWED_FILES:
            raise UntrustedCheckpointError(
                f"{ckpt / 'MANIFEST.json'} gives estimator_format {fmt!r}; resume reads only "
                f"{sorted(_ALLOWED_FILES)} (a checkpoint of an older skdynal that pickled "
                "the estimator is not loaded). Move the checkpoints folder aside and resume "
                "with query_strategy=: the journal retrains every round."
            )
        _check_checkpoint_files(ckpt, set(files) | {"MANIFEST.json"}, fmt)
        rounds = journal.rounds()
        trained = state["trained"]
        if state["queried"] >= len(rounds):
            raise CheckpointError(
                f"checkpoint {ckpt} has queried round {state['queried']}, which the journal "
                "does not hold."
            )
        if trained >= len(rounds) or any(r.is_open for r in rounds[: trained + 1]):
            raise CheckpointError(
                f"checkpoint {ckpt} has trained round {trained}, which the journal does not "
                "hold as completed."
            )
        labeled_ids, labels = cls._training_set(rounds[: trained + 1])
        if state["labeled_ids"] != labeled_ids or state["labels"] != labels:
            raise CheckpointError(f"checkpoint {ckpt} holds a labeled set the journal lacks.")
        try:
            data = json.loads(files[STRATEGY_FILE].read_text())
        except (ValueError, UnicodeDecodeError) as exc:
            raise CheckpointError(f"{files[STRATEGY_FILE]} is not JSON: {exc}") from None
        strategy = decode_strategy(data, files[STRATEGY_FILE], table)
        if fmt == "skorch":
            if not _is_skorch(estimator):
                raise CheckpointError(
                    f"checkpoint {ckpt} holds a skorch net; pass a skorch net to resume."
                )
            with seeded_global_rngs(0):
                estimator.initialize()
            _load_skorch_files(estimator, files)
        else:
            if estimator is None or not hasattr(estimator, "fit"):
                raise ValueError(
                    f"checkpoint {ckpt} holds no estimator (only a skorch net's parameters "
                    "are saved); pass the estimator again (built like the original): it is "
                    "refitted on the checkpoint's labeled set."
                )
            rows = [{pid: i for i, pid in enumerate(ids)}[pid] for pid in labeled_ids]
            with (
                seeded_global_rngs(_derived_seed(config["random_state"], trained, _FIT)),
                warnings.catch_warnings(),
            ):
                warnings.filterwarnings(
                    "ignore", message=".*force_all_finite.*", category=FutureWarning
                )
                estimator.fit(X_pool[rows], _encode_labels(estimator, labels))
        learner = _active_learner(estimator, strategy)
        loop = cls(
            directory,
            learner,
            journal,
            X_pool,
            ids,
            random_state=config["random_state"],
            keep_checkpoints=config["keep_checkpoints"],
            score_fn=score_fn,
            queried=state["queried"],
            trained=trained,
        )
        rows = [loop._row[pid] for pid in labeled_ids]
        learner.X_training = X_pool[rows]
        learner.y_training = _encode_labels(estimator, labels)
        return loop

    def _replay(self):
        """Bring the learner and strategy up to the journal's state."""
        trained_any = False
        for record in self.journal.rounds():
            if record.round > self._queried:
                if record.round > 0:
                    rows = self._unlabeled_rows(record.round)
                    ids = self._run_query(record.round, rows, record.params["n_instances"])[0]
                    if ids != record.pool_ids:
                        warnings.warn(
                            f"replaying round {record.round}'s query gave {ids}, the journal "
                            f"holds {record.pool_ids}; keeping the journal's ids. The strategy "
                            "or the training is not deterministic.",
                            ResumeWarning,
                            stacklevel=3,
                        )
                self._queried = record.round
            if not record.is_open and record.round > self._trained:
                self._teach(record)
                trained_any = True
        if trained_any:
            self.save()

    # ------------------------------------------------------------------ the loop
    @property
    def n_rounds_trained(self):
        return self._trained + 1

    @property
    def pending(self):
        """Pool ids queried by the open round and not labeled yet (empty list if none)."""
        record = self.journal.open_round()
        return [] if record is None else record.remaining

    def labeled(self):
        """The labeled set so far as ``(pool_ids, labels)``, in commit order."""
        return self.journal.labels()

    def query(self, n_instances=1):
        """Ids to label next; recorded in the journal before they are returned.

        If a round is still open (its ids were handed out but not all labeled, e.g. before
        a crash) its remaining ids are returned again and no new query is made.

        Parameters
        ----------
        n_instances : int, default=1
            Number of pool samples to query in a new round.

        Returns
        -------
        pool_ids : list of int or str
        """
        self._check_usable()
        self._replay()  # train any round whose training failed earlier (e.g. an exception)
        pending = self.pending
        if pending:
            return pending
        number = self._queried + 1
        rows = self._unlabeled_rows(number)
        from .._checks import check_n_instances  # imported here: it imports scikit-learn

        n_instances = check_n_instances(n_instances, len(rows))
        ids, scores = self._run_query(number, rows, n_instances)
        name, params = _strategy_description(self.learner.query_strategy)
        recorded = self.journal.record_round(
            ids,
            scores=scores,
            strategy=name,
            params={"n_instances": n_instances, "strategy_params": params},
        )
        if recorded != number:  # another writer touched the journal
            raise JournalError(f"the journal recorded round {recorded}, expected {number}.")
        self._queried = number
        return ids

    def _unlabeled_rows(self, number):
        """Rows of the pool not labeled by the rounds before round ``number``."""
        labeled = {pid for r in self.journal.rounds() if r.round < number for pid in r.labels}
        return np.array([i for i, pid in enumerate(self._ids) if pid not in labeled], dtype=int)

    def _run_query(self, number, rows, n_instances):
        X_unlabeled = self._X_pool[rows]
        message = (
            f"Interrupted while computing round {number}'s query of the loop in "
            f"{self.directory}; nothing was recorded for it. ResumableLoop.resume continues "
            "from the last checkpoint."
        )
        try:
            with (
                interrupt_guard(message),
                seeded_global_rngs(_derived_seed(self._random_state, number, _QUERY)),
            ):
                result, scores = self._strategy_result(X_unlabeled, n_instances)
        except KeyboardInterrupt:
            # the strategy's random state may have advanced: this object cannot go on
            self._interrupted = message
            raise
        idx = np.asarray(result).reshape(-1)
        if (
            idx.dtype.kind not in "iu"
            or len(idx) != n_instances
            or len(np.unique(idx)) != len(idx)
            or idx.min() < 0
            or idx.max() >= len(rows)
        ):
            raise ValueError(
                f"the query strategy returned {result!r}; expected {n_instances} distinct "
                f"integer indices into the {len(rows)} unlabeled samples."
            )
        return [self._ids[rows[i]] for i in idx], scores

    def _strategy_result(self, X_unlabeled, n_instances):
        strategy = self.learner.query_strategy
        if hasattr(strategy, "select"):
            # skdynal strategies give their scores whatever modAL version is installed
            result, scores = strategy.select(self.learner, X_unlabeled, n_instances)
        else:
            result = strategy(self.learner, X_unlabeled, n_instances=n_instances)
            scores = None
            if isinstance(result, tuple):
                result, scores = result
        if self._score_fn is not None:
            scores = np.asarray(self._score_fn(self.learner, X_unlabeled))[
                np.asarray(result, dtype=int)
            ]
        return result, scores

    def commit_label(self, pool_id, label):
        """Commit the label of one queried id; train and save when the round completes.

        Parameters
        ----------
        pool_id : int or str
            An id queried by the open round and not labeled yet.
        label : int or str
            Its class label.

        Raises
        ------
        JournalError
            If ``pool_id`` is not an open query or ``label`` not a class label (nothing is
            written).
        skdynal._interrupt.Interrupted
            A ``KeyboardInterrupt``: Ctrl-C during the round's training. The labels are
            committed, the training is dropped and no checkpoint is written; reopen the
            loop with :meth:`resume`, which retrains the round.
        CheckpointWriteError
            The labels are committed and the learner trained, but the checkpoint could not
            be written (e.g. the disk is full); call :meth:`save` once that is fixed.

        Returns
        -------
        round_completed : bool
        """
        return self.commit_labels([pool_id], [label])

    def commit_labels(self, pool_ids, labels):
        """Commit several labels of the open round in one transaction (all or nothing).

        As :meth:`commit_label` (same errors), for several ids at once.

        Parameters
        ----------
        pool_ids : sequence of int or str
        labels : sequence of int or str
            One class label per id.

        Returns
        -------
        round_completed : bool
        """
        self._check_usable()
        # Refused before the journal commits anything: a label the net cannot train on
        # would otherwise be stored and then fail every round.
        _encode_labels(self.learner.estimator, labels)
        if not self.journal.commit_labels(pool_ids, labels):
            return False
        record = self.journal.rounds()[-1]
        self._teach(record)
        try:
            self.save()
        except Exception as exc:
            raise CheckpointWriteError(
                f"round {record.round}'s labels are committed in the journal and safe, and "
                f"the learner was trained on them, but its checkpoint could not be written: "
                f"{exc!r}. Free disk space and call save() (or go on: the next round's "
                "checkpoint includes it); if the process ends first, ResumableLoop.resume "
                "retrains the round from the previous checkpoint."
            ) from exc
        return True

    def label(self, pool_id, y):
        """Deprecated alias of :meth:`commit_label` (renamed to match :class:`LabelJournal`).

        .. deprecated:: 0.1.0
           Use :meth:`commit_label`; ``label`` will be removed in a future release.
        """
        _warn_renamed("label", "commit_label")
        return self.commit_label(pool_id, y)

    def label_many(self, pool_ids, ys):
        """Deprecated alias of :meth:`commit_labels` (renamed to match :class:`LabelJournal`).

        .. deprecated:: 0.1.0
           Use :meth:`commit_labels`; ``label_many`` will be removed in a future release.
        """
        _warn_renamed("label_many", "commit_labels")
        return self.commit_labels(pool_ids, ys)

    def _teach(self, record):
        rows = [self._row[pid] for pid in record.pool_ids]
        y_new = _encode_labels(
            self.learner.estimator, [record.labels[pid] for pid in record.pool_ids]
        )
        message = (
            f"Interrupted while training round {record.round} of the loop in "
            f"{self.directory}: its labels are committed in the journal; its training was "
            "dropped and no checkpoint was written for it. ResumableLoop.resume retrains it "
            "from the last checkpoint."
        )
        try:
            # skorch swallows a Ctrl-C during fit (it ends training on KeyboardInterrupt);
            # the guard makes a real one stop the loop instead of checkpointing a half-
            # trained net as if the round were complete.
            with (
                interrupt_guard(message),
                seeded_global_rngs(_derived_seed(self._random_state, record.round, _FIT)),
                warnings.catch_warnings(),
            ):
                # modAL 0.4.1 passes scikit-learn's deprecated ``force_all_finite``
                warnings.filterwarnings(
                    "ignore", message=".*force_all_finite.*", category=FutureWarning
                )
                self.learner.teach(self._X_pool[rows], y_new)
        except KeyboardInterrupt:
            self._interrupted = message
            raise
        self._trained = record.round

    @staticmethod
    def _training_set(rounds):
        ids = [pid for r in rounds for pid in r.pool_ids]
        return ids, [r.labels[pid] for r in rounds for pid in r.pool_ids]

    def save(self):
        """Write a checkpoint of the learner, the strategy and the labeled set.

        Called automatically after each round's training; call it yourself to also save
        the strategy's state right after a query. Returns the checkpoint directory.
        """
        self._check_usable()
        if self._trained < 0:
            raise ValueError("nothing to save: round 0 (the initial labels) is not trained yet.")
        estimator = self.learner.estimator
        strategy = self.learner.query_strategy
        rounds = self.journal.rounds()[: self._trained + 1]
        labeled_ids, labels = self._training_set(rounds)

        def write_strategy(path):
            data = encode_strategy(strategy)
            with open(path, "w") as f:
                json.dump(data, f, sort_keys=True)

        writers = {STRATEGY_FILE: write_strategy}
        if _is_skorch(estimator):
            fmt = "skorch"
            writers.update(_write_skorch_files(estimator))
        else:
            fmt = "refit"
        state = {
            "queried": self._queried,
            "trained": self._trained,
            "labeled_ids": labeled_ids,
            "labels": labels,
            "estimator_format": fmt,
        }
        return write_checkpoint(self.directory / CHECKPOINT_DIR, writers, state, keep=self._keep)

    def close(self):
        """Close the journal."""
        self.journal.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
