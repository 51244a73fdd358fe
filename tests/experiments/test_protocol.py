"""The experiment protocol dataclass: validation, config.json round trips, old files."""

import dataclasses
import json
import math
import pathlib

import pytest

from skdynal import RandomSampler
from skdynal._checks import InvalidParameterError
from skdynal.datasets import load_digits_split
from skdynal.experiments import (
    ExperimentProtocol,
    _runner,
    load_experiment_data,
    run_experiment,
)
from skdynal.experiments._cache import CellCache
from skdynal.experiments._net_factory import required_net_class
from skdynal.experiments._runner import Experiment

TIMING = ("query_seconds", "train_seconds")
TINY = dict(
    initial=20,
    query=10,
    rounds=1,
    epochs=1,
    batch_size=32,
    lr=1e-2,
    module_kwargs={"hidden": (16,)},
)
DOCS_CONFIG = (
    pathlib.Path(__file__).resolve().parents[2]
    / "docs"
    / "_static"
    / "results"
    / "digits-mlp"
    / "config.json"
)
# What run_experiment wrote before the protocol was a dataclass (no "format" key), for
# run_experiment(load_digits_split(random_state=0), "mlp", ["random", ("first-margin",
# "margin")], seeds=[0], net_kwargs={"optimizer__eps": 1e-7}, train_until_fit={"threshold":
# 0.9}, initial_sampling="balanced", dataset="digits", **TINY).
LEGACY_CONFIG = {
    "dataset": "digits",
    "initial": 20,
    "query": 10,
    "rounds": 1,
    "seeds": [0],
    "epochs": 1,
    "lr": 0.01,
    "batch_size": 32,
    "optimizer": "adam",
    "weight_decay": 0.0,
    "device": "cpu",
    "reinit": False,
    "train_until_fit": {"threshold": 0.9, "patience": 10, "min_epochs": 1, "accuracy": "running"},
    "reset_optimizer": False,
    "initial_sampling": "balanced",
    "inas": None,
    "strategies": ["random", "first-margin"],
    "baseline": "random",
    "model": "mlp",
    "module_kwargs": {"hidden": "(16,)"},
    "net_kwargs": {"optimizer__eps": "1e-07"},
    "n_train": 1347,
    "n_test": 450,
    "protocol_key": "306f7ec4b97df816",
}


@pytest.fixture(scope="module")
def data():
    return load_digits_split(random_state=0)


def without_timing(rows):
    return [{k: v for k, v in row.items() if k not in TIMING} for row in rows]


TABLE = "The '{}' parameter of ExperimentProtocol must be"


