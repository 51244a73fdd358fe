"""Active learning with people labeling in Label Studio, on top of ResumableLoop."""

import json
import numbers
import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..persistence import ResumableLoop
from ._tasks import _check_classes

__all__ = ["LabelStudioBridge", "SyncReport", "connect"]

STATE_FILE = "labelstudio.json"
VIEW_TITLE = "skdynal: next batch"


def connect(url, api_key):
    """A ``label_studio_sdk.LabelStudio`` client; a clear ImportError without the extra."""
    try:
        from label_studio_sdk import LabelStudio
    except ImportError as exc:
        raise ImportError(
            "the Label Studio bridge needs the official SDK: pip install 'skdynal[labelstudio]'"
        ) from exc
    return LabelStudio(base_url=url, api_key=api_key)


def _get(obj, key, default=None):
    if isinstance(obj, dict):
        return obj.get(key, default)
    return getattr(obj, key, default)


@dataclass
class SyncReport:
    """What one :meth:`LabelStudioBridge.sync` did and what it waits for.

    Attributes
    ----------
    round : int
        The round whose labels are being collected (0: the initial batch).
    committed : list
        Pool ids whose labels this sync committed to the journal (each exactly once).
    pending : list
        Pool ids of the current batch still waiting for a usable annotation.
    skipped : list
        Pending ids whose only annotations are skips ("cancelled" in Label Studio).
    unknown_labels : dict
        ``pool_id -> answer`` for answers that are not among the classes; not committed.
    changed_after_commit : dict
        ``pool_id -> (journal label, Label Studio answer or None)`` where an annotation was
        edited or deleted in the tool after its label was committed. The journal keeps the
        committed label (it trained a model already); nothing is changed.
    queried : list
        Pool ids of a batch queried by this sync (the strategy's order).
    trained_rounds : int
        Rounds the model has been trained on (0 before the initial batch is complete).
    stop : bool
        The stopping rule said stop (no new batch is queried once it does).
    messages : list of str
        The above in words, one line each.
    """

    round: int = 0
    committed: list = field(default_factory=list)
    pending: list = field(default_factory=list)
    skipped: list = field(default_factory=list)
    unknown_labels: dict = field(default_factory=dict)
    changed_after_commit: dict = field(default_factory=dict)
    queried: list = field(default_factory=list)
    trained_rounds: int = 0
    stop: bool = False
    messages: list = field(default_factory=list)

    def __str__(self):
        head = (
            f"round {self.round}: {len(self.committed)} label(s) committed, "
            f"{len(self.pending)} pending, {self.trained_rounds} round(s) trained"
        )
        if self.queried:
            head += f", queried {len(self.queried)} new"
        if self.stop:
            head += ", STOP"
        return "\n".join([head, *self.messages])


