"""modAL 0.4.x on scikit-learn 1.8 and later (skdynal._modal_compat, issue 14 item 6).

modAL calls ``check_X_y(force_all_finite=...)``; scikit-learn 1.8 accepts only
``ensure_all_finite``. These tests stand in scikit-learn >= 1.8's ``check_X_y`` on any
installed scikit-learn; CI's newest-stack job runs the whole suite on the real one.
"""

import importlib

import numpy as np
import pytest
from modAL.models import ActiveLearner
from sklearn.linear_model import LogisticRegression
from sklearn.utils import check_X_y as sklearn_check_X_y

import skdynal
from skdynal import _modal_compat


def _check_X_y_without_force_all_finite(
    X,
    y,
    accept_sparse=False,
    *,
    dtype="numeric",
    ensure_all_finite=True,
    ensure_2d=True,
    allow_nd=False,
    multi_output=False,
):
    """scikit-learn >= 1.8: the arguments modAL passes, without force_all_finite."""
    _check_X_y_without_force_all_finite.calls.append(ensure_all_finite)
    return sklearn_check_X_y(
        X,
        y,
        accept_sparse=accept_sparse,
        dtype=dtype,
        ensure_2d=ensure_2d,
        allow_nd=allow_nd,
        multi_output=multi_output,
    )


def _modal_module():
    """The modAL module that calls check_X_y (models.base in 0.4.1, learners in 0.4.2)."""
    for name in _modal_compat._MODAL_MODULES:
        module = importlib.import_module(name)
        source = importlib.util.find_spec(name).loader.get_source(name)
        if "force_all_finite=self.force_all_finite" in source:
            return module
    raise AssertionError("the installed modAL no longer passes force_all_finite")


@pytest.fixture
def new_sklearn(monkeypatch):
    """scikit-learn >= 1.8 as modAL sees it, with no shim applied yet."""
    _check_X_y_without_force_all_finite.calls = []
    module = _modal_module()
    monkeypatch.setattr("sklearn.utils.check_X_y", _check_X_y_without_force_all_finite)
    monkeypatch.setattr(module, "check_X_y", _check_X_y_without_force_all_finite)
    return module


def test_needs_patch_reads_the_signature():
    assert _modal_compat.needs_patch(_check_X_y_without_force_all_finite)

    def old(X, y, *, force_all_finite=True, ensure_all_finite=None):
        return X, y

    assert not _modal_compat.needs_patch(old)


def _learner(X, y):
    return ActiveLearner(
        estimator=LogisticRegression(max_iter=50), X_training=X[:40], y_training=y[:40]
    )


def test_modal_fails_without_the_shim(new_sklearn, digits):
    X, y = digits
    with pytest.raises(TypeError, match="force_all_finite"):
        _learner(X, y).teach(X[40:45], y[40:45])


def test_shim_lets_modal_run_and_keeps_the_check(new_sklearn, digits, monkeypatch):
    X, y = digits
    assert _modal_compat.apply() == [new_sklearn.__name__]
    assert _modal_compat.apply() == []  # applied once
    learner = _learner(X, y)
    learner.teach(X[40:45], y[40:45])
    assert len(learner.X_training) == 45
    # modAL's force_all_finite=True reached scikit-learn as ensure_all_finite=True ...
    assert _check_X_y_without_force_all_finite.calls[-1] is True
    # ... and still rejects a NaN.
    X_bad = X[45:50].copy()
    X_bad[0, 0] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        learner.teach(X_bad, y[45:50])


def test_shim_changes_nothing_on_older_scikit_learn(monkeypatch):
    monkeypatch.setattr(_modal_compat, "needs_patch", lambda: False)
    module = _modal_module()
    before = module.check_X_y
    assert _modal_compat.apply() == []
    assert module.check_X_y is before


def test_importing_skdynal_applies_it():
    # skdynal's strategy base class applies the shim on import (the top-level names are
    # lazy, so it is the first strategy that imports it); with the installed scikit-learn it
    # is either unneeded or in place.
    assert skdynal.DynamicALSampler is not None
    module = _modal_module()
    patched = getattr(module.check_X_y, "_skdynal_renames_force_all_finite", False)
    assert patched == _modal_compat.needs_patch()


def test_resumable_loop_applies_the_shim_for_strategies_not_from_skdynal(new_sklearn, tmp_path):
    # ResumableLoop builds modAL's learner itself and need not import skdynal's strategies
    # (a plain modAL query function), so it applies the shim where it builds the learner.
    import torch
    from modAL.uncertainty import uncertainty_sampling
    from skorch import NeuralNetClassifier

    from skdynal.persistence import ResumableLoop

    X = np.random.RandomState(0).randn(30, 4).astype(np.float32)
    y = (X[:, 0] > 0).astype(np.int64)
    net = NeuralNetClassifier(
        torch.nn.Linear,
        module__in_features=4,
        module__out_features=2,
        criterion=torch.nn.CrossEntropyLoss,
        max_epochs=1,
        train_split=None,
        verbose=0,
        warm_start=True,
    )
    loop = ResumableLoop.start(tmp_path, net, uncertainty_sampling, X, np.arange(6), y[:6])
    assert loop.n_rounds_trained == 1
    assert _check_X_y_without_force_all_finite.calls  # modAL went through the shim
    loop.close()
