"""The benchmark's task table: tasks, training protocols, default strategies.

A configuration of the benchmark is a ``(strategy, training)`` pair: a registered strategy
name and a key of :data:`TRAINING_PROTOCOLS`. Every task runs every configuration over
the same seeds; a seed fixes the initial labeled set and the initial weights, so every
configuration of a task sees the same ones and all comparisons are paired by seed.
:func:`task_experiment` binds a task, its data and a training protocol into the
:class:`~skdynal.experiments._runner.Experiment` whose cells the benchmark runs.
"""

import dataclasses
import functools
import os

from ._protocol import ExperimentProtocol
from ._runner import Experiment

__all__ = [
    "BASELINE",
    "BENCHMARK_TASKS",
    "CONFIG_COLUMNS",
    "DEFAULT_BENCHMARK_STRATEGIES",
    "TRAINING_PROTOCOLS",
    "BenchmarkTask",
    "config_label",
    "task_experiment",
    "task_protocol",
]


@dataclasses.dataclass(frozen=True)
class BenchmarkTask:
    """One task of the benchmark: a dataset, a model and an active learning protocol.

    Parameters
    ----------
    name : str
        Name of the task in tables and folders.
    dataset : str
        Name accepted by :func:`skdynal.experiments.load_experiment_data`.
    model : str
        Model name (:data:`skdynal.models.MODELS`).
    initial, query, rounds : int
        Initial labeled set size (drawn class-balanced), samples per query, query rounds.
    epochs : int
        Epochs per round with fixed-epoch training, and the maximum with train-until-fit.
    min_epochs : int
        Minimum epochs per round with train-until-fit.
    lr, batch_size : float, int
        Adam's learning rate and the batch size.
    seeds : int
        Seeds of the full suite.
    module_kwargs : dict
        Extra module constructor arguments.
    load_kwargs : dict
        Extra arguments of the data loader (e.g. ``n_train`` to subsample the pool).
    quick : dict
        Overrides of the above for ``quick=True`` (the CI smoke run).
    first_seed : int
        The seeds are ``first_seed .. first_seed + seeds - 1``.
    """

    name: str
    dataset: str
    model: str
    initial: int
    query: int
    rounds: int
    epochs: int
    min_epochs: int
    lr: float
    batch_size: int
    seeds: int
    module_kwargs: dict = dataclasses.field(default_factory=dict)
    load_kwargs: dict = dataclasses.field(default_factory=dict)
    quick: dict = dataclasses.field(default_factory=dict)
    first_seed: int = 0

    @property
    def seed_list(self):
        """The task's seeds."""
        return list(range(self.first_seed, self.first_seed + self.seeds))

    def scaled(self, quick):
        """The task with its ``quick`` overrides applied when ``quick`` is true."""
        return dataclasses.replace(self, quick={}, **self.quick) if quick else self


_QUICK_SMALL = {"rounds": 2, "seeds": 2, "epochs": 10, "min_epochs": 2}

#: Cold starts of the small tasks: (task, initial labels, labels per query, rounds); two
#: labels per class to begin with and small batches; 10 seeds each.
_COLD_STARTS = (
    ("digits", 20, 10, 15),
    ("breast_cancer", 4, 4, 12),
    ("three_clust", 4, 4, 12),
    ("diverging_sin", 4, 4, 15),
)

_SMALL_TASKS = (
    BenchmarkTask(
        "digits",
        "digits",
        "mlp",
        initial=20,
        query=20,
        rounds=10,
        epochs=50,
        min_epochs=10,
        lr=1e-3,
        batch_size=32,
        seeds=20,
        quick=_QUICK_SMALL,
    ),
    BenchmarkTask(
        "breast_cancer",
        "breast_cancer",
        "mlp",
        initial=10,
        query=10,
        rounds=10,
        epochs=50,
        min_epochs=10,
        lr=1e-3,
        batch_size=32,
        seeds=20,
        module_kwargs={"hidden": (64, 64)},
        quick=_QUICK_SMALL,
    ),
    BenchmarkTask(
        "three_clust",
        "three_clust",
        "mlp",
        initial=6,
        query=6,
        rounds=10,
        epochs=50,
        min_epochs=10,
        lr=1e-2,
        batch_size=32,
        seeds=20,
        module_kwargs={"hidden": (32, 32)},
        quick=_QUICK_SMALL,
    ),
    BenchmarkTask(
        "diverging_sin",
        "diverging_sin",
        "mlp",
        initial=10,
        query=10,
        rounds=10,
        epochs=50,
        min_epochs=10,
        lr=1e-2,
        batch_size=32,
        seeds=20,
        module_kwargs={"hidden": (32, 32)},
        quick=_QUICK_SMALL,
    ),
)
_COLD_BASE = {task.name: task for task in _SMALL_TASKS}

