"""Symmetrisation along a homomorphism ``phi : H -> G``.

An ``H``-equivariant ``k`` (for the actions restricted along ``phi``) becomes
``G``-equivariant: ``copy >> ((gamma >> section) @ id) >> sharp(k)`` where ``gamma``
lands in the coset space ``G/phi(H)`` and ``section`` picks a representative; any
representative gives the same result because ``k`` is ``H``-equivariant.  In stages:
first symmetrise over ``H``, then along ``phi``.
"""

from __future__ import annotations

from markovcat.equation import Equation
from markovcat.groups import Group, Homomorphism
from markovcat.gspace import Cosets, Equivariant, GSpace
from markovcat.symmetrisation import sym_along, sym_in_stages
from markovcat.syntax import Box, Diagram

from ._example import SX, SY, X, act_X, k

H = Group("H")
phi = Homomorphism("phi", H, SX.group)
cosets = Cosets(phi)
k_H = Equivariant.assume(k, SX.restrict(phi), SY.restrict(phi), reason="an H-equivariant network")
gamma_bar = Equivariant.assume(Box("gamma_GH", X, cosets.ty), SX, cosets.space, reason="an equivariant coset frame")
gamma_H = Equivariant.assume(Box("gamma_H", X, H.ty), SX.restrict(phi), GSpace.regular(H), reason="an H-frame")


def figures() -> dict[str, Diagram | Equation]:
    figs: dict[str, Diagram | Equation] = {}
    for eq in phi.axioms:
        figs[f"phi_{eq.name.replace(' ', '_')}"] = eq  # type: ignore[union-attr]
    figs["restricted_action"] = act_X.restrict(phi).act
    for eq in cosets.axioms:
        figs[f"cosets_{eq.name.replace(' ', '_')}"] = eq  # type: ignore[union-attr]
    figs["sym_along"] = sym_along(k_H, phi, gamma_bar, cosets, SY).diagram
    figs["sym_in_stages"] = sym_in_stages(k, gamma_H, phi, gamma_bar, cosets, SY).diagram
    return figs
