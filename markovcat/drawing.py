"""Drawing diagrams as string diagrams: matplotlib figures (SVG, PNG, PDF) and TikZ.

Diagrams read top to bottom: the domain wires enter at the top and the codomain
wires leave at the bottom, each labelled with its type.  Conventions:

* a **deterministic** box has square corners and a light blue-grey fill;
* a **stochastic** box has rounded corners, a white fill and a thicker outline;
* **copy** is a black dot where a wire splits; **discard** is a short wire ending in
  a black dot (unused outputs of a box included); a **swap** is two crossing wires;
* names that are Greek letters are shown as such (``gamma`` as γ) and ``name_sub``
  is shown with ``sub`` as a subscript.

One :class:`Layout` is computed from the term graph (:func:`layout`); the matplotlib
and TikZ renderers only paint its primitives.  Layers are longest paths from the
inputs (boxes reading no input wire sink as low as their readers allow); a wire
spanning several layers passes through a dummy point in each, so wires run between
boxes, never through them.  The order within a layer comes from barycentre sweeps,
the x positions from barycentre relaxation with overlap removal (weighted isotonic
regression by pool-adjacent-violators), so the layout takes near-linear time.

>>> from markovcat.syntax import Ty, Box, Copy
>>> X = Ty("X")
>>> f = Box("f", X, X, deterministic=True)
>>> [kind for _, _, kind in layout(Copy(X) >> (f @ f)).dots]
['copy']
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from markovcat.syntax import Diagram

if TYPE_CHECKING:
    from matplotlib.figure import Figure

    from markovcat.equation import Equation

__all__ = ["Label", "BoxShape", "Layout", "layout", "draw", "to_tikz", "draw_equation", "equation_to_tikz"]

Point = tuple[float, float]
INCH = 0.75  # inches per layout unit
BOX_H, STUB, PORT_SEP, DOT_R, MARGIN, MAX_INCHES = 0.5, 0.3, 0.45, 0.045, 0.25, 120.0
POINTS = {"label": 12.0, "type": 8.0, "equals": 30.0, "title": 13.0}
FORMATS = {".svg": "svg", ".png": "png", ".pdf": "pdf"}
DET_FILL = "#dde6f0"

_GREEK = (
    "alpha beta gamma delta epsilon zeta eta theta iota kappa lambda mu nu xi pi rho sigma tau "
    "upsilon phi chi psi omega Gamma Delta Theta Lambda Xi Pi Sigma Upsilon Phi Psi Omega"
).split()
_UNICODE = dict(zip(_GREEK, "αβγδεζηθικλμνξπρστυφχψωΓΔΘΛΞΠΣΥΦΨΩ", strict=True))
_GREEK_RE = re.compile(r"(?<![A-Za-z])(" + "|".join(sorted(_GREEK, key=len, reverse=True)) + r")(?![A-Za-z])")
_TEX_ESCAPES = {c: "\\" + c for c in "&%$#_{}"} | {"\\": r"\textbackslash{}", "~": r"\~{}", "^": r"\^{}"}


def _text(name: str) -> tuple[str, str, float]:
    """A name as (matplotlib text, TeX, width in characters)."""
    match = re.fullmatch(r"(.+?)_([A-Za-z0-9]+)", name) if "$" not in name else None
    base, sub = match.groups() if match else (name, "")

    def plain(s: str) -> str:
        return _GREEK_RE.sub(lambda m: _UNICODE[m.group(1)], s.replace("$", r"\$"))

    def tex(s: str) -> str:
        parts = _GREEK_RE.split(s)  # the odd parts are Greek names
        return "".join(f"$\\{p}$" if i % 2 else "".join(_TEX_ESCAPES.get(c, c) for c in p) for i, p in enumerate(parts))

    chars = len(_GREEK_RE.sub("x", base)) + 0.7 * len(_GREEK_RE.sub("x", sub))
    if not sub:
        return plain(base), tex(base), chars
    return f"{plain(base)}$_{{\\mathregular{{{plain(sub)}}}}}$", f"{tex(base)}\\textsubscript{{{tex(sub)}}}", chars


def _width(chars: float, style: str) -> float:
    return chars * 0.6 * POINTS[style] / 72 / INCH


@dataclass(frozen=True)
class Label:
    """Text at (x, y); ``style`` is a key of POINTS, ``ha`` left/center/right, ``va`` top/center/bottom."""

    x: float
    y: float
    text: str
    tex: str
    style: str
    width: float
    ha: str = "center"
    va: str = "center"


@dataclass(frozen=True)
class BoxShape:
    x0: float
    y0: float
    x1: float
    y1: float
    deterministic: bool


@dataclass
class Layout:
    """The primitives of a drawing, in layout units (y upwards).

    A stroke is a start point followed by (control, control, end) triples of cubic
    Bézier steps; a dot is ``(x, y, "copy" | "discard")``.
    """

    boxes: list[BoxShape] = field(default_factory=list)
    strokes: list[list[Point]] = field(default_factory=list)
    dots: list[tuple[float, float, str]] = field(default_factory=list)
    labels: list[Label] = field(default_factory=list)

    def bounds(self) -> tuple[float, float, float, float]:
        xs = [x for b in self.boxes for x in (b.x0, b.x1)] + [p[0] for s in self.strokes for p in s]
        ys = [y for b in self.boxes for y in (b.y0, b.y1)] + [p[1] for s in self.strokes for p in s]
        for lab in self.labels:
            height = POINTS[lab.style] / 72 / INCH
            left = lab.x - {"left": 0.0, "center": 0.5, "right": 1.0}[lab.ha] * lab.width
            low = lab.y - {"bottom": 0.0, "center": 0.5, "top": 1.0}[lab.va] * height
            xs += [left, left + lab.width]
            ys += [low, low + height]
        return min(xs, default=0.0), min(ys, default=0.0), max(xs, default=0.0), max(ys, default=0.0)

    def add(self, other: Layout, dx: float = 0.0, dy: float = 0.0) -> None:
        """Add the primitives of ``other``, moved by (dx, dy)."""
        self.boxes += [replace(b, x0=b.x0 + dx, x1=b.x1 + dx, y0=b.y0 + dy, y1=b.y1 + dy) for b in other.boxes]
        self.strokes += [[(x + dx, y + dy) for x, y in s] for s in other.strokes]
        self.dots += [(x + dx, y + dy, kind) for x, y, kind in other.dots]
        self.labels += [replace(lab, x=lab.x + dx, y=lab.y + dy) for lab in other.labels]

    def add_label(self, x: float, y: float, name: str, style: str, ha: str = "center", va: str = "center") -> None:
        text, tex, chars = _text(name)
        self.labels.append(Label(x, y, text, tex, style, _width(chars, style), ha, va))


@dataclass
class _Item:
    """A box, a boundary port or a dummy point of a long wire, in one layer."""

    layer: int
    kind: str  # "box" | "in" | "out" | "dummy"
    width: float
    tops: list[float]  # x offsets of the ports on the top edge
    bottoms: list[float]  # x offsets of the ports on the bottom edge
    ref: int  # node index for boxes, wire for the others
    x: float = 0.0
    up: list[tuple[int, int]] = field(default_factory=list)  # per top port: (item, bottom port) above
    down: list[list[tuple[int, int]]] = field(default_factory=list)  # per bottom port: (item, top port) below


def _layers(d: Diagram, uses: dict[int, list[tuple[int, int]]]) -> tuple[list[int], int]:
    """Longest path from the inputs; nodes reading no input wire sink as low as they can."""
    wire_layer, reached = dict.fromkeys(d.inputs, 0), set(d.inputs)
    layer, free = [0] * len(d.nodes), []
    for i, node in enumerate(d.nodes):
        layer[i] = 1 + max((wire_layer[w] for w in node.ins), default=0)
        wire_layer.update(dict.fromkeys(node.outs, layer[i]))
        if any(w in reached for w in node.ins):
            reached.update(node.outs)
        else:
            free.append(i)
    depth = max(layer, default=0)
    for i in reversed(free):
        below = [depth + 1 if n < 0 else layer[n] for w in d.nodes[i].outs for n, _ in uses[w]]
        layer[i] = min(below, default=layer[i] + 1) - 1
    return layer, depth


def _ports(k: int, width: float) -> list[float]:
    return [(p + 0.5) * width / k - width / 2 for p in range(k)]


def _build(
    d: Diagram, uses: dict[int, list[tuple[int, int]]], types: dict[int, str]
) -> tuple[list[_Item], list[list[int]]]:
    """One item per box and boundary port, one dummy per layer a wire crosses; linked port to port."""
    layer, depth = _layers(d, uses)
    items: list[_Item] = []
    rows: list[list[int]] = [[] for _ in range(depth + 2)]

    def add(item: _Item) -> int:
        item.up, item.down = [(-1, -1)] * len(item.tops), [[] for _ in item.bottoms]
        items.append(item)
        rows[item.layer].append(len(items) - 1)
        return len(items) - 1

    def port_width(wire: int) -> float:
        return max(0.2, _width(_text(types[wire])[2], "type"))

    source = {w: (add(_Item(0, "in", port_width(w), [], [0.0], w)), 0) for w in d.inputs}
    boxes = []
    for i, node in enumerate(d.nodes):
        k, m = len(node.ins), len(node.outs)
        width = max(max(k, m) * PORT_SEP, _width(_text(node.gen.name)[2], "label") + 0.3, 0.5)
        boxes.append(add(_Item(layer[i], "box", width, _ports(k, width), _ports(m, width), i)))
        source.update((w, (boxes[-1], p)) for p, w in enumerate(node.outs))
    outs = [add(_Item(depth + 1, "out", port_width(w), [0.0], [], w)) for w in d.outputs]
    for w, start in source.items():
        by_layer: dict[int, list[tuple[int, int]]] = {}
        for n, port in uses[w]:
            target = (boxes[n], port) if n >= 0 else (outs[port], 0)
            by_layer.setdefault(items[target[0]].layer, []).append(target)
        current, last = start, max(by_layer, default=-1)
        for row in range(items[start[0]].layer + 1, last + 1):
            targets = by_layer.get(row, [])
            if row < last:  # the wire goes on below this layer
                targets = [*targets, (add(_Item(row, "dummy", 0.0, [0.0], [0.0], w)), 0)]
            for t, tp in targets:
                items[t].up[tp] = current
                items[current[0]].down[current[1]].append((t, tp))
            current = targets[-1]
    return items, rows


def _pull(items: list[_Item], i: int, above: bool, below: bool) -> tuple[float, float]:
    """The x that best lines item i's ports up with its neighbours', and the weight of that wish."""
    item, total, weight = items[i], 0.0, 0.0
    straight = 4.0 if item.kind == "dummy" else 1.0  # long wires want to be vertical
    pairs = [(off, s, items[s].bottoms[sp]) for off, (s, sp) in zip(item.tops, item.up, strict=True)] if above else []
    if below:
        pairs += [(off, t, items[t].tops[tp]) for off, ts in zip(item.bottoms, item.down, strict=True) for t, tp in ts]
    for off, j, their in pairs:
        w = straight if items[j].kind == "dummy" else 1.0
        total, weight = total + w * (items[j].x + their - off), weight + w
    return (total / weight, weight) if weight else (item.x, 1e-3)


def _sep(a: _Item, b: _Item) -> float:
    """The least distance between the centres of neighbours a and b."""
    return (a.width + b.width) / 2 + (0.35 if a.kind == b.kind == "box" else 0.22)


def _place(items: list[_Item], row: list[int], wishes: list[tuple[float, float]]) -> None:
    """The positions closest to the wishes (weighted least squares) that keep the row's order and spacing."""
    offsets = [0.0][: len(row)]
    for a, b in zip(row, row[1:], strict=False):
        offsets.append(offsets[-1] + _sep(items[a], items[b]))
    blocks: list[tuple[float, float, int]] = []  # (mean, weight, size): pool adjacent violators
    for (x, w), c in zip(wishes, offsets, strict=True):
        value, weight, size = x - c, w, 1
        while blocks and blocks[-1][0] > value:
            v, u, n = blocks.pop()
            value, weight, size = (v * u + value * weight) / (u + weight), u + weight, n + size
        blocks.append((value, weight, size))
    j = 0
    for value, _, size in blocks:
        for _ in range(size):
            items[row[j]].x = value + offsets[j]
            j += 1


