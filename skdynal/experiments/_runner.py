"""The active learning protocol of the dynamicAL experiments, resumable and seeded."""

import dataclasses
import math
import os
import time
import warnings

import numpy as np
import torch
from sklearn.base import clone
from sklearn.utils import check_random_state
from tqdm.auto import tqdm

from .. import _modal_compat
from .._interrupt import interrupt_guard, raise_if_interrupted
from .._random import seeded_global_rngs
from .._validation import check_positive_int
from ._cache import RESULT_COLUMNS, CellCache, protocol_key
from ._net_factory import make_learner, net_builder, required_net_class
from ._protocol import ExperimentProtocol
from ._registry import make_strategy
from ._report import (
    format_accuracy_table,
    format_stopping_table,
    format_summary_table,
    plot_learning_curves,
    write_csv,
    write_json,
)
from ._summary import summarize, summarize_stopping

# scikit-learn >= 1.8 with modAL 0.4.x, also when every strategy is a plain modAL function.
_modal_compat.apply()

__all__ = [
    "RESULT_COLUMNS",
    "ExperimentProtocol",
    "ExperimentResults",
    "initial_indices",
    "run_experiment",
]


SUMMARY_COLUMNS = [
    "strategy",
    "rank",
    "n_seeds",
    "auc_mean",
    "auc_stderr",
    "final_accuracy_mean",
    "final_accuracy_stderr",
    "diff_vs_baseline",
    "diff_stderr",
    "p_ttest",
    "p_wilcoxon",
    "wins",
    "n_paired",
]


class ExperimentResults:
    """Results of :func:`run_experiment`: tidy rows, the summary, tables, files and a plot.

    Attributes
    ----------
    rows : list of dict
        One row per (strategy, seed, round) with the keys of :data:`RESULT_COLUMNS`. Round 0
        is the net trained on the initial labeled set (``query_seconds`` is None).
    config : dict
        The protocol that produced the rows, bound to the data, as written to
        ``config.json`` (:meth:`ExperimentProtocol.to_dict` plus ``n_train``, ``n_test``
        and ``protocol_key``, with the iNAS settings completed from the data).
    protocol : ExperimentProtocol or None
        The protocol itself (None when the results were built from rows and a config).
    baseline : str or None
        The strategy other strategies are compared with in :meth:`summary`.
    paths : dict of str to str
        The files written by the last :meth:`save`.
    """

    def __init__(self, rows, config, baseline="random", protocol=None):
        self.rows = rows
        self.config = config
        self.baseline = baseline
        self.protocol = protocol
        self.paths = {}

    def summary(self):
        """Per-strategy AUC, rank and paired comparison (see :func:`summarize`)."""
        return summarize(self.rows, baseline=self.baseline)

    def accuracy_table(self):
        """Test accuracy per round (mean over seeds), one column per strategy, as text."""
        return format_accuracy_table(self.rows)

    def summary_table(self):
        """:meth:`summary` as aligned text."""
        return format_summary_table(self.summary(), baseline=self.baseline)

    def stopping_summary(self, level=0.98):
        """When each stopping rule of the protocol stops, per strategy (see
        :func:`~skdynal.experiments.summarize_stopping`); empty without rules."""
        return summarize_stopping(self.rows, level=level)

    def stopping_table(self, level=0.98):
        """:meth:`stopping_summary` as aligned text ("" without rules)."""
        return format_stopping_table(self.stopping_summary(level), level=level)

    def plot(self, path, title=None):
        """Write the learning curves (mean ± standard error over seeds) to ``path``."""
        if title is None:
            title = (
                f"{self.config.get('dataset')} / {self.config.get('model')}: "
                f"mean ± s.e. over {len(self.config.get('seeds', []))} seeds"
            )
        return plot_learning_curves(self.rows, path, title=title, baseline=self.baseline)

    def save(self, out, plot=True):
        """Write ``results.csv``, ``results.json``, ``summary.csv``, ``summary.json``,
        ``config.json`` and ``learning_curve.png`` into the folder ``out``, and with
        stopping rules ``stopping.csv`` (:meth:`stopping_summary`).

        Returns
        -------
        paths : dict of str to str
        """
        os.makedirs(out, exist_ok=True)
        summary = self.summary()
        paths = {
            "results_csv": os.path.join(out, "results.csv"),
            "results_json": os.path.join(out, "results.json"),
            "summary_csv": os.path.join(out, "summary.csv"),
            "summary_json": os.path.join(out, "summary.json"),
            "config": os.path.join(out, "config.json"),
        }
        write_csv(paths["results_csv"], self.rows, RESULT_COLUMNS)
        write_json(paths["results_json"], self.rows)
        write_csv(paths["summary_csv"], summary, SUMMARY_COLUMNS)
        write_json(paths["summary_json"], {"baseline": self.baseline, "strategies": summary})
        write_json(paths["config"], self.config)
        stopping = self.stopping_summary()
        if stopping:
            paths["stopping_csv"] = os.path.join(out, "stopping.csv")
            write_csv(paths["stopping_csv"], stopping, list(stopping[0]))
        if plot:
            paths["plot"] = self.plot(os.path.join(out, "learning_curve.png"))
        self.paths = paths
        return paths


