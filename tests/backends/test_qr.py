"""The batched small QR agrees with Householder QR (sign-fixed) and stays orthogonal."""

from __future__ import annotations

import pytest
import torch

from markovcat.backends.torch.equivariance import energy_test
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


# -- Haar samplers: the closed forms for d = 2, 3 and the QR path -------------------------------------------

TOLERANCE = {torch.float32: 1e-6, torch.float64: 1e-13}


def _seeded(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("special", [False, True])
@pytest.mark.parametrize("d", [1, 2, 3, 4, 5])
def test_haar_samples_are_orthogonal_with_the_right_determinants(d: int, special: bool, dtype: torch.dtype) -> None:
    """The closed forms (d = 2, 3) to 1e-6 in float32 and 1e-13 in float64; the QR path (d > 3) to 4 times that."""
    g = haar_orthogonal(4000, d, _seeded(d), dtype, special=special)
    assert g.shape == (4000, d, d) and g.dtype == dtype
    error = (g.double() @ g.double().transpose(-1, -2) - torch.eye(d, dtype=torch.float64)).abs().amax()
    assert error < TOLERANCE[dtype] * (1 if d <= 3 else 4), f"orthogonality error {error:.2e}"
    det = torch.linalg.det(g.double())
    assert bool(((det - det.sign()).abs() < 1e-5).all())
    positive = (det > 0).double().mean().item()
    assert positive == 1.0 if special else 0.45 < positive < 0.55  # O(d): both components, equally likely


@pytest.mark.parametrize("d", [2, 3])
@pytest.mark.parametrize("special", [False, True])
def test_haar_samples_are_reproducible_from_the_generator(d: int, special: bool) -> None:
    first = haar_orthogonal(64, d, _seeded(3), torch.float64, special=special)
    assert torch.equal(first, haar_orthogonal(64, d, _seeded(3), torch.float64, special=special))
    assert not torch.equal(first, haar_orthogonal(64, d, _seeded(4), torch.float64, special=special))
    generator = _seeded(3)
    haar_orthogonal(64, d, generator, torch.float64, special=special)
    assert not torch.equal(first, haar_orthogonal(64, d, generator, torch.float64, special=special))  # state moves


def _uniform_ks(u: torch.Tensor) -> float:
    """Kolmogorov-Smirnov distance of the sample ``u`` from the uniform law on [0, 1]."""
    u, _ = torch.sort(u.double())
    n = u.numel()
    grid = torch.arange(1, n + 1, dtype=torch.float64) / n
    return max((grid - u).abs().max().item(), (u - (grid - 1 / n)).abs().max().item())


def _sphere_ks(g: torch.Tensor) -> float:
    """The largest KS distance from uniform of the images of the basis vectors under ``g (B, d, d)``, d = 2 or 3.

    A uniform point of S^2 has each coordinate uniform on [-1, 1] (Archimedes); a uniform
    point of S^1 has a uniform angle.  Rows (images under ``g^T``) are tested too.
    """
    distances = []
    for image in (*g.unbind(-1), *g.unbind(-2)):
        if g.shape[-1] == 3:
            distances += [_uniform_ks((image[:, i] + 1) / 2) for i in range(3)]
        else:
            distances.append(_uniform_ks(torch.atan2(image[:, 1], image[:, 0]) / (2 * torch.pi) + 0.5))
    return max(distances)


def _euler_angles_uniform(batch: int, generator: torch.Generator) -> torch.Tensor:
    """A classic wrong "uniform rotation": Z-Y-Z Euler angles drawn uniformly (not Haar)."""
    a, b, c = (torch.rand(3, batch, generator=generator, dtype=torch.float64) * torch.tensor([[2.0], [1.0], [2.0]])
               * torch.pi)

    def axis(angle: torch.Tensor, i: int, j: int) -> torch.Tensor:
        r = torch.eye(3, dtype=torch.float64).repeat(batch, 1, 1)
        r[:, i, i], r[:, i, j], r[:, j, i], r[:, j, j] = angle.cos(), -angle.sin(), angle.sin(), angle.cos()
        return r

    return axis(a, 0, 1) @ axis(b, 2, 0) @ axis(c, 0, 1)


def _angle_from_a_square(batch: int, generator: torch.Generator) -> torch.Tensor:
    """A wrong uniform rotation of the plane: the direction of a uniform point of a square (biased to diagonals)."""
    v = torch.rand(batch, 2, generator=generator, dtype=torch.float64) * 2 - 1
    c, s = (v / torch.linalg.vector_norm(v, dim=-1, keepdim=True)).unbind(-1)
    return torch.stack([c, -s, s, c], dim=-1).view(batch, 2, 2)


#: sqrt(n) times a KS distance above this has p < 0.01 / 18: with Bonferroni's bound, p < 0.01 for all 18 KS
#: distances of :func:`_sphere_ks` together (fixed seeds, so each test is deterministic).
KS_CRITICAL = 2.04
N_LAW = 20_000


@pytest.mark.parametrize("d", [2, 3])
@pytest.mark.parametrize("special", [False, True])
def test_haar_samples_have_the_haar_law(d: int, special: bool) -> None:
    """Moments (E[g] = 0, E[g_ij^2] = 1/d), uniform images of the basis on the sphere, and the same law as QR's.

    At n = 20,000 a KS distance is refused above 2.04 / sqrt(n) = 0.014; the biased samplers
    in the next test are refused by the same check.  Proves the law to that resolution
    only, not exactly.
    """
    n = N_LAW
    g = haar_orthogonal(n, d, _seeded(10 + d), torch.float64, special=special)
    assert g.mean(0).abs().max() < 4 / n**0.5  # each entry has variance 1/d: 4 sigma
    torch.testing.assert_close(g.square().mean(0), torch.full((d, d), 1 / d, dtype=torch.float64), atol=0.03, rtol=0)
    assert _sphere_ks(g) * n**0.5 < KS_CRITICAL
    reference, _ = qr_positive(torch.randn(600, d, d, generator=_seeded(20), dtype=torch.float64))
    if special:
        reference = to_special(reference)
    _, p = energy_test(g[:600].flatten(1), reference.flatten(1), 300, _seeded(21))
    assert p > 0.01


def test_the_law_checks_refuse_biased_samplers() -> None:
    """The sphere check above is not vacuous: uniform Euler angles and directions of a square (orthogonal, wrong law)
    fail it at the same sample size."""
    n = N_LAW
    for wrong in (_euler_angles_uniform(n, _seeded(30)), _angle_from_a_square(n, _seeded(32))):
        d = wrong.shape[-1]
        assert (wrong.transpose(-1, -2) @ wrong - torch.eye(d, dtype=torch.float64)).abs().max() < 1e-12
        assert _sphere_ks(wrong) * n**0.5 > KS_CRITICAL


def test_haar_sampler_follows_like_and_the_generator() -> None:
    """``Orthogonal(3).haar_sampler()(..., like=x)`` draws in ``x``'s dtype and batch, reproducibly when seeded."""
    from markovcat.backends import torch as mct

    sampler = mct.Orthogonal(3).haar_sampler()
    x = torch.zeros(7, 5, 3, dtype=torch.float64)
    g = sampler(like=x, generator=_seeded(40))
    assert g.shape == (7, 3, 3) and g.dtype == torch.float64
    assert torch.equal(g, haar_orthogonal(7, 3, _seeded(40), torch.float64))
    assert sampler(x.float(), generator=_seeded(40)).dtype == torch.float32


def test_the_qr_method_keeps_the_earlier_draws_and_unknown_methods_are_refused() -> None:
    """``method="qr"`` is the sign-fixed QR of the same Gaussian draw; the default closed form is another draw."""
    g = haar_orthogonal(8, 3, _seeded(50), torch.float64, method="qr")
    expected, _ = qr_positive(torch.randn(8, 3, 3, generator=_seeded(50), dtype=torch.float64))
    torch.testing.assert_close(g, expected, atol=1e-14, rtol=0)
    assert not torch.allclose(haar_orthogonal(8, 3, _seeded(50), torch.float64), g)
    with pytest.raises(ValueError, match="unknown Haar sampling method"):
        haar_orthogonal(8, 3, method="givens")