def _arrange(items: list[_Item], rows: list[list[int]]) -> None:
    """Four sweeps ordering the inner layers by barycentre, four more relaxing positions."""
    last = len(rows) - 1
    _place(items, rows[0], [(0.0, 1.0)] * len(rows[0]))
    for sweep in range(8):
        down = sweep % 2 == 0
        for r in range(1, last + 1) if down else range(last - 1, -1, -1):
            wishes = {i: _pull(items, i, down or sweep >= 4, not down or sweep >= 4) for i in rows[r]}
            if sweep < 4 and 0 < r < last:
                rows[r].sort(key=lambda i: wishes[i][0])
            _place(items, rows[r], [wishes[i] for i in rows[r]])


def _straighten(items: list[_Item], rows: list[list[int]]) -> None:
    """Make each run of dummies (a long wire) vertical where its neighbours leave room."""
    where = {i: j for row in rows for j, i in enumerate(row)}

    def room(i: int) -> tuple[float, float]:
        row, j = rows[items[i].layer], where[i]
        low = items[row[j - 1]].x + _sep(items[row[j - 1]], items[i]) if j else -float("inf")
        high = items[row[j + 1]].x - _sep(items[i], items[row[j + 1]]) if j + 1 < len(row) else float("inf")
        return low, high

    for head, item in enumerate(items):
        above = items[item.up[0][0]] if item.kind == "dummy" else item
        if item.kind != "dummy" or (above.kind == "dummy" and len(above.down[0]) == 1):
            continue
        chain = [head]
        while len(items[chain[-1]].down[0]) == 1 and items[items[chain[-1]].down[0][0][0]].kind == "dummy":
            chain.append(items[chain[-1]].down[0][0][0])
        run: list[int] = []
        low, high = -float("inf"), float("inf")
        for i in [*chain, -1]:  # cut the chain where no one x fits; -1 closes the last run
            lo, hi = room(i) if i >= 0 else (float("inf"), -float("inf"))
            if run and max(low, lo) > min(high, hi):
                x = min(max(sum(items[j].x for j in run) / len(run), low), high)
                for j in run:
                    items[j].x = x
                run, low, high = [], -float("inf"), float("inf")
            run.append(i)
            low, high = max(low, lo), min(high, hi)


