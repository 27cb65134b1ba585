"""Linear algebra shared by the torch backend: one QR with the sign fix, the SO(d) flip, samplers, ``accepts``.

:func:`qr_positive` is the only QR factorisation in the backend.  Every orthogonal
matrix the backend makes from a general one goes through it: Haar draws
(:func:`haar_orthogonal`), projections of network outputs onto O(d)
(:func:`orthonormalise`, used by the learned and recursive gammas) and the moment
frame (:class:`~markovcat.backends.torch.frames.MomentCanonicaliser`).  :func:`to_special`
is the only determinant flip onto SO(d).

``torch.linalg.qr`` on CUDA factors a batch of small matrices one by one (about 2,300
kernel launches and 10 ms for 256 matrices of size 3 x 3 on an H200).  For small ``d``
the Gram-Schmidt process on whole batches is a handful of fused tensor operations, and
it is differentiable by autograd; on the CPU, LAPACK's Householder QR is the faster, so
:func:`qr_positive` picks by device.  Each column is orthogonalised twice
("twice is enough", Giraud et al. 2005), which keeps ``Q`` orthogonal to working
precision.

The sign fix: ``Q`` is the unique factor whose ``R`` has a positive diagonal, so
``Q(g a) = g Q(a)`` for orthogonal ``g``, and QR of a Gaussian matrix gives a
Haar-distributed element of O(d).

>>> import torch
>>> a = torch.randn(4, 3, 3, dtype=torch.float64)
>>> q, r = qr_positive(a)
>>> bool(torch.allclose(q @ r, a)) and bool((torch.diagonal(r, dim1=-2, dim2=-1) > 0).all())
True
"""

from __future__ import annotations

import inspect
from collections.abc import Sequence
from typing import Any

import torch
from torch import Tensor, nn

__all__ = ["qr_positive", "SMALL", "orthonormalise", "to_special", "haar_orthogonal", "randn", "rand", "accepts"]

#: Up to this many columns the batched Gram-Schmidt process is used; beyond, Householder (``torch.linalg.qr``).
SMALL = 16

#: A column whose residual after orthogonalisation is at most this many machine epsilons times the column's
#: norm counts as dependent on the previous ones (see :func:`qr_positive`).
DEPENDENT = 64


def qr_positive(a: Tensor, method: str = "auto", complete: bool = True) -> tuple[Tensor, Tensor]:
    """``a = q @ r`` for ``a (..., n, d)``, ``n >= d``: ``q`` with orthonormal columns, ``r`` upper triangular.

    Where ``a`` has full column rank, ``diag(r) > 0``: the unique such factorisation, so
    ``qr_positive(g a) = (g q, r)`` for every orthogonal ``g`` (up to rounding).

    ``method``: ``"householder"`` (``torch.linalg.qr``, then the sign fix),
    ``"gram-schmidt"`` (batched, ``d <= SMALL`` only), or ``"auto"``: Householder on the
    CPU, where LAPACK's batched factorisation is the faster, and for ``d > SMALL``;
    Gram-Schmidt on other devices.  Both give the same ``q`` at full rank (up to rounding).

    Never NaN for finite ``a``.  Where a column of ``a`` is (numerically) dependent on the
    previous ones, ``q``'s column is a unit vector orthogonal to the previous ones chosen
    without reference to ``a`` (Householder's choice; for Gram-Schmidt the standard basis
    vector farthest from the span so far), ``r``'s diagonal entry there is about zero (its
    sign is not fixed), and ``q @ r = a`` still holds up to rounding; equivariance is lost
    at such an input.  "Dependent", for Gram-Schmidt, means a residual at most
    ``DEPENDENT * eps`` times the column's norm.  ``complete=False`` skips that completion
    in Gram-Schmidt (the column is then left unnormalised, finite but not unit): for
    inputs of full rank with probability one, such as Gaussian draws.  A non-finite ``a``
    gives a non-finite result.

    Differentiable by autograd; the gradient is finite where ``a`` has full rank.
    """
    n, d = a.shape[-2], a.shape[-1]
    if n < d:
        raise ValueError(f"qr_positive needs at least as many rows as columns, got a {n} x {d} matrix")
    if method not in ("auto", "householder", "gram-schmidt"):
        raise ValueError(f"unknown QR method {method!r}: use 'auto', 'householder' or 'gram-schmidt'")
    if method == "gram-schmidt" and d > SMALL:
        raise ValueError(f"the batched Gram-Schmidt QR is for at most {SMALL} columns, got {d}: use 'householder'")
    if method == "householder" or (method == "auto" and (d > SMALL or a.device.type == "cpu")):
        q, r = torch.linalg.qr(a)
        sign = torch.where(torch.diagonal(r, dim1=-2, dim2=-1) < 0, -1.0, 1.0).to(a.dtype)
        return q * sign.unsqueeze(-2), r * sign.unsqueeze(-1)
    return _gram_schmidt(a, complete)


