"""benchmarks/stopping_long_budget.py: the suite's task protocols at a longer budget."""

import importlib.util
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "stopping_long_budget.py"


@pytest.fixture(scope="module")
def script():
    spec = importlib.util.spec_from_file_location("_stopping_long_budget_under_test", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_protocol_is_the_suites_with_more_rounds(script):
    from skdynal.experiments import BENCHMARK_TASKS

    task = BENCHMARK_TASKS["digits_cold"]
    protocol = script.task_protocol("digits_cold", ["random"], 2, 3, ["change"])
    assert (protocol.initial, protocol.query) == (task.initial, task.query)
    assert protocol.rounds == 3 * task.rounds
    assert (protocol.epochs, protocol.lr, protocol.batch_size) == (
        task.epochs,
        task.lr,
        task.batch_size,
    )
    assert protocol.initial_sampling == "balanced" and protocol.stopping_labels == ("change",)


def test_it_prints_each_task_and_the_overview(script, tmp_path, capsys):
    argv = ["--tasks", "breast_cancer_cold", "--seeds", "1", "--rounds-factor", "1"]
    argv += ["--strategies", "random", "--stopping", "change", "--out", str(tmp_path)]
    script.main(argv)
    out = capsys.readouterr().out
    assert "## breast_cancer_cold: 4 + 4 x 12 = 52 labels, 1 seeds" in out
    overview = out.split("## Across the 1 tasks", 1)[1].strip().splitlines()
    assert overview[2].startswith("| change | random | ")
    assert (tmp_path / "breast_cancer_cold" / "results.json").exists()
