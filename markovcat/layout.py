"""The layout of a string diagram: where its boxes, wires, dots and labels go (no painting).

Diagrams read top to bottom: the domain wires enter at the top and the codomain wires
leave at the bottom.  The layout is layered (Sugiyama style):

1. *Layers*: a box sits one layer below the lowest box it reads from (longest path from
   the inputs); boxes reading no input wire sink as low as their readers allow.  A wire
   spanning several layers passes through a dummy point in each, so wires run between
   boxes, never through them.
2. *Crossing reduction*: barycentre sweeps down and up order each layer by the mean
   position of its neighbours.
3. *Positions*: barycentre relaxation with overlap removal (weighted isotonic regression
   by pool-adjacent-violators); long wires are then straightened.
4. *Compact aspect ratio*: a drawing much taller than wide (a long chain) is folded into
   columns of consecutive layers, placed left to right; a wire leaving the bottom of one
   column runs along the gap and enters the top of the next.

Every step is near-linear in the size of the diagram, so a 200-box diagram lays out in a
fraction of a second.  The layout draws the term graph *as given*: no box is merged or
pruned.  The term graph does not record structure that cancels by the comonoid laws
(``Copy(X) >> (Id(X) @ Discard(X))`` *is* ``Id(X)``), so that is not drawn.

Labels: Greek names are shown as letters (``gamma`` as γ) and ``_`` starts a subscript,
the same way in every painter: ``act_X`` is act with subscript X, ``lambda_O(3)`` is λ with
subscript O(3), ``sym_haar_G`` is sym with subscript haar, itself subscripted G.

Boxes for an expectation ``E[kernel]`` (:func:`markovcat.theorems.expectation`) are drawn
as a dashed frame marked E around the drawing of the kernel.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field, replace

from markovcat.markov import MarkedKernel
from markovcat.syntax import Diagram

__all__ = ["Label", "BoxShape", "Layout", "layout", "FOLD_ABOVE", "ASPECT"]

Point = tuple[float, float]
INCH = 0.75  # inches per layout unit
BOX_H, STUB, PORT_SEP, DOT_R = 0.5, 0.3, 0.45, 0.045
POINTS = {"label": 12.0, "type": 8.0, "equals": 30.0, "title": 13.0}
#: Drawings taller than this (layout units of 0.75 inch: 12 inches, a page) are folded into columns ...
FOLD_ABOVE = 16.0
#: ... whose height is about this multiple of the total width (a portrait page is 1.41).
ASPECT = 1.3
LANE = 0.15  # distance between the wires running along the gap between two columns
FRAME_PAD = 0.3  # room between an E[...] frame and the drawing inside it

_GREEK = (
    "alpha beta gamma delta epsilon zeta eta theta iota kappa lambda mu nu xi pi rho sigma tau "
    "upsilon phi chi psi omega Gamma Delta Theta Lambda Xi Pi Sigma Upsilon Phi Psi Omega"
).split()
_LETTERS = "αβγδεζηθικλμνξπρστυφχψωΓΔΘΛΞΠΣΥΦΨΩ"
_UNICODE = dict(zip(_GREEK, _LETTERS, strict=True))
_TEX_GREEK = {letter: name for name, letter in _UNICODE.items()}
_GREEK_RE = re.compile(r"(?<![A-Za-z])(" + "|".join(sorted(_GREEK, key=len, reverse=True)) + r")(?![A-Za-z])")
_TEX_ESCAPES = {c: "\\" + c for c in "&%$#_{}"} | {"\\": r"\textbackslash{}", "~": r"\~{}", "^": r"\^{}"}
# A chain of subscripts: "_" after a character that is not a space, then a short word (at most
# four characters, or a Greek name), optionally followed by a parenthesised number (O(3),
# SO(2)); "_haar_G" nests.  A longer word after "_" ("frame_average") is not a subscript.
_SUB_WORD = "(?:" + "|".join(sorted(_GREEK, key=len, reverse=True)) + r"|[A-Za-z0-9\u0370-\u03ff]{1,4})"
_SUB_RE = re.compile(r"(?<=[^\s_$])((?:_" + _SUB_WORD + r"(?:\(\d+\))?)+)(?![A-Za-z0-9\u0370-\u03ff])")


def _plain(s: str) -> str:
    return _GREEK_RE.sub(lambda m: _UNICODE[m.group(1)], s)


def _tex(s: str) -> str:
    """Text-mode TeX for ``s``: special characters escaped, Greek names and letters as math."""
    s = _plain(s)
    return "".join(f"$\\{_TEX_GREEK[c]}$" if c in _TEX_GREEK else _TEX_ESCAPES.get(c, c) for c in s)


def text(name: str) -> tuple[str, str, float]:
    """A name as (matplotlib text, TeX text, width in characters), with Greek letters and subscripts.

    ``_`` followed by a short word (at most four characters, or a Greek name) starts a
    subscript; ``frame_average`` keeps its underscore.

    >>> text("act_X")[:2]
    ('act$_{\\\\mathregular{X}}$', 'act\\\\textsubscript{X}')
    >>> text("lambda_O(3)")[0]
    'λ$_{\\\\mathregular{O(3)}}$'
    """
    if "$" in name:  # matplotlib math of the user's own: shown literally
        return _plain(name).replace("$", r"\$"), _tex(name), float(len(_plain(name)))
    mpl, tex, chars = [], [], 0.0
    pieces = _SUB_RE.split(name)  # the odd pieces are subscript chains
    for i, piece in enumerate(pieces):
        if i % 2 == 0:
            mpl.append(_plain(piece))
            tex.append(_tex(piece))
            chars += len(_plain(piece))
            continue
        subs = piece.split("_")[1:]
        inner_mpl = inner_tex = ""
        for sub in reversed(subs):  # build the nesting from the innermost subscript out
            inner_mpl = f"\\mathregular{{{_plain(sub)}}}" + (f"_{{{inner_mpl}}}" if inner_mpl else "")
            inner_tex = _tex(sub) + (f"\\textsubscript{{{inner_tex}}}" if inner_tex else "")
        mpl.append(f"$_{{{inner_mpl}}}$")
        tex.append(f"\\textsubscript{{{inner_tex}}}")
        chars += sum(0.7**depth * len(_plain(sub)) for depth, sub in enumerate(subs, 1))
    return "".join(mpl), "".join(tex), chars


def width(chars: float, style: str) -> float:
    """The width, in layout units, of ``chars`` characters of text in ``style``."""
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
    """A box from (x0, y0) to (x1, y1); ``frame`` marks the dashed frame of an ``E[...]`` box."""

    x0: float
    y0: float
    x1: float
    y1: float
    deterministic: bool
    frame: bool = False


@dataclass
class Layout:
    """The primitives of a drawing, in layout units (y upwards).

    A stroke is a start point followed by (control, control, end) triples of cubic
    Bézier steps; a dot is ``(x, y, "copy" | "discard")``.  ``inputs`` and ``outputs``
    are where the boundary wires start and end.
    """

    boxes: list[BoxShape] = field(default_factory=list)
    strokes: list[list[Point]] = field(default_factory=list)
    dots: list[tuple[float, float, str]] = field(default_factory=list)
    labels: list[Label] = field(default_factory=list)
    inputs: list[Point] = field(default_factory=list)
    outputs: list[Point] = field(default_factory=list)

    def bounds(self) -> tuple[float, float, float, float]:
        """``(x0, y0, x1, y1)`` enclosing every primitive, labels included."""
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
        """A label showing ``name`` (Greek letters and subscripts rendered)."""
        mpl, tex, chars = text(name)
        self.labels.append(Label(x, y, mpl, tex, style, width(chars, style), ha, va))


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
    height: float = BOX_H
    inner: Layout | None = None  # the drawing inside an E[...] frame, its top edge at y = 0
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


def _ports(k: int, span: float) -> list[float]:
    return [(p + 0.5) * span / k - span / 2 for p in range(k)]


def _expected(gen: object) -> Diagram | None:
    """The kernel of an ``E[...]`` box (:func:`markovcat.theorems.expectation`), else None: its data is a
    :class:`~markovcat.markov.MarkedKernel` marked ``"E"``."""
    return MarkedKernel.of(gen, "E")


def _box_item(node_index: int, d: Diagram, layer: int) -> _Item:
    node = d.nodes[node_index]
    k, m = len(node.ins), len(node.outs)
    kernel = _expected(node.gen)
    if kernel is not None:
        inner = layout(kernel, show_types=False, fold=False)
        x0, y0, x1, _ = inner.bounds()
        x0, x1 = x0 - FRAME_PAD - 0.2, x1 + FRAME_PAD  # room for the E on the left
        centre = (x0 + x1) / 2
        tops = [p[0] - centre for p in inner.inputs]
        bottoms = [p[0] - centre for p in inner.outputs]
        if len(tops) != k or len(bottoms) != m:
            raise ValueError(f"the kernel of {node.gen.name!r} does not match the box's type")
        shifted = Layout()
        shifted.add(inner, -centre, -STUB)
        height = STUB - min([y0, *(p[1] for p in inner.outputs)])
        return _Item(layer, "box", x1 - x0, tops, bottoms, node_index, height=height, inner=shifted)
    span = max(max(k, m) * PORT_SEP, width(text(node.gen.name)[2], "label") + 0.3, 0.5)
    return _Item(layer, "box", span, _ports(k, span), _ports(m, span), node_index)


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
        return max(0.2, width(text(types[wire])[2], "type"))

    source = {w: (add(_Item(0, "in", port_width(w), [], [0.0], w)), 0) for w in d.inputs}
    boxes = []
    for i, node in enumerate(d.nodes):
        boxes.append(add(_box_item(i, d, layer[i])))
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


def crossings(items: list[_Item], rows: list[list[int]]) -> int:
    """The number of pairs of wire segments that cross between adjacent layers (by port order)."""
    total = 0
    for row in rows[1:]:
        segments = sorted(
            (items[s].x + items[s].bottoms[sp], items[i].x + off)
            for i in row
            for off, (s, sp) in zip(items[i].tops, items[i].up, strict=True)
        )
        total += _inversions([round(b, 9) for _, b in segments])
    return total


def _inversions(values: list[float]) -> int:
    """The number of pairs i < j with values[i] > values[j] (merge sort, n log n)."""
    if len(values) < 2:
        return 0
    half = len(values) // 2
    left, right = sorted(values[:half]), sorted(values[half:])
    count = _inversions(values[:half]) + _inversions(values[half:])
    j = 0
    for x in left:  # for each x on the left, the right values below it
        while j < len(right) and right[j] < x:
            j += 1
        count += j
    return count


def _arrange(items: list[_Item], rows: list[list[int]]) -> None:
    """Four sweeps ordering the inner layers by barycentre (the order with fewest crossings is kept),
    four more relaxing positions."""
    last = len(rows) - 1
    _place(items, rows[0], [(0.0, 1.0)] * len(rows[0]))
    best: tuple[int, list[list[int]], list[float]] | None = None
    for sweep in range(8):
        down = sweep % 2 == 0
        for r in range(1, last + 1) if down else range(last - 1, -1, -1):
            wishes = {i: _pull(items, i, down or sweep >= 4, not down or sweep >= 4) for i in rows[r]}
            if sweep < 4 and 0 < r < last:
                rows[r].sort(key=lambda i: wishes[i][0])
            _place(items, rows[r], [wishes[i] for i in rows[r]])
        if sweep < 4:
            count = crossings(items, rows)
            if best is None or count < best[0]:
                best = (count, [list(row) for row in rows], [item.x for item in items])
        if sweep == 3 and best is not None:
            rows[:] = best[1]
            for item, x in zip(items, best[2], strict=True):
                item.x = x


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


def _extent(items: list[_Item], row: list[int]) -> tuple[float, float]:
    """The x range a layer's items take, with room for the type labels right of the ports."""
    lows = [items[i].x - items[i].width / 2 for i in row]
    highs = [items[i].x + items[i].width / 2 + (0.3 if items[i].kind == "box" else 0.0) for i in row]
    return min(lows, default=0.0), max(highs, default=0.0)


