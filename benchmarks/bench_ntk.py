"""NTK look-ahead and empirical NTK: layer-wise kernel vs Jacobian kernel vs brute force.

The issue-18 case: scikit-learn's digits, a net fitted on 200 labels, a pool of 1,200,
50 queried by :class:`skdynal.NTKLookaheadSampler` (defaults: trace kernel, argmax
objective, batch mode) with ``subset_size`` = each size of ``--sizes``. Side by side in one
process, for each model and subset size ``m``:

- look-ahead: ``select`` with the layer-wise kernel (``empirical_ntk(method="layerwise")``,
  the default) and with the previous implementation (``method="jacobian"``: ``torch.func``
  Jacobians of the whole network); agreement = same picks, max |score difference|;
- empirical NTK (trace structure) of the ``N = 200 + m`` rows the look-ahead uses, by
  ``layerwise``, ``jacobian`` and a brute-force Jacobian (one ``torch.autograd.grad`` per
  sample and output, then ``J J^T``; only where its ``N x K x P`` float64 Jacobian stays
  below ``--brute-max-bytes``); agreement = max |Θ − Θ_layerwise| / max |Θ_layerwise|;
  the full ``K x K`` structure is timed at the smallest size.

Peak extra memory is the resident-set high-water mark above the resident set before the
call (CPU; ``/proc/self/clear_refs``) or ``torch.cuda.max_memory_allocated`` above the
allocation before it (CUDA). All calls share one process; on the CPU glibc's
``malloc_trim`` runs before each call, so that memory freed by earlier calls is given back
and touching it again counts (otherwise every call after the first would show no peak).
Timings use the allocator as configured (glibc's defaults unless the environment says
otherwise; the header records it). Both
kernels run under the same memory guard (``max_bytes``, 1 GiB by default: the output plus
two Jacobian batches must fit).

Run ``python benchmarks/bench_ntk.py --help`` for the options.
"""

import argparse
import datetime
import functools
import json
import math
import os
import platform
import sys
import time
from pathlib import Path
from unittest import mock

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

MODELS = ("mlp", "cnn")
N_LABELED, N_POOL, N_QUERY, N_CLASSES = 200, 1200, 50, 10


def build_net(name, device, epochs):
    """A skorch classifier of the given model, not fitted; and its description."""
    import torch
    from skorch import NeuralNetClassifier
    from torch import nn

    from skdynal.models import MLP

    if name == "mlp":
        module, description = MLP, "MLP 64-128-128-10 (skdynal.models.MLP)"
        kwargs = {}
    elif name == "cnn":

        class DigitsBNCNN(nn.Module):
            def __init__(self):
                super().__init__()
                self.features = nn.Sequential(
                    nn.Conv2d(1, 16, 3, padding=1),
                    nn.BatchNorm2d(16),
                    nn.ReLU(),
                    nn.Conv2d(16, 32, 3, stride=2, padding=1),
                    nn.BatchNorm2d(32),
                    nn.ReLU(),
                    nn.AdaptiveAvgPool2d(1),
                    nn.Flatten(),
                )
                self.head = nn.Linear(32, 10)

            def forward(self, X):
                return self.head(self.features(X.reshape(-1, 1, 8, 8)))

        module = DigitsBNCNN
        description = (
            "CNN conv3x3(16)-BN-ReLU, conv3x3(32, stride 2)-BN-ReLU, GAP, "
            "Linear(32, 10); BatchNorm in eval"
        )
        kwargs = {}
    else:
        raise ValueError(f"unknown model {name!r}; choose from {MODELS}")
    net = NeuralNetClassifier(
        module,
        criterion=torch.nn.CrossEntropyLoss,
        max_epochs=epochs,
        lr=0.1,
        batch_size=32,
        train_split=None,
        verbose=0,
        device=device,
        **kwargs,
    )
    return net, description


def digits_split(n_labeled, n_pool):
    import numpy as np
    from sklearn.datasets import load_digits

    X, y = load_digits(return_X_y=True)
    X = (X / 16.0).astype(np.float32)
    perm = np.random.RandomState(0).permutation(len(X))
    lab, pool = perm[:n_labeled], perm[n_labeled : n_labeled + n_pool]
    return X[lab], y[lab].astype(np.int64), X[pool]


