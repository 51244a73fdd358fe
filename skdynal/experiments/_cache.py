"""The per-cell cache of an experiment: one JSON file per finished (strategy, seed) cell."""

import dataclasses
import hashlib
import json
import math
import os
import re
import warnings

import numpy as np
from skorch import NeuralNet

from ._protocol import CELL_KEYS, ExperimentProtocol, stable_repr
from ._registry import make_strategy
from ._report import jsonable, write_json

__all__ = ["RESULT_COLUMNS", "CellCache", "CellCacheWarning", "protocol_key"]

#: Format 2 adds a SHA-256 of the rows; format-1 cells (no checksum) are still read, checked
#: for their structure only.
_CELL_FORMAT = 2
_READABLE_FORMATS = (1, 2)
#: Columns of the tidy results table, one row per (strategy, seed, round): the keys every
#: row of a cell has (INAS cells add ``structure`` and ``search_seconds``).
RESULT_COLUMNS = [
    "dataset",
    "model",
    "strategy",
    "seed",
    "round",
    "n_labels",
    "test_accuracy",
    "query_seconds",
    "train_seconds",
    "train_epochs",
]


class CellCacheWarning(UserWarning):
    """A stored cell was damaged or edited; it is recomputed. The message names the file."""


def _rows_checksum(rows):
    text = json.dumps(jsonable(rows), sort_keys=True, allow_nan=False)
    return hashlib.sha256(text.encode()).hexdigest()


def _is_number(value):
    return isinstance(value, int | float) and not isinstance(value, bool)


def _rows_problem(rows, label, seed, expected):
    """Why ``rows`` cannot be this cell's rows, or None."""
    if not isinstance(rows, list) or not all(isinstance(r, dict) for r in rows):
        return "its rows are not a list of objects"
    if expected is not None and len(rows) != expected["rounds"] + 1:
        return f"it has {len(rows)} rows, the protocol gives {expected['rounds'] + 1}"
    for i, row in enumerate(rows):
        missing = [k for k in RESULT_COLUMNS if k not in row]
        if missing:
            return f"row {i} lacks {', '.join(missing)}"
        if row["strategy"] != label or row["seed"] != seed or row["round"] != i:
            return (
                f"row {i} is for strategy {row['strategy']!r}, seed {row['seed']!r}, round "
                f"{row['round']!r}, not {label!r}, {seed}, {i}"
            )
        accuracy = row["test_accuracy"]
        if not (_is_number(accuracy) and math.isfinite(accuracy) and 0 <= accuracy <= 1):
            return f"row {i} has test_accuracy {accuracy!r}, not a number in [0, 1]"
        if expected is not None:
            n_labels = expected["initial"] + i * expected["query"]
            if row["n_labels"] != n_labels:
                return f"row {i} has {row['n_labels']!r} labels, the protocol gives {n_labels}"
            if expected.get("stopping"):
                problem = _stopping_problem(row, i, expected["stopping"])
                if problem is not None:
                    return problem
    return None


def _data_fingerprint(*arrays):
    digest = hashlib.sha1()
    for array in arrays:
        array = np.ascontiguousarray(array)
        digest.update(f"{array.dtype}{array.shape}".encode())
        digest.update(memoryview(array).cast("B"))
    return digest.hexdigest()[:16]


def protocol_key(protocol, config, arrays):
    """The hash that a cached cell must carry to be reused for ``protocol`` on ``arrays``.

    Parameters
    ----------
    protocol : ExperimentProtocol
    config : dict
        The protocol bound to the data (``model`` its label, ``inas`` resolved).
    arrays : tuple of ndarray
        ``X_train, y_train, X_test, y_test``.

    Returns
    -------
    key : str
        16 hexadecimal digits.
    """
    key = {name: config[name] for name in CELL_KEYS}
    # Added to the key only when not the default, so that cells stored before these
    # options existed are still found.
    defaults = {field.name: field.default for field in dataclasses.fields(ExperimentProtocol)}
    for name in ("train_until_fit", "reset_optimizer", "initial_sampling", "inas"):
        if config[name] != defaults[name]:
            key[name] = config[name]
    key["data"] = _data_fingerprint(*arrays)
    model = protocol.model
    key["net"] = stable_repr(model if isinstance(model, (NeuralNet, str)) else model.__qualname__)
    key["module_kwargs"] = stable_repr(sorted(protocol.module_kwargs.items()))
    key["net_kwargs"] = stable_repr(sorted(protocol.net_kwargs.items()))
    if protocol.stopping is not None:
        key["stopping"] = [
            [label, _stopping_fingerprint(spec)] for label, spec in protocol.stopping
        ]
    return hashlib.sha1(json.dumps(key, sort_keys=True).encode()).hexdigest()[:16]


def _strategy_fingerprint(spec):
    """What a cell's strategy is: an estimator's repr, or a registry name with the
    parameters it builds, so that a cell stored before a name changed meaning (the
    registry's ``dynamical`` follows ``DynamicALSampler``'s default) is recomputed."""
    if not isinstance(spec, str):
        return stable_repr(spec)
    strategy = make_strategy(spec)
    if not hasattr(strategy, "get_params"):
        return spec
    params = strategy.get_params(deep=False)
    params.pop("random_state", None)
    return f"{spec} {stable_repr(sorted(params.items()))}"


