"""Recursive gamma (Cornish 2024, sec. 5): gamma is itself a symmetrised network.

``gamma = sym_haar(net) : (X,a) -> (G,*)`` for any ``net : X -> G`` taking outsourced
noise ``eta``: ``R0 ~ Haar; g = R0 . net(R0^-1 . x, eta)``.  It is a C^G morphism by
construction (sym of anything is), so ``sym(k, gamma)`` is equivariant.
"""

from __future__ import annotations

from markovcat.equation import Equation
from markovcat.symmetrisation import haar_gamma, recursive_gamma, sym, with_noise
from markovcat.syntax import Box, Diagram, Ty

from ._example import SX, SY, G, X, k

E = Ty("E")
eta = Box("eta", Ty(), E)
net = Box("net", X @ E, G.ty, deterministic=True)
gamma_rec = recursive_gamma(with_noise(net, eta), haar_gamma(SX))


def figures() -> dict[str, Diagram | Equation]:
    return {
        "gamma": gamma_rec.diagram,
        "sym_recursive": sym(k, gamma_rec, SY).diagram,
    }
