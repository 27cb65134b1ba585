"""Symmetrisation built from the adjunction ``F -| U : C^G -> C`` (Cornish 2024).

The bijection ``C(X, Y) ~= C^G((G,*) @ (X,a), (Y,b))`` sends ``k`` to

    sharp(k) = shear^-1 >> F(k) >> counit
             = "copy g; one copy through inv acts on x; apply k; the other copy acts"

where ``shear^-1 : (G,*) @ (X,a) -> (G,*) @ (X,triv)`` is ``(g, x) |-> (g, g^-1.x)``,
``F(k) = id_G @ k`` and the counit at ``(Y,b)`` is ``b`` itself.  Each piece is a
morphism of ``C^G`` with its evidence, so ``sharp(k)`` is a ``C^G`` morphism by
construction; ``flat(m) = (unit @ id) >> m`` goes back.  A symmetrisation is

    sym(k, gamma) = copy_X >> (gamma @ id_X) >> sharp(k)

for a ``C^G`` morphism ``gamma : (X,a) -> (G,*)``; in Stoch: ``G ~ gamma(x);
Y ~ k(G^-1.x); return G.Y``.  Also here: symmetrisation along a homomorphism, in
stages, recursive gamma (``gamma = sym(net, haar)``), Haar gamma, and ``ave``.

What the evidence proves: a ``C^G`` morphism built here is equivariant *given* the
axioms it lists (:meth:`Equivariant.axioms_used`) and assumptions
(:meth:`Equivariant.assumptions`); the general theorems are proved once, as
diagram rewrites, in ``markovcat.theorems``.  Nothing here checks that concrete
boxes satisfy those axioms: the backends test that numerically.

>>> from markovcat.syntax import Ty, Box
>>> from markovcat.groups import Action
>>> G = Group("G")
>>> X = GSpace(Ty("X"), Action("act_X", G, Ty("X")))
>>> Y = GSpace(Ty("Y"), Action("act_Y", G, Ty("Y")))
>>> gamma = Equivariant.assume(Box("gamma", Ty("X"), G.ty), X, GSpace.regular(G), reason="learned frame")
>>> s = sym(Box("k", Ty("X"), Ty("Y")), gamma, Y)
>>> s.dom == X and s.cod == Y
True
>>> try:
...     sym(Box("k", Ty("X"), Ty("Y")), Equivariant.identity(X), Y)
... except TypeMismatch as error:
...     print(error)
gamma must be a C^G morphism into (G, *) = GSpace.regular(G), but its codomain is (X, act_X): \
(X, act_X) has type X but (G, *) has type G
"""

from __future__ import annotations

from typing import Any

from markovcat.groups import Group, Homomorphism
from markovcat.groups import _diagram as _plain_diagram
from markovcat.gspace import Cosets, Equivariant, Evidence, GSpace, equivariance_equation
from markovcat.markov import MarkedKernel, NormalForm, equal
from markovcat.program import program
from markovcat.syntax import Box, Copy, Diagram, Generator, Id, Ty, TypeMismatch

__all__ = [
    "shear_inverse",
    "free",
    "counit",
    "sharp",
    "flat",
    "precomposition",
    "sym",
    "sym_program",
    "sym_along",
    "sym_in_stages",
    "haar",
    "haar_gamma",
    "recursive_gamma",
    "with_noise",
    "ave",
    "Average",
    "averaged",
]


def _space(x: object, what: str) -> GSpace:
    if not isinstance(x, GSpace):
        raise TypeError(f"{what} must be a GSpace, got {type(x).__name__} {x!r}")
    return x


def _diagram(k: object, what: str) -> Diagram:
    if isinstance(k, Equivariant):
        raise TypeError(f"{what} must be a plain morphism of C (a Diagram), got the C^G morphism {k.name}; "
                        "pass its .diagram")
    return _plain_diagram(k, what)


def _label(d: Diagram, default: str) -> str:
    return getattr(d, "_name", None) or default


