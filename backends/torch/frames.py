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
  maximising a fixed score of ``h^-1 . x`` (these two, :class:`RandomTiesLexsort` and
  :class:`SortCanonicaliser` live in :mod:`~markovcat.backends.torch.sorting`);
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
``torch.compile``.  Degeneracy is judged relative to ``rtol``; the refusal machinery is
:mod:`~markovcat.backends.torch.refusals`.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable
from typing import Any

import torch
from torch import Tensor

from markovcat.backends.torch.groups import LeftTranslation, Orthogonal, as_rows, check_layout
from markovcat.backends.torch.linalg import qr_positive, rand, to_special
from markovcat.backends.torch.refusals import (
    _ADVICE,
    ROUNDING,
    Failure,
    _nonfinite,
    _prescale,
    _verdict,
    _verdict_of,
    _working,
    default_tol,
)
from markovcat.backends.torch.sorting import Lexsort, OrbitArgmax, RandomTiesLexsort, SortCanonicaliser

__all__ = ["PCACanonicaliser", "PCAFrames", "UniformFrame", "UniformPCAFrame", "Centroid", "Lexsort",
           "RandomTiesLexsort", "OrbitArgmax", "LowerCholesky", "MomentCanonicaliser", "SortCanonicaliser",
           "ROUNDING", "default_tol"]

def _principal_axes(x: Tensor) -> tuple[Tensor, Tensor, Tensor, Tensor, Tensor]:
    """Pre-scaled centred points, mean, and eigenvalues and eigenvectors (columns) of ``y^T y``, ascending; the scale.

    ``y^T y`` is ``n`` times the covariance (same eigenvectors).  Computed in
    :func:`_working` precision on the pre-scaled cloud (:func:`_prescale`), so any finite
    input works (``x * 1e20`` in float32 included).  Non-finite input gives a finite frame
    here (``eigh`` refuses NaN) but a NaN ``y`` and mean, which callers propagate.
    """
    xs, scale = _prescale(x)
    mean = xs.mean(-2, keepdim=True)
    y = xs - mean
    gram = torch.nan_to_num(y.mT @ y, nan=0.0, posinf=0.0, neginf=0.0)
    values, vectors = torch.linalg.eigh(gram)
    return y, mean, values, vectors, scale


def _eigen_check(values: Tensor, mean: Tensor, n: int, eps: float, tol: float) -> tuple[Tensor, Tensor, Tensor]:
    """Whether the computed eigenvectors are within ``tol``, from the eigenvalues alone: ``(ok, ratio, |mean|)``.

    ``values``: ascending eigenvalues of ``y^T y`` (``n`` times the covariance ``C`` of the
    pre-scaled cloud).  The computed ``C`` (and that of the rotated input) is within
    ``delta = ROUNDING * eps * (tr C + sqrt(tr C) (rms |x| + |mean|))`` of the exact one
    (the second term: rounding in centring a cloud away from the origin; ``rms |x|^2 =
    tr C + |mean|^2``), and by Davis-Kahan each unit eigenvector moves by at most
    ``error = delta / gap``, ``gap`` the smallest distance between eigenvalues.  Returns
    ``ratio = error / (ROUNDING * eps)`` and ``ok = error <= tol``, which is False where
    the gap is zero (coincident points, a repeated eigenvalue) or the input not finite
    (NaN).  A handful of operations on ``(batch,)`` tensors, in units of ``y^T y`` (every
    term times ``n``), with no Python-number arithmetic on tensors but one comparison.
    Scale-invariant: every term scales as ``s^2``.  ``d = 1``: the "gap" is the variance
    itself (so coincident points are refused).
    """
    trace = values.sum(-1)  # n tr C; negative (a NaN square root) only by rounding when all points coincide
    mu2 = (mean * mean).sum((-2, -1))
    mu = mu2.sqrt()
    spread = torch.add(torch.add(trace, mu2, alpha=n).sqrt_(), mu, alpha=math.sqrt(n)).mul_(trace.sqrt()).add_(trace)
    ratio = spread / (torch.diff(values, dim=-1).amin(-1) if values.shape[-1] > 1 else trace)
    return ratio <= tol / (ROUNDING * eps), ratio, mu


def _smallest_gap(values: Tensor) -> Tensor:
    return torch.diff(values).min() if values.shape[-1] > 1 else values.sum()


