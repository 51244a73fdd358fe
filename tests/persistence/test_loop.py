import hashlib
import json

import numpy as np
import pytest
import torch
from modAL.uncertainty import uncertainty_sampling
from sklearn.linear_model import LogisticRegression

from skdynal.persistence import (
    CheckpointError,
    JournalError,
    LabelJournal,
    ResumableLoop,
    ResumeWarning,
)
from skdynal.persistence._checkpoint import list_checkpoints

from ._helpers import HalfRandomUncertainty, initial_ids, make_net, make_pool

X, Y = make_pool()
INIT = initial_ids(Y)


def start(directory, strategy_seed=0, **kwargs):
    strategy = HalfRandomUncertainty(random_state=np.random.RandomState(strategy_seed))
    return ResumableLoop.start(
        directory, make_net(), strategy, X, INIT, Y[INIT], random_state=3, **kwargs
    )


def run_rounds(loop, n_rounds, batch=4):
    for _ in range(n_rounds):
        for pool_id in loop.query(batch):
            loop.commit_label(pool_id, Y[pool_id])


def state_of(loop):
    rounds = [(r.pool_ids, r.labels, r.is_open) for r in loop.journal.rounds()]
    module = loop.learner.estimator.module_
    params = {k: v.detach().clone() for k, v in module.state_dict().items()}
    return rounds, params, loop.learner.query_strategy.random_state.get_state()[1].copy()


def assert_same(a, b):
    assert a[0] == b[0]
    assert a[1].keys() == b[1].keys()
    for key in a[1]:
        assert torch.equal(a[1][key], b[1][key]), key
    np.testing.assert_array_equal(a[2], b[2])


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    """Four uninterrupted rounds, then the fifth query; and the state after round 2."""
    loop = start(tmp_path_factory.mktemp("reference"))
    run_rounds(loop, 2)
    after_two = state_of(loop)
    run_rounds(loop, 2)
    next_query = loop.query(4)
    final = state_of(loop)
    training = (loop.learner.X_training.copy(), loop.learner.y_training.copy())
    loop.close()
    return {"final": final, "next": next_query, "after_two": after_two, "training": training}


def test_resume_between_rounds_matches_uninterrupted(tmp_path, reference):
    loop = start(tmp_path)
    run_rounds(loop, 2)
    loop.close()
    loop = ResumableLoop.resume(tmp_path, make_net(), X, trusted=[HalfRandomUncertainty])
    assert loop.n_rounds_trained == 3
    assert_same(state_of(loop), reference["after_two"])
    run_rounds(loop, 2)
    assert loop.query(4) == reference["next"]
    assert_same(state_of(loop), reference["final"])
    np.testing.assert_array_equal(loop.learner.X_training, reference["training"][0])
    np.testing.assert_array_equal(loop.learner.y_training, reference["training"][1])
    loop.close()


def test_resume_mid_round_returns_remaining_queries(tmp_path, reference):
    loop = start(tmp_path)
    run_rounds(loop, 2)
    queried = loop.query(4)
    loop.commit_label(queried[2], Y[queried[2]])
    loop.commit_label(queried[0], Y[queried[0]])
    loop.close()  # no save after the query: resume must replay it
    loop = ResumableLoop.resume(tmp_path, make_net(), X, trusted=[HalfRandomUncertainty])
    assert loop.pending == [queried[1], queried[3]]
    assert loop.query(4) == [queried[1], queried[3]]  # the open round, not a new query
    for pool_id in loop.query(4):
        loop.commit_label(pool_id, Y[pool_id])
    run_rounds(loop, 1)
    assert loop.query(4) == reference["next"]
    assert_same(state_of(loop), reference["final"])
    loop.close()


def test_resume_after_manual_save_mid_round(tmp_path, reference):
    loop = start(tmp_path)
    run_rounds(loop, 3)
    loop.query(4)
    loop.save()  # strategy state saved after the query: resume must not replay it
    loop.close()
    loop = ResumableLoop.resume(tmp_path, make_net(), X, trusted=[HalfRandomUncertainty])
    run_rounds(loop, 1)
    assert loop.query(4) == reference["next"]
    assert_same(state_of(loop), reference["final"])
    loop.close()