@pytest.mark.parametrize(
    ("params", "error", "match"),
    [
        ({"optimizer": "lbfgs"}, ValueError, TABLE.format("optimizer") + " a str among"),
        ({"initial_sampling": "stratified"}, ValueError, TABLE.format("initial_sampling")),
        (
            {"weight_decay": -1e-4},
            ValueError,
            TABLE.format("weight_decay") + r" a float in the range \[0",
        ),
        ({"baseline": 3}, TypeError, TABLE.format("baseline")),
        (
            {"initial": 0},
            ValueError,
            TABLE.format("initial") + r" an int in the range \[1, inf\). Got 0",
        ),
        ({"query": 2.5}, ValueError, TABLE.format("query")),
        (
            {"rounds": -1},
            ValueError,
            TABLE.format("rounds") + r" an int in the range \[0, inf\). Got -1",
        ),
        ({"epochs": True}, ValueError, TABLE.format("epochs")),
        ({"lr": 0}, ValueError, TABLE.format("lr") + r" a float in the range \(0.0, inf\)"),
        ({"lr": math.nan}, ValueError, TABLE.format("lr")),
        ({"batch_size": 0}, ValueError, TABLE.format("batch_size")),
        ({"seeds": [1, 1]}, ValueError, "seeds must not repeat"),
        ({"seeds": [-1]}, ValueError, "seeds must be a non-empty list of integers >= 0"),
        ({"seeds": 2.0}, TypeError, TABLE.format("seeds")),
        ({"seeds": 0}, ValueError, TABLE.format("seeds")),
        ({"strategies": []}, ValueError, "strategies is empty"),
        ({"strategies": ["nope"]}, ValueError, "'nope' is unknown; choose from"),
        ({"strategies": [("a", 3)]}, TypeError, "registered name or a modAL"),
        ({"model": "transformer"}, ValueError, "Unknown model 'transformer'"),
        ({"model": 3}, TypeError, TABLE.format("model")),
        ({"model": int}, TypeError, "model must be a model name"),
        ({"train_until_fit": {"patienc": 3}}, ValueError, r"unknown keys \['patienc'\]"),
        ({"train_until_fit": "yes"}, TypeError, TABLE.format("train_until_fit")),
        ({"train_until_fit": {"threshold": 2.0}}, ValueError, "threshold"),
        ({"inas": {"blocks": 2}}, ValueError, r"inas got unknown keys \['blocks'\]"),
        ({"inas": {"family": "rnn"}}, ValueError, "inas family must be one of"),
        ({"inas": 1.0}, TypeError, TABLE.format("inas")),
        ({"reinit": "no"}, TypeError, TABLE.format("reinit")),
        ({"module_kwargs": [("width", 8)]}, TypeError, TABLE.format("module_kwargs")),
        ({"net_kwargs": {1: 2}}, TypeError, "net_kwargs must be None or a dict"),
    ],
)
def test_bad_fields_raise_clear_errors(params, error, match):
    # One kind of error for every mistake, as for every class of the package.
    with pytest.raises(InvalidParameterError, match=match) as info:
        ExperimentProtocol(**params)
    assert isinstance(info.value, error)


def test_fields_are_normalised_and_frozen():
    protocol = ExperimentProtocol(
        strategies={"mine": "margin", "random": "random"},
        seeds=3,
        lr=1,
        train_until_fit=True,
        inas={"search_steps": 0},
    )
    assert protocol.strategies == (("mine", "margin"), ("random", "random"))
    assert protocol.labels == ("mine", "random")
    assert protocol.seeds == (0, 1, 2)
    assert protocol.lr == 1.0 and isinstance(protocol.lr, float)
    assert protocol.train_until_fit == {
        "threshold": 0.97,
        "patience": 10,
        "min_epochs": 1,
        "accuracy": "running",
    }
    assert protocol.inas["search_steps"] == 0 and protocol.inas["family"] is None
    assert protocol.inas["initial_structure"] == [1, 1]
    assert protocol.module_kwargs == {} and protocol.net_kwargs == {}
    assert ExperimentProtocol(seeds=[4, 2]).seeds == (4, 2)
    with pytest.raises(dataclasses.FrozenInstanceError):
        protocol.epochs = 3
    # dataclasses.replace re-validates.
    assert dataclasses.replace(protocol, epochs=7).epochs == 7
    with pytest.raises(ValueError, match=TABLE.format("epochs")):
        dataclasses.replace(protocol, epochs=0)


def test_to_dict_from_dict_round_trip_through_json():
    protocol = ExperimentProtocol(
        model="cnn",
        strategies=["random", ("first-margin", "margin")],
        seeds=[3, 1],
        optimizer="sgd",
        weight_decay=1e-4,
        reinit=True,
        train_until_fit={"threshold": 0.9, "patience": 2},
        reset_optimizer=True,
        initial_sampling="balanced",
        inas={"family": "cnn", "initial_structure": (2, 1), "candidate_epochs": 3},
        module_kwargs={"width": 8, "dropout": 0.1, "sizes": (16, 8), "flag": None},
        net_kwargs={"optimizer__eps": 1e-7, "iterator_train__drop_last": True},
        dataset="fashion",
        baseline=None,
    )
    config = json.loads(json.dumps(protocol.to_dict()))
    assert config["format"] == 2
    assert config["strategies"] == ["random", "first-margin"]
    assert config["strategy_specs"] == {"random": "random", "first-margin": "margin"}
    assert config["module_kwargs"]["sizes"] == {"repr": "(16, 8)"}
    back = ExperimentProtocol.from_dict(config)
    assert back == protocol
    assert back.module_kwargs["sizes"] == (16, 8)