def _pca_failures(ok: Tensor, ratio: Tensor, values: Tensor, tol: float, dtype: torch.dtype,
                  what: str) -> list[Failure]:
    name, eps = str(dtype).replace("torch.", ""), float(torch.finfo(dtype).eps)
    return [
        (lambda: ~(values.sum(-1) > 0), lambda i: f"degenerate point cloud at batch index {i} for {what}: all its "
                                                  "points coincide, so it has no principal axes. Use another gamma "
                                                  "(gamma=\"haar\")."),
        (lambda: ~ok, lambda i: (
            f"degenerate point cloud at batch index {i} for {what}: two eigenvalues of its covariance are too close "
            f"for {name} (smallest gap {float(_smallest_gap(values[i]) / values[i].sum()):.2g} of the total "
            f"variance), so the computed principal axes may be off by up to {float(ROUNDING * eps * ratio[i]):.2g} "
            f"(tolerance {tol:.2g}): the cloud is (nearly) symmetric and its principal "
            "axes are not well defined. " + _ADVICE)),
    ]


class PCACanonicaliser:
    """``O(d)`` (``special=False``) or ``SO(d)`` canonicalisation of point clouds ``(n, d)``.

    Columns: the centred covariance's eigenvectors by decreasing eigenvalue, each
    signed so that the third moment ``sum_i <x_i - c, v>^3`` is positive; for ``SO(d)``
    the last column's sign makes the determinant ``+1`` instead.

    Equivariant (``F(x g^T) = g F(x)``; with ``layout="columns"``, ``(d, n)`` matrices and
    ``x -> g x``), and invariant under translations and scaling, exactly where the
    eigenvalues are distinct and no fixed third moment vanishes.  With ``validate=True``
    it refuses, naming the batch index: non-finite input; coincident points; eigenvalues
    so close that the computed axes may be off by more than ``tol`` (the bound of
    an eigengap check, which follows the dtype's ``eps`` and the gaps achieved);
    a third moment within its own rounding bound of zero (the sign would be a coin
    flip).  ``tol`` defaults to :func:`default_tol` of the input's dtype.  The check costs
    a few operations on ``(batch, d)`` tensors, one on ``(batch, d, n)`` and one host
    sync; the reasons are worked out only after a refusal.  With ``validate=False``
    nothing is checked and no host sync happens: the frame is orthogonal and finite for
    finite input (NaN for non-finite input), but may be that far off, or flipped, at such
    inputs.  Half precision is computed in float32 and returned in the input's dtype (the
    tolerance still follows the input's ``eps``).
    """

    vouched = True  # its equivariance is the library's claim, tested in its suite (see Gamma.from_callable)

    reason = "PCA axes rotate with the cloud and the third-moment sign rule is O(d)-invariant"
    """Why it is equivariant, in one sentence: the reason recorded in the evidence of a gamma built from it."""

    def __init__(self, special: bool = False, validate: bool = True, tol: float | None = None,
                 layout: str = "rows") -> None:
        self.special, self.validate, self.tol, self.layout = special, validate, tol, check_layout(layout)

    def __call__(self, x: Tensor) -> Tensor:
        x = as_rows(x, self.layout)
        w = _working(x, "PCACanonicaliser")
        y, mean, values, vectors, _ = _principal_axes(w)
        projections = vectors.mT @ y.mT  # (b, d, n), ascending axes: the faster layout for bmm
        squares = projections * projections
        third = (squares * projections).sum(-1)  # (b, d): NaN where the input is not finite
        if self.validate:
            self._check(w, x.dtype, mean, values, squares, third)
        sign = torch.copysign((third - third).add_(1), third)  # +-1 (so the frame stays orthogonal), NaN at NaN
        frame = (vectors * sign.unsqueeze(-2)).flip(-1)  # by decreasing eigenvalue
        return (to_special(frame) if self.special else frame).to(x.dtype)

    def _check(self, w: Tensor, dtype: torch.dtype, mean: Tensor, values: Tensor, squares: Tensor,
               third: Tensor) -> None:
        eps, tol = float(torch.finfo(dtype).eps), self.tol or default_tol(dtype)
        ok, ratio, mu = _eigen_check(values, mean, w.shape[-2], eps, tol)
        # The third moment moves by at most 3 sum_i p_i^2 |dp_i|, where |dp_i| <= (error + c eps)(|y_i| + |mean|)
        # with error = c eps ratio the eigenvector bound: so the sign is sure where |third| exceeds that margin,
        # 3 c eps (1 + ratio) sum_i p_i^2 (|y_i| + |mean|).  |y_i|^2 is the sum of its squared projections.
        weight = squares.sum(-2).sqrt_().add_(mu.unsqueeze(-1))  # (b, n): |y_i| + |mean|
        moment = (squares * weight.unsqueeze(-2)).sum(-1)  # (b, d)
        signed = third.abs().mul_(1 / (3 * ROUNDING * eps)) > torch.addcmul(moment, moment, ratio.unsqueeze(-1))
        fixed = signed[..., 1:] if self.special else signed  # SO(d): the last axis (smallest) is fixed by det
        accepted = ok & fixed.all(-1)  # False for NaN
        if bool(accepted.all()):  # the one host sync
            return

        def message(i: int) -> str:
            axis = int((~fixed[i].flip(-1)).nonzero()[0, 0])
            return (f"degenerate point cloud at batch index {i} for PCACanonicaliser: it is (nearly) symmetric "
                    f"along principal axis {axis}, whose third moment is within its rounding bound of zero, so "
                    "the axis's sign is not determined. Use frame averaging over PCAFrames (no sign rule), "
                    "or float64, or validate=False (accepting a possibly flipped axis), or gamma=\"haar\".")

        failures = _pca_failures(ok, ratio, values, tol, dtype, "PCACanonicaliser")
        _verdict(w, "PCACanonicaliser", ~accepted, [*failures, (lambda: ~fixed.all(-1), message)])


