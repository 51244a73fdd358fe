"""Time and peak memory of per-sample gradient scoring, side by side in one run.

Scores a pool with dynamicAL's statistics (``||g_u||^2`` and ``<g_u, G>``, pseudo labels
by argmax of the same forward pass, ``G`` = summed gradient over a labeled batch) with:

- ``floor``: one plain forward + backward of the summed loss (parameter gradients only);
- ``engine``: :func:`skdynal.gradients.grad_stats`;
- ``vmap``: :func:`skdynal.gradients.reference_grad_stats` (``torch.func``);
- ``loop``: one backward per sample (timed on a subset, extrapolated);
- ``backpack``: BackPACK ``BatchGrad`` + ``BatchL2Grad``;
- ``opacus``: Opacus ``GradSampleModule``.

Each (model, method) runs in a fresh subprocess. Peak extra memory: on CUDA, the peak of
``torch.cuda.max_memory_allocated`` above what was allocated before the timed run; on CPU,
the process's resident-set high-water mark (``VmHWM``, reset through
``/proc/self/clear_refs`` just before the timed run) minus the resident set at that moment.
Model, pool and ``G`` exist before the reset, so the number is what scoring adds.

Run ``python benchmarks/bench_engine.py --help`` for the options.
"""

import argparse
import datetime
import importlib
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

MODELS = ["mlp", "cnn", "resnet18"]
INPUT_SHAPES = {"mlp": (64,), "cnn": (3, 32, 32), "resnet18": (3, 32, 32)}
N_CLASSES = 10


# --------------------------------------------------------------------------- models
def build_model(name, inplace=True):
    """Return ``(model, description)``; ``inplace=False`` avoids in-place ReLU and adds."""
    import torch
    from torch import nn

    torch.manual_seed(0)
    if name == "mlp":
        model = nn.Sequential(
            nn.Linear(64, 512),
            nn.ReLU(),
            nn.Linear(512, 512),
            nn.ReLU(),
            nn.Linear(512, N_CLASSES),
        )
        return model, "MLP 64-512-512-10 (ReLU), digits-sized inputs"
    if name == "cnn":
        model = nn.Sequential(
            nn.Conv2d(3, 32, 3, padding=1),
            nn.ReLU(),
            nn.Conv2d(32, 64, 3, stride=2, padding=1),
            nn.ReLU(),
            nn.Conv2d(64, 128, 3, stride=2, padding=1),
            nn.ReLU(),
            nn.AdaptiveAvgPool2d(1),
            nn.Flatten(),
            nn.Linear(128, N_CLASSES),
        )
        return model, "vanilla CNN: 3 conv 3x3 (32, 64/s2, 128/s2) + ReLU, GAP, Linear"
    if name == "resnet18":
        from skdynal.models import ResNet18

        model = ResNet18(n_classes=N_CLASSES)
        if not inplace:
            _without_in_place_ops(model)
        return (
            model,
            "skdynal.models.ResNet18 (torchvision resnet18, 3x3 stem, no maxpool), "
            "10 classes, BatchNorm (eval)",
        )
    raise ValueError(f"unknown model {name!r}")


def _without_in_place_ops(model):
    """Turn off in-place ReLU and make torchvision's ``BasicBlock`` add its shortcut out of
    place: BackPACK's and Opacus' module hooks fail on in-place ops on a layer's output."""
    import types

    from skdynal._torchvision import import_torchvision

    basic_block = import_torchvision().models.resnet.BasicBlock

    def forward(block, x):
        identity = x if block.downsample is None else block.downsample(x)
        out = block.relu(block.bn1(block.conv1(x)))
        return block.relu(block.bn2(block.conv2(out)) + identity)

    for module in model.modules():
        if isinstance(getattr(module, "inplace", None), bool):
            module.inplace = False
        if isinstance(module, basic_block):
            module.forward = types.MethodType(forward, module)


# --------------------------------------------------------------------------- worker
def _memory_probe(device):
    import torch

    if device.type == "cuda":
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
        base = torch.cuda.memory_allocated()

        def peak():
            torch.cuda.synchronize()
            return torch.cuda.max_memory_allocated() - base

        return peak

    with open("/proc/self/clear_refs", "w") as f:  # resets VmHWM to the current VmRSS
        f.write("5")
    base = _proc_status("VmRSS")

    def peak():
        return _proc_status("VmHWM") - base

    return peak


