"""Sphinx configuration for skdynal's documentation."""

import os
import sys

sys.path.insert(0, os.path.abspath(".."))

from skdynal import __version__

project = "skdynal"
author = "skdynal developers"
release = __version__
version = __version__

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.autosummary",
    "sphinx.ext.mathjax",
    "sphinx.ext.intersphinx",
    "numpydoc",
    "myst_parser",
]
source_suffix = {".rst": "restructuredtext", ".md": "markdown"}
myst_enable_extensions = ["dollarmath", "amsmath"]
autosummary_generate = True
numpydoc_show_class_members = False
numpydoc_class_members_toctree = False
autodoc_default_options = {
    "members": True,
    "inherited-members": False,
    # added by scikit-learn's metadata routing, not part of skdynal's API
    "exclude-members": "set_score_request",
}
exclude_patterns = ["_build", "_generated/**", "_static/**"]
html_theme = "alabaster"
nitpicky = False
suppress_warnings = ["myst.header"]


#: The line of api.rst that stands for the built-in strategies.
_STRATEGY_MARKER = "   .. the built-in strategies of skdynal._catalog\n"


def _builtin_strategies():
    from skdynal import _catalog

    return list(_catalog.STRATEGIES)


def _list_builtin_strategies(app, docname, source):
    """Put the built-in strategies of ``skdynal._catalog`` into the API page's list, so
    that adding a strategy needs no edit of api.rst."""
    if docname != "api":
        return
    if _STRATEGY_MARKER not in source[0]:
        raise RuntimeError(f"docs/api.rst lost the line {_STRATEGY_MARKER.strip()!r}.")
    names = "".join(f"   {name}\n" for name in _builtin_strategies())
    source[0] = source[0].replace(_STRATEGY_MARKER, names)


def _generate_strategy_stubs(app):
    """autosummary's pages of the listed strategies (it reads api.rst from disk, before
    :func:`_list_builtin_strategies` fills the list in), with autosummary's own templates."""
    import tempfile
    from pathlib import Path

    from sphinx.ext.autosummary.generate import generate_autosummary_docs

    lines = [".. currentmodule:: skdynal", "", ".. autosummary::", "   :toctree: generated/", ""]
    lines += [f"   {name}" for name in _builtin_strategies()]
    with tempfile.TemporaryDirectory() as tmp:
        source = Path(tmp) / "strategies.rst"
        source.write_text("\n".join(lines) + "\n")
        generate_autosummary_docs(
            [str(source)], output_dir=Path(app.srcdir) / "generated", app=app
        )


def setup(app):
    app.connect("builder-inited", _generate_strategy_stubs, priority=400)
    app.connect("source-read", _list_builtin_strategies)