class PCAFrames:
    """All sign choices of the PCA frame: ``(batch, 2^d, d, d)`` (``SO(d)``: the ``2^(d-1)`` with determinant 1).

    ``F(g.x) = g F(x)`` *as a set* (the order of the elements may differ), which is
    what frame averaging needs; no sign rule, so clouds symmetric along an axis are
    fine.  Equivariant exactly where the covariance's eigenvalues are distinct.  With
    ``validate=True`` it refuses non-finite input, coincident points, and eigenvalues so
    close that the computed frame may be off by more than ``tol`` (as
    :class:`PCACanonicaliser`, whose thresholds and half-precision policy it shares).
    ``layout="columns"``: ``(d, n)`` matrices acted on by ``g x``.  ``descending=False``
    orders the eigenvectors by increasing eigenvalue: another frame, so frame averages
    over it take other values.
    """

    vouched = True  # its equivariance is the library's claim, tested in its suite (see Gamma.from_callable)

    def __init__(self, special: bool = False, validate: bool = True, tol: float | None = None, layout: str = "rows",
                 descending: bool = True) -> None:
        self.special, self.validate, self.tol = special, validate, tol
        self.layout, self.descending = check_layout(layout), descending

    def signs(self, d: int, dtype: torch.dtype, device: torch.device) -> Tensor:
        """The sign patterns of the frame, ``(2^d, d)`` (``SO(d)``: those of product 1)."""
        patterns = torch.tensor(list(itertools.product((1.0, -1.0), repeat=d)), dtype=dtype, device=device)
        return patterns[patterns.prod(-1) > 0] if self.special else patterns

    def __call__(self, x: Tensor) -> Tensor:
        x = as_rows(x, self.layout)
        w = _working(x, "PCAFrames")
        _, mean, values, vectors, scale = _principal_axes(w)
        if self.validate:
            eps, tol = float(torch.finfo(x.dtype).eps), self.tol or default_tol(x.dtype)
            ok, ratio, _ = _eigen_check(values, mean, w.shape[-2], eps, tol)  # False for non-finite input
            if not bool(ok.all()):  # the one host sync
                _verdict(w, "PCAFrames", ~ok, _pca_failures(ok, ratio, values, tol, x.dtype, "PCAFrames"))
        if self.descending:
            vectors = vectors.flip(-1)
        if self.special:
            vectors = to_special(vectors)
        vectors = (vectors + (scale - scale)).to(x.dtype)  # NaN where the input is not finite
        signs = self.signs(x.shape[-1], x.dtype, x.device)  # (m, d)
        return vectors.unsqueeze(-3) * signs.unsqueeze(-2)


class UniformFrame:
    """The stochastic gamma ``g ~ Uniform(F(x))`` for a frame ``F`` (e.g. :class:`PCAFrames`).

    Equivariant in law when ``F(g.x) = g F(x)`` as a set.  It declares no coupling
    (the frame's order may change with ``g``), so checks use the two-sample test.
    """

    frames: Callable[[Tensor], Tensor]
    """The frame: a batch ``x`` to its elements ``(batch, m, ...)``."""
    vouched = True  # its equivariance is the library's claim, tested in its suite (see Gamma.from_callable)

    reason = "a uniform draw from a frame with F(g.x) = g F(x) as a set"
    """Why it is equivariant, in one sentence: the reason recorded in the evidence of a gamma built from it."""

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
    """``T(d)`` canonicalisation: ``x (n, d) |-> mean_i x_i``; equivariant everywhere, never refuses.

    Non-finite input gives a non-finite centroid (the compiled model's input check
    refuses it first).
    """

    vouched = True  # its equivariance is the library's claim, tested in its suite (see Gamma.from_callable)

    reason = "mean(x + t) = mean(x) + t"
    """Why it is equivariant, in one sentence: the reason recorded in the evidence of a gamma built from it."""

    def __call__(self, x: Tensor) -> Tensor:
        return x.mean(-2)


