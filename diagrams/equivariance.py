"""Equivariance of ``k : X -> Y`` as one equation.

``act_X >> k == (id_G @ k) >> act_Y``: in Set ``k(g.x) = g.k(x)``; in Stoch an
equality of distributions ``k(dy | g.x) = g.k(dy | x)``.  For an arbitrary box it is
not a Markov law: equivariance is a property, stated or proved.
"""

from __future__ import annotations

from markovcat.equation import Equation
from markovcat.gspace import equivariance_equation
from markovcat.syntax import Diagram

from ._example import SX, SY, k


def figures() -> dict[str, Diagram | Equation]:
    eq = equivariance_equation(k, SX, SY)
    return {"equivariance": Equation(eq.rhs, eq.lhs, name="k is equivariant")}
