"""Writing results: tidy CSV and JSON, text tables, the learning-curve plot."""

import csv
import json
import math
import os
import tempfile

import numpy as np

from ._summary import learning_curves

__all__ = [
    "atomic_write_text",
    "format_accuracy_table",
    "format_summary_table",
    "plot_learning_curves",
    "read_csv_rows",
    "write_csv",
    "write_json",
]


def atomic_write_text(path, text):
    """Write ``text`` to ``path`` through a temporary file and a rename.

    A reader (or a resumed run) sees either the old file or the complete new one, never a
    half-written file, even if the process is killed mid-write.
    """
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=folder, prefix=".tmp-", suffix=os.path.basename(path))
    try:
        # mkstemp creates the file private (0600); give it the usual permissions instead.
        os.chmod(tmp, 0o666 & ~_current_umask())
        with os.fdopen(fd, "w", encoding="utf-8", newline="") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def _current_umask():
    mask = os.umask(0)
    os.umask(mask)
    return mask


def jsonable(value):
    """``value`` ready for JSON: numpy scalars as Python numbers, tuples as lists, NaN as
    null and infinities as the strings "inf" and "-inf"."""
    if isinstance(value, dict):
        return {k: jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [jsonable(v) for v in value]
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None if math.isnan(value) else ("inf" if value > 0 else "-inf")
    return value


def write_json(path, obj):
    """Write ``obj`` as indented JSON (NaN as ``null``), atomically."""
    atomic_write_text(path, json.dumps(jsonable(obj), indent=2, allow_nan=False) + "\n")


def write_csv(path, rows, columns=None):
    """Write a list of dicts as CSV with a header (NaN and None as empty cells), atomically."""
    columns = columns or (list(rows[0]) if rows else [])
    lines = []

    class _Sink:
        def write(self, s):
            lines.append(s)

    writer = csv.DictWriter(_Sink(), fieldnames=columns, lineterminator="\n")
    writer.writeheader()
    for row in rows:
        cleaned = {}
        for key in columns:
            value = jsonable(row.get(key))
            cleaned[key] = "" if value is None else value
        writer.writerow(cleaned)
    atomic_write_text(path, "".join(lines))


def read_csv_rows(path):
    """Read a CSV written by :func:`write_csv` back as a list of dicts of strings."""
    with open(path, newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f))


def _fmt(value, spec):
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    return format(value, spec)


def _fmt_p(value):
    if value is not None and not math.isnan(value) and value < 0.001:
        return "<0.001"
    return _fmt(value, ".3f")


def format_accuracy_table(rows):
    """Test accuracy by round (rows) and strategy (columns), mean over seeds, as text."""
    curves = learning_curves(rows)
    names = list(curves)
    n_labels = {}
    means = {}
    for name in names:
        by_round = {}
        for row in rows:
            if row["strategy"] == name:
                by_round.setdefault(row["round"], []).append(row)
        for rnd, rnd_rows in by_round.items():
            n_labels[rnd] = rnd_rows[0]["n_labels"]
            means[name, rnd] = float(np.mean([r["test_accuracy"] for r in rnd_rows]))
    width = max([9, *(len(n) for n in names)])
    lines = [
        f"{'round':>5} {'labels':>7} " + " ".join(f"{n:>{width}}" for n in names),
    ]
    for rnd in sorted(n_labels):
        cells = " ".join(f"{_fmt(means.get((n, rnd)), '.4f'):>{width}}" for n in names)
        lines.append(f"{rnd:>5} {n_labels[rnd]:>7} {cells}")
    return "\n".join(lines)


