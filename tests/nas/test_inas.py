"""iNAS: candidate generator, families, hold-out split and the INASLearner contract."""

import inspect
import itertools
from typing import ClassVar

import numpy as np
import pytest
import torch
from _strategy_settings import net_params
from modAL.models import ActiveLearner
from modAL.uncertainty import margin_sampling
from skorch import NeuralNetClassifier

import skdynal
from skdynal import BALDSampler, CoresetSampler, DynamicALSampler, MarginSampler
from skdynal._base import BaseQueryStrategy
from skdynal.models import MLP
from skdynal.nas import (
    CNNFamily,
    INASLearner,
    MLPFamily,
    ResNetFamily,
    StackedMLP,
    candidate_structures,
    holdout_split,
    set_architecture,
)

# ----------------------------------------------------------------------------- generator


def test_candidates_from_smallest_match_the_paper():
    # [1] -> [1], [2], [1, 1] in the paper's list notation.
    assert candidate_structures((1, 1)) == [(1, 1), (2, 1), (1, 2)]


@pytest.mark.parametrize(
    ("structure", "expected"),
    [
        ((2, 1), [(2, 1), (3, 1), (2, 2)]),  # [2] -> [3], [2, 2]
        ((1, 2), [(1, 2), (2, 2), (1, 3)]),  # 2 blocks over 3 stacks: floor(2/3) + 1 = 1
        ((3, 2), [(3, 2), (4, 2), (3, 3)]),  # floor(6/3) + 1 = 3
        ((4, 3), [(4, 3), (5, 3), (4, 4)]),  # floor(12/4) + 1 = 4
        ((5, 4), [(5, 4), (6, 4), (5, 5)]),  # floor(20/5) + 1 = 5
        ((2, 3), [(2, 3), (3, 3), (2, 4)]),  # floor(6/4) + 1 = 2
    ],
)
def test_candidates_on_known_structures(structure, expected):
    assert candidate_structures(structure) == expected


def test_caps_are_respected():
    assert candidate_structures((3, 2), max_blocks=3, max_stacks=5) == [(3, 2), (3, 3)]
    assert candidate_structures((3, 2), max_blocks=12, max_stacks=2) == [(3, 2), (4, 2)]
    assert candidate_structures((3, 2), max_blocks=3, max_stacks=2) == [(3, 2)]
    with pytest.raises(ValueError, match="outside the search space"):
        candidate_structures((4, 2), max_blocks=3, max_stacks=5)


def test_every_path_grows_monotonically_and_stays_inside_the_caps():
    max_blocks, max_stacks = 4, 3
    frontier, seen = [(1, 1)], {(1, 1)}
    while frontier:
        structure = frontier.pop()
        candidates = candidate_structures(structure, max_blocks, max_stacks)
        assert candidates[0] == structure
        for blocks, stacks in candidates[1:]:
            assert blocks * stacks > structure[0] * structure[1]  # more blocks in total
            assert stacks >= structure[1]  # never fewer stacks
            assert 1 <= blocks <= max_blocks and 1 <= stacks <= max_stacks
            if (blocks, stacks) not in seen:
                seen.add((blocks, stacks))
                frontier.append((blocks, stacks))
    # The walk from (1, 1) reaches the largest member of the capped space.
    assert (max_blocks, max_stacks) in seen


@pytest.mark.parametrize("bad", [(0, 1), (1, 0), (1.5, 1), (True, 1), "ab", 3])
def test_bad_structures_are_rejected(bad):
    with pytest.raises((TypeError, ValueError), match="structure"):
        candidate_structures(bad)


# ----------------------------------------------------------------------------- families


def test_resnet_family_halves_resolution_and_doubles_width_per_stack():
    family = ResNetFamily(in_channels=1, n_classes=7, width=4)
    module = family((2, 3))
    features = module.body(module.stem(torch.zeros(2, 1, 28, 28)))
    # Stem pools 28 -> 14, then stacks 2 and 3 halve it: 14, 7, 4.
    assert features.shape == (2, 16, 4, 4)
    assert module(torch.zeros(2, 1, 28, 28)).shape == (2, 7)
    assert len(module.body) == 6  # 3 stacks x 2 residual blocks
    assert family((1, 1))(torch.zeros(2, 1, 32, 32)).shape == (2, 7)


