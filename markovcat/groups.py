"""Groups, actions and homomorphisms inside a Markov category, with their axioms.

A group is an object ``G`` with deterministic ``mul : G @ G -> G``, ``unit : I -> G``
and ``inv : G -> G``; an action is a deterministic ``act : G @ X -> X``; a
homomorphism is a deterministic ``phi : H -> G``.  By default each structure map is
a fresh generating box; derived structures (products, restrictions, the regular and
trivial actions) are *diagrams* built from their parts' boxes.

The axioms are :class:`~markovcat.Equation` s.  For generating boxes they are
*assumptions*: they do not hold in the free Markov category, and are used as
rewriting rules in proofs and checked numerically by the backends.

>>> G = Group("G")
>>> [eq.name for eq in G.axioms]
['associativity', 'left unit', 'right unit', 'left inverse', 'right inverse']
>>> all(not eq.check() for eq in G.axioms)   # none is a Markov-category law
True
>>> all(eq.check() for eq in Group.trivial().axioms)   # the trivial group's are
True
>>> P = direct_product(G, Group("H"))                   # structure from the factors' boxes
>>> sorted(b.name for b in P.mul.boxes)
['G.mul', 'H.mul']
>>> all(eq.check() for eq in P.projection(0).axioms)   # a projection is a homomorphism by Markov laws
True
"""

from __future__ import annotations

from collections.abc import Sequence

from markovcat.equation import Equation
from markovcat.frozen import fill
from markovcat.markov import equal
from markovcat.syntax import Box, Copy, Diagram, Discard, Id, Swap, Ty, TypeMismatch

__all__ = [
    "Group",
    "Action",
    "Homomorphism",
    "DirectProduct",
    "SemidirectProduct",
    "direct_product",
    "semidirect_product",
    "automorphism_axioms",
]


def _diagram(d: object, what: str) -> Diagram:
    if not isinstance(d, Diagram):
        raise TypeError(f"{what} must be a Diagram, got {type(d).__name__} {d!r}")
    return d


def _check_map(d: Diagram, dom: Ty, cod: Ty, what: str) -> None:
    if d.dom != dom or d.cod != cod:
        raise TypeMismatch(f"{what} must have type {dom} -> {cod}, but it has type {d.dom} -> {d.cod}")
    if not d.is_deterministic:
        stochastic = sorted({g.name for g in d.boxes if not g.deterministic})
        raise ValueError(f"{what} must be deterministic, but it uses the stochastic box(es) {', '.join(stochastic)}")


