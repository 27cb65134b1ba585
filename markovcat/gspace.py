"""G-spaces and the Markov category C^G of equivariant morphisms, as a typed layer.

A :class:`GSpace` is an object of ``C^G``: a type ``X`` with an :class:`Action` of a
group ``G``.  An :class:`Equivariant` is a morphism of ``C^G``: a diagram of ``C``
together with its domain and codomain G-spaces and the :class:`Evidence` that it is
equivariant, ``(id_G @ k) >> act_Y == act_X >> k`` (:func:`equivariance_equation`).

Nothing enters ``C^G`` silently.  Evidence kinds:

``markov``      the equivariance equation holds in the free Markov category (checked
                here by :func:`markovcat.equal`: a proof, for every interpretation);
``axiom``       it coincides (up to Markov laws) with a stated axiom of the structure;
``assumption``  the user declared it (:meth:`Equivariant.assume`, with a reason);
``proof``       a proof object from the rewriting engine, checked on entry;
``obligation``  an equation the caller still has to prove (recorded, not checked);
``theorem``     a general result about a construction (``sharp``, ``sym``...), relying
                on the listed axioms; the shipped proofs live in ``markovcat.theorems``;
``composite``   built in ``C^G`` by ``>>`` or ``@`` (C^G is a category, closed under
                the tensor), from the premises.

>>> from markovcat.syntax import Ty, Box
>>> G = Group("G")
>>> X = GSpace(Ty("X"), Action("act_X", G, Ty("X")))
>>> k = Equivariant.assume(Box("k", Ty("X"), Ty("X")), X, X, reason="a G-CNN layer")
>>> (k >> Equivariant.copy(X)).cod == X @ X
True
>>> [a.reason for a in (k @ k).assumptions()]
['a G-CNN layer']
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from markovcat.equation import Equation
from markovcat.frozen import fill, reduce_frozen
from markovcat.groups import Action, Group, Homomorphism
from markovcat.markov import equal, explain
from markovcat.syntax import Box, Copy, Diagram, Discard, Id, Swap, Ty, TypeMismatch

__all__ = [
    "GSpace",
    "Cosets",
    "Evidence",
    "Equivariant",
    "NotEquivariant",
    "equivariance_equation",
    "EVIDENCE_KINDS",
    "Assumption",
]

EVIDENCE_KINDS = ("markov", "axiom", "assumption", "proof", "obligation", "theorem", "composite")


class NotEquivariant(ValueError):
    """A morphism offered to ``C^G`` whose evidence does not establish equivariance."""


class GSpace:
    """An object ``(X, act)`` of ``C^G``: a type with an action of a group on it.

    ``linear=True`` records that the action is linear (``X`` a vector space), which
    :func:`markovcat.symmetrisation.ave` needs; it is a stated assumption, not checked.
    Equality: same group, same type and equal actions (see :class:`Action`).
    """

    ty: Ty
    """The underlying type ``X``."""
    action: Action
    """The action of the group on ``ty``."""
    linear: bool
    """Whether the action is linear, which ``ave`` needs for averaging to stay equivariant."""
    factors: tuple[GSpace, ...]
    """For a product space, its factors (``()`` for a space that is not a product)."""
    _name: str | None

    def __init__(
        self,
        space: Ty,
        action: Action,
        *,
        linear: bool = False,
        name: str | None = None,
        factors: tuple[GSpace, ...] | None = None,
    ) -> None:
        """``factors``: the tensor factors, when this space is a tensor of G-spaces (internal)."""
        if not isinstance(space, Ty):
            raise TypeError(f"a G-space needs a Ty, got {type(space).__name__} {space!r}")
        if not isinstance(action, Action):
            raise TypeError(f"a G-space needs an Action, got {type(action).__name__} {action!r}")
        if action.space != space:
            raise TypeMismatch(f"GSpace({space}, {action.name}): the action {action.name!r} acts on {action.space}, "
                               f"not on {space}")
        if factors is None:
            factors = (self,) if len(space) else ()
        fill(self, ty=space, action=action, linear=bool(linear), _name=name, factors=factors)

    def __setattr__(self, name: str, value: object) -> None:
        raise AttributeError("G-spaces are immutable")

    # -- constructions -------------------------------------------------------------
    @classmethod
    def regular(cls, group: Group) -> GSpace:
        """``(G, *)``: the group acting on itself by ``mul``."""
        return cls(group.ty, Action.regular(group), name=f"({group.name}, *)")

    @classmethod
    def trivial(cls, space: Ty, group: Group, *, linear: bool = False) -> GSpace:
        """``(X, del_G @ id_X)``: ``G`` acts by doing nothing."""
        return cls(space, Action.trivial(group, space), linear=linear, name=f"({space}, triv)")

    @classmethod
    def unit(cls, group: Group) -> GSpace:
        """The monoidal unit ``(I, del_G)`` of ``C^G``."""
        return cls(Ty(), Action.trivial(group, Ty()), linear=True, name="(I, triv)")

    def tensor(self, other: GSpace) -> GSpace:
        """``(X, a) @ (Y, b)`` with the diagonal action (copy ``g``, act on each factor)."""
        if not isinstance(other, GSpace):
            raise TypeError(f"can only tensor a G-space with a G-space, got {type(other).__name__} {other!r}")
        if self.group != other.group:
            raise TypeMismatch(
                f"cannot tensor {self} (a {self.group.name}-space) with {other} (a {other.group.name}-space)"
            )
        if not len(self.ty):
            return other
        if not len(other.ty):
            return self
        return GSpace(self.ty @ other.ty, self.action.tensor(other.action), linear=self.linear and other.linear,
                      factors=self.factors + other.factors)

    __matmul__ = tensor

    def restrict(self, phi: Homomorphism) -> GSpace:
        """The ``H``-space obtained along ``phi : H -> G`` (``U_phi`` on objects)."""
        factors = tuple(f.restrict(phi) for f in self.factors) if len(self.factors) > 1 else None
        return GSpace(self.ty, self.action.restrict(phi), linear=self.linear, name=f"{self}|{phi.name}",
                      factors=factors)

    def split(self, n: int) -> tuple[GSpace, GSpace]:
        """``(first n factors, the rest)`` for a tensor of G-spaces."""
        if len(self.factors) < n:
            raise TypeMismatch(f"{self} has {len(self.factors)} tensor factor(s), cannot split off {n}")
        unit = GSpace.unit(self.group)
        head, rest = unit, unit
        for f in self.factors[:n]:
            head = head @ f
        for f in self.factors[n:]:
            rest = rest @ f
        return head, rest

    # -- inspection --------------------------------------------------------------------
    @property
    def group(self) -> Group:
        """The group ``G`` that acts."""
        return self.action.group

    @property
    def act(self) -> Diagram:
        """The action's diagram ``G @ X -> X``."""
        return self.action.act

    @property
    def axioms(self) -> tuple[Equation, ...]:
        """The action's equations (unit and compatibility) this space rests on."""
        return self.action.axioms

    def __eq__(self, other: object) -> bool:
        if self is other:
            return True
        if not isinstance(other, GSpace):
            return NotImplemented
        return self.action == other.action

    def __hash__(self) -> int:
        return hash(("GSpace", self.ty))

    def __str__(self) -> str:
        if self._name:
            return self._name
        if len(self.factors) > 1:
            return " @ ".join(str(f) for f in self.factors)
        return f"({self.ty}, {self.action.name})"

    def __repr__(self) -> str:
        return f"GSpace{str(self)} over {self.group.name}" if str(self).startswith("(") else str(self)

    def differs(self, other: GSpace) -> str:
        """Why ``self != other``, in words ('' when equal)."""
        if self == other:
            return ""
        if self.group != other.group:
            return f"{self} is a {self.group.name}-space but {other} is a {other.group.name}-space"
        if self.ty != other.ty:
            return f"{self} has type {self.ty} but {other} has type {other.ty}"
        return (
            f"{self} and {other} have the same type {self.ty} but different actions "
            f"({self.action.name!r} vs {other.action.name!r}: {explain(self.act, other.act)})"
        )


