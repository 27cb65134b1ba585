"""The SymDiff figure and table from the records (``markovcat experiment symdiff-plot``).

Table (Markdown), one row per contender: the test NLL bound (mean ± std over seeds; with one
seed, ± the standard error over the test molecules that the record holds), EDM's four sample
metrics (means over seeds), the equivariance checks of the trained denoiser and the ``O(3)``
invariance test of the samples' law, parameters, seconds per training step and the seeds; then
the SymDiff paper's Table 1 rows, labelled as published at the full budget (not our runs).

Figure: (a) the validation NLL bound estimate and the mean training loss against training steps,
one line per contender (the mean over seeds, a ± std band when there are several); (b) the first
:data:`GRID_SAMPLES` generated molecules of each contender (its first seed's ``<name>.xyz``),
bonded by exactly the rules of :mod:`~markovcat.experiments.symdiff.metrics` and drawn as 2D
depictions by RDKit, every atom of the sample shown (hydrogens included, none added), each
labelled stable / valid by those rules.  The depiction shows the bond graph, not the 3D geometry.
"""

from __future__ import annotations

import math
import statistics
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from markovcat.experiments.runner import in_order, load_records, save_figure
from markovcat.experiments.symdiff.data import ELEMENTS
from markovcat.experiments.symdiff.metrics import atom_stability, bond_orders, canonical_smiles, to_rdkit
from markovcat.experiments.symdiff.models import METHODS
from markovcat.experiments.symdiff.train import read_record

__all__ = ["FIGURE", "GRID_SAMPLES", "PUBLISHED", "Drawn", "load", "read_xyz", "molecules", "summarise", "table",
           "plot"]

FIGURE = "symdiff"
#: Molecules drawn per contender in the grid.
GRID_SAMPLES = 6
#: The SymDiff paper's Table 1 on QM9 (full training budget): name -> (NLL, atom stab. %, mol. stab. %,
#: valid %, unique %); ``None``: not reported.  Published numbers, not our runs.
PUBLISHED: tuple[tuple[str, tuple[float | None, float, float, float, float]], ...] = (
    ("SymDiff", (-129.35, 98.74, 87.49, 95.75, 97.89)),
    ("DiT-Aug", (-126.81, 98.64, 85.85, 95.10, 97.98)),
    ("DiT", (-127.78, 98.23, 81.03, 94.71, 97.98)),
    ("EDM", (-110.70, 98.70, 82.00, 91.90, 90.70)),
    ("data", (None, 99.00, 95.20, 97.8, 100.0)),
)
_SAMPLE_METRICS = ("sample_atom_stability", "sample_molecule_stability", "sample_validity", "sample_uniqueness")
_SOURCE = "_source"  # the record's path, added when read (for its .xyz and for errors)


def _read(path: Path) -> dict[str, Any]:
    """A record, checked to have what the table and figure read; its path kept under :data:`_SOURCE`."""
    record = read_record(path)
    config, metrics = record["config"], record["metrics"]
    for where, mapping, keys in (("config", config, ("method", "steps", "seed")), ("metrics", metrics, ("test_nll",))):
        if not isinstance(mapping, dict):
            raise ValueError(f"{path}: {where!r} is not a mapping: not a SymDiff record")
        missing = [k for k in keys if k not in mapping]
        if missing:
            raise ValueError(f"{path}: {where} has no {', '.join(map(repr, missing))}: not a SymDiff record "
                             f"(or one from an older version); rerun that run")
    if not isinstance(record["curve"], list) or any(not isinstance(row, list) or len(row) < 3
                                                   for row in record["curve"]):
        raise ValueError(f"{path}: 'curve' must be a list of rows [step, training loss, valid NLL, ...]")
    return {**record, _SOURCE: str(path)}


def load(records: Path | str, steps: int | None = None) -> list[dict[str, Any]]:
    """The records in a folder (``*.json``), all of one step budget (``steps``, or the only one there)."""
    return load_records(records, _read, "symdiff", steps)


