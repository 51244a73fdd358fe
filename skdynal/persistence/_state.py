"""A query strategy saved as data (JSON), and rebuilt only from classes the caller trusts.

A checkpoint never holds a pickle: loading one runs whatever code it names. Following the
model of ``skops.io`` (types outside a trusted list are refused; the caller extends the
list explicitly) and safetensors (tensors only, no code), a strategy is stored as

- the import path of its class (or of a module-level function), which on loading is looked
  up in a table of trusted objects, never imported by name from the file;
- its ``get_params(deep=False)`` and its fitted attributes (names ending in ``_``, e.g.
  :class:`~skdynal.strategies.ALBLSampler`'s bandit weights), encoded as typed JSON:
  numbers, strings, lists, tuples, dicts, numpy arrays and scalars, numpy random
  generators (their state) and nested strategies (by the same rule).

Trusted: every strategy class :mod:`skdynal.strategies` exports, modAL's
``uncertainty_sampling``, ``margin_sampling`` and ``entropy_sampling``, the class (or the
function) of the ``query_strategy`` the caller passes again to
:meth:`~skdynal.persistence.ResumableLoop.resume` (with the classes of the strategies nested
in it), and what the caller lists in ``trusted=``.
"""

import inspect
import math

import numpy as np

from ._checkpoint import CheckpointError

__all__ = ["UntrustedCheckpointError", "decode_strategy", "encode_strategy", "trusted_table"]

_MODAL_FUNCTIONS = ("uncertainty_sampling", "margin_sampling", "entropy_sampling")
_BIT_GENERATORS = ("MT19937", "PCG64", "PCG64DXSM", "Philox", "SFC64")


class UntrustedCheckpointError(CheckpointError):
    """A checkpoint holds a file, a type or a class that resuming does not trust.

    Not a sign of damage (a fallback to an older checkpoint does not apply): the message
    names the file and says what to do.
    """


def _path(obj):
    return f"{obj.__module__}.{obj.__qualname__}"


def _is_estimator(obj):
    return not isinstance(obj, type) and hasattr(obj, "get_params") and hasattr(obj, "set_params")


def _check_function(fn, where):
    qualname = getattr(fn, "__qualname__", "")
    if "<" in qualname or not getattr(fn, "__module__", None):
        raise TypeError(
            f"{where} is {fn!r}, which cannot be saved in a checkpoint: only module-level "
            "functions (saved by import path) and scikit-learn-style estimators (saved as "
            "their parameters) can; use a module-level function or a class instance, not a "
            "lambda or a nested function."
        )


def _encode(value, where):
    if value is None or isinstance(value, bool | str):
        return value
    if isinstance(value, int):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else {"__float__": repr(value)}
    if isinstance(value, np.random.RandomState):
        name, keys, pos, has_gauss, cached = value.get_state()
        return {"__RandomState__": [name, keys.tolist(), int(pos), int(has_gauss), cached]}
    if isinstance(value, np.random.Generator):
        state = value.bit_generator.state
        return {"__Generator__": _encode(state, where)}
    if isinstance(value, np.ndarray):
        if value.dtype.kind not in "biuf":
            raise TypeError(f"{where} is an array of dtype {value.dtype}: not saved as data.")
        return {
            "__ndarray__": value.dtype.str,
            "shape": list(value.shape),
            "data": [_encode(v.item(), where) for v in value.reshape(-1)],
        }
    if isinstance(value, np.generic):
        if value.dtype.kind not in "biuf":
            raise TypeError(f"{where} is a {value.dtype} scalar: not saved as data.")
        return {"__scalar__": value.dtype.str, "value": _encode(value.item(), where)}
    if isinstance(value, list):
        return [_encode(v, f"{where}[{i}]") for i, v in enumerate(value)]
    if isinstance(value, tuple):
        return {"__tuple__": [_encode(v, f"{where}[{i}]") for i, v in enumerate(value)]}
    if isinstance(value, dict):
        if not all(isinstance(k, str) for k in value):
            raise TypeError(f"{where} is a dict with keys that are not strings: not saved.")
        return {"__dict__": {k: _encode(v, f"{where}[{k!r}]") for k, v in value.items()}}
    if _is_estimator(value):
        return encode_strategy(value, where)
    if inspect.isfunction(value) or inspect.isbuiltin(value):
        _check_function(value, where)
        return {"__function__": _path(value)}
    raise TypeError(
        f"{where} is a {type(value).__module__}.{type(value).__qualname__}, which a checkpoint "
        "cannot hold as data (numbers, strings, lists, tuples, dicts, numpy arrays, numpy "
        "random generators, module-level functions and scikit-learn-style estimators can)."
    )


