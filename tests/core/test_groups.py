"""Groups, actions, homomorphisms and products: structure, axioms, and refusals."""

from __future__ import annotations

import pytest

import markovcat as mc
from markovcat.groups import (
    Action,
    Group,
    Homomorphism,
    automorphism_axioms,
    direct_product,
    semidirect_product,
)
from markovcat.syntax import Box, Copy, Discard, Id, Ty, TypeMismatch

X, Y = Ty("X"), Ty("Y")


def same(a: mc.Equation, b: mc.Equation) -> bool:
    return a.name == b.name and len(a.sides) == len(b.sides) and all(map(mc.equal, a.sides, b.sides))


def contains(eqs: tuple[mc.Equation, ...], eq: mc.Equation) -> bool:
    return any(same(e, eq) for e in eqs)


@pytest.fixture
def G() -> Group:
    return Group("G")


@pytest.fixture
def H() -> Group:
    return Group("H")


def test_group_axioms_are_assumptions_not_markov_laws(G: Group) -> None:
    assert [eq.name for eq in G.axioms] == [
        "associativity",
        "left unit",
        "right unit",
        "left inverse",
        "right inverse",
    ]
    for eq in G.axioms:
        assert not eq.check(), eq.name
    assert all(b.deterministic for b in (G.mul, G.unit, G.inv))  # type: ignore[attr-defined]


def test_associativity_is_drawn_as_in_the_seed(G: Group) -> None:
    assoc = G.axioms[0]
    assert mc.equal(assoc.lhs, (G.mul @ Id(G.ty)) >> G.mul)
    assert mc.equal(assoc.rhs, (Id(G.ty) @ G.mul) >> G.mul)


def test_trivial_group_axioms_are_markov_laws() -> None:
    one = Group.trivial()
    assert one.ty == Ty()
    assert all(eq.check() for eq in one.axioms)


def test_group_from_diagrams_is_type_checked(G: Group) -> None:
    with pytest.raises(TypeMismatch, match="the mul of group 'P' must have type"):
        Group("P", ty=G.ty, mul=G.inv, unit=G.unit, inv=G.inv)
    with pytest.raises(ValueError, match="must be deterministic.*noisy"):
        Group("P", ty=G.ty, mul=G.mul, unit=Box("noisy", Ty(), G.ty), inv=G.inv)
    with pytest.raises(TypeError, match="missing unit, inv"):
        Group("P", ty=G.ty, mul=G.mul)


def test_groups_compare_by_structure(G: Group) -> None:
    assert Group("G") == G
    assert Group("H") != G


def test_action_axioms_are_not_markov_laws(G: Group) -> None:
    a = Action("a", G, X)
    assert [eq.name for eq in a.axioms] == ["compatibility", "unit"]
    assert not any(eq.check() for eq in a.axioms)


def test_action_typed_on_the_wrong_group_is_refused(G: Group, H: Group) -> None:
    wrong = Box("a", H.ty @ X, X, deterministic=True)
    with pytest.raises(TypeMismatch, match="action of group G.*it acts with H, not G"):
        Action("a", G, X, act=wrong)
    with pytest.raises(TypeMismatch, match="must have type G @ X -> X"):
        Action("a", G, X, act=Box("b", G.ty @ Y, Y, deterministic=True))
    with pytest.raises(ValueError, match="deterministic"):
        Action("a", G, X, act=Box("c", G.ty @ X, X))
    with pytest.raises(TypeError, match="needs a Group"):
        Action("a", "G", X)  # type: ignore[arg-type]


def test_regular_and_trivial_actions(G: Group) -> None:
    assert Action.regular(G).act == G.mul
    triv = Action.trivial(G, X)
    assert mc.equal(triv.act, Discard(G.ty) @ Id(X))
    assert all(eq.check() for eq in triv.axioms)  # the trivial action's axioms are Markov laws


def test_diagonal_action_copies_g(G: Group) -> None:
    a, b = Action("a", G, X), Action("b", G, Y)
    ab = a.tensor(b)
    assert ab.space == X @ Y

    @mc.program(G.ty @ X @ Y, X @ Y)
    def diagonal(g, x, y):  # type: ignore[no-untyped-def]
        return a.act(g, x), b.act(g, y)

    assert mc.equal(ab.act, diagonal)
    c = Action("c", G, Ty("Z"))
    assert a.tensor(b).tensor(c) == a.tensor(b.tensor(c))  # associative up to Markov laws
    assert a.tensor(Action.trivial(G, Ty())) is a
    with pytest.raises(TypeMismatch, match="needs one group"):
        a.tensor(Action("d", Group("H"), Y))