def layout(diagram: Diagram, *, show_types: bool = True) -> Layout:
    """The drawing of ``diagram`` (y upwards; the input wires end at y = 0)."""
    uses, types = diagram.uses(), diagram.wire_types()
    items, rows = _build(diagram, uses, types)
    _arrange(items, rows)
    _straighten(items, rows)
    top, bottom, y = [0.0] * len(rows), [0.0] * len(rows), STUB
    for r, row in enumerate(rows):
        if r:  # the gap above layer r grows with how far its wires travel sideways
            shifts = [
                items[i].x + off - items[s].x - items[s].bottoms[sp]
                for i in row
                for off, (s, sp) in zip(items[i].tops, items[i].up, strict=True)
            ]
            y -= min(0.6 + 0.2 * max(map(abs, shifts), default=0.0), 1.8)
        height = STUB if r in (0, len(rows) - 1) else BOX_H if any(items[i].kind == "box" for i in row) else 0.0
        top[r], bottom[r], y = y, y - height, y - height
    lay = Layout()

    def port(i: int, p: int, at_top: bool) -> Point:
        item = items[i]
        return item.x + (item.tops if at_top else item.bottoms)[p], (top if at_top else bottom)[item.layer]

    def step(a: Point, b: Point, bend: bool) -> list[Point]:
        k = (a[1] - b[1]) / (2 if bend else 3)  # vertical tangents at both ends
        return [(a[0], a[1] - k), (b[0], b[1] + k), b]

    for item in items:
        r = item.layer
        if item.kind == "box":
            gen = diagram.nodes[item.ref].gen
            x0, x1 = item.x - item.width / 2, item.x + item.width / 2
            lay.boxes.append(BoxShape(x0, bottom[r], x1, top[r], gen.deterministic))
            lay.add_label(item.x, (top[r] + bottom[r]) / 2, gen.name, "label")
        elif item.kind in ("in", "out") and show_types:
            above = item.kind == "in"
            y = top[r] + 0.06 if above else bottom[r] - 0.06
            lay.add_label(item.x, y, types[item.ref], "type", va="bottom" if above else "top")
    starts = [(i, p) for i, item in enumerate(items) if item.kind in ("in", "box") for p in range(len(item.bottoms))]
    while starts:  # a stroke runs from a port or a dot to a box, an output, or the next dot
        i, p = starts.pop()
        a, targets = port(i, p, False), items[i].down[p]
        head = [(a[0], top[0]), *step((a[0], top[0]), a, False)] if items[i].kind == "in" else [a]
        last = bool(targets) and all(items[t].kind == "out" for t, _ in targets)  # labelled at the bottom
        if show_types and items[i].kind == "box" and not last:
            lay.add_label(a[0] + 0.06, a[1] - 0.04, types[diagram.nodes[items[i].ref].outs[p]], "type", "left", "top")
        if len(targets) != 1:
            gap = a[1] - top[items[i].layer + 1]
            end = (a[0], a[1] - (min(0.24, 0.4 * gap) if targets else min(0.3, 0.5 * gap)))
            lay.strokes.append(head + step(a, end, False))
            lay.dots.append((*end, "copy" if targets else "discard"))
            head = [end]
        for t, tp in targets:
            stroke = list(head)
            while True:
                stroke += step(stroke[-1], port(t, tp, True), True)
                if items[t].kind in ("dummy", "out"):
                    stroke += step(stroke[-1], (items[t].x, bottom[items[t].layer]), False)
                if items[t].kind != "dummy":
                    break
                if len(items[t].down[0]) != 1:
                    starts.append((t, 0))
                    break
                t, tp = items[t].down[0][0]
            lay.strokes.append(stroke)
    return lay


