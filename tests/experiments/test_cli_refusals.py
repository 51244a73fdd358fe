"""The CLI refuses, before any work, what it cannot do; ``--help`` shows real defaults."""

import dataclasses
import re

import pytest

from skdynal import cli
from skdynal.datasets import load_digits_split
from skdynal.experiments import _runner, run_experiment


def run_cli(argv, capsys):
    with pytest.raises(SystemExit) as exit_info:
        cli.main(argv)
    return exit_info.value.code, capsys.readouterr().err


@pytest.fixture
def no_training(monkeypatch):
    """Fail the test if any experiment work starts."""

    def refuse(*args, **kwargs):
        raise AssertionError("run_experiment was called")

    monkeypatch.setattr("skdynal.experiments.run_experiment", refuse)
    monkeypatch.setattr(_runner, "_run_cell", refuse)


# digits: 1797 samples, split into 1347 train / 450 test by load_digits_split
@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (
            ["--initial", "20", "--query", "2000", "--rounds", "1"],
            "query=2000 is larger than the pool: the training set of 'digits' has 1347 "
            "samples, 1327 after the initial 20",
        ),
        (["--initial", "20", "--query", "2000", "--rounds", "0"], "larger than the pool"),
        (
            ["--initial", "47", "--query", "100", "--rounds", "14"],
            "rounds=14 of query=100 need 1400 pool samples, but the training set of 'digits' "
            "has 1300 after the initial 47; lower rounds (at most 13) or query.",
        ),
        (["--lr", "inf"], "argument --lr: expected a positive number, got 'inf'"),
        (["--lr", "nan"], "argument --lr: expected a positive number, got 'nan'"),
        (["--weight-decay", "-0.1"], "argument --weight-decay: expected a number >= 0"),
        (["--weight-decay", "nan"], "argument --weight-decay: expected a number >= 0"),
    ],
)
def test_impossible_protocols_and_values_are_refused(argv, message, capsys, no_training, tmp_path):
    code, err = run_cli(["run", *argv, "--out", str(tmp_path / "out")], capsys)
    assert code == 2
    assert message in err
    assert "skdynal run: error:" in err or "skdynal: error:" in err
    assert "Traceback" not in err
    assert not (tmp_path / "out").exists()


def test_a_protocol_that_fits_exactly_is_accepted(capsys, tmp_path, monkeypatch):
    # 47 + 13 * 100 = 1347, digits' whole training set: the CLI hands the protocol on.
    handed = []

    def record(data, protocol, **run_options):
        handed.append((len(data["X_train"]), protocol, run_options))
        raise SystemExit(0)  # stop before any training

    monkeypatch.setattr("skdynal.experiments.run_experiment", record)
    monkeypatch.setattr(_runner, "_run_cell", lambda *a, **k: pytest.fail("a cell ran"))
    argv = ["run", "--initial", "47", "--query", "100", "--rounds", "13", "--seeds", "2"]
    code, err = run_cli([*argv, "--out", str(tmp_path / "out")], capsys)
    assert code == 0 and "error" not in err
    [(n_train, protocol, run_options)] = handed
    assert n_train == 1347 == protocol.initial + protocol.rounds * protocol.query
    assert (protocol.initial, protocol.query, protocol.rounds, protocol.seeds) == (
        47,
        100,
        13,
        (0, 1),
    )
    assert protocol.dataset == "digits" and protocol.model == "mlp"
    assert run_options["out"] == str(tmp_path / "out") and run_options["n_threads"] == 1
    # One sample more and the same check refuses it, before any work.
    with pytest.raises(ValueError, match="at most 12"):
        dataclasses.replace(protocol, initial=48).check_pool(1347)


@pytest.mark.parametrize("command", ["run", "benchmark"])
def test_unwritable_out_is_refused_up_front(command, tmp_path, capsys, no_training, monkeypatch):
    monkeypatch.setattr(
        "skdynal.experiments._benchmark.run_benchmark",
        lambda *a, **k: pytest.fail("run_benchmark was called"),
    )
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    code, err = run_cli([command, "--out", str(blocker / "results")], capsys)
    assert code == 2
    assert f"--out {blocker / 'results'}: cannot write results there" in err
    assert "is not a directory" in err


def test_writable_out_check_leaves_nothing_behind(tmp_path):
    parser = cli.build_parser()
    cli._check_writable_dir(str(tmp_path / "new" / "deeper"), parser)
    cli._check_writable_dir(str(tmp_path), parser)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("command", ["run", "benchmark"])
def test_help_shows_real_defaults(command, capsys):
    with pytest.raises(SystemExit):
        cli.main([command, "--help"])
    text = re.sub(r"\s+", " ", capsys.readouterr().out)
    assert "(default: None)" not in text
    assert "(default: False)" not in text
    # at most one default per option
    for option_help in re.split(r" (?=--[a-z])", text):
        assert option_help.count("(default") <= 1, option_help
    if command == "run":
        assert "--no-plot do not write the learning-curve plot (written by default)" in text
        assert (
            "initial labeled set size M (default: 50; 500 for cifar10, svhn and "
            "caltech101)" in text
        )
        assert "lenet for fashion_mnist" in text
        assert "learning rate (default: 0.001)" in text


def test_run_experiment_refuses_rounds_that_cannot_all_run():
    data = load_digits_split(random_state=0)
    with pytest.raises(
        ValueError,
        match=r"rounds=14 of query=100 need 1400 pool samples, "
        r"but the training set of 'data' has 1300 after the initial 47",
    ):
        run_experiment(
            data,
            model="mlp",
            strategies=["random"],
            initial=47,
            query=100,
            rounds=14,
            seeds=1,
            epochs=1,
            progress=False,
        )


def test_benchmark_refuses_bald_up_front_when_no_task_has_dropout(
    capsys, no_training, tmp_path, monkeypatch
):
    import skdynal.experiments._benchmark as benchmark

    def refuse(*args, **kwargs):
        raise AssertionError("run_benchmark was called")

    argv = ["benchmark", "--quick", "--tasks", "digits", "three_clust"]
    argv += ["--strategies", "random", "bald", "--out", str(tmp_path / "b")]
    monkeypatch.setattr(benchmark, "run_benchmark", refuse)
    code, err = run_cli(argv, capsys)
    assert code == 2
    assert "strategy bald needs a model with dropout layers" in err
    assert "tasks digits, three_clust have none" in err
    assert "skdynal run --strategies bald --dropout 0.2" in err
