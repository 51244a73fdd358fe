"""Stored benchmark cells are checked when read (issue 25, item 6): a cell that is cut short,
emptied, of the wrong layout, edited, or not what the protocol gives is recomputed with a
warning naming its file; the recomputed results equal a fresh run."""

import json
import os

import pytest

from skdynal.datasets import load_digits_split
from skdynal.experiments import CellCacheWarning, run_experiment
from skdynal.experiments._cache import CellCache

TINY = dict(
    initial=20,
    query=10,
    rounds=2,
    epochs=1,
    batch_size=32,
    lr=1e-2,
    module_kwargs={"hidden": (8,)},
    progress=False,
)
TIMING = ("query_seconds", "train_seconds")


@pytest.fixture(scope="module")
def finished(tmp_path_factory):
    """A finished two-seed experiment: its folder, its rows (timing dropped), a cell file."""
    data = load_digits_split(random_state=0)
    out = tmp_path_factory.mktemp("exp")
    results = run_experiment(
        data, model="mlp", strategies=["random"], seeds=[0, 1], out=out, **TINY
    )
    cells = sorted(os.listdir(out / "cells"))
    assert len(cells) == 2
    return data, out, _plain(results.rows), out / "cells" / cells[0]


def _plain(rows):
    return [{k: v for k, v in row.items() if k not in TIMING} for row in rows]


def _edit(path, change):
    stored = json.loads(path.read_text())
    change(stored)
    path.write_text(json.dumps(stored))


def _set_accuracy(stored):
    stored["rows"][1]["test_accuracy"] = 0.999


DAMAGE = {
    "emptied rows": (lambda s: s.update(rows=[]), "it has 0 rows, the protocol gives 3"),
    "edited accuracy": (_set_accuracy, r"do not match their SHA-256 \(they were edited\)"),
    "missing key": (lambda s: s.pop("rows"), "not a cell"),
    "wrong type": (lambda s: s.update(rows={"0": 1}), "rows are not a list of objects"),
    "row missing a column": (
        lambda s: [r.pop("n_labels") for r in s["rows"]],
        "row 0 lacks n_labels",
    ),
}


@pytest.mark.parametrize("damage", [*DAMAGE, "cut short", "a list"])
def test_a_bad_cell_is_recomputed_with_a_warning_naming_it(finished, tmp_path, damage):
    data, out, rows, cell = finished
    copy = tmp_path / "exp"
    (copy / "cells").mkdir(parents=True)
    for name in os.listdir(out / "cells"):
        (copy / "cells" / name).write_bytes((out / "cells" / name).read_bytes())
    bad = copy / "cells" / cell.name
    if damage == "cut short":
        bad.write_bytes(bad.read_bytes()[:100])
        reason = "cannot be read as JSON"
    elif damage == "a list":
        bad.write_text("[1, 2]")
        reason = "not a cell"
    else:
        change, reason = DAMAGE[damage]
        _edit(bad, change)
    match = f"cell {bad} is not used: .*{reason}"
    with pytest.warns(CellCacheWarning, match=match) as caught:
        again = run_experiment(
            data, model="mlp", strategies=["random"], seeds=[0, 1], out=copy, **TINY
        )
    assert len(caught) == 1  # only the damaged cell; the other one is reused
    assert _plain(again.rows) == rows  # both seeds, the recomputed accuracies
    assert json.loads(bad.read_text())["format"] == 2  # rewritten good
    # a second run reuses every cell, without a warning
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error", CellCacheWarning)
        assert (
            _plain(
                run_experiment(
                    data, model="mlp", strategies=["random"], seeds=[0, 1], out=copy, **TINY
                ).rows
            )
            == rows
        )


def test_cells_of_another_protocol_are_recomputed_silently_and_old_format_is_read(
    finished, tmp_path
):
    _, _, rows, cell = finished
    stored = json.loads(cell.read_text())
    key = stored["key"]
    cache = CellCache(str(cell.parent), key["protocol"], rounds=2, initial=20, query=10)
    assert _plain(cache.load("random", "random", key["seed"])) == [
        r for r in rows if r["seed"] == key["seed"]
    ]
    # the same file for a protocol with 3 rounds: a mismatch the checks name
    longer = CellCache(str(cell.parent), key["protocol"], rounds=3, initial=20, query=10)
    with pytest.warns(CellCacheWarning, match="it has 3 rows, the protocol gives 4"):
        assert longer.load("random", "random", key["seed"]) is None
    # a format-1 cell (written before checksums) is read, checked for structure only
    old = tmp_path / cell.name
    del stored["sha256"]
    stored["format"] = 1
    old.write_text(json.dumps(stored))
    cache = CellCache(str(tmp_path), key["protocol"], rounds=2, initial=20, query=10)
    assert cache.load("random", "random", key["seed"]) == stored["rows"]
    with pytest.raises(TypeError, match="all of rounds, initial and query"):
        CellCache(str(tmp_path), "abc", rounds=2)


def test_a_registry_name_whose_parameters_change_is_recomputed(tmp_path):
    from skdynal import DynamicALSampler
    from skdynal.experiments import register_strategy
    from skdynal.experiments._cache import CellCache

    cache = CellCache(str(tmp_path), "protocol")
    assert "'kmeans++'" in cache.key("d", "dynamical", 0)["spec"]
    assert "'top_b'" in cache.key("d", "dynamical-topb", 0)["spec"]
    rows = [
        {
            "dataset": "d",
            "model": "mlp",
            "strategy": "cache-test",
            "seed": 0,
            "round": 0,
            "n_labels": 10,
            "test_accuracy": 0.5,
            "query_seconds": None,
            "train_seconds": 0.1,
            "train_epochs": 5,
        }
    ]
    register_strategy("cache-test", lambda rs: DynamicALSampler(selection="top_b"), overwrite=True)
    cache.store("cache-test", "cache-test", 0, rows)
    assert cache.load("cache-test", "cache-test", 0) is not None
    # the same name now builds another selection: the stored cell is not reused
    register_strategy(
        "cache-test", lambda rs: DynamicALSampler(selection="kmeans++"), overwrite=True
    )
    try:
        assert cache.load("cache-test", "cache-test", 0) is None
    finally:
        from skdynal.experiments._registry import _REGISTRY

        del _REGISTRY["cache-test"]
