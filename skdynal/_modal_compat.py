"""Let modAL-python 0.4.x run on scikit-learn 1.8 and later.

modAL 0.4.1 and 0.4.2.1 call ``check_X_y(..., force_all_finite=...)``. scikit-learn 1.6
renamed that argument to ``ensure_all_finite`` and 1.8 removed the old name, so every
``ActiveLearner`` fails in its constructor with ``TypeError: check_X_y() got an unexpected
keyword argument 'force_all_finite'`` (upstream: modAL-python/modAL issue #196).

:func:`apply` replaces the ``check_X_y`` that modAL's learner modules imported by a wrapper
that renames the argument, and only when the installed scikit-learn lacks
``force_all_finite``; with scikit-learn < 1.8, or once modAL passes ``ensure_all_finite``,
it changes nothing. scikit-learn itself is never modified. Delete this module (and its call
in ``skdynal/_base.py``) when a modAL release fixes the call.
"""

import functools
import importlib
import inspect

__all__ = ["apply", "needs_patch"]

#: Where modAL imports ``check_X_y``: ``models.base`` in 0.4.1, ``models.learners`` in 0.4.2.
_MODAL_MODULES = ("modAL.models.base", "modAL.models.learners")


def needs_patch(check_X_y=None):
    """Whether ``check_X_y`` (default: scikit-learn's) no longer takes ``force_all_finite``."""
    if check_X_y is None:
        from sklearn.utils import check_X_y
    parameters = inspect.signature(check_X_y).parameters
    return "force_all_finite" not in parameters and "ensure_all_finite" in parameters


def _renaming(check_X_y):
    @functools.wraps(check_X_y)
    def wrapper(*args, force_all_finite=None, **kwargs):
        if force_all_finite is not None:
            kwargs.setdefault("ensure_all_finite", force_all_finite)
        return check_X_y(*args, **kwargs)

    wrapper._skdynal_renames_force_all_finite = True
    return wrapper


def apply():
    """Patch modAL's ``check_X_y`` where needed; return the names of the patched modules."""
    if not needs_patch():
        return []
    patched = []
    for name in _MODAL_MODULES:
        try:
            module = importlib.import_module(name)
        except ImportError:
            continue
        current = getattr(module, "check_X_y", None)
        if current is None or getattr(current, "_skdynal_renames_force_all_finite", False):
            continue
        module.check_X_y = _renaming(current)
        patched.append(name)
    return patched