# -- the adjunction --------------------------------------------------------------------
def shear_inverse(space: GSpace) -> Equivariant:
    """``(G,*) @ (X,a) -> (G,*) @ (X,triv)``, ``(g, x) |-> (g, g^-1.x)``: an iso of ``C^G``.

    Its equivariance needs the group and action axioms (``h g (h g)^-1 h . x = ...``).
    """
    _space(space, "shear_inverse's space")
    G, X = space.group, space.ty
    d = (Copy(G.ty) @ Id(X)) >> (Id(G.ty) @ ((G.inv @ Id(X)) >> space.act))
    dom = GSpace.regular(G) @ space
    cod = GSpace.regular(G) @ GSpace.trivial(X, G)
    ev = Evidence(
        "theorem",
        "the shear (g, x) |-> (g, g^-1.x) is equivariant",
        axioms=G.axioms + space.axioms,
        proof_ref="shear_equivariant",
    )
    return Equivariant(d, dom, cod, ev, name=f"shear^-1{space}")


def free(k: Diagram, group: Group) -> Equivariant:
    """``F(k) = id_G @ k : (G,*) @ (X,triv) -> (G,*) @ (Y,triv)``, the free functor on ``k``."""
    _diagram(k, "k")
    G = group
    dom = GSpace.regular(G) @ GSpace.trivial(k.dom, G)
    cod = GSpace.regular(G) @ GSpace.trivial(k.cod, G)
    return Equivariant.by_markov(Id(G.ty) @ k, dom, cod, name=f"F({_label(k, 'k')})")


def counit(space: GSpace) -> Equivariant:
    """``b : (G,*) @ (Y,triv) -> (Y,b)``; its equivariance is the action's compatibility axiom."""
    _space(space, "the counit's space")
    G = space.group
    dom = GSpace.regular(G) @ GSpace.trivial(space.ty, G)
    eq = equivariance_equation(space.act, dom, space)
    compat = space.axioms[0]
    assert equal(eq.lhs, compat.rhs) and equal(eq.rhs, compat.lhs), "counit equation is the compatibility axiom"
    ev = Evidence("axiom", f"compatibility of {space.action.name!r} with {G.name}.mul", axioms=(compat,))
    return Equivariant(space.act, dom, space, ev, name=f"counit{space}")


def sharp(k: Diagram, dom: GSpace, cod: GSpace) -> Equivariant:
    """``k# : (G,*) @ (X,a) -> (Y,b)``, ``(g, x) |-> g . k(g^-1 . x)``, from the adjunction.

    Built as ``shear_inverse(dom) >> free(k) >> counit(cod)`` in ``C^G``: copy ``g``;
    one copy through ``inv`` acts on ``x``; apply ``k``; the other copy acts on the result.
    """
    _diagram(k, "k")
    _space(dom, "the domain of sharp")
    _space(cod, "the codomain of sharp")
    if dom.group != cod.group:
        raise TypeMismatch(f"sharp needs one group: the domain {dom} is a {dom.group.name}-space, "
                           f"the codomain {cod} a {cod.group.name}-space")
    if k.dom != dom.ty or k.cod != cod.ty:
        raise TypeMismatch(f"k has type {k.dom} -> {k.cod} but sharp was asked for {dom} -> {cod}, "
                           f"i.e. {dom.ty} -> {cod.ty}")
    m = shear_inverse(dom) >> free(k, dom.group) >> counit(cod)
    ev = Evidence("composite", "the adjunction: shear^-1 >> F(k) >> counit", premises=m.evidence.premises,
                  proof_ref="sharp_equivariant")
    return Equivariant(m.diagram, m.dom, m.cod, ev, name=f"{_label(k, 'k')}#")


def flat(m: Equivariant) -> Diagram:
    """``m |-> (unit @ id_X) >> m`` for ``m : (G,*) @ (X,a) -> (Y,b)``: the inverse of :func:`sharp`."""
    if not isinstance(m, Equivariant):
        raise TypeError(f"flat takes a C^G morphism (Equivariant) (G,*) @ (X,a) -> (Y,b), got {type(m).__name__}")
    G = m.group
    head, rest = m.dom.split(1) if m.dom.factors else (GSpace.unit(G), GSpace.unit(G))
    if head != GSpace.regular(G):
        raise TypeMismatch(f"flat needs a domain (G,*) @ (X,a), but {m.name} has domain {m.dom}")
    return (G.unit @ Id(rest.ty)) >> m.diagram