def brute_force_ntk(net, X, device):
    """Trace NTK / K by one backward per sample and output, in float64; the naive reference."""
    import copy

    import torch

    module = copy.deepcopy(net.module_).double().eval()
    params = [p for p in module.parameters() if p.requires_grad]
    Xt = torch.as_tensor(X, device=device, dtype=torch.float64)
    rows = []
    for i in range(len(Xt)):
        out = module(Xt[i : i + 1])[0]
        per_output = []
        for k in range(out.shape[0]):
            grads = torch.autograd.grad(out[k], params, retain_graph=True)
            per_output.append(torch.cat([g.reshape(-1).double() for g in grads]))
        rows.append(torch.stack(per_output))
    J = torch.stack(rows)  # (N, K, P)
    K = J.shape[1]
    return (J.reshape(len(J), -1) @ J.reshape(len(J), -1).T / K).cpu().numpy()


class Probe:
    """Wall time (synchronised on CUDA) and peak extra memory of one call."""

    def __init__(self, device):
        self.device = device

    def __call__(self, fn):
        import torch
        from bench_engine import _memory_probe

        if self.device.type == "cuda":
            torch.cuda.synchronize()
        else:
            _malloc_trim()
        peak = _memory_probe(self.device)
        start = time.perf_counter()
        result = fn()
        if self.device.type == "cuda":
            torch.cuda.synchronize()
        return result, time.perf_counter() - start, peak()


def _malloc_trim():
    """Give freed heap memory back to the system (glibc only; elsewhere a no-op)."""
    import ctypes

    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):
        pass


def best_of(probe, fn, repeats, budget_s=60.0):
    """Best time of up to ``repeats`` runs (stops once ``budget_s`` are spent)."""
    best = None
    spent = 0.0
    for _ in range(max(1, repeats)):
        result, seconds, peak = probe(fn)
        spent += seconds
        if best is None or seconds < best[1]:
            best = (result, seconds, peak if best is None else max(peak, best[2]))
        if spent > budget_s:
            break
    return best


