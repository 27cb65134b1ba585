"""Batched QR for small matrices, with a positive diagonal in R.

``torch.linalg.qr`` on CUDA factors a batch of small matrices one by one (about 2,300
kernel launches and 10 ms for 256 matrices of size 3 x 3 on an H200), which dominated
a symmetrised model's step.  For small ``d`` the Gram-Schmidt process on whole
batches is a handful of fused tensor operations on any device, and it is
differentiable by autograd.

Gram-Schmidt yields the unique ``Q`` whose ``R`` has a positive diagonal: exactly
"QR with the sign fix", so QR of a Gaussian matrix gives a Haar-distributed element
of O(d).  Each column is orthogonalised twice ("twice is enough", Giraud et al.
2005), which keeps ``Q`` orthogonal to working precision unless the input is
numerically rank deficient; a rank-deficient input gives non-finite columns, so
callers that cannot rule it out must check (Gaussian draws are full rank with
probability one).

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

__all__ = ["qr_positive", "SMALL", "orthonormalise", "haar_orthogonal", "randn", "rand", "accepts"]

#: Up to this many columns the batched Gram-Schmidt process is used; beyond, Householder.
SMALL = 16


def qr_positive(a: Tensor) -> tuple[Tensor, Tensor]:
    """``a = q @ r`` for ``a`` of shape ``(..., n, d)``, ``n >= d``, ``q`` orthonormal columns, ``diag(r) > 0``."""
    n, d = a.shape[-2], a.shape[-1]
    if n < d:
        raise ValueError(f"qr_positive needs at least as many rows as columns, got a {n} x {d} matrix")
    if d > SMALL:
        q, r = torch.linalg.qr(a)
        signs = torch.sgn(torch.diagonal(r, dim1=-2, dim2=-1))
        return q * signs.unsqueeze(-2), r * signs.unsqueeze(-1)
    columns: list[Tensor] = []
    for j in range(d):
        v = a[..., j]
        for _ in range(2):
            for q_i in columns:
                v = v - (q_i * v).sum(-1, keepdim=True) * q_i
        columns.append(v / torch.linalg.vector_norm(v, dim=-1, keepdim=True))
    q = torch.stack(columns, dim=-1)
    r = torch.triu(q.transpose(-2, -1) @ a)
    return q, r


def orthonormalise(m: Tensor, special: bool = False) -> Tensor:
    """``Q`` of the QR factorisation of ``m (.., d, d)`` with ``diag(R) >= 0``; ``Q(g m) = g Q(m)`` for ``g`` in O(d).

    Householder QR always returns an orthogonal ``Q``; a zero pivot keeps its column's
    sign (no NaN), though equivariance is then lost at that input.  ``special=True``
    multiplies the first column by ``det Q``, landing in SO(d) (still ``Q(g m) = g Q(m)``
    for ``g`` in SO(d)).
    """
    q, r = torch.linalg.qr(m)
    sign = torch.where(torch.diagonal(r, dim1=-2, dim2=-1) < 0, -1.0, 1.0).to(m.dtype)
    q = q * sign.unsqueeze(-2)
    if special:
        flip = torch.sgn(torch.linalg.det(q))
        q = torch.cat([q[..., :1] * flip[..., None, None], q[..., 1:]], dim=-1)
    return q


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
