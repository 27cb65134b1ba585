"""Groups and actions inside a Markov category, as generating boxes with axioms.

A group is an object ``G`` with deterministic boxes ``mul : G @ G -> G``,
``unit : I -> G`` and ``inv : G -> G``; an action is a deterministic box
``act : G @ X -> X``.  Their axioms are :class:`~markovcat.Equation` s: they are
*assumptions* about these boxes (they do not hold in the free Markov category), used
as rewriting rules in proofs and checked numerically by the backends.

>>> G = Group("G")
>>> [eq.name for eq in G.axioms]
['associativity', 'left unit', 'right unit', 'left inverse', 'right inverse']
>>> all(not eq.check() for eq in G.axioms)   # none is a Markov-category law
True
"""

from __future__ import annotations

from markovcat.equation import Equation
from markovcat.syntax import Box, Copy, Diagram, Discard, Id, Ty

__all__ = ["Group", "Action"]


class Group:
    """A group object ``G`` with its structure boxes; box names are prefixed by the group's."""

    def __init__(self, name: str) -> None:
        if not isinstance(name, str) or not name:
            raise TypeError(f"a group name is a non-empty string, got {name!r}")
        self.name = name
        self.ty = Ty(name)
        G = self.ty
        self.mul = Box(f"{name}.mul", G @ G, G, deterministic=True)
        self.unit = Box(f"{name}.unit", Ty(), G, deterministic=True)
        self.inv = Box(f"{name}.inv", G, G, deterministic=True)

    @property
    def axioms(self) -> tuple[Equation, ...]:
        G, mul, unit, inv, i = self.ty, self.mul, self.unit, self.inv, Id(self.ty)
        return (
            Equation((mul @ i) >> mul, (i @ mul) >> mul, name="associativity"),
            Equation((unit @ i) >> mul, i, name="left unit"),
            Equation((i @ unit) >> mul, i, name="right unit"),
            Equation(Copy(G) >> (inv @ i) >> mul, Discard(G) >> unit, name="left inverse"),
            Equation(Copy(G) >> (i @ inv) >> mul, Discard(G) >> unit, name="right inverse"),
        )

    def __repr__(self) -> str:
        return f"Group({self.name!r})"


class Action:
    """A (left) action ``act : G @ X -> X`` of ``group`` on the type ``space``."""

    def __init__(self, name: str, group: Group, space: Ty) -> None:
        if not isinstance(group, Group):
            raise TypeError(f"an action needs a Group, got {type(group).__name__} {group!r}")
        if not isinstance(space, Ty):
            raise TypeError(f"an action acts on a Ty, got {type(space).__name__} {space!r}")
        self.name, self.group, self.space = name, group, space
        self.act: Diagram = Box(name, group.ty @ space, space, deterministic=True)

    @property
    def axioms(self) -> tuple[Equation, ...]:
        G, X, g = self.group, self.space, self.group.ty
        return (
            Equation((G.mul @ Id(X)) >> self.act, (Id(g) @ self.act) >> self.act, name="compatibility"),
            Equation((G.unit @ Id(X)) >> self.act, Id(X), name="unit"),
        )

    def __repr__(self) -> str:
        return f"Action({self.name!r}, {self.group!r}, {self.space!r})"
