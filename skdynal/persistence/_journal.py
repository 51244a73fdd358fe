"""A crash-safe record of query rounds and committed labels, stored in SQLite."""

import json
import math
import numbers
import os
import socket
import sqlite3
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

try:
    import fcntl
except ImportError:  # Windows: no advisory locks; exclusive=True is then not enforced
    fcntl = None

__all__ = [
    "JournalError",
    "JournalIntegrityError",
    "JournalLockedError",
    "LabelJournal",
    "RoundRecord",
]

SCHEMA_VERSION = 1

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS rounds (
    round    INTEGER PRIMARY KEY CHECK (round >= 0),
    strategy TEXT NOT NULL,
    params   TEXT NOT NULL,
    created  REAL NOT NULL,
    closed   REAL
);
CREATE TABLE IF NOT EXISTS queries (
    round    INTEGER NOT NULL REFERENCES rounds(round),
    position INTEGER NOT NULL CHECK (position >= 0),
    pool_id  NOT NULL CHECK (typeof(pool_id) IN ('integer', 'text')),
    score    REAL,
    PRIMARY KEY (round, position),
    UNIQUE (round, pool_id)
);
CREATE TABLE IF NOT EXISTS labels (
    seq     INTEGER PRIMARY KEY AUTOINCREMENT,
    pool_id NOT NULL UNIQUE CHECK (typeof(pool_id) IN ('integer', 'text')),
    label   NOT NULL CHECK (typeof(label) IN ('integer', 'text')),
    round   INTEGER NOT NULL REFERENCES rounds(round),
    created REAL NOT NULL
);
"""


class JournalError(ValueError):
    """A journal operation was refused; nothing was written.

    Raised for bad pool ids, labels or scores, for a label of an id that the open round
    did not query (or that is already labeled), and for a round opened while another one
    still waits for labels.
    """


class JournalIntegrityError(RuntimeError):
    """The journal file violates SQLite's own checks or the journal's invariants."""


class JournalLockedError(JournalError):
    """Another process holds the journal's exclusive lock; its message names that writer."""


@dataclass(frozen=True)
class RoundRecord:
    """One query round as stored in the journal.

    Attributes
    ----------
    round : int
        Round number; 0 is the initial labeled set, queried rounds count from 1.
    strategy : str
        Name of the query strategy.
    params : dict
        The strategy's parameters and the query's arguments, as recorded (JSON).
    pool_ids : list of int or str
        The queried pool ids, in the order the strategy ranked them.
    scores : list of float or None
        The strategy's score of each queried id, where it reported one.
    labels : dict
        ``pool_id -> label`` for the ids labeled so far.
    created : float
        Unix time the round was recorded.
    closed : float or None
        Unix time its last label was committed; None while the round is open.
    """

    round: int
    strategy: str
    params: dict
    pool_ids: list
    scores: list
    labels: dict
    created: float
    closed: float | None

    @property
    def remaining(self):
        """Queried ids without a label yet, in query order."""
        return [pid for pid in self.pool_ids if pid not in self.labels]

    @property
    def is_open(self):
        return self.closed is None


def _as_pool_id(value, what="pool id"):
    """Return ``value`` as a Python int or str, or raise a clear JournalError."""
    if isinstance(value, np.ndarray) and value.ndim == 0:
        value = value[()]
    if isinstance(value, bool | np.bool_):
        raise JournalError(f"{what} must be an integer or a string, got the boolean {value!r}.")
    if isinstance(value, numbers.Integral):
        value = int(value)
        if not -(2**63) <= value < 2**63:
            raise JournalError(f"{what} {value} does not fit in a signed 64-bit integer.")
        return value
    if isinstance(value, str):
        return str(value)
    raise JournalError(
        f"{what} must be an integer or a string, got {value!r} of type {type(value).__name__}."
    )


def _as_label(value):
    """Return a class label as a Python int or str, or raise a clear JournalError."""
    if isinstance(value, np.ndarray) and value.ndim == 0:
        value = value[()]
    is_float = isinstance(value, numbers.Real) and not isinstance(value, numbers.Integral)
    if value is None or (is_float and math.isnan(float(value))):
        raise JournalError(f"a label must be a class (an integer or a string), got {value!r}.")
    if isinstance(value, bool | np.bool_):
        raise JournalError(
            f"a label must be a class (an integer or a string), got the boolean {value!r}; "
            "pass 0/1 instead."
        )
    if isinstance(value, numbers.Integral):
        return _as_pool_id(value, what="label")
    if isinstance(value, str):
        return str(value)
    raise JournalError(
        f"a label must be a class (an integer or a string), got {value!r} of type "
        f"{type(value).__name__}; convert float class labels to int first "
        "(the journal stores classification labels only)."
    )


