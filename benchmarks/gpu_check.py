"""One script for a lent GPU: tests, benchmarks and an active learning round, one report.

On a CUDA machine (``--device cuda``, the default when CUDA is there) it runs, each step
in its own subprocess with a time limit, and records what it could not run:

1. the ``gpu``-marked tests (``pytest -m gpu``);
2. the engine benchmark, ``benchmarks/bench_engine.py`` with floor, engine and vmap on the
   MLP, the vanilla CNN and ResNet18 on a CIFAR-sized (3x32x32) pool;
3. the NTK benchmark, ``benchmarks/bench_ntk.py`` (layer-wise vs Jacobian kernel vs brute
   force, look-ahead and empirical NTK, digits);
4. one active learning round end to end: a skorch MLP on digits on the device, a modAL
   ``ActiveLearner`` with :class:`skdynal.DynamicALSampler`, one query, one teach, test
   accuracy before and after.

It writes one markdown report (a summary table, then each benchmark's own table) and the
raw JSON next to it. Everything it needs ships with the working tree or scikit-learn (no
downloads). With ``--device cpu`` every size is small and the ``gpu`` tests are only
collected, so CI keeps the script working in well under a minute. The CUDA sizes are
chosen to fit in 10 minutes on one modern GPU (each step is also cut off at ``--timeout``
seconds); they have not been timed on a GPU yet.

Run ``python benchmarks/gpu_check.py --help`` for the options.
"""

import argparse
import datetime
import json
import os
import platform
import re
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

# (GPU, CPU) sizes of each step.
SIZES = {
    "engine_models": ("mlp,cnn,resnet18", "mlp"),
    "engine_pool": (4096, 32),
    "engine_batch": (256, 16),
    "engine_repeats": (3, 1),
    "ntk": (
        ["--sizes", "100,250,500", "--repeats", "3"],
        [
            "--sizes",
            "10,20",
            "--labeled",
            "20",
            "--pool",
            "60",
            "--query",
            "5",
            "--epochs",
            "2",
            "--repeats",
            "1",
            "--models",
            "mlp,cnn",
        ],
    ),
    "al": (
        {"labeled": 100, "query": 50, "epochs": 50},
        {"labeled": 40, "query": 10, "epochs": 30},
    ),
}


def _pick(key, cuda):
    gpu, cpu = SIZES[key]
    return gpu if cuda else cpu


def run_step(name, command, timeout, env=None):
    """Run ``command``; return a result dict with status, seconds and the output's tail."""
    print(f"== {name}: {' '.join(command)}", flush=True)
    start = time.perf_counter()
    # the working tree's skdynal, whatever is installed
    path = os.pathsep.join(p for p in (str(ROOT), os.environ.get("PYTHONPATH")) if p)
    try:
        proc = subprocess.run(
            command,
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=timeout,
            env={**os.environ, "PYTHONPATH": path, **(env or {})},
        )
    except subprocess.TimeoutExpired as exc:
        tail = (exc.stdout or b"")[-2000:]
        tail = tail.decode(errors="replace") if isinstance(tail, bytes) else tail
        print(f"   TIMED OUT after {timeout} s", flush=True)
        return {
            "status": "failed",
            "reason": f"timed out after {timeout} s",
            "seconds": time.perf_counter() - start,
            "tail": tail,
        }
    seconds = time.perf_counter() - start
    tail = (proc.stdout + proc.stderr)[-3000:]
    status = "ok" if proc.returncode == 0 else "failed"
    print(f"   {status} in {seconds:.1f} s (exit {proc.returncode})", flush=True)
    if status != "ok":
        print(tail, flush=True)
    return {
        "status": status,
        "reason": "" if status == "ok" else f"exit {proc.returncode}",
        "seconds": seconds,
        "tail": tail,
        "stdout": proc.stdout,
    }


