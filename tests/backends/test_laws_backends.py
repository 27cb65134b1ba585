"""The law spec on every backend that can run it: equal diagrams mean the same in Set, sympy and torch.

``test_laws.py`` decides the laws with ``mc.equal`` and cross-checks them in FinStoch.  Here the
same diagram strategies (:mod:`markovcat.strategies`) draw deterministic diagrams and
law-rewritten variants of them (dead boxes, duplicated deterministic boxes, reordered term
graphs): each pair is equal under ``mc.equal``, and must give the same values in the Set
backend (:mod:`markovcat.backends.python`, integers mod 7), exactly equal expressions in the
sympy backend (uninterpreted functions: a proof for every interpretation of the boxes), and the
same tensors, bit for bit, from the compiled torch models.  A diagram and a rewiring of it that
``mc.equal`` rejects gives different sympy expressions (the symbolic semantics separates them).
Only deterministic boxes: equality of stochastic diagrams is equality in law, which FinStoch
checks exactly in ``test_laws.py``.
"""

from __future__ import annotations

import pytest
import sympy as sp
from hypothesis import assume, given, settings
from hypothesis import strategies as st

import markovcat as mc
from markovcat.backends import python as set_backend
from markovcat.backends import sympy as sym_backend
from markovcat.strategies import SIGNATURE, diagrams, law_variants, rewired

DET = [b for b in SIGNATURE if b.deterministic]  # f : A -> B, g : B -> A @ B, m : A @ A -> A, e : I -> B
BY_NAME = {b.name: b for b in DET}

# Set: integers mod 7, none of the maps symmetric or constant along an input
SET = {"f": lambda a: (3 * a + 1) % 7, "g": lambda b: ((2 * b) % 7, (b + 5) % 7), "m": lambda a, c: (5 * a + c + 1) % 7,
       "e": lambda: 4}
# sympy: uninterpreted functions, so equal expressions hold for every interpretation
F, G1, G2, M = (sp.Function(n) for n in ("f", "g1", "g2", "m"))
SYMBOLIC = {"f": F, "g": lambda b: (G1(b), G2(b)), "m": M, "e": lambda: sp.Symbol("e")}

small = settings(max_examples=25, deadline=None)


def _inputs(d: mc.Diagram, base: int) -> list[int]:
    return [(base + 3 * i) % 7 for i in range(len(d.dom))]


def _symbols(d: mc.Diagram) -> list[sp.Symbol]:
    return [sp.Symbol(f"x{i}_{atom}") for i, atom in enumerate(d.dom.atoms)]


def _as_tuple(value: object, d: mc.Diagram) -> tuple[object, ...]:
    return value if len(d.cod) != 1 else (value,)  # type: ignore[return-value]


@small
@given(st.data())
def test_equal_diagrams_mean_the_same_in_set_and_sympy(data: st.DataObject) -> None:
    d = data.draw(diagrams(signature=DET, max_layers=6))
    variant = data.draw(law_variants(d, signature=DET))
    assert mc.equal(d, variant), mc.explain(d, variant)
    for base in range(3):
        args = _inputs(d, base)
        assert set_backend.evaluate(d, SET, *args) == set_backend.evaluate(variant, SET, *args)
    symbols = _symbols(d)
    assert _as_tuple(sym_backend.evaluate(d, SYMBOLIC, *symbols), d) == \
        _as_tuple(sym_backend.evaluate(variant, SYMBOLIC, *symbols), variant)


@small
@given(st.data())
def test_diagrams_equal_tells_apart_mean_different_things_in_sympy(data: st.DataObject) -> None:
    d = data.draw(diagrams(signature=DET, max_layers=6))
    other = data.draw(rewired(d))
    assume(not mc.equal(d, other))
    symbols = _symbols(d)
    assert _as_tuple(sym_backend.evaluate(d, SYMBOLIC, *symbols), d) != \
        _as_tuple(sym_backend.evaluate(other, SYMBOLIC, *symbols), other)


torch = pytest.importorskip("torch")
mct = pytest.importorskip("markovcat.backends.torch")

TORCH = {"f": lambda a: torch.sin(a) + 2 * a, "g": lambda b: (b * b - 1, torch.cos(b)),
         "m": lambda a, c: 3 * a - c * c, "e": lambda *, like: torch.full_like(like, 0.5)}
SPECS = {"A": mct.Spec(()), "B": mct.Spec(())}


@settings(max_examples=10, deadline=None)
@given(st.data())
def test_equal_diagrams_compile_to_the_same_torch_values(data: st.DataObject) -> None:
    d = data.draw(diagrams(signature=DET, max_layers=5))
    variant = data.draw(law_variants(d, signature=DET))
    assume(len(d.cod) > 0)
    x = [torch.linspace(-1, 1, 4, dtype=torch.float64) + i for i in range(len(d.dom))]
    one, two = (mct.compile(side, mct.Interpretation(TORCH, SPECS), check=False) for side in (d, variant))
    batch = {} if x else {"batch_size": 4}
    a, b = _as_tuple(one(*x, **batch), d), _as_tuple(two(*x, **batch), variant)
    assert all(torch.equal(p, q) for p, q in zip(a, b, strict=True))