def _gram_schmidt(a: Tensor, complete: bool) -> tuple[Tensor, Tensor]:
    n, d = a.shape[-2], a.shape[-1]
    tolerance = DEPENDENT * torch.finfo(a.dtype).eps
    eye = torch.eye(n, dtype=a.dtype).to(a.device)  # (device="meta" here would import torch._dynamo: seconds)
    columns: list[Tensor] = []
    for j in range(d):
        v = a[..., j]
        for _ in range(2):
            for q_i in columns:
                v = v - (q_i * v).sum(-1, keepdim=True) * q_i
        norm = torch.linalg.vector_norm(v, dim=-1, keepdim=True)
        independent = ~(norm <= tolerance * torch.linalg.vector_norm(a[..., j], dim=-1, keepdim=True))  # NaN stays
        column = v / torch.where(independent, norm, torch.ones_like(norm))
        if complete:  # the standard basis vector farthest from the span so far, normalised
            if columns:
                span = torch.stack(columns, dim=-1)
                residuals = eye - span @ span.transpose(-1, -2)  # column i: e_i minus its projection
                lengths = torch.linalg.vector_norm(residuals, dim=-2, keepdim=True)  # (..., 1, n)
                best = lengths.argmax(-1, keepdim=True)  # (..., 1, 1)
                fallback = (torch.gather(residuals, -1, best.expand(*best.shape[:-2], n, 1))
                            / torch.gather(lengths, -1, best)).squeeze(-1)
            else:
                fallback = eye[0].expand_as(v)
            column = torch.where(independent, column, fallback.detach())
        columns.append(column)
    q = torch.stack(columns, dim=-1)
    return q, torch.triu(q.transpose(-2, -1) @ a)


def to_special(q: Tensor) -> Tensor:
    """Flip the sign of the last column of ``q (..., d, d)`` where ``det q < 0``: O(d) onto SO(d).

    ``to_special(g q) = g to_special(q)`` for ``g`` in SO(d) (the flip depends on
    ``det q`` only), so it keeps SO(d)-equivariance, and it maps Haar on O(d) to Haar
    on SO(d).
    """
    sign = torch.where(torch.linalg.det(q) < 0, -1.0, 1.0).to(q.dtype)
    return torch.cat([q[..., :-1], q[..., -1:] * sign[..., None, None]], dim=-1)


def orthonormalise(m: Tensor, special: bool = False) -> Tensor:
    """``q`` of :func:`qr_positive` of ``m (..., d, d)``: ``Q(g m) = g Q(m)`` for ``g`` in O(d).

    Always orthogonal, never NaN for finite ``m``: at a singular ``m`` the columns past
    the rank are completed to an orthonormal basis without reference to ``m`` (see
    :func:`qr_positive`; ``orthonormalise(0)`` is the identity), and equivariance is lost
    at that input.  ``special=True`` applies :func:`to_special`, landing in SO(d) (still
    ``Q(g m) = g Q(m)`` for ``g`` in SO(d)).  Differentiable (it feeds learned gammas).
    """
    q, _ = qr_positive(m)
    return to_special(q) if special else q


def haar_orthogonal(batch: int, d: int, generator: torch.Generator | None = None, dtype: torch.dtype | None = None,
                    device: torch.device | str = "cpu", special: bool = False, method: str = "auto") -> Tensor:
    """``batch`` Haar-distributed elements of O(d) (or SO(d) with ``special=True``), from Gaussian draws.

    * ``d = 3``: the rotation of a uniform unit quaternion (a normalised standard
      Gaussian 4-vector ``q``), which is Haar on SO(3); for O(3), times ``-1`` where a
      fifth Gaussian coordinate is negative (O(3) = SO(3) x {I, -I}, both factors uniform).
      One small matrix product and a division: no factorisation.
    * ``d = 2``: the rotation by the direction of a standard Gaussian 2-vector (uniform
      angle); for O(2), followed by the reflection ``diag(1, -1)`` where a third Gaussian
      coordinate is negative.
    * otherwise, or with ``method="qr"``: :func:`qr_positive` of a Gaussian ``d x d``
      matrix (Haar on O(d)), then :func:`to_special` for SO(d).

    ``method="auto"`` takes the closed forms where they exist: the same law as ``"qr"``,
    a different draw for the same seed (``"qr"`` reproduces the draws of earlier
    versions).  The closed form for O(3) costs about a third of the QR path's time at
    batch 256 on the CPU (``benchmarks/overhead.py``).  Reproducible for a seeded
    ``generator``; orthogonal to the working precision of ``dtype``.
    """
    if method not in ("auto", "qr"):
        raise ValueError(f"unknown Haar sampling method {method!r}: use 'auto' (closed forms for d = 2, 3) or 'qr'")
    dtype = dtype or torch.get_default_dtype()
    if d == 3 and method == "auto":
        return _haar_3(batch, generator, dtype, device, special)
    if d == 2 and method == "auto":
        return _haar_2(batch, generator, dtype, device, special)
    q, _ = qr_positive(randn((batch, d, d), generator, dtype, device), complete=False)
    return to_special(q) if special else q