def _gpu_test_files():
    """Test files that mark anything ``gpu`` (a text scan: collecting all tests is slow)."""
    return sorted(
        str(path.relative_to(ROOT))
        for path in (ROOT / "tests").rglob("test_*.py")
        if re.search(r"mark\.gpu\b", path.read_text(encoding="utf-8"))
    )


def gpu_tests(args, cuda):
    files = _gpu_test_files()
    if not files:
        return {"status": "failed", "reason": "no test file marks anything gpu", "seconds": 0}
    base = [sys.executable, "-m", "pytest", "-m", "gpu", "-q", "-p", "no:cacheprovider", *files]
    if not cuda:
        res = run_step(
            "gpu tests (collect only: no CUDA)", [*base, "--collect-only"], args.timeout
        )
        count = re.search(r"(\d+)(?:/\d+)? tests? (?:collected|selected)", res["tail"])
        res["collected"] = int(count.group(1)) if count else None
        if res["status"] == "ok":
            res["status"] = "not run"
            res["reason"] = f"no CUDA: {res['collected']} gpu tests collected, none run"
        return res
    res = run_step("gpu tests", base, args.timeout)
    summary = re.findall(r"(\d+) (passed|failed|skipped|error)", res["tail"])
    res["counts"] = {kind: int(n) for n, kind in summary}
    return res


def engine_benchmark(args, cuda, out_dir):
    table = out_dir / "engine_table.md"
    command = [
        sys.executable,
        "benchmarks/bench_engine.py",
        "--device",
        "cuda" if cuda else "cpu",
        "--models",
        args.engine_models or _pick("engine_models", cuda),
        "--methods",
        "floor,engine,vmap",
        "--pool",
        str(args.engine_pool or _pick("engine_pool", cuda)),
        "--batch",
        str(_pick("engine_batch", cuda)),
        "--repeats",
        str(_pick("engine_repeats", cuda)),
        "--sweep",
        "",
        "--output",
        str(table),
    ]
    if not cuda:
        command += ["--threads", "1", "--slow-pool", "resnet18=16"]
    res = run_step("engine benchmark", command, args.timeout)
    res["rows"] = _parse_engine_table(table) if table.exists() else {}
    res["table"] = table.read_text() if table.exists() else ""
    return res


def _parse_engine_table(path):
    """``{model: {method: {"time": s, "x_floor": r, "peak_mib": m, "agreement": a}}}``."""
    rows, model = {}, None
    for line in path.read_text().splitlines():
        if line.startswith("### ") and ":" in line and "Targets" not in line:
            model = line[4:].split(":", 1)[0]
            rows[model] = {}
        match = re.match(
            r"\| (floor|engine|vmap) \| ([^|]+)\|([^|]*)\|([^|]*)\|([^|]*)\|"
            r"[^|]*\|([^|]*)\|",
            line,
        )
        if match and model:
            method, time_s, ratio, paired, peak, agree = (c.strip() for c in match.groups())
            rows[model][method] = {
                "time": time_s,
                "x_floor": ratio,
                "x_floor_paired": paired,
                "peak_mib": peak,
                "agreement": agree,
            }
    return rows


def ntk_benchmark(args, cuda, out_dir):
    table, raw = out_dir / "ntk_table.md", out_dir / "ntk.json"
    command = [
        sys.executable,
        "benchmarks/bench_ntk.py",
        "--device",
        "cuda" if cuda else "cpu",
        "--output",
        str(table),
        "--json-out",
        str(raw),
        *_pick("ntk", cuda),
    ]
    if not cuda:
        command += ["--threads", "1"]
    res = run_step("NTK benchmark", command, args.timeout)
    res["results"] = json.loads(raw.read_text()) if raw.exists() else {}
    res["table"] = table.read_text() if table.exists() else ""
    return res


