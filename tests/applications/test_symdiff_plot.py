"""The SymDiff figure and table (``markovcat experiment symdiff-plot``) from small synthetic records.

What these prove: the table's numbers are the records' (mean ± std over seeds, or ± the record's
standard error with one seed), fields added later are optional, the published rows are there and
labelled; the molecules of the grid are bonded and judged exactly as EDM's metrics judge them;
the figure, the CLI and the documentation page are written; a record without the fields the table
reads, or a malformed XYZ file, gives an error naming the file and the field or line.  What they
do not: that the figure is legible (look at it).
"""

from __future__ import annotations

import importlib.util
import json
import math
import statistics
from pathlib import Path
from typing import Any

import pytest
import torch

from markovcat.experiments.cli import main as markovcat_main
from markovcat.experiments.symdiff import plot as symdiff_plot
from markovcat.experiments.symdiff.cli import main as symdiff_main
from markovcat.experiments.symdiff.data import ELEMENTS

ROOT = Path(__file__).resolve().parents[2]

METHANE = [("C", 0.0, 0.0, 0.0), ("H", 0.629, 0.629, 0.629), ("H", -0.629, -0.629, 0.629),
           ("H", -0.629, 0.629, -0.629), ("H", 0.629, -0.629, -0.629)]
WATER = [("O", 0.0, 0.0, 0.0), ("H", 0.757, 0.586, 0.0), ("H", -0.757, 0.586, 0.0)]
BROKEN_WATER = [("O", 0.0, 0.0, 0.0), ("H", 0.757, 0.586, 0.0), ("H", -3.0, 0.586, 0.0)]  # one H 3 Å away


def record(method: str, seed: int, nll: float, **metrics: Any) -> dict[str, Any]:
    """A small record shaped as ``train`` writes it (seed-dependent curve, a few steps)."""
    base = {"test_nll": nll, "valid_nll": nll + 10, "best_step": 20, "samples": 3, "test_molecules": 10,
            "sample_atom_stability": 90.0 + seed, "sample_molecule_stability": 50.0, "sample_validity": 80.0,
            "sample_uniqueness": 100.0, "sample_invariance": {"statistic": 0.1, "p_value": 0.5, "n": 3}}
    base.update(metrics)
    passed = method.startswith("symdiff")
    return {"name": f"symdiff_{method}_seed{seed}_abc", "config": {"method": method, "seed": seed, "steps": 20,
                                                                   "batch": 4},
            "metrics": {k: v for k, v in base.items() if v is not None},
            "curve": [[10, 0.5 + seed, 300.0 + seed], [20, 0.4 + seed, 200.0 + seed]],
            "curve_fields": ["step", "mean training loss since the last point", "valid NLL bound estimate (nats)"],
            "equivariance": {"O3": {"passed": passed, "statistic": 1e-16 if passed else 0.1,
                                    "method": "pathwise" if passed else "deterministic"}, "step": 10},
            "parameter_count": 1234, "step_seconds": 0.01}


def write_xyz(path: Path, molecules: list[list[tuple[str, float, float, float]]]) -> None:
    lines = []
    for i, atoms in enumerate(molecules):
        lines += [str(len(atoms)), f"x sample {i}: ?", *(f"{e} {x} {y} {z}" for e, x, y, z in atoms)]
    path.write_text("\n".join(lines) + "\n")


def write_records(folder: Path, *records: dict[str, Any]) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for r in records:
        (folder / f"{r['name']}.json").write_text(json.dumps(r))
    return folder


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    """Two contenders, one seed each; ``dit`` has no standard error (an older record) and a negative NLL curve
    (as at the paper's budget: no log scale then); ``symdiff`` has samples."""
    dit = record("dit", 0, 140.0, sample_atom_stability=None, sample_invariance=None)
    dit["curve"] = [[10, 0.5, 20.0], [20, 0.4, -60.0]]
    found = write_records(tmp_path / "records", record("symdiff", 0, 101.0, test_nll_sem=30.0,
                                                       test_nll_rotated=102.0, test_nll_rotated_sem=31.0), dit)
    write_xyz(found / "symdiff_symdiff_seed0_abc.xyz", [METHANE, WATER, BROKEN_WATER])
    return found