def _quaternion_map() -> Tensor:
    """``(16, 10)``: the products ``q_i q_j`` (row ``4 i + j``) to ``|q|^2 R(q)`` (columns 0-8) and ``|q|^2``."""
    m = torch.zeros(4, 4, 10, dtype=torch.float64)
    w, x, y, z = range(4)
    for entry, terms in enumerate((
        ((w, w, 1), (x, x, 1), (y, y, -1), (z, z, -1)), ((x, y, 2), (w, z, -2)), ((x, z, 2), (w, y, 2)),
        ((x, y, 2), (w, z, 2)), ((w, w, 1), (x, x, -1), (y, y, 1), (z, z, -1)), ((y, z, 2), (w, x, -2)),
        ((x, z, 2), (w, y, -2)), ((y, z, 2), (w, x, 2)), ((w, w, 1), (x, x, -1), (y, y, -1), (z, z, 1)),
        ((w, w, 1), (x, x, 1), (y, y, 1), (z, z, 1)),
    )):
        for i, j, c in terms:
            m[i, j, entry] += c
    return m.reshape(16, 10)


_QUATERNION = {dtype: _quaternion_map().to(dtype) for dtype in (torch.float32, torch.float64)}


def _haar_3(batch: int, generator: torch.Generator | None, dtype: torch.dtype, device: torch.device | str,
            special: bool) -> Tensor:
    q = randn((4 if special else 5, batch), generator, dtype, device)  # one row per coordinate: the batch inner
    h = q[:4]
    products = (h.unsqueeze(1) * h.unsqueeze(0)).view(16, batch)
    table = _QUATERNION.get(dtype) if torch.device(device).type == "cpu" else None
    if table is None:
        table = _quaternion_map().to(dtype=dtype, device=device)
    r = products.t() @ table  # (batch, 10): |q|^2 R(q) and |q|^2
    scale = r[:, 9:] if special else torch.copysign(r[:, 9:], q[4].unsqueeze(-1))
    return (r[:, :9] / scale).view(batch, 3, 3)


def _haar_2(batch: int, generator: torch.Generator | None, dtype: torch.dtype, device: torch.device | str,
            special: bool) -> Tensor:
    v = randn((batch, 2 if special else 3), generator, dtype, device)
    c, s = (v[:, :2] / torch.linalg.vector_norm(v[:, :2], dim=-1, keepdim=True)).unbind(-1)
    flip = torch.ones_like(c) if special else torch.copysign(torch.ones_like(c), v[:, 2])
    return torch.stack([c, -s * flip, s, c * flip], dim=-1).view(batch, 2, 2)


def randn(shape: Sequence[Any], generator: torch.Generator | None, dtype: torch.dtype,
          device: torch.device | str) -> Tensor:
    """``torch.randn``, passing ``generator`` only when there is one.

    (``torch.randn(..., generator=None)`` fails under ``torch.compile`` once the batch
    size is dynamic; leaving the keyword out keeps the sampler graph-break free.)
    """
    if generator is None:
        return torch.randn(tuple(shape), dtype=dtype, device=device)
    return torch.randn(tuple(shape), generator=generator, dtype=dtype, device=device)


def rand(shape: Sequence[Any], generator: torch.Generator | None, dtype: torch.dtype | None,
         device: torch.device | str) -> Tensor:
    """``torch.rand``, passing ``generator`` only when there is one (see :func:`randn`)."""
    if generator is None:
        return torch.rand(tuple(shape), dtype=dtype, device=device)
    return torch.rand(tuple(shape), generator=generator, dtype=dtype, device=device)


def accepts(function: Any, keyword: str) -> bool:
    """Whether ``function`` (or a module's ``forward``) takes the keyword ``keyword``."""
    target = function.forward if isinstance(function, nn.Module) else function
    try:
        parameters = inspect.signature(target).parameters.values()
    except (TypeError, ValueError):  # builtins without a signature
        return False
    return any(p.name == keyword or p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters)
