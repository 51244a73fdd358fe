"""skdynal: deep active learning by leveraging training dynamics, for skorch and modAL."""

from ._version import __version__

__all__ = ["__version__"]