def test_table_has_our_rows_and_the_published_rows_labelled(folder: Path) -> None:
    rows = symdiff_plot.summarise(symdiff_plot.load(folder))
    assert [r["method"] for r in rows] == ["symdiff", "dit"]  # METHODS order
    symdiff, dit = rows
    assert (symdiff["test_nll"], symdiff["spread"], symdiff["spread_kind"]) == (101.0, 30.0, "s.e.")
    assert math.isnan(dit["spread"]) and math.isnan(dit["sample_atom_stability"]) and dit["invariance_p"] == []
    text = symdiff_plot.table(rows, {"steps": 20, "batch": 4})
    lines = text.splitlines()
    assert "| symdiff | 0 | 101.0 ± 30.0 s.e. | 102.0 ± 31.0 s.e. | 90.0 | 50.0 | 80.0 | 100.0 | 3 |" in lines
    assert "| symdiff | O3 1/1 (1e-16, pathwise) | p = 0.5 | 1,234 | 0.010 |" in lines  # the second table
    assert any(line.startswith("| dit | 0 | 140.0 | – | – | 50.0 |") for line in lines)  # an older record: no rotated
    assert any(line.startswith("| dit | O3 0/1 (0.1, deterministic) | – |") for line in lines)  # bound, no p-value
    published = text[text.index("Published"):]
    assert "full training budget (not our runs" in published
    assert "| SymDiff | -129.35 | 98.74 | 87.49 | 95.75 | 97.89 |" in published
    assert "| data | — | 99.00 | 95.20 | 97.80 | 100.00 |" in published


def test_several_seeds_give_mean_and_std_and_a_mean_curve(tmp_path: Path) -> None:
    found = symdiff_plot.load(write_records(tmp_path, record("symdiff", 0, 100.0, test_nll_sem=30.0),
                                            record("symdiff", 1, 110.0, test_nll_sem=30.0)))
    (row,) = symdiff_plot.summarise(found)
    assert row["seeds"] == [0, 1] and row["spread_kind"] == "sd"
    assert row["test_nll"] == 105.0 and row["spread"] == pytest.approx(statistics.stdev([100.0, 110.0]))
    assert row["sample_atom_stability"] == 90.5
    assert "105.0 ± 7.1 sd" in symdiff_plot.table([row], found[0]["config"])
    steps, means, stds = symdiff_plot._curves(found, "nll")
    assert steps == [10, 20] and means == [300.5, 200.5] and stds[0] == pytest.approx(math.sqrt(0.5))


def test_curve_columns_are_found_by_name_when_fields_are_added() -> None:
    r = record("dit", 0, 1.0)
    r["curve_fields"] = ["step", "valid NLL bound estimate (nats)", "valid NLL sem", "mean training loss"]
    r["curve"] = [[10, 300.0, 9.0, 0.5], [20, 200.0, 8.0, 0.4]]
    assert symdiff_plot._curves([r], "nll")[1] == [300.0, 200.0]
    assert symdiff_plot._curves([r], "loss")[1] == [0.5, 0.4]
    del r["curve_fields"]  # positional fallback: [step, loss, nll, ...]
    assert symdiff_plot._column(r, "loss") == 1 and symdiff_plot._column(r, "nll") == 2


def test_grid_molecules_are_judged_by_the_metrics_rules(folder: Path) -> None:
    pytest.importorskip("rdkit")
    from markovcat.experiments.symdiff.metrics import evaluate

    drawn = symdiff_plot.molecules(folder / "symdiff_symdiff_seed0_abc.xyz")
    assert [(d.stable, d.valid) for d in drawn] == [(True, True), (True, True), (False, True)]
    assert [d.mol.GetNumAtoms() for d in drawn] == [5, 3, 3]  # every atom drawn, no hydrogens added
    assert [d.mol.GetNumBonds() for d in drawn] == [4, 2, 1]
    for atoms, d in zip((METHANE, WATER, BROKEN_WATER), drawn, strict=True):  # the same SMILES as EDM's metrics
        positions = torch.tensor([[a[1:] for a in atoms]], dtype=torch.float64)
        types = torch.tensor([[ELEMENTS.index(a[0]) for a in atoms]])
        assert evaluate(positions, types).smiles == (d.smiles,)
    assert len(symdiff_plot.molecules(folder / "symdiff_symdiff_seed0_abc.xyz", 2)) == 2


