"""Active learning experiments: the paper's protocol, resumable runs, summaries and plots.

:func:`run_experiment` runs every (strategy, seed) cell of a protocol (an
:class:`ExperimentProtocol`, or the same fields as keywords) and returns an
:class:`ExperimentResults` (tidy rows, CSV/JSON, a learning-curve plot, and a summary with
the normalised area under the learning curve and a paired comparison with random
sampling). Strategies are named through a registry (:func:`available_strategies`,
:func:`register_strategy`); ``skdynal run`` is the command-line front end.
:func:`run_benchmark` (``skdynal benchmark``) runs the cross-domain suite: several tasks,
many seeds, paired tests and ranks.
"""

from ._benchmark import (
    BENCHMARK_TASKS,
    DEFAULT_BENCHMARK_STRATEGIES,
    TRAINING_PROTOCOLS,
    BenchmarkResults,
    BenchmarkTask,
    run_benchmark,
)
from ._cache import CellCacheWarning
from ._data import load_experiment_data
from ._protocol import ExperimentProtocol
from ._registry import (
    available_strategies,
    make_strategy,
    register_strategy,
    registered_strategies,
)
from ._report import format_accuracy_table, format_summary_table, plot_learning_curves
from ._runner import RESULT_COLUMNS, ExperimentResults, initial_indices, run_experiment
from ._summary import learning_curve_auc, stopping_overview, summarize, summarize_stopping

__all__ = [
    "BENCHMARK_TASKS",
    "DEFAULT_BENCHMARK_STRATEGIES",
    "RESULT_COLUMNS",
    "TRAINING_PROTOCOLS",
    "BenchmarkResults",
    "BenchmarkTask",
    "CellCacheWarning",
    "ExperimentProtocol",
    "ExperimentResults",
    "available_strategies",
    "format_accuracy_table",
    "format_summary_table",
    "initial_indices",
    "learning_curve_auc",
    "load_experiment_data",
    "make_strategy",
    "plot_learning_curves",
    "register_strategy",
    "registered_strategies",
    "run_benchmark",
    "run_experiment",
    "stopping_overview",
    "summarize",
    "summarize_stopping",
]