def test_homomorphism_axioms_and_types(G: Group, H: Group) -> None:
    phi = Homomorphism("phi", H, G)
    assert [eq.name for eq in phi.axioms] == ["preserves multiplication", "preserves unit"]
    assert not any(eq.check() for eq in phi.axioms)
    assert all(eq.check() for eq in Homomorphism.identity(G).axioms)
    with pytest.raises(TypeMismatch, match="declared H -> G.*wrong groups"):
        Homomorphism("psi", H, G, map=Box("psi", G.ty, H.ty, deterministic=True))
    with pytest.raises(ValueError, match="deterministic"):
        Homomorphism("psi", H, G, map=Box("psi", H.ty, G.ty))
    with pytest.raises(TypeError, match="must be a Group"):
        Homomorphism("psi", H, G.ty)  # type: ignore[arg-type]


def test_homomorphisms_compose_only_when_they_meet(G: Group, H: Group) -> None:
    K = Group("K")
    phi, psi = Homomorphism("phi", H, G), Homomorphism("psi", G, K)
    both = phi.then(psi)
    assert (both.source, both.target) == (H, K)
    assert mc.equal(both.map, phi.map >> psi.map)
    with pytest.raises(TypeMismatch, match="phi lands in G but phi starts at H"):
        phi.then(phi)


def test_restriction_along_a_homomorphism(G: Group, H: Group) -> None:
    a = Action("a", G, X)
    phi = Homomorphism("phi", H, G)
    r = a.restrict(phi)
    assert r.group == H
    assert mc.equal(r.act, (phi.map @ Id(X)) >> a.act)
    assert a.restrict(Homomorphism.identity(G)) == a
    with pytest.raises(TypeMismatch, match="lands in G, not H"):
        Action("b", H, X).restrict(phi)


def test_direct_product_is_built_from_the_factors(G: Group, H: Group) -> None:
    P = direct_product(G, H)
    assert P.ty == G.ty @ H.ty
    assert {b.name for b in P.mul.boxes} == {"G.mul", "H.mul"}
    assert len(P.premises) == 10 and all(map(same, P.premises, G.axioms + H.axioms))
    assert not any(eq.check() for eq in P.axioms)
    for i in (0, 1):  # projections are homomorphisms by the Markov laws alone
        assert all(eq.check() for eq in P.projection(i).axioms)
    assert not P.inclusion(0).axioms[0].check()  # needs e e = e


def test_semidirect_product(G: Group, H: Group) -> None:
    theta = Action("theta", H, G.ty)
    S = semidirect_product(G, H, theta)
    assert S.ty == G.ty @ H.ty
    assert {b.name for b in S.mul.boxes} == {"G.mul", "H.mul", "theta"}

    @mc.program(S.ty @ S.ty, S.ty)
    def mul(n1, h1, n2, h2):  # type: ignore[no-untyped-def]
        return G.mul(n1, theta.act(h1, n2)), H.mul(h1, h2)

    @mc.program(S.ty, S.ty)
    def inv(n, h):  # type: ignore[no-untyped-def]
        hi = H.inv(h)
        return theta.act(hi, G.inv(n)), hi

    assert mc.equal(S.mul, mul) and mc.equal(S.inv, inv)
    assert all(contains(S.premises, eq) for eq in automorphism_axioms(theta, G) + theta.axioms)
    assert all(eq.check() for eq in S.projection().axioms)
    trivial = semidirect_product(G, H, Action.trivial(H, G.ty))
    assert mc.equal(trivial.mul, direct_product(G, H).mul)  # a trivial twist is the direct product


def test_semidirect_product_refuses_a_misplaced_twist(G: Group, H: Group) -> None:
    with pytest.raises(TypeMismatch, match="action of G, but the acting group is H"):
        semidirect_product(G, H, Action("theta", G, G.ty))
    with pytest.raises(TypeMismatch, match="acts on X, not on the object G of group G"):
        semidirect_product(G, H, Action("theta", H, X))


def test_automorphism_axioms_shape(G: Group, H: Group) -> None:
    theta = Action("theta", H, G.ty)
    mul_eq, unit_eq = automorphism_axioms(theta, G)

    @mc.program(H.ty @ G.ty @ G.ty, G.ty)
    def split(h, n1, n2):  # type: ignore[no-untyped-def]
        return G.mul(theta.act(h, n1), theta.act(h, n2))

    assert mc.equal(mul_eq.rhs, split)
    assert mc.equal(unit_eq.rhs, Discard(H.ty) >> G.unit)
    assert not mul_eq.check()
    assert Copy(H.ty).cod == H.ty @ H.ty
