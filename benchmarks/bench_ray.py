"""Local scoring against RayScorer with 1 and 2 workers, side by side in one run.

A small CNN (``skdynal.models.CNN``, 1x8x8 digits images) is fitted on 200 digits; the pool
is the digits tiled (with a little noise) to ``--pool`` rows. For each strategy
(dynamicAL, which takes per-sample gradients, and margin, one forward pass) the script
times, interleaved in each repeat so that the machine's load hits all alike:

- ``local``: ``strategy.select`` in this process, one torch thread;
- ``ray1`` / ``ray2``: ``RayScorer(strategy, n_workers=1 or 2, n_cpus_per_worker=1)``
  on a local Ray instance (``ray.init(num_cpus=2)``), one torch thread per worker, after a
  warm-up round that starts the worker processes (reported apart).

It also times a round on a ``--small-pool`` pool, whose Ray time is nearly all fixed cost
per round (object-store puts, task start-up, merge), and, in each repeat, the speed-up a
second process gets on a plain CPU workload right then (``ceiling``: one process doing two
units against two processes doing one each): on a shared machine it bounds what a second
worker can give. Every Ray result is checked against
the local indices. Medians over ``--repeats``; the 1-minute load average before and after is
recorded, since the machine may be shared.

Run ``python benchmarks/bench_ray.py --help`` for the options; results go to
``benchmarks/results/bench_ray.json``.
"""

import argparse
import concurrent.futures
import datetime
import json
import multiprocessing
import os
import platform
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402
import torch  # noqa: E402
from sklearn.datasets import load_digits  # noqa: E402
from skorch import NeuralNetClassifier  # noqa: E402

from skdynal import DynamicALSampler, MarginSampler  # noqa: E402
from skdynal.distributed import RayScorer  # noqa: E402
from skdynal.models import CNN  # noqa: E402

N_QUERY = 100


def make_data(n_pool, seed=0):
    X, y = load_digits(return_X_y=True)
    X = (X / 16.0).astype(np.float32).reshape(-1, 1, 8, 8)
    rng = np.random.RandomState(seed)
    tiled = X[rng.randint(len(X), size=n_pool)]
    tiled = tiled + rng.normal(scale=0.02, size=tiled.shape).astype(np.float32)
    return X[:200], y[:200].astype(np.int64), tiled


def make_net(X, y, width):
    torch.manual_seed(0)
    net = NeuralNetClassifier(
        CNN,
        module__in_channels=1,
        module__width=width,
        criterion=torch.nn.CrossEntropyLoss,
        max_epochs=3,
        lr=0.05,
        batch_size=256,
        train_split=None,
        verbose=0,
    )
    return net.fit(X, y)


def _burn(n_products):
    """A fixed CPU workload on one torch thread (for the machine's available parallelism)."""
    torch.set_num_threads(1)
    a = torch.randn(256, 256, generator=torch.Generator().manual_seed(0))
    for _ in range(n_products):
        a = torch.tanh(a @ a)
    return float(a.sum())


def parallel_ceiling(pool, n_products):
    """Speed-up that a second process gets on this machine right now: one process doing two
    units of work against two processes doing one each. Near 1 means no idle core."""
    serial, _ = timed(lambda: pool.submit(_burn, 2 * n_products).result())
    parallel, _ = timed(
        lambda: [f.result() for f in [pool.submit(_burn, n_products) for _ in range(2)]]
    )
    return serial / parallel


