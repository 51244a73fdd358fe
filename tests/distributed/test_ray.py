"""RayScorer on a local Ray instance gives the answer of local scoring.

One Ray instance (2 CPUs) serves the whole module. Skipped when ray is not installed;
deselect with ``-m "not ray"``.
"""

import dataclasses
import importlib.util
import os
import pickle
from pathlib import Path

import numpy as np
import pytest
import torch
from _dying import DiesOnceSampler
from _local_ray import local_ray
from _nets import fitted_net, make_net
from modAL.models import ActiveLearner
from sklearn.base import clone
from sklearn.datasets import load_digits
from torch.utils.data import TensorDataset

from skdynal import (
    BADGESampler,
    BALDSampler,
    CoresetSampler,
    DynamicALSampler,
    EGLSampler,
    EntropySampler,
    InfluenceSampler,
    MarginSampler,
    RandomSampler,
)
from skdynal.distributed import RayScorer

ray = pytest.importorskip("ray")

pytestmark = [pytest.mark.ray, pytest.mark.slow]

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]


@pytest.fixture(scope="module", autouse=True)
def ray_for_this_module():
    # Workers also import the helpers next to this file (_dying.py) by name.
    with local_ray(HERE):
        yield


@pytest.fixture(scope="module")
def data():
    """Float64 digits: 60 labeled rows, a pool of 300, and a net fitted in float64."""
    X, y = load_digits(return_X_y=True)
    X = X / 16.0
    net = fitted_net(X[:60], y[:60], module__dtype=torch.float64)
    return net, X[:60], y[:60], X[60:360]


TOP_K = [
    DynamicALSampler(random_state=0, selection="top_b"),
    EGLSampler(random_state=0),
    InfluenceSampler(random_state=0),
    MarginSampler(random_state=0),
    EntropySampler(random_state=0),
]
GLOBAL = [
    BADGESampler(random_state=0),
    CoresetSampler(random_state=0),
    DynamicALSampler(selection="class_balanced", random_state=0),
    DynamicALSampler(selection="kmeans++", random_state=0),
    DynamicALSampler(selection="farthest_first", n_candidates=40, random_state=0),
    DynamicALSampler(selection="power", random_state=0),
    DynamicALSampler(selection="softrank", random_state=0),
]


def _strategy_id(strategy):
    selection = getattr(strategy, "selection", "top_b")
    return type(strategy).__name__ + ("" if selection == "top_b" else f"-{selection}")


@pytest.mark.parametrize("strategy", TOP_K + GLOBAL, ids=_strategy_id)
def test_same_indices_and_scores_as_local(strategy, data):
    net, X_lab, y_lab, X_pool = data
    expected, expected_scores = clone(strategy).select(
        net, X_pool, 12, X_labeled=X_lab, y_labeled=y_lab
    )
    # 300 rows in shards of 64 (rounded from 50 to the batch size 32): 5 shards, 2 at a time.
    ray_scorer = RayScorer(clone(strategy), n_workers=2, shard_size=50)
    indices, scores = ray_scorer.select(net, X_pool, 12, X_labeled=X_lab, y_labeled=y_lab)
    np.testing.assert_array_equal(indices, expected)
    np.testing.assert_allclose(scores, expected_scores, rtol=1e-12, atol=0)


@pytest.mark.parametrize("strategy", TOP_K[:1] + TOP_K[3:4], ids=lambda s: type(s).__name__)
def test_score_equals_local_score(strategy, data):
    net, X_lab, y_lab, X_pool = data
    expected = strategy.score(net, X_pool, X_labeled=X_lab, y_labeled=y_lab)
    scores = RayScorer(strategy, shard_size=70).score(
        net, X_pool, X_labeled=X_lab, y_labeled=y_lab
    )
    assert scores.shape == (300,)
    np.testing.assert_allclose(scores, expected, rtol=1e-12, atol=0)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_ties_broken_as_locally(seed, data):
    net, X_lab, _, _ = data
    # 12 copies of each of 10 rows, scattered over 4 shards: the top 15 is decided by ties.
    X_pool = np.repeat(X_lab[:10], 12, axis=0)[np.random.RandomState(7).permutation(120)]
    strategy = MarginSampler(random_state=seed)
    scores = strategy.score(net, X_pool)
    assert len(np.unique(scores)) <= 10
    expected, _ = strategy.select(net, X_pool, 15)
    indices, _ = RayScorer(strategy, shard_size=32).select(net, X_pool, 15)
    np.testing.assert_array_equal(indices, expected)
    if seed:
        first, _ = MarginSampler(random_state=0).select(net, X_pool, 15)
        assert first.tolist() != expected.tolist()