class Group:
    """A group object ``G`` with its structure maps ``mul``, ``unit``, ``inv``.

    ``Group("G")`` makes fresh deterministic boxes ``G.mul``, ``G.unit``, ``G.inv`` on
    the object ``Ty("G")``.  Passing ``ty``, ``mul``, ``unit`` and ``inv`` (all four)
    builds a group from given deterministic diagrams instead (products do this);
    ``premises`` then lists the equations its axioms follow from.
    """

    name: str
    """The group's name (its boxes are named after it: ``G.mul``, ``G.inv``, ``G.unit``)."""
    ty: Ty
    """The type ``G`` of the group's elements."""
    mul: Diagram
    """The multiplication ``mul : G @ G -> G`` (deterministic)."""
    unit: Diagram
    """The unit ``unit : I -> G`` (deterministic)."""
    inv: Diagram
    """The inverse ``inv : G -> G`` (deterministic)."""
    premises: tuple[Equation, ...]

    def __init__(
        self,
        name: str,
        *,
        ty: Ty | None = None,
        mul: Diagram | None = None,
        unit: Diagram | None = None,
        inv: Diagram | None = None,
        premises: Sequence[Equation] = (),
    ) -> None:
        if not isinstance(name, str) or not name:
            raise TypeError(f"a group name is a non-empty string, got {name!r}")
        given = {"ty": ty, "mul": mul, "unit": unit, "inv": inv}
        if all(v is None for v in given.values()):
            G = Ty(name)
            mul = Box(f"{name}.mul", G @ G, G, deterministic=True)
            unit = Box(f"{name}.unit", Ty(), G, deterministic=True)
            inv = Box(f"{name}.inv", G, G, deterministic=True)
        else:
            missing = [k for k, v in given.items() if v is None]
            if missing:
                raise TypeError(f"group {name!r}: give all of ty, mul, unit, inv or none; missing {', '.join(missing)}")
            if not isinstance(ty, Ty):
                raise TypeError(f"group {name!r}: ty must be a Ty, got {type(ty).__name__} {ty!r}")
            G = ty
            for what, d, dom, cod in (("mul", mul, G @ G, G), ("unit", unit, Ty(), G), ("inv", inv, G, G)):
                _check_map(_diagram(d, f"the {what} of group {name!r}"), dom, cod, f"the {what} of group {name!r}")
        assert mul is not None and unit is not None and inv is not None
        fill(self, name=name, ty=G, mul=mul, unit=unit, inv=inv, premises=tuple(premises))

    def __setattr__(self, name: str, value: object) -> None:
        raise AttributeError("groups are immutable")

    @classmethod
    def trivial(cls, name: str = "1") -> Group:
        """The trivial group on ``I``: every structure map is ``Id(I)``, every axiom a Markov law."""
        i = Id(Ty())
        return cls(name, ty=Ty(), mul=i, unit=i, inv=i)

    @property
    def axioms(self) -> tuple[Equation, ...]:
        """Associativity, unit laws and inverse laws, as equations between diagrams."""
        G, mul, unit, inv, i = self.ty, self.mul, self.unit, self.inv, Id(self.ty)
        return (
            Equation((mul @ i) >> mul, (i @ mul) >> mul, name="associativity"),
            Equation((unit @ i) >> mul, i, name="left unit"),
            Equation((i @ unit) >> mul, i, name="right unit"),
            Equation(Copy(G) >> (inv @ i) >> mul, Discard(G) >> unit, name="left inverse"),
            Equation(Copy(G) >> (i @ inv) >> mul, Discard(G) >> unit, name="right inverse"),
        )

    def __eq__(self, other: object) -> bool:
        if self is other:
            return True
        if not isinstance(other, Group):
            return NotImplemented
        return (self.name, self.ty, self.mul, self.unit, self.inv) == (
            other.name,
            other.ty,
            other.mul,
            other.unit,
            other.inv,
        )

    def __hash__(self) -> int:
        return hash(("Group", self.name, self.ty))

    def __repr__(self) -> str:
        return f"Group({self.name!r})"


