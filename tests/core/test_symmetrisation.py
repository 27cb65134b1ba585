"""sharp, flat, sym and its variants: built from the adjunction, typed in C^G, refusing bad input."""

from __future__ import annotations

from typing import Any

import pytest

import markovcat as mc
from markovcat import theorems as proofs
from markovcat.groups import Action, Group, Homomorphism
from markovcat.gspace import Cosets, Equivariant, GSpace
from markovcat.markov import equal
from markovcat.symmetrisation import (
    ave,
    averaged,
    counit,
    flat,
    free,
    haar,
    haar_gamma,
    recursive_gamma,
    sharp,
    shear_inverse,
    sym,
    sym_along,
    sym_in_stages,
    sym_program,
    with_noise,
)
from markovcat.syntax import Box, Discard, Id, Ty, TypeMismatch

G = Group("G")
X, Y = Ty("X"), Ty("Y")
SX = GSpace(X, Action("act_X", G, X))
SY = GSpace(Y, Action("act_Y", G, Y), linear=True)
REG = GSpace.regular(G)
k = Box("k", X, Y)
gamma = Equivariant.assume(Box("gamma", X, G.ty), SX, REG, reason="an equivariant gamma")


@mc.program(G.ty @ X, Y)
def seed_sharp(g: Any, x: Any) -> Any:
    """The seed's picture: copy g; one copy through inv acts on x; apply k; the other acts."""
    return SY.act(g, k(SX.act(G.inv(g), x)))


def test_sharp_is_the_seed_diagram_in_cg() -> None:
    s = sharp(k, SX, SY)
    assert (s.dom, s.cod) == (REG @ SX, SY)
    assert mc.equal(s.diagram, seed_sharp)
    assert mc.equal(s.diagram, (shear_inverse(SX) >> free(k, G) >> counit(SY)).diagram)
    kinds = [m.evidence.kind for m in s.walk()]
    assert kinds.count("theorem") == 1 and "axiom" in kinds and "markov" in kinds
    assert proofs.proof_of(s.evidence).check()  # proofs.sharp_equivariant


def test_adjunction_pieces() -> None:
    assert free(k, G).evidence.kind == "markov"  # F(k) is equivariant by Markov laws
    c = counit(SY)
    assert c.evidence.kind == "axiom" and c.evidence.axioms[0].name == "compatibility"
    sh = shear_inverse(SX)
    assert sh.cod == REG @ GSpace.trivial(X, G)


def test_flat_inverts_sharp_only_with_the_axioms() -> None:
    back = flat(sharp(k, SX, SY))
    assert back.dom == X and back.cod == Y
    assert not mc.equal(back, k)  # needs the unit axioms: not a Markov law
    setting = proofs.Setting(group=G, X=SX, Y=SY, k=k)
    proof = proofs.flat_sharp(setting)
    assert proof.check() and mc.equal(proof.start, back) and mc.equal(proof.end, k)


def test_flat_refuses_a_domain_without_the_regular_factor() -> None:
    with pytest.raises(TypeMismatch, match=r"flat needs a domain \(G,\*\) @ \(X,a\)"):
        flat(gamma)
    with pytest.raises(TypeError, match="flat takes a C\\^G morphism"):
        flat(k)  # type: ignore[arg-type]


def test_sym_program_and_combinator_forms_agree() -> None:
    s = sym(k, gamma, SY)
    assert (s.dom, s.cod) == (SX, SY)

    @mc.program(X, Y)
    def seed_program(x: Any) -> Any:
        g = gamma.diagram(x)  # G ~ gamma(x)
        y = k(SX.act(G.inv(g), x))  # Y ~ k(G^-1 . x)
        return SY.act(g, y)  # return G . Y

    assert mc.equal(s.diagram, seed_program)
    assert mc.equal(s.diagram, sym_program(k, gamma, SY))
    assert mc.equal(s.diagram, mc.Copy(X) >> (gamma.diagram @ Id(X)) >> seed_sharp)
    assert [a.what for a in s.assumptions()] == ["gamma"]
    assert {eq.name for eq in s.axioms_used()} >= {"associativity", "left inverse", "compatibility", "unit"}


def test_sym_refuses_bad_gammas() -> None:
    with pytest.raises(TypeError, match="plain diagram; declare it with Equivariant.assume"):
        sym(k, gamma.diagram, SY)  # type: ignore[arg-type]
    into_x = Equivariant.assume(Box("h", X, X), SX, SX, reason="r")
    with pytest.raises(TypeMismatch, match=r"into \(G, \*\) = GSpace.regular\(G\), but its codomain is \(X, act_X\)"):
        sym(k, into_x, SY)
    other_action = GSpace(G.ty, Action("conj", G, G.ty))
    g2 = Equivariant.assume(Box("gamma", X, G.ty), SX, other_action, reason="r")
    with pytest.raises(TypeMismatch, match="same type G but different actions"):
        sym(k, g2, SY)
    H = Group("H")
    gH = Equivariant.assume(Box("gH", X, H.ty), GSpace(X, Action("a", H, X)), GSpace.regular(H), reason="r")
    with pytest.raises(TypeMismatch, match="H-space"):
        sym(k, gH, SY)
    with pytest.raises(TypeMismatch, match="k has domain Y"):
        sym(Box("k2", Y, Y), gamma, SY)
    with pytest.raises(TypeError, match="got the C\\^G morphism gamma; pass its .diagram"):
        sym(gamma, gamma, SY)  # type: ignore[arg-type]


def test_sym_over_the_trivial_group_is_k_by_markov_laws() -> None:
    one = Group.trivial()
    X1, Y1 = GSpace.trivial(X, one), GSpace.trivial(Y, one)
    g = Equivariant.discard(X1)
    assert g.cod == GSpace.regular(one)
    assert mc.equal(sym(k, g, Y1).diagram, k)