def _equation_layout(equation: Equation, show_types: bool) -> Layout:
    """The sides side by side, centred on y = 0, with "=" between them."""
    lay, x = Layout(), 0.0
    for j, side in enumerate(equation.sides):
        part = layout(side, show_types=show_types)
        x0, y0, x1, y1 = part.bounds()
        if j:
            lines = _wrap(equation.reasons[j - 1], 16) if equation.reasons else []
            gap = max([0.9] + [_width(_text(line)[2], "type") + 0.3 for line in lines])
            lay.add_label(x + gap / 2, 0.0, "=", "equals")
            for k, line in enumerate(lines):
                lay.add_label(x + gap / 2, -0.32 - 0.16 * k, line, "type", va="top")
            x += gap
        lay.add(part, x - x0, -(y0 + y1) / 2)
        x += x1 - x0
    return lay


def _wrap(text: str, width: int) -> list[str]:
    """Greedy line breaking at spaces, for the reasons under an equation's "=" signs."""
    lines: list[str] = []
    for word in text.split():
        if lines and len(lines[-1]) + 1 + len(word) <= width:
            lines[-1] += " " + word
        else:
            lines.append(word)
    return lines


def _options(options: dict[str, object], allowed: tuple[str, ...]) -> dict[str, Any]:
    unknown = sorted(set(options) - set(allowed))
    if unknown:
        raise TypeError(f"unknown drawing option(s) {', '.join(unknown)}; the options are {', '.join(allowed)}")
    return dict(options)