class Action:
    """A left action ``act : G @ X -> X`` of ``group`` on the type ``space``.

    ``Action(name, G, X)`` makes a fresh deterministic box ``name``; ``act=`` supplies
    a deterministic diagram ``G @ X -> X`` instead (derived actions do this).
    Two actions are equal when they have the same group and space and their
    diagrams are equal in the free Markov category (sound, not complete: actions
    equal only by the group axioms are told apart).
    """

    name: str
    """The action's name (that of its box)."""
    group: Group
    """The group ``G`` that acts."""
    space: Ty
    """The type ``X`` acted on."""
    act: Diagram
    """The deterministic diagram ``G @ X -> X`` that acts (a fresh box ``name`` unless ``act=`` was given)."""

    def __init__(self, name: str, group: Group, space: Ty, *, act: Diagram | None = None) -> None:
        if not isinstance(name, str) or not name:
            raise TypeError(f"an action name is a non-empty string, got {name!r}")
        if not isinstance(group, Group):
            raise TypeError(f"action {name!r} needs a Group, got {type(group).__name__} {group!r}")
        if not isinstance(space, Ty):
            raise TypeError(f"action {name!r} acts on a Ty, got {type(space).__name__} {space!r}")
        if act is None:
            act = Box(name, group.ty @ space, space, deterministic=True)
        else:
            _diagram(act, f"the diagram of action {name!r}")
            expected = group.ty @ space
            if act.dom != expected and act.dom[len(act.dom) - len(space) :] == space and act.cod == space:
                raise TypeMismatch(
                    f"action {name!r} is meant to be an action of group {group.name} (object {group.ty}) on "
                    f"{space}, but its diagram is typed {act.dom} -> {act.cod}: it acts with "
                    f"{act.dom[: len(act.dom) - len(space)]}, not {group.ty}"
                )
            _check_map(act, expected, space, f"action {name!r} of {group.name} on {space}")
        fill(self, name=name, group=group, space=space, act=act)

    def __setattr__(self, name: str, value: object) -> None:
        raise AttributeError("actions are immutable")

    @property
    def axioms(self) -> tuple[Equation, ...]:
        """Compatibility with ``mul`` and the unit law."""
        G, X, g = self.group, self.space, self.group.ty
        return (
            Equation((G.mul @ Id(X)) >> self.act, (Id(g) @ self.act) >> self.act, name="compatibility"),
            Equation((G.unit @ Id(X)) >> self.act, Id(X), name="unit"),
        )

    # -- derived actions --------------------------------------------------------------
    @classmethod
    def regular(cls, group: Group) -> Action:
        """``G`` acting on itself by left multiplication: the action is ``mul``."""
        return cls("*", group, group.ty, act=group.mul)

    @classmethod
    def trivial(cls, group: Group, space: Ty) -> Action:
        """The trivial action ``del_G @ id_X`` (its axioms are Markov laws)."""
        return cls(f"triv[{space}]", group, space, act=Discard(group.ty) @ Id(space))

    def tensor(self, other: Action) -> Action:
        """The diagonal action on ``X @ Y``: copy ``g`` and act on each factor."""
        if not isinstance(other, Action):
            raise TypeError(f"can only tensor an action with an action, got {type(other).__name__} {other!r}")
        if self.group != other.group:
            raise TypeMismatch(
                f"cannot tensor action {self.name!r} of group {self.group.name} with action {other.name!r} of "
                f"group {other.group.name}: the diagonal action needs one group"
            )
        g, X, Y = self.group.ty, self.space, other.space
        if len(X) == 0:
            return other
        if len(Y) == 0:
            return self
        act = (Copy(g) @ Id(X @ Y)) >> (Id(g) @ Swap(g, X) @ Id(Y)) >> (self.act @ other.act)
        return Action(f"{self.name}@{other.name}", self.group, X @ Y, act=act)

    def restrict(self, phi: Homomorphism) -> Action:
        """The action of ``H`` through ``phi : H -> G``: ``(phi @ id) >> act``."""
        if not isinstance(phi, Homomorphism):
            raise TypeError(f"restriction is along a Homomorphism, got {type(phi).__name__} {phi!r}")
        if phi.target != self.group:
            raise TypeMismatch(
                f"cannot restrict action {self.name!r} of group {self.group.name} along {phi.name} : "
                f"{phi.source.name} -> {phi.target.name}: the homomorphism lands in {phi.target.name}, "
                f"not {self.group.name}"
            )
        act = (phi.map @ Id(self.space)) >> self.act
        return Action(f"{self.name}|{phi.name}", phi.source, self.space, act=act)

    def __eq__(self, other: object) -> bool:
        if self is other:
            return True
        if not isinstance(other, Action):
            return NotImplemented
        return self.group == other.group and self.space == other.space and equal(self.act, other.act)

    def __hash__(self) -> int:
        return hash(("Action", self.group, self.space))

    def __repr__(self) -> str:
        return f"Action({self.name!r}, {self.group!r}, {self.space!r})"


def automorphism_axioms(theta: Action, normal: Group) -> tuple[Equation, ...]:
    """``theta : H @ N -> N`` acts by automorphisms of the group ``normal``."""
    if theta.space != normal.ty:
        raise TypeMismatch(
            f"action {theta.name!r} acts on {theta.space}, not on the object {normal.ty} of group {normal.name}"
        )
    h, N = theta.group.ty, normal.ty
    both = (Copy(h) @ Id(N @ N)) >> (Id(h) @ Swap(h, N) @ Id(N)) >> (theta.act @ theta.act)
    return (
        Equation((Id(h) @ normal.mul) >> theta.act, both >> normal.mul, name="preserves multiplication"),
        Equation((Id(h) @ normal.unit) >> theta.act, Discard(h) >> normal.unit, name="preserves unit"),
    )



