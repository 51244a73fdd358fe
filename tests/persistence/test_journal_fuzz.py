"""Hypothesis fuzz test of the journal against an independent model of its rules.

Each example runs a random sequence of ``record_round`` / ``commit_labels`` calls with
good, bad and edge inputs (wrong shapes and dtypes, NaN, inf, None, booleans, empty
sequences, duplicate and unknown ids, float and mixed-type labels) on a fresh journal. A
plain-Python model says whether each call must succeed; a call that must fail has to raise
:class:`JournalError` and leave every table unchanged (read back with plain sqlite3), and a
call that must succeed has to change the tables exactly as the model says.
"""

import math
import os
import sqlite3
import tempfile
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from skdynal.persistence import JournalError, LabelJournal

GOOD_IDS = [0, 1, 2, 3, "a", "b", np.int64(2), np.uint8(3)]
BAD_IDS = [1.0, float("nan"), None, True, np.float64(1), 2**64, b"a", (1,)]
GOOD_LABELS = [0, 1, 2, "x", "y", np.int64(1), np.int8(2)]
BAD_LABELS = [1.0, 0.5, float("nan"), None, False, np.float32(1), [1], b"x"]

ids_lists = st.lists(st.sampled_from(GOOD_IDS) | st.sampled_from(BAD_IDS), max_size=5)
label_lists = st.lists(st.sampled_from(GOOD_LABELS) | st.sampled_from(BAD_LABELS), max_size=5)
scores = st.none() | st.lists(
    st.floats(allow_nan=True, allow_infinity=True) | st.sampled_from(["s", None]), max_size=5
)


@st.composite
def containers(draw, values):
    """A list, a 1-D numpy array, a 2-D array, a bare scalar or a string."""
    items = draw(values)
    kind = draw(st.sampled_from(["list", "list", "array", "2d", "scalar"]))
    if (
        kind == "array"
        and items
        and all(
            isinstance(v, int | np.integer) and not isinstance(v, bool) and abs(int(v)) < 2**62
            for v in items
        )
    ):
        return (
            np.array(items, dtype=draw(st.sampled_from([np.int64, np.int32, np.uint16])))
            if all(0 <= int(v) < 2**15 for v in items)
            else np.array(items)
        )
    if kind == "2d" and items:
        return np.array([[0] * len(items)])
    if kind == "scalar":
        return items[0] if items else "ab"
    return items


good_ids = st.lists(st.sampled_from(GOOD_IDS), min_size=1, max_size=4, unique_by=repr)
int_labels = st.sampled_from([0, 1, 2, np.int64(1), np.int8(2)])
str_labels = st.sampled_from(["x", "y", ""])


def draw_operation(data, model):
    """A mostly valid operation (so the journal gets somewhere) or an arbitrary bad one."""
    remaining = model.remaining()
    weights = ["round", "label", "label", "label"] if remaining else ["round"] * 3 + ["label"]
    kind = data.draw(st.sampled_from(weights))
    if kind == "round":
        if data.draw(st.booleans()):
            return kind, data.draw(good_ids), None
        return kind, data.draw(containers(ids_lists)), data.draw(scores)
    if remaining and data.draw(st.integers(0, 3)) > 0:
        ids = data.draw(st.lists(st.sampled_from(remaining), min_size=1, unique=True))
        kind_of_label = model.label_type or data.draw(st.sampled_from(["int", "str"]))
        if data.draw(st.integers(0, 9)) == 0:  # the other type
            kind_of_label = "str" if kind_of_label == "int" else "int"
        good = int_labels if kind_of_label == "int" else str_labels
        labels = data.draw(st.lists(good, min_size=len(ids), max_size=len(ids)))
        if data.draw(st.integers(0, 3)) == 0:  # spoil one of them
            if data.draw(st.booleans()):
                labels[data.draw(st.integers(0, len(labels) - 1))] = data.draw(
                    st.sampled_from(BAD_LABELS)
                )
            else:
                ids = [*ids, data.draw(st.sampled_from(GOOD_IDS + BAD_IDS))]
                labels = [*labels, 0]
        return kind, ids, labels
    return kind, data.draw(containers(ids_lists)), data.draw(containers(label_lists))


def as_id(v):
    if isinstance(v, bool | np.bool_):
        return None
    if isinstance(v, int | np.integer) and -(2**63) <= int(v) < 2**63:
        return int(v)
    if isinstance(v, str):
        return v
    return None