def _titled(lay: Layout, title: object) -> Layout:
    if title:
        x0, _, x1, y1 = lay.bounds()
        lay.add_label((x0 + x1) / 2, y1 + 0.15, str(title), "title", va="bottom")
    return lay


def _figure(lay: Layout, figsize: tuple[float, float] | None) -> Figure:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from matplotlib.patches import Circle, FancyBboxPatch, PathPatch, Rectangle
    from matplotlib.path import Path as MPath

    x0, y0, x1, y1 = lay.bounds()
    x0, y0, x1, y1 = x0 - MARGIN, y0 - MARGIN, x1 + MARGIN, y1 + MARGIN
    width, height = (x1 - x0) * INCH, (y1 - y0) * INCH
    shrink = min(1.0, MAX_INCHES / max(width, height))
    size = (float(figsize[0]), float(figsize[1])) if figsize else (width * shrink, height * shrink)
    scale = min(size[0] / width, size[1] / height)  # text and lines keep their size relative to the boxes
    fig = Figure(figsize=size)
    FigureCanvasAgg(fig)
    ax = fig.add_axes((0.0, 0.0, 1.0, 1.0))
    ax.set_axis_off()
    ax.set_xlim(x0, x1)
    ax.set_ylim(y0, y1)
    ax.set_aspect("equal", adjustable="datalim")
    for s in lay.strokes:
        path = MPath(s, [MPath.MOVETO] + [MPath.CURVE4] * (len(s) - 1))
        ax.add_patch(PathPatch(path, fill=False, lw=1.3 * scale, capstyle="butt", zorder=1))
    for b in lay.boxes:
        corner, w, h = (b.x0, b.y0), b.x1 - b.x0, b.y1 - b.y0
        if b.deterministic:
            ax.add_patch(Rectangle(corner, w, h, fc=DET_FILL, ec="black", lw=1.0 * scale, zorder=2))
        else:
            style = "round,pad=0,rounding_size=0.14"
            ax.add_patch(FancyBboxPatch(corner, w, h, boxstyle=style, fc="white", ec="black", lw=2.2 * scale, zorder=2))
    for x, y, _ in lay.dots:
        ax.add_patch(Circle((x, y), DOT_R, color="black", zorder=3))
    for lab in lay.labels:
        ax.text(lab.x, lab.y, lab.text, ha=lab.ha, va=lab.va, fontsize=POINTS[lab.style] * scale, zorder=4)
    return fig


