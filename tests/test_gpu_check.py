"""benchmarks/gpu_check.py keeps working on the CPU (tiny sizes): report, JSON, honest status.

Timing is the benchmarks' business; this checks that every step runs, that what could not
run (the gpu tests without CUDA) is said so, and that the numbers it reports agree.
"""

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.slow
def test_gpu_check_runs_on_cpu(tmp_path):
    proc = subprocess.run(
        [
            sys.executable,
            str(ROOT / "benchmarks" / "gpu_check.py"),
            "--device",
            "cpu",
            "--engine-models",
            "mlp",
            "--out-dir",
            str(tmp_path),
        ],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=tmp_path,
    )
    assert proc.returncode == 0, (proc.stdout + proc.stderr)[-3000:]
    raw = json.loads((tmp_path / "gpu_check.json").read_text())
    steps = raw["steps"]
    assert raw["cuda"] is False
    # without CUDA the gpu tests are collected, not run, and the report says so
    tests = steps["gpu tests"]
    assert tests["status"] == "not run"
    assert tests["collected"] > 0
    assert "COULD NOT RUN" in proc.stdout and "no CUDA" in proc.stdout

    engine = steps["engine benchmark"]
    assert engine["status"] == "ok"
    assert set(engine["rows"]["mlp"]) == {"floor", "engine", "vmap"}
    assert float(engine["rows"]["mlp"]["vmap"]["agreement"]) < 1e-5

    ntk = steps["NTK benchmark"]
    assert ntk["status"] == "ok"
    for model in ("mlp", "cnn"):
        for row in ntk["results"]["models"][model]["sizes"].values():
            assert row["lookahead_jacobian"]["same_picks"] is True
            assert row["lookahead_jacobian"]["max_score_diff"] < 1e-9
            assert row["ntk_trace_jacobian"]["agreement"] < 1e-10
            assert row["ntk_trace_brute"]["agreement"] < 1e-5  # float32 net, float64 kernel

    al = steps["active learning round"]
    assert al["status"] == "ok"
    assert al["result"]["device"] == "cpu"
    assert al["result"]["labeled_after"] == al["config"]["labeled"] + al["config"]["query"]

    report = (tmp_path / "gpu_check.md").read_text()
    assert "| gpu tests | not run |" in report
    assert "## engine benchmark" in report and "## NTK benchmark" in report
