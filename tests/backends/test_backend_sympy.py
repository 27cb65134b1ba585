"""The exact backend: group and action axioms, and equivariance of sharp(k), decided symbolically."""

from __future__ import annotations

import pytest
import sympy as sp

from markovcat import Box, Copy, Ty
from markovcat.backends import sympy as msp
from markovcat.backends.python import InterpretationError
from markovcat.groups import Action, Group
from markovcat.gspace import GSpace, equivariance_equation
from markovcat.symmetrisation import sharp

G, V = Group("SO2"), Ty("V")
rot = Action("rot", G, V)


def test_so2_rotations_satisfy_the_group_and_action_axioms_exactly() -> None:
    results = msp.check_axioms(G, msp.so2(G, rot)) + msp.check_axioms(rot, msp.so2(G, rot))
    assert [r.name for r in results] == [eq.name for eq in G.axioms + rot.axioms]
    assert all(r.holds for r in results)


def test_sharp_of_a_symbolic_linear_map_is_equivariant() -> None:
    k = Box("k", V, V, deterministic=True)
    K = msp.matrix("K", 2, 2)
    model = msp.so2(G, rot) | msp.SymbolicModel({k: lambda v: K * v})
    space = GSpace(V, rot)
    k_sharp = sharp(k, space, space)
    check = msp.check_equation(equivariance_equation(k_sharp.diagram, k_sharp.dom, k_sharp.cod), model)
    assert check.holds, str(check)
    # k itself is not equivariant for a generic K (only for K commuting with rotations)
    plain = msp.check_equation(equivariance_equation(k, space, space), model)
    assert not plain.holds and plain.refuted and "FAILS (non-zero at" in str(plain)
    # ... but it is for K = a I + b J
    a, b = sp.symbols("a b", real=True)
    commuting = msp.so2(G, rot) | msp.SymbolicModel({k: lambda v: sp.Matrix([[a, -b], [b, a]]) * v})
    assert msp.check_equation(equivariance_equation(k, space, space), commuting).holds


def test_a_wrong_action_is_caught() -> None:
    reflect = sp.Matrix([[1, 0], [0, -1]])
    wrong = msp.so2(G, rot) | msp.SymbolicModel({rot.act: lambda g, v: reflect * g * v})
    with pytest.raises(InterpretationError, match="fails its axiom"):
        msp.check_axioms(rot, wrong)
    assert not msp.check_equation(rot.axioms[0], wrong).holds  # compatibility: reflections do not compose
    assert msp.check_equation(rot.axioms[1], wrong).holds is False  # and the identity does not act trivially
    broken_inverse = msp.so2(G) | msp.SymbolicModel({G.inv: lambda a: a})
    assert not msp.check_equation(G.axioms[3], broken_inverse).holds


def test_stochastic_boxes_and_missing_types_are_refused() -> None:
    k = Box("k", V, V)
    with pytest.raises(InterpretationError, match="box 'k' is stochastic"):
        msp.evaluate(k, {k: lambda v: v}, msp.vector("x", 2))
    with pytest.raises(InterpretationError, match="type 'W' has no generic symbolic element"):
        W = Ty("W")
        f = Box("f", W, W, deterministic=True)
        from markovcat.equation import Equation

        msp.check_equation(Equation(f, f >> Copy(W) >> Box("m", W @ W, W, deterministic=True)),
                           msp.SymbolicModel({f: lambda w: w}))
