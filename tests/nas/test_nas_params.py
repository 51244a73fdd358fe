"""iNAS parameters: constraint tables for the classes, ``validate_params`` for the functions.

Every mistake raises scikit-learn's ``InvalidParameterError`` (a ``ValueError`` and a
``TypeError``) naming the parameter.
"""

import numpy as np
import pytest
import torch
from modAL.uncertainty import margin_sampling
from skorch import NeuralNetClassifier

from skdynal._checks import InvalidParameterError
from skdynal.models import MLP
from skdynal.nas import (
    CNNFamily,
    FamilyMember,
    INASLearner,
    MLPFamily,
    ResNetFamily,
    StackedCNN,
    StackedMLP,
    StackedResNet,
    candidate_structures,
    check_structure,
    holdout_split,
    set_architecture,
)


def _assert_invalid(err, *names):
    assert isinstance(err, InvalidParameterError)
    assert isinstance(err, ValueError) and isinstance(err, TypeError)
    for name in names:
        assert name in str(err)


# ----------------------------------------------------------------------------- functions


@pytest.mark.parametrize("bad", [(0, 1), (1, 0), (1.5, 1), (True, 1), (1, -2), "ab", 3, None])
def test_check_structure(bad):
    with pytest.raises(InvalidParameterError) as info:
        check_structure(bad)
    _assert_invalid(info.value, "structure")


@pytest.mark.parametrize(
    ("kwargs", "names"),
    [
        ({"structure": (0, 1)}, ["structure"]),
        ({"structure": "ab"}, ["structure"]),
        ({"max_blocks": 0}, ["'max_blocks' parameter of candidate_structures"]),
        ({"max_blocks": 1.5}, ["'max_blocks' parameter of candidate_structures"]),
        ({"max_blocks": True}, ["'max_blocks' parameter of candidate_structures"]),
        ({"max_stacks": 0}, ["'max_stacks' parameter of candidate_structures"]),
        ({"max_stacks": "5"}, ["'max_stacks' parameter of candidate_structures"]),
        ({"structure": (4, 2), "max_blocks": 3}, ["outside the search space", "max_blocks=3"]),
        ({"structure": (1, 6), "max_stacks": 5}, ["outside the search space", "max_stacks=5"]),
    ],
)
def test_candidate_structures(kwargs, names):
    kwargs = {"structure": (1, 1), **kwargs}
    with pytest.raises(InvalidParameterError) as info:
        candidate_structures(**kwargs)
    _assert_invalid(info.value, *names)


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("y", None),
        ("y", 5),
        ("holdout", 0.0),
        ("holdout", 1.0),
        ("holdout", 1.5),
        ("holdout", True),
        ("holdout", "0.2"),
        ("holdout", None),
        ("random_state", -1),
        ("random_state", "seed"),
    ],
)
def test_holdout_split(name, value):
    kwargs = {"y": np.repeat([0, 1], 5), "holdout": 0.2, "random_state": 0, name: value}
    with pytest.raises(InvalidParameterError) as info:
        holdout_split(**kwargs)
    _assert_invalid(info.value, f"{name!r} parameter of holdout_split")


def test_holdout_split_accepts_numpy_values_and_still_refuses_too_few_labels():
    train, held = holdout_split([0, 1] * 5, holdout=np.float32(0.2), random_state=np.int64(0))
    assert (len(train), len(held)) == (8, 2)
    with pytest.raises(ValueError, match="cannot be split"):
        holdout_split(np.array([1]), holdout=0.2)


@pytest.mark.parametrize(
    ("name", "value"), [("net", object()), ("net", None), ("family", None), ("family", 3)]
)
def test_set_architecture(name, value):
    kwargs = {"net": NeuralNetClassifier(MLP), "family": MLPFamily(), name: value}
    with pytest.raises(InvalidParameterError) as info:
        set_architecture(structure=(1, 1), **kwargs)
    _assert_invalid(info.value, f"{name!r} parameter of set_architecture")


# ----------------------------------------------------------------------------- families


FAMILY_BAD = [
    (ResNetFamily, StackedResNet, "in_channels", 0),
    (ResNetFamily, StackedResNet, "n_classes", 2.0),
    (ResNetFamily, StackedResNet, "width", True),
    (ResNetFamily, StackedResNet, "dropout", 1.0),
    (CNNFamily, StackedCNN, "in_channels", "1"),
    (CNNFamily, StackedCNN, "n_classes", 0),
    (CNNFamily, StackedCNN, "width", -4),
    (CNNFamily, StackedCNN, "dropout", -0.5),
    (CNNFamily, StackedCNN, "head_pool", 0),
    (MLPFamily, StackedMLP, "n_features", 0),
    (MLPFamily, StackedMLP, "n_classes", None),
    (MLPFamily, StackedMLP, "width", 8.0),
    (MLPFamily, StackedMLP, "dropout", "0.1"),
]


