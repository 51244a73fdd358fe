"""Imports inside skdynal only run downward: the package's import graph has no cycle.

Every ``from .x import`` and ``from skdynal.x import`` (at module level or inside a
function) is an edge between the top-level units of the package (a subpackage, or a
top-level module). The graph must have an order in which every unit imports only units
before it; a few edges are pinned because the design relies on them.
"""

import ast
import collections
import functools
import graphlib
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "skdynal"


def _unit(parts):
    """The top-level unit of a module path inside the package."""
    if parts and parts[-1] == "__init__":
        parts = parts[:-1]
    return parts[0] if parts else "__init__"


@functools.cache
def import_graph():
    """``{unit: {units it imports}}`` for the whole package (self-imports left out)."""
    graph = collections.defaultdict(set)
    for path in PACKAGE.rglob("*.py"):
        parts = path.relative_to(PACKAGE).with_suffix("").parts
        source = _unit(parts)
        graph[source]
        package = list(parts[:-1])
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if not isinstance(node, ast.ImportFrom):
                continue
            if node.level:
                base = package[: len(package) - (node.level - 1)]
                module = node.module.split(".") if node.module else []
                targets = [base + module] if module else [[*base, a.name] for a in node.names]
            elif node.module and node.module.split(".")[0] == "skdynal":
                targets = [node.module.split(".")[1:]]
            else:
                continue
            for target in targets:
                unit = _unit(target)
                if unit != source:
                    graph[source].add(unit)
    return graph


def test_the_import_graph_has_no_cycle():
    graph = import_graph()
    order = list(graphlib.TopologicalSorter(graph).static_order())
    assert {"gradients", "_base", "strategies", "experiments", "cli"} <= set(order)


@pytest.mark.parametrize(
    ("lower", "higher"),
    [
        ("gradients", "strategies"),
        ("gradients", "_base"),
        ("_base", "strategies"),
        ("_checks", "_validation"),
        ("persistence", "strategies"),
        ("strategies", "distributed"),
        ("strategies", "experiments"),
        ("experiments", "cli"),
    ],
)
def test_lower_layers_never_import_higher_ones(lower, higher):
    graph = import_graph()
    reachable, stack = set(), [lower]
    while stack:
        for unit in graph.get(stack.pop(), ()):
            if unit not in reachable:
                reachable.add(unit)
                stack.append(unit)
    assert higher not in reachable, f"{lower} imports {higher} (directly or through others)"


def test_the_graph_sees_relative_and_absolute_imports():
    graph = import_graph()
    assert "_adapter" in graph["_base"]  # from ._adapter import ...
    assert "gradients" in graph["strategies"]  # from ..gradients import ...