#: The tasks of the suite, by name.
BENCHMARK_TASKS = {
    task.name: task
    for task in (
        *_SMALL_TASKS,
        BenchmarkTask(
            "fashion_mnist",
            "fashion_mnist",
            "lenet",
            initial=20,
            query=40,
            rounds=8,
            epochs=60,
            min_epochs=10,
            lr=1e-3,
            batch_size=64,
            seeds=10,
            load_kwargs={"n_train": 6000, "n_test": 5000},
            quick={
                "rounds": 1,
                "seeds": 1,
                "epochs": 5,
                "min_epochs": 2,
                "load_kwargs": {"n_train": 1000, "n_test": 1000},
            },
        ),
        BenchmarkTask(
            "fashion_mnist_mid",
            "fashion_mnist",
            "mlp",
            initial=1000,
            query=250,
            rounds=8,
            epochs=30,
            min_epochs=10,
            lr=1e-3,
            batch_size=64,
            seeds=10,
            module_kwargs={"hidden": (256, 128)},
            load_kwargs={"n_train": 20000, "n_test": 5000},
            quick={
                "initial": 200,
                "query": 100,
                "rounds": 1,
                "seeds": 1,
                "epochs": 3,
                "min_epochs": 2,
                "load_kwargs": {"n_train": 2000, "n_test": 1000},
            },
        ),
        *(
            dataclasses.replace(
                _COLD_BASE[name],
                name=f"{name}_cold",
                initial=initial,
                query=query,
                rounds=rounds,
                seeds=10,
                quick=_QUICK_SMALL,
            )
            for name, initial, query, rounds in _COLD_STARTS
        ),
    )
}

#: Training protocols: fixed epochs per round, or the paper's "until convergence" (the
#: official code's: at least ``min_epochs``, then until the labeled-set accuracy has stayed
#: at or above 0.97 for 10 epochs, with a fresh optimizer after every query).
TRAINING_PROTOCOLS = {
    "fixed": {},
    "until-fit": {"train_until_fit": {"threshold": 0.97, "patience": 10}, "reset_optimizer": True},
}

#: Strategies of the full suite when none are given.
DEFAULT_BENCHMARK_STRATEGIES = (
    "random",
    "margin",
    "entropy",
    "coreset",
    "badge",
    "albl",
    "dynamical",
    "dynamical-balanced",
    "dynamical-topb",
)

#: The strategy every configuration is compared with (always run).
BASELINE = "random"

#: The columns of a benchmark row that name its configuration, in the key's order.
CONFIG_COLUMNS = ("strategy", "training")


def config_label(key):
    """How the report shows the configuration ``key = (strategy, training)``:
    ``"strategy [training]"``."""
    strategy, training = key
    return f"{strategy} [{training}]"


@functools.lru_cache(maxsize=4)
def _task_data(dataset, model, load_items):
    from ._data import load_experiment_data

    return load_experiment_data(dataset, model, **dict(load_items))


#: The fields a task sets under the same name in the protocol (``dataset`` and ``seeds``
#: differ: the protocol records the task's name and the list of its seeds).
_SHARED_FIELDS = tuple(
    field.name
    for field in dataclasses.fields(BenchmarkTask)
    if field.name in {f.name for f in dataclasses.fields(ExperimentProtocol)}
    and field.name not in ("dataset", "seeds")
)


def task_protocol(task, strategies, training, stopping=None):
    """The :class:`~skdynal.experiments.ExperimentProtocol` of a task under a training protocol.

    The task's own settings, a class-balanced initial set, the baseline, and the fields of
    ``TRAINING_PROTOCOLS[training]`` (with the task's ``min_epochs`` for train-until-fit);
    every other field keeps the protocol's default.

    Parameters
    ----------
    task : BenchmarkTask
    strategies : list of str
        Registered strategy names.
    training : str
        A key of :data:`TRAINING_PROTOCOLS`.
    stopping : list of str, default=None
        Stopping rules watched in every cell.

    Returns
    -------
    protocol : ExperimentProtocol
    """
    fields = {name: getattr(task, name) for name in _SHARED_FIELDS}
    fields.update(TRAINING_PROTOCOLS[training])
    if fields.get("train_until_fit"):
        fields["train_until_fit"] = {**fields["train_until_fit"], "min_epochs": task.min_epochs}
    fields["module_kwargs"] = task.module_kwargs or None
    return ExperimentProtocol(
        **fields,
        strategies=list(strategies),
        seeds=task.seed_list,
        dataset=task.name,
        initial_sampling="balanced",
        baseline=BASELINE,
        stopping=stopping,
    )


def task_experiment(task, strategies, training, out, stopping=None):
    """The task's protocol bound to its data, cells stored in ``out/<task>/<training>``.

    Returns
    -------
    experiment : Experiment
    """
    data = _task_data(task.dataset, task.model, tuple(sorted(task.load_kwargs.items())))
    protocol = task_protocol(task, strategies, training, stopping)
    return Experiment(data, protocol, out=os.path.join(out, task.name, training))
