"""Drawing: one layout, painted by matplotlib (SVG/PNG/PDF) and as TikZ."""

from __future__ import annotations

import random
import re
from functools import reduce
from pathlib import Path

import pytest

from markovcat import Box, Copy, Diagram, Discard, Equation, Id, Swap, Ty, program
from markovcat.drawing import draw, layout

X, Y, G = Ty("X"), Ty("Y"), Ty("G")
f = Box("f", X, Y, deterministic=True)
k = Box("k", X, Y)
gamma = Box("gamma", X, G)
inv = Box("inv", G, G, deterministic=True)
act_x = Box("act_X", G @ X, X, deterministic=True)
act_y = Box("act_Y", G @ Y, Y, deterministic=True)


@program(G @ X, Y)
def sharp(g, x):
    return act_y(g, k(act_x(inv(g), x)))


SYM = Copy(X) >> (gamma @ Id(X)) >> sharp


def chain(n: int) -> Diagram:
    h, d = Box("h", X, X, deterministic=True), Box("d", X, X)
    return reduce(lambda a, b: a >> b, [h if i % 2 else d for i in range(n)])


def random_diagram(n: int, seed: int = 0) -> Diagram:
    rng = random.Random(seed)

    @program(X @ X @ Y, X @ Y)
    def p(*inputs):
        wires = list(inputs)
        for i in range(n):
            ins = [rng.choice(wires[-6:]) for _ in range(rng.choice([1, 2, 3]))]
            cod = Ty(*(rng.choice("XY") for _ in range(rng.choice([1, 1, 2]))))
            out = Box(f"b{i}", Ty(*(w.atom for w in ins)), cod, deterministic=rng.random() < 0.5)(*ins)
            wires += list(out) if isinstance(out, tuple) else [out]
        return [w for w in wires if w.atom == "X"][-1], [w for w in wires if w.atom == "Y"][-1]

    return p


@pytest.mark.parametrize("suffix", [".svg", ".png", ".pdf", ".PNG"])
def test_each_format_is_written(tmp_path: Path, suffix: str) -> None:
    path = tmp_path / f"sym{suffix}"
    assert SYM.draw(str(path)) == str(path)
    data = path.read_bytes()
    assert data
    if suffix == ".svg":
        assert data.startswith(b"<?xml") or b"<svg" in data
    elif suffix.lower() == ".png":
        assert data.startswith(b"\x89PNG\r\n\x1a\n")
    else:
        assert data.startswith(b"%PDF")


def test_equation_draws_to_a_file(tmp_path: Path) -> None:
    path = tmp_path / "eq.svg"
    Equation(k >> Discard(Y), Discard(X), name="discard").draw(path)
    assert b"<svg" in path.read_bytes()


def test_bad_suffix_is_a_clear_error(tmp_path: Path) -> None:
    for path in (tmp_path / "sym.jpg", tmp_path / "noextension"):
        with pytest.raises(ValueError, match="suffix"):
            SYM.draw(path)
        assert not path.exists()
    with pytest.raises(ValueError, match=r"'\.gif'"):
        Equation(k, k).draw(tmp_path / "eq.gif")


def test_unknown_option_is_an_error() -> None:
    with pytest.raises(TypeError, match="colour"):
        k.draw(colour="red")
    with pytest.raises(TypeError, match="figsize"):
        k.to_tikz(figsize=(3, 3))


def test_without_a_path_draw_returns_a_figure() -> None:
    from matplotlib.figure import Figure

    fig = k.draw(title="a stochastic box", show_types=False)
    assert isinstance(fig, Figure)
    assert [t.get_text() for t in fig.axes[0].texts] == ["k", "a stochastic box"]
    assert tuple(draw(k, figsize=(2, 3)).get_size_inches()) == (2, 3)


def test_tikz_has_every_box_label_and_dot() -> None:
    d = (Copy(X) >> (f @ k)) @ Copy(Y, 3) >> (Discard(Y) @ Id(Y) @ Swap(Y, Y) @ Id(Y))
    tikz = d.to_tikz()
    assert tikz.startswith("\\begin{tikzpicture}") and tikz.rstrip().endswith("\\end{tikzpicture}")
    assert "{f}" in tikz and "{k}" in tikz
    assert tikz.count("\\node[copy]") == 2  # X read by f and k; Y read by three outputs
    assert tikz.count("\\node[discard]") == 1  # the output of f
    assert len(layout(d).dots) == 3