# ----------------------------------------------------------------------------- data


def _check_data(data):
    keys = ("X_train", "y_train", "X_test", "y_test")
    try:
        arrays = {k: data[k] for k in keys}
    except (KeyError, TypeError):
        raise TypeError(
            "data must be a mapping (e.g. the Bunch of skdynal.datasets.load_dataset) with "
            f"keys {keys}."
        ) from None
    X_train = np.asarray(arrays["X_train"], dtype=np.float32)
    X_test = np.asarray(arrays["X_test"], dtype=np.float32)
    y_train = np.asarray(arrays["y_train"])
    y_test = np.asarray(arrays["y_test"])
    if len(X_train) != len(y_train) or len(X_test) != len(y_test):
        raise ValueError(
            f"X and y lengths differ: X_train {len(X_train)} vs y_train {len(y_train)}, "
            f"X_test {len(X_test)} vs y_test {len(y_test)}."
        )
    if X_train.shape[1:] != X_test.shape[1:]:
        raise ValueError(
            f"X_train rows have shape {X_train.shape[1:]} but X_test rows {X_test.shape[1:]}."
        )
    if len(X_test) == 0:
        raise ValueError("The test set is empty; accuracy cannot be measured.")
    for name, y in (("y_train", y_train), ("y_test", y_test)):
        if not np.issubdtype(y.dtype, np.integer) or (len(y) and y.min() < 0):
            raise ValueError(f"{name} must hold integer class labels 0..K-1.")
    classes = data.get("classes") if hasattr(data, "get") else None
    n_classes = len(classes) if classes is not None else int(max(y_train.max(), y_test.max()) + 1)
    return X_train, y_train.astype(np.int64), X_test, y_test.astype(np.int64), n_classes


def _strategy_for_cell(spec, seed, config):
    """A fresh, seeded strategy for one (strategy, seed) cell."""
    if isinstance(spec, str):
        return make_strategy(spec, random_state=seed, protocol=config)
    if hasattr(spec, "get_params"):
        strategy = clone(spec)
        if "random_state" in strategy.get_params(deep=False) and strategy.random_state is None:
            strategy.set_params(random_state=seed)
        return strategy
    return spec


# ----------------------------------------------------------------------------- cells


def _accuracy(net, X_test, y_test):
    return float(np.mean(net.predict(X_test) == y_test))


def _check_query_indices(indices, n_pool, n_wanted, label):
    indices = np.asarray(indices).reshape(-1)
    if not np.issubdtype(indices.dtype, np.integer):
        raise TypeError(f"Strategy {label!r} returned non-integer indices ({indices.dtype}).")
    if len(indices) != n_wanted or len(np.unique(indices)) != n_wanted:
        raise ValueError(
            f"Strategy {label!r} returned {len(np.unique(indices))} distinct indices out of "
            f"{len(indices)}; {n_wanted} distinct ones were asked for."
        )
    if indices.min() < 0 or indices.max() >= n_pool:
        raise ValueError(f"Strategy {label!r} returned indices outside the pool of {n_pool}.")
    return indices