class Cosets:
    """The coset space ``G/phi(H)`` of a homomorphism ``phi : H -> G``, with its structure.

    Boxes (assumed, with the equations in :attr:`axioms`):

    * ``quot : G -> G/H`` (deterministic), equivariant for left multiplication,
      ``(id @ quot) >> act == mul >> quot`` (this defines the action on cosets);
    * ``section : G/H -> G`` (possibly stochastic), a choice of representative,
      ``section >> quot == id``;
    * ``offset : G -> H`` (possibly stochastic) with ``quot >> section == copy >>
      (id @ (offset >> phi)) >> mul``: the representative differs from ``g`` by an
      element of ``phi(H)``.
    """

    phi: Homomorphism
    """The homomorphism ``phi : H -> G`` whose image's cosets these are."""
    name: str
    """The name of the coset type ``G/H``."""
    ty: Ty
    """The coset type ``G/H``."""
    quot: Box
    """The box ``quot : G -> G/H`` sending an element to its coset."""
    section: Box
    """The box ``section : G/H -> G`` choosing a representative of each coset."""
    offset: Box
    """The box ``offset : G -> H``: how far ``g`` is from its coset's representative."""
    space: GSpace
    """``G/H`` as a ``G``-space, ``G`` acting by left multiplication on cosets."""

    def __init__(self, phi: Homomorphism, name: str | None = None) -> None:
        if not isinstance(phi, Homomorphism):
            raise TypeError(f"cosets are taken of a Homomorphism, got {type(phi).__name__} {phi!r}")
        G, H = phi.target, phi.source
        name = name or f"{G.name}/{phi.name}"
        g, q = G.ty, Ty(name)
        fill(
            self,
            phi=phi,
            name=name,
            ty=q,
            quot=Box(f"quot_{phi.name}", g, q, deterministic=True),
            section=Box(f"section_{phi.name}", q, g),
            offset=Box(f"offset_{phi.name}", g, H.ty),
            space=GSpace(q, Action(f"act_{name}", G, q), name=f"({name}, *)"),
        )

    def __setattr__(self, name: str, value: object) -> None:
        raise AttributeError("cosets are immutable")

    def __eq__(self, other: object) -> bool:
        """The same homomorphism and name (so the same boxes and space)."""
        if self is other:
            return True
        if not isinstance(other, Cosets):
            return NotImplemented
        return (self.name, self.phi) == (other.name, other.phi)

    def __hash__(self) -> int:
        return hash(("Cosets", self.name))

    @property
    def group(self) -> Group:
        """The group ``G`` whose cosets these are (the target of ``phi``)."""
        return self.phi.target

    @property
    def axioms(self) -> tuple[Equation, ...]:
        """The equations that make ``quot``, ``section`` and ``offset`` a space of cosets (assumed)."""
        G, q = self.group, self.ty
        rep = Copy(G.ty) >> (Id(G.ty) @ (self.offset >> self.phi.map)) >> G.mul
        return (
            Equation((Id(G.ty) @ self.quot) >> self.space.act, G.mul >> self.quot, name="quot equivariant"),
            Equation(self.section >> self.quot, Id(q), name="section"),
            Equation(self.quot >> self.section, rep, name="representative"),
        )

    def quotient(self) -> Equivariant:
        """``quot : (G, *) -> (G/H, *)`` in ``C^G`` (its equivariance is the first axiom)."""
        return Equivariant(
            self.quot,
            GSpace.regular(self.group),
            self.space,
            Evidence("axiom", "the action on cosets is defined by left multiplication", axioms=self.axioms[:1]),
            name="quot",
        )

    def __repr__(self) -> str:
        return f"Cosets({self.name})"