def test_wrapper_random_state_overrides_the_strategys(data):
    net, X_lab, _, _ = data
    X_pool = np.repeat(X_lab[:10], 12, axis=0)
    expected, _ = MarginSampler(random_state=5).select(net, X_pool, 15)
    indices, _ = RayScorer(MarginSampler(random_state=0), random_state=5).select(net, X_pool, 15)
    np.testing.assert_array_equal(indices, expected)


def test_npy_path_and_memmap_pools(data, tmp_path):
    net, X_lab, y_lab, X_pool = data
    path = tmp_path / "pool.npy"
    np.save(path, X_pool)
    strategy = DynamicALSampler(random_state=0, selection="top_b")
    expected, expected_scores = strategy.select(net, X_pool, 10, X_labeled=X_lab, y_labeled=y_lab)
    scorer = RayScorer(strategy, shard_size=100)
    for pool in (str(path), path, np.load(path, mmap_mode="r")):
        indices, scores = scorer.select(net, pool, 10, X_labeled=X_lab, y_labeled=y_lab)
        np.testing.assert_array_equal(indices, expected)
        np.testing.assert_allclose(scores, expected_scores, rtol=1e-12, atol=0)


def test_deinfluence_selection_as_local(data, tmp_path):
    net, X_lab, y_lab, X_pool = data
    # Duplicated rows add ties to the later chunks; a .npy path pool makes the driver read
    # the chosen chunks' rows from the file.
    X_pool = np.concatenate([X_pool, X_pool[:40]])
    path = tmp_path / "pool.npy"
    np.save(path, X_pool)
    strategy = DynamicALSampler(selection="deinfluence", chunk_size=4, random_state=3)
    expected, expected_scores = strategy.select(net, X_pool, 11, X_labeled=X_lab, y_labeled=y_lab)
    plain, _ = DynamicALSampler(random_state=3, selection="top_b").select(
        net, X_pool, 11, X_labeled=X_lab, y_labeled=y_lab
    )
    assert expected.tolist() != plain.tolist()
    for pool in (X_pool, str(path)):
        indices, scores = RayScorer(strategy, shard_size=100).select(
            net, pool, 11, X_labeled=X_lab, y_labeled=y_lab
        )
        np.testing.assert_array_equal(indices, expected)
        np.testing.assert_allclose(scores, expected_scores, rtol=1e-12, atol=0)


def test_dataset_and_tensor_pools(data):
    net, X_lab, y_lab, X_pool = data
    strategy = BADGESampler(random_state=0)
    expected, _ = strategy.select(net, X_pool, 8, X_labeled=X_lab, y_labeled=y_lab)
    tensor = torch.from_numpy(X_pool)
    for pool in (tensor, TensorDataset(tensor, torch.zeros(len(X_pool)))):
        indices, _ = RayScorer(strategy, shard_size=100).select(net, pool, 8)
        np.testing.assert_array_equal(indices, expected)


@pytest.mark.gpu
def test_gpu_workers_match_local_cpu_scoring(data):
    net, X_lab, y_lab, X_pool = data
    strategy = DynamicALSampler(random_state=0, selection="top_b")
    expected, expected_scores = strategy.select(net, X_pool, 10, X_labeled=X_lab, y_labeled=y_lab)
    indices, scores = RayScorer(strategy, n_gpus_per_worker=0.5).select(
        net, X_pool, 10, X_labeled=X_lab, y_labeled=y_lab
    )
    assert net.device == "cpu"
    np.testing.assert_array_equal(indices, expected)
    np.testing.assert_allclose(scores, expected_scores, rtol=1e-9)