def _columns(heights: list[float], entering: list[int], span: float, fold: bool) -> list[int]:
    """The first layer of each column: one column, or enough to bring height/width near ASPECT.

    Each cut goes, within two layers of an even split, where the fewest wires cross it.
    """
    total = sum(heights)
    if not fold or total <= FOLD_ABOVE or len(heights) < 5:
        return [0]
    gap = 0.8

    def misfit(c: int) -> float:
        return abs(math.log((total / c) / (c * span + (c - 1) * gap)) - math.log(ASPECT))

    count = min(range(1, len(heights) // 2 + 1), key=misfit)
    middles, done = [], 0.0
    for h in heights:
        middles.append(done + h / 2)
        done += h
    starts = [0]
    for c in range(1, count):
        target = total * c / count
        near = next((r for r, m in enumerate(middles) if m > target), len(heights) - 1)
        candidates = [r for r in range(near - 2, near + 3) if starts[-1] + 2 <= r <= len(heights) - 2]
        if candidates:
            starts.append(min(candidates, key=lambda r: (entering[r], abs(middles[r] - target))))
    return starts


def layout(diagram: Diagram, *, show_types: bool = True, fold: bool = True) -> Layout:
    """The drawing of ``diagram`` as written (y upwards; the top of the input wires at y = STUB).

    ``fold``: a drawing taller than :data:`FOLD_ABOVE` is folded into columns so that its
    height is about :data:`ASPECT` times its width.
    """
    uses, types = diagram.uses(), diagram.wire_types()
    items, rows = _build(diagram, uses, types)
    _arrange(items, rows)
    _straighten(items, rows)
    last = len(rows) - 1
    gaps, heights = [0.0] * len(rows), [0.0] * len(rows)
    for r, row in enumerate(rows):
        if r:  # the gap above layer r grows with how far its wires travel sideways
            shifts = [
                items[i].x + off - items[s].x - items[s].bottoms[sp]
                for i in row
                for off, (s, sp) in zip(items[i].tops, items[i].up, strict=True)
            ]
            gaps[r] = min(0.6 + 0.2 * max(map(abs, shifts), default=0.0), 1.8)
        boxes = [items[i].height for i in row if items[i].kind == "box"]
        heights[r] = STUB if r in (0, last) else max(boxes, default=0.0)
    extents = [_extent(items, row) for row in rows]
    span = max(hi for _, hi in extents) - min(lo for lo, _ in extents)
    entering = [sum(len(items[i].tops) for i in row) for row in rows]
    sources = [len({tuple(u) for i in row for u in items[i].up}) for row in rows]  # wires, a copied one once
    starts = _columns([g + h for g, h in zip(gaps, heights, strict=True)], sources, span, fold)
    column = [0] * len(rows)
    for c, s in enumerate(starts):
        for r in range(s, len(rows)):
            column[r] = c
    # each column keeps its own x positions, moved right of the one before
    lanes = [0] + [entering[s] for s in starts[1:]]
    shift, right = [0.0] * len(starts), 0.0
    for c in range(len(starts)):
        lo = min(extents[r][0] for r in range(len(rows)) if column[r] == c)
        hi = max(extents[r][1] for r in range(len(rows)) if column[r] == c)
        shift[c] = right - lo if c else 0.0
        right = hi + shift[c] + 0.5 + LANE * (lanes[c + 1] if c + 1 < len(starts) else 0) + 0.3
    for item in items:
        item.x += shift[column[item.layer]]
    top, bottom, y = [0.0] * len(rows), [0.0] * len(rows), STUB
    for r in range(len(rows)):
        y = STUB if r in starts else y - gaps[r]
        top[r], bottom[r], y = y, y - heights[r], y - heights[r]
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
            if item.inner is not None:  # an E[...] frame, the kernel drawn inside
                lay.add(item.inner, item.x, top[r])
                lay.boxes.append(BoxShape(x0, bottom[r], x1, top[r], gen.deterministic, frame=True))
                lay.add_label(x0 + 0.08, top[r] - 0.06, "E", "label", "left", "top")
                for x, y in item.inner.outputs:  # a short frame: its outputs continue to the bottom edge
                    if y + top[r] > bottom[r] + 1e-9:
                        lay.strokes.append(_vertical(item.x + x, y + top[r], bottom[r]))
                continue
            middle = (top[r] + bottom[r]) / 2
            y0, y1 = middle - item.height / 2, middle + item.height / 2
            lay.boxes.append(BoxShape(x0, y0, x1, y1, gen.deterministic))
            lay.add_label(item.x, middle, gen.name, "label")
            if y1 < top[r] - 1e-9:  # a tall layer: the ports reach the box by straight stubs
                lay.strokes += [_vertical(item.x + off, top[r], y1) for off in item.tops]
                lay.strokes += [_vertical(item.x + off, y0, bottom[r]) for off in item.bottoms]
        elif item.kind in ("in", "out"):
            above = item.kind == "in"
            if show_types:
                y = top[r] + 0.06 if above else bottom[r] - 0.06
                lay.add_label(item.x, y, types[item.ref], "type", va="bottom" if above else "top")
    lay.inputs = [(items[i].x, top[0]) for i in rows[0]]  # rows 0 and last keep the boundary's order
    lay.outputs = [(items[i].x, bottom[last]) for i in rows[last]]

    # the wires entering each column but the first: a lane each, the outermost for the leftmost
    lane_of: dict[tuple[int, int], tuple[float, float, float]] = {}
    for c, s in enumerate(starts[1:], 1):
        crossing = sorted(
            ((items[src].x + items[src].bottoms[sp], items[i].x + off), (i, tp))
            for i in rows[s]
            for tp, (off, (src, sp)) in enumerate(zip(items[i].tops, items[i].up, strict=True))
        )
        lo = min(extents[r][0] for r in range(len(rows)) if column[r] == c) + shift[c]
        count = len(crossing)
        for j, (_, key) in enumerate(reversed(crossing)):  # j = 0: the rightmost source, the innermost lane
            gap_x = lo - 0.3 - LANE * (count - 1 - j) - 0.15
            low = bottom[s - 1] - 0.45 - LANE * j
            high = top[s] + 0.45 + LANE * (count - 1 - j)
            lane_of[key] = (gap_x, low, high)

    def route(a: Point, b: Point, lane: tuple[float, float, float]) -> list[Point]:
        """From the bottom of a column along the gap to the top of the next, with rounded corners."""
        x, low, high = lane
        rad = 0.12
        corners = [(a[0], low), (x, low), (x, high), (b[0], high)]
        points: list[Point] = []
        here = a
        for k, corner in enumerate(corners):
            nxt = corners[k + 1] if k + 1 < len(corners) else b
            into = _towards(corner, here, rad)
            out = _towards(corner, nxt, rad)
            points += [_lerp(here, into, 1 / 3), _lerp(here, into, 2 / 3), into, corner, corner, out]
            here = out
        return [*points, _lerp(here, b, 1 / 3), _lerp(here, b, 2 / 3), b]

    starts_ = [(i, p) for i, item in enumerate(items) if item.kind in ("in", "box") for p in range(len(item.bottoms))]
    while starts_:  # a stroke runs from a port or a dot to a box, an output, or the next dot
        i, p = starts_.pop()
        a, targets = port(i, p, False), items[i].down[p]
        head = [(a[0], top[0]), *step((a[0], top[0]), a, False)] if items[i].kind == "in" else [a]
        last_row = bool(targets) and all(items[t].kind == "out" for t, _ in targets)  # labelled at the bottom
        if show_types and items[i].kind == "box" and not last_row:
            lay.add_label(a[0] + 0.06, a[1] - 0.04, types[diagram.nodes[items[i].ref].outs[p]], "type", "left", "top")
        split_later = len(targets) > 1 and all(t in lane_of for t in targets)
        if split_later:  # copied into the next column: one wire crosses, the copy dot is at the top there
            first = min(targets, key=lambda t: port(t[0], t[1], True)[0])
            dot = (sum(port(t, tp, True)[0] for t, tp in targets) / len(targets), top[items[first[0]].layer] + 0.24)
            lay.strokes.append(head + route(a, dot, lane_of[first]))
            lay.dots.append((*dot, "copy"))
            head = [dot]
        elif len(targets) != 1:
            gap = gaps[items[i].layer + 1] if items[i].layer + 1 < len(rows) else 0.6
            end = (a[0], a[1] - (min(0.24, 0.4 * gap) if targets else min(0.3, 0.5 * gap)))
            lay.strokes.append(head + step(a, end, False))
            lay.dots.append((*end, "copy" if targets else "discard"))
            head = [end]
        for t, tp in targets:
            stroke, crossed = list(head), split_later
            while True:
                b = port(t, tp, True)
                lane = None if crossed else lane_of.get((t, tp))
                crossed = False
                stroke += route(stroke[-1], b, lane) if lane else step(stroke[-1], b, True)
                if items[t].kind in ("dummy", "out"):
                    stroke += step(stroke[-1], (items[t].x, bottom[items[t].layer]), False)
                if items[t].kind != "dummy":
                    break
                if len(items[t].down[0]) != 1:
                    starts_.append((t, 0))
                    break
                t, tp = items[t].down[0][0]
            lay.strokes.append(stroke)
    return lay


def _vertical(x: float, y0: float, y1: float) -> list[Point]:
    """A straight vertical stroke."""
    return [(x, y0), (x, y0 + (y1 - y0) / 3), (x, y0 + 2 * (y1 - y0) / 3), (x, y1)]


def _lerp(a: Point, b: Point, t: float) -> Point:
    return a[0] + (b[0] - a[0]) * t, a[1] + (b[1] - a[1]) * t


def _towards(corner: Point, other: Point, rad: float) -> Point:
    """The point ``rad`` from ``corner`` on the way to ``other`` (the corner itself if they are closer)."""
    dx, dy = other[0] - corner[0], other[1] - corner[1]
    dist = math.hypot(dx, dy)
    if dist < 1e-12:
        return corner
    t = min(rad, dist / 2) / dist
    return corner[0] + dx * t, corner[1] + dy * t
