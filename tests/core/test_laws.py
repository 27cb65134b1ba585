"""The laws of a Markov category hold under ``mc.equal``; non-laws are rejected.

Every law is checked on random diagrams (hypothesis), and every verdict of
``mc.equal`` is cross-checked against exact semantics in FinStoch: equal diagrams
must have equal stochastic matrices (soundness), and for stochastic boxes with
generic random matrices, unequal diagrams have different matrices.
"""

from __future__ import annotations

import numpy as np
from hypothesis import assume, given, settings
from hypothesis import strategies as st

import markovcat as mc
from markovcat.backends.finstoch import evaluate, random_model
from markovcat.strategies import SIGNATURE, diagrams, duplicate_node, law_variants, rewired, types

SIZES = {"A": 2, "B": 3}
A, B, I = mc.Ty("A"), mc.Ty("B"), mc.Ty()  # noqa: E741
Q = mc.Box("q", A @ A, A)  # stochastic, not symmetric in its inputs
MODEL = random_model([b.generator for b in (*SIGNATURE, Q)], SIZES, seed=1)
STOCH = [b for b in SIGNATURE if not b.deterministic]
DET = [b for b in SIGNATURE if b.deterministic]


def semantics(d: mc.Diagram) -> np.ndarray:
    return evaluate(d, MODEL, SIZES)


def cost(d: mc.Diagram) -> int:
    """Roughly the work of evaluating ``d`` exactly: the number of wire assignments."""
    atoms = list(d.dom.atoms) + [a for n in d.nodes for a in n.gen.cod.atoms] + list(d.cod.atoms)
    return int(np.prod([SIZES[a] for a in atoms]))


def same(a: mc.Diagram, b: mc.Diagram) -> bool:
    """Equal under mc.equal, and (where small enough to evaluate) equal matrices."""
    assert mc.equal(a, b), mc.explain(a, b)
    if max(cost(a), cost(b)) <= 200_000:
        np.testing.assert_allclose(semantics(a), semantics(b), atol=1e-12)
    return True


small = settings(max_examples=60, deadline=None)


# -- symmetric monoidal category ----------------------------------------------------
@small
@given(st.data())
def test_associativity_and_units(data: st.DataObject) -> None:
    a = data.draw(diagrams())
    b = data.draw(diagrams(dom=a.cod))
    c = data.draw(diagrams(dom=b.cod))
    same((a >> b) >> c, a >> (b >> c))
    same(mc.Id(a.dom) >> a, a)
    same(a >> mc.Id(a.cod), a)
    x, y = data.draw(diagrams(max_layers=3)), data.draw(diagrams(max_layers=3))
    same((a @ x) @ y, a @ (x @ y))
    same(a @ mc.Id(I), a)
    same(mc.Id(I) @ a, a)


@small
@given(st.data())
def test_interchange(data: st.DataObject) -> None:
    a = data.draw(diagrams(max_layers=4))
    b = data.draw(diagrams(dom=a.cod, max_layers=4))
    c = data.draw(diagrams(max_layers=4))
    d = data.draw(diagrams(dom=c.cod, max_layers=4))
    same((a @ c) >> (b @ d), (a >> b) @ (c >> d))


@small
@given(st.data())
def test_swap_laws(data: st.DataObject) -> None:
    a, b = data.draw(diagrams(max_layers=4)), data.draw(diagrams(max_layers=4))
    same((a @ b) >> mc.Swap(a.cod, b.cod), mc.Swap(a.dom, b.dom) >> (b @ a))
    same(mc.Swap(a.dom, b.dom) >> mc.Swap(b.dom, a.dom), mc.Id(a.dom @ b.dom))
    x, y, z = (data.draw(types()) for _ in range(3))
    same(mc.Swap(x, y @ z), (mc.Swap(x, y) @ mc.Id(z)) >> (mc.Id(y) @ mc.Swap(x, z)))


# -- commutative comonoids, compatible with the tensor -------------------------------
@small
@given(types(), types())
def test_comonoid_laws(x: mc.Ty, y: mc.Ty) -> None:
    copy, i = mc.Copy(x), mc.Id(x)
    same(copy >> (copy @ i), copy >> (i @ copy))
    same(copy >> (i @ mc.Discard(x)), i)
    same(copy >> (mc.Discard(x) @ i), i)
    same(copy >> mc.Swap(x, x), copy)
    same(copy >> (copy @ i), mc.Copy(x, 3))
    same(
        mc.Copy(x @ y),
        (mc.Copy(x) @ mc.Copy(y)) >> (mc.Id(x) @ mc.Swap(x, y) @ mc.Id(y)),
    )
    same(mc.Discard(x @ y), mc.Discard(x) @ mc.Discard(y))


