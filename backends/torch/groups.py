"""Batched PyTorch groups and actions for interpreting group diagrams.

Elements carry a leading batch dimension.  Each :class:`TorchGroup` gives ``mul``,
``unit(like=...)``, ``inv`` and ``sample`` (Haar / uniform random elements); each
:class:`TorchAction` gives ``act(g, x)`` and a :class:`Spec` for its space.
:meth:`TorchGroup.interpretation` turns them into an
:class:`~markovcat.backends.torch.compile.Interpretation` for the boxes of a
:class:`~markovcat.groups.Group` and its :class:`~markovcat.groups.Action` s, declaring
their axioms so that :func:`compile` checks them.

* :class:`Orthogonal` ``O(d)`` / ``SO(d)``: ``(d, d)`` matrices; Haar samples by QR of a
  Gaussian matrix with the sign fix (and a column flip for ``SO(d)``); acts on point
  clouds ``(n, d)`` (each row rotated) and on vectors ``(d,)``.
* :class:`Cyclic` ``C_n``: integers mod ``n``; acts on ``R^2`` by rotation and, for
  ``n`` in 1, 2, 4, on square images ``(c, h, w)`` by exact grid rotations (``rot90``).
* :class:`Symmetric` ``S_n``: permutations as index vectors ``p`` (``p[i]`` is the
  image of ``i``); acts on sets ``(n, d)`` by moving row ``i`` to row ``p[i]``.

:meth:`TorchAction.restrict` restricts an action along a homomorphism
(:class:`~markovcat.backends.torch.homomorphisms.TorchHomomorphism`).  More groups live in
:mod:`markovcat.backends.torch.matrix_groups` and :mod:`markovcat.backends.torch.finite_groups`.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import torch
from torch import Tensor

from markovcat.backends.torch.linalg import qr_positive
from markovcat.backends.torch.compile import Interpretation, InterpretationError, Spec, rand, randn
from markovcat.groups import Action, Group
from markovcat.syntax import Box, Diagram

if TYPE_CHECKING:
    from markovcat.backends.torch.homomorphisms import TorchHomomorphism

__all__ = [
    "TorchGroup",
    "TorchAction",
    "Orthogonal",
    "Cyclic",
    "Symmetric",
    "HaarSampler",
    "LeftTranslation",
    "PointCloudFrame",
    "SortFrame",
    "haar_orthogonal",
]


def _batch_of(inputs: tuple[Tensor, ...], like: Tensor | None) -> tuple[int, torch.dtype, torch.device]:
    reference = inputs[0] if inputs else like
    if reference is None:
        raise InterpretationError("a sampler with no inputs needs like=... to know the batch size")
    dtype = reference.dtype if reference.is_floating_point() else torch.get_default_dtype()
    if like is not None and like.is_floating_point():
        dtype = like.dtype
    return reference.shape[0], dtype, reference.device


class TorchAction:
    """A batched action ``act(g, x)`` of ``group`` on tensors of per-example ``spec``."""

    def __init__(self, name: str, group: TorchGroup, spec: Spec, act: Callable[[Tensor, Tensor], Tensor],
                 act_inverse: Callable[[Tensor, Tensor], Tensor] | None = None) -> None:
        self.name, self.group, self.spec, self.act = name, group, spec, act
        self.act_inverse = act_inverse  # optional: act_inverse(g, x) == act(inv(g), x), a cheaper kernel

    def __call__(self, g: Tensor, x: Tensor) -> Tensor:
        return self.act(g, x)

    def random(self, batch: int, generator: torch.Generator | None = None, dtype: torch.dtype | None = None,
               device: torch.device | str = "cpu") -> Tensor:
        """Random points of the space (standard Gaussian entries unless the spec says otherwise)."""
        return self.spec.random(batch, generator, dtype, device)

    def restrict(self, phi: TorchHomomorphism) -> TorchAction:
        """The action of ``phi.source`` through ``phi``: ``(h, x) |-> act(phi(h), x)``."""
        if phi.target is not self.group and phi.target.name != self.group.name:
            raise InterpretationError(f"{phi.name} lands in {phi.target.name}, but this action is of {self.group.name}")
        return TorchAction(f"{self.name}|{phi.name}", phi.source, self.spec, _Restricted(self.act, phi.map))

    def __repr__(self) -> str:
        return f"<{self.group.name} acting on {self.spec} by {self.name}>"


class _Restricted:
    def __init__(self, act: Callable[[Tensor, Tensor], Tensor], phi: Callable[[Tensor], Tensor]) -> None:
        self.act, self.phi = act, phi

    def __call__(self, h: Tensor, x: Tensor) -> Tensor:
        return self.act(self.phi(h), x)


def _trivial(g: Tensor, x: Tensor) -> Tensor:
    return x


class TorchGroup:
    """Base class: subclasses define ``spec``, ``mul``, ``inv``, ``unit``, ``sample``."""

    name: str
    spec: Spec
    compact: bool = True  # has a Haar probability measure (then :meth:`sample` draws it)

    def mul(self, a: Tensor, b: Tensor) -> Tensor:
        raise NotImplementedError

    def inv(self, a: Tensor) -> Tensor:
        raise NotImplementedError

    def unit(self, *, like: Tensor) -> Tensor:
        raise NotImplementedError

    def sample(self, batch: int, generator: torch.Generator | None = None, dtype: torch.dtype | None = None,
               device: torch.device | str = "cpu") -> Tensor:
        raise NotImplementedError

    def regular(self) -> TorchAction:
        """The group acting on itself by left multiplication (the object ``(G, *)``)."""
        return TorchAction("mul", self, self.spec, self.mul)

    def trivial(self, spec: Spec) -> TorchAction:
        return TorchAction("trivial", self, spec, _trivial)

    def interpretation(self, group: Group, *actions: tuple[Action, TorchAction]) -> Interpretation:
        """Interpret the boxes of ``group`` (and of each ``(action, torch_action)``) by this group.

        The group's and actions' axioms are declared, so :func:`compile` checks them
        numerically on random elements.
        """
        if not isinstance(group, Group):
            raise TypeError(f"interpretation needs a markovcat Group, got {type(group).__name__} {group!r}")
        boxes: dict[str, Any] = {}
        for part, function in ((group.mul, self._fast("mul")), (group.unit, self.unit), (group.inv, self._fast("inv"))):
            boxes[_box_of(part, group)] = function
        types = {group.ty.atoms[0]: self.spec}
        laws: list[Any] = [group]
        fusions: dict[tuple[str, str], Any] = {}
        for action, torch_action in actions:
            if action.group != group:
                raise InterpretationError(f"{action!r} is an action of {action.group!r}, not of {group!r}")
            boxes[_box_of(action.act, action)] = torch_action.act
            if torch_action.act_inverse is not None:
                fusions[(_box_of(group.inv, group), _box_of(action.act, action))] = torch_action.act_inverse
            if len(action.space) != 1:
                raise InterpretationError(f"{action!r} acts on {action.space}: give one action per atomic type")
            types[action.space.atoms[0]] = torch_action.spec
            laws.append(action)
        return Interpretation(boxes, types, laws, fusions=fusions)

    def _fast(self, op: str) -> Callable[..., Tensor]:
        """The plain function implementing ``op`` (cheaper to call than the bound method), if any."""
        return getattr(self, f"_{op}_function", None) or getattr(self, op)

    def haar(self) -> HaarSampler:
        """A sampler of uniform (Haar) elements ignoring its inputs; see :class:`HaarSampler`."""
        if not self.compact:
            raise InterpretationError(f"{self.name} is not compact: it has no Haar probability measure")
        return HaarSampler(self)

    def __repr__(self) -> str:
        return self.name


def _box_of(part: Diagram, owner: object) -> str:
    if isinstance(part, Box):
        return part.name
    raise InterpretationError(
        f"{owner!r} is built from other groups' boxes; interpret its factors instead of the product"
    )


class HaarSampler:
    """Interpretation of a stochastic box ``gamma : X -> G`` drawing Haar elements independently of ``X``.

    Its :attr:`coupling` is left translation: if the input moves by ``g``, the draw
    ``R0`` may be replaced by ``g R0``, which has the same (Haar) law.
    """

    def __init__(self, group: TorchGroup) -> None:
        self.group = group
        self.coupling = LeftTranslation(group)

    def __call__(self, *inputs: Tensor, generator: torch.Generator | None = None, like: Tensor | None = None) -> Tensor:
        if like is None:
            batch, dtype, device = _batch_of(inputs, like)
            return self.group.sample(batch, generator, dtype, device)
        return self.group.sample(like.shape[0], generator, like.dtype, like.device)

    def __repr__(self) -> str:
        return f"Haar({self.group.name})"


class LeftTranslation:
    """The coupling ``(g, draw) -> g * draw``."""

    def __init__(self, group: TorchGroup) -> None:
        self.group = group

    def __call__(self, g: Tensor, draw: Tensor) -> Tensor:
        return self.group.mul(g, draw)


# ------------------------------------------------------------------------------------
# O(d) and SO(d)


def haar_orthogonal(batch: int, d: int, generator: torch.Generator | None = None, dtype: torch.dtype | None = None,
                    device: torch.device | str = "cpu", special: bool = False) -> Tensor:
    """``batch`` Haar-distributed elements of O(d) (or SO(d)): QR of a Gaussian matrix with the sign fix.

    The factorisation is :func:`markovcat.backends.torch.linalg.qr_positive` (batched Gram-Schmidt
    for small ``d``, whose ``R`` has a positive diagonal: the sign fix built in).
    """
    dtype = dtype or torch.get_default_dtype()
    z = randn((batch, d, d), generator, dtype, device)
    q, _ = qr_positive(z)
    if special:
        flip = torch.sgn(torch.linalg.det(q))
        q = torch.cat([q[..., :1] * flip[:, None, None], q[..., 1:]], dim=-1)
    return q


def _transpose(a: Tensor) -> Tensor:
    return a.transpose(-1, -2)


def _rotate_points(g: Tensor, x: Tensor) -> Tensor:
    return torch.matmul(x, g.transpose(-1, -2))


def _unrotate_points(g: Tensor, x: Tensor) -> Tensor:
    return torch.matmul(x, g)  # rows x_i -> g^T x_i = g^-1 x_i


def _rotate_vector(g: Tensor, x: Tensor) -> Tensor:
    return torch.matmul(g, x.unsqueeze(-1)).squeeze(-1)


def _unrotate_vector(g: Tensor, x: Tensor) -> Tensor:
    return torch.matmul(x.unsqueeze(-2), g).squeeze(-2)


class Orthogonal(TorchGroup):
    """``O(d)`` (or ``SO(d)`` with ``special=True``) as batched ``(d, d)`` matrices."""

    def __init__(self, d: int, special: bool = False) -> None:
        if not isinstance(d, int) or d < 1:
            raise ValueError(f"O(d) needs a dimension d >= 1, got {d!r}")
        self.d, self.special = d, special
        self.name = f"{'SO' if special else 'O'}({d})"
        self.spec = Spec((d, d), None, self.sample)
        self._mul_function, self._inv_function = torch.matmul, _transpose

    def mul(self, a: Tensor, b: Tensor) -> Tensor:
        return torch.matmul(a, b)

    def inv(self, a: Tensor) -> Tensor:
        return _transpose(a)

    def unit(self, *, like: Tensor) -> Tensor:
        return torch.eye(self.d, dtype=like.dtype, device=like.device).expand(like.shape[0], self.d, self.d)

    def sample(self, batch: int, generator: torch.Generator | None = None, dtype: torch.dtype | None = None,
               device: torch.device | str = "cpu") -> Tensor:
        return haar_orthogonal(batch, self.d, generator, dtype, device, self.special)

    def points(self, n: int) -> TorchAction:
        """Acting on point clouds ``(n, d)``: every point (row) is rotated, ``x -> x g^T``."""
        return TorchAction("rotate points", self, Spec((n, self.d)), _rotate_points, _unrotate_points)

    def vectors(self) -> TorchAction:
        return TorchAction("rotate vector", self, Spec((self.d,)), _rotate_vector, _unrotate_vector)

    def left(self, n: int) -> TorchAction:
        """Acting on ``(d, n)`` matrices by left multiplication ``x -> g x``."""
        from markovcat.backends.torch.matrix_groups import left_multiplication

        return left_multiplication(self, n)

    def conjugation(self) -> TorchAction:
        """Acting on ``(d, d)`` matrices by ``x -> g x g^T``."""
        from markovcat.backends.torch.matrix_groups import conjugation

        return conjugation(self)


def check_layout(layout: str) -> str:
    """``layout`` if it is "rows" or "columns" (see :func:`as_rows`), else ``ValueError``."""
    if layout not in ("rows", "columns"):
        raise ValueError(f"layout must be 'rows' (x g^T on (n, d) clouds) or 'columns' (g x on (d, n)), got {layout!r}")
    return layout


def as_rows(x: Tensor, layout: str) -> Tensor:
    """A batch of point clouds as rows ``(.., n, d)``: ``layout="columns"`` means ``(.., d, n)``, acted on by ``g x``.

    ``(g x)^T = x^T g^T``, so an O(d)-frame of clouds in rows is one of the columns too.
    """
    return x if layout == "rows" else x.transpose(-1, -2)


class PointCloudFrame:
    """Deterministic O(d)-equivariant frame of a point cloud ``(n, d)`` (canonicalisation).

    The frame is the Gram-Schmidt orthonormalisation (QR with positive diagonal) of the
    ``d`` moment vectors ``v_k = sum_i |x_i|^(2k) x_i``, ``k = 0..d-1``; since
    ``v_k(g x) = g v_k(x)`` and QR commutes with rotations, ``frame(g.x) = g frame(x)``.
    A cloud whose moment vectors are (nearly) dependent, e.g. a planar or highly
    symmetric one, has no well-defined frame: with ``validate=True`` (the default) that
    raises a ``ValueError`` (a data-dependent check, so leave it off under ``torch.compile``);
    with ``validate=False`` the frame is still orthogonal and finite, but not equivariant
    there.  ``special=True`` gives an ``SO(d)`` frame: the last column's sign makes the
    determinant 1, so only the first ``d - 1`` moment vectors need be independent.
    ``layout="columns"`` takes ``(d, n)`` matrices acted on by ``x -> g x`` instead (see :func:`as_rows`).
    """

    reason = "the moment frame is O(d)-equivariant: frame(g.x) = g frame(x)"

    def __init__(self, validate: bool = True, rtol: float = 1e-6, special: bool = False, layout: str = "rows") -> None:
        self.validate, self.rtol, self.special, self.layout = validate, rtol, special, check_layout(layout)

    def __call__(self, x: Tensor) -> Tensor:
        x = as_rows(x, self.layout)
        d = x.shape[-1]
        norms = (x * x).sum(-1, keepdim=True)
        v = torch.stack([(x * norms**k).sum(-2) for k in range(d)], dim=-1)
        q, r = torch.linalg.qr(v)
        diag = torch.diagonal(r, dim1=-2, dim2=-1)
        if self.validate:
            used = diag[..., : d - 1] if self.special and d > 1 else diag
            ratio = used.abs().amin(-1) / diag.abs().amax(-1).clamp_min(torch.finfo(x.dtype).tiny)
            bad = ~(ratio > self.rtol)
            if bool(bad.any()):
                index = int(bad.nonzero()[0, 0])
                raise ValueError(
                    f"degenerate point cloud at batch index {index}: its {d} moment vectors are (nearly) linearly "
                    f"dependent (conditioning {float(ratio[index]):.2g} <= {self.rtol:g}), e.g. a planar, collinear "
                    "or symmetric cloud, so it has no canonical frame"
                )
        q = q * torch.where(diag < 0, -1.0, 1.0).to(q.dtype).unsqueeze(-2)
        if self.special:
            flip = torch.where(torch.linalg.det(q) < 0, -1.0, 1.0).to(q.dtype)
            q = torch.cat([q[..., :-1], q[..., -1:] * flip[..., None, None]], dim=-1)
        return q


# ------------------------------------------------------------------------------------
# C_n


def _rot90_batched(k: Tensor, x: Tensor) -> Tensor:
    out = x
    for turns in (1, 2, 3):
        mask = (k == turns).view(-1, *([1] * (x.dim() - 1)))
        out = torch.where(mask, torch.rot90(x, turns, dims=(-2, -1)), out)
    return out


class Cyclic(TorchGroup):
    """``C_n`` as batched integers ``0..n-1`` (``k`` is rotation by ``2 pi k / n``)."""

    def __init__(self, n: int) -> None:
        if not isinstance(n, int) or n < 1:
            raise ValueError(f"C_n needs n >= 1, got {n!r}")
        self.n = n
        self.name = f"C{n}"
        self.spec = Spec((), torch.long, self.sample)

    def mul(self, a: Tensor, b: Tensor) -> Tensor:
        return torch.remainder(a + b, self.n)

    def inv(self, a: Tensor) -> Tensor:
        return torch.remainder(-a, self.n)

    def unit(self, *, like: Tensor) -> Tensor:
        return torch.zeros(like.shape[0], dtype=torch.long, device=like.device)

    def sample(self, batch: int, generator: torch.Generator | None = None, dtype: torch.dtype | None = None,
               device: torch.device | str = "cpu") -> Tensor:
        if generator is None:
            return torch.randint(0, self.n, (batch,), device=device)
        return torch.randint(0, self.n, (batch,), generator=generator, device=device)

    def rotate_plane(self, g: Tensor, v: Tensor) -> Tensor:
        angle = g.to(v.dtype) * (2 * math.pi / self.n)
        c, s = torch.cos(angle), torch.sin(angle)
        return torch.stack([c * v[..., 0] - s * v[..., 1], s * v[..., 0] + c * v[..., 1]], dim=-1)

    def plane(self) -> TorchAction:
        """Acting on ``R^2`` by rotation."""
        return TorchAction("rotate plane", self, Spec((2,)), self.rotate_plane)

    def images(self, channels: int, size: int) -> TorchAction:
        """Acting on square images ``(channels, size, size)`` by exact quarter turns (n in 1, 2, 4)."""
        if 4 % self.n:
            raise InterpretationError(f"C{self.n} has no exact action on a pixel grid; use n in 1, 2, 4")
        step = 4 // self.n
        return TorchAction("rotate image", self, Spec((channels, size, size)), _GridRotation(step))


class _GridRotation:
    def __init__(self, step: int) -> None:
        self.step = step

    def __call__(self, g: Tensor, x: Tensor) -> Tensor:
        return _rot90_batched(g * self.step, x)


# ------------------------------------------------------------------------------------
# S_n


def _compose(p: Tensor, q: Tensor) -> Tensor:
    return torch.gather(p, -1, q)


def _invert(p: Tensor) -> Tensor:
    return torch.argsort(p, dim=-1)


def _permute_rows(p: Tensor, x: Tensor) -> Tensor:
    index = _invert(p).unsqueeze(-1).expand(*p.shape, x.shape[-1])
    return torch.gather(x, -2, index)


def _unpermute_rows(p: Tensor, x: Tensor) -> Tensor:
    return torch.gather(x, -2, p.unsqueeze(-1).expand(*p.shape, x.shape[-1]))  # row p[i] back to row i


class Symmetric(TorchGroup):
    """``S_n`` as batched index vectors; ``mul(p, q) = p o q`` (``q`` first)."""

    def __init__(self, n: int) -> None:
        if not isinstance(n, int) or n < 1:
            raise ValueError(f"S_n needs n >= 1, got {n!r}")
        self.n = n
        self.name = f"S{n}"
        self.spec = Spec((n,), torch.long, self.sample)
        self._mul_function, self._inv_function = _compose, _invert

    def mul(self, a: Tensor, b: Tensor) -> Tensor:
        return _compose(a, b)

    def inv(self, a: Tensor) -> Tensor:
        return _invert(a)

    def unit(self, *, like: Tensor) -> Tensor:
        return torch.arange(self.n, device=like.device).expand(like.shape[0], self.n)

    def sample(self, batch: int, generator: torch.Generator | None = None, dtype: torch.dtype | None = None,
               device: torch.device | str = "cpu") -> Tensor:
        return torch.argsort(rand((batch, self.n), generator, None, device), dim=-1)

    def sets(self, d: int) -> TorchAction:
        """Acting on sets of ``n`` points of ``R^d`` (rows) by permuting rows."""
        return TorchAction("permute rows", self, Spec((self.n, d)), _permute_rows, _unpermute_rows)


class SortFrame:
    """Deterministic S_n-equivariant ``gamma : (n, d) -> S_n``: the permutation sorting a per-row score.

    ``gamma(x) = argsort(x @ weights)``, so ``gamma(p.x) = p o gamma(x)``; tied scores
    (e.g. repeated rows) make the frame ambiguous and, with ``validate=True``, raise.
    """

    def __init__(self, weights: Tensor, validate: bool = True) -> None:
        self.weights, self.validate = weights, validate

    def __call__(self, x: Tensor) -> Tensor:
        score = torch.matmul(x, self.weights.to(x.dtype))
        order = torch.argsort(score, dim=-1)
        if self.validate:
            ordered = torch.gather(score, -1, order)
            if bool((ordered[..., 1:] == ordered[..., :-1]).any()):
                raise ValueError("tied sorting scores: two rows of a set score equally, so its ordering is ambiguous")
        return order