def test_non_finite_values_in_a_file_pool_are_found_by_workers(data, tmp_path):
    net, _, _, X_pool = data
    X_bad = X_pool.copy()
    X_bad[250, 3] = np.nan
    path = tmp_path / "bad.npy"
    np.save(path, X_bad)
    with pytest.raises(ValueError, match="NaN or infinite"):
        RayScorer(EGLSampler(), shard_size=100).select(net, path, 3)


@pytest.mark.parametrize("strategy", [EGLSampler(), GLOBAL[2]], ids=_strategy_id)
def test_overflow_inside_the_model_is_explained_as_locally(strategy, data):
    net, X_lab, y_lab, X_pool = data
    X_big = X_pool.copy()
    X_big[250] = 1e300  # finite, but the float64 net overflows on it (row 250: 4th shard)
    with pytest.raises(ValueError) as local:
        strategy.select(net, X_big, 3, X_labeled=X_lab, y_labeled=y_lab)
    assert "pool row 250" in str(local.value)
    with pytest.raises(ValueError) as remote:
        RayScorer(strategy, shard_size=64).select(net, X_big, 3, X_labeled=X_lab, y_labeled=y_lab)
    assert str(remote.value) == str(local.value)


def test_a_workers_error_is_the_local_error_with_the_workers_traceback_as_cause(data):
    net, _, _, X_pool = data
    X_bad = X_pool.copy()
    X_bad[250, 3] = np.nan  # a Dataset's rows are checked as they are read: on a worker
    pool = TensorDataset(torch.from_numpy(X_bad), torch.zeros(len(X_bad)))
    with pytest.raises(ValueError) as local:
        EGLSampler().select(net, pool, 3)
    with pytest.raises(ValueError) as remote:
        RayScorer(EGLSampler(), shard_size=64).select(net, pool, 3)
    assert type(remote.value) is ValueError and str(remote.value) == str(local.value)
    assert isinstance(remote.value.__cause__, ray.exceptions.RayTaskError)
    assert "check_finite_batch" in str(remote.value.__cause__)  # the worker's traceback


def test_missing_file(data, tmp_path):
    net, _, _, _ = data
    with pytest.raises(FileNotFoundError, match="not a file"):
        RayScorer(EGLSampler()).select(net, tmp_path / "absent.npy", 3)


def test_modal_active_learner_rounds_match_local():
    X, y = load_digits(return_X_y=True)
    X, X_pool, y_pool = X[:40] / 16.0, X[200:400] / 16.0, y[200:400]
    chosen = {}
    for name, strategy in [
        ("local", EGLSampler(random_state=0)),
        ("ray", RayScorer(EGLSampler(random_state=0), shard_size=60)),
    ]:
        torch.manual_seed(0)
        learner = ActiveLearner(
            estimator=make_net(max_epochs=2, module__dtype=torch.float64),
            query_strategy=strategy,
            X_training=X,
            y_training=y[:40],
        )
        remaining = np.arange(len(X_pool))
        rounds = []
        for _ in range(2):
            idx, X_query = learner.query(X_pool[remaining], n_instances=6)
            idx = np.asarray(idx)
            np.testing.assert_array_equal(X_query, X_pool[remaining][idx])
            rounds.append(remaining[idx].tolist())
            learner.teach(X_query, y_pool[remaining][idx])
            remaining = np.delete(remaining, idx)
        chosen[name] = rounds
    assert chosen["ray"] == chosen["local"]


def test_net_left_unchanged(data):
    net, X_lab, y_lab, X_pool = data
    net.module_.train()
    before = {k: v.clone() for k, v in net.module_.state_dict().items()}
    RayScorer(DynamicALSampler(selection="top_b")).select(
        net, X_pool, 5, X_labeled=X_lab, y_labeled=y_lab
    )
    assert net.module_.training
    assert net.device == "cpu" and len(net.callbacks_) > 0 and len(net.history_) > 0
    for key, value in net.module_.state_dict().items():
        assert torch.equal(value, before[key])
    net.module_.eval()


