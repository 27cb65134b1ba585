"""The exact backend: interpret deterministic boxes by sympy expressions and matrices.

Values on wires are sympy objects; a box is a Python callable on them (e.g.
``lambda A, B: A * B``).  An :class:`~markovcat.Equation` is checked *exactly*: both
sides are evaluated on generic symbolic inputs (one fresh symbol family per input
wire) and their difference is simplified to zero, so a check that passes is a proof
for every value of the symbols, not a test on samples.

Only deterministic boxes have an exact interpretation here (the Set backend
:mod:`markovcat.backends.python` evaluates the wiring; stochastic boxes are refused).

>>> from markovcat.groups import Action, Group
>>> from markovcat.syntax import Ty
>>> G, V = Group("SO2"), Ty("V")
>>> rot = Action("rot", G, V)
>>> model = so2(G, rot)
>>> [check_equation(eq, model).holds for eq in G.axioms + rot.axioms]
[True, True, True, True, True, True, True]
"""

from __future__ import annotations

import itertools
import random
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import sympy as sp

from markovcat.backends.python import InterpretationError, interpret, resolve
from markovcat.equation import Equation
from markovcat.syntax import Diagram

__all__ = ["SymbolicModel", "EquationCheck", "check_equation", "check_axioms", "evaluate", "so2", "rotation",
           "vector", "matrix"]


def rotation(angle: sp.Expr) -> sp.Matrix:
    """The 2x2 rotation matrix by ``angle``."""
    return sp.Matrix([[sp.cos(angle), -sp.sin(angle)], [sp.sin(angle), sp.cos(angle)]])


def vector(prefix: str, n: int) -> sp.Matrix:
    """A generic column vector of ``n`` real symbols ``prefix0..``."""
    return sp.Matrix(sp.symbols(f"{prefix}0:{n}", real=True))


def matrix(prefix: str, rows: int, cols: int) -> sp.Matrix:
    """A generic ``rows x cols`` matrix of real symbols."""
    return sp.Matrix(rows, cols, sp.symbols(f"{prefix}0:{rows * cols}", real=True))


@dataclass
class SymbolicModel:
    """Boxes as sympy callables and, per atomic type, a factory of generic symbolic elements.

    ``types[atom](prefix)`` returns a generic element whose free symbols start with
    ``prefix`` (e.g. ``lambda p: rotation(sp.Symbol(p, real=True))`` for SO(2)).
    """

    boxes: Mapping[Any, Callable[..., Any]]
    """Box name (or Box) to a sympy callable."""
    types: Mapping[str, Callable[[str], Any]] = field(default_factory=dict)
    """Atom name to a factory of generic symbolic elements (``types[atom](prefix)``)."""

    def __or__(self, other: SymbolicModel) -> SymbolicModel:
        return SymbolicModel({**self.boxes, **other.boxes}, {**self.types, **other.types})

    def generic(self, atom: str, prefix: str) -> Any:
        """A generic element of atomic type ``atom`` whose free symbols start with ``prefix``."""
        if atom not in self.types:
            raise InterpretationError(f"type {atom!r} has no generic symbolic element: add types={{'{atom}': ...}}")
        return self.types[atom](prefix)


def evaluate(diagram: Diagram, model: SymbolicModel | Mapping[Any, Any], *args: Any) -> Any:
    """Evaluate a deterministic diagram on sympy values (a tuple for several outputs)."""
    boxes = model.boxes if isinstance(model, SymbolicModel) else model
    stochastic = [g.name for g in diagram.signature.values() if not g.deterministic]
    if stochastic:
        raise InterpretationError(
            f"box {stochastic[0]!r} is stochastic: the exact backend interprets deterministic boxes only"
        )
    resolve(diagram, boxes, "symbolic interpretation")
    return interpret(diagram, boxes)(*args)


def _is_zero(value: Any, simplify: Callable[[Any], Any]) -> bool:
    if isinstance(value, sp.MatrixBase):
        return all(_is_zero(entry, simplify) for entry in value)
    return bool(simplify(sp.sympify(value)) == 0)


def _simplify(expr: Any) -> Any:
    return sp.simplify(sp.trigsimp(sp.expand(expr)))


