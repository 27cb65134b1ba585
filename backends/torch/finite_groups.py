"""Finite groups: dihedral groups on images, S_n on sets, sequences and graphs, and their elements.

Public names (stable): :class:`Dihedral` (``D_n``), :class:`PermutationMatrices`
(``S_n`` as float permutation matrices, so that gradients can pass through a
relaxed permutation), the ``S_n`` actions :func:`sequences` and :func:`graphs` (for
:class:`~markovcat.backends.torch.groups.Symmetric` and :class:`PermutationMatrices`),
and :func:`elements` (every element of a small finite group, for orbit searches).
``C_n`` is :class:`~markovcat.backends.torch.groups.Cyclic`.

Conventions, shared by both representations of ``S_n``: the index vector ``p`` sends
``i`` to ``p[i]``; its matrix ``M`` has ``M[p[i], i] = 1``; both move item ``i`` of a
set or sequence to position ``p[i]`` and act on adjacency matrices by
``A |-> M A M^T``.  Image actions are exact (``rot90`` and ``flip``, no interpolation),
so they exist for ``n`` dividing 4.
"""

from __future__ import annotations

import torch
from torch import Tensor

from markovcat.backends.torch.compile import InterpretationError, Spec
from markovcat.backends.torch.groups import ByValue, Cyclic, Symmetric, TorchAction, TorchGroup, small_matmul
from markovcat.backends.torch.homomorphisms import TorchHomomorphism
from markovcat.backends.torch.linalg import accepts

__all__ = ["Dihedral", "PermutationMatrices", "sequences", "graphs", "elements"]


def _where_k(k: Tensor, x: Tensor) -> Tensor:
    return k.view(-1, *([1] * (x.dim() - 1)))


