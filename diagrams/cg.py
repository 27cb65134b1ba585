"""The Markov category ``C^G``.

Copy, discard and swap are equivariant for every action: their equivariance
equations are Markov laws, because actions are deterministic.  Composites and
tensors of equivariant maps are equivariant; ``C^G`` records this as evidence.
"""

from __future__ import annotations

from markovcat.equation import Equation
from markovcat.gspace import Equivariant
from markovcat.syntax import Box, Diagram

from ._example import SX, SY, X, Y


def figures() -> dict[str, Diagram | Equation]:
    f = Equivariant.assume(Box("f", X, Y), SX, SY, reason="an equivariant layer")
    h = Equivariant.assume(Box("h", Y, Y), SY, SY, reason="an equivariant layer")
    return {
        "copy_equivariant": Equivariant.copy(SX).equation,
        "discard_equivariant": Equivariant.discard(SX).equation,
        "swap_equivariant": Equivariant.swap(SX, SY).equation,
        "composite": (f >> Equivariant.copy(SY) >> (h @ Equivariant.identity(SY))).diagram,
    }