def _groups(records: Sequence[dict[str, Any]]) -> list[tuple[str, list[dict[str, Any]]]]:
    """Records by contender (in :data:`METHODS` order), each group sorted by seed."""
    groups: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for r in records:
        groups[r["config"]["method"]].append(r)
    ordered = sorted(groups, key=lambda m: in_order(m, METHODS))
    return [(m, sorted(groups[m], key=lambda r: r["config"]["seed"])) for m in ordered]


def _mean(values: Sequence[float | None]) -> float:
    """The mean of the values present (``nan`` when none is)."""
    present = [float(v) for v in values if v is not None]
    return statistics.fmean(present) if present else math.nan


def _verdicts(runs: Sequence[dict[str, Any]]) -> str:
    """``check: passed/seeds (largest statistic, method)`` for every check of the records' ``equivariance``."""
    names = sorted({k for r in runs for k, v in r["equivariance"].items() if isinstance(v, dict) and "passed" in v})
    parts = []
    for name in names:
        checks = [r["equivariance"][name] for r in runs if isinstance(r["equivariance"].get(name), dict)]
        statistic = max((c["statistic"] for c in checks if c.get("statistic") is not None), default=math.nan)
        methods = "/".join(sorted({str(c.get("method", "?")) for c in checks}))
        parts.append(f"{name} {sum(bool(c['passed']) for c in checks)}/{len(checks)} ({statistic:.2g}, {methods})")
    return "; ".join(parts) if parts else "not checked"