def equivariance_equation(k: Diagram, dom: GSpace, cod: GSpace) -> Equation:
    """The equation ``(id_G @ k) >> act_Y == act_X >> k`` saying ``k`` is equivariant."""
    _check_typed(k, dom, cod, "k")
    name = f"{getattr(k, '_name', None) or 'the map'} is equivariant"
    return Equation((Id(dom.group.ty) @ k) >> cod.act, dom.act >> k, name=name)


def _check_typed(k: object, dom: GSpace, cod: GSpace, what: str) -> None:
    if not isinstance(k, Diagram):
        raise TypeError(f"{what} must be a Diagram, got {type(k).__name__} {k!r}")
    for side, space in (("domain", dom), ("codomain", cod)):
        if not isinstance(space, GSpace):
            raise TypeError(f"the {side} of {what} in C^G must be a GSpace, got {type(space).__name__} {space!r}")
    if dom.group != cod.group:
        raise TypeMismatch(
            f"{what} would go from a {dom.group.name}-space {dom} to a {cod.group.name}-space {cod}: "
            "a morphism of C^G has one group"
        )
    if k.dom != dom.ty or k.cod != cod.ty:
        raise TypeMismatch(
            f"{what} has type {k.dom} -> {k.cod} but was declared {dom} -> {cod}, i.e. {dom.ty} -> {cod.ty}"
        )


