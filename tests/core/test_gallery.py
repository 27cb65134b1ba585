"""The gallery: every module builds its figures, the Markov-law ones hold, all proofs check, all render."""

from __future__ import annotations

import importlib
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

import markovcat as mc
from markovcat.diagrams import MODULES, all_figures
from markovcat.diagrams.__main__ import DEFAULT_OUT, main, parser
from markovcat.diagrams.demo import demo

GALLERY = Path(importlib.import_module("markovcat.diagrams").__file__ or "").parent
HELPERS = {"__init__", "__main__", "_example", "render", "demo"}


def test_every_gallery_module_is_listed() -> None:
    on_disk = {p.stem for p in GALLERY.glob("*.py")} - HELPERS
    assert on_disk == set(MODULES)


@pytest.mark.parametrize("name", MODULES)
def test_module_figures(name: str) -> None:
    module = importlib.import_module(f"markovcat.diagrams.{name}")
    assert module.__doc__, f"{name} needs a docstring saying what it shows"
    figs = module.figures()
    assert figs and all(isinstance(v, (mc.Diagram, mc.Equation)) for v in figs.values())


MARKOV_LAWS = [
    ("sym", "program_form"),
    ("ave", "averaged_kernel"),
    ("products", "trivial_twist"),
    ("cg", "copy_equivariant"),
    ("cg", "discard_equivariant"),
    ("cg", "swap_equivariant"),
    ("actions", "trivial_compatibility"),
]
NOT_MARKOV_LAWS = [
    ("group_axioms", "associativity"),
    ("group_axioms", "left_inverse"),
    ("actions", "compatibility"),
    ("equivariance", "equivariance"),
    ("adjunction", "flat_sharp"),
    ("adjunction", "sharp_equivariant"),
    ("sym", "stability"),
    ("haar", "left_invariance"),
]


@pytest.mark.parametrize(("name", "key"), MARKOV_LAWS)
def test_markov_law_figures_hold(name: str, key: str) -> None:
    eq = importlib.import_module(f"markovcat.diagrams.{name}").figures()[key]
    assert eq.check(), eq.explain()


@pytest.mark.parametrize(("name", "key"), NOT_MARKOV_LAWS)
def test_axiom_figures_are_not_markov_laws(name: str, key: str) -> None:
    assert not importlib.import_module(f"markovcat.diagrams.{name}").figures()[key].check()


def test_symdiff_wrong_order_differs() -> None:
    from markovcat.diagrams import symdiff

    assert not mc.equal(symdiff.gamma.diagram, symdiff.wrong_order())


def test_statements_are_linked_to_their_proofs() -> None:
    linked = {(f.module, f.key): f.proved_by for f in all_figures() if f.kind == "equation"}
    assert linked[("adjunction", "flat_sharp")] == "flat_sharp"
    assert linked[("adjunction", "sharp_flat")] == "sharp_flat"
    assert linked[("sym", "stability")] == "sym_stable"
    assert linked[("sym", "sym_equivariant")] == "sym_equivariant"
    assert linked[("haar", "left_invariance")] is None  # an assumption


def test_all_proofs_check() -> None:
    proofs = [f for f in all_figures() if f.kind == "proof"]
    assert len(proofs) >= 16
    for fig in proofs:
        assert fig.item.check(), fig.stem


