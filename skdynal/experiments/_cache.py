"""The per-cell cache of an experiment: one JSON file per finished (strategy, seed) cell."""

import hashlib
import json
import os
import re

import numpy as np
from skorch import NeuralNet

from ._protocol import CELL_KEYS, _stable_repr
from ._report import write_json

__all__ = ["CellCache", "protocol_key"]

_CELL_FORMAT = 1


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
    for name, default in (
        ("train_until_fit", None),
        ("reset_optimizer", False),
        ("initial_sampling", "random"),
        ("inas", None),
    ):
        if config[name] != default:
            key[name] = config[name]
    key["data"] = _data_fingerprint(*arrays)
    model = protocol.model
    key["net"] = _stable_repr(model if isinstance(model, (NeuralNet, str)) else model.__qualname__)
    key["module_kwargs"] = _stable_repr(sorted(protocol.module_kwargs.items()))
    key["net_kwargs"] = _stable_repr(sorted(protocol.net_kwargs.items()))
    return hashlib.sha1(json.dumps(key, sort_keys=True).encode()).hexdigest()[:16]


def _strategy_fingerprint(spec):
    if isinstance(spec, str):
        return spec
    return _stable_repr(spec)


class CellCache:
    """Finished cells of one protocol, stored as ``cells_dir/<label>-<hash>__seed<seed>.json``.

    A cell file holds its rows and a key (the protocol key, the strategy's label and
    fingerprint, the seed); a file whose key differs, or that cannot be read, is ignored
    and recomputed. Files are written atomically.

    Parameters
    ----------
    cells_dir : str or None
        The folder; None keeps nothing.
    protocol_key : str
        See :func:`protocol_key`.
    """

    def __init__(self, cells_dir, protocol_key):
        self.cells_dir = cells_dir
        self.protocol_key = protocol_key

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
        except (OSError, ValueError):
            return None
        if stored.get("format") != _CELL_FORMAT or stored.get("key") != self.key(
            label, spec, seed
        ):
            return None
        return stored["rows"]

    def store(self, label, spec, seed, rows):
        """Write the cell's rows (nothing without a folder)."""
        path = self.path(label, seed)
        if path is not None:
            write_json(
                path, {"format": _CELL_FORMAT, "key": self.key(label, spec, seed), "rows": rows}
            )
