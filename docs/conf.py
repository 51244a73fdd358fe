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