def test_render_all(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """``python -m markovcat.diagrams OUT_DIR --format svg`` draws every figure and the index into OUT_DIR."""
    assert main([str(tmp_path), "--format", "svg"]) == 0
    figures = all_figures()
    assert len({f.stem for f in figures}) == len(figures)  # no file overwrites another
    written = sorted(tmp_path.iterdir())
    assert len(written) == len(figures) + 1
    assert f"wrote {len(written)} files to {tmp_path}" in capsys.readouterr().out
    for path in written:
        assert path.exists() and path.stat().st_size > 0
    index = (tmp_path / "README.md").read_text()
    for fig in figures:
        assert f"({fig.stem}.svg)" in index
    for fig in figures[:: len(figures) // 4]:  # PNG works too (a sample; `python -m markovcat.diagrams` does all)
        path = tmp_path / f"{fig.stem}.png"
        fig.drawable().draw(path)
        assert path.stat().st_size > 0


def test_demo(tmp_path: Path) -> None:
    lines: list[str] = []
    demo(tmp_path, out=lines.append)
    text = "\n".join(lines)
    assert "in C^G" in text and "program form == combinator form" in text and "checked" in text
    assert (tmp_path / "sym.svg").exists() and (tmp_path / "sym.png").exists()


def _tree(folder: Path) -> set[Path]:
    return {p for p in folder.rglob("*") if "__pycache__" not in p.parts}


def test_gallery_script_help_writes_nothing(tmp_path: Path) -> None:
    """``--help`` prints usage; it is not taken for an output folder, here or in the package."""
    before = _tree(GALLERY)
    result = subprocess.run([sys.executable, "-m", "markovcat.diagrams", "--help"], cwd=tmp_path,
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert "usage: python -m markovcat.diagrams" in result.stdout and "OUT_DIR" in result.stdout
    assert list(tmp_path.iterdir()) == []
    assert _tree(GALLERY) == before


def test_gallery_script_defaults_to_the_current_directory(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """With no OUT_DIR the figures go to ./markovcat-figures, never into the installed package."""
    monkeypatch.chdir(tmp_path)
    out = parser().parse_args([]).out
    assert out == Path(DEFAULT_OUT) and not out.is_absolute()
    assert out.resolve().parent == tmp_path.resolve()
    assert GALLERY.resolve() not in out.resolve().parents
    with pytest.raises(SystemExit):
        parser().parse_args(["--format", "gif"])


def _expected(d: mc.Diagram) -> dict[str, int]:
    """What a drawing of ``d`` as written must show, read off its term graph (E[...] kernels inside their frames)."""
    from markovcat.markov import MarkedKernel

    uses = d.uses()
    counts = {"boxes": 0, "deterministic": 0, "frames": 0, "discard": 0, "copied": 0, "copies_max": 0}
    for node in d.nodes:
        kernel = MarkedKernel.of(node.gen, "E")
        if kernel is not None:
            counts["frames"] += 1
            for key, value in _expected(kernel).items():
                counts[key] += value
        else:
            counts["boxes"] += 1
            counts["deterministic"] += node.gen.deterministic
    for readers in uses.values():
        counts["discard"] += not readers
        counts["copied"] += len(readers) > 1
        counts["copies_max"] += max(len(readers) - 1, 0)
    return counts


def _drawn(lay: Any) -> dict[str, int]:
    kinds = [kind for *_, kind in lay.dots]
    boxes = [b for b in lay.boxes if not b.frame]
    return {"boxes": len(boxes), "deterministic": sum(b.deterministic for b in boxes),
            "frames": sum(b.frame for b in lay.boxes), "discard": kinds.count("discard"), "copy": kinds.count("copy")}


@pytest.mark.parametrize("fig", all_figures(), ids=lambda f: f.stem)
def test_each_gallery_figure_draws_its_diagram(fig: Any) -> None:
    """Boxes (and their kinds), E[...] frames, copy and discard dots and boundary wires match the term graph.

    A layout regression that loses, duplicates or mislabels a box, a dot or a wire fails here; one
    that merely looks worse does not.
    """
    from markovcat.drawing import _equation_layout, same_picture
    from markovcat.layout import layout

    item = fig.drawable()
    options = fig.options()
    if isinstance(item, mc.Diagram):
        sides, lay = [item], layout(item)
        assert len(lay.inputs) == len(item.dom) and len(lay.outputs) == len(item.cod)
    else:
        skip = bool(options.get("skip_repeats"))
        sides = [item.sides[0]]
        for side in item.sides[1:]:
            if not (skip and len(item.sides) > 2 and same_picture(sides[-1], side)):
                sides.append(side)
        lay = _equation_layout(item, True, skip)
        assert [lab.text for lab in lay.labels].count("=") == len(sides) - 1 >= 1
    want = [_expected(side) for side in sides]
    got = _drawn(lay)
    for key in ("boxes", "deterministic", "frames", "discard"):
        assert got[key] == sum(w[key] for w in want), key
    assert sum(w["copied"] for w in want) <= got["copy"] <= sum(w["copies_max"] for w in want)
