"""The shipped proofs: the adjunction, equivariance and stability of ``sym``, Haar, averaging.

Every function returns a :class:`~markovcat.proof.Proof`; ``proof.check()`` verifies
it step by step (see :mod:`markovcat.proof` for what that does and does not prove),
and ``proof.assumptions()`` lists the equations it rests on: group and action
axioms, and the hypotheses named in each docstring.  The proofs are about generic
boxes (a group ``G``, actions ``act_X``, ``act_Y``, a stochastic ``k : X -> Y``, a
stochastic ``gamma : X -> G``), so they hold for every interpretation satisfying
those equations; pass a :class:`Setting` to state them for other boxes.

Lemmas (proved once, then cited as rules): :func:`inverse_of_unit`,
:func:`double_inverse`, :func:`cancel_product`, :func:`inverse_of_product`,
:func:`act_cancel`, :func:`act_cancel_inverse`.  Theorems: (a) :func:`flat_sharp`,
:func:`sharp_flat`; (b) :func:`sharp_equivariant`; (c) :func:`sym_stable`;
(d) :func:`sym_equivariant`; (e) :func:`haar_gamma_equivariant`,
:func:`haar_sym_stable`, :func:`haar_sym_equivariant`; (f) :func:`ave_sym`,
:func:`frame_averaging`, :func:`haar_averaging`.  Also: :func:`shear_equivariant` (the
first factor of ``sharp`` in ``C^G``) and :func:`recursive_gamma_equivariant` (Cornish
sec. 5, SymDiff).  :func:`all_proofs` lists them all.

>>> all(p.check() for p in all_proofs().values())
True
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from markovcat.equation import Equation
from markovcat.groups import Action, Group
from markovcat.gspace import Equivariant, Evidence, GSpace, equivariance_equation
from markovcat.markov import MarkedKernel, NormalForm
from markovcat.program import program
from markovcat.proof import Proof, describe
from markovcat.rewrite import Rule
from markovcat.symmetrisation import Average, ave, flat, haar, haar_gamma, sharp, shear_inverse, sym
from markovcat.syntax import Box, Diagram, Ty

__all__ = [
    "Setting",
    "inverse_of_unit",
    "double_inverse",
    "cancel_product",
    "inverse_of_product",
    "act_cancel",
    "act_cancel_inverse",
    "flat_sharp",
    "sharp_flat",
    "sharp_equivariant",
    "shear_equivariant",
    "sym_stable",
    "sym_equivariant",
    "haar_gamma_equivariant",
    "haar_sym_stable",
    "haar_sym_equivariant",
    "expectation",
    "ave_definition",
    "ave_sym",
    "kim_kernel",
    "frame_averaging",
    "haar_averaging",
    "recursive_gamma_equivariant",
    "all_proofs",
    "proof_of",
]


def _generic_group() -> Group:
    return Group("G")


@dataclass(frozen=True, init=False)
class Setting:
    """The generic data the theorems are about: ``G``, ``(X, act_X)``, ``(Y, act_Y)``, ``k``, ``gamma``.

    ``k`` and ``gamma`` are stochastic boxes with no assumed property; each theorem
    states which equations it assumes about them.  Each field left out gets its generic
    value: ``G``, ``(X, act_X)``, ``(Y, act_Y)`` (linear), ``k : X -> Y``, ``gamma : X -> G``.
    """

    group: Group
    """The group ``G`` (default: a generic group ``G``)."""
    X: GSpace
    """``(X, act_X)`` (default: a generic space of ``group``)."""
    Y: GSpace
    """``(Y, act_Y)`` (default: a generic space of ``group``, acted on linearly)."""
    k: Diagram
    """The kernel ``k : X -> Y`` (default: a generic stochastic box)."""
    gamma: Diagram
    """The box ``gamma : X -> G`` (default: a generic stochastic box)."""

    def __init__(self, group: Group | None = None, X: GSpace | None = None, Y: GSpace | None = None,  # noqa: N803
                 k: Diagram | None = None, gamma: Diagram | None = None) -> None:
        G = _generic_group() if group is None else group
        X = GSpace(Ty("X"), Action("act_X", G, Ty("X"))) if X is None else X
        Y = GSpace(Ty("Y"), Action("act_Y", G, Ty("Y")), linear=True) if Y is None else Y
        values = {"group": G, "X": X, "Y": Y, "k": Box("k", X.ty, Y.ty) if k is None else k,
                  "gamma": Box("gamma", X.ty, G.ty) if gamma is None else gamma}
        for name, value in values.items():
            object.__setattr__(self, name, value)

    def gamma_morphism(self) -> Equivariant:
        """``gamma`` as a morphism of ``C^G`` (its equivariance is an assumption)."""
        assert self.gamma is not None
        return Equivariant.assume(self.gamma, self.X, GSpace.regular(self.group), reason="gamma is equivariant")


def _axiom(equations: tuple[Equation, ...], name: str) -> Equation:
    for eq in equations:
        if eq.name == name:
            return eq
    raise KeyError(name)  # pragma: no cover


def _backward(eq: Equation | Proof) -> Rule:
    return eq.as_rule("backward") if isinstance(eq, Proof) else Rule(eq, "backward")


def _prog(dom: Ty, cod: Ty, name: str) -> Callable[[Callable[..., Any]], Diagram]:
    def build(function: Callable[..., Any]) -> Diagram:
        function.__name__ = name
        return program(dom, cod)(function)

    return build


# -- group lemmas ---------------------------------------------------------------------------
def inverse_of_unit(group: Group | None = None) -> Proof:
    """``inv(e) = e``, from the unit and inverse axioms."""
    G = group or _generic_group()
    T, ax = G.ty, G.axioms

    @_prog(Ty(), T, "e . inv(e)")
    def middle() -> Any:
        e = G.unit()
        return G.mul(e, G.inv(e))

    return (
        Proof(G.unit >> G.inv, name=f"inv(e) = e in {G.name}")
        .step(middle, by=_backward(_axiom(ax, "left unit")))
        .step(G.unit, by=_axiom(ax, "right inverse"))
    )


def double_inverse(group: Group | None = None) -> Proof:
    """``inv(inv(g)) = g``, from the group axioms."""
    G = group or _generic_group()
    T, ax, mul, inv, unit = G.ty, G.axioms, G.mul, G.inv, G.unit

    @_prog(T, T, "e . inv(inv g)")
    def d1(g: Any) -> Any:
        return mul(unit(), inv(inv(g)))

    @_prog(T, T, "(g inv g) inv(inv g)")
    def d2(g: Any) -> Any:
        return mul(mul(g, inv(g)), inv(inv(g)))

    @_prog(T, T, "g (inv g inv(inv g))")
    def d3(g: Any) -> Any:
        return mul(g, mul(inv(g), inv(inv(g))))

    @_prog(T, T, "g e")
    def d4(g: Any) -> Any:
        return mul(g, unit())

    return (
        Proof(inv >> inv, name=f"inv(inv g) = g in {G.name}")
        .step(d1, by=_backward(_axiom(ax, "left unit")))
        .step(d2, by=_backward(_axiom(ax, "right inverse")))
        .step(d3, by=_axiom(ax, "associativity"))
        .step(d4, by=_axiom(ax, "right inverse"))
        .step(program(T, T)(lambda g: g), by=_axiom(ax, "right unit"))
    )


def cancel_product(group: Group | None = None) -> Proof:
    """``inv(h g) h = inv(g)`` (as diagrams ``G @ G -> G``; ``h`` is discarded on the right)."""
    G = group or _generic_group()
    T, ax, mul, inv, unit = G.ty, G.axioms, G.mul, G.inv, G.unit

    @_prog(T @ T, T, "inv(h g) h")
    def d0(h: Any, g: Any) -> Any:
        return mul(inv(mul(h, g)), h)

    @_prog(T @ T, T, "(inv(h g) h) e")
    def d1(h: Any, g: Any) -> Any:
        return mul(mul(inv(mul(h, g)), h), unit())

    @_prog(T @ T, T, "(inv(h g) h)(g inv g)")
    def d2(h: Any, g: Any) -> Any:
        return mul(mul(inv(mul(h, g)), h), mul(g, inv(g)))

    @_prog(T @ T, T, "((inv(h g) h) g) inv g")
    def d3(h: Any, g: Any) -> Any:
        return mul(mul(mul(inv(mul(h, g)), h), g), inv(g))

    @_prog(T @ T, T, "(inv(h g)(h g)) inv g")
    def d4(h: Any, g: Any) -> Any:
        return mul(mul(inv(mul(h, g)), mul(h, g)), inv(g))

    @_prog(T @ T, T, "e inv g")
    def d5(h: Any, g: Any) -> Any:
        return mul(unit(), inv(g))

    @_prog(T @ T, T, "inv g")
    def d6(h: Any, g: Any) -> Any:
        return inv(g)

    return (
        Proof(d0, name=f"inv(h g) h = inv g in {G.name}")
        .step(d1, by=_backward(_axiom(ax, "right unit")))
        .step(d2, by=_backward(_axiom(ax, "right inverse")))
        .step(d3, by=_backward(_axiom(ax, "associativity")))
        .step(d4, by=_axiom(ax, "associativity"))
        .step(d5, by=_axiom(ax, "left inverse"))
        .step(d6, by=_axiom(ax, "left unit"))
    )


def inverse_of_product(group: Group | None = None) -> Proof:
    """``inv(h g) = inv(g) inv(h)``, via :func:`cancel_product`."""
    G = group or _generic_group()
    T, ax, mul, inv, unit = G.ty, G.axioms, G.mul, G.inv, G.unit

    @_prog(T @ T, T, "inv(h g) e")
    def d1(h: Any, g: Any) -> Any:
        return mul(inv(mul(h, g)), unit())

    @_prog(T @ T, T, "inv(h g)(h inv h)")
    def d2(h: Any, g: Any) -> Any:
        return mul(inv(mul(h, g)), mul(h, inv(h)))

    @_prog(T @ T, T, "(inv(h g) h) inv h")
    def d3(h: Any, g: Any) -> Any:
        return mul(mul(inv(mul(h, g)), h), inv(h))

    @_prog(T @ T, T, "inv g inv h")
    def d4(h: Any, g: Any) -> Any:
        return mul(inv(g), inv(h))

    return (
        Proof(mul >> inv, name=f"inv(h g) = inv g inv h in {G.name}")
        .step(d1, by=_backward(_axiom(ax, "right unit")))
        .step(d2, by=_backward(_axiom(ax, "right inverse")))
        .step(d3, by=_backward(_axiom(ax, "associativity")))
        .step(d4, by=cancel_product(G))
    )


# -- action lemmas ---------------------------------------------------------------------------
def _act_lemma(space: GSpace, inverse_first: bool) -> Proof:
    G, X, act = space.group, space.ty, space.act
    T, mul, inv, unit = G.ty, G.mul, G.inv, G.unit
    ax = space.axioms
    outer, inner = ("g", "inv g") if inverse_first else ("inv g", "g")

    def pick(g: Any) -> tuple[Any, Any]:
        return (g, inv(g)) if inverse_first else (inv(g), g)

    @_prog(T @ X, X, f"{outer} . ({inner} . x)")
    def d0(g: Any, x: Any) -> Any:
        a, b = pick(g)
        return act(a, act(b, x))

    @_prog(T @ X, X, f"({outer} {inner}) . x")
    def d1(g: Any, x: Any) -> Any:
        a, b = pick(g)
        return act(mul(a, b), x)

    @_prog(T @ X, X, "e . x")
    def d2(g: Any, x: Any) -> Any:
        return act(unit(), x)

    @_prog(T @ X, X, "x")
    def d3(g: Any, x: Any) -> Any:
        return x

    inverse = "right inverse" if inverse_first else "left inverse"
    return (
        Proof(d0, name=f"{outer} . ({inner} . x) = x for {space.action.name}")
        .step(d1, by=_backward(_axiom(ax, "compatibility")))
        .step(d2, by=_axiom(G.axioms, inverse))
        .step(d3, by=_axiom(ax, "unit"))
    )


def act_cancel(space: GSpace | None = None) -> Proof:
    """``g . (inv g . x) = x`` for an action, from the action and group axioms."""
    return _act_lemma(space or Setting().X, inverse_first=True)


def act_cancel_inverse(space: GSpace | None = None) -> Proof:
    """``inv g . (g . x) = x`` for an action, from the action and group axioms."""
    return _act_lemma(space or Setting().X, inverse_first=False)


# -- (a) the adjunction bijection -------------------------------------------------------------
def flat_sharp(s: Setting | None = None) -> Proof:
    """(a) ``flat(sharp(k)) = k``, from the group and action axioms (no hypothesis on ``k``)."""
    s = s or Setting()
    G, X, Y, k = s.group, s.X, s.Y, s.k
    m = sharp(k, X, Y)
    start = flat(m)

    @_prog(X.ty, Y.ty, "e . k(e . x)")
    def d1(x: Any) -> Any:
        e = G.unit()
        return Y.act(e, k(X.act(e, x)))

    @_prog(X.ty, Y.ty, "e . k(x)")
    def d2(x: Any) -> Any:
        return Y.act(G.unit(), k(x))

    return (
        Proof(start, name="flat(sharp(k)) = k")
        .step(d1, by=inverse_of_unit(G))
        .step(d2, by=_axiom(X.axioms, "unit"))
        .step(k, by=_axiom(Y.axioms, "unit"))
    )


def sharp_flat(s: Setting | None = None, m: Diagram | None = None) -> Proof:
    """(a) ``sharp(flat(m)) = m`` for ``m : (G,*) @ (X,a) -> (Y,b)``.

    Hypothesis: ``m`` is equivariant, ``(id_G @ m) >> act_Y == act_{(G,*)@X} >> m``.
    """
    s = s or Setting()
    G, X, Y = s.group, s.X, s.Y
    dom = GSpace.regular(G) @ X
    m = m if m is not None else Box("m", G.ty @ X.ty, Y.ty)
    hypothesis = equivariance_equation(m, dom, Y)
    mm = Equivariant.assume(m, dom, Y, reason="m is a morphism of C^G")
    start = sharp(flat(mm), X, Y).diagram

    @_prog(G.ty @ X.ty, Y.ty, "m(g e, g . (inv g . x))")
    def d1(g: Any, x: Any) -> Any:
        return m(G.mul(g, G.unit()), X.act(g, X.act(G.inv(g), x)))

    @_prog(G.ty @ X.ty, Y.ty, "m(g, g . (inv g . x))")
    def d2(g: Any, x: Any) -> Any:
        return m(g, X.act(g, X.act(G.inv(g), x)))

    return (
        Proof(start, name="sharp(flat(m)) = m")
        .step(d1, by=hypothesis)
        .step(d2, by=_axiom(G.axioms, "right unit"))
        .step(m, by=act_cancel(X))
    )


# -- (b) sharp(k) is equivariant --------------------------------------------------------------
def sharp_equivariant(s: Setting | None = None) -> Proof:
    """(b) ``sharp(k) : (G,*) @ (X,a) -> (Y,b)`` is equivariant, from the group and action axioms alone.

    The proof goes from ``(id_G @ k#) >> act_Y`` to ``act_{(G,*)@X} >> k#``; ``k`` is any box.
    """
    s = s or Setting()
    G, X, Y, k = s.group, s.X, s.Y, s.k
    m = sharp(k, X, Y)
    claim = equivariance_equation(m.diagram, m.dom, m.cod)
    T = G.ty

    @_prog(T @ T @ X.ty, Y.ty, "(h g) . k(inv g . x)")
    def d1(h: Any, g: Any, x: Any) -> Any:
        return Y.act(G.mul(h, g), k(X.act(G.inv(g), x)))

    @_prog(T @ T @ X.ty, Y.ty, "(h g) . k((inv(h g) h) . x)")
    def d2(h: Any, g: Any, x: Any) -> Any:
        hg = G.mul(h, g)
        return Y.act(hg, k(X.act(G.mul(G.inv(hg), h), x)))

    @_prog(T @ T @ X.ty, Y.ty, "(h g) . k(inv(h g) . (h . x))")
    def d3(h: Any, g: Any, x: Any) -> Any:
        hg = G.mul(h, g)
        return Y.act(hg, k(X.act(G.inv(hg), X.act(h, x))))

    return (
        Proof(claim.lhs, name="sharp(k) is equivariant")
        .step(d1, by=_backward(_axiom(Y.axioms, "compatibility")))
        .step(d2, by=_backward(cancel_product(G)))
        .step(d3, by=_axiom(X.axioms, "compatibility"))
        .step(claim.rhs, by="Markov")
    )


def shear_equivariant(s: Setting | None = None) -> Proof:
    """The shear ``(g, x) |-> (g, g^-1 . x) : (G,*) @ (X,a) -> (G,*) @ (X,triv)`` is equivariant,
    from the group and action axioms (the first factor of ``sharp`` in ``C^G``)."""
    s = s or Setting()
    G, X = s.group, s.X
    shear = shear_inverse(X)
    claim = equivariance_equation(shear.diagram, shear.dom, shear.cod)
    T = G.ty

    @_prog(T @ T @ X.ty, T @ X.ty, "(h g, (inv(h g) h) . x)")
    def d1(h: Any, g: Any, x: Any) -> Any:
        hg = G.mul(h, g)
        return hg, X.act(G.mul(G.inv(hg), h), x)

    return (
        Proof(claim.lhs, name="the shear is equivariant")
        .step(d1, by=_backward(cancel_product(G)))
        .step(claim.rhs, by=_axiom(X.axioms, "compatibility"))
    )


# -- (c) stability ----------------------------------------------------------------------------
def sym_stable(s: Setting | None = None, gamma: Equivariant | None = None) -> Proof:
    """(c) ``sym_gamma(k) = k`` when ``k`` is equivariant (hypothesis: ``k``'s equivariance equation).

    ``gamma`` is any C^G morphism ``(X,a) -> (G,*)``; its equivariance is not used.
    """
    s = s or Setting()
    G, X, Y, k = s.group, s.X, s.Y, s.k
    gamma = gamma or s.gamma_morphism()
    hypothesis = equivariance_equation(k, X, Y)

    @_prog(X.ty, Y.ty, "k(g . (inv g . x)), g ~ gamma(x)")
    def d1(x: Any) -> Any:
        g = gamma.diagram(x)
        return k(X.act(g, X.act(G.inv(g), x)))

    return (
        Proof(sym(k, gamma, Y).diagram, name=f"sym_{gamma.name}(k) = k for equivariant k")
        .step(d1, by=hypothesis)
        .step(k, by=act_cancel(X))
    )


# -- (d) equivariance of sym ------------------------------------------------------------------
def sym_equivariant(
    s: Setting | None = None, gamma: Equivariant | None = None, gamma_equivariance: Equation | Proof | None = None
) -> Proof:
    """(d) ``sym_gamma(k)`` is equivariant whenever ``gamma`` is.

    Hypothesis: ``gamma_equivariance``, ``(id_G @ gamma) >> mul == act_X >> gamma`` (by
    default the equation for ``s.gamma``; a :class:`Proof` of it may be given instead).
    The proof cites :func:`sharp_equivariant` and then the hypothesis, once.
    """
    s = s or Setting()
    G, X, Y, k = s.group, s.X, s.Y, s.k
    gamma = gamma or s.gamma_morphism()
    if gamma_equivariance is None:
        gamma_equivariance = equivariance_equation(gamma.diagram, X, GSpace.regular(G))
    claim = equivariance_equation(sym(k, gamma, Y).diagram, X, Y)
    T = G.ty

    @_prog(T @ X.ty, Y.ty, "(h g) . k(inv(h g) . (h . x)), g ~ gamma(x)")
    def d1(h: Any, x: Any) -> Any:
        hg = G.mul(h, gamma.diagram(x))
        return Y.act(hg, k(X.act(G.inv(hg), X.act(h, x))))

    return (
        Proof(claim.lhs, name=f"sym_{gamma.name}(k) is equivariant")
        .step(d1, by=sharp_equivariant(s))
        .step(claim.rhs, by=gamma_equivariance)
    )


# -- (e) Haar gamma ---------------------------------------------------------------------------
def _haar(s: Setting) -> tuple[Equivariant, Equivariant, Equation]:
    lam = haar(s.group)
    invariance = equivariance_equation(lam.diagram, lam.dom, lam.cod)
    invariance = Equation(invariance.lhs, invariance.rhs, name=f"{lam.name} is left-invariant")
    return lam, haar_gamma(s.X, lam), invariance


def haar_gamma_equivariant(s: Setting | None = None) -> Proof:
    """(e) ``gamma = del_X >> lambda`` is equivariant (hypothesis: ``lambda`` is left-invariant,
    ``(id_G @ lambda) >> mul == del_G >> lambda``)."""
    s = s or Setting()
    _, gamma, invariance = _haar(s)
    claim = equivariance_equation(gamma.diagram, s.X, GSpace.regular(s.group))
    return Proof(claim.lhs, name="Haar gamma is equivariant").step(claim.rhs, by=invariance)


def haar_sym_stable(s: Setting | None = None) -> Proof:
    """(e) with Haar gamma, ``sym(k) = k`` for equivariant ``k`` (an instance of (c))."""
    s = s or Setting()
    _, gamma, _ = _haar(s)
    return sym_stable(s, gamma)


def haar_sym_equivariant(s: Setting | None = None) -> Proof:
    """(e) with Haar gamma, ``sym(k)`` is equivariant for every ``k``: (d) with
    :func:`haar_gamma_equivariant` as gamma's equivariance (so only left-invariance is assumed)."""
    s = s or Setting()
    _, gamma, _ = _haar(s)
    return sym_equivariant(s, gamma, haar_gamma_equivariant(s))


# -- (f) averaging ----------------------------------------------------------------------------
def expectation(kernel: Diagram) -> Diagram:
    """``E[kernel]``: a deterministic box ``x |-> E[kernel(x)]``.

    It is named by the :func:`~markovcat.proof.describe` reading of ``kernel``'s normal
    form and carries that normal form as its data (a :class:`~markovcat.markov.MarkedKernel`
    marked ``"E"``, the mechanism of ``ave`` boxes too), so two kernels equal in the free
    Markov category give the same box, and two different kernels give different boxes
    (two that read alike, e.g. a deterministic and a stochastic ``k``, clash by name if
    they ever meet in one diagram, instead of being confused).  Nothing is remembered
    between calls: equal inputs give equal boxes whatever ran before.
    """
    name = f"E[{describe(kernel)}]"
    return Box(name, kernel.dom, kernel.cod, deterministic=True, data=MarkedKernel("E", NormalForm.of(kernel)))


def ave_definition(average: Average) -> Equation:
    """The definition of an ``ave`` box as an equation: ``ave(m) = E[m]`` (an assumption)."""
    return Equation(average.diagram, expectation(average.body), name=f"definition of {average.name}")


def kim_kernel(k: Diagram, gamma: Equivariant, X: GSpace, Y: GSpace, name: str | None = None) -> Diagram:  # noqa: N803
    """The sampler ``g ~ gamma(x); return g . k(g^-1 . x)`` written as a program (Kim et al. 2023).

    The kernel inside ``E_{g ~ gamma(x)}[g . k(g^-1 . x)]``: ``ave(sym(k, gamma))`` averages it
    (:func:`ave_sym`).  ``name`` defaults to ``kim_<gamma>``.
    """
    G = gamma.group

    @_prog(X.ty, Y.ty, name or f"kim_{gamma.name}")
    def sampler(x: Any) -> Any:
        g = gamma.diagram(x)
        return Y.act(g, k(X.act(G.inv(g), x)))

    return sampler


def _kim_formula(s: Setting, gamma: Equivariant, name: str) -> Diagram:
    """``E_{g ~ gamma(x)}[g . k(g^-1 . x)]`` written directly, as the expectation of :func:`kim_kernel`."""
    return expectation(kim_kernel(s.k, gamma, s.X, s.Y, name))


def ave_sym(s: Setting | None = None, gamma: Equivariant | None = None) -> Proof:
    """(f) ``ave(sym_gamma(k))(x) = E_{g ~ gamma(x)}[g . k(g^-1 . x)]`` (Kim et al. 2023).

    ``ave`` (:func:`markovcat.symmetrisation.ave`) is a marked box; its definition,
    ``ave(m) = E[m]``, is the one assumption.  The right side is the expectation of the
    sampling program written directly; that it is the same box as ``E[sym_gamma(k)]``
    is decided by normal forms.  Not proved here: laws of ``E`` itself (linearity,
    the tower property), which the free Markov category cannot express.
    """
    s = s or Setting()
    gamma = gamma or s.gamma_morphism()
    average = ave(sym(s.k, gamma, s.Y))
    kim = _kim_formula(s, gamma, "g . k(inv g . x), g ~ gamma(x)")
    return Proof(average.diagram, name="ave(sym(k)) is the Kim et al. average").step(kim, by=ave_definition(average))


def frame_averaging(s: Setting | None = None) -> Proof:
    """(f) Frame averaging (Puny et al. 2022): (f) with ``gamma = F >> uniform``, ``F : X -> Frames``
    a deterministic frame and ``uniform`` a uniform draw from it (both assumed, gamma's
    equivariance included)."""
    s = s or Setting()
    G, X = s.group, s.X
    frames = Ty("Frames")
    gamma_box = Box("F", X.ty, frames, deterministic=True) >> Box("uniform", frames, G.ty)
    gamma = Equivariant.assume(gamma_box, X, GSpace.regular(G), reason="the frame F is equivariant")
    average = ave(sym(s.k, gamma, s.Y), name=f"frame_average({getattr(s.k, 'name', 'k')})")
    fa = _kim_formula(s, gamma, "g . k(inv g . x), g ~ uniform(F(x))")
    return Proof(average.diagram, name="frame averaging").step(fa, by=ave_definition(average))


def haar_averaging(s: Setting | None = None) -> Proof:
    """(f) Haar averaging: (f) with the Haar gamma, ``ave(sym(k))(x) = E_{g ~ Haar}[g . k(g^-1 . x)]``
    (Janossy pooling for ``S_n``); the left-invariance of the Haar draw is not needed here."""
    s = s or Setting()
    _, gamma, _ = _haar(s)
    average = ave(sym(s.k, gamma, s.Y), name=f"haar_average({getattr(s.k, 'name', 'k')})")
    formula = _kim_formula(s, gamma, "g . k(inv g . x), g ~ Haar")
    return Proof(average.diagram, name="Haar averaging").step(formula, by=ave_definition(average))


def recursive_gamma_equivariant(s: Setting | None = None, net: Diagram | None = None) -> Proof:
    """A recursive gamma ``x |-> R0 . net(R0^-1 . x)``, ``R0 ~ Haar``, is equivariant for every
    ``net : X -> G`` (Cornish sec. 5; SymDiff): (e) with ``Y = (G,*)``.  Only the
    left-invariance of the Haar draw is assumed; ``R0`` must multiply on the left."""
    s = s or Setting()
    G = s.group
    net = net if net is not None else Box("net", s.X.ty, G.ty)
    inner = Setting(G, s.X, GSpace.regular(G), net, s.gamma)
    proof = haar_sym_equivariant(inner)
    return Proof(proof.start, proof.steps, name="recursive gamma is equivariant")


def proof_of(evidence: Evidence) -> Proof | None:
    """The shipped proof that ``evidence`` cites (its ``proof_ref``), built fresh and unchecked; None if none.

    Shipped proofs are about generic boxes, so they cover this instance by substitution;
    they are not re-run on the morphism's own diagram.
    """
    if not isinstance(evidence, Evidence):
        raise TypeError(f"proof_of takes the Evidence of a C^G morphism, got {type(evidence).__name__}")
    if evidence.proof_ref is None:
        return None
    make = _SHIPPED.get(evidence.proof_ref)
    if make is None:
        raise ValueError(f"the evidence cites {evidence.proof_ref!r}, which is not a shipped proof; "
                         f"known: {', '.join(sorted(_SHIPPED))}")
    return make()


def all_proofs() -> dict[str, Proof]:
    """Every shipped proof, by name (built fresh; call ``check()`` on each)."""
    return {name: make() for name, make in _SHIPPED.items()}


#: The shipped proofs by name (for :func:`all_proofs` and :func:`proof_of`); a fixed table, never changed.
_SHIPPED: dict[str, Callable[[], Proof]] = {
    make.__name__: make
    for make in (
        inverse_of_unit,
        double_inverse,
        cancel_product,
        inverse_of_product,
        act_cancel,
        act_cancel_inverse,
        flat_sharp,
        sharp_flat,
        sharp_equivariant,
        shear_equivariant,
        sym_stable,
        sym_equivariant,
        haar_gamma_equivariant,
        haar_sym_stable,
        haar_sym_equivariant,
        ave_sym,
        frame_averaging,
        haar_averaging,
        recursive_gamma_equivariant,
    )
}