def _as_id_list(pool_ids, what="pool_ids"):
    if isinstance(pool_ids, str | bytes) or not hasattr(pool_ids, "__len__"):
        raise JournalError(f"{what} must be a 1-D sequence of ids, got {pool_ids!r}.")
    if isinstance(pool_ids, np.ndarray) and pool_ids.ndim != 1:
        raise JournalError(f"{what} must be 1-D, got an array of shape {pool_ids.shape}.")
    ids = [_as_pool_id(v) for v in pool_ids]
    seen = set()
    for pid in ids:
        if pid in seen:
            raise JournalError(f"{what} contains the id {pid!r} more than once.")
        seen.add(pid)
    return ids


def _as_scores(scores, n):
    if scores is None:
        return [None] * n
    if isinstance(scores, str | bytes) or not hasattr(scores, "__len__"):
        raise JournalError(f"scores must be a 1-D sequence of {n} numbers or None.")
    try:
        arr = np.asarray(scores, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise JournalError(f"scores must be real numbers: {exc}") from None
    if arr.shape != (n,):
        raise JournalError(f"scores must have shape ({n},) like pool_ids, got {arr.shape}.")
    if np.isnan(arr).any():
        raise JournalError("scores contain NaN; a score must be a number (±inf is allowed).")
    return [float(s) for s in arr]


def _to_json(obj):
    def default(o):
        if isinstance(o, np.generic):
            return o.item()
        if isinstance(o, np.ndarray):
            return o.tolist()
        return repr(o)

    return json.dumps(obj, default=default, sort_keys=True, allow_nan=True)


class LabelJournal:
    """Crash-safe journal of query rounds and labels, in one SQLite file (WAL mode).

    Every query round is written, with its strategy, parameters, queried pool ids and
    scores, before the ids are handed out (:meth:`record_round`), and every label is
    committed in its own transaction as it arrives (:meth:`commit_label`). A process
    killed at any point leaves either the whole write or none of it; reopening the file
    gives back every committed label and the open round's remaining queries.

    Rules enforced on every write (a violation raises :class:`JournalError` and writes
    nothing):

    - pool ids are integers or strings (numpy integers are accepted), unique within a round;
    - labels are classes: integers or strings; floats, NaN, None and booleans are refused;
    - a label can only be committed for an id queried by the open round, and only once;
    - a new round can only be recorded once the previous round is fully labeled;
    - scores are real numbers (±inf allowed, NaN refused), one per queried id, or None.

    Parameters
    ----------
    path : str or path-like
        The journal file; created with its schema if it does not exist.
    timeout : float, default=30.0
        Seconds to wait for a lock held by another connection.
    exclusive : bool, default=False
        Take an exclusive lock on ``<path>.lock`` (``flock``, released when the journal is
        closed or the process dies) recording this process's pid and host; another
        exclusive opening fails with :class:`JournalLockedError` naming them.
        :class:`ResumableLoop` opens its journal this way, so that two processes never
        hand out work from one journal. Readers need not.

    Notes
    -----
    The file uses ``journal_mode=WAL`` and ``synchronous=FULL``: a committed transaction
    survives a killed process and a power loss. Opening a journal recovers the WAL
    automatically (that is SQLite's job, not this class's).
    """

    def __init__(self, path, *, timeout=30.0, exclusive=False):
        self.path = Path(path)
        self._lock_fd = None
        if exclusive:
            self._lock()
        try:
            self._conn = sqlite3.connect(str(self.path), timeout=timeout, isolation_level=None)
        except BaseException:
            self._unlock()
            raise
        try:
            self._conn.execute("PRAGMA journal_mode=WAL")
            self._conn.execute("PRAGMA synchronous=FULL")
            self._conn.execute("PRAGMA foreign_keys=ON")
            with self._transaction():
                for statement in _SCHEMA.split(";"):
                    if statement.strip():
                        self._conn.execute(statement)
                row = self._conn.execute(
                    "SELECT value FROM meta WHERE key='schema_version'"
                ).fetchone()
                if row is None:
                    self._conn.execute(
                        "INSERT INTO meta VALUES ('schema_version', ?)", (str(SCHEMA_VERSION),)
                    )
                elif int(row[0]) != SCHEMA_VERSION:
                    raise JournalError(
                        f"{self.path} has journal schema version {row[0]}, this code reads "
                        f"version {SCHEMA_VERSION}."
                    )
        except sqlite3.DatabaseError as exc:
            self._conn.close()
            self._unlock()
            raise JournalError(f"{self.path} is not a usable label journal: {exc}") from exc
        except BaseException:
            self._conn.close()
            self._unlock()
            raise

    def _lock(self):
        if fcntl is None:
            return
        lock_path = self.path.with_name(self.path.name + ".lock")
        fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            try:
                holder = json.loads(os.read(fd, 4096) or b"{}")
            except ValueError:
                holder = {}
            finally:
                os.close(fd)
            since = holder.get("since")
            since = (
                ""
                if since is None
                else time.strftime(" since %Y-%m-%d %H:%M:%S", time.localtime(since))
            )
            raise JournalLockedError(
                f"{self.path} is in use by another writer: process {holder.get('pid', '?')} "
                f"on host {holder.get('host', '?')}{since}. Stop that process (or wait for "
                "it) first; two processes must not hand out work from one journal."
            ) from None
        except BaseException:
            os.close(fd)
            raise
        os.ftruncate(fd, 0)
        os.write(
            fd,
            json.dumps(
                {"pid": os.getpid(), "host": socket.gethostname(), "since": time.time()}
            ).encode(),
        )
        self._lock_fd = fd

    def _unlock(self):
        if self._lock_fd is not None:
            fcntl.flock(self._lock_fd, fcntl.LOCK_UN)
            os.close(self._lock_fd)
            self._lock_fd = None

    # ------------------------------------------------------------------ plumbing
    def _transaction(self, mode="IMMEDIATE"):
        return _Transaction(self._conn, mode)

    def close(self):
        """Close the connection (further calls raise ``sqlite3.ProgrammingError``)."""
        self._conn.close()
        self._unlock()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    # ------------------------------------------------------------------ metadata
    def get_meta(self, key, default=None):
        """Return the JSON value stored under ``key``, or ``default``."""
        row = self._conn.execute("SELECT value FROM meta WHERE key=?", (str(key),)).fetchone()
        return default if row is None else json.loads(row[0])

    def set_meta(self, key, value, *, overwrite=False):
        """Store a JSON-serialisable ``value`` under ``key``.

        Without ``overwrite``, storing a different value under an existing key raises
        :class:`JournalError` (metadata records how a loop was set up; it must not drift).
        """
        text = _to_json(value)
        with self._transaction():
            row = self._conn.execute("SELECT value FROM meta WHERE key=?", (key,)).fetchone()
            if row is not None and row[0] != text and not overwrite:
                raise JournalError(
                    f"journal metadata {key!r} is {row[0]}, refusing to change it to {text}."
                )
            self._conn.execute("INSERT OR REPLACE INTO meta VALUES (?, ?)", (key, text))

    # ------------------------------------------------------------------ writes
    def record_round(self, pool_ids, *, scores=None, strategy="", params=None):
        """Record a new query round before its ids are handed out.

        Parameters
        ----------
        pool_ids : sequence of int or str
            The ids the strategy chose, in its order. Must be non-empty, unique, and not
            labeled yet.
        scores : sequence of float, default=None
            The strategy's score of each chosen id, if it reports one.
        strategy : str, default=""
            Name of the strategy (e.g. its class name).
        params : dict, default=None
            JSON-serialisable description of the strategy's parameters and the query's
            arguments; values that JSON cannot hold are stored as their ``repr``.

        Returns
        -------
        round : int
            The new round's number (0 for the first round recorded).

        Raises
        ------
        JournalError
            If the previous round still has unlabeled queries, or an input is invalid.
        """
        ids = _as_id_list(pool_ids)
        if not ids:
            raise JournalError("a round must query at least one pool id; pool_ids is empty.")
        score_list = _as_scores(scores, len(ids))
        if not isinstance(strategy, str):
            raise JournalError(f"strategy must be a str (a name), got {type(strategy).__name__}.")
        params_text = _to_json({} if params is None else params)
        with self._transaction():
            open_round = self._open_round_number()
            if open_round is not None:
                raise JournalError(
                    f"round {open_round} still has unlabeled queries "
                    f"{self._remaining(open_round)!r}; label them before recording a new round."
                )
            labeled = self._labeled_among(ids)
            if labeled:
                raise JournalError(f"pool ids {labeled!r} are already labeled.")
            number = self._conn.execute("SELECT COALESCE(MAX(round) + 1, 0) FROM rounds")
            number = number.fetchone()[0]
            self._conn.execute(
                "INSERT INTO rounds (round, strategy, params, created) VALUES (?, ?, ?, ?)",
                (number, strategy, params_text, time.time()),
            )
            self._conn.executemany(
                "INSERT INTO queries (round, position, pool_id, score) VALUES (?, ?, ?, ?)",
                [
                    (number, i, pid, s)
                    for i, (pid, s) in enumerate(zip(ids, score_list, strict=True))
                ],
            )
        return number

    def commit_label(self, pool_id, label):
        """Commit one label, atomically, for an id queried by the open round.

        Returns
        -------
        round_closed : bool
            True if this was the open round's last missing label.

        Raises
        ------
        JournalError
            If ``pool_id`` is not an open query (never queried, or already labeled) or
            ``label`` is not a class label; nothing is written.
        """
        return self.commit_labels([pool_id], [label])

    def commit_labels(self, pool_ids, labels):
        """Commit several labels of the open round in one transaction (all or nothing).

        Parameters
        ----------
        pool_ids : sequence of int or str
        labels : sequence of int or str
            One class label per id. All labels in a journal share one type (int or str).

        Returns
        -------
        round_closed : bool
            True if these labels completed the open round.
        """
        ids = _as_id_list(pool_ids)
        if isinstance(labels, str | bytes) or not hasattr(labels, "__len__"):
            raise JournalError(f"labels must be a sequence of class labels, got {labels!r}.")
        if isinstance(labels, np.ndarray) and labels.ndim != 1:
            raise JournalError(f"labels must be 1-D, got an array of shape {labels.shape}.")
        values = [_as_label(v) for v in labels]
        if len(values) != len(ids):
            raise JournalError(f"got {len(ids)} pool ids but {len(values)} labels.")
        if not ids:
            return False
        kinds = {type(v) for v in values}
        if len(kinds) > 1:
            raise JournalError("labels mix integers and strings; use one type of class label.")
        with self._transaction():
            kind = kinds.pop().__name__
            stored = self._conn.execute("SELECT value FROM meta WHERE key='label_type'")
            stored = stored.fetchone()
            if stored is None:
                self._conn.execute(
                    "INSERT INTO meta VALUES ('label_type', ?)", (json.dumps(kind),)
                )
            elif json.loads(stored[0]) != kind:
                raise JournalError(
                    f"this journal holds {json.loads(stored[0])} labels, got {kind} labels."
                )
            number = self._open_round_number()
            if number is None:
                raise JournalError(
                    f"no round is open; pool ids {ids!r} were not queried (record a round first)."
                )
            remaining = self._remaining(number)
            missing = [pid for pid in ids if pid not in remaining]
            if missing:
                labeled = self._labeled_among(missing)
                if labeled:
                    raise JournalError(f"pool ids {labeled!r} are already labeled.")
                raise JournalError(
                    f"pool ids {missing!r} were not queried by the open round {number} "
                    f"(its remaining queries: {remaining!r})."
                )
            now = time.time()
            self._conn.executemany(
                "INSERT INTO labels (pool_id, label, round, created) VALUES (?, ?, ?, ?)",
                [(pid, y, number, now) for pid, y in zip(ids, values, strict=True)],
            )
            closed = len(remaining) == len(ids)
            if closed:
                self._conn.execute("UPDATE rounds SET closed=? WHERE round=?", (now, number))
        return closed

    # ------------------------------------------------------------------ reads
    def _open_round_number(self):
        row = self._conn.execute("SELECT round FROM rounds WHERE closed IS NULL").fetchone()
        return None if row is None else row[0]

    def _remaining(self, number):
        rows = self._conn.execute(
            "SELECT q.pool_id FROM queries q LEFT JOIN labels l ON l.pool_id = q.pool_id "
            "WHERE q.round=? AND l.pool_id IS NULL ORDER BY q.position",
            (number,),
        )
        return [r[0] for r in rows]

    def _labeled_among(self, ids):
        found = []
        for pid in ids:
            row = self._conn.execute("SELECT 1 FROM labels WHERE pool_id=?", (pid,)).fetchone()
            if row is not None:
                found.append(pid)
        return found

    def rounds(self):
        """All rounds, oldest first, as :class:`RoundRecord`."""
        with self._transaction("DEFERRED"):  # one consistent snapshot
            meta = self._conn.execute(
                "SELECT round, strategy, params, created, closed FROM rounds ORDER BY round"
            ).fetchall()
            queries = self._conn.execute(
                "SELECT round, pool_id, score FROM queries ORDER BY round, position"
            ).fetchall()
            labels = self._conn.execute("SELECT round, pool_id, label FROM labels ORDER BY seq")
            labels = labels.fetchall()
        by_round = {number: ([], [], {}) for number, *_ in meta}
        for number, pid, score in queries:
            by_round[number][0].append(pid)
            by_round[number][1].append(score)
        for number, pid, label in labels:
            by_round[number][2][pid] = label
        return [
            RoundRecord(
                round=number,
                strategy=strategy,
                params=json.loads(params),
                pool_ids=by_round[number][0],
                scores=by_round[number][1],
                labels=by_round[number][2],
                created=created,
                closed=closed,
            )
            for number, strategy, params, created, closed in meta
        ]

    def open_round(self):
        """The round still waiting for labels, as a :class:`RoundRecord`, or None."""
        rounds = self.rounds()
        return rounds[-1] if rounds and rounds[-1].is_open else None

    def labels(self):
        """Every committed label in commit order, as two lists ``(pool_ids, labels)``."""
        rows = self._conn.execute("SELECT pool_id, label FROM labels ORDER BY seq").fetchall()
        return [r[0] for r in rows], [r[1] for r in rows]

    def __len__(self):
        """Number of committed labels."""
        return self._conn.execute("SELECT COUNT(*) FROM labels").fetchone()[0]

    # ------------------------------------------------------------------ checks
    def check_integrity(self):
        """Run SQLite's integrity checks and the journal's own invariants.

        Checked: ``PRAGMA integrity_check`` and ``PRAGMA foreign_key_check``; rounds are
        numbered 0, 1, 2, ... without gaps; at most one round is open and it is the last;
        each label belongs to a query of its own round and each id is labeled at most once;
        a closed round has all its queries labeled and an open one has at least one
        missing; all labels share one type, the one recorded in the metadata.

        Returns
        -------
        summary : dict
            ``{"rounds": int, "labels": int, "open_queries": int}``.

        Raises
        ------
        JournalIntegrityError
            Listing every violated check.
        """
        try:
            result = [r[0] for r in self._conn.execute("PRAGMA integrity_check")]
            fk = self._conn.execute("PRAGMA foreign_key_check").fetchall()
        except sqlite3.DatabaseError as exc:
            raise JournalIntegrityError(f"{self.path}: SQLite cannot read it: {exc}") from exc
        if result != ["ok"] or fk:
            raise JournalIntegrityError(
                f"{self.path}: PRAGMA integrity_check: {result[:5]}; "
                f"PRAGMA foreign_key_check: {fk[:5]}"
            )
        problems = []
        rounds = self.rounds()
        if [r.round for r in rounds] != list(range(len(rounds))):
            problems.append(f"round numbers are not 0..n-1: {[r.round for r in rounds]}")
        open_rounds = [r.round for r in rounds if r.is_open]
        if len(open_rounds) > 1 or (open_rounds and open_rounds[0] != rounds[-1].round):
            problems.append(f"open rounds {open_rounds} (at most one, the last, may be open)")
        n_labels = 0
        types = set()
        for r in rounds:
            queried = set(r.pool_ids)
            stray = [pid for pid in r.labels if pid not in queried]
            if stray:
                problems.append(f"round {r.round} has labels for unqueried ids {stray}")
            if r.is_open and not r.remaining:
                problems.append(f"round {r.round} is open but fully labeled")
            if not r.is_open and r.remaining:
                problems.append(f"round {r.round} is closed but misses labels for {r.remaining}")
            n_labels += len(r.labels)
            types.update(type(y).__name__ for y in r.labels.values())
        ids, _ = self.labels()
        if len(ids) != n_labels or len(set(ids)) != len(ids):
            problems.append("labels table holds duplicate ids or labels outside any round")
        if len(types) > 1 or (types and self.get_meta("label_type") != types.pop()):
            problems.append("labels of more than one type, or not the recorded label_type")
        if problems:
            raise JournalIntegrityError(f"{self.path}: " + "; ".join(problems))
        return {
            "rounds": len(rounds),
            "labels": n_labels,
            "open_queries": len(rounds[-1].remaining) if open_rounds else 0,
        }


class _Transaction:
    """``BEGIN IMMEDIATE`` ... ``COMMIT``, rolled back on any exception."""

    def __init__(self, conn, mode):
        self.conn = conn
        self.mode = mode

    def __enter__(self):
        self.conn.execute(f"BEGIN {self.mode}")
        return self.conn

    def __exit__(self, exc_type, exc, tb):
        if exc_type is None:
            self.conn.execute("COMMIT")
        else:
            self.conn.execute("ROLLBACK")
        return False
