"""Symmetrisation ``sym_gamma(k) = copy >> (gamma @ id) >> sharp(k)``.

In Stoch: ``G ~ gamma(x); Y ~ k(G^-1.x); return G.Y``; in Set (deterministic gamma)
canonicalisation ``gamma(x).k(gamma(x)^-1.x)``.  The program form equals the
combinator form in the free Markov category (checked).  Stability and equivariance
of the result need the axioms: proofs (c), (d) in ``markovcat.theorems``.
"""

from __future__ import annotations

from markovcat.equation import Equation
from markovcat.gspace import Equivariant
from markovcat.proof import Proof
from markovcat.symmetrisation import precomposition, sym, sym_program
from markovcat.syntax import Box, Diagram

from ._example import SX, SY, X, Y, gamma, k

#: An equivariant k, for stability.
k_eq = Equivariant.assume(Box("k_eq", X, Y), SX, SY, reason="an already equivariant network")


def figures() -> dict[str, Diagram | Equation]:
    s = sym(k, gamma, SY)
    return {
        "sym": s.diagram,
        "program_form": Equation(sym_program(k, gamma, SY), s.diagram, name="program = combinators"),
        "precomposition": precomposition(gamma).diagram,
        "gamma_equivariant": gamma.equation,
        "stability": Equation(sym(k_eq.diagram, gamma, SY).diagram, k_eq.diagram, name="sym(k) = k for equivariant k"),
        "sym_equivariant": s.equation,
    }


def proofs() -> dict[str, Proof]:
    """The shipped proofs about this construction (``markovcat.theorems``), unchecked."""
    from markovcat import theorems as proofs

    s = proofs.Setting(group=SX.group, X=SX, Y=SY, k=k, gamma=gamma.diagram)
    stable = proofs.Setting(group=SX.group, X=SX, Y=SY, k=k_eq.diagram, gamma=gamma.diagram)
    return {
        "sym_stable": proofs.sym_stable(stable, gamma),
        "sym_equivariant": proofs.sym_equivariant(s, gamma),
    }