def initial_indices(y, size, random_state, balanced=False):
    """Indices of an initial labeled set of ``size`` samples drawn from labels ``y``.

    Parameters
    ----------
    y : array-like of shape (n_samples,)
        Labels of the pool.
    size : int
        Number of samples to draw, at most ``len(y)``.
    random_state : int or numpy.random.RandomState
        Seed of the draw.
    balanced : bool, default=False
        Draw ``size // K`` samples of each of the K classes present in ``y`` and the
        remaining ``size % K`` from distinct classes chosen at random (the official
        dynamicAL code's ``run.sh`` starts from 5 labels per class). A class with too few
        samples gives all it has and the rest is drawn from the other classes. False draws
        uniformly without replacement.

    Returns
    -------
    indices : ndarray of int
    """
    rng = check_random_state(random_state)
    y = np.asarray(y)
    if not balanced:
        return rng.choice(len(y), size=size, replace=False)
    classes = np.unique(y)
    per_class = np.full(len(classes), size // len(classes))
    per_class[rng.choice(len(classes), size=size % len(classes), replace=False)] += 1
    members = [np.flatnonzero(y == c) for c in classes]
    chosen = [
        rng.choice(m, size=min(k, len(m)), replace=False)
        for m, k in zip(members, per_class, strict=True)
    ]
    chosen = np.concatenate(chosen)
    missing = size - len(chosen)
    if missing:
        rest = np.setdiff1d(np.arange(len(y)), chosen)
        chosen = np.concatenate([chosen, rng.choice(rest, size=missing, replace=False)])
    return chosen


def _update_rules(rules, learner, X_train, pool, stop_set):
    """Update every stopping rule on this round's model; return the row's ``stopping``.

    The global random generators are restored afterwards, so that the rules cannot change
    the training that follows (skorch shuffles with torch's generator).
    """
    np_state = np.random.get_state()  # noqa: NPY002
    with torch.random.fork_rng(devices=[]):
        try:
            record = {}
            X_unlabeled, pool_ids = X_train[pool], pool.tolist()
            for label, rule in rules:
                stop = rule.update(
                    learner,
                    X_unlabeled,
                    pool_ids=pool_ids,
                    n_labeled=len(X_train) - len(pool),
                    X_stop=stop_set,
                )
                statistic = rule.history_[-1]
                record[label] = {
                    "statistic": None if math.isnan(statistic) else statistic,
                    "stop": bool(stop),
                }
        finally:
            np.random.set_state(np_state)  # noqa: NPY002
    return record


def _epochs_trained(net, before):
    return len(net.history) - before


def _run_cell(label, strategy, seed, experiment, on_round=lambda: None):
    """Run the protocol for one (strategy, seed) of a :class:`Experiment`; return its rows."""
    protocol, inas = experiment.protocol, experiment.inas
    X_train, y_train, X_test, y_test = experiment.arrays
    rows = []
    rules = protocol.stopping_rules()

    def record(rnd, n_labels, acc, query_s, train_s, epochs, learner):
        watched = {}
        if rules:
            watched = {"stopping": _update_rules(rules, learner, X_train, pool, stop_set)}
        searched = {}
        if inas:
            searched = {
                "structure": list(learner.structure_),
                "search_seconds": learner.search_history_[-1]["search_seconds"],
            }
        rows.append(
            {
                **searched,
                "dataset": protocol.dataset,
                "model": experiment.config["model"],
                "strategy": label,
                "seed": seed,
                "round": rnd,
                "n_labels": int(n_labels),
                "test_accuracy": acc,
                "query_seconds": query_s,
                "train_seconds": train_s,
                "train_epochs": epochs,
                **watched,
            }
        )
        on_round()

    rng = np.random.RandomState(seed)
    labeled = initial_indices(
        y_train, protocol.initial, rng, balanced=protocol.initial_sampling == "balanced"
    )
    pool = np.setdiff1d(np.arange(len(X_train)), labeled)
    stop_set = X_train[pool] if rules else None
    with seeded_global_rngs(seed), warnings.catch_warnings():
        # modAL passes check_X_y(force_all_finite=...), deprecated in scikit-learn 1.6.
        warnings.filterwarnings("ignore", message=".*force_all_finite.*", category=FutureWarning)
        net = experiment.build_net(required_net_class(strategy))
        start = time.perf_counter()
        learner = make_learner(
            net, strategy, X_train[labeled], y_train[labeled], inas=inas, seed=seed
        )
        train_s = time.perf_counter() - start
        raise_if_interrupted()  # skorch ends training on Ctrl-C and returns: stop here
        record(
            0,
            len(labeled),
            _accuracy(net, X_test, y_test),
            None,
            train_s,
            _epochs_trained(net, 0),
            learner,
        )
        for rnd in range(1, protocol.rounds + 1):
            n_query = protocol.query  # the protocol checked that the pool has enough
            start = time.perf_counter()
            indices, _ = learner.query(X_train[pool], n_instances=n_query)
            query_s = time.perf_counter() - start
            raise_if_interrupted()
            indices = _check_query_indices(indices, len(pool), n_query, label)
            chosen = pool[indices]
            before = len(net.history)
            start = time.perf_counter()
            learner.teach(X_train[chosen], y_train[chosen])
            train_s = time.perf_counter() - start
            raise_if_interrupted()
            labeled = np.concatenate([labeled, chosen])
            pool = np.delete(pool, indices)
            fresh = protocol.reinit or inas
            record(
                rnd,
                len(labeled),
                _accuracy(net, X_test, y_test),
                query_s,
                train_s,
                _epochs_trained(net, 0 if fresh else before),
                learner,
            )
    return rows


# ----------------------------------------------------------------------------- runner


def run_experiment(
    data,
    protocol=None,
    *,
    out=None,
    resume=True,
    progress=True,
    plot=True,
    n_threads=None,
    **fields,
):
    """Run pool-based batch active learning for every strategy and seed.

    The protocol of the dynamicAL experiments [1]_: for each seed, draw an initial labeled
    set of ``initial`` training samples, build a fresh net (same seed, same initial set and
    same initial weights for every strategy, so strategies are compared paired by seed),
    train it on the labeled set, then ``rounds`` times: query ``query`` pool samples with
    the strategy, add them with their labels, and continue training (warm start; with
    ``reinit=True`` the net is re-initialised before every fit). After every fit the test
    accuracy is measured on the held-out test set, which is never used for anything else
    (no validation split, no early stopping, no model selection).

    Every finished (strategy, seed) cell is stored in ``out`` (one JSON file per cell,
    written atomically); with ``resume=True`` a run interrupted at any point recomputes
    only the unfinished cells.

    Parameters
    ----------
    data : mapping
        ``X_train``, ``y_train``, ``X_test``, ``y_test`` (labels ``0..K-1``) and optionally
        ``classes``, as returned by :func:`skdynal.datasets.load_dataset`. The training set
        is the pool; its labels are the oracle.
    protocol : ExperimentProtocol, default=None
        The protocol: model, strategies, budget, training, seeds, dataset name, baseline
        and stopping rules (see :class:`ExperimentProtocol`), e.g. read back from a
        ``config.json`` with :meth:`ExperimentProtocol.read`. None builds it from
        ``fields``.
    out : str or path-like, default=None
        Folder for the per-cell files and, at the end, the results (see
        :meth:`ExperimentResults.save`). None keeps everything in memory.
    resume : bool, default=True
        Reuse finished cells found in ``out`` (those run with the same data, model,
        protocol, strategy and seed) instead of recomputing them.
    progress : bool, default=True
        Show a tqdm bar over strategies x seeds x rounds.
    plot : bool, default=True
        With ``out``, also write the learning-curve plot.
    n_threads : int, default=None
        Torch CPU threads during the run (restored afterwards); None leaves torch's setting.
        Small models on a busy CPU run many times faster with 1 thread.
    **fields
        Instead of ``protocol``: the fields of :class:`ExperimentProtocol` as keywords,
        with the same names, meanings and defaults; ``run_experiment(data, **fields)`` is
        ``run_experiment(data, ExperimentProtocol(**fields))``.

    Returns
    -------
    results : ExperimentResults

    References
    ----------
    .. [1] H. Wang, W. Huang, Z. Wu, A. Margenot, H. Tong and J. He, "Deep Active Learning
       by Leveraging Training Dynamics", NeurIPS 2022.

    Examples
    --------
    >>> from skdynal.datasets import load_digits_split
    >>> from skdynal.experiments import ExperimentProtocol, run_experiment
    >>> data = load_digits_split(random_state=0)
    >>> protocol = ExperimentProtocol(
    ...     model="mlp", strategies=["random", "dynamical"], initial=20, query=10, rounds=1,
    ...     seeds=1, epochs=2
    ... )
    >>> results = run_experiment(data, protocol, progress=False)
    >>> [(r["strategy"], r["round"], r["n_labels"]) for r in results.rows]
    [('random', 0, 20), ('random', 1, 30), ('dynamical', 0, 20), ('dynamical', 1, 30)]
    """
    protocol = _protocol_of(protocol, fields)
    experiment = Experiment(data, protocol, out=out)
    previous_threads = torch.get_num_threads()
    if n_threads is not None:
        torch.set_num_threads(check_positive_int(n_threads, "n_threads"))
    try:
        rows = experiment.run(resume=resume, progress=progress)
    finally:
        torch.set_num_threads(previous_threads)
    results = ExperimentResults(
        rows, experiment.config, baseline=protocol.baseline, protocol=protocol
    )
    if out is not None:
        results.save(os.fspath(out), plot=plot)
    return results


def _protocol_of(protocol, fields):
    """The protocol of :func:`run_experiment`: ``protocol``, or one built from ``fields``."""
    known = {field.name for field in dataclasses.fields(ExperimentProtocol)}
    unknown = sorted(set(fields) - known)
    if unknown:
        raise TypeError(
            f"run_experiment got unknown keywords {unknown}; the protocol's fields are "
            f"{sorted(known)} (see ExperimentProtocol)."
        )
    if protocol is None:
        return ExperimentProtocol(**fields)
    if not isinstance(protocol, ExperimentProtocol):
        raise TypeError(
            f"protocol must be an ExperimentProtocol, got {protocol!r}; give the protocol's "
            "fields as keywords instead (model=..., strategies=...)."
        )
    if fields:
        raise TypeError(
            f"run_experiment got protocol= and also the protocol keywords {sorted(fields)}; "
            "give the protocol either as one ExperimentProtocol or as keywords (use "
            "dataclasses.replace(protocol, ...) to change some of its fields)."
        )
    return protocol


class Experiment:
    """A protocol bound to the data: its config, net factory and per-cell cache.

    Parameters
    ----------
    data : mapping
        See :func:`run_experiment`.
    protocol : ExperimentProtocol
    out : str or path-like, default=None
        The results folder; its ``cells`` subfolder holds the cell cache.
    """

    def __init__(self, data, protocol, out=None):
        X_train, y_train, X_test, y_test, n_classes = _check_data(data)
        protocol.check_pool(len(X_train))
        self.protocol = protocol
        self.items = protocol.strategies
        self.seeds = list(protocol.seeds)
        self.arrays = (X_train, y_train, X_test, y_test)
        self.inas = protocol.resolved_inas(X_train, n_classes)
        self.build_net = net_builder(protocol, X_train, n_classes)
        config = {**protocol.to_dict(), "inas": self.inas}
        config["n_train"], config["n_test"] = len(X_train), len(X_test)
        config["protocol_key"] = protocol_key(protocol, config, self.arrays)
        self.config = config
        self.cells_dir = None if out is None else os.path.join(os.fspath(out), "cells")
        self.cache = CellCache(
            self.cells_dir,
            config["protocol_key"],
            rounds=protocol.rounds,
            initial=protocol.initial,
            query=protocol.query,
            stopping=protocol.stopping_labels,
        )

    def cell(self, label, spec, seed, resume=True, on_round=lambda: None):
        """Rows of one (strategy, seed) cell, from the cache or computed (and cached).

        Returns
        -------
        rows : list of dict
        cached : bool
        """
        rows = self.cache.load(label, spec, seed) if resume else None
        if rows is not None:
            return rows, True
        kept = "" if self.cells_dir is None else f"; finished cells are kept in {self.cells_dir}"
        # skorch ends training on KeyboardInterrupt and returns normally, so a real Ctrl-C
        # would otherwise store a truncated cell as finished.
        with interrupt_guard(
            f"Interrupted during the cell {label!r} seed {seed}; it was dropped, not stored{kept}."
        ):
            strategy = _strategy_for_cell(spec, seed, self.config)
            rows = _run_cell(label, strategy, seed, self, on_round=on_round)
        self.cache.store(label, spec, seed, rows)
        return rows, False

    def run(self, resume=True, progress=True):
        """Rows of every cell, strategies in order, then seeds."""
        rows = []
        n_points = self.protocol.rounds + 1
        with tqdm(
            total=len(self.items) * len(self.seeds) * n_points,
            disable=not progress,
            unit="round",
            desc="active learning",
        ) as bar:
            for label, spec in self.items:
                for seed in self.seeds:
                    bar.set_postfix_str(f"{label} seed {seed}")
                    before = bar.n
                    cell_rows, _ = self.cell(
                        label, spec, seed, resume=resume, on_round=lambda: bar.update(1)
                    )
                    bar.update(n_points - (bar.n - before))
                    rows.extend(cell_rows)
        return rows
