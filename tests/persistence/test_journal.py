import math
import sqlite3

import numpy as np
import pytest

from skdynal.persistence import JournalError, JournalIntegrityError, LabelJournal


def snapshot(path):
    """Every row of every table, read with plain sqlite3 (independent of LabelJournal)."""
    conn = sqlite3.connect(path)
    try:
        return {
            table: conn.execute(f"SELECT * FROM {table} ORDER BY 1, 2").fetchall()
            for table in ("meta", "rounds", "queries", "labels")
        }
    finally:
        conn.close()


@pytest.fixture
def path(tmp_path):
    return tmp_path / "journal.sqlite"


def test_reopen_gives_back_committed_labels_and_open_round(path):
    with LabelJournal(path) as journal:
        assert (
            journal.record_round(
                [3, 1, 4], scores=[0.5, 0.25, -np.inf], strategy="S", params={"gamma": 2.0}
            )
            == 0
        )
        assert journal.commit_labels([3, 1, 4], [0, 1, 0]) is True
        assert journal.record_round(["x", 7], strategy="S") == 1
        assert journal.commit_label(7, 2) is False
    with LabelJournal(path) as journal:
        assert journal.labels() == ([3, 1, 4, 7], [0, 1, 0, 2])
        open_round = journal.open_round()
        assert open_round.round == 1 and open_round.remaining == ["x"]
        assert open_round.labels == {7: 2}
        first = journal.rounds()[0]
        assert first.pool_ids == [3, 1, 4] and first.scores == [0.5, 0.25, -math.inf]
        assert first.strategy == "S" and first.params == {"gamma": 2.0}
        assert not first.is_open and first.closed >= first.created
        assert journal.check_integrity() == {"rounds": 2, "labels": 4, "open_queries": 1}
        assert len(journal) == 4
    mode = sqlite3.connect(path).execute("PRAGMA journal_mode").fetchone()[0]
    assert mode == "wal"


def test_numpy_ids_and_labels_are_stored_as_python_values(path):
    with LabelJournal(path) as journal:
        journal.record_round(np.array([5, 2], dtype=np.int32))
        journal.commit_labels(np.array([2, 5]), np.array([1, 0], dtype=np.uint8))
        assert journal.labels() == ([2, 5], [1, 0])
        assert all(type(v) is int for v in journal.labels()[1])
    assert snapshot(path)["labels"][0][1:3] == (2, 1)


@pytest.mark.parametrize(
    ("ids", "labels", "message"),
    [
        ([9], [0], "not queried"),
        ([1], [1.0], "float class labels"),
        ([1], [float("nan")], "got nan"),
        ([1], [None], "got None"),
        ([1], [True], "boolean"),
        ([1, 2], [0], "2 pool ids but 1 labels"),
        ([1, 2], [0, "a"], "mix integers and strings"),
        ([1, 1], [0, 0], "more than once"),
        ([1.0], [0], "integer or a string"),
        ([1], np.zeros((1, 1), dtype=int), "1-D"),
    ],
)
def test_bad_labels_raise_and_write_nothing(path, ids, labels, message):
    with LabelJournal(path) as journal:
        journal.record_round([1, 2, 3])
        journal.commit_label(3, 0)
    before = snapshot(path)
    with LabelJournal(path) as journal, pytest.raises(JournalError, match=message):
        journal.commit_labels(ids, labels)
    assert snapshot(path) == before


def test_label_rules_across_rounds(path):
    with LabelJournal(path) as journal:
        with pytest.raises(JournalError, match="no round is open"):
            journal.commit_label(0, 1)
        journal.record_round([0, 1])
        with pytest.raises(JournalError, match="still has unlabeled queries"):
            journal.record_round([2])
        journal.commit_labels([0, 1], ["cat", "dog"])
        with pytest.raises(JournalError, match="already labeled"):
            journal.record_round([2, 0])
        journal.record_round([2])
        with pytest.raises(JournalError, match="already labeled"):
            journal.commit_label(0, "cat")
        with pytest.raises(JournalError, match="holds str labels"):
            journal.commit_label(2, 4)
        assert journal.commit_label(2, "cat") is True
        assert journal.labels() == ([0, 1, 2], ["cat", "dog", "cat"])


@pytest.mark.parametrize(
    ("ids", "scores", "message"),
    [
        ([], None, "empty"),
        ([1, 2], [0.1], r"shape \(2,\)"),
        ([1, 2], [0.1, float("nan")], "NaN"),
        ([1, 2], ["a", "b"], "real numbers"),
        ([1, None], None, "integer or a string"),
        ([2**64], None, "64-bit"),
        (np.zeros((2, 2), dtype=int), None, "1-D"),
        ("ab", None, "1-D sequence"),
    ],
)
def test_bad_rounds_raise_and_write_nothing(path, ids, scores, message):
    LabelJournal(path).close()
    before = snapshot(path)
    with LabelJournal(path) as journal, pytest.raises(JournalError, match=message):
        journal.record_round(ids, scores=scores)
    assert snapshot(path) == before


def test_meta_does_not_drift(path):
    with LabelJournal(path) as journal:
        journal.set_meta("loop", {"seed": np.int64(3)})
        assert journal.get_meta("loop") == {"seed": 3}
        journal.set_meta("loop", {"seed": 3})
        with pytest.raises(JournalError, match="refusing"):
            journal.set_meta("loop", {"seed": 4})
        assert journal.get_meta("missing", 1) == 1


def test_not_a_journal(tmp_path):
    bogus = tmp_path / "bogus.sqlite"
    bogus.write_bytes(b"this is not a database" * 100)
    with pytest.raises(JournalError, match="not a usable label journal"):
        LabelJournal(bogus)


@pytest.mark.parametrize(
    ("sql", "message"),
    [
        (
            "INSERT INTO labels (pool_id, label, round, created) VALUES (99, 0, 0, 0)",
            "unqueried ids",
        ),
        ("DELETE FROM labels WHERE pool_id = 1", "closed but misses labels"),
        ("UPDATE rounds SET closed = NULL WHERE round = 0", "open rounds"),
        ("UPDATE rounds SET round = 5 WHERE round = 1", "foreign_key_check"),
        ("INSERT INTO rounds VALUES (5, 's', '{}', 0, 0)", "not 0..n-1"),
        ("UPDATE labels SET label = 'x' WHERE pool_id = 1", "more than one type"),
    ],
)
def test_integrity_check_finds_tampering(path, sql, message):
    with LabelJournal(path) as journal:
        journal.record_round([1, 2])
        journal.commit_labels([1, 2], [0, 1])
        journal.record_round([3, 4])
        journal.commit_label(3, 1)
        journal.check_integrity()
    conn = sqlite3.connect(path)
    conn.execute(sql)
    conn.commit()
    conn.close()
    with LabelJournal(path) as journal, pytest.raises(JournalIntegrityError, match=message):
        journal.check_integrity()


def test_integrity_check_runs_sqlite_integrity_check(path):
    with LabelJournal(path) as journal:
        journal.record_round(list(range(300)))
        journal.commit_labels(list(range(300)), [i % 3 for i in range(300)])
    conn = sqlite3.connect(path)
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    conn.close()
    # overwrite a page of the labels index behind SQLite's back
    data = bytearray(path.read_bytes())
    page_size = 4096
    for page in range(2, len(data) // page_size):
        data[page * page_size + 100 : page * page_size + 300] = b"\x00" * 200
    path.write_bytes(bytes(data))
    with (
        LabelJournal(path) as journal,
        pytest.raises(JournalIntegrityError, match=r"integrity_check|cannot read"),
    ):
        journal.check_integrity()