def timed(fn):
    start = time.perf_counter()
    result = fn()
    return time.perf_counter() - start, result


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--pool", type=int, default=16384, help="pool rows (default 16384)")
    parser.add_argument(
        "--small-pool",
        type=int,
        default=256,
        help="pool rows of the fixed-cost round (default 256)",
    )
    parser.add_argument("--width", type=int, default=16, help="CNN width (default 16)")
    parser.add_argument("--repeats", type=int, default=3, help="timed repeats (default 3)")
    parser.add_argument(
        "--shard-size",
        type=int,
        default=None,
        help="RayScorer shard_size (default: one shard per worker)",
    )
    parser.add_argument("--strategies", default="dynamical,margin", help="comma-separated")
    parser.add_argument("--json-out", default=str(ROOT / "benchmarks/results/bench_ray.json"))
    args = parser.parse_args()

    import ray

    torch.set_num_threads(1)
    X_lab, y_lab, X_pool = make_data(args.pool)
    X_small = X_pool[: args.small_pool]
    net = make_net(X_lab, y_lab, args.width)
    load_before = os.getloadavg()[0]
    burners = concurrent.futures.ProcessPoolExecutor(
        2, mp_context=multiprocessing.get_context("spawn")
    )
    parallel_ceiling(burners, 10)  # start both processes

    init_s, _ = timed(
        lambda: ray.init(
            num_cpus=2,
            include_dashboard=False,
            log_to_driver=False,
            runtime_env={"env_vars": {"PYTHONPATH": str(ROOT)}},
        )
    )
    strategies = {
        "dynamical": DynamicALSampler(batch_size=256, random_state=0, selection="top_b"),
        "margin": MarginSampler(batch_size=256, random_state=0),
    }
    kwargs = {"X_labeled": X_lab, "y_labeled": y_lab}
    results = {}
    for name in args.strategies.split(","):
        strategy = strategies[name]
        scorers = {
            "local": strategy,
            "ray1": RayScorer(strategy, n_workers=1, shard_size=args.shard_size),
            "ray2": RayScorer(strategy, n_workers=2, shard_size=args.shard_size),
        }
        # Warm-up: start the worker processes and load the net on them (twice for two
        # workers, so that both exist even if one finished its shards before the other
        # had started).
        warmup = {}
        for key in ("ray1", "ray2", "ray2"):
            seconds, _ = timed(lambda s=scorers[key]: s.select(net, X_pool, 10, **kwargs))
            warmup.setdefault(key, []).append(seconds)
        times = {key: [] for key in scorers}
        small = {key: [] for key in scorers}
        ceilings = []
        for _ in range(args.repeats):
            ceilings.append(parallel_ceiling(burners, 400))
            expected = None
            for key, scorer in scorers.items():
                seconds, (indices, _) = timed(
                    lambda s=scorer: s.select(net, X_pool, N_QUERY, **kwargs)
                )
                times[key].append(seconds)
                if expected is None:
                    expected = indices
                elif not np.array_equal(indices, expected):
                    raise AssertionError(f"{name}/{key}: indices differ from local scoring")
                seconds, _ = timed(lambda s=scorer: s.select(net, X_small, 10, **kwargs))
                small[key].append(seconds)
        median = {key: statistics.median(v) for key, v in times.items()}
        median_small = {key: statistics.median(v) for key, v in small.items()}
        results[name] = {
            "seconds": median,
            "all_seconds": times,
            "small_pool_seconds": median_small,
            "warmup_seconds": warmup,
            "rows_per_second": {key: args.pool / t for key, t in median.items()},
            "ray1_over_local": median["ray1"] / median["local"],
            "ray2_speedup_over_ray1": median["ray1"] / median["ray2"],
            "ray2_speedup_over_local": median["local"] / median["ray2"],
            "fixed_overhead_seconds": median_small["ray1"] - median_small["local"],
            "two_process_ceiling": statistics.median(ceilings),
            "all_two_process_ceilings": ceilings,
        }
    ray.shutdown()
    burners.shutdown()
    load_after = os.getloadavg()[0]

    report = {
        "command": "python " + " ".join([f"benchmarks/{Path(__file__).name}", *sys.argv[1:]]),
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "machine": f"{platform.machine()}, {os.cpu_count()} CPUs, {platform.platform()}",
        "load_average_1min": [load_before, load_after],
        "torch": torch.__version__,
        "ray": ray.__version__,
        "pool": args.pool,
        "small_pool": args.small_pool,
        "n_query": N_QUERY,
        "model": f"skdynal.models.CNN(in_channels=1, width={args.width}) on 1x8x8 digits",
        "ray_init_seconds": init_s,
        "results": results,
    }
    out = Path(args.json_out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=2) + "\n")

    print(
        f"{report['command']}  ({report['date']}; load average {load_before:.1f} -> "
        f"{load_after:.1f} on {os.cpu_count()} CPUs; ray.init {init_s:.1f} s)"
    )
    print(f"pool {args.pool} rows, query {N_QUERY}; medians of {args.repeats}")
    header = (
        f"{'strategy':10} {'local s':>8} {'ray1 s':>8} {'ray2 s':>8} {'ray1/local':>10} "
        f"{'ray1/ray2':>9} {'ceiling':>7} {'fixed s':>8} {'rows/s 2w':>10}"
    )
    print(header)
    for name, r in results.items():
        s = r["seconds"]
        print(
            f"{name:10} {s['local']:8.2f} {s['ray1']:8.2f} {s['ray2']:8.2f} "
            f"{r['ray1_over_local']:10.2f} {r['ray2_speedup_over_ray1']:9.2f} "
            f"{r['two_process_ceiling']:7.2f} "
            f"{r['fixed_overhead_seconds']:8.2f} {r['rows_per_second']['ray2']:10.0f}"
        )
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