class LowerCholesky:
    """``x (d, n) |-> chol(x x^T)``, lower triangular with a positive diagonal: ``chol(A x x^T A^T) = A L Q`` for an
    orthogonal ``Q``, so it is GL-equivariant up to a right ``O(d)`` factor (absorbed by a Haar draw).

    Always refuses (no fallback is GL-equivariant): non-finite input; and ``x`` not of
    numerically full row rank, judged by the factorisation failing or the estimated
    relative error ``ROUNDING * eps * (max pivot / min pivot)^2`` of the factor exceeding
    ``tol`` (default :func:`default_tol` of the dtype; the pivot ratio squared is a lower
    estimate of the condition number of ``x x^T``).  Half precision is computed in float32.
    """

    tol: float | None
    """The tolerance of the rank check (``None``: ``default_tol`` of the input's dtype)."""
    vouched = True  # its equivariance is the library's claim, tested in its suite (see Gamma.from_callable)

    def __init__(self, tol: float | None = None) -> None:
        self.tol = tol

    def __call__(self, x: Tensor) -> Tensor:
        w = _working(x, "LowerCholesky")
        xs, scale = _prescale(w)
        factor, info = torch.linalg.cholesky_ex(torch.nan_to_num(xs @ xs.transpose(-1, -2), nan=0.0, posinf=0.0,
                                                                 neginf=0.0))
        pivots = torch.diagonal(factor, dim1=-2, dim2=-1)
        eps, tol = float(torch.finfo(x.dtype).eps), self.tol or default_tol(x.dtype)
        error = ROUNDING * eps * (pivots.amax(-1) / pivots.amin(-1)) ** 2
        ok = (info == 0) & (error <= tol)
        _verdict_of(w, "LowerCholesky", [_nonfinite(w), (~ok, lambda i: (
            f"degenerate input at batch index {i} for LowerCholesky: x x^T is (numerically) singular, x does not "
            f"have full row rank in {str(x.dtype).replace('torch.', '')}, so it has no GL canonical element. Use "
            "float64 or another gamma."))])
        return (factor * scale).to(x.dtype)