def _stopping_fingerprint(spec):
    """What a stopping rule is: its repr, with the parameters a name builds."""
    if isinstance(spec, str):
        from ..stopping import make_stopping_rule

        return f"{spec} {stable_repr(make_stopping_rule(spec))}"
    return stable_repr(spec)


def _stopping_problem(row, i, labels):
    """Why row ``i`` does not hold the records of the stopping rules ``labels``, or None."""
    records = row.get("stopping")
    if not isinstance(records, dict) or set(records) != set(labels):
        return f"row {i} lacks the records of the stopping rules {list(labels)}"
    for label, record in records.items():
        statistic = record.get("statistic") if isinstance(record, dict) else math.nan
        if not (
            isinstance(record, dict)
            and isinstance(record.get("stop"), bool)
            and (statistic is None or (_is_number(statistic) and math.isfinite(statistic)))
        ):
            return f"row {i} has the stopping record {record!r} for {label!r}"
    return None


class CellCache:
    """Finished cells of one protocol, stored as ``cells_dir/<label>-<hash>__seed<seed>.json``.

    A cell file holds its rows, their SHA-256 and a key (the protocol key, the strategy's
    label and fingerprint, the seed). A file whose key differs (another protocol or
    strategy) is recomputed silently. A file that is cut short or not JSON, has the wrong
    layout, whose rows do not match their checksum (an edited accuracy), or whose rows are
    not those the protocol gives (one per round ``0..rounds`` with the protocol's label
    counts, this strategy and seed, every result column, an accuracy in [0, 1]) is
    recomputed with a :class:`CellCacheWarning` naming the file and what is wrong. Files
    are written atomically.

    Parameters
    ----------
    cells_dir : str or None
        The folder; None keeps nothing.
    protocol_key : str
        See :func:`protocol_key`.
    rounds, initial, query : int, default=None
        The protocol's number of rounds, initial labels and labels per query: with them
        every stored cell must have ``rounds + 1`` rows with ``initial + r * query``
        labels in round ``r``. None checks only the rows' structure.
    stopping : sequence of str, default=()
        Labels of the protocol's stopping rules: with ``rounds``, every row must hold a
        ``stopping`` record (statistic and stop flag) for each of them.
    """

    def __init__(
        self, cells_dir, protocol_key, *, rounds=None, initial=None, query=None, stopping=()
    ):
        self.cells_dir = cells_dir
        self.protocol_key = protocol_key
        given = [v is not None for v in (rounds, initial, query)]
        if any(given) and not all(given):
            raise TypeError("CellCache needs all of rounds, initial and query, or none.")
        self.expected = (
            None
            if rounds is None
            else {
                "rounds": rounds,
                "initial": initial,
                "query": query,
                "stopping": tuple(stopping),
            }
        )

    def key(self, label, spec, seed):
        """The key a cached cell must carry."""
        return {
            "protocol": self.protocol_key,
            "strategy": label,
            "spec": _strategy_fingerprint(spec),
            "seed": seed,
        }

    def path(self, label, seed):
        """The cell's file, or None without a folder."""
        if self.cells_dir is None:
            return None
        safe = re.sub(r"[^A-Za-z0-9_.-]+", "_", label)
        digest = hashlib.sha1(label.encode()).hexdigest()[:6]
        return os.path.join(self.cells_dir, f"{safe}-{digest}__seed{seed}.json")

    def load(self, label, spec, seed):
        """The cell's stored rows, or None when there are none for this key."""
        path = self.path(label, seed)
        if path is None:
            return None
        try:
            with open(path, encoding="utf-8") as f:
                stored = json.load(f)
        except FileNotFoundError:
            return None
        except (OSError, ValueError) as exc:  # cut short, not JSON, unreadable
            return self._bad(path, f"it cannot be read as JSON ({exc})")
        if not isinstance(stored, dict) or not {"format", "key", "rows"} <= set(stored):
            return self._bad(path, "it is not a cell (an object with format, key and rows)")
        if stored["format"] not in _READABLE_FORMATS:
            return self._bad(path, f"it has the unknown format {stored['format']!r}")
        if stored["key"] != self.key(label, spec, seed):
            return None  # another protocol or strategy: recomputed and overwritten
        rows = stored["rows"]
        problem = _rows_problem(rows, label, seed, self.expected)
        if problem is not None:
            return self._bad(path, problem)
        if stored["format"] >= 2 and stored.get("sha256") != _rows_checksum(rows):
            return self._bad(path, "its rows do not match their SHA-256 (they were edited)")
        return rows

    @staticmethod
    def _bad(path, reason):
        warnings.warn(
            f"cell {path} is not used: {reason}. It is recomputed and overwritten.",
            CellCacheWarning,
            stacklevel=3,
        )
        return None

    def store(self, label, spec, seed, rows):
        """Write the cell's rows (nothing without a folder)."""
        path = self.path(label, seed)
        if path is not None:
            write_json(
                path,
                {
                    "format": _CELL_FORMAT,
                    "key": self.key(label, spec, seed),
                    "rows": rows,
                    "sha256": _rows_checksum(rows),
                },
            )