def test_global_random_state_is_left_alone(tmp_path):
    # the loop seeds the global generators for its own work and restores them
    np.random.seed(123)  # noqa: NPY002
    torch.manual_seed(123)
    expected = np.random.rand(), torch.rand(1)  # noqa: NPY002
    np.random.seed(123)  # noqa: NPY002
    torch.manual_seed(123)
    loop = start(tmp_path)
    run_rounds(loop, 1)
    loop.close()
    assert (np.random.rand(), torch.rand(1)) == expected  # noqa: NPY002


def damage(path, how):
    data = path.read_bytes()
    if how == "truncate":
        path.write_bytes(data[: len(data) // 2])
    else:
        path.write_bytes(data[:10] + bytes([data[10] ^ 0xFF]) + data[11:])


@pytest.mark.parametrize(
    ("file", "how", "message"),
    [
        ("params.pt", "truncate", "truncated"),
        ("optimizer.pt", "flip", "corrupted"),
        ("MANIFEST.json", "truncate", "unreadable"),
    ],
)
def test_damaged_checkpoint(tmp_path, reference, file, how, message):
    loop = start(tmp_path)
    run_rounds(loop, 2)
    loop.close()
    newest, _ = list_checkpoints(tmp_path / "checkpoints")
    damage(newest / file, how)
    with pytest.raises(CheckpointError, match=message):
        ResumableLoop.resume(
            tmp_path, make_net(), X, fallback=False, trusted=[HalfRandomUncertainty]
        )
    # falling back to the previous checkpoint replays round 2 from the journal
    with pytest.warns(ResumeWarning, match="skipping damaged checkpoint"):
        loop = ResumableLoop.resume(tmp_path, make_net(), X, trusted=[HalfRandomUncertainty])
    assert_same(state_of(loop), reference["after_two"])
    loop.close()


def test_all_checkpoints_damaged_leaves_journal_usable(tmp_path):
    loop = start(tmp_path)
    run_rounds(loop, 1)
    queried = loop.query(4)
    loop.close()
    for ckpt in list_checkpoints(tmp_path / "checkpoints"):
        damage(ckpt / "params.pt", "truncate")
    journal_bytes = (tmp_path / "journal.sqlite").read_bytes()
    with pytest.warns(ResumeWarning), pytest.raises(CheckpointError, match="no usable checkpoint"):
        ResumableLoop.resume(tmp_path, make_net(), X, trusted=[HalfRandomUncertainty])
    assert (tmp_path / "journal.sqlite").read_bytes() == journal_bytes
    with LabelJournal(tmp_path / "journal.sqlite") as journal:
        assert journal.check_integrity() == {"rounds": 3, "labels": 14, "open_queries": 4}
        assert journal.open_round().remaining == queried
        journal.commit_label(queried[0], int(Y[queried[0]]))
        assert len(journal) == 15


def test_crash_before_first_checkpoint_rebuilds_from_journal(tmp_path, reference):
    # round 0 recorded and labeled, but the process died before its first checkpoint:
    # copy only the journal of a started loop
    start(tmp_path / "a").close()
    (tmp_path / "b").mkdir()
    (tmp_path / "b" / "journal.sqlite").write_bytes(
        (tmp_path / "a" / "journal.sqlite").read_bytes()
    )
    with pytest.raises(ValueError, match="pass query_strategy"):
        ResumableLoop.resume(tmp_path / "b", make_net(), X, trusted=[HalfRandomUncertainty])
    strategy = HalfRandomUncertainty(random_state=np.random.RandomState(0))
    loop = ResumableLoop.resume(tmp_path / "b", make_net(), X, query_strategy=strategy)
    assert len(list_checkpoints(tmp_path / "b" / "checkpoints")) == 1
    run_rounds(loop, 4)
    assert loop.query(4) == reference["next"]
    assert_same(state_of(loop), reference["final"])
    loop.close()


def test_refusals(tmp_path):
    loop = start(tmp_path)
    queried = loop.query(3)
    not_queried = next(i for i in range(len(X)) if i not in queried and i not in INIT)
    with pytest.raises(JournalError, match="not queried"):
        loop.commit_label(not_queried, 1)
    with pytest.raises(JournalError, match="float class labels"):
        loop.commit_label(queried[0], 1.0)
    with pytest.raises(JournalError, match="already labeled"):
        loop.commit_label(INIT[0], int(Y[INIT[0]]))
    assert loop.labeled()[0] == INIT
    assert loop.pending == queried
    loop.close()
    with pytest.raises(ValueError, match="already holds a started loop"):
        start(tmp_path)
    with pytest.raises(ValueError, match="differ from the pool"):
        ResumableLoop.resume(tmp_path, make_net(), X[::-1].copy())
    with pytest.raises(ValueError, match="holds no loop"):
        ResumableLoop.resume(tmp_path / "empty", make_net(), X, trusted=[HalfRandomUncertainty])
    with pytest.raises(TypeError, match=r"cannot be saved in a checkpoint.*not a lambda"):
        ResumableLoop.start(
            tmp_path / "l", make_net(), lambda lr, X, n_instances: [0], X, INIT, Y[INIT]
        )
    with pytest.raises(TypeError, match="random_state"):
        ResumableLoop.start(
            tmp_path / "r",
            make_net(),
            uncertainty_sampling,
            X,
            INIT,
            Y[INIT],
            random_state=np.random.RandomState(0),
        )
    with pytest.raises(JournalError, match="float class labels"):
        ResumableLoop.start(
            tmp_path / "f", make_net(), uncertainty_sampling, X, INIT, Y[INIT].astype(float)
        )
    assert not (tmp_path / "f" / "checkpoints").exists()
    with LabelJournal(tmp_path / "f" / "journal.sqlite") as journal:
        assert journal.rounds() == []


def test_string_ids_and_plain_sklearn_estimator(tmp_path):
    ids = [f"img-{i:03d}" for i in range(len(X))]
    init = [ids[i] for i in INIT]

    def run(directory, stop_after):
        loop = ResumableLoop.start(
            directory,
            LogisticRegression(max_iter=200),
            uncertainty_sampling,
            X,
            init,
            Y[INIT],
            pool_ids=ids,
            random_state=0,
        )
        for r in range(3):
            if r == stop_after:
                loop.close()
                loop = ResumableLoop.resume(
                    directory, LogisticRegression(max_iter=200), X, pool_ids=ids
                )
            for pool_id in loop.query(2):
                loop.commit_label(pool_id, Y[ids.index(pool_id)])
        out = loop.query(2), [r.pool_ids for r in loop.journal.rounds()]
        loop.close()
        return out

    uninterrupted = run(tmp_path / "a", stop_after=None)
    assert uninterrupted == run(tmp_path / "b", stop_after=1)
    assert all(pid.startswith("img-") for pid in uninterrupted[0])


def test_scores_are_recorded(tmp_path):
    def least_confidence(learner, X_pool):
        return 1.0 - learner.predict_proba(X_pool).max(axis=1)

    loop = ResumableLoop.start(
        tmp_path,
        LogisticRegression(max_iter=200),
        uncertainty_sampling,
        X,
        INIT,
        Y[INIT],
        random_state=0,
        score_fn=least_confidence,
    )
    queried = loop.query(3)
    record = loop.journal.open_round()
    proba = loop.learner.predict_proba(X[queried])
    np.testing.assert_allclose(record.scores, 1.0 - proba.max(axis=1))
    assert record.strategy == "modAL.uncertainty.uncertainty_sampling"
    assert record.params["n_instances"] == 3
    loop.close()


def test_replay_mismatch_warns(tmp_path):
    loop = start(tmp_path)
    queried = loop.query(4)
    loop.close()
    # tamper with the saved strategy state: the replayed query differs from the journal
    ckpt = list_checkpoints(tmp_path / "checkpoints")[0]
    saved = json.loads((ckpt / "strategy.json").read_text())
    other = np.random.RandomState(99).get_state()
    saved["params"]["random_state"]["__RandomState__"][1] = other[1].tolist()
    data = json.dumps(saved).encode()
    (ckpt / "strategy.json").write_bytes(data)
    manifest = json.loads((ckpt / "MANIFEST.json").read_text())
    manifest["files"]["strategy.json"] = {
        "sha256": hashlib.sha256(data).hexdigest(),
        "size": len(data),
    }
    (ckpt / "MANIFEST.json").write_text(json.dumps(manifest))
    with pytest.warns(ResumeWarning, match="keeping the journal's ids"):
        loop = ResumableLoop.resume(tmp_path, make_net(), X, trusted=[HalfRandomUncertainty])
    assert loop.pending == queried
    loop.close()


class FlakyLogisticRegression(LogisticRegression):
    """Fails its second fit, once (a training crash without a process crash)."""

    fits = 0

    def fit(self, X, y):
        type(self).fits += 1
        if type(self).fits == 2:
            raise RuntimeError("out of memory")
        return super().fit(X, y)


def test_failed_training_is_redone_before_the_next_query(tmp_path):
    def run(directory, estimator):
        loop = ResumableLoop.start(
            directory, estimator, uncertainty_sampling, X, INIT, Y[INIT], random_state=0
        )
        queried = loop.query(2)
        loop.commit_label(queried[0], Y[queried[0]])
        try:
            loop.commit_label(queried[1], Y[queried[1]])
        except RuntimeError:
            assert loop.n_rounds_trained == 1
            assert loop.labeled()[0] == [*INIT, *queried]  # the labels are kept
        out = loop.query(2)
        assert loop.n_rounds_trained == 2
        loop.close()
        return out

    FlakyLogisticRegression.fits = 0
    flaky = run(tmp_path / "flaky", FlakyLogisticRegression(max_iter=200))
    assert FlakyLogisticRegression.fits == 3
    assert flaky == run(tmp_path / "plain", LogisticRegression(max_iter=200))


def test_skdynal_strategy_scores_are_recorded_without_score_fn(tmp_path):
    from skdynal import MarginSampler

    loop = ResumableLoop.start(
        tmp_path, make_net(), MarginSampler(random_state=0), X, INIT, Y[INIT], random_state=0
    )
    queried = loop.query(3)
    record = loop.journal.open_round()
    proba = np.sort(loop.learner.predict_proba(X[queried]), axis=1)
    np.testing.assert_allclose(record.scores, 1.0 - (proba[:, -1] - proba[:, -2]), rtol=1e-9)
    assert record.strategy.endswith("MarginSampler")
    loop.close()


def test_old_label_names_are_deprecated_aliases(tmp_path):
    loop = start(tmp_path)
    queried = loop.query(3)
    with pytest.warns(FutureWarning, match=r"ResumableLoop\.label is deprecated.*commit_label"):
        assert loop.label(queried[0], Y[queried[0]]) is False
    with pytest.warns(FutureWarning, match=r"label_many is deprecated.*commit_labels"):
        assert loop.label_many(queried[1:], Y[queried[1:]]) is True  # the round completes
    assert loop.n_rounds_trained == 2
    assert loop.labeled()[0] == INIT + queried
    with pytest.raises(JournalError, match="not queried"):  # the alias refuses like the new name
        with pytest.warns(FutureWarning):
            loop.label(queried[0], 1)
    loop.close()


def test_pool_and_count_checks_are_the_shared_ones(tmp_path):
    loop = start(tmp_path / "a")
    for bad, error, match in [
        (0, ValueError, "n_instances must be at least 1"),
        (2.0, TypeError, "n_instances must be an integer"),
        (True, TypeError, "n_instances must be an integer"),
        (len(X), ValueError, "larger than the pool"),
    ]:
        with pytest.raises(error, match=match):
            loop.query(bad)
    assert loop.pending == []  # nothing was recorded
    loop.close()
    X_nan = X.copy()
    X_nan[5, 0] = np.nan
    for pool, error, match in [
        (X_nan, ValueError, "NaN or infinite"),
        (X[:0], ValueError, "X_pool is empty"),
        (np.float32(1.0), ValueError, "scalar"),
        ({"x": X}, TypeError, "one array or tensor"),
    ]:
        with pytest.raises(error, match=match):
            ResumableLoop.start(tmp_path / "b", make_net(), uncertainty_sampling, pool, [], [])
    with pytest.raises(ValueError, match="keep_checkpoints must be an integer >= 1"):
        start(tmp_path / "c", keep_checkpoints=0)
    assert not (tmp_path / "b").exists() and not (tmp_path / "c").exists()