def test_run_experiment_keywords_equal_the_dataclass(data):
    kwargs = dict(strategies=["random", "margin"], seeds=[2], dataset="digits", **TINY)
    by_keywords = run_experiment(data, progress=False, **kwargs)
    protocol = ExperimentProtocol(**kwargs)
    by_protocol = run_experiment(data, protocol=protocol, progress=False)
    assert without_timing(by_keywords.rows) == without_timing(by_protocol.rows)
    assert len(by_keywords.rows) == 4
    assert by_keywords.config == by_protocol.config
    assert by_keywords.protocol == protocol and by_protocol.protocol is protocol


def test_run_experiment_refuses_a_protocol_and_keywords_together(data):
    protocol = ExperimentProtocol(strategies=["random"], seeds=[0], **TINY)
    with pytest.raises(TypeError, match=r"protocol keywords \['dataset', 'epochs'\]"):
        run_experiment(data, protocol=protocol, epochs=3, dataset="digits", progress=False)
    with pytest.raises(TypeError, match=r"protocol keywords \['model'\]"):
        run_experiment(data, protocol, model="cnn", progress=False)
    with pytest.raises(TypeError, match="protocol must be an ExperimentProtocol"):
        run_experiment(data, protocol=protocol.to_dict(), progress=False)
    # The keyword form is the dataclass's fields, nothing else; the second positional
    # argument is the protocol.
    with pytest.raises(TypeError, match=r"unknown keywords \['epoch'\]; the protocol's fields"):
        run_experiment(data, epoch=3, progress=False)
    with pytest.raises(TypeError, match="protocol must be an ExperimentProtocol, got 'mlp'"):
        run_experiment(data, "mlp", progress=False)


def test_config_json_reads_back_to_the_same_protocol_and_cells(data, tmp_path, monkeypatch):
    first = run_experiment(
        data,
        strategies=["random", ("first-margin", "margin")],
        seeds=[1],
        out=tmp_path,
        plot=False,
        progress=False,
        initial_sampling="balanced",
        net_kwargs={"optimizer__eps": 1e-7},
        **TINY,
    )
    protocol = ExperimentProtocol.read(tmp_path)
    assert protocol == first.protocol
    assert ExperimentProtocol.read(tmp_path / "config.json") == protocol

    def no_recompute(*args, **kwargs):
        raise AssertionError("a finished cell was recomputed")

    # Same protocol key: every cell is found in the cache.
    monkeypatch.setattr(_runner, "_run_cell", no_recompute)
    again = run_experiment(data, protocol=protocol, out=tmp_path, plot=False, progress=False)
    assert again.rows == first.rows
    assert json.loads((tmp_path / "config.json").read_text()) == first.config


def test_old_config_json_of_the_docs_gives_its_protocol_key():
    protocol = ExperimentProtocol.read(DOCS_CONFIG)
    assert protocol.labels[:3] == ("dynamical", "dynamical-gamma1", "egl")
    assert protocol.seeds == tuple(range(10)) and protocol.batch_size == 32
    assert protocol.module_kwargs == {"dropout": 0.2}
    # Options the file predates take their defaults; the key is the one stored.
    assert protocol.train_until_fit is None and protocol.initial_sampling == "random"
    experiment = Experiment(load_experiment_data("digits", "mlp"), protocol)
    assert experiment.config["protocol_key"] == "262fa6bd3c452079"
    stored = json.loads(DOCS_CONFIG.read_text())
    assert {k: experiment.config[k] for k in stored} == stored