def _proc_status(key):
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(key + ":"):
                return int(line.split()[1]) * 1024
    raise RuntimeError(f"{key} not in /proc/self/status")


class _Scorer:
    """How one method scores a pool: ``score(x)`` returns Δ of batch ``x`` (or ``None``),
    run on ``n_scored`` samples in batches of ``batch``; ``comparable`` is False when the
    method scored another model, so its Δ is not compared with the engine's."""

    def __init__(self, score, batch, n_scored, note="", comparable=True):
        self.score = score
        self.batch = batch
        self.n_scored = n_scored
        self.note = note
        self.comparable = comparable


class _Setup:
    """What every method is given: the model in eval mode on the device, its trainable
    parameters, a pool, the direction ``G`` and the per-sample losses."""

    def __init__(self, args, model):
        import torch
        import torch.nn.functional as F

        from skdynal.gradients import summed_loss_gradient

        def cross_entropy(outputs, targets):
            return F.cross_entropy(outputs, targets, reduction="none")

        def pseudo_label_loss(outputs, _unused):
            # Pseudo label = argmax of the same forward pass: no second forward needed.
            return F.cross_entropy(outputs, outputs.detach().argmax(1), reduction="none")

        self.cross_entropy, self.pseudo_label_loss = cross_entropy, pseudo_label_loss
        self.args = args
        self.device = torch.device(args.device)
        self.model = model.to(self.device).eval()
        self.params = [p for p in self.model.parameters() if p.requires_grad]
        self.n_params = sum(p.numel() for p in self.params)
        shape = INPUT_SHAPES[args.model]
        gen = torch.Generator().manual_seed(1)
        self.pool = torch.randn(args.pool, *shape, generator=gen).to(self.device)
        self.labeled = (
            torch.randn(args.batch, *shape, generator=gen).to(self.device),
            torch.randint(0, N_CLASSES, (args.batch,), generator=gen).to(self.device),
        )
        self.direction = summed_loss_gradient(self.model, cross_entropy, [self.labeled])
        self.dummy = torch.zeros(args.batch, dtype=torch.long, device=self.device)
        self.materialising_batch = max(
            1, min(args.batch, int(args.max_materialized_bytes // (4 * self.n_params)))
        )

    def bounded_batch(self, note):
        """The materialising methods' batch under the B x P bound, and the note saying so."""
        batch = self.materialising_batch
        if batch < self.args.batch:
            note += f"; batch {batch} (B x P bound {self.args.max_materialized_bytes:.0e} B)"
        return batch, note


def _floor(setup, note):
    import torch

    def score(x):
        loss = setup.pseudo_label_loss(setup.model(x), None).sum()
        torch.autograd.grad(loss, setup.params)
        return None

    return _Scorer(score, setup.args.batch, setup.args.pool, note)


def _engine(setup, note):
    from skdynal.gradients import grad_stats

    buffer_bytes = int(setup.args.buffer_mib * 2**20) or None

    def score(x):
        stats = grad_stats(
            setup.model,
            setup.pseudo_label_loss,
            x,
            setup.dummy[: len(x)],
            setup.direction,
            max_buffer_bytes=buffer_bytes,
        )
        return stats.sq_norms + 2 * stats.dots

    return _Scorer(score, setup.args.batch, setup.args.pool, note)


def _vmap(setup, note):
    from skdynal.gradients import reference_grad_stats

    chunk = setup.materialising_batch
    if chunk < setup.args.batch:
        note = f"vmap chunk_size={chunk} (B x P bound {setup.args.max_materialized_bytes:.0e} B)"

    def score(x):
        stats = reference_grad_stats(
            setup.model,
            setup.pseudo_label_loss,
            x,
            setup.dummy[: len(x)],
            setup.direction,
            chunk_size=chunk,
        )
        return stats.sq_norms + 2 * stats.dots

    return _Scorer(score, setup.args.batch, setup.args.pool, note)


def _loop(setup, note):
    import torch

    model, params = setup.model, setup.params
    flat_direction = torch.cat([setup.direction[n].reshape(-1) for n, _ in _named(model)])
    n_scored = min(setup.args.loop_samples, setup.args.pool)

    def score(x):
        out = torch.empty(len(x), device=setup.device)
        for u in range(len(x)):
            loss = setup.pseudo_label_loss(model(x[u : u + 1]), None).sum()
            flat = torch.cat([g.reshape(-1) for g in torch.autograd.grad(loss, params)])
            out[u] = flat @ flat + 2 * (flat @ flat_direction)
        return out

    return _Scorer(
        score, 1, n_scored, f"timed on {n_scored} samples, time extrapolated to the pool"
    )


def _backpack(setup, note):
    from backpack import backpack, extend
    from backpack.extensions import BatchGrad, BatchL2Grad

    model, params, direction = extend(setup.model), setup.params, setup.direction
    batch, note = setup.bounded_batch(note)

    def score(x):
        for p in params:
            p.grad = None
        with backpack(BatchGrad(), BatchL2Grad()):
            setup.pseudo_label_loss(model(x), None).sum().backward()
        sq = sum(p.batch_l2 for p in params)
        dots = sum(
            p.grad_batch.reshape(len(x), -1) @ direction[n].reshape(-1) for n, p in _named(model)
        )
        for p in params:
            del p.grad_batch, p.batch_l2
        return sq + 2 * dots

    return _Scorer(score, batch, setup.args.pool, note)


def _opacus(setup, note):
    import torch
    from opacus import GradSampleModule
    from opacus.validators import ModuleValidator

    from skdynal.gradients import summed_loss_gradient

    model, params, direction = setup.model, setup.params, setup.direction
    comparable = True
    note += "; module in train() mode (Opacus hooks skip eval mode)"
    if any(isinstance(m, torch.nn.modules.batchnorm._BatchNorm) for m in model.modules()):
        # Opacus refuses BatchNorm; its own fix swaps in GroupNorm. Time is comparable,
        # the scores are not (another model), so agreement is not reported.
        model = ModuleValidator.fix(model).to(setup.device)
        _without_in_place_ops(model)  # the fixed copy's blocks use the class forward
        params = [p for p in model.parameters() if p.requires_grad]
        direction = summed_loss_gradient(model, setup.cross_entropy, [setup.labeled])
        note += "; BatchNorm replaced by GroupNorm (ModuleValidator.fix): another model"
        comparable = False
    wrapped = GradSampleModule(model, loss_reduction="sum")
    # Opacus records activations only in training mode; the MLP and CNN have no dropout
    # and no BatchNorm, and GroupNorm does not mix samples, so train mode computes the
    # same function here.
    wrapped.train()
    batch, note = setup.bounded_batch(note)

    def score(x):
        for p in params:
            p.grad = None
            p.grad_sample = None
        setup.pseudo_label_loss(wrapped(x), None).sum().backward()
        flat = [p.grad_sample.reshape(len(x), -1) for p in params]
        sq = sum(g.pow(2).sum(1) for g in flat)
        dots = sum(
            g @ direction[n].reshape(-1) for g, (n, _) in zip(flat, _named(model), strict=True)
        )
        for p in params:
            p.grad_sample = None
        return sq + 2 * dots

    return _Scorer(score, batch, setup.args.pool, note, comparable)


class _Method:
    """A compared method: ``build(setup, note) -> _Scorer``; ``package``, if any, must be
    importable; ``inplace=False`` runs it on a model without in-place ops (module hooks
    fail on them); ``slow`` methods may be timed on ``--slow-pool`` samples only;
    ``repeated`` ones are timed ``--repeats`` times (the others once)."""

    def __init__(self, build, package=None, inplace=True, slow=False, repeated=False):
        self.build = build
        self.package = package  # (import name, display name)
        self.inplace = inplace
        self.slow = slow
        self.repeated = repeated


METHOD_TABLE = {
    "floor": _Method(_floor, repeated=True),
    "engine": _Method(_engine, repeated=True),
    "vmap": _Method(_vmap, slow=True),
    "loop": _Method(_loop),
    "backpack": _Method(_backpack, package=("backpack", "BackPACK"), inplace=False, slow=True),
    "opacus": _Method(_opacus, package=("opacus", "Opacus"), inplace=False, slow=True),
}
METHODS = list(METHOD_TABLE)


def worker(args):
    import torch

    if args.threads:
        torch.set_num_threads(args.threads)
    method = METHOD_TABLE.get(args.method)
    if method is None:
        raise ValueError(f"unknown method {args.method!r}; known: {', '.join(METHODS)}")
    model, _ = build_model(args.model, inplace=method.inplace)
    note = "" if method.inplace else "in-place ReLU (and residual add) turned off"
    setup = _Setup(args, model)
    scorer = method.build(setup, note)
    n_scored, note = scorer.n_scored, scorer.note
    if method.slow and args.slow_pool:
        n_scored = min(n_scored, args.slow_pool)
        note = (note + "; " if note else "") + f"timed on {n_scored} samples, extrapolated"
    device, pool = setup.device, setup.pool

    def run_pool(score):
        outs = []
        for start in range(0, n_scored, scorer.batch):
            delta = score(pool[start : min(start + scorer.batch, n_scored)])
            if delta is not None:
                outs.append(delta.detach().double().cpu())
        if device.type == "cuda":
            torch.cuda.synchronize()
        return torch.cat(outs) if outs else None

    scorer.score(pool[:2])  # warm up (thread pools, lazy initialisation)
    if device.type == "cuda":
        torch.cuda.synchronize()
    peak = _memory_probe(device)
    times = []
    for _ in range(args.repeats if method.repeated else 1):
        start = time.perf_counter()
        deltas = run_pool(scorer.score)
        times.append(time.perf_counter() - start)
        if sum(times) > 60:
            break
    result = {
        "time": min(times) * args.pool / n_scored,
        "times": times,
        "n_timed": n_scored,
        "peak": peak(),
        "n_params": setup.n_params,
        "note": note.strip("; "),
        "threads": torch.get_num_threads(),
    }
    if args.method == "engine" and args.paired:
        # Load on a shared machine shifts between subprocesses; alternating floor and
        # engine in one process gives a ratio measured under the same conditions.
        paired = {"floor": [], "engine": []}
        scores = {"floor": _floor(setup, "").score, "engine": scorer.score}
        for _ in range(args.repeats):
            for name, score in scores.items():
                start = time.perf_counter()
                run_pool(score)
                paired[name].append(time.perf_counter() - start)
            if sum(paired["floor"]) + sum(paired["engine"]) > 60:
                break
        result["paired"] = paired
        result["paired_ratio"] = min(paired["engine"]) / min(paired["floor"])
    if deltas is not None and scorer.comparable:
        torch.save(deltas, args.delta_out)
    Path(args.json_out).write_text(json.dumps(result))


def _named(model):
    return [(n, p) for n, p in model.named_parameters() if p.requires_grad]


# --------------------------------------------------------------------------- driver
def _available(method):
    package = METHOD_TABLE[method].package
    if package is None:
        return None
    try:
        importlib.import_module(package[0])
    except ImportError as exc:
        return f"n/a ({package[1]} not importable: {exc})"
    return None


def run_worker(args, model, method, pool, tmp, repeats=None, env=None):
    tag = "-".join(f"{k}{v}" for k, v in (env or {}).items())
    delta_out = Path(tmp) / f"{model}-{method}-{pool}{tag}.pt"
    json_out = Path(tmp) / f"{model}-{method}-{pool}{tag}.json"
    cmd = [
        sys.executable,
        str(Path(__file__).resolve()),
        "--worker",
        "--model",
        model,
        "--method",
        method,
        "--pool",
        str(pool),
        "--batch",
        str(args.batch),
        "--device",
        args.device,
        "--loop-samples",
        str(args.loop_samples),
        "--repeats",
        str(repeats or args.repeats),
        "--threads",
        str(args.threads or 0),
        "--max-materialized-bytes",
        str(args.max_materialized_bytes),
        "--buffer-mib",
        str(args.buffer_mib),
        "--slow-pool",
        str(args.slow_pools.get(model, 0)),
        *(["--paired"] if method == "engine" and repeats is None else []),
        "--delta-out",
        str(delta_out),
        "--json-out",
        str(json_out),
    ]
    proc = subprocess.run(
        cmd,
        capture_output=True,
        text=True,
        timeout=args.timeout,
        env=None if env is None else {**os.environ, **env},
    )
    if proc.returncode != 0 or not json_out.exists():
        lines = [line for line in proc.stderr.strip().splitlines() if line.strip()]
        reason = lines[-1] if lines else f"exit code {proc.returncode}"
        return {"error": reason[:200]}
    result = json.loads(json_out.read_text())
    if delta_out.exists():
        import torch

        result["delta"] = torch.load(delta_out)
    return result


def _mb(n_bytes):
    return f"{n_bytes / 2**20:,.0f}"


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--pool", type=int, default=2048, help="pool size (default 2048)")
    parser.add_argument("--batch", type=int, default=256, help="batch size (default 256)")
    parser.add_argument("--models", default=",".join(MODELS), help="comma-separated")
    parser.add_argument("--methods", default=",".join(METHODS), help="comma-separated")
    parser.add_argument("--device", default="auto", help="auto, cpu or cuda")
    parser.add_argument(
        "--output", default=str(ROOT / "docs" / "_generated" / "performance_table.md")
    )
    parser.add_argument(
        "--sweep",
        default="2048,4096,8192,16384",
        help="pool sizes of the engine's memory sweep ('' to skip)",
    )
    parser.add_argument("--sweep-model", default="cnn")
    parser.add_argument(
        "--sweep-mmap-threshold",
        type=int,
        default=65536,
        help="MALLOC_MMAP_THRESHOLD_ for the second sweep column",
    )
    parser.add_argument(
        "--loop-samples",
        type=int,
        default=32,
        help="samples timed for the per-sample loop (extrapolated)",
    )
    parser.add_argument(
        "--slow-pool",
        action="append",
        default=["resnet18=256"],
        metavar="MODEL=N",
        help="pool size for vmap/BackPACK/Opacus on MODEL (extrapolated)",
    )
    parser.add_argument(
        "--model-pool",
        action="append",
        default=[],
        metavar="MODEL=N",
        help="pool size for every method on MODEL (overrides --pool)",
    )
    parser.add_argument(
        "--repeats",
        type=int,
        default=5,
        help="best of this many runs for floor and engine (stops after 60 s)",
    )
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: default)")
    parser.add_argument(
        "--max-materialized-bytes",
        type=float,
        default=2e9,
        help="bound on B x P for vmap / BackPACK / Opacus batches",
    )
    parser.add_argument(
        "--buffer-mib",
        type=float,
        default=0,
        help="max_buffer_bytes of the engine in MiB (0: its default)",
    )
    parser.add_argument("--timeout", type=float, default=1800)
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--paired", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--model", help=argparse.SUPPRESS)
    parser.add_argument("--method", help=argparse.SUPPRESS)
    parser.add_argument("--delta-out", help=argparse.SUPPRESS)
    parser.add_argument("--json-out", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        args.slow_pool = int(args.slow_pool[-1]) if args.slow_pool else 0
        return worker(args)

    import torch

    if args.device == "auto":
        args.device = "cuda" if torch.cuda.is_available() else "cpu"
    args.slow_pools = {}
    for item in args.slow_pool:
        model, _, n = item.partition("=")
        args.slow_pools[model] = int(n)
    model_pools = {}
    for item in args.model_pool:
        model, _, n = item.partition("=")
        model_pools[model] = int(n)
    models = [m for m in args.models.split(",") if m]
    methods = [m for m in args.methods.split(",") if m]
    unknown = [m for m in methods if m not in METHOD_TABLE]
    if unknown:
        parser.error(f"unknown methods {unknown}; known: {', '.join(METHODS)}")
    command = "python " + " ".join(
        [str(Path(sys.argv[0]))] + (sys.argv[1:] if argv is None else list(argv))
    )
    threads = args.threads or torch.get_num_threads()
    allocator = {
        k: os.environ.get(k, "unset")
        for k in ("MALLOC_MMAP_THRESHOLD_", "MALLOC_TRIM_THRESHOLD_", "LD_PRELOAD")
    }
    lines = [
        "<!-- generated by benchmarks/bench_engine.py; do not edit -->",
        f"Command: `{command}`",
        "",
        f"- Date (UTC): {datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d %H:%M}",
        f"- Device: {args.device}"
        + (
            f" ({torch.cuda.get_device_name()})"
            if args.device == "cuda"
            else f" ({platform.processor() or platform.machine()}, {os.cpu_count()} logical cores,"
            " shared with other jobs)"
        ),
        f"- torch {torch.__version__}, torch threads: {threads}"
        + (f", engine max_buffer_bytes: {args.buffer_mib:g} MiB" if args.buffer_mib else ""),
        "- Allocator: " + ", ".join(f"{k}={v}" for k, v in allocator.items()),
        f"- Pool {args.pool}, batch {args.batch}, pseudo labels by argmax of the same "
        "forward pass, G = summed gradient over a labeled batch of the same size; random "
        "inputs and freshly initialised models (timings do not depend on the values).",
        "- Time: best of "
        f"{args.repeats} runs for floor and engine (fewer once 60 s are spent), one "
        "run for the others. Peak: "
        + (
            "`torch.cuda.max_memory_allocated` above the allocation before the run."
            if args.device == "cuda"
            else "resident-set high-water mark (VmHWM, reset via /proc/self/clear_refs) above "
            "the resident set before the run, fresh process per method."
        ),
        "- × floor, paired: floor and engine alternated in the engine's process (best of "
        "each), so both see the same machine load; the plain × floor compares processes "
        "run at different moments.",
        "- Agreement: max |Δ_method − Δ_engine| / max |Δ_engine| over the samples "
        "both scored (Δ = ‖g‖² + 2⟨g, G⟩, float32).",
        "",
    ]
    print("\n".join(lines), flush=True)
    summary = {}
    with tempfile.TemporaryDirectory() as tmp:
        for model in models:
            _, description = build_model(model)
            if model in model_pools:
                description += f" — pool {model_pools[model]} for every method"
            rows = {}
            for method in methods:
                unavailable = _available(method)
                if unavailable:
                    rows[method] = {"error": unavailable}
                    continue
                print(f"[{model}] {method} ...", flush=True)
                res = run_worker(args, model, method, model_pools.get(model, args.pool), tmp)
                if "error" in res:
                    res["error"] = f"n/a ({res['error']})"
                rows[method] = res
                print(f"    { ({k: v for k, v in res.items() if k != 'delta'}) }", flush=True)
            summary[model] = rows
            lines += _model_table(model, description, rows)
            print("\n".join(_model_table(model, description, rows)), flush=True)
        sweep = [int(n) for n in args.sweep.split(",") if n]
        if sweep and "engine" in methods:
            lines += _sweep(args, sweep, tmp, summary)
    lines += _targets(summary)
    text = "\n".join(lines) + "\n"
    print(text)
    out = Path(args.output)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(text)
    print(f"written to {out}")


def _sweep(args, sizes, tmp, summary):
    """Peak memory of floor and engine as the pool grows, under two allocator settings."""
    fixed = {"MALLOC_MMAP_THRESHOLD_": str(args.sweep_mmap_threshold)}
    lines = [
        f"### Peak memory vs pool size ({args.sweep_model}, one run each)",
        "",
        "Floor and engine each score pools of growing size in a fresh process. With "
        "glibc's default (dynamic) mmap threshold, freed blocks up to 32 MiB go back to the "
        "heap, which keeps up to twice that much unused memory before trimming, so the "
        "resident-set peak of both methods drifts up over the first batches. Fixing "
        f"`MALLOC_MMAP_THRESHOLD_={args.sweep_mmap_threshold}` for the subprocess makes the "
        "resident set track live memory.",
        "",
        "| pool | allocator | floor time (s) | floor peak extra (MiB) | engine time (s) "
        "| engine peak extra (MiB) | engine / floor peak |",
        "|---:|---|---:|---:|---:|---:|---:|",
    ]
    rows = []
    for env, label in ((None, "glibc default"), (fixed, "fixed mmap threshold")):
        for n in sizes:
            result = {}
            for method in ("floor", "engine"):
                print(f"[sweep] {method} pool {n} {label} ...", flush=True)
                result[method] = run_worker(args, args.sweep_model, method, n, tmp, 1, env)
            lines.append(_sweep_line(n, label, result))
            rows.append((n, label, result))
    lines.append("")
    summary["_sweep"] = rows
    return lines


def _sweep_line(n, label, result):
    """One row of the sweep table from the floor's and the engine's worker results."""
    cells = []
    for method in ("floor", "engine"):
        res = result[method]
        cells += (
            [f"n/a ({res['error']})", ""]
            if "error" in res
            else [f"{res['time']:.2f}", _mb(res["peak"])]
        )
    ratio = ""
    if "peak" in result["floor"] and "peak" in result["engine"]:
        ratio = f"{result['engine']['peak'] / max(result['floor']['peak'], 1):.2f}"
    return f"| {n} | {label} | " + " | ".join(cells) + f" | {ratio} |"


def _model_table(model, description, rows):
    floor = rows.get("floor", {})
    engine_delta = rows.get("engine", {}).get("delta")
    lines = [
        f"### {model}: {description}",
        "",
        "| method | time (s) | × floor | × floor, paired | peak extra (MiB) | × floor peak "
        "| agreement | note |",
        "|---|---:|---:|---:|---:|---:|---:|---|",
    ]
    for method, res in rows.items():
        if "error" in res:
            lines.append(f"| {method} | {res['error']} | | | | | | |")
            continue
        ratio = res["time"] / floor["time"] if "time" in floor else float("nan")
        peak_ratio = res["peak"] / floor["peak"] if floor.get("peak") else float("nan")
        agree = "—"
        if res.get("delta") is not None and engine_delta is not None and method != "engine":
            n = min(len(res["delta"]), len(engine_delta))
            scale = engine_delta[:n].abs().max()
            agree = f"{((res['delta'][:n] - engine_delta[:n]).abs().max() / scale):.1e}"
        paired = f"{res['paired_ratio']:.2f}" if "paired_ratio" in res else ""
        lines.append(
            f"| {method} | {res['time']:.2f} | {ratio:.2f} | {paired} | {_mb(res['peak'])} | "
            f"{peak_ratio:.2f} | {agree} | {res['note']} |"
        )
    lines.append("")
    return lines


def _targets(summary):
    lines = ["### Targets", ""]

    def ratio(model, a, b, key="time"):
        rows = summary.get(model, {})
        if key not in rows.get(a, {}) or key not in rows.get(b, {}):
            return None
        return rows[a][key] / rows[b][key] if rows[b][key] else float("nan")

    def check(label, value, ok):
        if value is None:
            lines.append(f"- {label}: not measured")
        elif value != value:  # NaN: the floor measured zero (tiny pools)
            lines.append(f"- {label}: n/a (zero in the denominator)")
        else:
            lines.append(f"- {label}: {value:.2f} — {'met' if ok(value) else 'MISSED'}")

    for model, limit in (("mlp", 1.5), ("cnn", 1.5), ("resnet18", 2.0)):
        if model not in summary:
            continue
        check(
            f"{model}: engine time / floor ≤ {limit} (separate processes)",
            ratio(model, "engine", "floor"),
            lambda v, limit=limit: v <= limit,
        )
        check(
            f"{model}: engine time / floor ≤ {limit} (paired in one process)",
            summary[model].get("engine", {}).get("paired_ratio"),
            lambda v, limit=limit: v <= limit,
        )
        check(
            f"{model}: engine peak / floor peak ≤ 2.5",
            ratio(model, "engine", "floor", "peak"),
            lambda v: v <= 2.5,
        )
        for other in ("vmap", "backpack", "opacus"):
            need = 10.0 if model == "mlp" and other in ("vmap", "backpack") else 1.0
            check(
                f"{model}: {other} time / engine time ≥ {need:g}",
                ratio(model, other, "engine"),
                lambda v, need=need: v >= need,
            )
    sweep = summary.get("_sweep")
    if sweep:

        def peaks(method, label):
            return [
                r[method]["peak"] for _, lab, r in sweep if lab == label and "peak" in r[method]
            ]

        for label in ("glibc default", "fixed mmap threshold"):
            engine, floor = peaks("engine", label), peaks("floor", label)
            if len(engine) < 2 or len(engine) != len(floor):
                continue
            check(
                f"{label}: engine peak / floor peak ≤ 2.5 at every pool size",
                max(e / max(f, 1) for e, f in zip(engine, floor, strict=True)),
                lambda v: v <= 2.5,
            )
            engine_spread = max(engine) / max(min(engine), 1)
            floor_spread = max(floor) / max(min(floor), 1)
            if label == "fixed mmap threshold":  # resident set = live memory
                check(
                    f"{label}: engine peak, largest / smallest over the sweep (floor: "
                    f"{floor_spread:.2f}; flat ≈ 1)",
                    engine_spread,
                    lambda v: v <= 1.25,
                )
            else:  # resident set includes free heap glibc keeps; compare with the floor's
                bound = max(floor_spread, 1.25)
                check(
                    f"{label}: engine peak, largest / smallest over the sweep ≤ {bound:.2f} "
                    f"(1.25, or the floor's {floor_spread:.2f} if larger)",
                    engine_spread,
                    lambda v, bound=bound: v <= bound,
                )
    lines.append("")
    return lines


if __name__ == "__main__":
    main()