# -- symmetrisation --------------------------------------------------------------------
def _check_gamma(gamma: object, group: Group | None = None) -> Equivariant:
    if not isinstance(gamma, Equivariant):
        hint = ""
        if isinstance(gamma, Diagram):
            hint = (": it is a plain diagram; declare it with Equivariant.assume(gamma, dom, GSpace.regular(G), "
                    "reason=...) or prove it (Equivariant.by_proof)")
        raise TypeError(f"gamma must be a C^G morphism (Equivariant) (X,a) -> (G,*), got {type(gamma).__name__}{hint}")
    regular = GSpace.regular(gamma.group)
    if gamma.cod != regular:
        raise TypeMismatch(
            f"gamma must be a C^G morphism into {regular} = GSpace.regular({gamma.group.name}), but its codomain "
            f"is {gamma.cod}: {gamma.cod.differs(regular)}"
        )
    if group is not None and gamma.group != group:
        raise TypeMismatch(f"gamma is a C^{gamma.group.name} morphism but a C^{group.name} one is needed")
    return gamma


def precomposition(gamma: Equivariant) -> Equivariant:
    """``Gamma = copy_X >> (gamma @ id_X) : (X,a) -> (G,*) @ (X,a)``."""
    gamma = _check_gamma(gamma)
    X = gamma.dom
    return Equivariant.copy(X) >> (gamma @ Equivariant.identity(X))


def sym(k: Diagram, gamma: Equivariant, cod: GSpace) -> Equivariant:
    """``sym_gamma(k) = copy >> (gamma @ id) >> sharp(k) : (X,a) -> (Y,b)`` in ``C^G``.

    ``gamma`` must be a ``C^G`` morphism ``(X,a) -> (G,*)`` (else a clear error).

    >>> from markovcat import Action, Box, Equivariant, Group, GSpace, Ty
    >>> G, X, Y = Group("G"), Ty("X"), Ty("Y")
    >>> SX, SY = GSpace(X, Action("act_X", G, X)), GSpace(Y, Action("act_Y", G, Y))
    >>> gamma = Equivariant.assume(Box("gamma", X, G.ty), SX, GSpace.regular(G), reason="gamma is equivariant")
    >>> s = sym(Box("k", X, Y), gamma, SY)
    >>> s
    <Equivariant sym_gamma(k) : (X, act_X) -> (Y, act_Y) (composite)>
    >>> [a.what for a in s.assumptions()]  # what its equivariance rests on
    ['gamma']
    """
    gamma = _check_gamma(gamma)
    _space(cod, "the codomain of sym")
    _diagram(k, "k")
    if k.dom != gamma.dom.ty:
        raise TypeMismatch(f"k has domain {k.dom} but gamma's domain is {gamma.dom} (type {gamma.dom.ty})")
    m = precomposition(gamma) >> sharp(k, gamma.dom, cod)
    name = f"sym_{gamma.name}({_label(k, 'k')})"
    ev = Evidence("composite", "copy >> (gamma @ id) >> k#", premises=m.evidence.premises, proof_ref="sym_equivariant")
    return Equivariant(m.diagram, m.dom, m.cod, ev, name=name)


def _call(d: Diagram, *wires: Any) -> tuple[Any, ...]:
    out = d(*wires)
    return out if isinstance(out, tuple) else (() if out is None else (out,))


def sym_program(k: Diagram, gamma: Equivariant, cod: GSpace) -> Diagram:
    """The seed's sampling program ``G ~ gamma(x); Y ~ k(G^-1 . x); return G . Y`` (a plain diagram).

    Equal to ``sym(k, gamma, cod).diagram`` in the free Markov category.
    """
    gamma = _check_gamma(gamma)
    dom, G = gamma.dom, gamma.group

    def body(*x: Any) -> Any:
        g = _call(gamma.diagram, *x)
        y = _call(k, *_call(dom.act, *_call(G.inv, *g), *x))
        return _call(cod.act, *g, *y)

    body.__name__ = f"sym_{gamma.name}({_label(k, 'k')})"
    return program(dom.ty, cod.ty)(body)