class Homomorphism:
    """A group homomorphism ``phi : H -> G``, a deterministic map with its axioms.

    ``Homomorphism(name, H, G)`` makes a fresh box; ``map=`` supplies a deterministic
    diagram ``H -> G`` instead.  The axioms are preservation of ``mul`` and ``unit``
    (preservation of ``inv`` follows from them and the group axioms).
    """

    name: str
    """The homomorphism's name."""
    source: Group
    """The group ``H`` it maps from."""
    target: Group
    """The group ``G`` it maps to."""
    map: Diagram
    """The deterministic diagram ``H -> G``."""

    def __init__(self, name: str, source: Group, target: Group, *, map: Diagram | None = None) -> None:
        if not isinstance(name, str) or not name:
            raise TypeError(f"a homomorphism name is a non-empty string, got {name!r}")
        for what, grp in (("source", source), ("target", target)):
            if not isinstance(grp, Group):
                raise TypeError(f"the {what} of homomorphism {name!r} must be a Group, got {type(grp).__name__}")
        if map is None:
            map = Box(name, source.ty, target.ty, deterministic=True)
        else:
            _diagram(map, f"the map of homomorphism {name!r}")
            if map.dom != source.ty or map.cod != target.ty:
                raise TypeMismatch(
                    f"homomorphism {name!r} is declared {source.name} -> {target.name}, i.e. {source.ty} -> "
                    f"{target.ty}, but its map has type {map.dom} -> {map.cod}: it is between the wrong groups"
                )
            _check_map(map, source.ty, target.ty, f"the map of homomorphism {name!r}")
        fill(self, name=name, source=source, target=target, map=map)

    def __setattr__(self, name: str, value: object) -> None:
        raise AttributeError("homomorphisms are immutable")

    @property
    def axioms(self) -> tuple[Equation, ...]:
        """The equations saying ``map`` preserves multiplication (assumed unless derived)."""
        H, G, phi = self.source, self.target, self.map
        return (
            Equation((phi @ phi) >> G.mul, H.mul >> phi, name="preserves multiplication"),
            Equation(H.unit >> phi, G.unit, name="preserves unit"),
        )

    @classmethod
    def identity(cls, group: Group) -> Homomorphism:
        """The identity homomorphism of ``group``."""
        return cls(f"id_{group.name}", group, group, map=Id(group.ty))

    @classmethod
    def from_trivial(cls, group: Group) -> Homomorphism:
        """The inclusion of the trivial group, ``unit : 1 -> G``."""
        return cls(f"e_{group.name}", Group.trivial(), group, map=group.unit)

    def then(self, other: Homomorphism) -> Homomorphism:
        """``self`` followed by ``other``; refuses homomorphisms that do not meet."""
        if not isinstance(other, Homomorphism):
            raise TypeError(f"can only compose with a Homomorphism, got {type(other).__name__}")
        if self.target != other.source:
            raise TypeMismatch(
                f"cannot compose {self.name} : {self.source.name} -> {self.target.name} with {other.name} : "
                f"{other.source.name} -> {other.target.name}: {self.name} lands in {self.target.name} "
                f"but {other.name} starts at {other.source.name}"
            )
        return Homomorphism(f"{other.name}.{self.name}", self.source, other.target, map=self.map >> other.map)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Homomorphism):
            return NotImplemented
        return self.source == other.source and self.target == other.target and equal(self.map, other.map)

    def __hash__(self) -> int:
        return hash(("Homomorphism", self.source, self.target))

    def __repr__(self) -> str:
        return f"Homomorphism({self.name!r}, {self.source!r}, {self.target!r})"


