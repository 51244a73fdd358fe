"""Tell a real Ctrl-C from skorch's own way of ending training.

skorch's ``fit``/``partial_fit`` catch ``KeyboardInterrupt``: its ``EarlyStopping`` and
skdynal's :class:`~skdynal.callbacks.TrainUntilFit` raise one to end training on purpose.
A real Ctrl-C (SIGINT) during training is therefore swallowed too, and the caller goes on
with a half-trained net as if the round were complete. :func:`interrupt_guard` installs a
SIGINT handler that records the signal before raising ``KeyboardInterrupt`` (so that
training still stops at once), and raises :class:`Interrupted` when the guarded block ends,
whether skorch swallowed the signal or not.

:func:`exit_on_interrupt` is for the command line's start-up (argument parsing and the
imports of torch, scikit-learn, ...), where nothing is being written yet: a SIGINT there
ends the process at once with one line and exit status 130. A ``KeyboardInterrupt`` raised
in the middle of an import is not safe to propagate: a library may catch it, or leave a
half-initialised module behind that fails later with an unrelated error.
"""

import os
import signal
import threading

__all__ = [
    "Interrupted",
    "exit_now",
    "exit_on_interrupt",
    "interrupt_guard",
    "raise_if_interrupted",
]

#: What a Ctrl-C outside a run's cells prints (nothing was being written).
INTERRUPTED_LINE = "skdynal: interrupted\n"

_active = []  # the guards entered in the main thread, innermost last


class Interrupted(KeyboardInterrupt):
    """A real interrupt (SIGINT, Ctrl-C) stopped the work; the interrupted step was dropped.

    A ``KeyboardInterrupt``, so code that handles Ctrl-C keeps handling it. Its message
    says what was kept and how to resume.
    """


class interrupt_guard:
    """Context manager: a SIGINT inside the block raises :class:`Interrupted` at its end.

    Only the main thread can install a signal handler; elsewhere the guard does nothing
    (signals are delivered to the main thread anyway). Stops raised by skorch callbacks
    (``EarlyStopping``, ``StopTraining``) are not signals and are left alone. Guards nest:
    the innermost one active when the signal arrives raises.

    Parameters
    ----------
    message : str
        The message of the :class:`Interrupted` raised.
    """

    def __init__(self, message):
        self.message = message
        self.interrupted = False
        self._previous = None
        self._installed = False

    def _handler(self, signum, frame):
        self.interrupted = True
        raise KeyboardInterrupt  # stops training now: skorch ends its epoch loop on it

    def __enter__(self):
        if threading.current_thread() is threading.main_thread():
            self._previous = signal.getsignal(signal.SIGINT)
            signal.signal(signal.SIGINT, self._handler)
            self._installed = True
            _active.append(self)
        return self

    def __exit__(self, exc_type, exc, tb):
        if self._installed:
            previous = self._previous
            # None: a handler not installed from Python; restore Python's default then.
            signal.signal(
                signal.SIGINT, signal.default_int_handler if previous is None else previous
            )
            self._installed = False
            _active.remove(self)
        if self.interrupted and not isinstance(exc, Interrupted):
            raise Interrupted(self.message) from None
        return False


def raise_if_interrupted():
    """Raise :class:`Interrupted` now if a guard recorded a SIGINT (skorch swallowed it).

    Call it right after each ``fit``/``partial_fit`` (or modAL ``teach``) inside a guard,
    so that the work stops there instead of at the end of the guarded block.
    """
    for guard in reversed(_active):
        if guard.interrupted:
            raise Interrupted(guard.message)


def exit_now(signum=None, frame=None):
    """SIGINT handler: write :data:`INTERRUPTED_LINE` to stderr and end the process (130).

    ``os._exit``: no exception travels through the code that was running, no cleanup
    runs. Only for moments when nothing is being written (see :class:`exit_on_interrupt`).
    """
    os.write(2, INTERRUPTED_LINE.encode())
    os._exit(130)


class exit_on_interrupt:
    """Context manager: a SIGINT inside the block ends the process at once (:func:`exit_now`).

    For the command line's start-up only; the previous handler is restored at the end.
    Outside the main thread it does nothing.
    """

    def __enter__(self):
        self._previous = None
        self._installed = threading.current_thread() is threading.main_thread()
        if self._installed:
            self._previous = signal.signal(signal.SIGINT, exit_now)
        return self

    def __exit__(self, exc_type, exc, tb):
        if self._installed:
            previous = self._previous
            signal.signal(
                signal.SIGINT, signal.default_int_handler if previous is None else previous
            )
        return False
