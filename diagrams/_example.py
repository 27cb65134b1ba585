"""The running example of the gallery: a group ``G`` acting on ``X`` and ``Y``.

``k : X -> Y`` is an arbitrary (stochastic) network, ``gamma : X -> G`` a stochastic
map *assumed* equivariant, ``act_X``/``act_Y`` the actions (``Y`` linearly).  Actions are
labelled ``act_<space>`` throughout the gallery, as in the library's own defaults.
"""

from __future__ import annotations

from markovcat.groups import Action, Group
from markovcat.gspace import Equivariant, GSpace
from markovcat.syntax import Box, Ty

G = Group("G")
X, Y = Ty("X"), Ty("Y")
act_X = Action("act_X", G, X)
act_Y = Action("act_Y", G, Y)
SX = GSpace(X, act_X)
SY = GSpace(Y, act_Y, linear=True)
REG = GSpace.regular(G)
k = Box("k", X, Y)
gamma_box = Box("gamma", X, G.ty)
gamma = Equivariant.assume(gamma_box, SX, REG, reason="gamma is a stochastically equivariant map X -> (G,*)")
