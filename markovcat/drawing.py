"""Drawing diagrams as string diagrams: matplotlib figures (SVG, PNG, PDF) and TikZ.

Diagrams read top to bottom: the domain wires enter at the top and the codomain
wires leave at the bottom, each labelled with its type.  Conventions:

* a **deterministic** box has square corners and a light blue-grey fill;
* a **stochastic** box has rounded corners, a white fill and a thicker outline;
* **copy** is a black dot where a wire splits; **discard** is a short wire ending in
  a black dot (unused outputs of a box included); a **swap** is two crossing wires;
* an expectation ``E[kernel]`` is a dashed frame marked E around the kernel;
* names that are Greek letters are shown as such (``gamma`` as γ) and ``_`` starts a
  subscript (``act_X``, ``lambda_O(3)``, ``sym_haar_G``), alike in matplotlib and TikZ.

:func:`draw` draws a diagram **as written**: every box of its term graph, none merged
or pruned, each copy and discard as a dot.  To draw the **normal form** (the canonical
representative the equality check compares: discarded boxes pruned, repeated
deterministic boxes merged), draw ``markovcat.normal_form(d)``.  One
:class:`~markovcat.layout.Layout` is computed (:func:`markovcat.layout.layout`: layers,
crossing reduction, long drawings folded into columns); the matplotlib and TikZ
painters only paint its primitives.

>>> from markovcat.syntax import Ty, Box, Copy
>>> X = Ty("X")
>>> f = Box("f", X, X, deterministic=True)
>>> [kind for _, _, kind in layout(Copy(X) >> (f @ f)).dots]
['copy']
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from markovcat.layout import INCH, POINTS, BoxShape, Label, Layout, layout, text, width
from markovcat.syntax import Diagram

if TYPE_CHECKING:
    from matplotlib.figure import Figure

    from markovcat.equation import Equation

__all__ = [
    "Label", "BoxShape", "Layout", "layout", "draw", "to_tikz", "draw_equation", "equation_to_tikz", "same_picture",
]

Point = tuple[float, float]
DOT_R, MARGIN, MAX_INCHES, MAX_PIXELS = 0.045, 0.25, 120.0, 4000.0
FORMATS = {".svg": "svg", ".png": "png", ".pdf": "pdf"}
DET_FILL = "#dde6f0"


def same_picture(a: Diagram, b: Diagram) -> bool:
    """Whether ``a`` and ``b`` are the same term graph up to the order of their boxes (so draw alike).

    Both must be equal in the free Markov category *and* have as many boxes as their
    common normal form: then neither prunes nor merges anything, and both are that
    normal form, renumbered.
    """
    from markovcat.markov import NormalForm

    if (a.dom, a.cod, len(a.nodes)) != (b.dom, b.cod, len(b.nodes)):
        return False
    form = NormalForm.of(a)
    return form == NormalForm.of(b) and len(form.nodes) == len(a.nodes)


def _equation_layout(equation: Equation, show_types: bool, skip_repeats: bool = False) -> Layout:
    """The sides side by side, centred on y = 0, with "=" between them.

    ``skip_repeats``: in a chain of three or more sides, a side that is the same picture
    as the one before it (:func:`same_picture`; e.g. a proof's last step only renumbers
    its boxes) is left out with its "=", so no step shows two identical drawings.
    """
    sides, reasons = [equation.sides[0]], []
    for j, side in enumerate(equation.sides[1:]):
        if skip_repeats and len(equation.sides) > 2 and same_picture(sides[-1], side):
            continue
        sides.append(side)
        reasons.append(equation.reasons[j] if equation.reasons else "")
    lay, x = Layout(), 0.0
    for j, side in enumerate(sides):
        part = layout(side, show_types=show_types)
        x0, y0, x1, y1 = part.bounds()
        if j:
            lines = _wrap(reasons[j - 1], 16)
            gap = max([0.9] + [width(text(line)[2], "type") + 0.3 for line in lines])
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
        ax.add_artist(PathPatch(path, fill=False, lw=1.3 * scale, capstyle="butt", zorder=1))
    for b in lay.boxes:
        corner, w, h = (b.x0, b.y0), b.x1 - b.x0, b.y1 - b.y0
        if b.frame:
            style = "round,pad=0,rounding_size=0.14"
            ax.add_artist(FancyBboxPatch(corner, w, h, boxstyle=style, fill=False, ec="0.35", ls=(0, (4, 3)),
                                        lw=1.2 * scale, zorder=0.5))
        elif b.deterministic:
            ax.add_artist(Rectangle(corner, w, h, fc=DET_FILL, ec="black", lw=1.0 * scale, zorder=2))
        else:
            style = "round,pad=0,rounding_size=0.14"
            box = FancyBboxPatch(corner, w, h, boxstyle=style, fc="white", ec="black", lw=2.2 * scale, zorder=2)
            ax.add_artist(box)
    for x, y, _ in lay.dots:
        ax.add_artist(Circle((x, y), DOT_R, color="black", zorder=3))
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
    longest = max(fig.get_size_inches())
    dpi = options.get("dpi") or min(150.0, MAX_PIXELS / longest)  # a huge PNG stays within MAX_PIXELS a side
    fig.savefig(path, format=fmt, dpi=dpi, metadata=metadata)
    return path


_FIGURE_OPTIONS = ("figsize", "title", "show_types", "dpi")


def draw(diagram: Diagram, path: str | Path | None = None, **options: object) -> Any:
    """Draw ``diagram`` as written: return a matplotlib Figure, or write ``path`` (.svg, .png, .pdf) and return it.

    As written: every box of the term graph, none pruned or merged; copies and discards
    are dots.  ``draw(markovcat.normal_form(d))`` draws the normal form instead.

    Options: ``figsize`` (inches; by default the figure grows with the diagram),
    ``title``, ``show_types`` (label the wires with their types; default True),
    ``dpi`` (for PNG; default 150, less for a drawing whose longer side would pass 4000 pixels).
    """
    opts = _options(options, _FIGURE_OPTIONS)
    _format(path)
    return _render(layout(diagram, show_types=opts.get("show_types", True)), path, opts)


def draw_equation(equation: Equation, path: str | Path | None = None, **options: object) -> Any:
    """Draw ``lhs = rhs (= ...)`` side by side, each side as written; same options as :func:`draw`.

    The title defaults to the equation's name.  ``skip_repeats=True`` (for proofs): in a
    chain of three or more sides, a side that is the same picture as the one before it
    is left out with its "=" (see :func:`_equation_layout`).
    """
    opts = _options(options, (*_FIGURE_OPTIONS, "skip_repeats"))
    opts.setdefault("title", equation.name)
    _format(path)
    lay = _equation_layout(equation, opts.get("show_types", True), bool(opts.pop("skip_repeats", False)))
    return _render(lay, path, opts)


_TIKZ_STYLES = r"""  wire/.style={line width=0.9pt},
  deterministic/.style={draw, fill=blue!10!black!8, line width=0.7pt},
  stochastic/.style={draw, fill=white, rounded corners=2.7mm, line width=1.5pt},
  copy/.style={circle, fill, inner sep=0pt, minimum size=5pt},
  discard/.style={circle, fill, inner sep=0pt, minimum size=5pt},
  frame/.style={draw, black!65, dashed, rounded corners=2.7mm, line width=0.8pt},
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
        style = "frame" if b.frame else "deterministic" if b.deterministic else "stochastic"
        lines.append(f"\\draw[{style}] {pt((b.x0, b.y0))} rectangle {pt((b.x1, b.y1))};")
    lines += [f"\\node[{kind}] at {pt((x, y))} {{}};" for x, y, kind in lay.dots]
    for lab in lay.labels:
        vertical = {"top": "north", "bottom": "south"}.get(lab.va, "")
        anchor = f"{vertical} {dict(left='west', right='east').get(lab.ha, '')}".strip() or "center"
        lines.append(f"\\node[{lab.style}, anchor={anchor}] at {pt((lab.x, lab.y))} {{{lab.tex}}};")
    return "\n".join([*lines, "\\end{tikzpicture}"]) + "\n"


def to_tikz(diagram: Diagram, **options: object) -> str:
    """A ``tikzpicture`` of ``diagram`` as written, its styles in its options. Options: ``title``, ``show_types``."""
    opts = _options(options, ("title", "show_types"))
    return _tikz(_titled(layout(diagram, show_types=opts.get("show_types", True)), opts.get("title")))


def equation_to_tikz(equation: Equation, **options: object) -> str:
    """A ``tikzpicture`` of ``lhs = rhs (= ...)``.

    Options: ``title`` (default: the name), ``show_types``, ``skip_repeats`` (see :func:`draw_equation`).
    """
    opts = _options(options, ("title", "show_types", "skip_repeats"))
    lay = _equation_layout(equation, opts.get("show_types", True), bool(opts.get("skip_repeats", False)))
    return _tikz(_titled(lay, opts.get("title", equation.name)))