@dataclass(frozen=True)
class Evidence:
    """Why a diagram is a morphism of ``C^G`` (see the module docstring for the kinds).

    ``axioms`` are the equations the claim rests on (for ``theorem`` and ``axiom``);
    ``support`` is the proof object or the equation; ``premises`` the C^G morphisms
    it was built from; ``proof_ref`` names the shipped proof of the construction, which
    ``markovcat.theorems.proof_of(evidence)`` builds (this module does not import the
    proof library: the proofs are built from it, not the other way round).
    """

    kind: str
    """One of ``EVIDENCE_KINDS``: ``markov``, ``axiom``, ``assumption``, ``proof``, ``obligation``, ``theorem``,
    ``composite``."""
    detail: str
    """A sentence saying what was proved or assumed."""
    premises: tuple[Equivariant, ...] = ()
    axioms: tuple[Equation, ...] = ()
    support: Any = None
    proof_ref: str | None = None

    def __post_init__(self) -> None:
        if self.kind not in EVIDENCE_KINDS:
            raise ValueError(f"unknown evidence kind {self.kind!r}; expected one of {', '.join(EVIDENCE_KINDS)}")
        for p in self.premises:
            if not isinstance(p, Equivariant):
                raise TypeError(f"a premise of evidence must be an Equivariant, got {type(p).__name__}")


@dataclass(frozen=True)
class Assumption:
    """One assumption a C^G morphism rests on: what is assumed and why."""

    what: str
    reason: str


