"""The running example of the gallery: a group ``G`` acting on ``X`` and ``Y``.

``k : X -> Y`` is an arbitrary (stochastic) network, ``gamma : X -> G`` a stochastic
map *assumed* equivariant, ``alpha_X``/``alpha_Y`` the actions (``Y`` linearly).
"""

from __future__ import annotations

from markovcat.groups import Action, Group
from markovcat.gspace import Equivariant, GSpace
from markovcat.syntax import Box, Ty

G = Group("G")
X, Y = Ty("X"), Ty("Y")
alpha_X = Action("alpha_X", G, X)
alpha_Y = Action("alpha_Y", G, Y)
SX = GSpace(X, alpha_X)
SY = GSpace(Y, alpha_Y, linear=True)
REG = GSpace.regular(G)
k = Box("k", X, Y)
gamma_box = Box("gamma", X, G.ty)
gamma = Equivariant.assume(gamma_box, SX, REG, reason="gamma is a stochastically equivariant map X -> (G,*)")
