"""The N-body figure and table from the records.

Figure: validation MSE against training steps, one line per contender (dashed: the peers' models),
the mean over seeds of each run's curve (evaluated on the validation split, one draw per system for
the stochastic models, since the test split is evaluated once, at the end); beside it each
contender's test MSE (mean ± std over seeds) as a bar chart.  Table (Markdown): test MSE mean ±
std over seeds, validation MSE, draws averaged at test time, the ``E(3)`` and ``S_5`` equivariance
verdicts and statistics, parameters, training steps/s and forward+backward time per batch.
"""

from __future__ import annotations

import math
import statistics
from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from markovcat.experiments.nbody.models import METHODS, PEERS
from markovcat.experiments.nbody.train import read_record
from markovcat.experiments.runner import in_order, load_records, save_figure

__all__ = ["FIGURE", "load", "summarise", "table", "plot", "PUBLISHED"]

FIGURE = "nbody"
#: Published test MSE on the EGNN paper's data (their simulator, 10,000 epochs): beside ours, not comparable.
PUBLISHED: tuple[tuple[str, float, str], ...] = (
    ("linear", 0.0819, "Satorras et al. 2021"),
    ("SE(3)-Transformer", 0.0244, "Satorras et al. 2021"),
    ("TFN", 0.0155, "Satorras et al. 2021"),
    ("GNN", 0.0107, "Satorras et al. 2021"),
    ("Radial Field", 0.0104, "Satorras et al. 2021"),
    ("EGNN", 0.0071, "Satorras et al. 2021"),
    ("FA-GNN", 0.0057, "Puny et al. 2022"),
)


def load(records: Path | str, steps: int | None = None) -> list[dict[str, Any]]:
    """The records in a folder (``*.json``), all of one step budget (``steps``, or the only one there)."""
    return load_records(records, read_record, "nbody", steps)


def _mean_std(values: Sequence[float]) -> tuple[float, float]:
    return statistics.fmean(values), statistics.stdev(values) if len(values) > 1 else math.nan


def summarise(records: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """One row per contender: means over seeds (std for the test MSE), verdict counts, costs."""
    groups: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for r in records:
        groups[r["config"]["method"]].append(r)
    rows = []
    for method, runs in groups.items():
        test, spread = _mean_std([r["metrics"]["test_mse"] for r in runs])
        row: dict[str, Any] = {"method": method, "test": test, "std": spread, "seeds": len(runs),
                               "valid": statistics.fmean(r["metrics"]["valid_mse"] for r in runs),
                               "samples": sorted({r["metrics"]["test_samples_used"] for r in runs}),
                               "parameters": runs[0]["parameter_count"],
                               "speed": statistics.fmean(r["steps_per_second"] or math.nan for r in runs),
                               "fwd_bwd": statistics.fmean(r["forward_backward_seconds"] or math.nan for r in runs)}
        for group in ("E3", "S5"):
            checks = [r["equivariance"][group] for r in runs]
            row[group] = (sum(c["passed"] for c in checks), max(c["statistic"] for c in checks),
                          "/".join(sorted({c["method"] for c in checks})))
        rows.append(row)
    rows.sort(key=lambda row: in_order(row["method"], METHODS))
    return rows


def table(rows: Sequence[dict[str, Any]], steps: int) -> str:
    """A Markdown table of :func:`summarise` 's rows."""
    lines = [f"N-body (5 charged particles), {steps} steps of batch 100: test MSE mean ± std over seeds (selected "
             f"on validation); equivariance: runs passing `check_equivariance` (largest statistic; the method).", "",
             "| contender | test MSE | valid MSE | draws at test | E(3) check | S5 check | parameters | steps/s "
             "| fwd+bwd per batch (ms) |",
             "|---|---|---:|---|---|---|---:|---:|---:|"]
    for r in rows:
        spread = "" if math.isnan(r["std"]) else f" ± {r['std']:.2g}"
        checks = [f"{r[g][0]}/{r['seeds']} ({r[g][1]:.2g}, {r[g][2]})" for g in ("E3", "S5")]
        lines.append(f"| {r['method']} | {r['test']:.4g}{spread} | {r['valid']:.4g} | "
                     f"{'/'.join(map(str, r['samples']))} | {checks[0]} | {checks[1]} | {r['parameters']:,} | "
                     f"{r['speed']:.1f} | {1000 * r['fwd_bwd']:.1f} |")
    lines += ["", "Published (their simulator and budget, not comparable with the rows above): " +
              "; ".join(f"{name} {mse}" for name, mse, _ in PUBLISHED) + "."]
    return "\n".join(lines) + "\n"


def _curves(records: Sequence[dict[str, Any]]) -> dict[str, tuple[list[int], list[float]]]:
    """Per contender, the validation curve averaged over seeds (at the steps all its runs share)."""
    groups: dict[str, list[dict[int, float]]] = defaultdict(list)
    for r in records:
        groups[r["config"]["method"]].append({int(s): float(v) for s, v in r["curve"]})
    out = {}
    for method, curves in groups.items():
        steps = sorted(set.intersection(*(set(c) for c in curves)))
        out[method] = (steps, [statistics.fmean(c[s] for c in curves) for s in steps])
    return out


def plot(records: Path | str, out: Path | str, steps: int | None = None) -> list[Path]:
    """Write ``out.png``, ``out.pdf`` (the figure) and ``out.md`` (the table); return their paths."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt
    from matplotlib.ticker import FormatStrFormatter, LogLocator, NullFormatter

    found = load(records, steps)
    budget = found[0]["config"]["steps"]
    rows = summarise(found)
    curves = _curves(found)
    figure, (left, right) = plt.subplots(1, 2, figsize=(10, 3.6), gridspec_kw={"width_ratios": [3, 2]})
    for index, row in enumerate(rows):
        xs, ys = curves[row["method"]]
        peer = row["method"] in PEERS  # dashed: a peer library's model (fa-peer's line lies on fa's)
        left.plot(xs, ys, label=row["method"], color=f"C{index % 10}", linestyle="--" if peer else "-")
    left.set_yscale("log")
    left.set_xlabel("training steps")
    left.set_ylabel("validation MSE (mean over seeds)")
    left.legend(fontsize="small", ncol=2)
    names = [r["method"] for r in rows]
    right.barh(range(len(rows)), [r["test"] for r in rows],
               xerr=[0.0 if math.isnan(r["std"]) else r["std"] for r in rows],
               color=[f"C{i % 10}" for i in range(len(rows))])
    right.set_yticks(range(len(rows)), names, fontsize="small")
    right.invert_yaxis()
    right.set_xscale("log")
    right.xaxis.set_major_locator(LogLocator(base=10, subs=(1.0, 2.0, 5.0)))  # 0.005, 0.01, 0.02, 0.05, ...
    right.xaxis.set_major_formatter(FormatStrFormatter("%.3g"))
    right.xaxis.set_minor_formatter(NullFormatter())
    right.set_xlabel("test MSE (mean ± std over seeds)")
    figure.suptitle(f"N-body, {budget} steps", fontsize="medium")
    figure.tight_layout()
    return save_figure(figure, out, table(rows, budget))