def run(args):
    import numpy as np
    import torch

    import skdynal.strategies._ntk_lookahead as lookahead_module
    from skdynal import NTKLookaheadSampler
    from skdynal.diagnostics import empirical_ntk

    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    probe = Probe(device)
    X_lab, y_lab, X_pool = digits_split(args.labeled, args.pool)
    sizes = sorted(int(s) for s in args.sizes.split(",") if s)
    methods = [m for m in args.methods.split(",") if m]
    results = {"models": {}}
    for model in [m for m in args.models.split(",") if m]:
        torch.manual_seed(0)
        net, description = build_net(model, str(device), args.epochs)
        net.fit(X_lab, y_lab)
        # warm-up: one-off allocations and first-call costs stay out of the measurements
        NTKLookaheadSampler(subset_size=min(sizes), random_state=0).select(
            net, X_pool, min(args.query, min(sizes)), X_labeled=X_lab, y_labeled=y_lab
        )
        n_params = sum(p.numel() for p in net.module_.parameters() if p.requires_grad)
        entry = {"description": description, "n_params": n_params, "sizes": {}}
        results["models"][model] = entry
        print(f"[{model}] {description}, P = {n_params}", flush=True)
        for m in sizes:
            row = {}
            entry["sizes"][m] = row
            strategy = NTKLookaheadSampler(subset_size=m, random_state=0)

            def select(strategy=strategy, net=net):
                return strategy.select(net, X_pool, args.query, X_labeled=X_lab, y_labeled=y_lab)

            (picks, scores), seconds, peak = best_of(probe, select, args.repeats)
            row["lookahead_layerwise"] = {"time": seconds, "peak": peak}
            print(f"  m={m} look-ahead layerwise {seconds:.3f} s", flush=True)
            if "jacobian" in methods:
                old = functools.partial(empirical_ntk, method="jacobian")
                with mock.patch.object(lookahead_module, "empirical_ntk", old):
                    (old_picks, old_scores), seconds, peak = best_of(
                        probe, select, args.old_repeats
                    )
                row["lookahead_jacobian"] = {
                    "time": seconds,
                    "peak": peak,
                    "same_picks": bool(np.array_equal(picks, old_picks)),
                    "max_score_diff": float(np.abs(scores - old_scores).max()),
                }
                print(
                    f"  m={m} look-ahead jacobian {seconds:.3f} s, same picks: "
                    f"{row['lookahead_jacobian']['same_picks']}",
                    flush=True,
                )

            rng = np.random.RandomState(1)
            X_all = np.concatenate(
                [
                    X_lab,
                    X_pool[np.sort(rng.choice(len(X_pool), min(m, len(X_pool)), replace=False))],
                ]
            )
            structures = ["trace"] + (["full"] if m == sizes[0] else [])
            for structure in structures:

                def kernel(method, structure=structure, net=net, X_all=X_all):
                    return empirical_ntk(net, X_all, structure=structure, method=method)

                theta, seconds, peak = best_of(
                    probe, functools.partial(kernel, "layerwise"), args.repeats
                )
                scale = np.abs(theta).max()
                row[f"ntk_{structure}_layerwise"] = {"time": seconds, "peak": peak}
                print(f"  m={m} NTK {structure} layerwise {seconds:.3f} s", flush=True)
                if "jacobian" in methods:
                    other, seconds, peak = best_of(
                        probe, functools.partial(kernel, "jacobian"), args.old_repeats
                    )
                    row[f"ntk_{structure}_jacobian"] = {
                        "time": seconds,
                        "peak": peak,
                        "agreement": float(np.abs(other - theta).max() / scale),
                    }
                    print(f"  m={m} NTK {structure} jacobian {seconds:.3f} s", flush=True)
                brute_bytes = len(X_all) * N_CLASSES * n_params * 8
                if structure == "trace" and "brute" in methods:
                    if brute_bytes > args.brute_max_bytes:
                        row["ntk_trace_brute"] = {
                            "error": f"skipped: N x K x P Jacobian {brute_bytes / 2**20:.0f} "
                            f"MiB > --brute-max-bytes"
                        }
                        continue
                    other, seconds, peak = probe(
                        functools.partial(brute_force_ntk, net, X_all, device)
                    )
                    row["ntk_trace_brute"] = {
                        "time": seconds,
                        "peak": peak,
                        "agreement": float(np.abs(other - theta).max() / scale),
                    }
                    print(f"  m={m} NTK trace brute {seconds:.3f} s", flush=True)
    return results


def growth(sizes, times):
    """Exponent ``a`` of ``time ~ N^a`` between consecutive sizes (N = labeled + m)."""
    out = []
    for i in range(len(sizes) - 1):
        (n0, t0), (n1, t1) = (sizes[i], times[i]), (sizes[i + 1], times[i + 1])
        if t0 and t1 and n1 != n0:
            out.append(math.log(t1 / t0) / math.log(n1 / n0))
    return out