class Equivariant:
    """A morphism ``dom -> cod`` of ``C^G``: a diagram with evidence that it is equivariant.

    Build with :meth:`assume`, :meth:`by_markov`, :meth:`by_proof`, :meth:`by_equation`,
    the structure maps (:meth:`identity`, :meth:`copy`, :meth:`discard`, :meth:`swap`),
    ``>>`` and ``@``, or the constructions of :mod:`markovcat.symmetrisation`.
    """

    __slots__ = ("diagram", "dom", "cod", "evidence", "name")
    diagram: Diagram
    """The underlying diagram ``X -> Y`` of the free Markov category."""
    dom: GSpace
    """The source ``(X, act_X)``."""
    cod: GSpace
    """The target ``(Y, act_Y)``."""
    evidence: Evidence
    """Why the diagram is a morphism of ``C^G``: proved, an axiom, or assumed (see :class:`Evidence`)."""
    name: str
    """The morphism's name (for messages and drawings)."""

    def __init__(
        self, diagram: Diagram, dom: GSpace, cod: GSpace, evidence: Evidence, *, name: str | None = None
    ) -> None:
        _check_typed(diagram, dom, cod, name or "the morphism")
        if not isinstance(evidence, Evidence):
            raise TypeError(
                f"a C^G morphism needs Evidence, got {type(evidence).__name__}: use Equivariant.assume(...) "
                "to state an assumption, or Equivariant.by_proof / by_markov"
            )
        object.__setattr__(self, "diagram", diagram)
        object.__setattr__(self, "dom", dom)
        object.__setattr__(self, "cod", cod)
        object.__setattr__(self, "evidence", evidence)
        object.__setattr__(self, "name", name or getattr(diagram, "_name", None) or "m")

    def __setattr__(self, name: str, value: object) -> None:
        raise AttributeError("C^G morphisms are immutable")

    __reduce__ = reduce_frozen

    def __eq__(self, other: object) -> bool:
        """The same diagram (syntactically), G-spaces, evidence and name."""
        if self is other:
            return True
        if not isinstance(other, Equivariant) or type(self) is not type(other):
            return NotImplemented
        return all(getattr(self, slot) == getattr(other, slot) for slot in _slots(type(self)))

    def __hash__(self) -> int:
        return hash(("Equivariant", self.name, self.diagram))

    # -- ways in -----------------------------------------------------------------------
    @classmethod
    def assume(cls, box: Diagram, dom: GSpace, cod: GSpace, *, reason: str, name: str | None = None) -> Equivariant:
        """Declare ``box`` equivariant: an assumption, recorded with its ``reason`` (nothing is checked)."""
        if not isinstance(reason, str) or not reason.strip():
            raise ValueError("Equivariant.assume needs a reason (why is this map equivariant?)")
        _check_typed(box, dom, cod, "the assumed map")
        eq = equivariance_equation(box, dom, cod)
        return cls(box, dom, cod, Evidence("assumption", reason, axioms=(eq,), support=eq), name=name)

    @classmethod
    def by_markov(cls, diagram: Diagram, dom: GSpace, cod: GSpace, *, name: str | None = None) -> Equivariant:
        """Admit ``diagram`` if its equivariance equation is a Markov law (checked now).

        This proves equivariance in every Markov category; it cannot see the group or
        action axioms, so most equivariant maps need :meth:`by_proof` instead.
        """
        eq = equivariance_equation(diagram, dom, cod)
        if not eq.check():
            raise NotEquivariant(
                f"{name or diagram.label()} : {dom} -> {cod} is not equivariant by the Markov laws alone: "
                f"{eq.explain()} (prove it with the rewriting engine, or state an assumption)"
            )
        return cls(diagram, dom, cod, Evidence("markov", "equivariance equation holds in the free Markov category",
                                               support=eq), name=name)

    @classmethod
    def by_equation(cls, diagram: Diagram, dom: GSpace, cod: GSpace, equation: Equation) -> Equivariant:
        """Admit ``diagram`` with its equivariance ``equation`` as an open proof obligation.

        The equation must state this diagram's equivariance (its end sides equal the
        two sides of :func:`equivariance_equation` up to Markov laws, in either order); that is
        checked, the equation itself is not.
        """
        target = equivariance_equation(diagram, dom, cod)
        _matches(equation, target, "the equation")
        return cls(diagram, dom, cod, Evidence("obligation", f"equation {equation.name or ''} to prove".strip(),
                                               axioms=(equation,), support=equation))

    @classmethod
    def by_proof(cls, diagram: Diagram, dom: GSpace, cod: GSpace, proof: Any) -> Equivariant:
        """Admit ``diagram`` with a proof object of its equivariance, checked now.

        The proof (a :class:`markovcat.proof.Proof`) is checked with ``check()``; its
        statement ``d0 = dn`` must be the equivariance equation up to Markov laws (either
        way round).  What that proves: equivariance given the equations the proof cites
        (``proof.assumptions()``).
        """
        target = equivariance_equation(diagram, dom, cod)
        if isinstance(proof, Equation):
            raise TypeError("an Equation is not a proof: use Equivariant.by_equation to record it as an obligation")
        first, last = _proof_ends(proof)
        _matches(Equation(first, last), target, "the proof")
        result = proof.check()
        if result is False:
            raise NotEquivariant(f"the proof of {target.name} does not check")
        return cls(diagram, dom, cod, Evidence("proof", "checked proof", support=proof, axioms=(target,)))

    # -- structure of C^G ----------------------------------------------------------------
    @classmethod
    def identity(cls, space: GSpace) -> Equivariant:
        """The identity on ``space`` (equivariant by the unit law)."""
        return cls.by_markov(Id(space.ty), space, space, name=f"id{space}")

    @classmethod
    def copy(cls, space: GSpace) -> Equivariant:
        """``copy : X -> X @ X`` (equivariant because actions are deterministic)."""
        return cls.by_markov(Copy(space.ty), space, space @ space, name=f"copy{space}")

    @classmethod
    def discard(cls, space: GSpace) -> Equivariant:
        """Discarding ``space``, a morphism to the unit (equivariant for every action)."""
        return cls.by_markov(Discard(space.ty), space, GSpace.unit(space.group), name=f"del{space}")

    @classmethod
    def swap(cls, left: GSpace, right: GSpace) -> Equivariant:
        """The swap ``left @ right -> right @ left`` (equivariant because actions act factorwise)."""
        return cls.by_markov(Swap(left.ty, right.ty), left @ right, right @ left, name="swap")

    def then(self, other: Equivariant) -> Equivariant:
        """Composition in ``C^G``; refuses G-spaces that do not match."""
        if not isinstance(other, Equivariant):
            raise TypeError(
                f"in C^G, {self.name} can only be composed with a C^G morphism (Equivariant), not "
                f"{type(other).__name__}; use .diagram to compose in C"
            )
        if self.cod != other.dom:
            raise TypeMismatch(
                f"cannot compose {self.name} : {self.dom} -> {self.cod} with {other.name} : {other.dom} -> "
                f"{other.cod} in C^G: {self.cod.differs(other.dom)}"
            )
        ev = Evidence("composite", "C^G is closed under composition", premises=(self, other))
        return Equivariant(self.diagram >> other.diagram, self.dom, other.cod, ev, name=f"{self.name} >> {other.name}")

    def tensor(self, other: Equivariant) -> Equivariant:
        """Tensor in ``C^G`` (diagonal actions); refuses different groups."""
        if not isinstance(other, Equivariant):
            raise TypeError(f"in C^G, {self.name} can only be tensored with an Equivariant, not {type(other).__name__}")
        if self.dom.group != other.dom.group:
            raise TypeMismatch(
                f"cannot tensor {self.name} (in C^{self.dom.group.name}) with {other.name} "
                f"(in C^{other.dom.group.name})"
            )
        ev = Evidence("composite", "C^G is closed under the tensor", premises=(self, other))
        return Equivariant(self.diagram @ other.diagram, self.dom @ other.dom, self.cod @ other.cod, ev,
                           name=f"({self.name} @ {other.name})")

    __rshift__ = then
    __matmul__ = tensor

    # -- inspection --------------------------------------------------------------------
    @property
    def group(self) -> Group:
        """The group ``G`` both spaces are acted on by."""
        return self.dom.group

    @property
    def equation(self) -> Equation:
        """This morphism's equivariance equation."""
        return equivariance_equation(self.diagram, self.dom, self.cod)

    def walk(self) -> Iterator[Equivariant]:
        """This morphism and, recursively, every premise of its evidence (pre-order)."""
        stack = [self]
        while stack:
            m = stack.pop()
            yield m
            stack.extend(reversed(m.evidence.premises))

    def assumptions(self) -> list[Assumption]:
        """Every assumption this morphism rests on: declared maps, linearity, (once each)."""
        seen: dict[tuple[str, str], Assumption] = {}
        for m in self.walk():
            if m.evidence.kind == "assumption":
                a = Assumption(m.name, m.evidence.detail)
                seen.setdefault((a.what, a.reason), a)
        return list(seen.values())

    def obligations(self) -> list[Equation]:
        """Equations recorded as still to be proved."""
        return [m.evidence.support for m in self.walk() if m.evidence.kind == "obligation"]

    def axioms_used(self) -> list[Equation]:
        """The structure axioms (group, action, homomorphism...) the evidence relies on."""
        out: dict[int, Equation] = {}
        for m in self.walk():
            if m.evidence.kind in ("theorem", "axiom"):
                for eq in m.evidence.axioms:
                    out.setdefault(id(eq), eq)
        return list(out.values())

    def explain(self) -> str:
        """The evidence as an indented tree, one morphism per line."""
        lines: list[str] = []

        def visit(m: Equivariant, depth: int) -> None:
            lines.append(f"{'  ' * depth}{m.name} : {m.dom} -> {m.cod}  [{m.evidence.kind}: {m.evidence.detail}]")
            for p in m.evidence.premises:
                visit(p, depth + 1)

        visit(self, 0)
        return "\n".join(lines)

    def draw(self, path: str | None = None, **options: object) -> object:
        """Draw the underlying diagram (to ``path`` when given), as ``Diagram.draw`` does."""
        return self.diagram.draw(path, **options)

    def __repr__(self) -> str:
        return f"<Equivariant {self.name} : {self.dom} -> {self.cod} ({self.evidence.kind})>"


