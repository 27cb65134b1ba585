"""The layered layout: structure of large drawings (aspect ratio, overlaps, connected wires), labels, frames.

These tests check the shape of the layout, not its speed and not its looks: a layout can
pass them and still be ugly, so the gallery is also looked at by eye.
"""

from __future__ import annotations

import random
import re
from functools import reduce

import pytest

import markovcat as mc
from markovcat import Box, Copy, Diagram, Discard, Id, Ty, program
from markovcat.layout import ASPECT, FOLD_ABOVE, INCH, Layout, _arrange, _build, crossings, layout, text

X, Y = Ty("X"), Ty("Y")


def chain_with_copies(n: int) -> Diagram:
    """``n`` boxes: each step copies the wire, passes one copy through ``d`` and merges both with ``h``."""
    h, d = Box("h", X @ X, X, deterministic=True), Box("d", X, X)
    step = Copy(X) >> (Id(X) @ d) >> h
    return reduce(lambda a, b: a >> b, [step] * (n // 2))


def random_diagram(n: int, seed: int) -> Diagram:
    rng = random.Random(seed)

    @program(X @ X @ Y, X @ Y)
    def p(*inputs):  # type: ignore[no-untyped-def]
        wires = list(inputs)
        for i in range(n):
            ins = [rng.choice(wires[-6:]) for _ in range(rng.choice([1, 2, 3]))]
            cod = Ty(*(rng.choice("XY") for _ in range(rng.choice([1, 1, 2]))))
            out = Box(f"b{i}", Ty(*(w.atom for w in ins)), cod, deterministic=rng.random() < 0.5)(*ins)
            wires += list(out) if isinstance(out, tuple) else [out]
        return [w for w in wires if w.atom == "X"][-1], [w for w in wires if w.atom == "Y"][-1]

    return p


def assert_no_overlaps(lay: Layout) -> None:
    boxes = [b for b in lay.boxes if not b.frame]
    boxes.sort(key=lambda b: b.x0)
    for i, a in enumerate(boxes):  # sweep by x: only boxes starting before a ends can overlap it
        for b in boxes[i + 1 :]:
            if b.x0 >= a.x1:
                break
            assert a.y1 <= b.y0 or b.y1 <= a.y0, f"boxes overlap: {a} and {b}"


def assert_wires_reach_every_port(d: Diagram, lay: Layout) -> None:
    """Box i of the layout is node i of ``d``: one stroke ends at each input port, one starts at each output."""
    starts = [s[0] for s in lay.strokes]
    stops = [s[-1] for s in lay.strokes]

    def on_edge(points: list[tuple[float, float]], x0: float, x1: float, y: float) -> int:
        return sum(1 for px, py in points if x0 - 1e-6 <= px <= x1 + 1e-6 and abs(py - y) < 1e-6)

    assert len(lay.boxes) == len(d.nodes)
    for box, node in zip(lay.boxes, d.nodes, strict=True):
        assert box.deterministic == node.gen.deterministic
        assert on_edge(stops, box.x0, box.x1, box.y1) == len(node.ins), node.gen.name
        assert on_edge(starts, box.x0, box.x1, box.y0) == len(node.outs), node.gen.name
    for x, y in lay.outputs:
        assert on_edge(stops, x, x, y) == 1


@pytest.mark.parametrize("n", [50, 200])
def test_a_long_chain_with_copies_is_folded_to_a_page_shape(n: int) -> None:
    d = chain_with_copies(n)
    lay = layout(d)
    x0, y0, x1, y1 = lay.bounds()
    assert len(lay.boxes) == n
    assert 0.5 * ASPECT <= (y1 - y0) / (x1 - x0) <= 2 * ASPECT  # unfolded, a 50-box chain is 60 times taller
    unfolded = layout(d, fold=False).bounds()
    assert unfolded[3] - unfolded[1] > FOLD_ABOVE
    if n == 50:  # fits a page (at most 8 x 11 inches) at four fifths of its natural size
        assert 0.8 * (x1 - x0) * INCH <= 8.0 and 0.8 * (y1 - y0) * INCH <= 11.0
    assert_no_overlaps(lay)
    assert [kind for _, _, kind in lay.dots].count("copy") == n // 2
    assert all(x0 <= x <= x1 and y0 <= y <= y1 for s in lay.strokes for x, y in s)


def test_a_200_box_diagram_lays_out_without_overlaps_and_with_every_wire() -> None:
    d = random_diagram(200, seed=1)
    lay = layout(d)
    assert len(lay.boxes) == 200
    assert_no_overlaps(lay)
    x0, y0, x1, y1 = lay.bounds()
    assert (y1 - y0) / (x1 - x0) <= 3 * ASPECT
    assert_wires_reach_every_port(d, lay)
    assert len(lay.inputs) == len(d.dom) and len(lay.outputs) == len(d.cod)


def test_folded_columns_do_not_overlap_and_keep_every_copy_and_discard() -> None:
    d = chain_with_copies(60)
    folded, straight = layout(d), layout(d, fold=False)
    assert sorted(k for *_, k in folded.dots) == sorted(k for *_, k in straight.dots)
    assert len(folded.strokes) == len(straight.strokes)  # a wire crossing into the next column is one stroke
    columns = sorted({round(b.x0, 3) for b in folded.boxes if b.deterministic})
    assert len(columns) >= 3
    assert_no_overlaps(folded)


def test_small_diagrams_are_not_folded() -> None:
    d = chain_with_copies(8)
    assert layout(d).bounds() == layout(d, fold=False).bounds()


def test_barycentre_ordering_reduces_crossings() -> None:
    """Against the order the boxes were built in, on diagrams where that order tangles the wires."""
    better = 0
    for seed in range(5):
        d = random_diagram(40, seed)
        items, rows = _build(d, d.uses(), d.wire_types())
        for row in rows:  # the build order, spread out
            for j, i in enumerate(row):
                items[i].x = float(j)
        before = crossings(items, rows)
        _arrange(items, rows)
        after = crossings(items, rows)
        assert after <= before
        better += after < before
    assert better >= 3


@pytest.mark.parametrize(
    ("name", "mpl", "tex"),
    [
        ("act_X", r"act$_{\mathregular{X}}$", r"act\textsubscript{X}"),
        ("alpha_X", r"α$_{\mathregular{X}}$", r"$\alpha$\textsubscript{X}"),
        ("λ_O(3)", r"λ$_{\mathregular{O(3)}}$", r"$\lambda$\textsubscript{O(3)}"),
        ("f_O(3)", r"f$_{\mathregular{O(3)}}$", r"f\textsubscript{O(3)}"),
        ("sym_haar_G", r"sym$_{\mathregular{haar}_{\mathregular{G}}}$", r"sym\textsubscript{haar\textsubscript{G}}"),
        ("f_theta", r"f$_{\mathregular{θ}}$", r"f\textsubscript{$\theta$}"),
        ("frame_average(k)", "frame_average(k)", r"frame\_average(k)"),
        ("G.inv", "G.inv", "G.inv"),
    ],
)
def test_one_subscript_convention_in_both_painters(name: str, mpl: str, tex: str) -> None:
    assert text(name)[:2] == (mpl, tex)
    assert text(name)[0].count("_{") == text(name)[1].count(r"\textsubscript")


def test_subscripts_render_in_matplotlib_and_tikz() -> None:
    d = Box("λ_O(3)", Ty(), Ty("O3")) >> Box("sym_haar_G", Ty("O3"), X)
    tikz = d.to_tikz()
    assert r"$\lambda$\textsubscript{O(3)}" in tikz and r"sym\textsubscript{haar\textsubscript{G}}" in tikz
    assert "_" not in re.sub(r"\\_|_\{", "", "".join(t.get_text() for t in d.draw().axes[0].texts))


def test_draw_is_as_written_and_the_normal_form_is_drawn_on_request() -> None:
    f = Box("f", X, Y, deterministic=True)
    written = Copy(X) >> (f @ (f >> Discard(Y)))  # equal to f in the free Markov category
    nf = mc.normal_form(written)
    assert len(layout(written).boxes) == 2 and sorted(kind for *_, kind in layout(written).dots) == ["copy", "discard"]
    assert len(layout(nf).boxes) == 1 and layout(nf).dots == []


def test_an_expectation_box_is_a_frame_around_its_kernel() -> None:
    from markovcat.theorems import expectation

    g, k = Box("g", X, X, deterministic=True), Box("k", X, Y)
    kernel = Copy(X) >> (g @ Id(X)) >> Box("m", X @ X, Y)
    e = expectation(kernel) >> Box("after", Y, Y, deterministic=True)
    lay = layout(e)
    frames = [b for b in lay.boxes if b.frame]
    inner = [b for b in lay.boxes if not b.frame]
    assert len(frames) == 1 and len(inner) == 3  # g and m inside, after below
    frame = frames[0]
    inside = [b for b in inner if frame.x0 < b.x0 and b.x1 < frame.x1 and frame.y0 < b.y0 and b.y1 < frame.y1]
    assert len(inside) == 2
    assert [kind for *_, kind in lay.dots] == ["copy"]
    assert "E[" not in "".join(lab.text for lab in lay.labels)  # the program text is not printed
    assert "frame" in e.to_tikz() and k.dom == X