def sym_along(k: Equivariant, phi: Homomorphism, gamma: Equivariant, cosets: Cosets, cod: GSpace) -> Equivariant:
    """Symmetrisation along ``phi : H -> G``: an H-equivariant ``k`` in, a G-equivariant map out.

    ``k : U_phi(X,a) -> U_phi(Y,b)`` in ``C^H``; ``gamma : (X,a) -> (G/phi(H), *)`` in
    ``C^G``; result ``copy >> ((gamma >> section) @ id) >> k#``.  Any representative of the
    coset works because ``k`` is H-equivariant (the cosets' ``representative`` axiom).
    With ``phi`` the inclusion of the trivial group this is :func:`sym`.
    """
    if not isinstance(phi, Homomorphism):
        raise TypeError(f"sym_along needs a Homomorphism, got {type(phi).__name__}")
    if not isinstance(k, Equivariant):
        raise TypeError(f"k must be a C^{phi.source.name} morphism (Equivariant), got {type(k).__name__}")
    if not isinstance(cosets, Cosets) or cosets.phi != phi:
        raise TypeMismatch(f"cosets must be Cosets({phi.name}), got {cosets!r}")
    if not isinstance(gamma, Equivariant) or gamma.cod != cosets.space:
        got = gamma.cod if isinstance(gamma, Equivariant) else type(gamma).__name__
        raise TypeMismatch(f"gamma must be a C^{phi.target.name} morphism into {cosets.space}, got codomain {got}")
    _space(cod, "the codomain of sym_along")
    dom = gamma.dom
    for side, mine, want in (("domain", k.dom, dom.restrict(phi)), ("codomain", k.cod, cod.restrict(phi))):
        if mine != want:
            raise TypeMismatch(
                f"k must be a C^{phi.source.name} morphism between the restrictions along {phi.name}; its {side} "
                f"is {mine}, expected {want}: {mine.differs(want)}"
            )
    lift = gamma.diagram >> cosets.section
    d = (Copy(dom.ty) >> (lift @ Id(dom.ty))) >> sharp(k.diagram, dom, cod).diagram
    ev = Evidence(
        "theorem",
        f"symmetrisation along {phi.name}: k is {phi.source.name}-equivariant, gamma lands in the cosets",
        premises=(k, gamma),
        axioms=phi.target.axioms + dom.axioms + cod.axioms + phi.axioms + cosets.axioms,
    )
    return Equivariant(d, dom, cod, ev, name=f"sym_{phi.name}({k.name})")


def sym_in_stages(
    k: Diagram,
    gamma_h: Equivariant,
    phi: Homomorphism,
    gamma: Equivariant,
    cosets: Cosets,
    cod: GSpace,
) -> Equivariant:
    """First symmetrise over ``H`` with ``gamma_h``, then along ``phi : H -> G``.

    ``gamma_h : U_phi(X,a) -> (H,*)`` in ``C^H``; e.g. ``E(d)``: centre (``T(d)``), then rotate.
    """
    gamma_h = _check_gamma(gamma_h, phi.source)
    inner = sym(k, gamma_h, cod.restrict(phi))
    return sym_along(inner, phi, gamma, cosets, cod)


# -- gamma constructions --------------------------------------------------------------
def haar(group: Group, name: str | None = None) -> Equivariant:
    """``lambda : (I, triv) -> (G,*)``, a Haar draw, *assumed* left-invariant (compact ``G``).

    Its equivariance equation is the seed's appendix: ``(id_G @ lambda) >> mul == del_G >> lambda``.
    """
    lam = Box(name or f"lambda_{group.name}", Ty(), group.ty)
    return Equivariant.assume(lam, GSpace.unit(group), GSpace.regular(group),
                              reason=f"left-invariance of the Haar measure on compact {group.name}")


