"""The paper-style figure and table from the records: test error against d, one panel per task, one line per method.

Each point is the mean over seeds of the runs' mean test relative squared error, the error
bar the standard deviation over seeds (none for one seed).  The table (Markdown, next to the
figure) gives task, method, d, mean ± std over seeds, the number of seeds and how many runs
passed the equivariance check.
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

__all__ = ["FIGURE", "load", "summarise", "table", "plot"]

FIGURE = "matrix"
TASK_ORDER = ("cov", "linreg", "expm", "inv", "inv1")
METHOD_ORDER = ("mlp", "haar", "kim", "recursive")


def load(records: Path | str, steps: int | None = None) -> list[dict[str, Any]]:
    """The records in a folder (``*.json``), all of one step budget (``steps``, or the only one there)."""
    found = load_records(records, read_record, "matrix", steps)
    others = Counter(_setting(r) for r in found)
    if len(others) > 1:
        raise ValueError(f"{records} mixes training settings {sorted(others)}: keep one setting per folder")
    return found


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
        for index, method in enumerate(methods):
            mine = [r for r in rows if r["task"] == task and r["method"] == method]
            if not mine:
                continue
            dims = [r["dim"] for r in mine]
            ax.errorbar(dims, [r["mean"] for r in mine],
                        yerr=[0.0 if math.isnan(r["std"]) else r["std"] for r in mine],
                        marker="o", markersize=4, capsize=3, label=method, color=f"C{index}")
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
    return save_figure(figure, out, table(rows, budget))
