"""Deterministic symmetrisation by averaging.

``ave(m)(x) = E[m(x)]`` for a C^G morphism into a linearly acted ``Y``.  The free
Markov category has no expectation, so ``ave(m)`` is a marked deterministic box;
backends interpret it as the expectation of the kernel it averages
(:func:`markovcat.symmetrisation.averaged`).  For deterministic ``f`` that kernel is,
as a diagram, the sampling program ``G ~ gamma(x); return G.f(G^-1.x)``: Kim et al.
(learned gamma) and Puny et al. (gamma uniform on a frame).
"""

from __future__ import annotations

from markovcat.equation import Equation
from markovcat.gspace import Equivariant
from markovcat.proof import Proof
from markovcat.symmetrisation import ave, sym
from markovcat.syntax import Box, Diagram
from markovcat.theorems import kim_kernel

from ._example import REG, SX, SY, G, X, Y, k

f = Box("f", X, Y, deterministic=True)
frame = Equivariant.assume(Box("unif_F", X, G.ty), SX, REG, reason="uniform on an equivariant frame F(x)")


def kim_formula(gamma: Equivariant) -> Diagram:
    """The kernel inside ``E_{G ~ gamma(x)}[G . f(G^-1 . x)]`` as a program (:func:`~markovcat.theorems.kim_kernel`)."""
    return kim_kernel(f, gamma, SX, SY)


def figures() -> dict[str, Diagram | Equation]:
    averaged = ave(sym(f, frame, SY))
    return {
        "ave_box": averaged.diagram,
        "averaged_kernel": Equation(averaged.body, kim_formula(frame), name="ave(sym(f)) averages G.f(G^-1.x)"),
        "ave_equivariant": averaged.equation,
    }


def proofs() -> dict[str, Proof]:
    """The shipped proofs about this construction (``markovcat.theorems``), unchecked."""
    from markovcat import theorems as proofs

    s = proofs.Setting(group=G, X=SX, Y=SY, k=f)
    # frame averaging is stated for the running example's k, the letter its left side names
    return {
        "ave_sym": proofs.ave_sym(s, frame),
        "frame_averaging": proofs.frame_averaging(proofs.Setting(group=G, X=SX, Y=SY, k=k)),
    }
