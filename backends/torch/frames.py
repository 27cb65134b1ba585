"""Deterministic gamma constructions (canonicalisation) and frames, as batched torch callables.

Public names (stable), each ``gamma(x)`` with ``gamma(g.x) = g gamma(x)``:

* :class:`PCACanonicaliser` - ``O(d)`` / ``SO(d)`` on point clouds ``(n, d)``: eigenvectors of the
  centred covariance, ordered by decreasing eigenvalue, signs fixed by the third moment
  (``SO(d)``: the last sign by the determinant instead); ``layout="columns"`` for ``(d, n)``
  matrices acted on by ``g x``;
* :class:`PCAFrames` - all ``2^d`` (``SO(d)``: ``2^(d-1)``) sign choices of the PCA frame,
  ``(batch, 2^d, d, d)``, for batched frame averaging (Puny et al. 2022), and
  :class:`UniformFrame`, the stochastic gamma drawing one of them;
* :class:`Centroid` - ``T(d)``: the mean point;
* :class:`Lexsort` - ``S_n`` on sets ``(n, d)``: the permutation sorting the rows
  lexicographically;
* :class:`OrbitArgmax` - a finite group (``C_n``, ``D_n`` on images, ``S_n`` on sets...): the element ``h``
  maximising a fixed score of ``h^-1 . x``;
* :class:`LowerCholesky` - the ``GL(d)`` part of the GL gamma, ``chol(x x^T)``.

Each callable carries a ``reason`` (why it is equivariant, for
:meth:`~markovcat.gspace.Equivariant.assume`); :class:`UniformFrame` also has
``elements(x)``, its whole finite support, for exact batched averaging.

Policy for ties and degenerate inputs: where the canonical element is not unique
(repeated eigenvalues, coincident points, a cloud symmetric along a principal axis,
repeated rows, a tied orbit score, a rank-deficient matrix) the construction is not
equivariant at that input, so with ``validate=True`` (the default) it raises a
``ValueError`` naming the batch index and the reason (the PCA frames also refuse
NaN or inf).  With ``validate=False`` it returns a finite element of the group all
the same (never NaN for finite inputs), but equivariance then fails at those
inputs.  The checks are data-dependent (one host sync): leave them off under
``torch.compile``.  Degeneracy is judged relative to ``rtol``.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from typing import Any

import torch
from torch import Tensor

from markovcat.backends.torch.finite_groups import elements
from markovcat.backends.torch.groups import LeftTranslation, TorchAction, as_rows, check_layout
from markovcat.backends.torch.linalg import rand

__all__ = ["PCACanonicaliser", "PCAFrames", "UniformFrame", "Centroid", "Lexsort", "OrbitArgmax", "LowerCholesky"]


def _refuse(bad: Tensor, what: str) -> None:
    if bool(bad.any()):
        index = int(bad.nonzero()[0, 0])
        raise ValueError(f"degenerate input at batch index {index}: {what}, so it has no canonical element")


def _principal_axes(x: Tensor, rtol: float, validate: bool, descending: bool = True) -> tuple[Tensor, Tensor]:
    """Centred points and the covariance eigenvectors (columns, by decreasing or increasing eigenvalue), checked."""
    if validate:
        bad = ~torch.isfinite(x).flatten(1).all(-1)
        if bool(bad.any()):
            raise ValueError(f"the input at batch index {int(bad.nonzero()[0, 0])} contains NaN or inf")
    y = x - x.mean(-2, keepdim=True)
    cov = y.transpose(-1, -2) @ y / x.shape[-2]
    values, vectors = torch.linalg.eigh(cov)
    if descending:
        values, vectors = values.flip(-1), vectors.flip(-1)
    if validate:
        top = values[..., 0 if descending else -1]
        _refuse(~(top > torch.finfo(x.dtype).tiny), "all points coincide")
        gaps = (values[..., :-1] - values[..., 1:]).abs().amin(-1) if x.shape[-1] > 1 else top
        _refuse(~(gaps > rtol * top), "the covariance has repeated eigenvalues (the principal axes are not unique)")
    return y, vectors


def _det_fix(frame: Tensor) -> Tensor:
    """Flip the last column where the determinant is negative (lands in SO(d))."""
    sign = torch.where(torch.linalg.det(frame) < 0, -1.0, 1.0).to(frame.dtype)
    return torch.cat([frame[..., :-1], frame[..., -1:] * sign[..., None, None]], dim=-1)


class PCACanonicaliser:
    """``O(d)`` (``special=False``) or ``SO(d)`` canonicalisation of point clouds ``(n, d)``.

    Columns: the centred covariance's eigenvectors by decreasing eigenvalue, each
    signed so that the third moment ``sum_i <x_i - c, v>^3`` is positive; for ``SO(d)``
    the last column's sign makes the determinant ``+1`` instead.  Equivariant for
    ``x -> x g^T`` (and invariant under translations); with ``layout="columns"`` for
    ``(d, n)`` matrices and ``x -> g x``.  Degenerate (see the module docstring): NaN or
    inf, coincident points, repeated eigenvalues, or a third moment ``<= rtol`` times
    ``sum_i |<x_i - c, v>|^3`` on an axis whose sign it fixes.
    """

    reason = "PCA axes rotate with the cloud and the third-moment sign rule is O(d)-invariant"

    def __init__(self, special: bool = False, validate: bool = True, rtol: float = 1e-6, layout: str = "rows") -> None:
        self.special, self.validate, self.rtol, self.layout = special, validate, rtol, check_layout(layout)

    def __call__(self, x: Tensor) -> Tensor:
        x = as_rows(x, self.layout)
        y, vectors = _principal_axes(x, self.rtol, self.validate)
        projections = y @ vectors
        third, scale = (projections**3).sum(-2), (projections.abs() ** 3).sum(-2)
        fixed = slice(0, x.shape[-1] - 1) if self.special else slice(None)
        if self.validate:
            _refuse(~(third.abs() > self.rtol * scale)[..., fixed].all(-1),
                    "the cloud is symmetric along a principal axis (its third moment vanishes)")
        frame = vectors * torch.where(third < 0, -1.0, 1.0).to(x.dtype).unsqueeze(-2)
        return _det_fix(frame) if self.special else frame


class PCAFrames:
    """All sign choices of the PCA frame: ``(batch, 2^d, d, d)`` (``SO(d)``: the ``2^(d-1)`` with determinant 1).

    ``F(g.x) = g F(x)`` *as a set* (the order of the elements may differ), which is
    what frame averaging needs; no sign rule, so clouds symmetric along an axis are
    fine.  Degenerate: NaN or inf, coincident points or repeated eigenvalues (the frame
    is then a continuum).  ``layout="columns"``: ``(d, n)`` matrices acted on by ``g x``.
    ``descending=False`` orders the eigenvectors by increasing eigenvalue: another
    frame, so frame averages over it take other values.
    """

    def __init__(self, special: bool = False, validate: bool = True, rtol: float = 1e-6, layout: str = "rows",
                 descending: bool = True) -> None:
        self.special, self.validate, self.rtol = special, validate, rtol
        self.layout, self.descending = check_layout(layout), descending

    def signs(self, d: int, dtype: torch.dtype, device: torch.device) -> Tensor:
        patterns = torch.tensor(list(itertools.product((1.0, -1.0), repeat=d)), dtype=dtype, device=device)
        return patterns[patterns.prod(-1) > 0] if self.special else patterns

    def __call__(self, x: Tensor) -> Tensor:
        x = as_rows(x, self.layout)
        _, vectors = _principal_axes(x, self.rtol, self.validate, self.descending)
        if self.special:
            vectors = _det_fix(vectors)
        signs = self.signs(x.shape[-1], x.dtype, x.device)  # (m, d)
        return vectors.unsqueeze(-3) * signs.unsqueeze(-2)


class UniformFrame:
    """The stochastic gamma ``g ~ Uniform(F(x))`` for a frame ``F`` (e.g. :class:`PCAFrames`).

    Equivariant in law when ``F(g.x) = g F(x)`` as a set.  It declares no coupling
    (the frame's order may change with ``g``), so checks use the two-sample test.
    """

    reason = "a uniform draw from a frame with F(g.x) = g F(x) as a set"

    def __init__(self, frames: Callable[[Tensor], Tensor]) -> None:
        if not callable(frames):
            raise TypeError(f"a frame is a function of a batch, got {type(frames).__name__}")
        self.frames = frames

    def elements(self, x: Tensor) -> Tensor:
        """The whole support ``(batch, m, ...)`` (uniform weights)."""
        return self.frames(x)

    def __call__(self, x: Tensor, generator: torch.Generator | None = None) -> Tensor:
        frames = self.elements(x)
        batch, m = frames.shape[:2]
        index = (rand((batch,), generator, frames.dtype, frames.device) * m).long().clamp_max(m - 1)
        return frames[torch.arange(batch, device=frames.device), index]


class Centroid:
    """``T(d)`` canonicalisation: ``x (n, d) |-> mean_i x_i`` (never degenerate)."""

    reason = "mean(x + t) = mean(x) + t"

    def __call__(self, x: Tensor) -> Tensor:
        return x.mean(-2)


class Lexsort:
    """``S_n`` canonicalisation of sets ``(n, d)``: the permutation ``p`` listing the rows in lexicographic order.

    ``p[i]`` is the index of the ``i``-th row in order (as ``argsort``), so
    ``gamma(p'.x) = p' o gamma(x)`` and ``gamma(x)^-1 . x`` is the sorted set.  Degenerate:
    two equal rows (the set's stabiliser is then non-trivial).
    """

    reason = "lexicographic order does not depend on the order the rows come in"

    def __init__(self, validate: bool = True) -> None:
        self.validate = validate

    def __call__(self, x: Tensor) -> Tensor:
        batch, n, d = x.shape
        order = torch.arange(n, device=x.device).expand(batch, n)
        for k in reversed(range(d)):  # stable sorts, least significant column first
            keys = torch.gather(x[..., k], -1, order)
            order = torch.gather(order, -1, torch.sort(keys, dim=-1, stable=True).indices)
        if self.validate and n > 1:
            rows = torch.gather(x, -2, order.unsqueeze(-1).expand(batch, n, d))
            _refuse((rows[:, 1:] == rows[:, :-1]).all(-1).any(-1), "two rows of the set are equal")
        return order


class OrbitArgmax:
    """Finite-group canonicalisation: ``gamma(x) = argmax_h score(h^-1 . x)`` over all ``h`` in ``G``.

    ``gamma(g.x) = g gamma(x)`` because ``h |-> g h`` permutes the orbit.  ``score``
    defaults to a fixed random linear functional (``seed``) on the action's space.
    The group is enumerated once (at most ``limit`` elements; a group may provide its
    own ``elements()``).  Degenerate: a tie for the maximum within ``rtol`` times the
    largest score magnitude (e.g. an image with a rotational symmetry).
    """

    reason = "h |-> g h permutes the orbit, so the argmax moves by g"

    def __init__(self, action: TorchAction, score: Callable[[Tensor], Tensor] | None = None,
                 validate: bool = True, rtol: float = 1e-9, seed: int = 0, limit: int = 5040) -> None:
        self.action, self.validate, self.rtol = action, validate, rtol
        if score is None:
            shape = tuple(int(s) for s in action.spec.shape)  # type: ignore[arg-type]
            score = _Linear(torch.randn(shape, generator=torch.Generator().manual_seed(seed), dtype=torch.float64))
        self.score = score
        self.candidates = elements(action.group, limit=limit)  # (m, ...)

    def __call__(self, x: Tensor) -> Tensor:
        group = self.action.group
        candidates = self.candidates.to(x.device)
        batch, m = x.shape[0], candidates.shape[0]
        hs = candidates.repeat(batch, *([1] * (candidates.dim() - 1)))
        moved = self.action.act(group.inv(hs), x.repeat_interleave(m, 0))
        scores = self.score(moved).reshape(batch, m)
        best = scores.argmax(-1)
        if self.validate and m > 1:
            top = scores.topk(2, dim=-1).values
            _refuse(~(top[:, 0] - top[:, 1] > self.rtol * scores.abs().amax(-1)),
                    "two elements of the orbit tie for the best score (the input has a symmetry)")
        return candidates[best]


class _Linear:
    def __init__(self, weights: Tensor) -> None:
        self.weights = weights

    def __call__(self, x: Tensor) -> Tensor:
        return (x * self.weights.to(x.dtype)).flatten(1).sum(-1)


class LowerCholesky:
    """``x (d, n) |-> chol(x x^T)``, lower triangular with a positive diagonal: ``chol(A x x^T A^T) = A L Q`` for an
    orthogonal ``Q``, so it is GL-equivariant up to a right ``O(d)`` factor (absorbed by a Haar draw).

    Degenerate: ``x`` not of full row rank (``x x^T`` singular), detected by the
    factorisation failing or a pivot ``<= rtol`` times the largest; always refused,
    since no fallback is GL-equivariant.
    """

    def __init__(self, rtol: float = 1e-10) -> None:
        self.rtol = rtol

    def __call__(self, x: Tensor) -> Tensor:
        gram = x @ x.transpose(-1, -2)
        factor, info = torch.linalg.cholesky_ex(gram)
        pivots = torch.diagonal(factor, dim1=-2, dim2=-1)
        ok = (info == 0) & torch.isfinite(pivots).all(-1) & (pivots.amin(-1) > self.rtol * pivots.amax(-1).abs())
        _refuse(~ok, "x x^T is singular (x does not have full row rank)")
        return factor


class MomentCanonicaliser:
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


class SortCanonicaliser:
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


class UniformPCAFrame(UniformFrame):
    """Puny et al.'s frame for O(d)/SO(d) as the gamma ``Unif F(x)``: a :class:`UniformFrame` of :class:`PCAFrames`.

    ``elements(x)`` is ``{V diag(s)}``, ``V`` the centred covariance's eigenvectors by increasing
    eigenvalue, over ``s in {+-1}^d`` (for SO(d) the ``2^(d-1)`` with ``det = +1``), so
    ``F(g.x) = g F(x)`` as a set; degenerate inputs (NaN, repeated eigenvalues) raise ``ValueError``
    (see :mod:`markovcat.backends.torch.frames`).  Calling it draws one element uniformly (``generator=``);
    its ``coupling`` ``r -> g r`` preserves that law, so checks of sampled frames are pathwise.
    """

    reason = "the PCA frame is O(d)-equivariant: F(g.x) = g F(x) as a set, so Unif F(x) is too"

    def __init__(self, group: Any, layout: str = "rows", rtol: float = 1e-6, validate: bool = True) -> None:
        if type(group).__name__ != "Orthogonal":
            raise TypeError(f"UniformPCAFrame is a frame for O(d) or SO(d), got {group!r}")
        self.group, self.coupling = group, LeftTranslation(group)
        super().__init__(PCAFrames(group.special, validate, rtol, layout, descending=False))
