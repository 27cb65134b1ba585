"""The batched small QR agrees with Householder QR (sign-fixed) and stays orthogonal."""

from __future__ import annotations

import pytest
import torch

from markovcat.backends.torch.linalg import SMALL, haar_orthogonal, orthonormalise, qr_positive, to_special


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


METHODS = ["householder", "gram-schmidt"]


@pytest.mark.parametrize("method", METHODS)
def test_both_methods_agree_with_the_sign_fixed_factorisation(method: str) -> None:
    a = torch.randn(256, 3, 3, dtype=torch.float64, generator=torch.Generator().manual_seed(2))
    q, r = qr_positive(a, method)
    reference, _ = qr_positive(a, "householder" if method == "gram-schmidt" else "gram-schmidt")
    torch.testing.assert_close(q, reference, atol=1e-10, rtol=0)
    torch.testing.assert_close(q @ r, a, atol=1e-10, rtol=0)


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_singular_inputs_give_orthogonal_finite_factors(method: str, dtype: torch.dtype) -> None:
    u = torch.randn(3, 1, dtype=dtype, generator=torch.Generator().manual_seed(3))
    singular = torch.stack([
        torch.zeros(3, 3, dtype=dtype),                      # rank 0
        u @ torch.tensor([[1.0, 2.0, -1.0]], dtype=dtype),  # rank 1
        torch.cat([u, u, torch.ones(3, 1, dtype=dtype)], 1),  # a repeated column
        torch.cat([torch.ones(3, 1, dtype=dtype), torch.zeros(3, 1, dtype=dtype), u], 1),  # a zero column
    ])
    q, r = qr_positive(singular, method)
    assert bool(torch.isfinite(q).all()) and bool(torch.isfinite(r).all())
    eye = torch.eye(3, dtype=dtype).expand_as(q)
    tolerance = 100 * torch.finfo(dtype).eps
    torch.testing.assert_close(q.transpose(-1, -2) @ q, eye, atol=tolerance, rtol=0)
    torch.testing.assert_close(q @ r, singular, atol=tolerance * 10, rtol=0)
    torch.testing.assert_close(orthonormalise(singular[:1]), eye[:1], atol=tolerance, rtol=0)  # the zero matrix -> I


@pytest.mark.parametrize("method", METHODS)
def test_gradients_are_finite_and_agree_between_methods(method: str) -> None:
    a = torch.randn(16, 3, 3, dtype=torch.float64, generator=torch.Generator().manual_seed(4), requires_grad=True)
    weights = torch.randn(16, 3, 3, dtype=torch.float64, generator=torch.Generator().manual_seed(5))
    grads = []
    for m in METHODS:
        (qr_positive(a, m)[0] * weights).sum().backward()
        grads.append(a.grad.clone())
        a.grad = None
    assert bool(torch.isfinite(grads[0]).all())
    torch.testing.assert_close(grads[0], grads[1], atol=1e-8, rtol=1e-6)


def test_to_special_is_so_equivariant_and_lands_in_so() -> None:
    m = torch.randn(64, 3, 3, dtype=torch.float64, generator=torch.Generator().manual_seed(6))
    g = haar_orthogonal(64, 3, torch.Generator().manual_seed(7), torch.float64, special=True)
    for special in (False, True):
        torch.testing.assert_close(orthonormalise(g @ m, special), g @ orthonormalise(m, special), atol=1e-10, rtol=0)
    assert torch.allclose(torch.linalg.det(to_special(orthonormalise(m))), torch.ones(64, dtype=torch.float64))
    q = orthonormalise(m)
    negative = torch.linalg.det(q) < 0
    expected = torch.where(negative[:, None, None] & torch.tensor([False, False, True]), -q, q)  # only the last column
    assert bool(negative.any()) and torch.equal(to_special(q), expected)


def test_unknown_method_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown QR method"):
        qr_positive(torch.randn(2, 3, 3), "givens")
    with pytest.raises(ValueError, match="at most"):
        qr_positive(torch.randn(2, SMALL + 1, SMALL + 1), "gram-schmidt")
