"""The paper-style figure and table from the records: test error against d, one panel per task, one line per method.

Each point is the mean over seeds of the runs' mean test relative squared error, the error
bar the standard deviation over seeds (none for one seed).  The table (Markdown, next to the
figure) gives task, method, d, mean ± std over seeds, the number of seeds and how many runs
passed the equivariance check.

Where the records hold learning curves (``curve_every > 0``), :func:`plot` also writes
``<out>-curves``: test error against steps, one panel per task and d, and a table of the error
and each method's rank at every budget of :data:`BUDGETS` the runs reached (each point the mean
test error on the first 200 test examples).

Older records name the ``scalars`` method ``kim`` (:data:`~markovcat.experiments.matrix.methods.RENAMED`);
they are read under the new name.
"""

from __future__ import annotations

import math
import statistics
from collections import Counter, defaultdict
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from markovcat.experiments.matrix.train import read_record
from markovcat.experiments.runner import in_order, load_records, save_figure

__all__ = ["FIGURE", "LABELS", "BUDGETS", "load", "summarise", "table", "plot", "curves", "curves_table", "plot_curves"]

FIGURE = "matrix"
TASK_ORDER = ("cov", "linreg", "expm", "inv", "inv1")
METHOD_ORDER = ("mlp", "emlp", "haar", "kim-emlp", "recursive", "scalars")
#: Legend labels: the paper's names (``plot_results.py``), and ours for what it does not have.
LABELS = {"mlp": "Unsymmetrised (mlp)", "emlp": "EMLP (emlp)", "haar": "Kim et al., gamma = Haar (haar)",
          "kim-emlp": "Kim et al., gamma = EMLP (kim-emlp)", "recursive": "Us: recursive gamma (recursive)",
          "scalars": "scalars gamma, beyond the paper (scalars)"}
#: The budgets (steps) at which the curves' table compares the methods.
BUDGETS = (2500, 5000, 10_000, 30_000, 100_000)


def load(records: Path | str, steps: int | None = None) -> list[dict[str, Any]]:
    """The records in a folder (``*.json``), all of one step budget (``steps``, or the only one there)."""
    found = [_renamed(r) for r in load_records(records, read_record, "matrix", steps)]
    others = Counter(_setting(r) for r in found)
    if len(others) > 1:
        raise ValueError(f"{records} mixes training settings {sorted(others)}: keep one setting per folder")
    return found


def _colour(method: str) -> str:
    """One colour per method, the same in every figure."""
    return f"C{METHOD_ORDER.index(method) if method in METHOD_ORDER else len(METHOD_ORDER)}"


def _renamed(record: dict[str, Any]) -> dict[str, Any]:
    from markovcat.experiments.matrix.methods import RENAMED

    method = record["config"]["method"]
    if method not in RENAMED:
        return record
    return {**record, "config": {**record["config"], "method": RENAMED[method]}}


def _setting(record: dict[str, Any]) -> str:
    config = dict(record["config"])
    for key in ("task", "method", "dim", "seed"):
        config.pop(key)
    return repr(sorted(config.items()))


