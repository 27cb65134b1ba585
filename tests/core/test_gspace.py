"""G-spaces and the typed layer C^G: constructions, evidence, and refusals."""

from __future__ import annotations

import pytest

import markovcat as mc
from markovcat import theorems as proofs
from markovcat.groups import Action, Group, Homomorphism
from markovcat.gspace import Cosets, Equivariant, Evidence, GSpace, NotEquivariant, equivariance_equation
from markovcat.proof import Proof, ProofError
from markovcat.symmetrisation import haar_gamma
from markovcat.syntax import Box, Discard, Id, Ty, TypeMismatch

G = Group("G")
X, Y, Z = Ty("X"), Ty("Y"), Ty("Z")
SX = GSpace(X, Action("act_X", G, X))
SY = GSpace(Y, Action("act_Y", G, Y))
SZ = GSpace(Z, Action("act_Z", G, Z))
REG = GSpace.regular(G)


def test_gspace_checks_its_action() -> None:
    with pytest.raises(TypeMismatch, match="acts on Y, not on X"):
        GSpace(X, SY.action)
    with pytest.raises(TypeError, match="needs an Action"):
        GSpace(X, SY.act)  # type: ignore[arg-type]


def test_regular_trivial_and_unit() -> None:
    assert REG.act == G.mul and REG.ty == G.ty
    triv = GSpace.trivial(X, G)
    assert mc.equal(triv.act, Discard(G.ty) @ Id(X))
    assert all(eq.check() for eq in triv.axioms)
    unit = GSpace.unit(G)
    assert unit.ty == Ty() and unit @ SX is SX and SX @ unit is SX


def test_tensor_is_diagonal_and_associative_up_to_markov_laws() -> None:
    XY = SX @ SY
    assert XY.ty == X @ Y and XY.factors == (SX, SY)
    assert (SX @ SY) @ SZ == SX @ (SY @ SZ)
    assert (SX @ SY) != (SY @ SX)
    with pytest.raises(TypeMismatch, match="a G-space.*a H-space"):
        SX @ GSpace(X, Action("b", Group("H"), X))
    head, rest = (REG @ SX @ SY).split(1)
    assert head == REG and rest == SX @ SY


def test_restriction() -> None:
    H = Group("H")
    phi = Homomorphism("phi", H, G)
    r = SX.restrict(phi)
    assert r.group == H and mc.equal(r.act, (phi.map @ Id(X)) >> SX.act)
    assert (SX @ SY).restrict(phi) == r @ SY.restrict(phi)
    with pytest.raises(TypeMismatch, match="lands in G, not H"):
        r.restrict(phi)


def test_differs_explains_mismatches() -> None:
    other = GSpace(X, Action("other", G, X))
    assert "same type X but different actions" in SX.differs(other)
    assert SX.differs(SX) == ""


def test_equivariance_equation_matches_math() -> None:
    k = Box("k", X, Y)
    eq = equivariance_equation(k, SX, SY)
    assert mc.equal(eq.lhs, (Id(G.ty) @ k) >> SY.act)
    assert mc.equal(eq.rhs, SX.act >> k)
    assert not eq.check()


def test_assume_records_the_reason() -> None:
    k = Box("k", X, Y)
    with pytest.raises(ValueError, match="needs a reason"):
        Equivariant.assume(k, SX, SY, reason=" ")
    m = Equivariant.assume(k, SX, SY, reason="a G-CNN")
    assert m.evidence.kind == "assumption"
    assert [(a.what, a.reason) for a in m.assumptions()] == [("k", "a G-CNN")]


def test_plain_boxes_do_not_enter_silently() -> None:
    k = Box("k", X, Y)
    with pytest.raises(NotEquivariant, match="not equivariant by the Markov laws alone"):
        Equivariant.by_markov(k, SX, SY)
    with pytest.raises(TypeError, match="needs Evidence"):
        Equivariant(k, SX, SY, "trust me")  # type: ignore[arg-type]
    with pytest.raises(TypeMismatch, match="has type X -> Y but was declared"):
        Equivariant.assume(k, SY, SY, reason="r")
    with pytest.raises(ValueError, match="unknown evidence kind"):
        Evidence("vibes", "")


def test_structure_maps_are_equivariant_by_markov_laws() -> None:
    for m in (
        Equivariant.identity(SX),
        Equivariant.copy(SX),
        Equivariant.discard(SX),
        Equivariant.swap(SX, SY),
        Equivariant.copy(SX @ SY),
    ):
        assert m.evidence.kind == "markov" and m.equation.check()


