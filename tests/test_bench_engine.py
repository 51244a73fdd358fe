"""benchmarks/bench_engine.py: its verdicts on made-up summaries, and one tiny real run.

Timing is the benchmark's business; this checks that the target logic tells a met target
from a missed one, that the tables are built from the workers' results, and that the script
still runs end to end with methods that agree with the engine.
"""

import importlib.util
import re
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "benchmarks" / "bench_engine.py"


@pytest.fixture(scope="module")
def bench():
    spec = importlib.util.spec_from_file_location("_bench_engine_under_test", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def verdicts(lines):
    """``{label: value text}`` from the ``- label: value`` lines of the targets section."""
    assert lines[0] == "### Targets"
    return dict(line[2:].rsplit(": ", 1) for line in lines if line.startswith("- "))


def mlp_summary(floor, engine, paired, floor_peak, engine_peak, vmap):
    return {
        "mlp": {
            "floor": {"time": floor, "peak": floor_peak},
            "engine": {"time": engine, "peak": engine_peak, "paired_ratio": paired},
            "vmap": {"time": vmap, "peak": 1.0},
        }
    }


def test_targets_met(bench):
    # 12.5 / 1.25 is exactly 10: a ratio on the limit meets it.
    got = verdicts(bench._targets(mlp_summary(1.0, 1.25, 1.1, 100.0, 150.0, 12.5)))
    assert got == {
        "mlp: engine time / floor ≤ 1.5 (separate processes)": "1.25 — met",
        "mlp: engine time / floor ≤ 1.5 (paired in one process)": "1.10 — met",
        "mlp: engine peak / floor peak ≤ 2.5": "1.50 — met",
        "mlp: vmap time / engine time ≥ 10": "10.00 — met",
        "mlp: backpack time / engine time ≥ 10": "not measured",
        "mlp: opacus time / engine time ≥ 1": "not measured",
    }


def test_targets_missed(bench):
    got = verdicts(bench._targets(mlp_summary(1.0, 2.0, 1.6, 100.0, 300.0, 10.0)))
    assert got == {
        "mlp: engine time / floor ≤ 1.5 (separate processes)": "2.00 — MISSED",
        "mlp: engine time / floor ≤ 1.5 (paired in one process)": "1.60 — MISSED",
        "mlp: engine peak / floor peak ≤ 2.5": "3.00 — MISSED",
        "mlp: vmap time / engine time ≥ 10": "5.00 — MISSED",
        "mlp: backpack time / engine time ≥ 10": "not measured",
        "mlp: opacus time / engine time ≥ 1": "not measured",
    }


def test_targets_per_model_limits_and_zero_floor(bench):
    rows = {
        "floor": {"time": 1.0, "peak": 0.0},
        "engine": {"time": 1.8, "peak": 10.0},
        "opacus": {"time": 0.9},
    }
    got = verdicts(bench._targets({"cnn": rows, "resnet18": rows}))
    assert got["cnn: engine time / floor ≤ 1.5 (separate processes)"] == "1.80 — MISSED"
    assert got["resnet18: engine time / floor ≤ 2.0 (separate processes)"] == "1.80 — met"
    assert got["cnn: engine time / floor ≤ 1.5 (paired in one process)"] == "not measured"
    assert got["cnn: engine peak / floor peak ≤ 2.5"] == "n/a (zero in the denominator)"
    assert got["cnn: opacus time / engine time ≥ 1"] == "0.50 — MISSED"
    assert got["cnn: vmap time / engine time ≥ 1"] == "not measured"
    assert not any(label.startswith("mlp") for label in got)


def sweep_rows(label, floor_peaks, engine_peaks):
    return [
        (n, label, {"floor": {"time": 1.0, "peak": f}, "engine": {"time": 1.0, "peak": e}})
        for n, f, e in zip((64, 128, 256), floor_peaks, engine_peaks, strict=True)
    ]


def test_sweep_targets(bench):
    flat = sweep_rows("fixed mmap threshold", [100, 110, 120], [200, 210, 240])
    drifting = sweep_rows("glibc default", [100, 150, 200], [100, 150, 300])
    got = verdicts(bench._targets({"_sweep": flat + drifting}))
    assert got == {
        "fixed mmap threshold: engine peak / floor peak ≤ 2.5 at every pool size": "2.00 — met",
        "fixed mmap threshold: engine peak, largest / smallest over the sweep (floor: 1.20; "
        "flat ≈ 1)": "1.20 — met",
        "glibc default: engine peak / floor peak ≤ 2.5 at every pool size": "1.50 — met",
        "glibc default: engine peak, largest / smallest over the sweep ≤ 2.00 (1.25, or the "
        "floor's 2.00 if larger)": "3.00 — MISSED",
    }
    growing = sweep_rows("fixed mmap threshold", [100, 100, 100], [100, 200, 300])
    got = verdicts(bench._targets({"_sweep": growing}))
    assert got == {
        "fixed mmap threshold: engine peak / floor peak ≤ 2.5 at every pool size": "3.00 — MISSED",
        "fixed mmap threshold: engine peak, largest / smallest over the sweep (floor: 1.00; "
        "flat ≈ 1)": "3.00 — MISSED",
    }


def test_sweep_table_from_worker_results(bench, monkeypatch, tmp_path):
    calls = []

    def fake_worker(args, model, method, pool, tmp, repeats=None, env=None):
        calls.append((model, method, pool, repeats, env))
        if method == "engine" and pool == 128 and env is None:
            return {"error": "boom"}
        return {"time": pool / 1000, "peak": pool * 2**20 * (2 if method == "engine" else 1)}

    monkeypatch.setattr(bench, "run_worker", fake_worker)
    args = SimpleNamespace(sweep_model="cnn", sweep_mmap_threshold=4096)
    summary = {}
    lines = bench._sweep(args, [64, 128], tmp_path, summary)
    sweep = [line for line in lines if re.match(r"\| (64|128) \| ", line)]
    assert sweep == [
        "| 64 | glibc default | 0.06 | 64 | 0.06 | 128 | 2.00 |",
        "| 128 | glibc default | 0.13 | 128 | n/a (boom) |  |  |",
        "| 64 | fixed mmap threshold | 0.06 | 64 | 0.06 | 128 | 2.00 |",
        "| 128 | fixed mmap threshold | 0.13 | 128 | 0.13 | 256 | 2.00 |",
    ]
    fixed = {"MALLOC_MMAP_THRESHOLD_": "4096"}
    assert calls[0] == ("cnn", "floor", 64, 1, None)
    assert calls[-1] == ("cnn", "engine", 128, 1, fixed)
    assert [row[:2] for row in summary["_sweep"]] == [
        (64, "glibc default"),
        (128, "glibc default"),
        (64, "fixed mmap threshold"),
        (128, "fixed mmap threshold"),
    ]


def test_model_table_ratios_and_agreement(bench):
    engine = torch.tensor([1.0, -4.0, 2.0], dtype=torch.float64)
    rows = {
        "floor": {"time": 2.0, "peak": 2**20, "note": ""},
        "engine": {
            "time": 3.0,
            "peak": 2 * 2**20,
            "note": "",
            "paired_ratio": 1.25,
            "delta": engine,
        },
        "vmap": {"time": 20.0, "peak": 8 * 2**20, "note": "x", "delta": engine + 0.4},
        "opacus": {"error": "n/a (Opacus not importable)"},
    }
    table = {
        line.split("|")[1].strip(): [cell.strip() for cell in line.split("|")[2:-1]]
        for line in bench._model_table("mlp", "an MLP", rows)
        if line.startswith("| ") and not line.startswith("| method")
    }
    assert table["floor"][:2] == ["2.00", "1.00"]
    assert table["engine"] == ["3.00", "1.50", "1.25", "2", "2.00", "—", ""]
    assert table["vmap"] == ["20.00", "10.00", "", "8", "8.00", "1.0e-01", "x"]
    assert table["opacus"][0] == "n/a (Opacus not importable)"


def test_method_table(bench):
    assert bench.METHODS == ["floor", "engine", "vmap", "loop", "backpack", "opacus"]
    assert [m for m, spec in bench.METHOD_TABLE.items() if spec.repeated] == ["floor", "engine"]
    assert [m for m, spec in bench.METHOD_TABLE.items() if not spec.inplace] == [
        "backpack",
        "opacus",
    ]
    with pytest.raises(ValueError, match="unknown method 'nope'"):
        bench.worker(SimpleNamespace(threads=1, method="nope"))


@pytest.mark.slow  # five fresh Python processes that import torch: ~10 s on 2 cores
def test_tiny_real_run(tmp_path):
    output = tmp_path / "table.md"
    proc = subprocess.run(
        [
            sys.executable,
            str(SCRIPT),
            *("--models", "mlp", "--methods", "floor,engine,vmap,loop"),
            *("--pool", "16", "--batch", "8", "--repeats", "1", "--threads", "1"),
            *("--loop-samples", "4", "--sweep", "", "--device", "cpu"),
            *("--output", str(output)),
        ],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=tmp_path,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    text = output.read_text()
    rows = {
        line.split("|")[1].strip(): [cell.strip() for cell in line.split("|")[2:-1]]
        for line in text.splitlines()
        if re.match(r"\| (floor|engine|vmap|loop) \|", line)
    }
    assert set(rows) == {"floor", "engine", "vmap", "loop"}
    assert float(rows["floor"][1]) == 1.0  # × floor of the floor itself
    assert float(rows["engine"][1]) > 0
    assert rows["engine"][2] != ""  # the paired ratio was measured
    for method in ("vmap", "loop"):
        assert float(rows[method][5]) < 1e-5, (method, rows[method])
    assert "Peak memory vs pool size" not in text  # --sweep '' skips the sweep
    targets = text.split("### Targets", 1)[1]
    assert "mlp: vmap time / engine time ≥ 10" in targets
    assert "not measured" in targets  # BackPACK and Opacus were not asked for
