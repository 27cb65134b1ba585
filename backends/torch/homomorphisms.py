"""Structure shared by all batched groups: homomorphisms and diagonal actions on tuples.

Public names (stable): :class:`TorchHomomorphism` (a homomorphism ``phi : H -> G``;
restrict an action along it with :meth:`~markovcat.backends.torch.groups.TorchAction.restrict`)
and :func:`diagonal` (one group acting on a tuple of spaces, packed into one flat tensor).
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
from torch import Tensor

from markovcat.backends.torch.compile import Interpretation, InterpretationError, Spec
from markovcat.backends.torch.groups import ByValue, TorchAction, TorchGroup, _box_of
from markovcat.groups import Homomorphism

__all__ = ["TorchHomomorphism", "diagonal"]


class TorchHomomorphism:
    """A batched group homomorphism ``map : source -> target``.

    :meth:`interpretation` interprets a :class:`~markovcat.groups.Homomorphism` by it
    and declares its axioms (preservation of ``mul`` and ``unit``) for the checks.
    """

    def __init__(self, name: str, source: TorchGroup, target: TorchGroup, map: Callable[[Tensor], Tensor]) -> None:
        self.name, self.source, self.target, self.map = name, source, target, map

    def __call__(self, h: Tensor) -> Tensor:
        return self.map(h)

    def interpretation(self, phi: Homomorphism) -> Interpretation:
        """Interpret the box of the abstract homomorphism ``phi`` by this map."""
        if not isinstance(phi, Homomorphism):
            raise TypeError(f"interpretation needs a markovcat Homomorphism, got {type(phi).__name__}")
        return Interpretation({_box_of(phi.map, phi): self.map}, laws=[phi])

    def __repr__(self) -> str:
        return f"{self.name} : {self.source.name} -> {self.target.name}"


def diagonal(*actions: TorchAction) -> TorchAction:
    """One group acting on a tuple of spaces, each by its own action (copy ``g``, act on each).

    Points of the tuple are packed as the concatenation of the flattened components
    (the result's ``split`` recovers them); all components must share a dtype.
    """
    if not actions or len({id(a.group) for a in actions}) != 1:
        raise InterpretationError("a diagonal action needs actions of one and the same group")
    shapes = [tuple(a.spec.shape) for a in actions]
    if any(None in s for s in shapes):
        raise InterpretationError("a diagonal action needs concrete shapes")
    dtypes = {a.spec.dtype for a in actions}
    if len(dtypes) != 1:
        raise InterpretationError("a diagonal action packs its components into one tensor: give them one dtype")
    act = _Diagonal(actions)
    return TorchAction(" @ ".join(a.name for a in actions), actions[0].group, Spec((sum(act.sizes),), dtypes.pop()),
                       act)


class _Diagonal(ByValue):
    def __init__(self, actions: tuple[TorchAction, ...]) -> None:
        self.actions = actions
        self.shapes = [tuple(int(s) for s in a.spec.shape) for a in actions]  # type: ignore[arg-type]
        self.sizes = [math.prod(s) for s in self.shapes]

    def split(self, x: Tensor) -> list[Tensor]:
        parts = torch.split(x, self.sizes, dim=-1)
        return [p.reshape(*x.shape[:-1], *s) for p, s in zip(parts, self.shapes, strict=True)]

    def __call__(self, g: Tensor, x: Tensor) -> Tensor:
        moved = [a.act(g, p) for a, p in zip(self.actions, self.split(x), strict=True)]
        return torch.cat([m.reshape(x.shape[0], -1) for m in moved], dim=-1)
