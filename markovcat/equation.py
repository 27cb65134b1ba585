"""Equations between diagrams: statements that can be checked, explained and drawn.

An :class:`Equation` only *states* ``lhs = rhs (= ...)``.  :meth:`Equation.check`
asks whether it holds in the free Markov category (by :func:`markovcat.equal`); an
equation that does not (a group axiom, say) is an assumption about particular boxes.

>>> from markovcat.syntax import Ty, Box, Copy, Discard
>>> X = Ty("X")
>>> k = Box("k", X, X)
>>> Equation(k >> Discard(X), Discard(X), name="discard naturality").check()
True
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from markovcat.frozen import reduce_frozen
from markovcat.markov import equal, explain
from markovcat.syntax import Diagram, Ty, TypeMismatch, check_operand

__all__ = ["Equation"]


class Equation:
    """``sides[0] = sides[1] = ...``, all of one type ``dom -> cod``."""

    __slots__ = ("sides", "name", "reasons")
    sides: tuple[Diagram, ...]
    """The diagrams said to be equal, in order (at least two)."""
    name: str | None
    """The equation's name (``None``: unnamed)."""
    reasons: tuple[str, ...] | None
    """Why each step ``sides[i] = sides[i + 1]`` holds, one reason per step, when known."""

    def __init__(
        self,
        lhs: Diagram,
        rhs: Diagram,
        *more: Diagram,
        name: str | None = None,
        reasons: tuple[str, ...] | None = None,
    ) -> None:
        """``reasons``, one per step, are shown under each ``=`` when drawn (e.g. the rule a proof used)."""
        sides = (lhs, rhs, *more)
        if reasons is not None and len(reasons) != len(sides) - 1:
            steps = len(sides) - 1
            raise ValueError(f"an equation with {len(sides)} sides has {steps} steps, got {len(reasons)} reasons")
        for side in sides:
            check_operand(side, "Equation")
        for i, side in enumerate(sides[1:], start=1):
            if (side.dom, side.cod) != (lhs.dom, lhs.cod):
                raise TypeMismatch(
                    f"equation {name or ''!s}: side {i} has type {side.dom} -> {side.cod} "
                    f"but side 0 has type {lhs.dom} -> {lhs.cod}".replace("equation : ", "equation: ")
                )
        object.__setattr__(self, "sides", sides)
        object.__setattr__(self, "name", name)
        object.__setattr__(self, "reasons", None if reasons is None else tuple(map(str, reasons)))

    def __setattr__(self, name: str, value: object) -> None:
        raise AttributeError("equations are immutable")

    __reduce__ = reduce_frozen

    def __eq__(self, other: object) -> bool:
        """The same sides (syntactically, as diagrams), name and reasons; :meth:`check` is the maths."""
        if self is other:
            return True
        if not isinstance(other, Equation):
            return NotImplemented
        return (self.name, self.reasons, self.sides) == (other.name, other.reasons, other.sides)

    def __hash__(self) -> int:
        return hash(("Equation", self.name, self.sides))

    @property
    def lhs(self) -> Diagram:
        """The first side."""
        return self.sides[0]

    @property
    def rhs(self) -> Diagram:
        """The last side."""
        return self.sides[-1]

    @property
    def dom(self) -> Ty:
        """The input type shared by every side."""
        return self.lhs.dom

    @property
    def cod(self) -> Ty:
        """The output type shared by every side."""
        return self.lhs.cod

    def __iter__(self) -> Iterator[Diagram]:
        return iter(self.sides)

    def check(self) -> bool:
        """True iff every two neighbouring sides are equal in the free Markov category."""
        return all(equal(a, b) for a, b in zip(self.sides, self.sides[1:]))

    def explain(self) -> str:
        """For each step that fails, where the two sides differ."""
        failures = [
            f"step {i} -> {i + 1}: {explain(a, b)}"
            for i, (a, b) in enumerate(zip(self.sides, self.sides[1:]))
            if not equal(a, b)
        ]
        return "; ".join(failures) if failures else "Every step holds in the free Markov category."

    def reversed(self) -> Equation:
        """The same equation read right to left (the sides in reverse order)."""
        reasons = None if self.reasons is None else tuple(reversed(self.reasons))
        return Equation(*reversed(self.sides), name=self.name, reasons=reasons)

    def draw(self, path: str | Path | None = None, **options: object) -> object:
        """Draw as ``lhs = rhs (= ...)`` to ``path`` (SVG, PNG or PDF) or return the figure."""
        from markovcat.drawing import draw_equation

        return draw_equation(self, path, **options)

    def _repr_svg_(self) -> str:
        """Jupyter shows an equation as its picture."""
        from markovcat.syntax import _svg

        return _svg(self.draw())

    def to_tikz(self, **options: object) -> str:
        """The equation as TikZ source (the sides side by side, ``=`` between them)."""
        from markovcat.drawing import equation_to_tikz

        return equation_to_tikz(self, **options)

    def __repr__(self) -> str:
        body = " = ".join(repr(s) for s in self.sides)
        return f"Equation({self.name!r}: {body})" if self.name else f"Equation({body})"