AL_ROUND = r"""
import json, sys, time
import numpy as np, torch
from modAL.models import ActiveLearner
from sklearn.datasets import load_digits
from skorch import NeuralNetClassifier
from skdynal import DynamicALSampler
from skdynal.models import MLP

cfg = json.loads(sys.argv[1])
if cfg["device"] == "cpu":
    torch.set_num_threads(1)
X, y = load_digits(return_X_y=True)
X = (X / 16.0).astype(np.float32)
perm = np.random.RandomState(0).permutation(len(X))
test, rest = perm[:400], perm[400:]
lab, pool = rest[: cfg["labeled"]], rest[cfg["labeled"]:]
torch.manual_seed(0)
net = NeuralNetClassifier(MLP, criterion=torch.nn.CrossEntropyLoss, max_epochs=cfg["epochs"],
                          lr=0.1, batch_size=32, warm_start=True, train_split=None, verbose=0,
                          device=cfg["device"])
start = time.perf_counter()
learner = ActiveLearner(estimator=net, query_strategy=DynamicALSampler(random_state=0),
                        X_training=X[lab], y_training=y[lab])
fit_s = time.perf_counter() - start
before = float(learner.score(X[test], y[test]))
start = time.perf_counter()
idx, _ = learner.query(X[pool], n_instances=cfg["query"])
query_s = time.perf_counter() - start
start = time.perf_counter()
learner.teach(X[pool][idx], y[pool][idx])
teach_s = time.perf_counter() - start
device = next(learner.estimator.module_.parameters()).device.type
assert device == cfg["device"], device
assert len(set(np.asarray(idx).tolist())) == cfg["query"]
print("RESULT " + json.dumps({"device": device, "labeled_after": int(len(learner.y_training)),
      "accuracy_before": before, "accuracy_after": float(learner.score(X[test], y[test])),
      "fit_s": fit_s, "query_s": query_s, "teach_s": teach_s}))
"""


def al_round(args, cuda):
    cfg = {**_pick("al", cuda), "device": "cuda" if cuda else "cpu"}
    res = run_step(
        "active learning round", [sys.executable, "-c", AL_ROUND, json.dumps(cfg)], args.timeout
    )
    found = re.search(r"^RESULT (.*)$", res.get("stdout", ""), re.M)
    res["result"] = json.loads(found.group(1)) if found else {}
    res["config"] = cfg
    return res


def report(steps, args, cuda, device_name, started):
    lines = [
        "<!-- generated by benchmarks/gpu_check.py; do not edit -->",
        f"Command: `python benchmarks/gpu_check.py {' '.join(args.argv)}`",
        "",
        f"- Date (UTC): {started:%Y-%m-%d %H:%M}",
        f"- Device: {device_name}",
        f"- Python {platform.python_version()}, torch {args.torch_version}",
        "",
        "| step | status | time (s) | result |",
        "|---|---|---:|---|",
    ]
    for name, res in steps.items():
        lines.append(
            f"| {name} | {res['status']} | {res.get('seconds', 0):.1f} | {_headline(name, res)} |"
        )
    lines.append("")
    for name in ("engine benchmark", "NTK benchmark"):
        table = steps.get(name, {}).get("table")
        if table:
            body = "\n".join(line for line in table.splitlines() if not line.startswith("<!--"))
            lines += [f"## {name}", "", body, ""]
    return "\n".join(lines) + "\n"