def test_old_config_json_refuses_what_it_cannot_describe(data):
    with pytest.raises(ValueError, match="strategy 'first-margin' as 'first-margin', which is"):
        ExperimentProtocol.from_dict(LEGACY_CONFIG)
    strategies = ["random", ("first-margin", "margin")]
    with pytest.raises(ValueError, match=r"module_kwargs\['hidden'\] as the text '\(16,\)'"):
        ExperimentProtocol.from_dict(LEGACY_CONFIG, strategies=strategies)
    protocol = ExperimentProtocol.from_dict(
        LEGACY_CONFIG, module_kwargs={"hidden": (16,)}, strategies=strategies
    )
    # net_kwargs were stored as reprs and are read back as the values.
    assert protocol.net_kwargs == {"optimizer__eps": 1e-7}
    assert protocol.train_until_fit == LEGACY_CONFIG["train_until_fit"]
    assert Experiment(data, protocol).config["protocol_key"] == LEGACY_CONFIG["protocol_key"]
    with pytest.raises(ValueError, match="model as 'DigitsMLP', which is not a registered"):
        ExperimentProtocol.from_dict({**LEGACY_CONFIG, "model": "DigitsMLP"})


def test_config_json_refuses_objects_and_foreign_files():
    protocol = ExperimentProtocol(strategies={"mine": RandomSampler()}, seeds=[0])
    config = json.loads(json.dumps(protocol.to_dict()))
    assert config["strategy_specs"] == {"mine": {"repr": "RandomSampler()"}}
    with pytest.raises(ValueError, match="strategy 'mine' as the object 'RandomSampler"):
        ExperimentProtocol.from_dict(config)
    sampler = RandomSampler()
    assert ExperimentProtocol.from_dict(config, strategies={"mine": sampler}).strategies == (
        ("mine", sampler),
    )
    text_only = {**config, "strategies": ["random"], "strategy_specs": {"random": "random"}}
    text_only["module_kwargs"] = {"act": {"repr": "<class 'torch.nn.ReLU'>"}}
    with pytest.raises(ValueError, match=r"module_kwargs\['act'\] only as the text"):
        ExperimentProtocol.from_dict(text_only)
    with pytest.raises(ValueError, match="format 3"):
        ExperimentProtocol.from_dict({**text_only, "format": 3})
    with pytest.raises(ValueError, match=r"unknown keys \['colour'\]"):
        ExperimentProtocol.from_dict({**text_only, "colour": "red"})
    with pytest.raises(ValueError, match=r"lacks the keys \['epochs'\]"):
        ExperimentProtocol.from_dict({k: v for k, v in text_only.items() if k != "epochs"})
    with pytest.raises(TypeError, match=r"Unknown protocol fields \['epoch'\]"):
        ExperimentProtocol.from_dict(text_only, epoch=3)


def test_required_net_class_and_cell_cache(tmp_path):
    from skdynal.strategies import TiDALNetClassifier, TiDALSampler

    assert required_net_class(TiDALSampler()) is TiDALNetClassifier
    assert required_net_class(RandomSampler()) is None
    cache = CellCache(str(tmp_path), "abc")
    keys = ("dataset", "model", "query_seconds", "train_seconds", "train_epochs")
    row = {**dict.fromkeys(keys), "strategy": "random", "seed": 0, "round": 0}
    rows = [{**row, "n_labels": 20, "test_accuracy": 0.5}]
    assert cache.load("random", "random", 0) is None
    cache.store("random", "random", 0, rows)
    assert cache.load("random", "random", 0) == rows
    assert cache.load("random", "random", 1) is None
    assert cache.load("random", "margin", 0) is None  # another spec under the same label
    assert CellCache(str(tmp_path), "abd").load("random", "random", 0) is None
    assert CellCache(None, "abc").load("random", "random", 0) is None