@pytest.mark.parametrize(("family_class", "member_class", "name", "value"), FAMILY_BAD)
def test_family_parameters_are_checked_when_a_member_is_asked_for(
    family_class, member_class, name, value
):
    family = family_class(**{name: value})  # __init__ only stores
    for ask in (family.module_params, family, family.n_parameters):
        with pytest.raises(InvalidParameterError) as info:
            ask((1, 1))
        _assert_invalid(info.value, f"{name!r} parameter of {family_class.__name__}")
    # skorch builds the member itself from module_params: the module checks too
    with pytest.raises(InvalidParameterError) as info:
        member_class(**{name: value})
    _assert_invalid(info.value, f"{name!r} parameter of {member_class.__name__}")


@pytest.mark.parametrize("member_class", [StackedResNet, StackedCNN, StackedMLP])
@pytest.mark.parametrize(("name", "value"), [("blocks", 0), ("stacks", 1.5), ("blocks", True)])
def test_member_structure_parameters(member_class, name, value):
    with pytest.raises(InvalidParameterError) as info:
        member_class(**{name: value})
    _assert_invalid(info.value, f"{name!r} parameter of {member_class.__name__}")


@pytest.mark.parametrize("family_class", [ResNetFamily, CNNFamily, MLPFamily])
def test_a_family_refuses_a_bad_structure(family_class):
    with pytest.raises(InvalidParameterError) as info:
        family_class().module_params((2, 0))
    _assert_invalid(info.value, "number of stacks of a structure")


def test_numpy_sizes_give_a_working_member():
    member = MLPFamily(n_features=np.int64(4), width=np.int64(3), dropout=np.float64(0.0))
    assert member.module_params((np.int64(2), np.int64(1)))["blocks"] == 2
    assert member((2, 1))(torch.zeros(5, 4)).shape == (5, 10)


def test_family_member():
    with pytest.raises(InvalidParameterError) as info:
        FamilyMember(family=None)
    _assert_invalid(info.value, "'family' parameter of FamilyMember")
    with pytest.raises(InvalidParameterError) as info:
        FamilyMember(family=lambda structure: "not a module")
    _assert_invalid(info.value, "family((1, 1)) returned str")


# ----------------------------------------------------------------------------- learner


def _net():
    return NeuralNetClassifier(
        MLP,
        criterion=torch.nn.CrossEntropyLoss,
        max_epochs=1,
        train_split=None,
        verbose=0,
    )


LEARNER_BAD = [
    ("estimator", object()),
    ("estimator", None),
    ("query_strategy", "margin"),
    ("family", None),
    ("family", "mlp"),
    ("initial_structure", (0, 1)),
    ("initial_structure", "ab"),
    ("max_blocks", 0),
    ("max_blocks", 1.5),
    ("max_blocks", True),
    ("max_stacks", 0),
    ("max_stacks", None),
    ("search_steps", -1),
    ("search_steps", 0.5),
    ("holdout", 0.0),
    ("holdout", 1.5),
    ("holdout", True),
    ("holdout", "0.2"),
    ("candidate_epochs", 0),
    ("candidate_epochs", 2.5),
    ("random_state", -1),
    ("random_state", "seed"),
]


def _learner_kwargs(**overrides):
    rng = np.random.RandomState(0)
    kwargs = {
        "estimator": _net(),
        "query_strategy": margin_sampling,
        "X_training": rng.rand(12, 64).astype(np.float32),
        "y_training": np.arange(12) % 3,
        "family": MLPFamily(width=4),
        "candidate_epochs": 1,
        "random_state": 0,
    }
    kwargs.update(overrides)
    return kwargs


@pytest.mark.parametrize(("name", "value"), LEARNER_BAD)
def test_inas_learner_refuses_a_bad_value_of_each_parameter_before_training(name, value):
    with pytest.raises(InvalidParameterError) as info:
        INASLearner(**_learner_kwargs(**{name: value}))
    if name == "initial_structure":
        _assert_invalid(info.value, "structure")
    else:
        _assert_invalid(info.value, f"{name!r} parameter of INASLearner")


@pytest.mark.parametrize(("name", "value"), LEARNER_BAD)
def test_inas_learner_checks_its_current_values_at_every_fit(name, value):
    learner = INASLearner(**_learner_kwargs(search_steps=0))
    assert learner.structures_ == [(1, 1)]
    setattr(learner, name, value)
    X, y = np.zeros((3, 64), np.float32), np.array([0, 1, 2])
    with pytest.raises(InvalidParameterError):
        learner.teach(X, y)
    assert learner.structures_ == [(1, 1)]  # nothing trained


def test_inas_learner_refuses_a_start_outside_the_caps():
    with pytest.raises(InvalidParameterError) as info:
        INASLearner(**_learner_kwargs(initial_structure=(3, 1), max_blocks=2))
    _assert_invalid(info.value, "outside the search space", "max_blocks=2")