def summarise(records: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """One row per contender: the test NLL and its spread, the sample metrics' means, the checks, the costs.

    ``spread`` is the std over seeds when there are several, else the record's ``test_nll_sem``
    (``nan`` when absent); ``spread_kind`` says which (``"sd"`` or ``"s.e."``).
    """
    rows = []
    for method, runs in _groups(records):
        nll, spread, kind = _bound(runs, "test_nll")
        rotated = _bound(runs, "test_nll_rotated") if all("test_nll_rotated" in r["metrics"] for r in runs) else None
        row: dict[str, Any] = {"method": method, "seeds": [r["config"]["seed"] for r in runs],
                               "test_nll": nll, "spread": spread, "spread_kind": kind, "test_nll_rotated": rotated,
                               "valid_nll": _mean([r["metrics"].get("valid_nll") for r in runs]),
                               "samples": sorted({r["metrics"]["samples"] for r in runs if "samples" in r["metrics"]}),
                               "equivariance": _verdicts(runs),
                               "invariance_p": [r["metrics"]["sample_invariance"]["p_value"] for r in runs
                                                if isinstance(r["metrics"].get("sample_invariance"), dict)],
                               "parameters": runs[0].get("parameter_count"),
                               "step_seconds": _mean([r.get("step_seconds") for r in runs])}
        for key in _SAMPLE_METRICS:
            row[key] = _mean([r["metrics"].get(key) for r in runs])
        rows.append(row)
    return rows


def _bound(runs: Sequence[dict[str, Any]], key: str) -> tuple[float, float, str]:
    """``(mean, spread, kind)`` of ``metrics[key]``: std over seeds (``"sd"``), or one seed's ``<key>_sem``
    (``"s.e."``)."""
    values = [float(r["metrics"][key]) for r in runs]
    if len(runs) > 1:
        return statistics.fmean(values), statistics.stdev(values), "sd"
    sem = runs[0]["metrics"].get(f"{key}_sem")
    return values[0], (math.nan if sem is None else float(sem)), "s.e."


def _with_spread(mean: float, spread: float, kind: str) -> str:
    return f"{mean:.1f}" + ("" if math.isnan(spread) else f" ± {spread:.1f} {kind}")


def _number(value: float, digits: int = 1) -> str:
    return "–" if math.isnan(value) else f"{value:.{digits}f}"


def table(rows: Sequence[dict[str, Any]], config: dict[str, Any]) -> str:
    """A Markdown table of :func:`summarise` 's rows, then the published Table 1 rows (labelled as such)."""
    budget = f"{config['steps']:,} steps" + (f" of batch {config['batch']}" if "batch" in config else "")
    lines = [f"SymDiff on QM9, our runs: {budget}. Test NLL: the variational bound in nats (selected on the "
             f"validation estimate), mean ± std over seeds (sd), or with one seed ± its standard error over the "
             f"test molecules (s.e.); sample metrics: EDM's, in %, means over seeds; denoiser equivariance: runs "
             f"passing each check (largest statistic, method); samples' O(3) invariance: the two-sample test's "
             f"p-value per seed (small: a preferred orientation); rotated: the same test molecules, each turned "
             f"by a random element of O(3), with the same draws.", "",
             "| contender | seeds | test NLL (nats) | rotated test NLL | atom stab. % | mol. stab. % | valid % "
             "| unique % | samples |",
             "|---|---|---|---|---:|---:|---:|---:|---:|"]
    for r in rows:
        nll = _with_spread(r["test_nll"], r["spread"], r["spread_kind"])
        turned = "–" if r["test_nll_rotated"] is None else _with_spread(*r["test_nll_rotated"])
        lines.append(f"| {r['method']} | {', '.join(map(str, r['seeds']))} | {nll} | {turned} | "
                     + " | ".join(_number(r[k]) for k in _SAMPLE_METRICS)
                     + f" | {'/'.join(map(str, r['samples'])) or '–'} |")
    lines += ["", "The same runs: the symmetry of the trained denoiser and of its samples, and the cost.", "",
              "| contender | denoiser equivariance | samples' O(3) invariance | parameters | s/step |",
              "|---|---|---|---:|---:|"]
    for r in rows:
        invariance = ", ".join(f"p = {p:.2g}" for p in r["invariance_p"]) or "–"
        parameters = "–" if r["parameters"] is None else f"{r['parameters']:,}"
        lines.append(f"| {r['method']} | {r['equivariance']} | {invariance} | {parameters} | "
                     f"{_number(r['step_seconds'], 3)} |")
    lines += ["", "Published: the SymDiff paper's Table 1 on QM9, at the full training budget (not our runs, and not "
                  "comparable with the rows above at a smaller budget):", "",
              "| published (full budget) | NLL | atom stab. % | mol. stab. % | valid % | unique % |",
              "|---|---:|---:|---:|---:|---:|"]
    for name, values in PUBLISHED:
        lines.append(f"| {name} | " + " | ".join("—" if v is None else f"{v:.2f}" for v in values) + " |")
    return "\n".join(lines) + "\n"


# -- the molecules ----------------------------------------------------------------------------------------------------


def read_xyz(path: Path | str, count: int | None = None) -> list[tuple[str, list[str], torch.Tensor]]:
    """The first ``count`` (all if ``None``) molecules of a multi-frame XYZ file: ``(comment, elements, positions)``.

    Positions are an ``(n, 3)`` float64 tensor in Å.  Raises :class:`ValueError` naming the file
    and line of a malformed frame or an element outside :data:`~markovcat.experiments.symdiff.data.ELEMENTS`.
    """
    path = Path(path)
    lines = path.read_text().splitlines()
    out: list[tuple[str, list[str], torch.Tensor]] = []
    i = 0
    while i < len(lines) and (count is None or len(out) < count):
        if not lines[i].strip():
            i += 1
            continue
        try:
            n = int(lines[i])
        except ValueError:
            raise ValueError(f"{path}, line {i + 1}: expected an atom count, got {lines[i]!r}") from None
        if n < 1 or i + 2 + n > len(lines):
            raise ValueError(f"{path}, line {i + 1}: a frame of {n} atoms does not fit in the file")
        comment, elements, coords = lines[i + 1], [], []
        for j in range(i + 2, i + 2 + n):
            fields = lines[j].split()
            if len(fields) != 4 or fields[0] not in ELEMENTS:
                raise ValueError(f"{path}, line {j + 1}: expected 'element x y z' with an element of "
                                 f"{'/'.join(ELEMENTS)}, got {lines[j]!r}")
            try:
                coords.append([float(v) for v in fields[1:]])
            except ValueError:
                raise ValueError(f"{path}, line {j + 1}: coordinates are not numbers: {lines[j]!r}") from None
            elements.append(fields[0])
        out.append((comment, elements, torch.tensor(coords, dtype=torch.float64)))
        i += 2 + n
    return out


@dataclass(frozen=True)
class Drawn:
    """One sampled molecule as the metrics see it: its RDKit ``Mol`` (bonds of the metrics' rules) and verdicts."""

    mol: Any
    stable: bool
    valid: bool
    smiles: str | None


def molecules(path: Path | str, count: int = GRID_SAMPLES) -> list[Drawn]:
    """The first ``count`` molecules of an XYZ file, bonded and judged by :mod:`~markovcat.experiments.symdiff.metrics`.

    ``stable``: every atom's valency allowed (:func:`~markovcat.experiments.symdiff.metrics.atom_stability`);
    ``valid``: RDKit sanitises it (:func:`~markovcat.experiments.symdiff.metrics.canonical_smiles`).
    ``mol`` is an unsanitised copy for drawing: the sample's atoms only (no implicit hydrogens).
    """
    try:
        from rdkit import Chem
    except ModuleNotFoundError as error:
        raise ModuleNotFoundError("drawing the generated molecules needs RDKit: pip install rdkit (or the "
                                  "project's [qm9] extra)", name="rdkit") from error
    from rdkit import rdBase

    out = []
    quiet = rdBase.BlockLogs()  # sanitisation failures are verdicts here, not messages
    for _, elements, positions in read_xyz(path, count):
        types = torch.tensor([[ELEMENTS.index(e) for e in elements]])
        orders = bond_orders(positions[None], types)[0]
        stable = bool(atom_stability(positions[None], types).all())
        mol = to_rdkit(types[0], orders)
        drawing = Chem.Mol(mol)
        smiles = canonical_smiles(mol)
        for atom in drawing.GetAtoms():
            atom.SetNoImplicit(True)
        drawing.UpdatePropertyCache(strict=False)
        out.append(Drawn(drawing, stable, smiles is not None, smiles))
    del quiet
    return out


def _image(mol: Any, size: int) -> Any:
    """A 2D depiction of ``mol`` (computed from its bonds) as an RGB array."""
    import numpy as np
    from rdkit.Chem import Draw, rdDepictor

    mol = type(mol)(mol)
    rdDepictor.Compute2DCoords(mol)
    drawer = Draw.rdMolDraw2D.MolDraw2DCairo(size, size)
    options: Any = drawer.drawOptions()
    options.addStereoAnnotation = False
    options.prepareMolsBeforeDrawing = False
    options.padding = 0.06
    options.minFontSize = 13
    options.maxFontSize = 18
    options.fixedBondLength = 30  # one scale for every molecule that fits (bigger ones shrink)
    drawer.DrawMolecule(mol)
    drawer.FinishDrawing()
    from io import BytesIO

    from PIL import Image

    return np.asarray(Image.open(BytesIO(drawer.GetDrawingText())).convert("RGB"))


def _xyz_of(record: dict[str, Any]) -> Path | None:
    path = Path(record[_SOURCE]).with_suffix(".xyz")
    return path if path.exists() else None


# -- the figure -------------------------------------------------------------------------------------------------------


def _column(record: dict[str, Any], meaning: str) -> int:
    """The curve column of ``meaning`` (``"loss"`` or ``"nll"``), found by ``curve_fields`` where it names them."""
    fields = [str(f).lower() for f in record.get("curve_fields") or []]
    for i, field in enumerate(fields):
        if meaning in field and not any(w in field for w in ("sem", "standard error", "std")):
            return i
    return 1 if meaning == "loss" else 2


def _curves(runs: Sequence[dict[str, Any]], meaning: str) -> tuple[list[int], list[float], list[float]]:
    """The steps all runs share, and the mean and std (``nan`` for one run) over runs of a curve column."""
    curves = []
    for r in runs:
        column = _column(r, meaning)
        curves.append({int(row[0]): float(row[column]) for row in r["curve"] if row[column] is not None})
    steps = sorted(set.intersection(*(set(c) for c in curves))) if curves else []
    means = [statistics.fmean(c[s] for c in curves) for s in steps]
    stds = [statistics.stdev(c[s] for c in curves) if len(curves) > 1 else math.nan for s in steps]
    return steps, means, stds


def plot(records: Path | str, out: Path | str, steps: int | None = None) -> list[Path]:
    """Write ``out.png``, ``out.pdf`` (the figure) and ``out.md`` (the table); return their paths."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt
    from matplotlib.ticker import FormatStrFormatter, LogLocator, NullFormatter

    found = load(records, steps)
    config = found[0]["config"]
    groups = _groups(found)
    rows = summarise(found)
    grid = [(method, runs[0]["config"]["seed"], molecules(xyz)) for method, runs in groups
            if (xyz := _xyz_of(runs[0])) is not None]
    grid = [(method, seed, drawn) for method, seed, drawn in grid if drawn]
    columns = max((len(d) for _, _, d in grid), default=0)
    figure = plt.figure(figsize=(12, 3.9 + 2.25 * len(grid)))
    outer = figure.add_gridspec(2 if grid else 1, 1, height_ratios=[3.2, 2.25 * len(grid)] if grid else None,
                                hspace=0.2)
    top = outer[0].subgridspec(1, 2, wspace=0.22)
    nll_axis, loss_axis = figure.add_subplot(top[0]), figure.add_subplot(top[1])
    lowest = math.inf  # of the NLL lines and bands
    for index, (method, runs) in enumerate(groups):
        for axis, meaning in ((nll_axis, "nll"), (loss_axis, "loss")):
            xs, ys, sd = _curves(runs, meaning)
            label = method + (f" ({len(runs)} seeds)" if len(runs) > 1 else "")
            axis.plot(xs, ys, color=f"C{index % 10}", label=label, marker="." if len(xs) < 40 else None)
            below = ys
            if len(runs) > 1:
                below = [y - s for y, s in zip(ys, sd)]
                axis.fill_between(xs, below, [y + s for y, s in zip(ys, sd)], color=f"C{index % 10}", alpha=0.2,
                                  linewidth=0)
            if meaning == "nll":
                lowest = min([lowest, *below])
    for axis, what in ((nll_axis, "validation NLL bound estimate (nats)"), (loss_axis, "mean training loss")):
        if axis is nll_axis and 0 < lowest < math.inf:  # the bound falls by orders of magnitude early on
            axis.set_yscale("log")
            axis.yaxis.set_major_locator(LogLocator(base=10, subs=(1.0, 2.0, 5.0)))
            axis.yaxis.set_major_formatter(FormatStrFormatter("%g"))
            axis.yaxis.set_minor_formatter(NullFormatter())
        axis.set_xlabel("training steps")
        axis.set_ylabel(what)
        axis.grid(alpha=0.3)
    nll_axis.set_title("(a) validation NLL bound estimate (mean over seeds)", fontsize="medium", loc="left")
    loss_axis.set_title("mean training loss since the previous point (mean over seeds)", fontsize="medium",
                        loc="left")
    nll_axis.legend(fontsize="small")
    if grid:
        cells = outer[1].subgridspec(len(grid), columns, hspace=0.22, wspace=0.04)
        for row, (method, seed, drawn) in enumerate(grid):
            for col in range(columns):
                axis = figure.add_subplot(cells[row, col])
                axis.set_xticks([])
                axis.set_yticks([])
                if col < len(drawn):
                    d = drawn[col]
                    axis.imshow(_image(d.mol, 300))
                    verdict = f"{'stable' if d.stable else 'unstable'}, {'valid' if d.valid else 'invalid'}"
                    colour = "tab:green" if d.stable and d.valid else "tab:orange" if d.valid else "tab:red"
                    axis.set_xlabel(f"#{col}: {verdict}", fontsize="small", color=colour, labelpad=2)
                else:
                    axis.set_axis_off()
                if col == 0:
                    axis.set_ylabel(f"{method}\n(seed {seed})", fontsize="medium")
                if row == 0 and col == 0:
                    axis.set_title(f"(b) the first {columns} generated molecules per contender, bonds by EDM's "
                                   f"rules (all atoms shown)", fontsize="medium", loc="left")
    figure.suptitle(f"SymDiff on QM9, {config['steps']:,} training steps", fontsize="large", y=0.995)
    figure.subplots_adjust(left=0.07, right=0.98, top=1 - 0.5 / figure.get_figheight(),
                           bottom=0.25 / figure.get_figheight())
    return save_figure(figure, out, table(rows, config))