def encode_strategy(strategy, where="query_strategy"):
    """``strategy`` as typed JSON data (a dict), or TypeError naming what cannot be stored.

    Parameters
    ----------
    strategy : estimator or callable
        A scikit-learn-style strategy (``get_params``) or a module-level function.
    where : str, default="query_strategy"
        How the error messages name it.

    Returns
    -------
    data : dict
    """
    if _is_estimator(strategy):
        cls = type(strategy)
        if "<" in cls.__qualname__:
            raise TypeError(
                f"{where} is an instance of {cls.__qualname__}, a class defined inside a "
                "function: define it at module level so a checkpoint can name it."
            )
        params = strategy.get_params(deep=False)
        state = {
            k: v
            for k, v in vars(strategy).items()
            if k.endswith("_") and not k.startswith("_") and k not in params
        }
        return {
            "__estimator__": _path(cls),
            "params": {k: _encode(v, f"{where}.{k}") for k, v in sorted(params.items())},
            "state": {k: _encode(v, f"{where}.{k}") for k, v in sorted(state.items())},
        }
    if inspect.isfunction(strategy) or inspect.isbuiltin(strategy):
        _check_function(strategy, where)
        return {"__function__": _path(strategy)}
    raise TypeError(
        f"{where} must be a scikit-learn-style estimator (with get_params) or a module-level "
        f"function to be saved in a checkpoint as data, got {type(strategy).__name__}."
    )


def _walk(value, found):
    """Add the classes and functions inside a caller-given strategy to ``found``."""
    if _is_estimator(value):
        found[_path(type(value))] = type(value)
        for v in value.get_params(deep=False).values():
            _walk(v, found)
    elif isinstance(value, list | tuple):
        for v in value:
            _walk(v, found)
    elif isinstance(value, dict):
        for v in value.values():
            _walk(v, found)
    elif inspect.isfunction(value) or inspect.isbuiltin(value):
        found[_path(value)] = value


def trusted_table(query_strategy=None, trusted=()):
    """``import path -> class or function`` that a checkpoint's strategy may name.

    Parameters
    ----------
    query_strategy : estimator or callable, default=None
        The caller's strategy: its class and the classes nested in its parameters.
    trusted : iterable of class or function, default=()
        More classes or functions the caller trusts.

    Returns
    -------
    table : dict of str to object
    """
    import modAL.uncertainty

    # skdynal's own strategies through the package's public (lazily loaded) names: the
    # persistence layer does not depend on skdynal.strategies, and nothing is looked up by a
    # name read from the folder.
    import skdynal

    table = {}
    for name in skdynal.__all__:
        obj = getattr(skdynal, name)
        if isinstance(obj, type) and hasattr(obj, "get_params"):
            table[_path(obj)] = obj
    for name in _MODAL_FUNCTIONS:
        fn = getattr(modAL.uncertainty, name)
        table[_path(fn)] = fn
    if query_strategy is not None:
        _walk(query_strategy, table)
    for obj in trusted:
        if not (isinstance(obj, type) or inspect.isfunction(obj) or inspect.isbuiltin(obj)):
            raise TypeError(
                f"trusted must list classes or module-level functions, got {obj!r}; pass the "
                "class itself (e.g. trusted=[MyStrategy]), not an instance."
            )
        table[_path(obj)] = obj
    return table


def _untrusted(file, path):
    return UntrustedCheckpointError(
        f"{file} names {path!r}, which resume does not trust (skdynal's own strategies and "
        "modAL's uncertainty, margin and entropy sampling are trusted). If you wrote that "
        "checkpoint and trust the class, pass query_strategy=<an instance of it> or "
        "trusted=[<the class>] to ResumableLoop.resume; nothing named in the file was imported."
    )