class DirectProduct(Group):
    """``G x H`` on ``G.ty @ H.ty``: componentwise structure built from the factors' maps."""

    factors: tuple[Group, Group]
    """The two groups ``(G, H)`` of ``G x H``."""

    def __init__(self, left: Group, right: Group, name: str | None = None) -> None:
        for grp in (left, right):
            if not isinstance(grp, Group):
                raise TypeError(f"a direct product is of two Groups, got {type(grp).__name__} {grp!r}")
        G, H = left.ty, right.ty
        mul = (Id(G) @ Swap(H, G) @ Id(H)) >> (left.mul @ right.mul)
        super().__init__(
            name or f"({left.name}x{right.name})",
            ty=G @ H,
            mul=mul,
            unit=left.unit @ right.unit,
            inv=left.inv @ right.inv,
            premises=left.axioms + right.axioms,
        )
        fill(self, factors=(left, right))

    def projection(self, i: int) -> Homomorphism:
        """The homomorphism onto factor ``i`` (0 or 1): discard the other component."""
        G, H = self.factors
        maps = (Id(G.ty) @ Discard(H.ty), Discard(G.ty) @ Id(H.ty))
        return Homomorphism(f"pr{i}", self, self.factors[i], map=maps[i])

    def inclusion(self, i: int) -> Homomorphism:
        """The homomorphism from factor ``i``: the other component is the unit."""
        G, H = self.factors
        maps = (Id(G.ty) @ H.unit, G.unit @ Id(H.ty))
        return Homomorphism(f"in{i}", self.factors[i], self, map=maps[i])


class SemidirectProduct(Group):
    """``N x| H`` for ``theta : H @ N -> N`` acting by automorphisms, on ``N.ty @ H.ty``.

    ``(n, h)(n', h') = (n . theta(h, n'), h h')``, unit ``(e, e)``,
    ``(n, h)^-1 = (theta(h^-1, n^-1), h^-1)``; e.g. ``E(d) = T(d) x| O(d)``.
    Its group axioms follow from ``premises``: both groups' axioms, theta's action
    axioms and its automorphism axioms.
    """

    normal: Group
    """The normal subgroup ``N`` of ``N ⋊ H``."""
    acting: Group
    """The group ``H`` that acts on ``N``."""
    theta: Action
    """The action of ``H`` on ``N`` (by automorphisms) that twists the product."""

    def __init__(self, normal: Group, acting: Group, theta: Action, name: str | None = None) -> None:
        for what, grp in (("normal", normal), ("acting", acting)):
            if not isinstance(grp, Group):
                raise TypeError(f"the {what} factor of a semidirect product must be a Group, got {type(grp).__name__}")
        if not isinstance(theta, Action):
            raise TypeError(f"a semidirect product needs an Action of the acting group, got {type(theta).__name__}")
        if theta.group != acting:
            raise TypeMismatch(
                f"action {theta.name!r} is an action of {theta.group.name}, but the acting group is {acting.name}"
            )
        auto = automorphism_axioms(theta, normal)
        N, H, t = normal.ty, acting.ty, theta.act
        mul = (Id(N) @ Copy(H) @ Id(N @ H)) >> (Id(N @ H) @ Swap(H, N) @ Id(H)) >> (Id(N) @ t @ acting.mul)
        mul = mul >> (normal.mul @ Id(H))
        inv = (normal.inv @ acting.inv) >> (Id(N) @ Copy(H)) >> (Swap(N, H) @ Id(H)) >> (t @ Id(H))
        super().__init__(
            name or f"({normal.name}x|{acting.name})",
            ty=N @ H,
            mul=mul,
            unit=normal.unit @ acting.unit,
            inv=inv,
            premises=normal.axioms + acting.axioms + theta.axioms + auto,
        )
        fill(self, normal=normal, acting=acting, theta=theta)

    def projection(self) -> Homomorphism:
        """``N x| H -> H``, forgetting ``n``."""
        return Homomorphism("pr", self, self.acting, map=Discard(self.normal.ty) @ Id(self.acting.ty))

    def inclusion_normal(self) -> Homomorphism:
        """``N -> N x| H``, ``n |-> (n, e)``."""
        return Homomorphism("in_N", self.normal, self, map=Id(self.normal.ty) @ self.acting.unit)

    def inclusion_acting(self) -> Homomorphism:
        """``H -> N x| H``, ``h |-> (e, h)``."""
        return Homomorphism("in_H", self.acting, self, map=self.normal.unit @ Id(self.acting.ty))


def direct_product(left: Group, right: Group, name: str | None = None) -> DirectProduct:
    """``left x right`` (see :class:`DirectProduct`)."""
    return DirectProduct(left, right, name)


def semidirect_product(normal: Group, acting: Group, theta: Action, name: str | None = None) -> SemidirectProduct:
    """``normal x| acting`` along ``theta`` (see :class:`SemidirectProduct`)."""
    return SemidirectProduct(normal, acting, theta, name)
