"""The Label Studio bridge against a real Label Studio server (no mocks of its API).

Annotations are posted through Label Studio's own REST API (the SDK), as a person's
browser posts them.
"""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from skdynal.persistence import LabelJournal

from ._setup import bridge, digits_pool, sync

pytestmark = pytest.mark.slow
HERE = Path(__file__).parent
REPO = HERE.parent.parent


def tasks_by_pool_id(client, project):
    return {t.data["pool_id"]: t.id for t in client.tasks.list(project=project, fields="all")}


def answer(client, task_id, text):
    region = {"from_name": "label", "to_name": "item", "type": "choices"}
    return client.annotations.create(
        id=task_id, result=[{**region, "value": {"choices": [str(text)]}}]
    )


def skip(client, task_id):
    return client.annotations.create(id=task_id, result=[], was_cancelled=True)


def test_three_rounds_with_people_a_kill_mid_round_and_resume(ls_server, client, tmp_path):
    X_pool, y = digits_pool()
    from skdynal.labelstudio import LabelStudioBridge

    project = LabelStudioBridge.create_project(
        ls_server.url, ls_server.token, "digits bridge test", list(range(10))
    )
    directory = tmp_path / "loop"
    b = bridge(ls_server.url, ls_server.token, project, directory)

    # --- first sync: the pool becomes 120 tasks, the initial batch of 10 is shown
    report = sync(b, X_pool)
    task = tasks_by_pool_id(client, project)
    assert sorted(task) == list(range(120))
    initial = report.pending
    assert len(initial) == 10 and report.committed == []
    assert sorted(b.next_batch()) == sorted(task[p] for p in initial)
    # a rerun imports nothing again
    sync(b, X_pool)
    assert len(list(client.tasks.list(project=project))) == 120

    # --- people answer: one skips, one gives an answer that is not a class
    for pid in initial[2:]:
        answer(client, task[pid], y[pid])
    skip(client, task[initial[0]])
    wrong = answer(client, task[initial[1]], "eleven")
    report = sync(b, X_pool)
    assert report.skipped == [initial[0]]
    assert report.unknown_labels == {initial[1]: "eleven"}
    assert report.pending == initial[:2] and b.loop_ is None  # nothing committed yet
    assert any("not one of the classes" in m for m in report.messages)
    # another annotator labels the skipped task; the wrong answer is corrected in the tool
    answer(client, task[initial[0]], y[initial[0]])
    region = {"from_name": "label", "to_name": "item", "type": "choices"}
    client.annotations.update(
        id=wrong.id, result=[{**region, "value": {"choices": [str(y[initial[1]])]}}]
    )
    report = sync(b, X_pool)
    assert sorted(report.committed) == sorted(initial)
    assert report.trained_rounds == 1 and report.round == 1
    batch1 = report.queried
    assert len(batch1) == 5 and not set(batch1) & set(initial)
    # the batch is what annotators see first: the tab, and the Data Manager's score order
    assert b.next_batch() == [task[p] for p in batch1]
    ordered = client.tasks.list(
        project=project, query=json.dumps({"ordering": ["-tasks:predictions_score"]})
    )
    assert [t.data["pool_id"] for t in ordered][:5] == batch1
    # the model's guess is shown as a pre-annotation
    shown = client.tasks.get(id=task[batch1[0]])
    (guess,) = [p for p in shown.predictions if p.model_version == "skdynal-round-1"]
    assert guess.result[0]["value"]["choices"][0] in [str(c) for c in range(10)]

    # --- round 1: all five labeled
    for pid in batch1:
        answer(client, task[pid], y[pid])
    report = sync(b, X_pool)
    assert report.committed == batch1 and report.trained_rounds == 2
    batch2 = report.queried
    b.close()

    # --- round 2: two labels arrive, the loop is killed right after committing one
    for pid in batch2[:2]:
        answer(client, task[pid], y[pid])
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(HERE), str(REPO)])}
    killed = subprocess.run(
        [sys.executable, str(HERE / "_sync_and_die.py"), ls_server.url, ls_server.token,
         str(project), str(directory)],
        env=env, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert killed.returncode == -9, killed.stderr[-3000:]
    assert killed.stdout.strip() == f"committed {batch2[0]}"
    with LabelJournal(directory / "journal.sqlite") as journal:
        assert journal.open_round().labels == {batch2[0]: int(y[batch2[0]])}
    # meanwhile people finish the batch; a new process (a fresh bridge and net) resumes
    for pid in batch2[2:]:
        answer(client, task[pid], y[pid])
    b = bridge(ls_server.url, ls_server.token, project, directory)
    report = sync(b, X_pool)
    assert report.committed == batch2[1:]  # not batch2[0] again
    assert report.trained_rounds == 3
    batch3 = report.queried

    # --- round 3
    for pid in batch3:
        answer(client, task[pid], y[pid])
    report = sync(b, X_pool)
    assert report.committed == batch3 and report.trained_rounds == 4
    # --- an edit and a deletion after commit are reported; the journal keeps its labels
    first = client.annotations.list(id=task[batch1[0]])[0]
    client.annotations.update(
        id=first.id, result=[{**region, "value": {"choices": [str((y[batch1[0]] + 1) % 10)]}}]
    )
    client.annotations.delete(id=client.annotations.list(id=task[batch1[1]])[0].id)
    report = sync(b, X_pool)
    assert report.changed_after_commit == {
        batch1[0]: (int(y[batch1[0]]), str((y[batch1[0]] + 1) % 10)),
        batch1[1]: (int(y[batch1[1]]), None),
    }
    b.close()

    # --- nothing lost, nothing twice, every label the person's
    with LabelJournal(directory / "journal.sqlite") as journal:
        summary = journal.check_integrity()
        ids, labels = journal.labels()
        rounds = journal.rounds()
    assert summary["labels"] == 25 == len(set(ids))
    assert sorted(ids) == sorted(initial + batch1 + batch2 + batch3)
    assert labels == [int(y[p]) for p in ids]
    assert [r.pool_ids for r in rounds[1:4]] == [batch1, batch2, batch3]
    assert len(b.stopping_.history_) == 4  # one decision per trained round


def test_stopping_rule_ends_the_queries(ls_server, client, tmp_path):
    """With a budget rule, the round that reaches it queries nothing more."""
    from skdynal.labelstudio import LabelStudioBridge
    from skdynal.stopping import LabelBudget

    X_pool, y = digits_pool()
    project = LabelStudioBridge.create_project(
        ls_server.url, ls_server.token, "budget test", list(range(10))
    )
    b = bridge(ls_server.url, ls_server.token, project, tmp_path / "loop")
    b.stopping = LabelBudget(budget=15)
    report = sync(b, X_pool)
    task = tasks_by_pool_id(client, project)
    for _ in range(3):
        for pid in report.pending:
            answer(client, task[pid], y[pid])
        report = sync(b, X_pool)
        if report.stop:
            break
    assert report.stop and report.queried == [] and report.pending == []
    assert b.stopping_.history_ == [10.0, 15.0]
    assert any("LabelBudget says stop after 15 labels" in m for m in report.messages)
    b.close()


def test_bad_settings_are_named(tmp_path):
    from skdynal.labelstudio import LabelStudioBridge

    X_pool, _ = digits_pool()
    b = LabelStudioBridge("http://127.0.0.1:1", "x", 1, tmp_path, [0, 1], batch_size=0)
    with pytest.raises(ValueError, match="batch_size must be a positive integer"):
        b.sync(None, None, X_pool)
    b = LabelStudioBridge("http://127.0.0.1:1", "x", 1, tmp_path, [0, "0"])
    with pytest.raises(ValueError, match="classes must be distinct"):
        b.sync(None, None, X_pool)
    b = LabelStudioBridge("http://127.0.0.1:1", "x", "one", tmp_path, [0, 1])
    with pytest.raises(TypeError, match="project must be a project id"):
        b.sync(None, None, X_pool)