def as_label(v):
    if isinstance(v, bool | np.bool_):
        return None
    if isinstance(v, int | np.integer):
        return int(v)
    if isinstance(v, str):
        return v
    return None


def id_list(x):
    if isinstance(x, str | bytes | int | np.integer) or not hasattr(x, "__len__"):
        return None
    if isinstance(x, np.ndarray) and x.ndim != 1:
        return None
    ids = [as_id(v) for v in x]
    if any(v is None for v in ids) or len(set(ids)) != len(ids):
        return None
    return ids


class Model:
    def __init__(self):
        self.rounds = []  # list of (ids, scores)
        self.labels = {}  # id -> (label, round)
        self.label_type = None

    def remaining(self):
        number = self.open_round()
        return (
            [] if number is None else [p for p in self.rounds[number][0] if p not in self.labels]
        )

    def open_round(self):
        if self.rounds and any(p not in self.labels for p in self.rounds[-1][0]):
            return len(self.rounds) - 1
        return None

    def record(self, raw_ids, raw_scores):
        ids = id_list(raw_ids)
        if not ids or self.open_round() is not None or any(p in self.labels for p in ids):
            return False
        if raw_scores is None:
            values = [None] * len(ids)
        else:
            if len(raw_scores) != len(ids):
                return False
            if not all(isinstance(s, float) and not math.isnan(s) for s in raw_scores):
                return False
            values = list(raw_scores)
        self.rounds.append((ids, values))
        return True

    def commit(self, raw_ids, raw_labels):
        ids = id_list(raw_ids)
        if (
            ids is None
            or isinstance(raw_labels, str | bytes)
            or not hasattr(raw_labels, "__len__")
        ):
            return False
        if isinstance(raw_labels, np.ndarray) and raw_labels.ndim != 1:
            return False
        labels = [as_label(v) for v in raw_labels]
        if any(v is None for v in labels) or len(labels) != len(ids):
            return False
        if not ids:
            return True
        kinds = {type(v).__name__ for v in labels}
        if len(kinds) > 1 or (self.label_type not in (None, *kinds)):
            return False
        number = self.open_round()
        if number is None:
            return False
        remaining = [p for p in self.rounds[number][0] if p not in self.labels]
        if any(p not in remaining for p in ids):
            return False
        self.label_type = kinds.pop()
        for p, y in zip(ids, labels, strict=True):
            self.labels[p] = (y, number)
        return True

    def tables(self):
        queries = sorted(
            (
                (r, i, p, s)
                for r, (ids, sc) in enumerate(self.rounds)
                for i, (p, s) in enumerate(zip(ids, sc, strict=True))
            ),
            key=repr,
        )
        labels = sorted(((p, y, r) for p, (y, r) in self.labels.items()), key=repr)
        return queries, labels


def read_tables(path):
    conn = sqlite3.connect(path)
    try:
        queries = conn.execute("SELECT round, position, pool_id, score FROM queries").fetchall()
        labels = conn.execute("SELECT pool_id, label, round FROM labels").fetchall()
        return sorted(queries, key=repr), sorted(labels, key=repr)
    finally:
        conn.close()


N_EXAMPLES = int(os.environ.get("SKDYNAL_FUZZ_EXAMPLES", "200"))


@pytest.mark.slow  # hypothesis: many journals
@settings(
    max_examples=N_EXAMPLES,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(st.data())
def test_journal_matches_model(data):
    model = Model()
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "journal.sqlite"
        with LabelJournal(path) as journal:
            for _ in range(data.draw(st.integers(1, 10))):
                kind, ids, extra = draw_operation(data, model)
                before = read_tables(path)
                if kind == "round":
                    expected = model.record(ids, extra)
                    call = lambda: journal.record_round(ids, scores=extra)  # noqa: E731, B023
                else:
                    expected = model.commit(ids, extra)
                    call = lambda: journal.commit_labels(ids, extra)  # noqa: E731, B023
                if expected:
                    call()
                else:
                    try:
                        call()
                    except JournalError:
                        pass
                    else:
                        raise AssertionError(f"{kind}({ids!r}, {extra!r}) should have failed")
                    assert read_tables(path) == before, "a refused call wrote something"
                assert read_tables(path) == model.tables()
            journal.check_integrity()