def _format(path: str | Path | None) -> str | None:
    if path is None:
        return None
    suffix = Path(path).suffix.lower()
    if suffix not in FORMATS:
        raise ValueError(f"cannot draw to {str(path)!r}: unknown suffix {suffix!r} (use .svg, .png or .pdf)")
    return FORMATS[suffix]


def _render(lay: Layout, path: str | Path | None, options: dict[str, Any]) -> Any:
    fig = _figure(_titled(lay, options.get("title")), options.get("figsize"))
    fmt = _format(path)
    if path is None or fmt is None:
        return fig
    metadata = {"png": {}, "svg": {"Date": None}, "pdf": {"CreationDate": None}}[fmt]
    fig.savefig(path, format=fmt, dpi=options.get("dpi", 150), metadata=metadata)
    return path


_FIGURE_OPTIONS = ("figsize", "title", "show_types", "dpi")


def draw(diagram: Diagram, path: str | Path | None = None, **options: object) -> Any:
    """Draw ``diagram``: return a matplotlib Figure, or write ``path`` (.svg, .png, .pdf) and return it.

    Options: ``figsize`` (inches; by default the figure grows with the diagram),
    ``title``, ``show_types`` (label the wires with their types; default True),
    ``dpi`` (for PNG; default 150).
    """
    opts = _options(options, _FIGURE_OPTIONS)
    _format(path)
    return _render(layout(diagram, show_types=opts.get("show_types", True)), path, opts)


def draw_equation(equation: Equation, path: str | Path | None = None, **options: object) -> Any:
    """Draw ``lhs = rhs (= ...)`` side by side; same options as :func:`draw`, the title defaults to the name."""
    opts = _options(options, _FIGURE_OPTIONS)
    opts.setdefault("title", equation.name)
    _format(path)
    return _render(_equation_layout(equation, opts.get("show_types", True)), path, opts)


_TIKZ_STYLES = r"""  wire/.style={line width=0.9pt},
  deterministic/.style={draw, fill=blue!10!black!8, line width=0.7pt},
  stochastic/.style={draw, fill=white, rounded corners=2.7mm, line width=1.5pt},
  copy/.style={circle, fill, inner sep=0pt, minimum size=5pt},
  discard/.style={circle, fill, inner sep=0pt, minimum size=5pt},
  label/.style={inner sep=1pt}, type/.style={font=\scriptsize, inner sep=1pt},
  equals/.style={font=\Huge}, title/.style={font=\large}]"""


def _tikz(lay: Layout) -> str:
    def pt(p: Point) -> str:
        return f"({p[0]:.3f},{p[1]:.3f})"

    unit = f"{INCH * 2.54:.3f}cm"
    lines = [f"\\begin{{tikzpicture}}[x={unit}, y={unit},\n{_TIKZ_STYLES}"]
    for s in lay.strokes:
        steps = "".join(f" .. controls {pt(s[k])} and {pt(s[k + 1])} .. {pt(s[k + 2])}" for k in range(1, len(s), 3))
        lines.append(f"\\draw[wire] {pt(s[0])}{steps};")
    for b in lay.boxes:
        style = "deterministic" if b.deterministic else "stochastic"
        lines.append(f"\\draw[{style}] {pt((b.x0, b.y0))} rectangle {pt((b.x1, b.y1))};")
    lines += [f"\\node[{kind}] at {pt((x, y))} {{}};" for x, y, kind in lay.dots]
    for lab in lay.labels:
        vertical = {"top": "north", "bottom": "south"}.get(lab.va, "")
        anchor = f"{vertical} {dict(left='west', right='east').get(lab.ha, '')}".strip() or "center"
        lines.append(f"\\node[{lab.style}, anchor={anchor}] at {pt((lab.x, lab.y))} {{{lab.tex}}};")
    return "\n".join([*lines, "\\end{tikzpicture}"]) + "\n"


def to_tikz(diagram: Diagram, **options: object) -> str:
    """A ``tikzpicture`` of ``diagram``, its styles defined in its options. Options: ``title``, ``show_types``."""
    opts = _options(options, ("title", "show_types"))
    return _tikz(_titled(layout(diagram, show_types=opts.get("show_types", True)), opts.get("title")))


def equation_to_tikz(equation: Equation, **options: object) -> str:
    """A ``tikzpicture`` of ``lhs = rhs (= ...)``. Options: ``title`` (default: the name), ``show_types``."""
    opts = _options(options, ("title", "show_types"))
    lay = _equation_layout(equation, opts.get("show_types", True))
    return _tikz(_titled(lay, opts.get("title", equation.name)))