def table(results, args, command):
    import torch

    lines = [
        "<!-- generated by benchmarks/bench_ntk.py; do not edit -->",
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
        f"- torch {torch.__version__}, torch threads: {torch.get_num_threads()}; allocator: "
        + ", ".join(
            f"{k}={os.environ.get(k, 'unset')}" for k in ("MALLOC_MMAP_THRESHOLD_", "LD_PRELOAD")
        ),
        f"- Digits: {args.labeled} labels, pool {args.pool}, {args.query} queried; net fitted "
        f"{args.epochs} epochs (seed 0). Look-ahead: `NTKLookaheadSampler(subset_size=m, "
        "random_state=0)` (trace kernel, argmax objective, batch mode). Empirical NTK: the "
        f"N = {args.labeled} + m rows, `empirical_ntk(structure=...)`, float64, default "
        "max_bytes (1 GiB) and batch_size (32).",
        f"- Time: best of {args.repeats} runs for layerwise, {args.old_repeats} for jacobian, "
        "one for brute force. Peak: "
        + (
            "`torch.cuda.max_memory_allocated` above the allocation before the call."
            if args.device == "cuda"
            else "resident-set high-water mark above the resident set before the call, one "
            "process, after a warm-up call, glibc `malloc_trim(0)` before each call."
        ),
        "- Agreement: look-ahead, same picks and max |score difference|; NTK, "
        "max |Θ − Θ_layerwise| / max |Θ_layerwise|.",
        "",
    ]
    for model, entry in results["models"].items():
        lines += [
            f"### {model}: {entry['description']}, P = {entry['n_params']:,}",
            "",
            "| what | m | N | method | time (s) | × layerwise | peak extra (MiB) | agreement |",
            "|---|---:|---:|---|---:|---:|---:|---|",
        ]
        for m, row in entry["sizes"].items():
            N = args.labeled + m
            for what in ("lookahead", "ntk_trace", "ntk_full"):
                base = row.get(f"{what}_layerwise")
                if base is None:
                    continue
                label = {
                    "lookahead": "look-ahead select",
                    "ntk_trace": "NTK trace",
                    "ntk_full": "NTK full",
                }[what]
                for method in ("layerwise", "jacobian", "brute"):
                    res = row.get(f"{what}_{method}")
                    if res is None:
                        continue
                    if "error" in res:
                        lines.append(f"| {label} | {m} | {N} | {method} | {res['error']} | | | |")
                        continue
                    if method == "layerwise":
                        agree = "—"
                    elif what == "lookahead":
                        agree = (
                            f"same picks: {'yes' if res['same_picks'] else 'NO'}, "
                            f"max Δscore {res['max_score_diff']:.1e}"
                        )
                    else:
                        agree = f"{res['agreement']:.1e}"
                    lines.append(
                        f"| {label} | {m} | {N} | {method} | {res['time']:.3f} | "
                        f"{res['time'] / base['time']:.1f} | {res['peak'] / 2**20:.0f} | "
                        f"{agree} |"
                    )
        lines.append("")
        sizes = list(entry["sizes"])
        if len(sizes) > 1:
            Ns = [args.labeled + m for m in sizes]
            lines.append(
                "Growth with the subset size (exponent a of time ∝ N^a between consecutive sizes):"
            )
            lines.append("")
            for what, label in (("lookahead", "look-ahead"), ("ntk_trace", "NTK trace")):
                for method in ("layerwise", "jacobian"):
                    times = [
                        entry["sizes"][m].get(f"{what}_{method}", {}).get("time") for m in sizes
                    ]
                    if None in times:
                        continue
                    exps = ", ".join(f"{a:.2f}" for a in growth(Ns, times))
                    lines.append(f"- {label}, {method}: {exps}")
            lines.append("")
    return lines


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--models", default=",".join(MODELS), help="comma-separated")
    parser.add_argument(
        "--methods",
        default="layerwise,jacobian,brute",
        help="comma-separated; layerwise always runs",
    )
    parser.add_argument("--sizes", default="100,250,500", help="look-ahead subset sizes m")
    parser.add_argument("--labeled", type=int, default=N_LABELED)
    parser.add_argument("--pool", type=int, default=N_POOL)
    parser.add_argument("--query", type=int, default=N_QUERY)
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--repeats", type=int, default=5, help="runs of layerwise (best)")
    parser.add_argument("--old-repeats", type=int, default=1, help="runs of jacobian (best)")
    parser.add_argument(
        "--brute-max-bytes",
        type=float,
        default=2**30,
        help="skip the brute force where N x K x P float64 exceeds this",
    )
    parser.add_argument("--device", default="auto", help="auto, cpu or cuda")
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: default)")
    parser.add_argument("--output", default=str(ROOT / "docs" / "_generated" / "ntk_table.md"))
    parser.add_argument("--json-out", default=None, help="also write the raw results here")
    args = parser.parse_args(argv)

    import torch

    if args.device == "auto":
        args.device = "cuda" if torch.cuda.is_available() else "cpu"
    command = "python " + " ".join(
        ["benchmarks/bench_ntk.py"] + (sys.argv[1:] if argv is None else list(argv))
    )
    results = run(args)
    lines = table(results, args, command)
    text = "\n".join(lines) + "\n"
    print(text)
    out = Path(args.output)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(text)
    print(f"written to {out}")
    if args.json_out:
        results["command"] = command
        Path(args.json_out).write_text(json.dumps(results, indent=1, default=str))
    return results


if __name__ == "__main__":
    main()
