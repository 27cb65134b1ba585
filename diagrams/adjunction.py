"""The bijection ``C(X, Y) ~= C^G((G,*) @ (X,a), (Y,b))``.

``sharp(k)``: copy ``g``; one copy through ``inv`` acts on ``x``; apply ``k``; the
other copy acts on the result.  It is ``shear^-1 >> F(k) >> counit``, the adjunction
``F -| U``.  ``flat(m) = (unit @ id) >> m``.  That they are inverse needs the group
and action axioms (proofs (a) in ``markovcat.theorems``), not just Markov laws.
"""

from __future__ import annotations

from markovcat.equation import Equation
from markovcat.gspace import Equivariant, GSpace
from markovcat.proof import Proof
from markovcat.symmetrisation import counit, flat, free, sharp, shear_inverse
from markovcat.syntax import Box, Diagram

from ._example import SX, SY, G, X, Y, k

#: A generic C^G morphism (G,*) @ (X,a) -> (Y,b), to show flat.
m = Equivariant.assume(Box("m", G.ty @ X, Y), GSpace.regular(G) @ SX, SY, reason="a generic C^G morphism")


def figures() -> dict[str, Diagram | Equation]:
    k_sharp = sharp(k, SX, SY)
    return {
        "sharp": k_sharp.diagram,
        "shear_inverse": shear_inverse(SX).diagram,
        "free": free(k, G).diagram,
        "counit": counit(SY).diagram,
        "flat": flat(m),
        "flat_sharp": Equation(flat(k_sharp), k, name="flat(sharp(k)) = k"),
        "sharp_flat": Equation(sharp(flat(m), SX, SY).diagram, m.diagram, name="sharp(flat(m)) = m"),
        "sharp_equivariant": k_sharp.equation,
    }


def proofs() -> dict[str, Proof]:
    """The shipped proofs about this construction (``markovcat.theorems``), unchecked."""
    from markovcat import theorems as proofs

    s = proofs.Setting(group=G, X=SX, Y=SY, k=k)
    return {
        "flat_sharp": proofs.flat_sharp(s),
        "sharp_flat": proofs.sharp_flat(s, m.diagram),
        "sharp_equivariant": proofs.sharp_equivariant(s),
    }