def test_module_class_defined_in_a_function(data):
    _, X_lab, y_lab, X_pool = data

    class LocalModule(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.hidden = torch.nn.Linear(64, 8, dtype=torch.float64)
            self.out = torch.nn.Linear(8, 10, dtype=torch.float64)

        def forward(self, X):
            return self.out(torch.tanh(self.hidden(X)))

    torch.manual_seed(0)
    net = make_net(module=LocalModule).fit(X_lab, y_lab)
    with pytest.raises((AttributeError, pickle.PicklingError)):
        pickle.dumps(net)  # skorch's own pickling cannot ship this class
    expected, expected_scores = EGLSampler(random_state=0).select(net, X_pool, 6)
    indices, scores = RayScorer(EGLSampler(random_state=0), shard_size=100).select(net, X_pool, 6)
    np.testing.assert_array_equal(indices, expected)
    np.testing.assert_allclose(scores, expected_scores, rtol=1e-12, atol=0)


@pytest.mark.parametrize(
    "strategy", [BALDSampler(), RandomSampler()], ids=lambda s: type(s).__name__
)
def test_strategies_that_cannot_be_sharded(strategy, data):
    net, X_lab, y_lab, X_pool = data
    with pytest.raises(TypeError, match="cannot be split into shards"):
        RayScorer(strategy).select(net, X_pool, 3, X_labeled=X_lab, y_labeled=y_lab)


class UnshardableCoreset(CoresetSampler):
    def capabilities(self):
        return dataclasses.replace(super().capabilities(), shardable=False)


def test_strategies_that_declare_themselves_unshardable(data):
    net, X_lab, y_lab, X_pool = data
    with pytest.raises(TypeError, match="UnshardableCoreset cannot be split into shards"):
        RayScorer(UnshardableCoreset()).select(net, X_pool, 3, X_labeled=X_lab, y_labeled=y_lab)


def test_score_needs_a_scoring_strategy(data):
    net, _, _, X_pool = data
    with pytest.raises(TypeError, match="use select"):
        RayScorer(BADGESampler()).score(net, X_pool)


@pytest.mark.parametrize(
    ("params", "match"),
    [
        ({"n_workers": 0}, "'n_workers' parameter of RayScorer"),
        ({"n_cpus_per_worker": 0}, "'n_cpus_per_worker' parameter of RayScorer"),
        ({"n_gpus_per_worker": -1}, "'n_gpus_per_worker' parameter of RayScorer"),
        ({"shard_size": 0}, "'shard_size' parameter of RayScorer"),
        ({"max_retries": -1}, "'max_retries' parameter of RayScorer"),
        ({"strategy": "margin"}, "'strategy' parameter of RayScorer"),
    ],
)
def test_bad_parameters(params, match, data):
    net, _, _, X_pool = data
    with pytest.raises(ValueError, match=match):
        RayScorer(**{"strategy": EGLSampler(), **params}).select(net, X_pool, 3)


def test_one_name_per_resource_parameter():
    """The package was never released: no aliases of the resource parameters."""
    assert set(RayScorer().get_params(deep=False)) == {
        "strategy",
        "n_workers",
        "n_cpus_per_worker",
        "n_gpus_per_worker",
        "shard_size",
        "max_retries",
        "address",
        "random_state",
    }
    with pytest.raises(TypeError, match="num_workers"):
        RayScorer(num_workers=2)


def test_deinfluence_passes_run_on_the_shards(data):
    """The de-influence selection's further passes go through the Ray pool's ``map``."""
    net, X_lab, y_lab, X_pool = data
    calls = []

    class Recording(DynamicALSampler):
        def select_from_outputs(self, adapter, state, outputs, n_instances, random_state, pool):
            calls.append(type(pool).__name__)
            return super().select_from_outputs(
                adapter, state, outputs, n_instances, random_state, pool
            )

    strategy = Recording(selection="deinfluence", chunk_size=3, random_state=1)
    expected = DynamicALSampler(selection="deinfluence", chunk_size=3, random_state=1).select(
        net, X_pool, 7, X_labeled=X_lab, y_labeled=y_lab
    )
    got = RayScorer(strategy, shard_size=100).select(
        net, X_pool, 7, X_labeled=X_lab, y_labeled=y_lab
    )
    assert calls == ["RayPool"]
    np.testing.assert_array_equal(got[0], expected[0])
    np.testing.assert_allclose(got[1], expected[1], rtol=1e-12, atol=0)


def test_input_errors_as_local(data):
    net, X_lab, y_lab, X_pool = data
    with pytest.raises(ValueError, match="needs the labeled set"):
        RayScorer().select(net, X_pool, 3)
    with pytest.raises(ValueError, match=r"\(63,\).*\(64,\)"):
        RayScorer().select(net, X_pool[:, :63], 3, X_labeled=X_lab, y_labeled=y_lab)
    with pytest.raises(ValueError, match="n_instances"):
        RayScorer(EGLSampler()).select(net, X_pool, 301)
    X_bad = X_pool.copy()
    X_bad[0, 0] = np.inf
    with pytest.raises(ValueError, match="NaN or infinite"):
        RayScorer(EGLSampler()).select(net, X_bad, 3)


def test_clone_and_params():
    scorer = RayScorer(EGLSampler(batch_size=16), n_workers=3, random_state=0)
    cloned = clone(scorer)
    assert cloned.get_params()["strategy__batch_size"] == 16
    assert cloned.set_params(strategy__batch_size=8).strategy.batch_size == 8
    assert scorer.strategy.batch_size == 16
    assert RayScorer().capabilities().needs_labeled
    assert not RayScorer(EGLSampler()).capabilities().needs_labeled


def test_docs_example_runs_on_the_local_instance():
    spec = importlib.util.spec_from_file_location(
        "ray_scoring_example", ROOT / "examples" / "ray_scoring.py"
    )
    example = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(example)
    indices, scores = example.main(n_instances=15)  # asserts equality with local itself
    assert len(set(indices.tolist())) == 15
    # the default class-balanced batch: within each turn the classes go best first, so the
    # first turn's scores (one row per pseudo class) are in descending order
    assert np.all(np.isfinite(scores)) and scores[0] == scores.max()


def test_the_strategy_of_the_writing_a_strategy_page(data):
    """The ten-line example of docs/writing_a_strategy.md, as the page says: same rows."""
    from _doc_example import PseudoLabelLossSampler

    net, _, _, X_pool = data
    local, local_scores = PseudoLabelLossSampler(random_state=0).select(net, X_pool, 10)
    scorer = RayScorer(PseudoLabelLossSampler(random_state=0), shard_size=40)
    remote, remote_scores = scorer.select(net, X_pool, 10)
    np.testing.assert_array_equal(remote, local)
    np.testing.assert_array_equal(remote_scores, local_scores)


# Last: these end worker processes, and Ray needs seconds to start new ones.


def test_worker_killed_mid_round_gives_the_same_answer(data, tmp_path):
    net, X_lab, y_lab, X_pool = data
    marker = str(tmp_path / "died")
    expected, expected_scores = DynamicALSampler(random_state=0, selection="top_b").select(
        net, X_pool, 10, X_labeled=X_lab, y_labeled=y_lab
    )
    dying = DiesOnceSampler(marker=marker, random_state=0)
    indices, scores = RayScorer(dying, shard_size=96, max_retries=2).select(
        net, X_pool, 10, X_labeled=X_lab, y_labeled=y_lab
    )
    assert os.path.exists(marker)  # one worker did die
    scored_rows = [int(line) for line in Path(marker + ".log").read_text().split()]
    # shards of 96 rows in batches of 32, the last one 12 rows: every batch scored exactly
    # once after the death
    assert sorted(scored_rows) == [12] + [32] * 9
    np.testing.assert_array_equal(indices, expected)
    np.testing.assert_allclose(scores, expected_scores, rtol=1e-12, atol=0)


def test_without_retries_the_dead_worker_fails_the_round(data, tmp_path):
    net, X_lab, y_lab, X_pool = data
    dying = DiesOnceSampler(marker=str(tmp_path / "died"), random_state=0)
    with pytest.raises(ray.exceptions.WorkerCrashedError):
        RayScorer(dying, max_retries=0).select(net, X_pool, 10, X_labeled=X_lab, y_labeled=y_lab)