class Dihedral(TorchGroup):
    """``D_n`` (order ``2n``) as integers ``k + n s``: the element ``r^k f^s`` (reflect ``s`` times, then rotate ``k``).

    ``(k1, s1)(k2, s2) = (k1 + (-1)^s1 k2, s1 xor s2)``; reflections are involutions.
    """

    def __init__(self, n: int) -> None:
        if not isinstance(n, int) or n < 1:
            raise ValueError(f"D_n needs n >= 1, got {n!r}")
        self.n, self.name = n, f"D{n}"
        self.spec = Spec((), torch.long, self.sample)

    def parts(self, g: Tensor) -> tuple[Tensor, Tensor]:
        """``(k, s)``: rotation steps and reflection bit."""
        return torch.remainder(g, self.n), torch.div(g, self.n, rounding_mode="floor")

    def element(self, k: Tensor, s: Tensor) -> Tensor:
        """The element with rotation steps ``k`` and reflection bit ``s`` (the inverse of ``parts``)."""
        return torch.remainder(k, self.n) + self.n * s

    def mul(self, a: Tensor, b: Tensor) -> Tensor:
        k1, s1 = self.parts(a)
        k2, s2 = self.parts(b)
        return self.element(k1 + (1 - 2 * s1) * k2, torch.bitwise_xor(s1, s2))

    def inv(self, a: Tensor) -> Tensor:
        k, s = self.parts(a)
        return self.element(torch.where(s == 1, k, -k), s)

    def unit(self, *, like: Tensor) -> Tensor:
        return torch.zeros(like.shape[0], dtype=torch.long, device=like.device)

    def sample(self, batch: int, generator: torch.Generator | None = None, dtype: torch.dtype | None = None,
               device: torch.device | str = "cpu") -> Tensor:
        if generator is None:
            return torch.randint(0, 2 * self.n, (batch,), device=device)
        return torch.randint(0, 2 * self.n, (batch,), generator=generator, device=device)

    def elements(self, *, dtype: torch.dtype | None = None, device: torch.device | str = "cpu",
                 limit: int = 5040) -> Tensor:
        """All ``2n`` elements."""
        return torch.arange(2 * self.n, device=device)

    def rotations(self) -> TorchHomomorphism:
        """The inclusion ``C_n -> D_n``."""
        return TorchHomomorphism("C->D", Cyclic(self.n), self, _identity)

    def plane(self) -> TorchAction:
        """Acting on ``R^2``: reflect in the first axis ``s`` times, then rotate by ``2 pi k / n``."""
        return TorchAction("dihedral plane", self, Spec((2,)), _DihedralPlane(self))

    def images(self, channels: int, size: int) -> TorchAction:
        """Acting on square images ``(channels, size, size)``: flip the columns ``s`` times, then ``k`` grid turns."""
        if 4 % self.n:
            raise InterpretationError(f"D{self.n} has no exact action on a pixel grid; use n in 1, 2, 4")
        return TorchAction("dihedral image", self, Spec((channels, size, size)), _DihedralImage(self, 4 // self.n))


def _identity(a: Tensor) -> Tensor:
    return a


class _DihedralPlane(ByValue):
    def __init__(self, group: Dihedral) -> None:
        self.group = group

    def __call__(self, g: Tensor, v: Tensor) -> Tensor:
        k, s = self.group.parts(g)
        y = torch.stack([v[..., 0], torch.where(s == 1, -v[..., 1], v[..., 1])], dim=-1)
        return Cyclic(self.group.n).rotate_plane(k, y)


class _DihedralImage(ByValue):
    def __init__(self, group: Dihedral, step: int) -> None:
        self.group, self.step = group, step

    def __call__(self, g: Tensor, x: Tensor) -> Tensor:
        k, s = self.group.parts(g)
        out = torch.where(_where_k(s == 1, x), torch.flip(x, dims=(-1,)), x)
        turns = k * self.step
        result = out
        for t in (1, 2, 3):
            result = torch.where(_where_k(turns == t, x), torch.rot90(out, t, dims=(-2, -1)), result)
        return result


# ------------------------------------------------------------------------------------
# S_n as permutation matrices


class PermutationMatrices(TorchGroup):
    """``S_n`` as ``(n, n)`` floating permutation matrices (``mul`` = matrix product, ``inv`` = transpose).

    The same group as :class:`~markovcat.backends.torch.groups.Symmetric`, in a
    representation that can carry gradients (a straight-through relaxed permutation,
    see :class:`~markovcat.backends.torch.gammas.NoisySort`).
    """

    indices: Symmetric
    """The same group with permutations as index vectors."""

    def __init__(self, n: int) -> None:
        if not isinstance(n, int) or n < 1:
            raise ValueError(f"S_n needs n >= 1, got {n!r}")
        self.n, self.name = n, f"S{n}"
        self.indices = Symmetric(n)
        self.spec = Spec((n, n), None, self.sample)

    def from_indices(self, p: Tensor, dtype: torch.dtype | None = None) -> Tensor:
        """The matrix ``M`` with ``M[p[i], i] = 1``."""
        eye = torch.eye(self.n, dtype=dtype or torch.get_default_dtype(), device=p.device)
        return eye[p].transpose(-1, -2)

    def elements(self, *, dtype: torch.dtype | None = None, device: torch.device | str = "cpu",
                 limit: int = 5040) -> Tensor:
        """All ``n!`` permutation matrices (refused beyond ``limit``)."""
        return self.from_indices(Symmetric(self.n).elements(device=device, limit=limit), dtype)

    def to_indices(self, m: Tensor) -> Tensor:
        """The index vector ``p`` of permutation matrices ``m`` (``m[p[i], i] = 1``)."""
        return m.argmax(-2)

    def mul(self, a: Tensor, b: Tensor) -> Tensor:
        return small_matmul(a, b)

    def inv(self, a: Tensor) -> Tensor:
        return a.transpose(-1, -2)

    def unit(self, *, like: Tensor) -> Tensor:
        dtype = like.dtype if like.is_floating_point() else torch.get_default_dtype()
        return torch.eye(self.n, dtype=dtype, device=like.device).expand(like.shape[0], self.n, self.n)

    def sample(self, batch: int, generator: torch.Generator | None = None, dtype: torch.dtype | None = None,
               device: torch.device | str = "cpu") -> Tensor:
        return self.from_indices(self.indices.sample(batch, generator, None, device), dtype)

    def sets(self, d: int) -> TorchAction:
        """Acting on sets ``(n, d)``: ``x |-> M x`` (row ``i`` to row ``p[i]``)."""
        return TorchAction("permute rows", self, Spec((self.n, d)), _left, kind="permute rows")


def _left(m: Tensor, x: Tensor) -> Tensor:
    return small_matmul(m, x)


class _Sequence(ByValue):
    def __init__(self, group: TorchGroup) -> None:
        self.group = group

    def __call__(self, g: Tensor, x: Tensor) -> Tensor:
        if isinstance(self.group, PermutationMatrices):
            return small_matmul(x.unsqueeze(-2), g.transpose(-1, -2)).squeeze(-2)
        return torch.gather(x, -1, torch.argsort(g, dim=-1))


class _Graph(ByValue):
    def __init__(self, group: TorchGroup) -> None:
        self.group = group

    def __call__(self, g: Tensor, a: Tensor) -> Tensor:
        if isinstance(self.group, PermutationMatrices):
            return small_matmul(small_matmul(g, a), g.transpose(-1, -2))
        q = torch.argsort(g, dim=-1)  # inverse permutation: A'[i, j] = A[q[i], q[j]]
        rows = torch.gather(a, -2, q.unsqueeze(-1).expand_as(a))
        return torch.gather(rows, -1, q.unsqueeze(-2).expand_as(a))


def _n(group: TorchGroup) -> int:
    if not isinstance(group, (Symmetric, PermutationMatrices)):
        raise InterpretationError(f"{group.name} is not a representation of S_n")
    return group.n


def sequences(group: TorchGroup) -> TorchAction:
    """``S_n`` on sequences ``(n,)``: entry ``i`` moves to position ``p[i]``."""
    return TorchAction("permute sequence", group, Spec((_n(group),)), _Sequence(group))


def graphs(group: TorchGroup) -> TorchAction:
    """``S_n`` on graphs as ``(n, n)`` adjacency matrices: ``A |-> M A M^T`` (relabel the nodes)."""
    n = _n(group)
    return TorchAction("relabel graph", group, Spec((n, n)), _Graph(group))


def elements(group: TorchGroup, *, dtype: torch.dtype | None = None, device: torch.device | str = "cpu",
             limit: int = 5040) -> Tensor:
    """Every element of a finite group: ``group.elements(...)`` (see the protocol in
    :mod:`markovcat.backends.torch.groups`).

    Returns a batch ``(|G|, ...)``; refuses groups with more than ``limit`` elements.  A
    group whose ``elements()`` takes no arguments is enumerated as it says, moved to ``device``.
    """
    own = getattr(group, "elements", None)
    if not callable(own) or not getattr(group, "finite", True):
        raise InterpretationError(f"cannot enumerate the elements of {group.name}")
    if accepts(own, "limit"):
        return own(dtype=dtype, device=device, limit=limit)  # type: ignore[no-any-return]
    return own().to(device)  # type: ignore[no-any-return]