def _decode(value, file, table):
    if value is None or isinstance(value, bool | int | float | str):
        return value
    if isinstance(value, list):
        return [_decode(v, file, table) for v in value]
    if not isinstance(value, dict) or len(value) == 0:
        raise UntrustedCheckpointError(f"{file} holds {value!r}, which is not a known encoding.")
    if "__estimator__" in value:
        return decode_strategy(value, file, table)
    if set(value) == {"__function__"}:
        path = value["__function__"]
        if path not in table:
            raise _untrusted(file, path)
        return table[path]
    if set(value) == {"__float__"} and value["__float__"] in ("nan", "inf", "-inf"):
        return float(value["__float__"])
    if set(value) == {"__tuple__"}:
        return tuple(_decode(v, file, table) for v in value["__tuple__"])
    if set(value) == {"__dict__"} and isinstance(value["__dict__"], dict):
        return {k: _decode(v, file, table) for k, v in value["__dict__"].items()}
    try:
        if set(value) == {"__ndarray__", "shape", "data"}:
            dtype = np.dtype(value["__ndarray__"])
            if dtype.kind not in "biuf":
                raise ValueError(f"dtype {dtype}")
            data = [_decode(v, file, table) for v in value["data"]]
            return np.asarray(data, dtype=dtype).reshape(value["shape"])
        if set(value) == {"__scalar__", "value"}:
            dtype = np.dtype(value["__scalar__"])
            if dtype.kind not in "biuf":
                raise ValueError(f"dtype {dtype}")
            return dtype.type(_decode(value["value"], file, table))
        if set(value) == {"__RandomState__"}:
            name, keys, pos, has_gauss, cached = value["__RandomState__"]
            rng = np.random.RandomState()
            rng.set_state((name, np.asarray(keys, dtype=np.uint32), pos, has_gauss, cached))
            return rng
        if set(value) == {"__Generator__"}:
            state = _decode(value["__Generator__"], file, table)
            if state.get("bit_generator") not in _BIT_GENERATORS:
                raise ValueError(f"bit generator {state.get('bit_generator')!r}")
            bit_generator = getattr(np.random, state["bit_generator"])()
            bit_generator.state = state
            return np.random.Generator(bit_generator)
    except (ValueError, TypeError, KeyError, AttributeError) as exc:
        raise UntrustedCheckpointError(f"{file} holds a malformed value ({exc}).") from None
    raise UntrustedCheckpointError(
        f"{file} holds {sorted(value)!r}, which is not a known encoding."
    )


def decode_strategy(data, file, table):
    """Rebuild a strategy from :func:`encode_strategy`'s data, using trusted objects only.

    Parameters
    ----------
    data : dict
        The decoded JSON.
    file : path-like
        The file it came from (named in errors).
    table : dict
        :func:`trusted_table`.

    Returns
    -------
    strategy : estimator or callable

    Raises
    ------
    UntrustedCheckpointError
        If the data names a class or function not in ``table``, or is malformed.
    """
    if not isinstance(data, dict):
        raise UntrustedCheckpointError(f"{file} does not hold a strategy (got {data!r}).")
    if set(data) == {"__function__"}:
        return _decode(data, file, table)
    if set(data) != {"__estimator__", "params", "state"}:
        raise UntrustedCheckpointError(f"{file} does not hold a strategy (keys {sorted(data)!r}).")
    path = data["__estimator__"]
    if not isinstance(path, str) or path not in table:
        raise _untrusted(file, path)
    cls = table[path]
    if not isinstance(cls, type) or not isinstance(data["params"], dict):
        raise UntrustedCheckpointError(f"{file} holds a malformed strategy for {path!r}.")
    params = {k: _decode(v, file, table) for k, v in data["params"].items()}
    try:
        strategy = cls(**params)
    except TypeError as exc:
        raise UntrustedCheckpointError(
            f"{file} holds parameters {sorted(params)} that {path} does not take ({exc})."
        ) from None
    for key, value in data["state"].items():
        if not (isinstance(key, str) and key.endswith("_") and not key.startswith("_")):
            raise UntrustedCheckpointError(
                f"{file} sets attribute {key!r}; only fitted attributes (ending in '_') are "
                "restored."
            )
        setattr(strategy, key, _decode(value, file, table))
    return strategy