def test_stability_and_equivariance_proofs_for_this_gamma() -> None:
    setting = proofs.Setting(group=G, X=SX, Y=SY, k=k, gamma=gamma.diagram)
    stable = proofs.sym_stable(setting, gamma)
    assert stable.check() and mc.equal(stable.start, sym(k, gamma, SY).diagram)
    eqv = proofs.sym_equivariant(setting, gamma)
    assert eqv.check()
    m = Equivariant.by_proof(sym(k, gamma, SY).diagram, SX, SY, eqv)
    assert m.evidence.kind == "proof"


def test_haar_gamma() -> None:
    lam = haar(G)
    invariance = lam.equation  # the seed's appendix: (id_G @ lambda) >> mul == del_G >> lambda
    assert mc.equal(invariance.lhs, (Id(G.ty) @ lam.diagram) >> G.mul)
    assert mc.equal(invariance.rhs, Discard(G.ty) >> lam.diagram)
    hg = haar_gamma(SX, lam)
    assert mc.equal(hg.diagram, Discard(X) >> lam.diagram)
    assert [a.what for a in hg.assumptions()] == ["lambda_G"]
    assert proofs.proof_of(hg.evidence).check()


def test_recursive_gamma_is_symdiffs_order() -> None:
    E = Ty("E")
    eta, f = Box("eta", Ty(), E), Box("f", X @ E, G.ty, deterministic=True)
    rg = recursive_gamma(with_noise(f, eta), haar_gamma(SX))
    assert (rg.dom, rg.cod) == (SX, REG)
    lam = haar(G).diagram

    @mc.program(X, G.ty)
    def symdiff(z: Any) -> Any:  # R = R0 . f(R0^T z, eta)
        r0 = lam()
        return G.mul(r0, f(SX.act(G.inv(r0), z), eta()))

    @mc.program(X, G.ty)
    def wrong(z: Any) -> Any:  # R = f(R0^T z, eta) . R0
        r0 = lam()
        return G.mul(f(SX.act(G.inv(r0), z), eta()), r0)

    assert mc.equal(rg.diagram, symdiff)
    assert not mc.equal(rg.diagram, wrong)
    assert [a.what for a in sym(k, rg, SY).assumptions()] == ["lambda_G"]
    with pytest.raises(TypeMismatch, match="noise must be a state"):
        with_noise(f, Box("bad", X, E))


def test_sym_along_a_homomorphism() -> None:
    H = Group("H")
    phi = Homomorphism("phi", H, G)
    C = Cosets(phi)
    kH = Equivariant.assume(k, SX.restrict(phi), SY.restrict(phi), reason="H-equivariant k")
    gbar = Equivariant.assume(Box("gbar", X, C.ty), SX, C.space, reason="coset gamma")
    s = sym_along(kH, phi, gbar, C, SY)
    assert (s.dom, s.cod, s.group) == (SX, SY, G)

    @mc.program(X, Y)
    def expected(x: Any) -> Any:
        g = C.section(gbar.diagram(x))
        return SY.act(g, k(SX.act(G.inv(g), x)))

    assert mc.equal(s.diagram, expected)
    assert {a.what for a in s.assumptions()} == {"k", "gbar"}
    kG = Equivariant.assume(k, SX, SY, reason="G-equivariant")
    with pytest.raises(TypeMismatch, match="restrictions along phi; its domain is"):
        sym_along(kG, phi, gbar, C, SY)
    with pytest.raises(TypeMismatch, match="into \\(G/phi, \\*\\)"):
        sym_along(kH, phi, gamma, C, SY)
    with pytest.raises(TypeMismatch, match="Cosets\\(phi\\)"):
        sym_along(kH, phi, gbar, Cosets(Homomorphism("psi", H, G)), SY)


def test_sym_in_stages() -> None:
    H = Group("H")
    phi = Homomorphism("phi", H, G)
    C = Cosets(phi)
    gH = Equivariant.assume(Box("gH", X, H.ty), SX.restrict(phi), GSpace.regular(H), reason="H-frame")
    gbar = Equivariant.assume(Box("gbar", X, C.ty), SX, C.space, reason="coset frame")
    s = sym_in_stages(k, gH, phi, gbar, C, SY)
    assert (s.dom, s.cod) == (SX, SY)
    assert {a.what for a in s.assumptions()} == {"gH", "gbar"}
    with pytest.raises(TypeMismatch, match="C\\^G morphism but a C\\^H one is needed"):
        sym_in_stages(k, gamma, phi, gbar, C, SY)


def test_ave() -> None:
    f = Box("f", X, Y, deterministic=True)
    s = sym(f, gamma, SY)
    a = ave(s)
    assert a.diagram.is_deterministic and len(a.diagram) == 1
    body = averaged(a.diagram)
    assert body is not None and equal(body, s.diagram) and averaged(k) is None
    assert (a.dom, a.cod) == (SX, SY)
    assert any("acts linearly" in x.reason for x in a.assumptions())
    assert ave(sym(f, gamma, SY)).diagram == a.diagram  # same name, equal body: the same box
    named = ave(sym(k, gamma, SY), name=a.name)  # a different kernel under a used name
    kernel = averaged(named.diagram)
    assert kernel is not None and not equal(kernel, s.diagram)
    with pytest.raises(ValueError, match="two different boxes are both named"):
        a.diagram @ named.diagram
    stochastic_f = Box("f", X, Y)  # same name and type as f, a different box
    twin = ave(sym(stochastic_f, gamma, SY))
    assert twin.diagram != a.diagram
    with pytest.raises(TypeMismatch, match="not marked linear"):
        ave(Equivariant.identity(SX))