def test_tikz_styles_tell_deterministic_from_stochastic() -> None:
    tikz = (f @ k).to_tikz()
    det = re.findall(r"\\draw\[deterministic\]", tikz)
    stoch = re.findall(r"\\draw\[stochastic\]", tikz)
    assert len(det) == len(stoch) == 1
    styles = dict(re.findall(r"(deterministic|stochastic)/\.style=\{([^}]*)\}", tikz))
    assert styles["deterministic"] != styles["stochastic"] and "rounded corners" in styles["stochastic"]


def test_unused_output_of_a_box_is_a_discard_dot() -> None:
    split = Box("split", X, X @ Y, deterministic=True)
    d = split >> (Id(X) @ Discard(Y))
    assert [kind for _, _, kind in layout(d).dots] == ["discard"]
    assert "\\node[discard]" in d.to_tikz()


def test_greek_names_and_subscripts() -> None:
    tikz = SYM.to_tikz()
    assert "$\\gamma$" in tikz and "act\\textsubscript{X}" in tikz
    texts = [lab.text for lab in layout(SYM).labels]
    assert "γ" in texts and "G.mul" in [lab.text for lab in layout(Box("G.mul", G @ G, G)).labels]


def test_no_boxes_overlap_and_wires_stay_inside_the_picture() -> None:
    lay = layout(random_diagram(50))
    assert len(lay.boxes) == 50
    boxes = sorted(lay.boxes, key=lambda b: (b.y0, b.x0))
    for a in boxes:
        for b in boxes:
            if a is not b:
                assert a.x1 <= b.x0 or b.x1 <= a.x0 or a.y1 <= b.y0 or b.y1 <= a.y0
    x0, y0, x1, y1 = lay.bounds()
    assert all(x0 <= x <= x1 and y0 <= y <= y1 for s in lay.strokes for x, y in s)


def test_figure_size_grows_with_the_diagram() -> None:
    small, tall, big = (d.draw().get_size_inches() for d in (k, chain(20), random_diagram(50)))
    assert tall[0] * tall[1] > 3 * small[0] * small[1]  # a long chain is folded, so it grows in area
    assert big[0] > small[0] and big[1] > small[1]


def test_equations_with_two_and_three_sides() -> None:
    lam = Box("lambda", Ty(), G)
    two = Equation(k >> Discard(Y), Discard(X), name="Markov")
    three = Equation(SYM, (lam @ Id(X)) >> sharp, (lam @ Id(X)) >> sharp)
    fig2, fig3 = two.draw(), three.draw()
    assert [t.get_text() for t in three.draw(skip_repeats=True).axes[0].texts].count("=") == 1
    assert [t.get_text() for t in fig2.axes[0].texts].count("=") == 1
    assert "Markov" in [t.get_text() for t in fig2.axes[0].texts]
    assert [t.get_text() for t in fig3.axes[0].texts].count("=") == 2
    assert fig3.get_size_inches()[0] > SYM.draw().get_size_inches()[0] * 2.5
    tikz = three.to_tikz(title="three")
    assert tikz.count("{=}") == 2 and "{three}" in tikz


def test_a_10000_box_chain_lays_out() -> None:
    """Folded into columns, and straight down each one: a box is below the one before or tops the next column."""
    lay = layout(chain(10_000))
    assert len(lay.boxes) == 10_000
    top = max(b.y1 for b in lay.boxes)
    columns = 1
    for before, box in zip(lay.boxes, lay.boxes[1:], strict=False):
        if abs(box.x0 - before.x0) < 1e-6:
            assert box.y1 < before.y0
        else:
            assert box.x0 > before.x1 and abs(box.y1 - top) < 1.0  # the next column starts at the top
            columns += 1
    assert 10 < columns < 200


def test_equation_reasons_are_drawn_under_the_equals_signs() -> None:
    X = Ty("X")
    k = Box("k", X, X)
    eq = Equation(k >> Discard(X), Discard(X), reasons=("discard naturality",))
    tikz = eq.to_tikz()
    assert "naturality" in tikz
    assert "naturality" not in Equation(k >> Discard(X), Discard(X)).to_tikz()
    assert eq.reversed().reasons == ("discard naturality",)
    with pytest.raises(ValueError, match="has 1 steps, got 2 reasons"):
        Equation(k >> Discard(X), Discard(X), reasons=("a", "b"))


def test_proofs_draw_the_rule_of_each_step() -> None:
    from markovcat import theorems as proofs

    proof = proofs.sym_stable()
    equation = proof.equation()
    assert equation.reasons == tuple(step.reason for step in proof.steps)
    tikz = equation.to_tikz()
    assert all(reason.split()[0] in tikz for reason in equation.reasons)