def summarise(records: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """One row per (task, method, d): mean and std over seeds of the test error, seeds, equivariance passes."""
    groups: dict[tuple[str, str, int], list[dict[str, Any]]] = defaultdict(list)
    for r in records:
        c = r["config"]
        groups[(c["task"], c["method"], c["dim"])].append(r)
    rows = []
    for (task, method, dim), runs in groups.items():
        errors = [r["metrics"]["test_rse_mean"] for r in runs]
        rows.append({"task": task, "method": method, "dim": dim, "mean": statistics.fmean(errors),
                     "std": statistics.stdev(errors) if len(errors) > 1 else math.nan, "seeds": len(runs),
                     "passed": sum(bool(r["equivariance"]["passed"]) for r in runs),
                     "passed_float64": sum(bool(r["equivariance"].get("float64", r["equivariance"])["passed"])
                                           for r in runs),
                     "check": "/".join(sorted({r["equivariance"]["method"] for r in runs}))})
    rows.sort(key=lambda row: (in_order(str(row["task"]), TASK_ORDER), in_order(str(row["method"]), METHOD_ORDER),
                               row["dim"]))
    return rows


def table(rows: Sequence[dict[str, Any]], steps: int) -> str:
    """A Markdown table of :func:`summarise` 's rows."""
    lines = [f"Test relative squared error after {steps} steps: mean ± std over seeds (each seed's error is its mean "
             f"over the test set).", "",
             "| task | method | d | test error (mean ± std) | seeds | equivariance check passed (float32; "
             "failures rechecked as float64) |",
             "|---|---|---:|---|---:|---|"]
    for r in rows:
        spread = "" if math.isnan(r["std"]) else f" ± {r['std']:.3g}"
        again = r.get("passed_float64", r["passed"])
        rechecked = f"; {again}/{r['seeds']} as float64" if again != r["passed"] else ""
        lines.append(f"| {r['task']} | {r['method']} | {r['dim']} | {r['mean']:.3g}{spread} | {r['seeds']} | "
                     f"{r['passed']}/{r['seeds']} ({r['check']}){rechecked} |")
    return "\n".join(lines) + "\n"


def plot(records: Path | str, out: Path | str, steps: int | None = None) -> list[Path]:
    """Write ``out.png``, ``out.pdf`` (the figure) and ``out.md`` (the table); return their paths."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt
    from matplotlib.ticker import FormatStrFormatter, LogLocator, NullFormatter

    found = load(records, steps)
    budget = found[0]["config"]["steps"]
    rows = summarise(found)
    tasks = sorted({r["task"] for r in rows}, key=lambda t: in_order(t, TASK_ORDER))
    methods = sorted({r["method"] for r in rows}, key=lambda m: in_order(m, METHOD_ORDER))
    figure, axes = plt.subplots(1, len(tasks), figsize=(3.2 * len(tasks), 3.0), squeeze=False)
    for ax, task in zip(axes[0], tasks):
        for method in methods:
            mine = [r for r in rows if r["task"] == task and r["method"] == method]
            if not mine:
                continue
            dims = [r["dim"] for r in mine]
            ax.errorbar(dims, [r["mean"] for r in mine],
                        yerr=[0.0 if math.isnan(r["std"]) else r["std"] for r in mine],
                        marker="o", markersize=4, capsize=3, label=LABELS.get(method, method),
                        color=_colour(method))
        ax.set_title(task)
        ax.set_xlabel("d")
        ax.set_yscale("log")
        ax.yaxis.set_major_locator(LogLocator(base=10, subs=(1.0, 2.0, 5.0)))  # 0.1, 0.2, 0.5, 1, ...
        ax.yaxis.set_major_formatter(FormatStrFormatter("%.2g"))
        low, high = ax.get_ylim()
        # a narrow panel may hold one labelled tick or none: then label the minor ticks too
        ax.yaxis.set_minor_formatter(FormatStrFormatter("%.2g") if high / low < 3 else NullFormatter())
        ax.tick_params(axis="y", which="both", labelsize="x-small")
        ax.set_xticks(sorted({r["dim"] for r in rows}))
    axes[0][0].set_ylabel("test relative squared error")
    axes[0][-1].legend(fontsize="small")
    figure.suptitle(f"Matrix tasks: {budget} steps, mean ± std over seeds", fontsize="medium")
    figure.tight_layout()
    written = save_figure(figure, out, table(rows, budget))
    if any(r.get("curve", {}).get("points") for r in found):
        written += plot_curves(found, Path(f"{out}-curves"))
    return written


def curves(records: Sequence[dict[str, Any]]) -> dict[tuple[str, str, int], dict[int, float]]:
    """``{(task, method, d): {step: mean over seeds of the curve's test error}}`` (steps every seed reached)."""
    groups: dict[tuple[str, str, int], list[dict[int, float]]] = defaultdict(list)
    for r in records:
        points = r.get("curve", {}).get("points") or []
        if points:
            c = r["config"]
            groups[(c["task"], c["method"], c["dim"])].append({int(s): float(e) for s, e in points})
    out = {}
    for key, runs in groups.items():
        common = set.intersection(*(set(run) for run in runs))
        out[key] = {step: statistics.fmean(run[step] for run in runs) for step in sorted(common)}
    return out


def curves_table(found: dict[tuple[str, str, int], dict[int, float]]) -> str:
    """The curves' error and rank (1: lowest error among the methods of that task and d) at each of :data:`BUDGETS`."""
    lines = ["Learning curves: mean test error on the first 200 test examples (mean over seeds) after each "
             "budget, and the method's rank among those of its task and d (1: lowest).", "",
             "| task | d | method | " + " | ".join(f"{b:,} steps" for b in BUDGETS) + " |",
             "|---|---:|---|" + "---|" * len(BUDGETS)]
    keys = sorted(found, key=lambda k: (in_order(k[0], TASK_ORDER), k[2], in_order(k[1], METHOD_ORDER)))
    for task, method, dim in keys:
        cells = []
        for budget in BUDGETS:
            error = found[(task, method, dim)].get(budget)
            if error is None:
                cells.append("")
                continue
            rivals = [f[budget] for (t, _, d), f in found.items() if t == task and d == dim and budget in f]
            cells.append(f"{error:.3g} ({1 + sum(e < error for e in rivals)}/{len(rivals)})")
        lines.append(f"| {task} | {dim} | {method} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def plot_curves(records: Sequence[dict[str, Any]], out: Path) -> list[Path]:
    """Test error against steps: one panel per task (columns) and d (rows); writes ``out.png``, ``.pdf``, ``.md``."""
    import matplotlib.pyplot as plt

    found = curves(records)
    tasks = sorted({k[0] for k in found}, key=lambda t: in_order(t, TASK_ORDER))
    dims = sorted({k[2] for k in found})
    figure, axes = plt.subplots(len(dims), len(tasks), figsize=(3.4 * len(tasks), 2.9 * len(dims)), squeeze=False)
    for row, dim in enumerate(dims):
        for column, task in enumerate(tasks):
            ax = axes[row][column]
            for method in sorted({k[1] for k in found}, key=lambda m: in_order(m, METHOD_ORDER)):
                curve = found.get((task, method, dim))
                if curve:
                    ax.plot(list(curve), list(curve.values()), label=LABELS.get(method, method),
                            color=_colour(method))
            ax.set_title(f"{task}, d = {dim}")
            ax.set_yscale("log")
            ax.set_xlabel("steps")
            ax.tick_params(labelsize="small")
        axes[row][0].set_ylabel("test relative squared error")
    handles, labels = axes[0][0].get_legend_handles_labels()
    for ax in axes.flat:
        more = ax.get_legend_handles_labels()
        for handle, label in zip(*more, strict=True):
            if label not in labels:
                handles.append(handle)
                labels.append(label)
    figure.legend(handles, labels, loc="lower center", ncol=3, fontsize="small")
    figure.suptitle("Matrix tasks: learning curves (fresh batches; mean over seeds)", fontsize="medium")
    figure.tight_layout(rect=(0, 0.1, 1, 1))
    return save_figure(figure, out, curves_table(found))
