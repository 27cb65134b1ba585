"""Haar gamma for a compact group.

``gamma := del_X >> lambda`` with ``lambda : (I, triv) -> (G,*)`` assumed
left-invariant: ``(id_G @ lambda) >> mul == del_G >> lambda``.  Then ``sym`` is
stable and equivariant (proof (e)); Haar averaging of ``sym`` is Janossy pooling for
``S_n``.
"""

from __future__ import annotations

from markovcat.equation import Equation
from markovcat.proof import Proof
from markovcat.symmetrisation import haar, haar_gamma, sym
from markovcat.syntax import Box, Diagram

from ._example import SX, SY, G, k

lam = haar(G)
gamma_haar = haar_gamma(SX, lam)


def figures() -> dict[str, Diagram | Equation]:
    return {
        "gamma": Equation(Box("gamma", SX.ty, G.ty), gamma_haar.diagram, name="gamma := del >> lambda"),
        "left_invariance": lam.equation,
        "gamma_equivariant": gamma_haar.equation,
        "sym_haar": sym(k, gamma_haar, SY).diagram,
    }


def proofs() -> dict[str, Proof]:
    """The shipped proofs about this construction (``markovcat.theorems``), unchecked."""
    from markovcat import theorems as proofs

    s = proofs.Setting(group=G, X=SX, Y=SY, k=k)
    return {
        "haar_gamma_equivariant": proofs.haar_gamma_equivariant(s),
        "haar_sym_stable": proofs.haar_sym_stable(s),
        "haar_sym_equivariant": proofs.haar_sym_equivariant(s),
    }