def _slots(cls: type) -> tuple[str, ...]:
    """Every ``__slots__`` field of ``cls`` and its bases."""
    return tuple(s for c in cls.__mro__ for s in getattr(c, "__slots__", ()))


def _proof_ends(proof: Any) -> tuple[Diagram, Diagram]:
    """The first and last diagram of a proof object (``statement()``, ``.equation`` or ``.diagrams``)."""
    if not callable(getattr(proof, "check", None)):
        raise TypeError(f"{type(proof).__name__} is not a proof object (it has no check())")
    statement = getattr(proof, "statement", None)
    eq = statement() if callable(statement) else getattr(proof, "equation", None)
    if isinstance(eq, Equation):
        return eq.lhs, eq.rhs
    chain = getattr(proof, "diagrams", None)
    if chain is not None and len(chain) and all(isinstance(d, Diagram) for d in chain):
        return chain[0], chain[-1]
    raise TypeError(f"cannot read what {type(proof).__name__} proves: it has no statement(), .equation or .diagrams")


def _matches(claim: Equation, target: Equation, what: str) -> None:
    a, b = claim.lhs, claim.rhs
    if (a.dom, a.cod) != (target.dom, target.cod):
        raise NotEquivariant(
            f"{what} is about diagrams {a.dom} -> {a.cod}, but {target.name} is about {target.dom} -> {target.cod}"
        )
    forward = equal(a, target.lhs) and equal(b, target.rhs)
    backward = equal(a, target.rhs) and equal(b, target.lhs)
    if not (forward or backward):
        raise NotEquivariant(
            f"{what} does not state that {target.name}: its first side vs (id @ k) >> act_Y: "
            f"{explain(a, target.lhs)} Its last side vs act_X >> k: {explain(b, target.rhs)}"
        )