@dataclass
class EquationCheck:
    """Whether an equation holds exactly, with the simplified residual of each output.

    ``holds`` is a proof (the residual simplifies to 0).  When it does not, ``witness``
    is an assignment of numbers to the symbols at which the residual is numerically
    non-zero, if one was found: then the equation is refuted, not merely unproven.
    """

    name: str
    """The name of the equation checked."""
    holds: bool
    residuals: tuple[Any, ...]
    """``side[0] - side[i]`` for each other side, simplified."""
    witness: dict[Any, Any] | None = None
    """An assignment of numbers to the symbols at which a residual is non-zero, if one was found."""

    def __bool__(self) -> bool:
        return self.holds

    @property
    def refuted(self) -> bool:
        """Whether a numerical ``witness`` refutes the equation (not merely unproven)."""
        return self.witness is not None

    def __str__(self) -> str:
        if self.holds:
            return f"{self.name}: holds exactly"
        if self.witness is not None:
            at = ", ".join(f"{k} = {v}" for k, v in self.witness.items())
            return f"{self.name}: FAILS (non-zero at {at}); residual lhs - rhs = {self.residuals}"
        return f"{self.name}: not proven (the residual did not simplify to 0): {self.residuals}"


def check_equation(equation: Equation, model: SymbolicModel,
                   simplify: Callable[[Any], Any] = _simplify) -> EquationCheck:
    """Evaluate every side of ``equation`` on generic symbolic inputs and compare exactly."""
    inputs = [model.generic(atom, f"{atom.lower()}{i}_") for i, atom in enumerate(equation.dom.atoms)]
    values = []
    for side in equation.sides:
        out = evaluate(side, model, *inputs)
        values.append(out if len(side.cod) != 1 else (out,))
    residuals = []
    holds = True
    for left, right in itertools.pairwise(values):
        for a, b in zip(left, right, strict=True):
            difference = a - b
            matrix_valued = isinstance(difference, sp.MatrixBase)
            simplified = difference.applyfunc(simplify) if matrix_valued else simplify(difference)
            residuals.append(simplified)
            holds = holds and _is_zero(simplified, simplify)
    witness = None if holds else _witness(residuals)
    return EquationCheck(equation.name or "equation", holds, tuple(residuals), witness)


def _witness(residuals: list[Any], tries: int = 5) -> dict[Any, Any] | None:
    """Random rational values of the free symbols at which some residual is numerically non-zero."""
    entries = [e for r in residuals for e in (r if isinstance(r, sp.MatrixBase) else [r])]
    symbols = sorted(set().union(*(sp.sympify(e).free_symbols for e in entries)), key=str)
    rng = random.Random(0)
    for _ in range(tries):
        values = {s: sp.Rational(rng.randint(-97, 97), rng.randint(1, 13)) for s in symbols}
        if any(abs(complex(sp.N(sp.sympify(e).subs(values)))) > 1e-9 for e in entries):
            return values
    return None


def check_axioms(law: Any, model: SymbolicModel) -> list[EquationCheck]:
    """Check every axiom of a group or action exactly; raises ``InterpretationError`` naming the first failure."""
    results = [check_equation(eq, model) for eq in law.axioms]
    for result in results:
        if not result.holds:
            raise InterpretationError(f"the symbolic interpretation of {law!r} fails its axiom {result}")
    return results


def so2(group: Any, action: Any = None) -> SymbolicModel:
    """SO(2) as rotation matrices of a symbolic angle, acting on ``R^2`` (column vectors) if ``action`` is given."""
    boxes: dict[Any, Callable[..., Any]] = {
        group.mul: lambda a, b: a * b,
        group.unit: lambda: sp.eye(2),
        group.inv: lambda a: a.T,
    }
    types: dict[str, Callable[[str], Any]] = {group.ty.atoms[0]: lambda p: rotation(sp.Symbol(f"{p}theta", real=True))}
    if action is not None:
        boxes[action.act] = lambda g, v: g * v
        types[action.space.atoms[0]] = lambda p: vector(p, 2)
    return SymbolicModel(boxes, types)
