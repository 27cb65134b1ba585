"""The batched small QR agrees with Householder QR (sign-fixed) and stays orthogonal."""

from __future__ import annotations

import pytest
import torch

from markovcat.backends.torch.linalg import SMALL, qr_positive


@pytest.mark.parametrize("shape", [(512, 2, 2), (512, 3, 3), (64, 8, 8), (64, 10, 4), (8, 20, 20)])
def test_matches_sign_fixed_householder(shape: tuple[int, ...]) -> None:
    a = torch.randn(*shape, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    q, r = qr_positive(a)
    q_ref, r_ref = torch.linalg.qr(a)
    signs = torch.sgn(torch.diagonal(r_ref, dim1=-2, dim2=-1))
    torch.testing.assert_close(q, q_ref * signs.unsqueeze(-2), atol=1e-8, rtol=0)
    torch.testing.assert_close(q @ r, a, atol=1e-10, rtol=0)
    assert bool((torch.diagonal(r, dim1=-2, dim2=-1) > 0).all())


def test_float32_orthogonality_over_many_gaussian_draws() -> None:
    a = torch.randn(20_000, 3, 3, generator=torch.Generator().manual_seed(1))
    q, _ = qr_positive(a)
    error = (q.transpose(-2, -1) @ q - torch.eye(3)).abs().amax()
    assert error < 1e-5, f"orthogonality error {error:.2e}"


def test_gradients_flow_and_match_householder() -> None:
    a = torch.randn(16, 3, 3, dtype=torch.float64, requires_grad=True)
    weights = torch.randn(16, 3, 3, dtype=torch.float64)
    (qr_positive(a)[0] * weights).sum().backward()
    ours = a.grad.clone()
    a.grad = None
    q_ref, r_ref = torch.linalg.qr(a)
    (q_ref * torch.sgn(torch.diagonal(r_ref, dim1=-2, dim2=-1)).unsqueeze(-2) * weights).sum().backward()
    torch.testing.assert_close(ours, a.grad, atol=1e-8, rtol=1e-6)


def test_wide_matrices_are_refused() -> None:
    with pytest.raises(ValueError, match="at least as many rows"):
        qr_positive(torch.randn(2, 3))
    assert SMALL >= 8