def test_composition_and_tensor_check_g_spaces() -> None:
    f = Equivariant.assume(Box("f", X, Y), SX, SY, reason="f")
    g = Equivariant.assume(Box("g", Y, Z), SY, SZ, reason="g")
    fg = f >> g
    assert (fg.dom, fg.cod) == (SX, SZ) and fg.evidence.kind == "composite"
    assert [a.what for a in fg.assumptions()] == ["f", "g"]
    assert (f @ g).dom == SX @ SY
    twisted = Equivariant.assume(Box("h", Y, Z), GSpace(Y, Action("other_Y", G, Y)), SZ, reason="h")
    with pytest.raises(TypeMismatch, match="cannot compose f .* in C\\^G: .*same type Y but different actions"):
        f >> twisted
    H = Group("H")
    SXH = GSpace(X, Action("a_H", H, X))
    fH = Equivariant.assume(Box("f", X, Y), SXH, GSpace(Y, Action("b_H", H, Y)), reason="f")
    with pytest.raises(TypeMismatch, match="is a G-space.*is a H-space"):
        f >> Equivariant.identity(SXH)
    with pytest.raises(TypeMismatch, match="cannot tensor f \\(in C\\^G\\) with f \\(in C\\^H\\)"):
        f @ fH
    with pytest.raises(TypeError, match="use .diagram to compose in C"):
        f >> Box("g", Y, Z)  # type: ignore[operator]
    with pytest.raises(TypeMismatch, match="one group"):
        Equivariant.assume(Box("f", X, Y), SX, fH.cod, reason="mixed")


def test_obligations_are_checked_for_shape_only() -> None:
    k = Box("k", X, Y)
    eq = equivariance_equation(k, SX, SY)
    m = Equivariant.by_equation(k, SX, SY, eq.reversed())
    assert m.evidence.kind == "obligation" and m.obligations()[0] is not None
    assert (m >> Equivariant.copy(SY)).obligations() == m.obligations()
    with pytest.raises(NotEquivariant, match="does not state that"):
        Equivariant.by_equation(k, SX, SY, mc.Equation(SX.act >> k, SX.act >> k))


def test_by_proof_checks_the_proof_and_its_statement() -> None:
    s = proofs.Setting()
    gamma = haar_gamma(s.X)
    proof = proofs.haar_gamma_equivariant(s)
    m = Equivariant.by_proof(gamma.diagram, s.X, GSpace.regular(s.group), proof)
    assert m.evidence.kind == "proof" and m.evidence.support is proof
    with pytest.raises(NotEquivariant, match="the proof is about diagrams I -> G, but the map is equivariant is"):
        Equivariant.by_proof(gamma.diagram, s.X, GSpace.regular(s.group), proofs.inverse_of_unit(s.group))
    trivial = Proof(gamma.equation.lhs).step(gamma.equation.lhs)  # right type, wrong statement
    with pytest.raises(NotEquivariant, match="does not state that"):
        Equivariant.by_proof(gamma.diagram, s.X, GSpace.regular(s.group), trivial)
    bogus = Proof(gamma.equation.lhs).step(gamma.equation.rhs)  # right statement, step not a Markov law
    with pytest.raises(ProofError, match="step 1"):
        Equivariant.by_proof(gamma.diagram, s.X, GSpace.regular(s.group), bogus)
    with pytest.raises(TypeError, match="use Equivariant.by_equation"):
        Equivariant.by_proof(gamma.diagram, s.X, GSpace.regular(s.group), gamma.equation)


def test_evidence_links_to_shipped_proofs() -> None:
    gamma = haar_gamma(proofs.Setting().X)
    assert gamma.evidence.proof_ref == "haar_gamma_equivariant"
    assert proofs.proof_of(gamma.evidence).check()


def test_cosets() -> None:
    H = Group("H")
    phi = Homomorphism("phi", H, G)
    C = Cosets(phi)
    assert [eq.name for eq in C.axioms] == ["quot equivariant", "section", "representative"]
    assert not any(eq.check() for eq in C.axioms)
    q = C.quotient()
    assert (q.dom, q.cod, q.evidence.kind) == (REG, C.space, "axiom")
    with pytest.raises(TypeError, match="Homomorphism"):
        Cosets(G)  # type: ignore[arg-type]


def test_equivariant_is_immutable() -> None:
    m = Equivariant.identity(SX)
    with pytest.raises(AttributeError):
        m.diagram = Id(Y)  # type: ignore[misc]
