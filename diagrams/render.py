"""Render the whole gallery: every figure and proof, as SVG and PNG, with an index page."""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from markovcat.drawing import same_picture
from markovcat.equation import Equation
from markovcat.markov import equal, normal_form
from markovcat.syntax import Diagram

#: The gallery modules, in the order the gallery shows them (from groups to symmetrisation and its extensions).
MODULES = (
    "equivariance",
    "group_axioms",
    "actions",
    "cg",
    "adjunction",
    "sym",
    "haar",
    "ave",
    "homomorphism",
    "recursive",
    "symdiff",
    "products",
)


@dataclass(frozen=True)
class Figure:
    """One gallery item: ``module/key`` and what to draw (a diagram, an equation or a proof)."""

    module: str
    """The gallery module it comes from (``sym``, ``actions``...)."""
    key: str
    """The figure's key in its module's ``figures()`` or ``proofs()``."""
    item: Any
    """The diagram, equation or proof itself."""
    kind: str  # "diagram" | "equation" | "proof"
    proved_by: str | None = None  # for an equation: the key of a proof in the same module proving it

    @property
    def stem(self) -> str:
        """The file name of its drawing, without suffix: ``module_key``."""
        return f"{self.module}_proof_{self.key}" if self.kind == "proof" else f"{self.module}_{self.key}"

    def status(self) -> str:
        """What is known about the item, in words (checks proofs; decides Markov equations)."""
        if self.kind == "diagram":
            return f"diagram {self.item.dom} -> {self.item.cod}"
        if self.kind == "proof":
            self.item.check()
            return f"proof, {len(self.item)} steps, checked"
        if self.item.check():
            sides = self.item.sides
            if all(same_picture(a, b) for a, b in zip(sides, sides[1:], strict=False)):
                return ("holds in the free Markov category (checked by normal forms); both sides are one term graph "
                        "up to the order of its boxes, so they draw alike: the law holds by the wiring alone")
            return "holds in the free Markov category (checked by normal forms)"
        if self.proved_by:
            return f"not a Markov law; proved from the axioms below (proof {self.proved_by})"
        return "not a Markov law: an axiom or assumption about these boxes"

    def drawable(self) -> Diagram | Equation:
        """What is drawn: the diagram, the equation, or a proof's equation."""
        return self.item.equation() if self.kind == "proof" else self.item

    def title(self) -> str:
        """The figure's title: the name of an equation or proof, else the key in words.

        Every figure is drawn as written; a diagram whose normal form has fewer boxes
        (something discarded or repeated) says so in its title.
        """
        if self.kind != "diagram":
            return str(getattr(self.item, "name", None) or self.key.replace("_", " "))
        written = len(self.item.nodes) != len(normal_form(self.item).nodes)
        return self.key.replace("_", " ") + (" (as written)" if written else "")

    def options(self) -> dict[str, Any]:
        """The drawing options: the title; a proof leaves out a step that does not change the picture."""
        return {"title": self.title(), **({"skip_repeats": True} if self.kind == "proof" else {})}


def _module(name: str) -> Any:
    return importlib.import_module(f"{__package__}.{name}")


def all_figures() -> list[Figure]:
    """Every figure and proof of every gallery module."""
    out: list[Figure] = []
    for name in MODULES:
        module = _module(name)
        proofs: dict[str, Any] = getattr(module, "proofs", dict)()
        for key, item in module.figures().items():
            if not isinstance(item, (Equation, Diagram)):
                raise TypeError(f"{name}.figures()[{key!r}] is {type(item).__name__}, not a Diagram or Equation")
            if isinstance(item, Diagram):
                out.append(Figure(name, key, item, "diagram"))
                continue
            by = next((pk for pk, p in proofs.items() if _states(p.statement(), item)), None)
            out.append(Figure(name, key, item, "equation", by))
        out += [Figure(name, key, proof, "proof") for key, proof in proofs.items()]
    return out


def _states(statement: Equation, eq: Equation) -> bool:
    """Whether ``statement`` is ``eq`` (end sides equal in the free Markov category, either way round)."""
    a, b, c, d = statement.lhs, statement.rhs, eq.lhs, eq.rhs
    if (a.dom, a.cod) != (c.dom, c.cod):
        return False
    return (equal(a, c) and equal(b, d)) or (equal(a, d) and equal(b, c))


def render_all(out_dir: str | Path, formats: tuple[str, ...] = (".svg", ".png")) -> list[Path]:
    """Draw every figure into ``out_dir`` (one file per format) and write ``README.md``.

    Output is reproducible (fixed SVG ids).  If ``out_dir`` already holds a gallery
    (its README.md starts with ``# The gallery``), figures of that format no longer in
    the gallery are removed.
    """
    import matplotlib

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    figures = all_figures()
    with matplotlib.rc_context({"svg.hashsalt": "markovcat"}):
        written = _render(figures, out, formats)
    index = out / "README.md"
    if index.exists() and index.read_text().startswith(_TITLE):
        for suffix in formats:
            for stale in set(out.glob(f"*{suffix}")) - set(written):
                stale.unlink()
    index.write_text("\n".join(_index_lines(figures, formats)))
    return [*written, index]


_TITLE = "# The gallery"


def _render(figures: list[Figure], out: Path, formats: tuple[str, ...]) -> list[Path]:
    written: list[Path] = []
    for fig in figures:
        for suffix in formats:
            path = out / f"{fig.stem}{suffix}"
            fig.drawable().draw(str(path), **fig.options())
            written.append(path)
    return written


def _index_lines(figures: list[Figure], formats: tuple[str, ...]) -> list[str]:
    lines = [_TITLE, "", "Regenerate with `python -m markovcat.diagrams diagrams/figures`.", ""]
    current = None
    for fig in figures:
        if fig.module != current:
            current = fig.module
            doc = (_module(current).__doc__ or "").strip().split("\n\n")[0].replace("\n", " ")
            lines += [f"## {current}", "", doc, ""]
        heading = f"proof `{fig.key}`" if fig.kind == "proof" else fig.key
        lines += [f"### {heading}", "", f"*{fig.status()}*", "", f"![{fig.key}]({fig.stem}{formats[0]})", ""]
        if fig.kind == "proof":
            lines += ["```", str(fig.item), "```", ""]
    return lines