def test_unit_type() -> None:
    same(mc.Copy(I), mc.Id(I))
    same(mc.Discard(I), mc.Id(I))
    same(mc.Copy(A, 1), mc.Id(A))
    same(mc.Copy(A, 0), mc.Discard(A))


# -- Markov and determinism -------------------------------------------------------------
@small
@given(diagrams())
def test_discard_naturality(d: mc.Diagram) -> None:
    """Anything into the unit type equals discard (I is terminal)."""
    same(d >> mc.Discard(d.cod), mc.Discard(d.dom))


@small
@given(st.data())
def test_copy_naturality_for_deterministic(data: st.DataObject) -> None:
    d = data.draw(diagrams(signature=DET))
    same(d >> mc.Copy(d.cod), mc.Copy(d.dom) >> (d @ d))


@settings(max_examples=100, deadline=None)
@given(st.data())
def test_random_law_chains(data: st.DataObject) -> None:
    d = data.draw(diagrams())
    variant = data.draw(law_variants(d))
    same(d, variant)
    nf = mc.normal_form(d)
    same(d, nf)
    assert mc.normal_form(nf) == nf, "normal forms are idempotent"
    assert mc.normal_form(variant) == nf


@small
@given(st.data())
def test_congruence(data: st.DataObject) -> None:
    x = data.draw(diagrams(max_layers=3))
    a = data.draw(diagrams(dom=x.cod))
    a2 = data.draw(law_variants(a))
    c = data.draw(diagrams(dom=a.cod))
    p = data.draw(diagrams(max_layers=3))
    q = data.draw(diagrams(max_layers=3))
    same(x >> a >> c, x >> a2 >> c)
    same((p @ a) @ q, (p @ a2) @ q)
    same((mc.Id(p.dom) @ a) >> (p @ mc.Id(a.cod)), p @ a2)


# -- non-laws ---------------------------------------------------------------------------
def differ(a: mc.Diagram, b: mc.Diagram) -> None:
    assert not mc.equal(a, b)
    assert max(cost(a), cost(b)) <= 200_000
    assert not np.allclose(semantics(a), semantics(b)), "generic matrices should tell these apart"
    assert not mc.explain(a, b).startswith("They are equal")


def test_copy_naturality_fails_for_a_stochastic_box() -> None:
    k = SIGNATURE[4]
    differ(k >> mc.Copy(B), mc.Copy(A) >> (k @ k))
    assert "stochastic" in mc.explain(k >> mc.Copy(B), mc.Copy(A) >> (k @ k))


def test_discard_is_not_identity() -> None:
    s = SIGNATURE[7]  # a state I -> A
    differ(mc.Discard(A) >> s, mc.Id(A))


def test_box_inputs_are_ordered() -> None:
    differ(mc.Swap(A, A) >> Q, Q)


def test_two_draws_are_not_one_draw_copied() -> None:
    s = SIGNATURE[7]
    differ(s >> mc.Copy(A), mc.Copy(I) >> (s @ s))


@settings(max_examples=100, deadline=None)
@given(st.data())
def test_splitting_a_live_stochastic_draw_is_not_a_law(data: st.DataObject) -> None:
    d = mc.normal_form(data.draw(diagrams(signature=STOCH, max_layers=8)))
    uses = d.uses()
    shared = [
        i for i, n in enumerate(d.nodes) if n.gen.cod and sum(len(uses[w]) for w in n.outs) >= 2
    ]
    assume(shared and cost(d) <= 200_000)
    index = data.draw(st.sampled_from(shared))
    node = d.nodes[index]
    total = sum(len(uses[w]) for w in node.outs)
    cut = data.draw(st.integers(1, total - 1))
    flags = [False] * cut + [True] * (total - cut)
    # flags follow the order in which duplicate_node meets the uses
    variant = duplicate_node(d, index, flags + [False] * 100)
    assert not mc.equal(d, variant)
    assert not np.allclose(semantics(d), semantics(variant))


# -- completeness spot check: different normal forms, different matrices ----------------
@settings(max_examples=60, deadline=None)
@given(st.data())
def test_stochastic_normal_forms_are_separated_by_generic_matrices(data: st.DataObject) -> None:
    a = data.draw(diagrams(signature=STOCH, max_layers=6))
    b = data.draw(rewired(data.draw(rewired(a))))
    assume(max(cost(a), cost(b)) <= 200_000)
    if mc.equal(a, b):
        np.testing.assert_allclose(semantics(a), semantics(b), atol=1e-12)
    else:
        assert not np.allclose(semantics(a), semantics(b), atol=1e-9), mc.explain(a, b)
