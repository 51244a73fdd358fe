"""Scoring streams the pool: memory-mapped and Dataset pools, OOM retries, interruptions."""

import subprocess
import sys

import numpy as np
import pytest
import torch
from _nets import fitted_net
from test_common import assert_unchanged, snapshot
from torch.utils.data import TensorDataset

from skdynal import DynamicALSampler
from skdynal._adapter import resolve_learner
from skdynal._streaming import BatchSizeReducedWarning, map_pool


def assert_close_to(scores, expected):
    """Float32 scores from other batch sizes agree up to rounding, relative to the largest."""
    assert np.abs(scores - expected).max() <= 1e-5 * np.abs(expected).max()


def test_memory_mapped_pool_gives_the_same_scores(tmp_path, fitted_mlp, labeled_and_pool):
    X_lab, y_lab, X_pool = labeled_and_pool
    path = tmp_path / "pool.npy"
    np.save(path, X_pool)
    mapped = np.load(path, mmap_mode="r")
    expected = DynamicALSampler().score(fitted_mlp, X_pool, X_labeled=X_lab, y_labeled=y_lab)
    scores = DynamicALSampler(batch_size=16).score(
        fitted_mlp, mapped, X_labeled=X_lab, y_labeled=y_lab
    )
    assert_close_to(scores, expected)


def test_dataset_pool_gives_the_same_scores(fitted_mlp, labeled_and_pool):
    X_lab, y_lab, X_pool = labeled_and_pool
    dataset = TensorDataset(torch.from_numpy(X_pool), torch.zeros(len(X_pool)))
    expected = DynamicALSampler().score(fitted_mlp, X_pool, X_labeled=X_lab, y_labeled=y_lab)
    scores = DynamicALSampler(batch_size=32).score(
        fitted_mlp, dataset, X_labeled=X_lab, y_labeled=y_lab
    )
    assert_close_to(scores, expected)
    indices, _ = DynamicALSampler(random_state=0, selection="top_b").select(
        fitted_mlp, dataset, 5, X_labeled=X_lab, y_labeled=y_lab
    )
    np.testing.assert_array_equal(indices, np.argsort(-expected, kind="stable")[:5])


def test_dataset_pool_with_nan_is_refused(fitted_mlp, labeled_and_pool):
    X_lab, y_lab, X_pool = labeled_and_pool
    X_bad = torch.from_numpy(X_pool.copy())
    X_bad[100, 3] = float("nan")
    dataset = TensorDataset(X_bad, torch.zeros(len(X_bad)))
    with pytest.raises(ValueError, match="NaN or infinite"):
        DynamicALSampler().score(fitted_mlp, dataset, X_labeled=X_lab, y_labeled=y_lab)


def out_of_memory_above(limit, seen):
    """A batch function that fails like CUDA does on batches larger than ``limit``."""

    def batch_fn(X_batch):
        seen.append(len(X_batch))
        if len(X_batch) > limit:
            raise torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")
        return X_batch.sum(dim=1), X_batch[:, :3]

    return batch_fn


def test_out_of_memory_halves_the_batch_and_warns_once(fitted_mlp, labeled_and_pool):
    _, _, X_pool = labeled_and_pool
    seen = []
    with pytest.warns(BatchSizeReducedWarning, match="batch_size=64.*batch_size=16") as record:
        sums, heads = map_pool(
            resolve_learner(fitted_mlp), X_pool, out_of_memory_above(20, seen), batch_size=64
        )
    assert len(record) == 1
    assert seen[:3] == [64, 32, 16] and max(seen[3:]) == 16
    assert sum(seen[2:]) == len(X_pool)
    np.testing.assert_allclose(sums, X_pool.astype(np.float64).sum(axis=1), rtol=1e-6)
    np.testing.assert_array_equal(heads, X_pool[:, :3])


def test_out_of_memory_at_batch_size_one_is_raised(fitted_mlp, labeled_and_pool):
    _, _, X_pool = labeled_and_pool
    with pytest.raises(torch.cuda.OutOfMemoryError):
        map_pool(resolve_learner(fitted_mlp), X_pool, out_of_memory_above(0, []), batch_size=4)


class InterruptsAfter(torch.nn.Module):
    def __init__(self, inner, calls):
        super().__init__()
        self.inner = inner
        self.calls = calls

    def forward(self, X):
        self.calls -= 1
        if self.calls < 0:
            raise KeyboardInterrupt
        return self.inner(X)


def test_keyboard_interrupt_leaves_the_net_unchanged(labeled_and_pool):
    X_lab, y_lab, X_pool = labeled_and_pool
    net = fitted_net(X_lab, y_lab, module__dropout=0.2)
    net.module_ = InterruptsAfter(net.module_, calls=3)
    net.module_.train()
    before = snapshot(net.module_)
    with pytest.raises(KeyboardInterrupt):
        DynamicALSampler(batch_size=10).score(net, X_pool, X_labeled=X_lab, y_labeled=y_lab)
    net.module_.calls = 3
    assert_unchanged(net.module_, before)


@pytest.mark.slow  # a fresh Python process that imports torch
def test_read_only_memory_mapped_pool_raises_no_torch_warning(tmp_path):
    # torch warns once per process, so the check runs in a fresh interpreter.
    script = f"""
import warnings
import subprocess
import sys

import numpy as np
import torch
from skorch import NeuralNetClassifier
from skdynal import DynamicALSampler

rng = np.random.RandomState(0)
X = rng.rand(40, 8).astype(np.float32)
y = np.arange(40) % 3
np.save({str(tmp_path / "pool.npy")!r}, X)
pool = np.load({str(tmp_path / "pool.npy")!r}, mmap_mode="r")
torch.manual_seed(0)
net = NeuralNetClassifier(torch.nn.Linear, module__in_features=8, module__out_features=3,
                          criterion=torch.nn.CrossEntropyLoss, max_epochs=1,
                          train_split=None, verbose=0).fit(X, y)
with warnings.catch_warnings(record=True) as caught:
    warnings.simplefilter("always")
    scores = DynamicALSampler().score(net, pool, X_labeled=X[:10], y_labeled=y[:10])
assert np.isfinite(scores).all() and len(scores) == 40
print([str(w.message) for w in caught])
"""
    proc = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=300
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "not writable" not in proc.stdout + proc.stderr, proc.stdout + proc.stderr
