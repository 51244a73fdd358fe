"""The benchmark's scheduling: cells as jobs in a process pool, and Ctrl-C in its workers."""

import concurrent.futures
import multiprocessing
import os
import signal
import threading
import time
from typing import NamedTuple

from tqdm.auto import tqdm

from .._interrupt import Interrupted
from .._validation import check_positive_int
from ._tasks import task_experiment

__all__ = ["CellJob", "SpawningWorkers", "init_worker", "n_workers", "run_cell_job", "run_jobs"]


class CellJob(NamedTuple):
    """One (task, training, strategy, seed) cell of the benchmark, as a worker receives it."""

    task: object
    training: str
    strategy: str
    seed: int
    out: str
    resume: bool
    stopping: object = None

    @property
    def key(self):
        """``(task name, training, strategy, seed)``: the cell's key in the timings."""
        return (self.task.name, self.training, self.strategy, self.seed)


_worker_interrupted = False


def _record_interrupt(signum, frame):
    global _worker_interrupted
    _worker_interrupted = True


def init_worker():
    """Worker initializer: record Ctrl-C instead of dying in the pool's queue."""
    # Ctrl-C reaches every process of the terminal's group. An idle worker only records
    # it (dying inside the executor's queue would break the pool) and refuses its next
    # cell; a busy one is stopped by the cell's own interrupt guard, which drops the cell.
    signal.signal(signal.SIGINT, _record_interrupt)
    # Workers start with SIGINT blocked (SpawningWorkers): a Ctrl-C while this worker
    # was still importing waited, and is delivered (recorded) now.
    if hasattr(signal, "pthread_sigmask"):
        signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT})


class SpawningWorkers:
    """Context manager around ``pool.submit``, which spawns the workers: SIGINT is held back.

    The main thread blocks SIGINT, so that a spawned worker starts with it blocked (the
    mask survives fork and exec) and a Ctrl-C while it imports waits for
    :func:`init_worker` instead of printing a traceback from multiprocessing's bootstrap.
    Here, a SIGINT meanwhile is only recorded (another thread may take it), and raised as
    ``KeyboardInterrupt`` when the block ends, once the pool knows all of its workers.
    """

    def __enter__(self):
        self._active = hasattr(signal, "pthread_sigmask") and (
            threading.current_thread() is threading.main_thread()
        )
        self._received = False
        if self._active:
            self._previous = signal.signal(signal.SIGINT, self._record)
            self._mask = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})
        return self

    def _record(self, signum, frame):
        self._received = True

    def __exit__(self, exc_type, exc, tb):
        if self._active:
            signal.pthread_sigmask(signal.SIG_SETMASK, self._mask)  # a pending one: recorded
            previous = self._previous
            signal.signal(  # runs the pending Python handler first
                signal.SIGINT, signal.default_int_handler if previous is None else previous
            )
            if self._received and exc_type is None:
                raise KeyboardInterrupt
        return False


def run_cell_job(job):
    """Worker: run (or load) one :class:`CellJob`; return its key, seconds and whether cached."""
    import torch

    if _worker_interrupted:
        raise Interrupted(f"Interrupted before the cell {job.strategy!r} seed {job.seed} started.")
    torch.set_num_threads(1)
    start = time.perf_counter()
    experiment = task_experiment(job.task, [job.strategy], job.training, job.out, job.stopping)
    _, cached = experiment.cell(job.strategy, job.strategy, job.seed, resume=job.resume)
    return job.key, time.perf_counter() - start, cached


def n_workers(n_jobs):
    """The number of worker processes: ``n_jobs``, or every core this process may use."""
    if n_jobs is None:
        try:
            return max(1, len(os.sched_getaffinity(0)))
        except AttributeError:  # not on Linux
            return max(1, os.cpu_count() or 1)
    return check_positive_int(n_jobs, "n_jobs")


def run_jobs(jobs, n_jobs, progress):
    """Run every :class:`CellJob` in ``n_jobs`` worker processes (in this one for 1).

    Returns
    -------
    timings : dict
        ``{job.key: (seconds, cached)}``.
    """
    timings = {}
    with tqdm(total=len(jobs), disable=not progress, unit="cell", desc="benchmark") as bar:
        if n_jobs == 1:
            for job in jobs:
                key, seconds, cached = run_cell_job(job)
                timings[key] = (seconds, cached)
                bar.update(1)
            return timings
        context = multiprocessing.get_context("spawn")
        with concurrent.futures.ProcessPoolExecutor(
            n_jobs, mp_context=context, initializer=init_worker
        ) as pool:
            try:
                with SpawningWorkers():
                    futures = [pool.submit(run_cell_job, job) for job in jobs]
                for future in concurrent.futures.as_completed(futures):
                    key, seconds, cached = future.result()
                    timings[key] = (seconds, cached)
                    bar.set_postfix_str(f"{key[0]} {key[2]} seed {key[3]}")
                    bar.update(1)
            except BaseException:
                # running cells end at once on Ctrl-C (their guard drops them); pending
                # ones are never started
                pool.shutdown(wait=True, cancel_futures=True)
                raise
    return timings
