"""Batched matrix groups: GL(d, R), translations T(d), E(d) / SE(d), direct products, and their actions.

Public names (stable): :class:`GeneralLinear`, :class:`Translation`, :class:`Euclidean`,
:class:`Product`, the matrix actions :func:`left_multiplication`, :func:`conjugation`,
:func:`right_transpose` (point clouds, ``x |-> x g^T``) and :func:`vectors`, for any
group of ``(d, d)`` matrices (:class:`~markovcat.backends.torch.groups.Orthogonal`,
:class:`GeneralLinear`).

Every element is **one tensor** per example, so samplers, couplings and
:func:`~markovcat.backends.torch.equivariance.check_equivariance` treat all groups alike:

* ``E(d) = T(d) x| O(d)`` (and ``SE(d)``) as homogeneous ``(d + 1, d + 1)`` matrices
  ``[[R, t], [0, 1]]``: ``mul`` is a matrix product, ``inv`` is exact
  (``[[R^T, -R^T t], [0, 1]]``);
* a direct product ``G1 x ... x Gk`` as the concatenation of the factors' flattened
  elements (:meth:`Product.split` / :meth:`Product.pack`).

At the diagram level each is interpreted as a *single* group object
(``markovcat.groups.Group``): the compile backend interprets atomic group objects,
and one tensor per element is what the torch checks need.  The factor structure
is still available as homomorphisms (:meth:`Euclidean.rotation_part`,
:meth:`Euclidean.embed_rotation`, :meth:`Product.projection`), whose axioms the
tests check, and the diagram-level products ``markovcat.groups.direct_product`` /
``semidirect_product`` are interpreted factor by factor
(:meth:`Product.factor_interpretation`, :meth:`Euclidean.semidirect_interpretation`),
so their axioms and premises can be checked too.  Non-compact groups (GL, T, E) have no Haar measure: their ``sample``
draws random elements for the checks, and :meth:`haar` raises.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from markovcat.backends.torch.compile import Interpretation, InterpretationError, Spec
from markovcat.backends.torch.groups import (
    ByValue,
    HaarSampler,
    Orthogonal,
    TorchAction,
    TorchGroup,
    haar_orthogonal,
    small_matmul,
)
from markovcat.backends.torch.homomorphisms import TorchHomomorphism
from markovcat.backends.torch.linalg import randn
from markovcat.groups import DirectProduct, SemidirectProduct

__all__ = [
    "GeneralLinear",
    "Translation",
    "Euclidean",
    "Product",
    "left_multiplication",
    "conjugation",
    "right_transpose",
    "vectors",
]


def _t(a: Tensor) -> Tensor:
    return a.transpose(-1, -2)


# ------------------------------------------------------------------------------------
# actions of matrix groups


class _MatrixAct(ByValue):
    """``kind`` in left / conjugate / points / vector, for a group with ``inv``; ``inverse=True`` acts by ``g^T``.

    The inverse kernels are declared (as ``act_inverse``) only for orthogonal groups,
    where ``g^-1 = g^T``; :func:`compile` checks each declared fusion numerically.
    """

    def __init__(self, group: TorchGroup, kind: str, inverse: bool = False) -> None:
        self.group, self.kind, self.inverse = group, kind, inverse

    def __call__(self, g: Tensor, x: Tensor) -> Tensor:
        if self.inverse:
            g = _t(g)
        if self.kind == "left":
            return small_matmul(g, x)
        if self.kind == "points":
            return small_matmul(x, _t(g))
        if self.kind == "vector":
            return small_matmul(x.unsqueeze(-2), _t(g)).squeeze(-2)
        return small_matmul(small_matmul(g, x), _t(g) if self.inverse else self.group.inv(g))


#: The :data:`~markovcat.backends.torch.groups.ACTION_KINDS` the matrix actions declare.
_DECLARED = {"left": "columns", "points": "rows"}


def _matrix_action(name: str, group: TorchGroup, spec: Spec, kind: str) -> TorchAction:
    inverse = _MatrixAct(group, kind, inverse=True) if isinstance(group, Orthogonal) else None
    return TorchAction(name, group, spec, _MatrixAct(group, kind), inverse, kind=_DECLARED.get(kind))


def _dim(group: TorchGroup) -> int:
    d = getattr(group, "d", None)
    if not isinstance(d, int):
        raise InterpretationError(f"{group.name} is not a group of (d, d) matrices")
    return d


def left_multiplication(group: TorchGroup, n: int) -> TorchAction:
    """``x |-> g x`` on ``(d, n)`` matrices (columns are points)."""
    return _matrix_action("left multiplication", group, Spec((_dim(group), n)), "left")


def conjugation(group: TorchGroup) -> TorchAction:
    """``x |-> g x g^-1`` on ``(d, d)`` matrices (``g x g^T`` for orthogonal ``g``)."""
    d = _dim(group)
    return _matrix_action("conjugation", group, Spec((d, d)), "conjugate")


def right_transpose(group: TorchGroup, n: int) -> TorchAction:
    """``x |-> x g^T`` on ``(n, d)`` point clouds (each row is a point ``x_i |-> g x_i``)."""
    return _matrix_action("right transpose", group, Spec((n, _dim(group))), "points")


def vectors(group: TorchGroup) -> TorchAction:
    """``v |-> g v`` on ``(d,)`` vectors."""
    return _matrix_action("vector", group, Spec((_dim(group),)), "vector")


# ------------------------------------------------------------------------------------
# GL(d, R)


class GeneralLinear(TorchGroup):
    """``GL(d, R)``: invertible ``(d, d)`` matrices; ``inv`` is ``torch.linalg.inv`` (exact up to rounding).

    Not compact: :meth:`sample` draws ``Q1 diag(exp(z / 2)) Q2`` (``Q1, Q2`` Haar in
    ``O(d)``, ``z`` standard normal), well-conditioned elements for checks, not a
    Haar measure.
    """

    compact = False

    def __init__(self, d: int) -> None:
        if not isinstance(d, int) or d < 1:
            raise ValueError(f"GL(d) needs a dimension d >= 1, got {d!r}")
        self.d, self.name = d, f"GL({d})"
        self.spec = Spec((d, d), None, self.sample)

    def mul(self, a: Tensor, b: Tensor) -> Tensor:
        return small_matmul(a, b)

    def inv(self, a: Tensor) -> Tensor:
        return torch.linalg.inv(a)

    def unit(self, *, like: Tensor) -> Tensor:
        return torch.eye(self.d, dtype=like.dtype, device=like.device).expand(like.shape[0], self.d, self.d)

    def sample(self, batch: int, generator: torch.Generator | None = None, dtype: torch.dtype | None = None,
               device: torch.device | str = "cpu") -> Tensor:
        dtype = dtype or torch.get_default_dtype()
        q1 = haar_orthogonal(batch, self.d, generator, dtype, device)
        q2 = haar_orthogonal(batch, self.d, generator, dtype, device)
        scale = torch.exp(0.5 * randn((batch, self.d), generator, dtype, device))
        return q1 * scale.unsqueeze(-2) @ q2

    def left(self, n: int) -> TorchAction:
        """``GL(d)`` acting on ``(d, n)`` matrices by left multiplication ``x -> g x``."""
        return left_multiplication(self, n)

    def points(self, n: int) -> TorchAction:
        """``GL(d)`` acting on ``n`` points ``(n, d)`` by ``x -> x g^T``."""
        return right_transpose(self, n)

    def conjugation(self) -> TorchAction:
        """``GL(d)`` acting on ``(d, d)`` matrices by ``x -> g x g^-1``."""
        return conjugation(self)

    def orthogonal(self) -> TorchHomomorphism:
        """The inclusion ``O(d) -> GL(d)`` (the identity on matrices)."""
        return TorchHomomorphism("O->GL", Orthogonal(self.d), self, _identity)


def _identity(a: Tensor) -> Tensor:
    return a


# ------------------------------------------------------------------------------------
# T(d)


class Translation(TorchGroup):
    """``T(d) = (R^d, +)``; :meth:`sample` draws standard normal vectors (T(d) has no Haar probability)."""

    compact = False

    def __init__(self, d: int) -> None:
        if not isinstance(d, int) or d < 1:
            raise ValueError(f"T(d) needs a dimension d >= 1, got {d!r}")
        self.d, self.name = d, f"T({d})"
        self.spec = Spec((d,), None, self.sample)

    def mul(self, a: Tensor, b: Tensor) -> Tensor:
        return a + b

    def inv(self, a: Tensor) -> Tensor:
        return -a

    def unit(self, *, like: Tensor) -> Tensor:
        return torch.zeros(like.shape[0], self.d, dtype=like.dtype, device=like.device)

    def sample(self, batch: int, generator: torch.Generator | None = None, dtype: torch.dtype | None = None,
               device: torch.device | str = "cpu") -> Tensor:
        return randn((batch, self.d), generator, dtype or torch.get_default_dtype(), device)

    def points(self, n: int) -> TorchAction:
        """``x |-> x + t`` on ``(n, d)`` point clouds."""
        return TorchAction("translate points", self, Spec((n, self.d)), _translate_points)

    def vectors(self) -> TorchAction:
        """``T(d)`` acting on vectors ``(d,)`` by ``v -> v + t``."""
        return TorchAction("translate", self, Spec((self.d,)), _translate_vector)


def _translate_points(t: Tensor, x: Tensor) -> Tensor:
    return x + t.unsqueeze(-2)


def _translate_vector(t: Tensor, x: Tensor) -> Tensor:
    return x + t


# ------------------------------------------------------------------------------------
# E(d) and SE(d)


class Euclidean(TorchGroup):
    """``E(d) = T(d) x| O(d)`` (``SE(d)`` with ``special=True``) as homogeneous ``(d+1, d+1)`` matrices.

    ``g = [[R, t], [0, 1]]`` acts on points by ``x |-> R x + t``; products of
    homogeneous matrices keep the last row ``[0, ..., 0, 1]`` exactly.
    """

    translations: Translation
    """The subgroup ``T(d)`` of the translation parts."""
    rotations: Orthogonal
    """The subgroup ``O(d)`` (``SO(d)`` for ``SE(d)``) of the rotation parts."""

    compact = False

    def __init__(self, d: int, special: bool = False) -> None:
        if not isinstance(d, int) or d < 1:
            raise ValueError(f"E(d) needs a dimension d >= 1, got {d!r}")
        self.d, self.special = d, special
        self.name = f"{'SE' if special else 'E'}({d})"
        self.rotations = Orthogonal(d, special)
        self.translations = Translation(d)
        self.spec = Spec((d + 1, d + 1), None, self.sample)

    def element(self, t: Tensor, r: Tensor) -> Tensor:
        """The element ``x |-> r x + t`` (``t`` of shape ``(b, d)``, ``r`` of shape ``(b, d, d)``)."""
        top = torch.cat([r, t.unsqueeze(-1)], dim=-1)
        bottom = torch.zeros_like(top[..., :1, :])
        bottom[..., 0, -1] = 1
        return torch.cat([top, bottom], dim=-2)

    def translation(self, g: Tensor) -> Tensor:
        """The translation part ``t`` of elements ``x -> r x + t``."""
        return g[..., : self.d, self.d]

    def rotation(self, g: Tensor) -> Tensor:
        """The rotation part ``r`` of elements ``x -> r x + t``."""
        return g[..., : self.d, : self.d]

    def mul(self, a: Tensor, b: Tensor) -> Tensor:
        return small_matmul(a, b)

    def inv(self, a: Tensor) -> Tensor:
        rt = _t(self.rotation(a))
        return self.element(-small_matmul(self.translation(a).unsqueeze(-2), _t(rt)).squeeze(-2), rt)

    def unit(self, *, like: Tensor) -> Tensor:
        n = self.d + 1
        return torch.eye(n, dtype=like.dtype, device=like.device).expand(like.shape[0], n, n)

    def sample(self, batch: int, generator: torch.Generator | None = None, dtype: torch.dtype | None = None,
               device: torch.device | str = "cpu") -> Tensor:
        r = self.rotations.sample(batch, generator, dtype, device)
        return self.element(self.translations.sample(batch, generator, dtype, device), r)

    def points(self, n: int) -> TorchAction:
        """``x |-> x R^T + t`` on ``(n, d)`` point clouds."""
        return TorchAction("move points", self, Spec((n, self.d)), _EuclideanPoints(self))

    def semidirect_interpretation(self, product: SemidirectProduct) -> Interpretation:
        """Interpret the diagram-level ``T(d) x| O(d)`` (``semidirect_product(T, O, theta)``) factor by factor.

        ``T`` by :class:`Translation`, ``O`` by :attr:`rotations`, ``theta`` by rotating
        vectors.  Declares the product's premises (both groups' axioms, theta's action
        axioms, theta acting by automorphisms) for the checks; the product's own axioms
        follow from them.  (They are not declared themselves: ``check_laws`` measures
        relative error, and the translation part of ``g g^-1`` is a rounding error
        against an exact zero.)
        """
        if not isinstance(product, SemidirectProduct):
            raise TypeError(f"expected a markovcat SemidirectProduct, got {type(product).__name__}")
        rotate = TorchAction("rotate translation", self.rotations, self.translations.spec, _MatrixAct(self, "vector"))
        parts = (self.translations.interpretation(product.normal)
                 | self.rotations.interpretation(product.acting, (product.theta, rotate)))
        return parts | Interpretation(laws=[_Premises(product.premises)])

    def rotation_part(self) -> TorchHomomorphism:
        """The homomorphism ``E(d) -> O(d)``, ``(t, R) |-> R``."""
        return TorchHomomorphism("rot", self, self.rotations, self.rotation)

    def embed_rotation(self) -> TorchHomomorphism:
        """The inclusion ``O(d) -> E(d)``, ``R |-> (0, R)``."""
        return TorchHomomorphism("in_O", self.rotations, self, _EmbedRotation(self))

    def embed_translation(self) -> TorchHomomorphism:
        """The inclusion ``T(d) -> E(d)``, ``t |-> (t, 1)``."""
        return TorchHomomorphism("in_T", self.translations, self, _EmbedTranslation(self))


class _Premises:
    """Equations to check numerically, in the shape :func:`check_laws` expects (``.axioms``)."""

    def __init__(self, axioms: tuple) -> None:  # type: ignore[type-arg]
        self.axioms = axioms

    def __repr__(self) -> str:
        return "the premises of a semidirect product"


class _EuclideanPoints(ByValue):
    def __init__(self, group: Euclidean) -> None:
        self.group = group

    def __call__(self, g: Tensor, x: Tensor) -> Tensor:
        return small_matmul(x, _t(self.group.rotation(g))) + self.group.translation(g).unsqueeze(-2)


class _EmbedRotation:
    def __init__(self, group: Euclidean) -> None:
        self.group = group

    def __call__(self, r: Tensor) -> Tensor:
        return self.group.element(r.new_zeros(r.shape[:-1]), r)


class _EmbedTranslation:
    def __init__(self, group: Euclidean) -> None:
        self.group = group

    def __call__(self, t: Tensor) -> Tensor:
        d = self.group.d
        return self.group.element(t, torch.eye(d, dtype=t.dtype, device=t.device).expand(t.shape[0], d, d))


# ------------------------------------------------------------------------------------
# direct products


class Product(TorchGroup):
    """``G1 x ... x Gk`` with elements packed as the concatenation of the factors' flattened elements.

    The factors must all be floating (e.g. ``O(d) x O(e)``) or all integer
    (e.g. ``C4 x S5``).  Compact (with a Haar sampler) when every factor is.
    """

    sizes: list[int]
    """The number of entries of each factor's elements in the packed vector."""
    shapes: list[tuple[int, ...]]
    """The per-element shape of each factor."""

    factors: tuple[TorchGroup, ...]
    """The factor groups, in order."""

    def __init__(self, *factors: TorchGroup) -> None:
        if len(factors) < 2 or not all(isinstance(f, TorchGroup) for f in factors):
            raise TypeError("a Product needs at least two TorchGroups")
        kinds = {f.spec.dtype is None for f in factors}
        if len(kinds) > 1:
            raise InterpretationError(f"cannot pack {' x '.join(f.name for f in factors)}: mixed floating and "
                                      "integer elements")
        self.factors = factors
        self.shapes = [tuple(int(s) for s in f.spec.shape) for f in factors]  # type: ignore[arg-type]
        self.sizes = [math.prod(s) for s in self.shapes]
        self.name = " x ".join(f.name for f in factors)
        self.compact = all(getattr(f, "compact", True) for f in factors)
        self.spec = Spec((sum(self.sizes),), factors[0].spec.dtype, self.sample)

    def split(self, g: Tensor) -> list[Tensor]:
        """The factors' components of packed elements ``g``."""
        parts = torch.split(g, self.sizes, dim=-1)
        return [p.reshape(*g.shape[:-1], *s) for p, s in zip(parts, self.shapes, strict=True)]

    def pack(self, *parts: Tensor) -> Tensor:
        """Packed elements from one batch of components per factor (the inverse of ``split``)."""
        batch = parts[0].shape[0]
        return torch.cat([p.reshape(batch, -1) for p in parts], dim=-1)

    def mul(self, a: Tensor, b: Tensor) -> Tensor:
        return self.pack(*(f.mul(x, y) for f, x, y in zip(self.factors, self.split(a), self.split(b), strict=True)))

    def inv(self, a: Tensor) -> Tensor:
        return self.pack(*(f.inv(x) for f, x in zip(self.factors, self.split(a), strict=True)))

    def unit(self, *, like: Tensor) -> Tensor:
        return self.pack(*(f.unit(like=like) for f in self.factors))

    def sample(self, batch: int, generator: torch.Generator | None = None, dtype: torch.dtype | None = None,
               device: torch.device | str = "cpu") -> Tensor:
        return self.pack(*(f.sample(batch, generator, dtype, device) for f in self.factors))

    @property
    def raw_size(self) -> int:
        """The factors' raw sizes, side by side."""
        return sum(f.raw_size for f in self.factors)

    def project(self, raw: Tensor) -> Tensor:
        """Factor by factor: ``raw`` split by the factors' raw sizes, each part projected onto its factor."""
        parts = torch.split(raw, [f.raw_size for f in self.factors], dim=-1)
        return self.pack(*(f.project(p) for f, p in zip(self.factors, parts, strict=True)))

    def haar_sampler(self) -> HaarSampler:
        if not self.compact:
            raise InterpretationError(f"{self.name} is not compact: it has no Haar probability measure")
        return HaarSampler(self)

    def factor_interpretation(self, product: DirectProduct) -> Interpretation:
        """Interpret the diagram-level ``direct_product(G, H)`` by this product's two factors, box by box.

        Elements then travel as two wires (one per factor); the product's axioms are declared.
        """
        if not isinstance(product, DirectProduct) or len(self.factors) != 2:
            raise TypeError("factor_interpretation needs a markovcat DirectProduct and a Product of two groups")
        left, right = self.factors
        parts = left.interpretation(product.factors[0]) | right.interpretation(product.factors[1])
        return parts | Interpretation(laws=[product])

    def projection(self, i: int) -> TorchHomomorphism:
        """The homomorphism onto factor ``i``."""
        return TorchHomomorphism(f"pr{i}", self, self.factors[i], _Component(self, i))

    def factor_action(self, i: int, action: TorchAction) -> TorchAction:
        """Factor ``i``'s ``action``, as an action of the product (restriction along the projection)."""
        return action.restrict(self.projection(i))

    def two_sided(self, swap: bool = False) -> TorchAction:
        """For ``G x H`` of ``(d, d)`` and ``(e, e)`` matrices: ``x |-> A x B^T`` on ``(d, e)`` matrices.

        ``swap=True`` gives ``y |-> B y A^T`` on ``(e, d)`` (e.g. matrix inversion, MATH.md section 6).
        """
        if len(self.factors) != 2:
            raise InterpretationError("two_sided needs a product of two matrix groups")
        d, e = (_dim(f) for f in self.factors)
        shape = (e, d) if swap else (d, e)
        return TorchAction("two-sided" + (" swapped" if swap else ""), self, Spec(shape), _TwoSided(self, swap))


class _Component:
    def __init__(self, group: Product, i: int) -> None:
        self.group, self.i = group, i

    def __call__(self, g: Tensor) -> Tensor:
        return self.group.split(g)[self.i]


class _TwoSided(ByValue):
    def __init__(self, group: Product, swap: bool) -> None:
        self.group, self.swap = group, swap

    def __call__(self, g: Tensor, x: Tensor) -> Tensor:
        a, b = self.group.split(g)
        if self.swap:
            a, b = b, a
        return small_matmul(small_matmul(a, x), _t(b))