def test_plot_writes_figure_and_table_and_draws_the_grid(folder: Path, tmp_path: Path) -> None:
    pytest.importorskip("rdkit")
    from PIL import Image

    written = symdiff_plot.plot(folder, tmp_path / "out" / "symdiff")
    assert [p.suffix for p in written] == [".png", ".pdf", ".md"] and all(p.stat().st_size > 0 for p in written)
    assert "| symdiff | 0 | 101.0 ± 30.0 s.e." in written[2].read_text()
    (folder / "symdiff_symdiff_seed0_abc.xyz").unlink()
    without = symdiff_plot.plot(folder, tmp_path / "out" / "curves")
    with Image.open(written[0]) as grid, Image.open(without[0]) as curves:
        assert grid.size[1] > curves.size[1] + 200  # one row of molecules adds height


def test_the_cli_writes_the_figure(folder: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    pytest.importorskip("rdkit")
    out = tmp_path / "figure"
    assert markovcat_main(["experiment", "symdiff-plot", "--records", str(folder), "--out", str(out)]) == 0
    assert f"wrote {out}.png" in capsys.readouterr().out and out.with_suffix(".md").exists()
    assert symdiff_main(["plot", "--records", str(folder), "--steps", "20"]) == 0
    assert (folder / "symdiff.png").exists()


def test_a_record_without_required_fields_is_a_clear_error(tmp_path: Path,
                                                           capsys: pytest.CaptureFixture[str]) -> None:
    broken = record("dit", 0, 1.0)
    del broken["metrics"]["test_nll"]
    folder = write_records(tmp_path / "a", broken)
    with pytest.raises(ValueError, match=r"symdiff_dit_seed0_abc.json: metrics has no 'test_nll'"):
        symdiff_plot.load(folder)
    with pytest.raises(SystemExit):
        markovcat_main(["experiment", "symdiff-plot", "--records", str(folder)])
    assert "metrics has no 'test_nll'" in capsys.readouterr().err
    no_curve = record("dit", 0, 1.0)
    del no_curve["curve"]
    with pytest.raises(ValueError, match=r"has no 'curve'"):
        symdiff_plot.load(write_records(tmp_path / "b", no_curve))
    no_method = record("dit", 0, 1.0)
    del no_method["config"]["method"]
    with pytest.raises(ValueError, match=r"config has no 'method'"):
        symdiff_plot.load(write_records(tmp_path / "c", no_method))


def test_a_malformed_xyz_file_names_the_line(tmp_path: Path) -> None:
    path = tmp_path / "bad.xyz"
    path.write_text("2\ncomment\nC 0 0 0\nCl 1 0 0\n")
    with pytest.raises(ValueError, match=r"bad.xyz, line 4: expected 'element x y z'"):
        symdiff_plot.read_xyz(path)
    path.write_text("3\ncomment\nC 0 0 0\n")
    with pytest.raises(ValueError, match=r"line 1: a frame of 3 atoms does not fit"):
        symdiff_plot.read_xyz(path)


def test_the_docs_page_includes_the_table(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    spec = importlib.util.spec_from_file_location("docs_site_symdiff", ROOT / "docs" / "_hooks" / "site.py")
    assert spec is not None and spec.loader is not None
    site = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(site)
    monkeypatch.setattr(site, "SYMDIFF", tmp_path)
    pages = dict(site.experiment_pages())
    assert "No table yet" in str(pages["experiments/symdiff.md"]) and "experiments/symdiff.png" not in pages
    (tmp_path / "symdiff.md").write_text("| contender |\n|---|\n| symdiff |\n")
    (tmp_path / "symdiff.png").write_bytes(b"png")
    pages = dict(site.experiment_pages())
    page = str(pages["experiments/symdiff.md"])
    assert "| symdiff |" in page and "](symdiff.png)" in page and pages["experiments/symdiff.png"] == b"png"
