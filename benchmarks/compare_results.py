"""Compare two result folders of ``skdynal run`` / ``skdynal benchmark``: equal but timing?

A refactor that must change no number is checked by running the same command before and
after it (``--out BEFORE``, ``--out AFTER``) and comparing the folders::

    python benchmarks/compare_results.py BEFORE AFTER

Both folders must hold the same files: the cell files' names are their cache keys, so a
changed key shows as a missing file. JSON files (cells, results, summaries, configs) are
compared as parsed data without the timing keys (and without a cell's SHA-256, a hash over
rows that hold timings); CSV files row by row without timing columns; markdown reports line
by line without their wall-time and CPU-minutes lines, with the folder's path replaced.
Plots are not compared (matplotlib writes metadata). A ``config.json`` key that only AFTER
has, with the value ``null`` (a protocol field added later, at its default), is reported
and otherwise ignored. Exits with status 1 on any difference.
"""

import argparse
import csv
import json
import os
import sys

TIMING = {"query_seconds", "train_seconds", "cell_seconds_total", "search_seconds", "sha256"}


def _without_timing(obj):
    if isinstance(obj, dict):
        return {k: _without_timing(v) for k, v in obj.items() if k not in TIMING}
    if isinstance(obj, list):
        return [_without_timing(v) for v in obj]
    return obj


def _files(root):
    return {
        os.path.relpath(os.path.join(folder, name), root)
        for folder, _, names in os.walk(root)
        for name in names
    }


def _report_lines(path, root):
    with open(path, encoding="utf-8") as f:
        text = f.read().replace(os.path.abspath(root), "OUT").replace(root, "OUT")
    return [
        line for line in text.splitlines() if "CPU-minutes" not in line and "wall time" not in line
    ]


def compare(before, after):
    """Print what differs between the folders ``before`` and ``after``; return True if
    nothing but timing does."""
    names_before, names_after = _files(before), _files(after)
    problems, added_keys = [], set()
    if names_before != names_after:
        problems.append(
            f"file sets differ: only before {sorted(names_before - names_after)[:10]}, "
            f"only after {sorted(names_after - names_before)[:10]}"
        )
    compared = {"json": 0, "csv": 0, "md": 0}
    for rel in sorted(names_before & names_after):
        path_before, path_after = os.path.join(before, rel), os.path.join(after, rel)
        kind = rel.rsplit(".", 1)[-1]
        if kind == "json":
            with (
                open(path_before, encoding="utf-8") as fa,
                open(path_after, encoding="utf-8") as fb,
            ):
                a, b = json.load(fa), json.load(fb)
            if os.path.basename(rel) == "config.json":
                for key in set(b) - set(a):
                    if b[key] is None:
                        added_keys.add(key)
                        del b[key]
            if _without_timing(a) != _without_timing(b):
                problems.append(f"{rel}: JSON differs")
        elif kind == "csv":
            with (
                open(path_before, encoding="utf-8") as fa,
                open(path_after, encoding="utf-8") as fb,
            ):
                a, b = list(csv.DictReader(fa)), list(csv.DictReader(fb))
            if _without_timing(a) != _without_timing(b):
                problems.append(f"{rel}: CSV differs")
        elif kind == "md":
            if _report_lines(path_before, before) != _report_lines(path_after, after):
                problems.append(f"{rel}: markdown differs")
        else:
            continue
        compared[kind] += 1
    n_cells = sum(f"cells{os.sep}" in rel for rel in names_before & names_after)
    print(
        f"{before} vs {after}: {len(names_before & names_after)} common files "
        f"({n_cells} cells); compared {compared}"
    )
    if added_keys:
        print(f"  config.json keys only AFTER has, at null: {sorted(added_keys)}")
    for problem in problems:
        print("  DIFF", problem)
    print("  identical except timing" if not problems else f"  {len(problems)} differences")
    return not problems


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("before")
    parser.add_argument("after")
    args = parser.parse_args(argv)
    return 0 if compare(args.before, args.after) else 1


if __name__ == "__main__":
    sys.exit(main())
