"""benchmarks/compare_results.py: result folders equal except timing, and what it catches."""

import importlib.util
import json
import shutil
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "compare_results.py"


@pytest.fixture(scope="module")
def compare():
    spec = importlib.util.spec_from_file_location("_compare_results_under_test", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.compare


def write_run(root, accuracy=0.5, seconds=1.0, cell="random-abc123__seed0.json", config=None):
    (root / "cells").mkdir(parents=True)
    row = {"strategy": "random", "test_accuracy": accuracy, "train_seconds": seconds}
    (root / "cells" / cell).write_text(json.dumps({"rows": [row], "sha256": str(seconds)}))
    (root / "results.csv").write_text(
        f"strategy,test_accuracy,train_seconds\nrandom,{accuracy},{seconds}\n"
    )
    (root / "config.json").write_text(json.dumps(config or {"rounds": 1}))
    (root / "benchmark.md").write_text(f"# {root}\nacc {accuracy}\nwall time {seconds} min\n")


def test_folders_that_differ_in_timing_only_are_equal(compare, tmp_path, capsys):
    write_run(tmp_path / "a", seconds=1.0)
    write_run(tmp_path / "b", seconds=7.5, config={"rounds": 1, "stopping": None})
    assert compare(str(tmp_path / "a"), str(tmp_path / "b"))
    assert "keys only AFTER has, at null: ['stopping']" in capsys.readouterr().out


@pytest.mark.parametrize(
    "change",
    [
        {"accuracy": 0.5 + 1e-12},
        {"cell": "random-def456__seed0.json"},  # another cache key
        {"config": {"rounds": 2}},
        {"config": {"rounds": 1, "stopping": ["change"]}},
    ],
)
def test_any_other_difference_is_reported(compare, tmp_path, change):
    write_run(tmp_path / "a")
    write_run(tmp_path / "b", **change)
    assert not compare(str(tmp_path / "a"), str(tmp_path / "b"))


def test_a_missing_file_is_reported(compare, tmp_path, capsys):
    write_run(tmp_path / "a")
    shutil.copytree(tmp_path / "a", tmp_path / "b")
    (tmp_path / "b" / "results.csv").unlink()
    assert not compare(str(tmp_path / "a"), str(tmp_path / "b"))
    assert "file sets differ" in capsys.readouterr().out
