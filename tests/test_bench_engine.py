"""benchmarks/bench_engine.py runs end to end on a tiny pool and writes a consistent table.

Timing is the benchmark's business; this only checks that the script still works and that
the methods it compares agree with the engine.
"""

import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.slow
def test_benchmark_writes_table_with_agreeing_methods(tmp_path):
    output = tmp_path / "table.md"
    proc = subprocess.run(
        [
            sys.executable,
            str(ROOT / "benchmarks" / "bench_engine.py"),
            "--models",
            "mlp",
            "--methods",
            "floor,engine,vmap,loop",
            "--pool",
            "64",
            "--batch",
            "32",
            "--repeats",
            "1",
            "--threads",
            "1",
            "--loop-samples",
            "8",
            "--sweep",
            "64,128",
            "--sweep-model",
            "mlp",
            "--device",
            "cpu",
            "--output",
            str(output),
        ],
        capture_output=True,
        text=True,
        timeout=600,
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
    sweep = [line for line in text.splitlines() if re.match(r"\| (64|128) \| ", line)]
    assert len(sweep) == 4  # two pool sizes under two allocator settings
    targets = text.split("### Targets", 1)[1]
    assert "mlp: vmap time / engine time ≥ 10" in targets
    assert "not measured" in targets  # BackPACK and Opacus were not asked for
