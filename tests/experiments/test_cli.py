"""The ``skdynal`` command line: defaults, errors, and end-to-end runs."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from skdynal import cli
from skdynal.datasets import write_cifar10_standin
from skdynal.experiments import _runner

ROOT = Path(__file__).resolve().parents[2]
TINY = ["--initial", "20", "--query", "10", "--rounds", "1", "--epochs", "1", "--no-progress"]


def resolved(argv):
    parser = cli.build_parser()
    args = parser.parse_args(argv)
    return cli._resolve(args, args.subparser)


def run_cli(argv, capsys):
    with pytest.raises(SystemExit) as exit_info:
        cli.main(argv)
    return exit_info.value.code, capsys.readouterr().err


def test_no_arguments_is_the_digits_main_job():
    args = resolved(["run"])
    assert (args.dataset, args.model) == ("digits", "mlp")
    assert args.strategies == [
        "dynamical",
        "dynamical-topb",
        "random",
        "least-confidence",
        "margin",
        "entropy",
    ]
    assert (args.initial, args.query, args.rounds, args.epochs) == (50, 50, 6, 50)
    assert args.seeds == [0, 1, 2] and args.resume and args.threads == 1
    assert args.baseline == "random"
    assert resolved(["run", "--strategies", "margin", "entropy"]).baseline is None
    assert args.out == os.path.join("skdynal-results", "digits-mlp")


def test_image_datasets_get_the_paper_protocol():
    args = resolved(["run", "--dataset", "svhn", "--data-dir", "d", "--seeds", "0,4"])
    assert (args.model, args.initial, args.query) == ("vgg11", 500, 500)
    assert args.seeds == [0, 4] and args.threads is None
    assert "coreset" in args.strategies and "badge" in args.strategies


@pytest.mark.parametrize(
    ("text", "seeds"), [("3", [0, 1, 2]), ("2-4", [2, 3, 4]), ("7,1", [7, 1])]
)
def test_seed_syntax(text, seeds):
    assert cli.parse_seeds(text) == seeds


def test_strategies_accept_commas_spaces_and_all():
    assert resolved(["run", "--strategies", "random,margin", "entropy"]).strategies == [
        "random",
        "margin",
        "entropy",
    ]
    assert "badge" in resolved(["run", "--strategies", "all", "--dropout", "0.2"]).strategies


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (
            ["run", "--strategies", "dynamical", "bogus"],
            "unknown strategy 'bogus'; choose from dynamical, ",
        ),
        (["run", "--seeds", "x"], "argument --seeds: expected a number of seeds"),
        (["run", "--seeds", "1,1"], "seeds must be distinct"),
        (["run", "--rounds", "-1"], "argument --rounds: expected an integer >= 0"),
        (["run", "--initial", "0"], "argument --initial: expected a positive integer"),
        (["run", "--lr", "-1"], "argument --lr: expected a positive number"),
        (["run", "--dataset", "mnist"], "argument --dataset: invalid choice: 'mnist'"),
        (["run", "--model", "gpt"], "argument --model: invalid choice: 'gpt'"),
        (["run", "--dataset", "cifar10"], "needs --data-dir DIR"),
        (["run", "--strategies", "bald"], "bald needs a model with dropout"),
        (["run", "--model", "cnn", "--dropout", "0.2"], "mlp model only"),
        (["run", "--n-train", "10"], "not to digits"),
        (["run", "--initial", "5000"], "leaves no pool"),
        (["run", "--dropout", "2"], "--dropout must be in [0, 1)"),
        (["frobnicate"], "invalid choice: 'frobnicate'"),
        (
            ["run", "--strategies", "margin", "--baseline", "random"],
            "--baseline random is not among the strategies run (margin)",
        ),
    ],
)
def test_bad_arguments_exit_with_a_clear_message(argv, message, capsys):
    code, err = run_cli(argv, capsys)
    assert code == 2
    assert message in err
    assert "usage: skdynal" in err


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has CUDA")
def test_cuda_device_without_cuda_is_refused(capsys):
    code, err = run_cli(["run", "--device", "cuda"], capsys)
    assert code == 2 and "CUDA is not available" in err


def test_missing_data_files_exit_with_the_loader_message(tmp_path, capsys):
    code, err = run_cli(["run", "--dataset", "cifar10", "--data-dir", str(tmp_path)], capsys)
    assert code == 1
    assert "cannot load cifar10" in err and "--download" in err


def test_list_prints_the_registry(capsys):
    assert cli.main(["list"]) == 0
    out = capsys.readouterr().out
    assert "dynamical " in out and "random " in out and "resnet18" in out


def test_cifar10_standin_through_the_real_loader(tmp_path, capsys):
    write_cifar10_standin(tmp_path / "data", n_train=50, n_test=10, random_state=0)
    out = tmp_path / "out"
    argv = [
        "run",
        "--dataset",
        "cifar10",
        "--model",
        "cnn",
        "--data-dir",
        str(tmp_path / "data"),
        "--no-verify-checksums",
        "--strategies",
        "random",
        "margin",
        "--seeds",
        "1",
        "--threads",
        "1",
        "--batch-size",
        "16",
        "--out",
        str(out),
        *TINY,
    ]
    assert cli.main(argv) == 0
    printed = capsys.readouterr().out
    assert "cifar10 (50 train / 10 test), cnn, M=20, b=10, R=1" in printed
    rows = json.loads((out / "results.json").read_text())
    assert [(r["strategy"], r["n_labels"]) for r in rows] == [
        ("random", 20),
        ("random", 30),
        ("margin", 20),
        ("margin", 30),
    ]
    assert {r["dataset"] for r in rows} == {"cifar10"}


@pytest.mark.slow
def test_python_dash_m_skdynal_run(tmp_path, capsys, monkeypatch):
    out = tmp_path / "out"
    command = [
        sys.executable,
        "-m",
        "skdynal",
        "run",
        "--strategies",
        "random",
        "entropy",
        "--seeds",
        "2",
        "--out",
        str(out),
        *TINY,
    ]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    done = subprocess.run(
        command, capture_output=True, text=True, env=env, cwd=tmp_path, timeout=300
    )
    assert done.returncode == 0, done.stderr
    assert "Test accuracy (mean over seeds) after each round" in done.stdout
    assert "Δ vs random" in done.stdout
    table = done.stdout.split("after each round\n", 1)[1].splitlines()
    assert table[0].split() == ["round", "labels", "random", "entropy"]
    assert [line.split()[:2] for line in table[1:3]] == [["0", "20"], ["1", "30"]]
    for name in (
        "results.csv",
        "results.json",
        "summary.csv",
        "summary.json",
        "learning_curve.png",
        "config.json",
    ):
        assert (out / name).is_file(), name
    assert len(os.listdir(out / "cells")) == 4

    # Run again (in-process): every cell is resumed, the printed tables are identical.
    def no_recompute(*args, **kwargs):
        raise AssertionError("a finished cell was recomputed")

    monkeypatch.setattr(_runner, "_run_cell", no_recompute)
    assert cli.main(command[3:]) == 0
    again = capsys.readouterr().out
    assert again.split("after each round")[1] == done.stdout.split("after each round")[1]