def _headline(name, res):
    if res["status"] not in ("ok",):
        return res.get("reason", "")
    if name == "gpu tests":
        return ", ".join(f"{n} {kind}" for kind, n in res.get("counts", {}).items())
    if name == "engine benchmark":
        parts = []
        for model, rows in res.get("rows", {}).items():
            engine = rows.get("engine", {})
            vmap = rows.get("vmap", {})
            parts.append(
                f"{model}: engine {engine.get('x_floor', '?')}× floor "
                f"(paired {engine.get('x_floor_paired', '?')}), vmap "
                f"{vmap.get('x_floor', '?')}× floor"
            )
        return "; ".join(parts)
    if name == "NTK benchmark":
        parts = []
        for model, entry in res.get("results", {}).get("models", {}).items():
            m = max(entry["sizes"], key=int)
            row = entry["sizes"][m]
            new = row.get("lookahead_layerwise", {}).get("time")
            old = row.get("lookahead_jacobian", {}).get("time")
            same = row.get("lookahead_jacobian", {}).get("same_picks")
            if new and old:
                parts.append(
                    f"{model} m={m}: look-ahead {old / new:.1f}× faster than "
                    f"jacobian, same picks: {same}"
                )
        return "; ".join(parts)
    if name == "active learning round":
        r = res.get("result", {})
        if r:
            return (
                f"on {r['device']}: {r['labeled_after']} labels after the round, test "
                f"accuracy {r['accuracy_before']:.3f} → {r['accuracy_after']:.3f}, "
                f"query {r['query_s']:.2f} s"
            )
    return ""


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--device", default="auto", help="auto, cuda or cpu")
    parser.add_argument("--out-dir", default=str(ROOT / "benchmarks" / "results" / "gpu_check"))
    parser.add_argument(
        "--steps",
        default="tests,engine,ntk,al",
        help="comma-separated subset of tests, engine, ntk, al",
    )
    parser.add_argument("--engine-models", default="", help="override the engine's models")
    parser.add_argument("--engine-pool", type=int, default=0, help="override the pool size")
    parser.add_argument("--timeout", type=int, default=300, help="seconds per step")
    args = parser.parse_args(argv)
    args.argv = sys.argv[1:] if argv is None else list(argv)

    import torch

    args.torch_version = torch.__version__
    has_cuda = torch.cuda.is_available()
    if args.device == "auto":
        args.device = "cuda" if has_cuda else "cpu"
    if args.device not in ("cuda", "cpu"):
        parser.error(f"--device must be auto, cuda or cpu, got {args.device!r}")
    if args.device == "cuda" and not has_cuda:
        parser.error("--device cuda, but torch.cuda.is_available() is False; use --device cpu")
    cuda = args.device == "cuda"
    device_name = (
        torch.cuda.get_device_name()
        if cuda
        else f"cpu ({platform.processor() or platform.machine()}, {os.cpu_count()} logical cores)"
    )
    out_dir = Path(args.out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    started = datetime.datetime.now(datetime.timezone.utc)
    wanted = [s for s in args.steps.split(",") if s]
    unknown = set(wanted) - {"tests", "engine", "ntk", "al"}
    if unknown:
        parser.error(f"unknown steps {sorted(unknown)}")
    steps = {}
    if "tests" in wanted:
        steps["gpu tests"] = gpu_tests(args, cuda)
    if "engine" in wanted:
        steps["engine benchmark"] = engine_benchmark(args, cuda, out_dir)
    if "ntk" in wanted:
        steps["NTK benchmark"] = ntk_benchmark(args, cuda, out_dir)
    if "al" in wanted:
        steps["active learning round"] = al_round(args, cuda)

    text = report(steps, args, cuda, device_name, started)
    (out_dir / "gpu_check.md").write_text(text)
    raw = {
        "device": device_name,
        "cuda": cuda,
        "date": started.isoformat(),
        "argv": args.argv,
        "steps": {k: {kk: vv for kk, vv in v.items() if kk != "stdout"} for k, v in steps.items()},
    }
    (out_dir / "gpu_check.json").write_text(json.dumps(raw, indent=1, default=str))
    print(text)
    not_done = {k: v for k, v in steps.items() if v["status"] != "ok"}
    if not_done:
        print("COULD NOT RUN / DID NOT PASS:")
        for name, res in not_done.items():
            print(f"  - {name}: {res['status']} ({res.get('reason', '')})")
    print(f"written to {out_dir / 'gpu_check.md'} and {out_dir / 'gpu_check.json'}")
    failed = [k for k, v in steps.items() if v["status"] == "failed"]
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
