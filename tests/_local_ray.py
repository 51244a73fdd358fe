"""A local Ray instance for the tests that run strategies on Ray workers."""

import contextlib
import os
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


@contextlib.contextmanager
def local_ray(*import_paths):
    """Start a local Ray (2 CPUs, no dashboard) for the block, then shut it down.

    Its workers import skdynal and the tests' helper modules (``tests/_nets.py``, ...) by
    name, and the modules of ``import_paths``.
    """
    import ray

    path = os.pathsep.join([str(ROOT), str(ROOT / "tests"), *map(str, import_paths)])
    ray.init(
        num_cpus=2,
        include_dashboard=False,
        log_to_driver=False,
        runtime_env={"env_vars": {"PYTHONPATH": path}},
    )
    try:
        yield
    finally:
        ray.shutdown()