class LabelStudioBridge:
    """Run a resumable active learning loop whose labels come from people in Label Studio.

    Every :meth:`sync` call does, idempotently, whatever is due next:

    1. imports the pool as tasks of ``project`` once (each task's data carries the row's
       pool id under ``id_field``; rows already imported are never imported again);
    2. picks the initial batch (``n_initial`` rows drawn with ``random_state``), and later
       each round's batch from ``query_strategy``, and shows it to annotators: the batch's
       tasks get predictions (the model's guess once it has one) whose score orders the
       Data Manager, under the project's model version, and a tab named
       ``"skdynal: next batch"`` lists the batch's unlabeled tasks best first;
    3. pulls finished annotations of the batch into the loop's label journal (a
       :class:`~skdynal.persistence.ResumableLoop` in ``directory``), each exactly once;
       skipped tasks, answers that are not among ``classes`` and annotations edited or
       deleted after their label was committed are reported in the :class:`SyncReport`
       and never committed or lost;
    4. when the batch is complete, the loop trains and checkpoints, the stopping rule (if
       any) is consulted, and the next batch is queried and shown.

    A crash at any point is harmless: the next :meth:`sync` (in a new process, with a fresh
    ``estimator``) resumes from the journal and the checkpoints; a queried batch is
    recorded before it is shown, so nobody is asked for a label twice and no committed
    label is lost. Any query strategy of the package (or any modAL-protocol strategy) goes
    through the same path.

    Parameters
    ----------
    url : str
        Label Studio's address, e.g. ``"http://127.0.0.1:8080"``.
    api_key : str
        A user's API token (Label Studio: Account & Settings, Access Token).
    project : int
        The project's id (see :meth:`create_project`).
    directory : path-like
        The loop's directory (journal, checkpoints and ``labelstudio.json``).
    classes : sequence of int or str
        The classes, in the order of the model's outputs; annotators choose among
        ``str(class)``.
    batch_size : int, default=10
        Rows per queried batch.
    n_initial : int, default=10
        Rows of the initial batch (drawn at random).
    stopping : stopping rule, default=None
        A rule of :mod:`skdynal.stopping`; consulted once per trained round.
    id_field : str, default="pool_id"
        Key of the pool id in each task's data.
    from_name : str, default="label"
        Name of the choice control in the labeling configuration.
    random_state : int, default=0
        Seed of the initial batch and of the loop (training and queries).

    Attributes
    ----------
    loop_ : ResumableLoop or None
        The loop, once the initial batch is labeled.
    stopping_ : stopping rule or None
        The fitted copy of ``stopping`` (its ``history_`` per trained round).

    References
    ----------
    .. [1] Label Studio SDK 2.x, https://api.labelstud.io/api-reference/introduction/
    """

    def __init__(
        self,
        url,
        api_key,
        project,
        directory,
        classes,
        *,
        batch_size=10,
        n_initial=10,
        stopping=None,
        id_field="pool_id",
        from_name="label",
        random_state=0,
    ):
        self.url = url
        self.api_key = api_key
        self.project = project
        self.directory = directory
        self.classes = classes
        self.batch_size = batch_size
        self.n_initial = n_initial
        self.stopping = stopping
        self.id_field = id_field
        self.from_name = from_name
        self.random_state = random_state
        self.loop_ = None
        self.stopping_ = None
        self._client = None

    # ------------------------------------------------------------------ set-up
    @staticmethod
    def create_project(url, api_key, title, classes, *, data_key="image", data_type="image"):
        """Create a Label Studio project for ``classes``; return its id.

        The labeling configuration is :func:`~skdynal.labelstudio.label_config`.
        """
        from ._tasks import label_config

        config = label_config(classes, data_key=data_key, data_type=data_type)
        return int(connect(url, api_key).projects.create(title=title, label_config=config).id)

    def _check(self):
        for name in ("batch_size", "n_initial"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 1:
                raise ValueError(f"{name} must be a positive integer, got {value!r}.")
        if isinstance(self.project, bool) or not isinstance(self.project, numbers.Integral):
            raise TypeError(f"project must be a project id (int), got {self.project!r}.")
        if isinstance(self.random_state, bool) or not isinstance(
            self.random_state, numbers.Integral
        ):
            raise TypeError(f"random_state must be an int, got {self.random_state!r}.")
        if self.stopping is not None and not hasattr(self.stopping, "update"):
            raise TypeError(
                f"stopping must be a rule of skdynal.stopping (with update()), got "
                f"{self.stopping!r}."
            )
        classes = _check_classes(self.classes)
        if not isinstance(self.id_field, str) or not self.id_field:
            raise ValueError(f"id_field must be a non-empty str, got {self.id_field!r}.")
        return classes

    @property
    def client(self):
        if self._client is None:
            self._client = connect(self.url, self.api_key)
        return self._client

    # ------------------------------------------------------------------ state file
    def _state_path(self):
        return Path(self.directory) / STATE_FILE

    def _read_state(self):
        path = self._state_path()
        if not path.exists():
            return {}
        try:
            state = json.loads(path.read_text())
        except ValueError as exc:
            raise ValueError(
                f"{path} is not valid JSON ({exc}); restore it or remove it."
            ) from None
        if not isinstance(state, dict):
            raise ValueError(f"{path} does not hold a bridge state (a JSON object).")
        return state

    def _write_state(self, state):
        path = self._state_path()
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".labelstudio-")
        with os.fdopen(fd, "w") as f:
            json.dump(state, f, sort_keys=True)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)

    # ------------------------------------------------------------------ Label Studio reads
    def _snapshot(self):
        """``pool_id -> task`` for every task of the project carrying ``id_field``."""
        tasks = {}
        for task in self.client.tasks.list(project=self.project, fields="all"):
            data = _get(task, "data") or {}
            if self.id_field not in data:
                continue
            pid = data[self.id_field]
            if pid not in tasks or _get(task, "id") < _get(tasks[pid], "id"):
                tasks[pid] = task
        return tasks

    def _answer(self, task):
        """``(status, answer)`` of a task: "none", "skipped" or "answered" (latest answer)."""
        annotations = [a for a in (_get(task, "annotations") or []) if a]
        if not annotations:
            return "none", None
        done = [a for a in annotations if not _get(a, "was_cancelled", False)]
        if not done:
            return "skipped", None
        latest = max(done, key=lambda a: (str(_get(a, "updated_at") or ""), _get(a, "id") or 0))
        for region in _get(latest, "result") or []:
            if _get(region, "from_name") == self.from_name:
                choices = (_get(region, "value") or {}).get("choices") or []
                if len(choices) == 1:
                    return "answered", choices[0]
                return "answered", choices
        return "answered", None

    # ------------------------------------------------------------------ the step
    def sync(self, estimator, query_strategy, X_pool, tasks=None):
        """Do what is due: import, pull labels, train, consult the rule, query, show.

        Parameters
        ----------
        estimator : skorch net or estimator
            A net built like the first one (fresh; used to start or to resume the loop).
            Ignored while this bridge already holds a live loop.
        query_strategy : callable
            Any modAL-protocol strategy (every strategy of :mod:`skdynal`).
        X_pool : array-like of shape (n_rows, ...)
            The model's input for every pool row; row ``i`` has pool id ``i``.
        tasks : list of dict, default=None
            Label Studio data of every row (see :func:`array_image_tasks`,
            :func:`image_file_tasks`); needed until the pool is imported.

        Returns
        -------
        report : SyncReport
        """
        classes = self._check()
        by_text = {str(c): c for c in classes}
        X_pool = np.asarray(X_pool)
        n = len(X_pool)
        state = self._read_state()
        if state.get("project", self.project) != self.project:
            raise ValueError(
                f"{self._state_path()} belongs to project {state['project']}, not "
                f"{self.project}; use another directory for another project."
            )
        if state.get("n_pool", n) != n:
            raise ValueError(f"the pool had {state['n_pool']} rows, now {n}; pass the same pool.")
        state.update(project=self.project, n_pool=n)
        report = SyncReport()

        snapshot = self._snapshot()
        missing = [i for i in range(n) if i not in snapshot]
        if missing:
            if tasks is None or len(tasks) != n:
                raise ValueError(
                    f"{len(missing)} pool row(s) are not in project {self.project} yet; pass "
                    f"tasks= (Label Studio data of all {n} rows) to import them."
                )
            batch = [{**dict(tasks[i]), self.id_field: i} for i in missing]
            for start in range(0, len(batch), 500):
                self.client.projects.import_tasks(
                    id=self.project, request=batch[start : start + 500]
                )
            report.messages.append(f"imported {len(missing)} task(s) into project {self.project}")
            snapshot = self._snapshot()
        self._ensure_view(state)

        journal = Path(self.directory) / ResumableLoop.JOURNAL_FILE
        started = self.loop_ is not None or (journal.exists() and _journal_has_rounds(journal))
        if not started:
            if "initial_ids" not in state:
                rng = np.random.RandomState(self.random_state)
                state["initial_ids"] = sorted(
                    int(i) for i in rng.choice(n, size=min(self.n_initial, n), replace=False)
                )
            self._write_state(state)
            initial = state["initial_ids"]
            self._show(snapshot, initial, "skdynal-initial", state, guesses=None)
            labels = self._collect(snapshot, initial, by_text, report)
            report.pending = [pid for pid in initial if pid not in labels]
            if report.pending:
                report.messages.append(
                    f"waiting for {len(report.pending)} of {len(initial)} initial label(s)"
                )
                return report
            self.loop_ = ResumableLoop.start(
                self.directory,
                estimator,
                query_strategy,
                X_pool,
                initial,
                [labels[pid] for pid in initial],
                random_state=int(self.random_state),
            )
            report.committed = list(initial)
        elif self.loop_ is None:
            self.loop_ = ResumableLoop.resume(
                self.directory, estimator, X_pool, query_strategy=query_strategy
            )
        loop = self.loop_
        record = loop.journal.rounds()[-1]
        report.round = record.round
        pending = loop.pending
        if pending:
            labels = self._collect(snapshot, pending, by_text, report)
            for pid in pending:  # one at a time: each label is its own transaction
                if pid in labels:
                    loop.commit_label(pid, labels[pid])
                    report.committed.append(pid)
        self._check_committed(loop, snapshot, by_text, report)
        report.trained_rounds = loop.n_rounds_trained
        pending = loop.pending
        if not pending:
            report.stop = self._consult_rule(loop, X_pool, state)
            if report.stop:
                report.messages.append(
                    f"the stopping rule {type(self.stopping).__name__} says stop after "
                    f"{len(loop.labeled()[0])} labels; no new batch was queried"
                )
            elif len(loop.labeled()[0]) >= n:
                report.messages.append("every pool row is labeled")
            else:
                size = min(self.batch_size, n - len(loop.labeled()[0]))
                pending = loop.query(n_instances=size)
                report.queried = list(pending)
                report.messages.append(f"queried round {len(loop.journal.rounds()) - 1}")
        record = loop.journal.rounds()[-1]
        report.round = record.round
        report.pending = list(pending)
        if pending:
            guesses = self._guesses(loop, X_pool, pending, classes)
            self._show(snapshot, record.pool_ids, f"skdynal-round-{record.round}", state, guesses)
        self._write_state(state)
        return report

    def _collect(self, snapshot, ids, by_text, report):
        labels = {}
        for pid in ids:
            task = snapshot.get(pid)
            status, answer = ("none", None) if task is None else self._answer(task)
            if status == "skipped":
                report.skipped.append(pid)
                report.messages.append(
                    f"pool id {pid} (task {_get(task, 'id')}) was skipped; it stays in the "
                    "batch until someone labels it"
                )
            elif status == "answered":
                if isinstance(answer, str) and answer in by_text:
                    labels[pid] = by_text[answer]
                else:
                    report.unknown_labels[pid] = answer
                    report.messages.append(
                        f"pool id {pid} (task {_get(task, 'id')}): answer {answer!r} is not "
                        f"one of the classes {list(by_text)}; not committed. Fix the "
                        "annotation in Label Studio (or the classes) and sync again"
                    )
        return labels

    def _check_committed(self, loop, snapshot, by_text, report):
        ids, labels = loop.labeled()
        for pid, label in zip(ids, labels, strict=True):
            task = snapshot.get(pid)
            status, answer = ("none", None) if task is None else self._answer(task)
            now = by_text.get(answer) if isinstance(answer, str) else None
            if status != "answered":
                now = None
            if now is None or str(now) != str(label):
                report.changed_after_commit[pid] = (
                    label,
                    answer if status == "answered" else None,
                )
        if report.changed_after_commit:
            report.messages.append(
                f"{len(report.changed_after_commit)} committed label(s) were edited or deleted "
                "in Label Studio afterwards; the journal keeps the committed labels "
                f"(pool ids {sorted(report.changed_after_commit, key=str)[:10]})"
            )

    def _consult_rule(self, loop, X_pool, state):
        if self.stopping is None:
            return False
        from sklearn.base import clone

        saved = state.get("stopping") or {}
        if self.stopping_ is None:
            self.stopping_ = clone(self.stopping)
            if saved.get("state") is not None:
                self.stopping_.load_state_dict(saved["state"])
        trained = loop.n_rounds_trained - 1
        if saved.get("round", -1) < trained:
            labeled = set(loop.labeled()[0])
            ids = [i for i in range(len(X_pool)) if i not in labeled]
            X = X_pool[ids] if ids else X_pool[:0]
            self.stopping_.update(loop.learner, X, pool_ids=ids)
            state["stopping"] = {"round": trained, "state": self.stopping_.state_dict()}
            self._write_state(state)
        return bool(self.stopping_.stop_)

    def _guesses(self, loop, X_pool, ids, classes):
        pred = np.asarray(loop.learner.predict(X_pool[list(ids)])).reshape(-1)
        out = {}
        for pid, p in zip(ids, pred, strict=True):
            p = p.item() if isinstance(p, np.generic) else p
            if p in classes:
                out[pid] = p
            elif isinstance(p, numbers.Integral) and 0 <= p < len(classes):
                out[pid] = classes[p]
        return out

    def _show(self, snapshot, ids, version, state, guesses):
        """Predictions for the batch under ``version`` (idempotent); the project uses it."""
        n = len(ids)
        for rank, pid in enumerate(ids):
            task = snapshot.get(pid)
            if task is None:
                continue
            if any(_get(p, "model_version") == version for p in _get(task, "predictions") or []):
                continue
            result = []
            if guesses and pid in guesses:
                result = [
                    {
                        "from_name": self.from_name,
                        "to_name": "item",
                        "type": "choices",
                        "value": {"choices": [str(guesses[pid])]},
                    }
                ]
            self.client.predictions.create(
                task=_get(task, "id"),
                result=result,
                score=1.0 - rank / (2.0 * n),
                model_version=version,
            )
        if state.get("model_version") != version:
            self.client.projects.update(id=self.project, model_version=version)
            state["model_version"] = version

    def _ensure_view(self, state):
        if state.get("view") is not None:
            return
        view = self.client.views.create(
            project=self.project,
            data={
                "title": VIEW_TITLE,
                "ordering": ["-tasks:predictions_score"],
                "filters": {
                    "conjunction": "and",
                    "items": [
                        {
                            "filter": "filter:tasks:total_annotations",
                            "operator": "equal",
                            "type": "Number",
                            "value": 0,
                        },
                        {
                            "filter": "filter:tasks:predictions_score",
                            "operator": "greater",
                            "type": "Number",
                            "value": 0,
                        },
                    ],
                },
            },
        )
        state["view"] = int(_get(view, "id"))
        self._write_state(state)

    def next_batch(self):
        """Task ids of the tab "skdynal: next batch", in its order (what annotators see)."""
        state = self._read_state()
        if state.get("view") is None:
            return []
        return [
            _get(t, "id") for t in self.client.tasks.list(project=self.project, view=state["view"])
        ]

    def close(self):
        """Close the loop's journal."""
        if self.loop_ is not None:
            self.loop_.close()
            self.loop_ = None


def _journal_has_rounds(path):
    from ..persistence import LabelJournal

    with LabelJournal(path) as journal:
        return bool(journal.rounds())