@pytest.mark.parametrize("size", [28, 32])
def test_cnn_family_for_small_images(size):
    module = CNNFamily(in_channels=3, width=4, head_pool=2)((2, 3))
    features = module.body(module.stem(torch.zeros(2, 3, size, size)))
    # Stem pools to size / 2, stacks 2 and 3 halve it again (rounding up).
    assert features.shape == (2, 16, -(-size // 8), -(-size // 8))
    assert module(torch.zeros(2, 3, size, size)).shape == (2, 10)
    convs = [m for m in module.modules() if isinstance(m, torch.nn.Conv2d)]
    assert [c.out_channels for c in convs] == [4, 4, 4, 8, 8, 16, 16]
    assert module.head[-1].in_features == 16 * 2 * 2


def test_mlp_family_parameter_counts():
    family = MLPFamily(n_features=64, n_classes=10, width=16)
    # (1, 1): 64*16+16 + 16*10+10; (2, 1) adds a residual 16x16 layer; (1, 2) widens to 32.
    assert family.n_parameters((1, 1)) == 64 * 16 + 16 + 16 * 10 + 10
    assert family.n_parameters((2, 1)) == family.n_parameters((1, 1)) + 16 * 16 + 16
    assert family.n_parameters((1, 2)) == 64 * 16 + 16 + 16 * 32 + 32 + 32 * 10 + 10
    assert isinstance(family((1, 1)), StackedMLP)


def test_set_architecture_replaces_module_and_drops_stale_module_params():
    net = NeuralNetClassifier(MLP, module__hidden=(8,), criterion=torch.nn.CrossEntropyLoss)
    net.initialize()
    set_architecture(net, MLPFamily(width=8), (2, 1))
    assert "module__hidden" not in net.get_params()
    assert isinstance(net.module_, StackedMLP)
    assert net.get_params()["module__blocks"] == 2


# ----------------------------------------------------------------------------- hold-out


def test_holdout_split_is_disjoint_stratified_and_seeded():
    y = np.repeat(np.arange(5), 10)
    train, held = holdout_split(y, holdout=0.2, random_state=3)
    assert len(held) == 10 and len(train) == 40
    assert np.intersect1d(train, held).size == 0
    assert np.array_equal(np.union1d(train, held), np.arange(50))
    assert np.array_equal(np.bincount(y[held]), np.full(5, 2))
    again = holdout_split(y, holdout=0.2, random_state=3)
    assert np.array_equal(again[1], held)
    with pytest.raises(ValueError, match="holdout"):
        holdout_split(y, holdout=1.0)
    with pytest.raises(ValueError, match="cannot be split"):
        holdout_split(np.array([1]), holdout=0.2)


# ----------------------------------------------------------------------------- learner


def make_net(net_class=NeuralNetClassifier, epochs=20):
    return net_class(
        MLP,  # replaced by the family's members
        module__hidden=(8,),
        criterion=torch.nn.CrossEntropyLoss,
        optimizer=torch.optim.Adam,
        lr=0.02,
        max_epochs=epochs,
        batch_size=32,
        train_split=None,
        iterator_train__shuffle=True,
        verbose=0,
    )


@pytest.fixture
def split(digits):
    X, y = digits
    return X[:60], y[:60], X[60:360], y[60:360]


def make_learner(split, strategy=margin_sampling, random_state=0, **kwargs):
    X_lab, y_lab, _, _ = split
    estimator = kwargs.pop("estimator", None) or make_net()
    params = dict(family=MLPFamily(width=16), candidate_epochs=3, random_state=random_state)
    params.update(kwargs)
    return INASLearner(
        estimator=estimator,
        query_strategy=strategy,
        X_training=X_lab,
        y_training=y_lab,
        **params,
    )


def run_loop(learner, split, rounds=2, n_query=20):
    _, _, X_pool, y_pool = split
    pool = np.arange(len(X_pool))
    for _ in range(rounds):
        idx, _ = learner.query(X_pool[pool], n_instances=n_query)
        idx = np.asarray(idx)
        assert len(np.unique(idx)) == n_query
        learner.teach(X_pool[pool[idx]], y_pool[pool[idx]])
        pool = np.delete(pool, idx)
    return learner


def test_is_a_modal_active_learner_and_records_the_initial_search(split):
    learner = make_learner(split)
    assert isinstance(learner, ActiveLearner)
    assert learner.structures_ == [learner.structure_]
    (record,) = learner.search_history_
    assert record["n_labeled"] == 60
    assert (record["n_search_train"], record["n_holdout"]) == (48, 12)
    (step,) = record["steps"]
    assert step["start"] == (1, 1)
    assert [c["structure"] for c in step["candidates"]] == [(1, 1), (2, 1), (1, 2)]
    accuracies = [c["holdout_accuracy"] for c in step["candidates"]]
    # The chosen one is the first candidate with the best hold-out accuracy.
    assert step["chosen"] == step["candidates"][int(np.argmax(accuracies))]["structure"]
    assert record["structure"] == step["chosen"] == learner.structure_
    for accuracy in accuracies:  # accuracies on 12 held-out labels
        assert round(accuracy * 12) == pytest.approx(accuracy * 12)
    assert all(c["seconds"] > 0 for c in step["candidates"])


class RecordingNet(NeuralNetClassifier):
    """Records every array it is fitted on or asked to predict."""

    seen: ClassVar[list] = []

    def fit(self, X, y=None, **kwargs):
        RecordingNet.seen.append(("fit", np.asarray(X).copy()))
        return super().fit(X, y, **kwargs)

    def predict(self, X):
        RecordingNet.seen.append(("predict", np.asarray(X).copy()))
        return super().predict(X)


def test_search_sees_only_the_labeled_training_set(split):
    X_pool, y_pool = split[2], split[3]
    RecordingNet.seen = []
    learner = make_learner(split, estimator=make_net(RecordingNet))
    learner.teach(X_pool[:20], y_pool[:20])
    labeled = {row.tobytes() for row in learner.X_training}
    pool_rest = {row.tobytes() for row in X_pool[20:]}
    fits = [X for kind, X in RecordingNet.seen if kind == "fit"]
    predicts = [X for kind, X in RecordingNet.seen if kind == "predict"]
    # Two fits (initial, teach): three candidates and the final net each.
    assert len(fits) == 8 and len(predicts) == 6
    for X in fits + predicts:
        rows = {row.tobytes() for row in X}
        assert rows <= labeled
        assert not rows & pool_rest
    # Candidates train on 80% of the labeled set, are scored on the other 20%.
    assert [len(X) for X in fits[:4]] == [48, 48, 48, 60]
    assert [len(X) for X in predicts[:3]] == [12, 12, 12]
    held = {row.tobytes() for row in predicts[0]}
    assert not held & {row.tobytes() for row in fits[0]}
    assert [len(X) for X in fits[4:]] == [64, 64, 64, 80]


def test_same_seed_same_structures_and_history(split):
    histories = []
    for _ in range(2):
        learner = run_loop(make_learner(split, random_state=7), split, rounds=2)
        histories.append(
            (
                learner.structures_,
                [
                    [c["holdout_accuracy"] for s in r["steps"] for c in s["candidates"]]
                    for r in learner.search_history_
                ],
                learner.estimator.predict_proba(split[2][:50]),
            )
        )
    assert histories[0][0] == histories[1][0]
    assert histories[0][1] == histories[1][1]
    np.testing.assert_array_equal(histories[0][2], histories[1][2])


def test_seed_does_not_depend_on_global_rng(split):
    torch.manual_seed(1)
    np.random.seed(1)  # noqa: NPY002
    a = make_learner(split, random_state=3)
    torch.manual_seed(2)
    np.random.seed(2)  # noqa: NPY002
    b = make_learner(split, random_state=3)
    np.testing.assert_array_equal(
        a.estimator.predict_proba(split[2][:20]), b.estimator.predict_proba(split[2][:20])
    )


@pytest.mark.parametrize(
    "strategy",
    [
        margin_sampling,
        MarginSampler(),
        DynamicALSampler(selection="top_b"),
        CoresetSampler(random_state=0),
        BALDSampler(n_samples=4, random_state=0),
    ],
    ids=["modal-margin", "margin", "dynamical", "coreset", "bald"],
)
def test_short_loop_with_strategies(split, strategy):
    learner = make_learner(split, strategy=strategy, family=MLPFamily(width=16, dropout=0.1))
    run_loop(learner, split, rounds=2, n_query=20)
    assert len(learner.structures_) == 3
    assert learner.X_training.shape == (100, 64)
    for before, after in itertools.pairwise(learner.structures_):
        assert after[0] * after[1] >= before[0] * before[1] and after[1] >= before[1]
    accuracy = np.mean(learner.predict(split[2]) == split[3])
    assert accuracy > 0.5  # 100 labels, 20 epochs: well above chance (0.1)


def test_teach_leaves_learner_ready_for_next_query(split):
    learner = make_learner(split, max_blocks=3, max_stacks=3, search_steps=2)
    _, _, X_pool, y_pool = split
    for n in (80, 100):
        idx, _ = learner.query(X_pool[:200], n_instances=20)
        learner.teach(X_pool[idx], y_pool[idx])
        X_pool = np.delete(X_pool, idx, axis=0)
        y_pool = np.delete(y_pool, idx)
        assert learner.X_training.shape[0] == n
        net = learner.estimator
        assert net.initialized_ and isinstance(net.module_, StackedMLP)
        blocks, stacks = learner.structures_[-1]
        assert (net.module__blocks, net.module__stacks) == (blocks, stacks)
        linears = [m for m in net.module_.modules() if isinstance(m, torch.nn.Linear)]
        assert len(linears) == blocks * stacks + 1
        # The final net is trained on every label so far.
        assert net.history[-1]["train_batch_count"] == -(-n // 32)
        assert len(learner.search_history_[-1]["steps"]) in (1, 2)
    assert np.asarray(learner.query(X_pool, n_instances=5)[0]).shape == (5,)


def test_caps_of_one_keep_the_smallest_structure(split):
    learner = run_loop(make_learner(split, max_blocks=1, max_stacks=1), split, rounds=1)
    assert learner.structures_ == [(1, 1), (1, 1)]
    for record in learner.search_history_:
        assert [c["structure"] for c in record["steps"][0]["candidates"]] == [(1, 1)]


def test_search_steps_zero_is_a_fixed_architecture(split):
    learner = make_learner(split, search_steps=0, initial_structure=(2, 3))
    run_loop(learner, split, rounds=1)
    assert learner.structures_ == [(2, 3), (2, 3)]
    assert learner.search_history_[0]["steps"] == []


def test_plain_callable_family(split):
    def family(structure):
        return StackedMLP(*structure, width=4)

    learner = run_loop(make_learner(split, family=family), split, rounds=1)
    assert isinstance(learner.estimator.module_.member, StackedMLP)
    linears = [m for m in learner.estimator.module_.modules() if isinstance(m, torch.nn.Linear)]
    blocks, stacks = learner.structure_
    assert len(linears) == blocks * stacks + 1


def test_bad_parameters(split):
    with pytest.raises(TypeError, match="family"):
        make_learner(split, family=None)
    with pytest.raises(ValueError, match="holdout"):
        make_learner(split, holdout=1.5)
    with pytest.raises(ValueError, match="outside the search space"):
        make_learner(split, initial_structure=(3, 1), max_blocks=2)
    learner = make_learner(split)
    with pytest.raises(ValueError, match="only_new"):
        learner.teach(split[2][:5], split[3][:5], only_new=True)


def _exported_strategies():
    return [
        getattr(skdynal, name)
        for name in skdynal.__all__
        if inspect.isclass(getattr(skdynal, name))
        and issubclass(getattr(skdynal, name), BaseQueryStrategy)
    ]


@pytest.mark.parametrize("strategy_class", _exported_strategies(), ids=lambda c: c.__name__)
def test_every_exported_strategy_queries_from_the_searched_net(split, strategy_class):
    net_class = net_params(strategy_class).get("net_class", NeuralNetClassifier)
    strategy = strategy_class(random_state=0)
    learner = make_learner(
        split,
        strategy=strategy,
        estimator=make_net(net_class, epochs=3),
        family=MLPFamily(width=16, dropout=0.1),
    )
    run_loop(learner, split, rounds=1, n_query=10)
    assert learner.X_training.shape == (70, 64)
    assert len(learner.structures_) == 2


def test_same_estimator_object_retrained_from_scratch_even_when_warm_started(split):
    # The runner keeps a reference to the net it built and measures it after every round.
    net = make_net(epochs=6)
    net.set_params(warm_start=True)
    learner = make_learner(split, estimator=net, search_steps=0)
    first = {k: v.clone() for k, v in net.module_.state_dict().items()}
    run_loop(learner, split, rounds=1)
    assert learner.estimator is net
    assert len(net.history) == 6  # a fresh fit, not 6 more epochs on top of the last one
    assert net.warm_start is True
    for key, value in net.module_.state_dict().items():
        assert not torch.equal(value, first[key]), key


@pytest.mark.parametrize("family", [CNNFamily(width=4), ResNetFamily(in_channels=1, width=4)])
def test_image_families_in_a_short_loop(split, family):
    X_lab, y_lab, X_pool, y_pool = (a.reshape(-1, 1, 8, 8) if a.ndim == 2 else a for a in split)
    image_split = (X_lab, y_lab, X_pool, y_pool)
    learner = make_learner(image_split, strategy=CoresetSampler(random_state=0), family=family)
    run_loop(learner, image_split, rounds=1, n_query=10)
    assert learner.X_training.shape == (70, 1, 8, 8)
    assert isinstance(learner.estimator.module_, family.module_class)
    assert learner.estimator.module__blocks == learner.structure_[0]


def test_too_few_labels_to_hold_out_keeps_the_structure(digits):
    X, y = digits
    learner = INASLearner(
        make_net(), margin_sampling, X[:1], y[:1], family=MLPFamily(width=4), random_state=0
    )
    assert learner.structures_ == [(1, 1)]
    assert learner.search_history_[0]["skipped"] == "labeled set too small"
    assert learner.estimator.initialized_


class _SigintInFit:
    """A skorch callback factory: a real SIGINT at the end of epoch 1 of the n-th fit."""

    fits = 0

    @classmethod
    def callback(cls, nth):
        import os
        import signal

        from skorch.callbacks import Callback

        class SigintInNthFit(Callback):
            def on_train_begin(self, net, **kwargs):
                cls.fits += 1

            def on_epoch_end(self, net, **kwargs):
                if cls.fits == nth and len(net.history) == 1:
                    os.kill(os.getpid(), signal.SIGINT)

        return SigintInNthFit()


@pytest.mark.parametrize("nth", [2, 4])  # the 2nd candidate; the final net (3 candidates)
def test_ctrl_c_stops_the_search_and_no_cut_short_candidate_is_ranked(split, nth):
    from skdynal._interrupt import Interrupted

    _SigintInFit.fits = 0
    estimator = make_net()
    estimator.set_params(callbacks=[_SigintInFit.callback(nth)])
    learner = make_learner(split, estimator=make_net())
    learner.estimator = estimator
    with pytest.raises(Interrupted, match="no structure was chosen or recorded"):
        learner.teach(split[2][:20], split[3][:20])
    assert _SigintInFit.fits == nth  # nothing trained after the interrupt
    assert len(learner.search_history_) == 1 == len(learner.structures_)  # the initial fit


@pytest.mark.parametrize(
    ("shape", "family", "n_classes", "match"),
    [
        (
            (1, 28, 28),
            MLPFamily(width=8),
            10,
            r"does not fit the data: .* rows of shape \(1, 28, 28\)",
        ),
        ((64,), CNNFamily(width=4), 10, r"does not fit the data: .* rows of shape \(64,\)"),
        ((64,), MLPFamily(width=8, n_classes=3), 10, "has 3 outputs, but the labels go up to 9"),
    ],
)
def test_a_family_that_does_not_fit_the_data_is_refused_before_training(
    shape, family, n_classes, match
):
    rng = np.random.RandomState(0)
    X = rng.rand(40, *shape).astype(np.float32)
    y = np.arange(40) % n_classes
    net = make_net()
    with pytest.raises(ValueError, match=match):
        INASLearner(net, margin_sampling, X, y, family=family, candidate_epochs=1)
    assert not hasattr(net, "module_")  # nothing was trained
