"""The paper examples run end to end on stand-in files through the real torchvision loaders.

The ``examples`` tox env runs them from the command line with dynamicAL included; here
each runs in-process with cheap strategies, so the suite stays fast.
"""

import json
from pathlib import Path

import pytest

from skdynal.datasets import (
    write_caltech101_standin,
    write_cifar10_standin,
    write_svhn_standin,
)

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
TINY = [
    "--initial",
    "20",
    "--query",
    "10",
    "--rounds",
    "1",
    "--epochs",
    "1",
    "--seeds",
    "1",
    "--batch-size",
    "16",
    "--strategies",
    "random",
    "margin",
]


@pytest.fixture(scope="module")
def standins(tmp_path_factory):
    root = tmp_path_factory.mktemp("standins")
    write_cifar10_standin(root, n_train=40, n_test=10, random_state=0)
    write_svhn_standin(root, n_train=40, n_test=10, random_state=0)
    write_caltech101_standin(root, 4, 10, random_state=0)
    return root


@pytest.mark.parametrize(
    ("script", "dataset", "model"),
    [
        ("cifar10_cnn", "cifar10", "cnn"),
        ("svhn_vgg", "svhn", "vgg11"),
        ("caltech101_resnet", "caltech101", "resnet18"),
    ],
)
@pytest.mark.slow
def test_example_runs_one_round(script, dataset, model, standins, tmp_path, monkeypatch, capsys):
    monkeypatch.syspath_prepend(str(EXAMPLES))
    module = __import__(script)
    flags = [] if dataset == "caltech101" else ["--no-verify-checksums"]
    out = tmp_path / "out"
    results = module.main(["--data-dir", str(standins), *flags, *TINY, "--out", str(out)])
    assert results.config["dataset"] == dataset and results.config["model"] == model
    rows = json.loads((out / "results.json").read_text())
    assert [(r["strategy"], r["round"], r["n_labels"]) for r in rows] == [
        ("random", 0, 20),
        ("random", 1, 30),
        ("margin", 0, 20),
        ("margin", 1, 30),
    ]
    assert (out / "learning_curve.png").is_file()
    assert "Δ vs random" in capsys.readouterr().out