def format_summary_table(summary, baseline="random"):
    """The summary of :func:`skdynal.experiments.summarize` as an aligned text table."""
    name_width = max([8, *(len(e["strategy"]) for e in summary)])
    versus = "Δ vs " + (baseline or "baseline")
    header = (
        f"{'strategy':<{name_width}} {'rank':>4} {'AUC':>7} {'± s.e.':>7} {'final acc':>9} "
        f"{versus:>13} {'± s.e.':>7} {'p (t)':>7} {'p (W)':>7} {'wins':>7}"
    )
    lines = [header]
    for e in summary:
        wins = "-" if e["wins"] is None else f"{e['wins']}/{e['n_paired']}"
        lines.append(
            f"{e['strategy']:<{name_width}} {e['rank']:>4} {_fmt(e['auc_mean'], '.4f'):>7} "
            f"{_fmt(e['auc_stderr'], '.4f'):>7} {_fmt(e['final_accuracy_mean'], '.4f'):>9} "
            f"{_fmt(e['diff_vs_baseline'], '+.4f'):>13} {_fmt(e['diff_stderr'], '.4f'):>7} "
            f"{_fmt_p(e['p_ttest']):>7} {_fmt_p(e['p_wilcoxon']):>7} {wins:>7}"
        )
    return "\n".join(lines)


def format_stopping_table(summary, level=0.98):
    """The summary of :func:`skdynal.experiments.summarize_stopping` as an aligned text table."""
    if not summary:
        return ""
    strategy_width = max([8, *(len(e["strategy"]) for e in summary)])
    rule_width = max([4, *(len(e["rule"]) for e in summary)])
    header = (
        f"{'strategy':<{strategy_width}} {'rule':<{rule_width}} {'labels at stop':>16} "
        f"{'acc / full acc':>14} {f'< {level:.0%}':>7} {'never':>7}"
    )
    lines = [header]
    for e in summary:
        labels = f"{e['labels_mean']:.1f} of {e['budget']}"
        early = f"{e['early']}/{e['n_runs']}"
        never = f"{e['never']}/{e['n_runs']}"
        lines.append(
            f"{e['strategy']:<{strategy_width}} {e['rule']:<{rule_width}} {labels:>16} "
            f"{_fmt(e['accuracy_ratio_mean'], '.3f'):>14} {early:>7} {never:>7}"
        )
    return "\n".join(lines)


def plot_learning_curves(rows, path, title=None, baseline="random"):
    """Plot test accuracy against labels, mean ± standard error over seeds, per strategy.

    The ``baseline`` strategy, if present, is drawn as a black dashed line.

    Uses matplotlib's non-interactive Agg backend and writes ``path`` (PNG, SVG or PDF by
    its extension).
    """
    import matplotlib
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    curves = learning_curves(rows)
    fig = Figure(figsize=(8.5, 4.8))
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    # Distinct colours for up to 20 strategies; the baseline is drawn black and dashed.
    palette = matplotlib.colormaps["tab10" if len(curves) <= 10 else "tab20"]
    others = [name for name in curves if name != baseline]
    for name, by_seed in curves.items():
        lengths = {len(curve[0]) for curve in by_seed.values()}
        n_points = min(lengths)
        x = next(iter(by_seed.values()))[0][:n_points]
        acc = np.array([curve[1][:n_points] for curve in by_seed.values()])
        mean = acc.mean(axis=0)
        stderr = (
            acc.std(axis=0, ddof=1) / np.sqrt(len(acc)) if len(acc) > 1 else np.zeros_like(mean)
        )
        if name == baseline:
            style = {"color": "black", "linestyle": "--"}
        else:
            style = {"color": palette(others.index(name) % palette.N)}
        ax.plot(x, mean, marker="o", markersize=3, label=f"{name} (n={len(acc)})", **style)
        ax.fill_between(x, mean - stderr, mean + stderr, color=style["color"], alpha=0.15)
    ax.set_xlabel("labeled samples")
    ax.set_ylabel("test accuracy")
    if title:
        ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend(fontsize="small", loc="upper left", bbox_to_anchor=(1.01, 1.0), frameon=False)
    fig.tight_layout()
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    fig.savefig(path, dpi=120)
    return path
