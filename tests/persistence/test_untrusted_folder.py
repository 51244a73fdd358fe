"""Resuming never runs code from the loop folder: every file it reads is data, and anything
else is refused with an error that names the file (issue 25)."""

import contextlib
import hashlib
import io
import json
import os
import pickle

import numpy as np
import pytest
import torch
from modAL.uncertainty import uncertainty_sampling
from sklearn.linear_model import LogisticRegression

from skdynal import ALBLSampler, MarginSampler, RandomSampler
from skdynal.persistence import (
    CheckpointError,
    ResumableLoop,
    ResumeWarning,
    UntrustedCheckpointError,
)
from skdynal.persistence._checkpoint import list_checkpoints
from skdynal.persistence._state import decode_strategy, encode_strategy, trusted_table

from ._helpers import HalfRandomUncertainty, initial_ids, make_net, make_pool

X, Y = make_pool()
INIT = initial_ids(Y)


class Payload:
    """Unpickling it creates a directory: proof that code from the folder ran."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return os.mkdir, (self.marker,)


def _pickle_payload(marker):
    return pickle.dumps(Payload(marker))


def _torch_payload(marker):
    buffer = io.BytesIO()
    torch.save({"weight": Payload(marker)}, buffer)
    return buffer.getvalue()


def _put(ckpt, name, data):
    """Write ``data`` as ``name`` and list it in the manifest with a matching checksum."""
    (ckpt / name).write_bytes(data)
    manifest = json.loads((ckpt / "MANIFEST.json").read_text())
    manifest["files"][name] = {"sha256": hashlib.sha256(data).hexdigest(), "size": len(data)}
    (ckpt / "MANIFEST.json").write_text(json.dumps(manifest))


def _loop_folder(directory):
    loop = ResumableLoop.start(
        directory,
        make_net(),
        HalfRandomUncertainty(random_state=np.random.RandomState(0)),
        X,
        INIT,
        Y[INIT],
        random_state=3,
    )
    for pool_id in loop.query(4):
        loop.commit_label(pool_id, Y[pool_id])
    loop.close()
    checkpoints = list_checkpoints(directory / "checkpoints")
    assert len(checkpoints) == 2
    return checkpoints


POISONS = {
    # the files of an older skdynal: a pickle is never loaded, whatever the manifest says
    "strategy.pkl": _pickle_payload,
    "estimator.pkl": _pickle_payload,
    # tensors only: torch.load(weights_only=True) refuses the payload
    "params.pt": _torch_payload,
    "optimizer.pt": _torch_payload,
    # JSON files: a pickle there is not JSON
    "history.json": _pickle_payload,
    "strategy.json": lambda marker: json.dumps(
        {"__estimator__": "posix.mkdir", "params": {"path": str(marker)}, "state": {}}
    ).encode(),
}


@pytest.mark.parametrize("name", sorted(POISONS))
def test_a_payload_in_any_file_runs_no_code_and_the_error_names_the_file(tmp_path, name):
    marker = tmp_path / "code-ran"
    for ckpt in _loop_folder(tmp_path / "loop"):  # every checkpoint: no fallback helps
        _put(ckpt, name, POISONS[name](marker))
    assert not marker.exists()
    # the payload really runs when unpickled the old way (the test would catch a regression)
    if name.endswith(".pkl"):
        pickle.loads((ckpt / name).read_bytes())
        assert marker.exists()
        os.rmdir(marker)
    # a file that is not JSON is damage, not a trust question: each checkpoint is skipped
    damaged = pytest.warns(ResumeWarning, match="history") if name == "history.json" else None
    with pytest.raises(CheckpointError, match=name.replace(".", r"\.")) as info:
        with damaged or contextlib.nullcontext():
            ResumableLoop.resume(
                tmp_path / "loop",
                make_net(),
                X,
                query_strategy=HalfRandomUncertainty(random_state=np.random.RandomState(0)),
            )
    assert not marker.exists(), "resume ran code from the folder"
    if name != "history.json":
        assert isinstance(info.value, UntrustedCheckpointError)


def test_a_payload_in_every_file_at_once_runs_no_code(tmp_path):
    marker = tmp_path / "code-ran"
    for ckpt in _loop_folder(tmp_path / "loop"):
        for name, poison in POISONS.items():
            _put(ckpt, name, poison(marker))
    manifest = json.loads((ckpt / "MANIFEST.json").read_text())
    manifest["state"]["estimator_format"] = "pickle"
    (ckpt / "MANIFEST.json").write_text(json.dumps(manifest))
    with pytest.raises(UntrustedCheckpointError, match=r"estimator\.pkl .*never loaded"):
        ResumableLoop.resume(tmp_path / "loop", make_net(), X, trusted=[HalfRandomUncertainty])
    assert not marker.exists()


def test_an_untrusted_strategy_class_is_named_and_not_imported(tmp_path):
    _loop_folder(tmp_path / "loop")
    with pytest.raises(UntrustedCheckpointError) as info:
        ResumableLoop.resume(tmp_path / "loop", make_net(), X)
    message = str(info.value)
    assert "strategy.json names" in message and "HalfRandomUncertainty" in message
    assert "trusted=[<the class>]" in message
    # the caller's instance (or trusted=) makes the class trusted; the saved state wins
    loop = ResumableLoop.resume(
        tmp_path / "loop", make_net(), X, query_strategy=HalfRandomUncertainty(random_state=5)
    )
    assert isinstance(loop.learner.query_strategy.random_state, np.random.RandomState)
    loop.close()


def test_strategy_round_trip_keeps_parameters_and_fitted_state():
    rng = np.random.RandomState(4)
    rng.rand(7)
    albl = ALBLSampler(strategies=[MarginSampler(), RandomSampler(random_state=rng)], delta=0.2)
    albl.log_weights_ = np.array([0.25, -1.5])
    albl.queried_y_ = np.array([3, 1], dtype=np.int64)
    albl.p_min_ = np.float64(0.125)
    albl.history_ = [(0, 1.5), (1, float("nan"))]
    data = json.loads(json.dumps(encode_strategy(albl)))
    back = decode_strategy(data, "strategy.json", trusted_table())
    assert type(back) is ALBLSampler and back.delta == 0.2
    assert [type(s) for s in back.strategies] == [MarginSampler, RandomSampler]
    np.testing.assert_array_equal(back.strategies[1].random_state.rand(3), rng.rand(3))
    np.testing.assert_array_equal(back.log_weights_, [0.25, -1.5])
    assert back.queried_y_.dtype == np.int64 and back.p_min_ == 0.125
    assert back.history_[0] == (0, 1.5) and np.isnan(back.history_[1][1])
    gen = np.random.default_rng(3)
    back = decode_strategy(
        json.loads(json.dumps(encode_strategy(RandomSampler(random_state=gen)))),
        "s.json",
        trusted_table(),
    )
    assert back.random_state.integers(1000) == np.random.default_rng(3).integers(1000)


def test_strategies_a_checkpoint_cannot_hold_are_refused_at_start(tmp_path):
    class Local(HalfRandomUncertainty):
        pass

    with pytest.raises(TypeError, match="defined inside a function"):
        ResumableLoop.start(tmp_path / "a", make_net(), Local(), X, INIT, Y[INIT])
    with pytest.raises(TypeError, match=r"query_strategy\.random_state is a builtins\.object"):
        ResumableLoop.start(
            tmp_path / "b", make_net(), HalfRandomUncertainty(object()), X, INIT, Y[INIT]
        )
    assert not (tmp_path / "a" / "journal.sqlite").exists()
    with pytest.raises(TypeError, match="trusted must list classes"):
        trusted_table(trusted=[MarginSampler()])


def test_a_plain_estimator_is_refitted_not_unpickled(tmp_path):
    def run(directory, stop):
        loop = ResumableLoop.start(
            directory,
            LogisticRegression(max_iter=200),
            uncertainty_sampling,
            X,
            INIT,
            Y[INIT],
            random_state=0,
        )
        for r in range(2):
            if r == stop:
                loop.close()
                with pytest.raises(ValueError, match="pass the estimator again"):
                    ResumableLoop.resume(directory, None, X)
                loop = ResumableLoop.resume(directory, LogisticRegression(max_iter=200), X)
            for pool_id in loop.query(3):
                loop.commit_label(pool_id, Y[pool_id])
        coef = loop.learner.estimator.coef_.copy()
        files = sorted(p.name for p in list_checkpoints(directory / "checkpoints")[0].iterdir())
        loop.close()
        return coef, files

    coef, files = run(tmp_path / "a", stop=None)
    resumed_coef, _ = run(tmp_path / "b", stop=1)
    np.testing.assert_array_equal(coef, resumed_coef)
    assert files == ["MANIFEST.json", "strategy.json"]