def haar_gamma(space: GSpace, lam: Equivariant | None = None) -> Equivariant:
    """``gamma = del_X >> lambda`` (ignores ``x``): the Haar gamma of a compact group."""
    _space(space, "haar_gamma's space")
    lam = haar(space.group) if lam is None else lam
    g = Equivariant.discard(space) >> lam
    ev = Evidence("composite", g.evidence.detail, premises=g.evidence.premises, proof_ref="haar_gamma_equivariant")
    return Equivariant(g.diagram, g.dom, g.cod, ev, name=f"haar_{space.group.name}")


def with_noise(net: Diagram, noise: Diagram) -> Diagram:
    """``x |-> net(x, eta)`` with ``eta ~ noise : I -> E``: ``(id_X @ noise) >> net``."""
    if noise.dom != Ty():
        raise TypeMismatch(f"noise must be a state I -> E, got {noise.dom} -> {noise.cod}")
    X = net.dom[: len(net.dom) - len(noise.cod)]
    if net.dom != X @ noise.cod:
        raise TypeMismatch(f"net must take X @ {noise.cod}, got {net.dom}")
    return (Id(X) @ noise) >> net


def recursive_gamma(net: Diagram, base: Equivariant) -> Equivariant:
    """``gamma = sym_base(net) : (X,a) -> (G,*)``: symmetrise a gamma-network ``net : X -> G``.

    With ``base = haar_gamma(X)``: ``R0 ~ Haar; g = R0 . net(R0^-1 . x)`` (Cornish sec. 5;
    SymDiff's ``R = R0 f(R0^T z, eta)`` with ``net = with_noise(f, eta)``).  The order
    matters: ``R0`` multiplies on the left, as the adjunction dictates.
    """
    base = _check_gamma(base)
    g = sym(net, base, GSpace.regular(base.group))
    return Equivariant(g.diagram, g.dom, g.cod, g.evidence, name=f"rec_{base.name}({_label(net, 'net')})")


# -- averaging -------------------------------------------------------------------------

class Average(Equivariant):
    """``ave(m)``: a deterministic box ``ave(name) : X -> Y`` marking ``E[m(x)]``.

    Design: the free Markov category has no expectation, so ``ave`` is a *marked
    box*: backends interpret a box made by :func:`ave` as the expectation (exact or
    Monte Carlo) of :attr:`body`, the kernel it averages (look it up with
    :func:`averaged`).  Equivariance needs ``m`` equivariant and the action on ``Y``
    linear (``E[g.Y] = g.E[Y]``), recorded as an assumption on the codomain.
    """

    __slots__ = ("body",)
    body: Diagram
    """The kernel ``X -> Y`` whose expectation the box stands for."""

    def __init__(self, box: Box, m: Equivariant) -> None:
        lin = Equivariant.assume(Id(m.cod.ty), m.cod, m.cod, reason=f"{m.group.name} acts linearly on {m.cod}",
                                 name="linearity")
        ev = Evidence("theorem", "E[g.Y] = g.E[Y] for a linear action", premises=(m, lin))
        super().__init__(box, m.dom, m.cod, ev, name=box.name)
        object.__setattr__(self, "body", m.diagram)


def ave(m: Equivariant, name: str | None = None) -> Average:
    """``ave(m)(x) = E[m(x)]`` for a C^G morphism into a linear G-space (see :class:`Average`).

    The box is named ``name`` or ``ave(<m's name>)`` and carries the normal form of
    ``m``'s diagram as its data, so averages of equal kernels are the same box, and two
    different averages under one name clash (as any two boxes named alike do) when
    used in one diagram.
    """
    if not isinstance(m, Equivariant):
        raise TypeError(f"ave takes a C^G morphism (Equivariant), got {type(m).__name__}")
    if not m.cod.linear:
        raise TypeMismatch(f"ave needs a linear action on the output, but {m.cod} is not marked linear "
                           "(GSpace(..., linear=True))")
    box = Box(name or f"ave({m.name})", m.dom.ty, m.cod.ty, deterministic=True,
              data=MarkedKernel("ave", NormalForm.of(m.diagram)))
    return Average(box, m)


def averaged(box: Diagram | Generator) -> Diagram | None:
    """The kernel averaged by an ``ave`` box (``None`` if the box is not one): its :class:`MarkedKernel` ``"ave"``."""
    return MarkedKernel.of(box, "ave")