class MomentCanonicaliser:
    """Deterministic O(d)-equivariant frame of a point cloud ``(n, d)`` (canonicalisation).

    The frame is :func:`~markovcat.backends.torch.linalg.qr_positive`'s ``Q`` of the ``d``
    moment vectors ``v_k = sum_i |x_i|^(2k) x_i``, ``k = 0..d-1``; since
    ``v_k(g x) = g v_k(x)`` and QR with the sign fix commutes with rotations,
    ``frame(g.x) = g frame(x)``, exactly where the moment vectors are independent.  The
    cloud is first divided by its largest coordinate (``Q`` does not depend on the
    scale), so the frame, and the verdict, are scale-invariant and any finite input
    works.  ``special=True`` gives an ``SO(d)`` frame: the last column's sign makes the
    determinant 1, so only the first ``d - 1`` moment vectors need be independent.
    ``layout="columns"`` takes ``(d, n)`` matrices acted on by ``x -> g x`` (see :func:`as_rows`).

    ``validate=True`` (one host sync) refuses non-finite input, a cloud at the origin,
    and clouds whose computed frame may be off by more than ``tol`` (default
    :func:`default_tol` of the input dtype): the bound is the first-order QR perturbation
    bound ``ROUNDING * eps * sqrt(2 d) * ||R_W^-1||_F`` for ``W``, the moment vectors each
    divided by its natural scale ``sum_i |x_i|^(2k+1)`` (rounding moves each column of
    ``W`` by about ``eps``).  ``R_W^-1`` is computed exactly (a batched inverse of the
    small triangle, not a condition estimate), so the bound is the bound; the reasons
    are worked out only after a refusal.  Nearly planar, collinear or symmetric clouds
    are refused.  ``validate=False`` checks nothing, with no host sync: the frame is orthogonal and
    finite for finite input (NaN for non-finite input), but may be that far off at such
    inputs.  Half precision is computed in float32, returned in the input's dtype.
    """

    vouched = True  # its equivariance is the library's claim, tested in its suite (see Gamma.from_callable)

    reason = "the moment frame is O(d)-equivariant: frame(g.x) = g frame(x)"
    """Why it is equivariant, in one sentence: the reason recorded in the evidence of a gamma built from it."""

    def __init__(self, validate: bool = True, tol: float | None = None, special: bool = False,
                 layout: str = "rows") -> None:
        self.validate, self.tol, self.special, self.layout = validate, tol, special, check_layout(layout)

    def __call__(self, x: Tensor) -> Tensor:
        x = as_rows(x, self.layout)
        w = _working(x, "MomentCanonicaliser")
        d = w.shape[-1]
        xs, scale = _prescale(w)
        sq = (xs * xs).sum(-1, keepdim=True)
        columns = [torch.ones_like(sq)]
        for _ in range(d - 1):
            columns.append(columns[-1] * sq)
        powers = torch.cat(columns, dim=-1)  # (b, n, d): |x_i|^(2k)
        q, r = qr_positive(xs.mT @ powers)  # columns v_k; NaN where the input is not finite
        if self.validate:
            self._check(w, x.dtype, sq, powers, r, scale)
        return (to_special(q) if self.special else q).to(x.dtype)

    def _check(self, w: Tensor, dtype: torch.dtype, sq: Tensor, powers: Tensor, r: Tensor, scale: Tensor) -> None:
        d = w.shape[-1]
        eps, tol = float(torch.finfo(dtype).eps), self.tol or default_tol(dtype)
        used = d - 1 if self.special else d
        if used:
            sizes = sq.sqrt().mT @ powers[..., :used]  # (b, 1, used): sum_i |x_i|^(2k+1)
            # ||R_W^-1||_F exactly: LAPACK's batched LU inverse is the cheapest exact route for small d
            inverse, info = torch.linalg.inv_ex(r[..., :used, :used] / sizes)
            error = ROUNDING * eps * math.sqrt(2 * d) * torch.linalg.matrix_norm(inverse)
            accepted = (error <= tol) & (info == 0)  # False for NaN: non-finite input, a cloud at the origin
        else:  # SO(1): nothing to check but finiteness
            error = (scale - scale).flatten(1)[:, 0]
            accepted = error <= tol
        if bool(accepted.all()):  # the one host sync
            return
        name = str(dtype).replace("torch.", "")
        _verdict(w, "MomentCanonicaliser", ~accepted, [
            (lambda: ~(scale.flatten(1) > 0).all(-1), lambda i: (
                f"degenerate point cloud at batch index {i} for MomentCanonicaliser: all its points are at the "
                "origin, so it has no moment frame. Use another gamma (gamma=\"haar\").")),
            (lambda: ~accepted, lambda i: (
                f"degenerate point cloud at batch index {i} for MomentCanonicaliser: its {used} moment vectors are "
                f"(nearly) linearly dependent for {name}, so the computed frame may be off by up to "
                f"{float(error[i]):.2g} (tolerance {tol:.2g}); e.g. a planar, collinear or (nearly) symmetric "
                "cloud. " + _ADVICE)),
        ])


class UniformPCAFrame(UniformFrame):
    """Puny et al.'s frame for O(d)/SO(d) as the gamma ``Unif F(x)``: a :class:`UniformFrame` of :class:`PCAFrames`.

    ``elements(x)`` is ``{V diag(s)}``, ``V`` the centred covariance's eigenvectors by increasing
    eigenvalue, over ``s in {+-1}^d`` (for SO(d) the ``2^(d-1)`` with ``det = +1``), so
    ``F(g.x) = g F(x)`` as a set; inputs refused by :class:`PCAFrames` (non-finite, coincident
    points, eigenvalues too close for the dtype) raise ``ValueError``.  Calling it draws one element uniformly
    (``generator=``); its ``coupling`` ``r -> g r`` preserves that law, so checks of sampled frames are pathwise.
    """

    reason = "the PCA frame is O(d)-equivariant: F(g.x) = g F(x) as a set, so Unif F(x) is too"
    """Why it is equivariant, in one sentence: the reason recorded in the evidence of a gamma built from it."""

    def __init__(self, group: Any, layout: str = "rows", tol: float | None = None, validate: bool = True) -> None:
        if not isinstance(group, Orthogonal):
            raise TypeError(f"UniformPCAFrame is a frame for O(d) or SO(d), got {group!r}")
        self.group, self.coupling = group, LeftTranslation(group)
        super().__init__(PCAFrames(group.special, validate, tol, layout, descending=False))
