"""Canonicalisers and frames: dtype-aware refusals, scale invariance, ties, non-finite and extreme inputs."""

from __future__ import annotations

import itertools
import math

import pytest
import torch
from torch import Tensor

from markovcat.backends import torch as mct
from markovcat.backends.torch import frames as F

O3 = mct.Orthogonal(3)
ADVICE = ("float64", "validate=False", "gamma")


def seeded(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def tetrahedra(batch: int, noise: float, seed: int = 0) -> Tensor:
    """Regular tetrahedra plus Gaussian noise (float64): nearly symmetric clouds."""
    t = torch.tensor([[1.0, 1, 1], [1, -1, -1], [-1, 1, -1], [-1, -1, 1]], dtype=torch.float64)
    return t + noise * torch.randn(batch, 4, 3, dtype=torch.float64, generator=seeded(seed))


def frame_error(frame: F.PCACanonicaliser | F.MomentCanonicaliser | F.PCAFrames, x: Tensor, g: Tensor) -> Tensor:
    """``max |F(x g^T) - g F(x)|`` per batch element (all frame elements, as sets, for PCAFrames)."""
    moved = frame(x @ g.transpose(-1, -2).to(x.dtype)).double()
    rotated = g @ frame(x).double() if not isinstance(frame, F.PCAFrames) else g[:, None] @ frame(x).double()
    if isinstance(frame, F.PCAFrames):  # match each rotated element to the nearest moved one
        distance = (moved[:, :, None] - rotated[:, None]).abs().flatten(3).amax(-1)
        return distance.amin(1).amax(-1)
    return (moved - rotated).abs().flatten(1).amax(-1)


def verdicts(frame: object, x: Tensor) -> list[bool]:
    out = []
    for i in range(x.shape[0]):
        try:
            frame(x[i:i + 1])  # type: ignore[operator]
            out.append(True)
        except ValueError:
            out.append(False)
    return out


# -- item 1: thresholds follow the dtype and the conditioning achieved --------------------------------
@pytest.mark.parametrize("make", [F.MomentCanonicaliser, F.PCACanonicaliser, F.PCAFrames])
def test_near_symmetric_float32_clouds_are_refused_or_equivariant_to_the_stated_tolerance(make: type) -> None:
    x = tetrahedra(24, 1e-4).float()
    g = O3.sample(24, seeded(1), torch.float64)
    frame = make()
    tol = F.default_tol(torch.float32)
    accepted = verdicts(frame, x)
    for i, ok in enumerate(accepted):
        if ok:
            assert float(frame_error(make(validate=False), x[i:i + 1], g[i:i + 1])) <= tol
    refused = accepted.index(False) if False in accepted else None
    assert refused is not None, "the float32 tetrahedron + 1e-4 noise should be refused at least once"
    with pytest.raises(ValueError, match="degenerate point cloud") as info:
        frame(x[refused:refused + 1])
    assert all(word in str(info.value) for word in ADVICE), str(info.value)


def test_the_same_clouds_in_float64_are_accepted_by_pca_and_equivariant() -> None:
    x = tetrahedra(24, 1e-4)
    g = O3.sample(24, seeded(1), torch.float64)
    for make in (F.PCAFrames, F.PCACanonicaliser):
        assert all(verdicts(make(), x))
        assert float(frame_error(make(), x, g).max()) <= F.default_tol(torch.float64)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("make", [F.MomentCanonicaliser, F.PCACanonicaliser, F.PCAFrames])
def test_every_accepted_frame_is_within_its_tolerance(make: type, dtype: torch.dtype) -> None:
    """Random clouds of every conditioning: whatever passes the check is equivariant to ``tol``."""
    noise = 10 ** (-6 * torch.rand(300, 1, 1, dtype=torch.float64, generator=seeded(2)))
    x = torch.cat([tetrahedra(300, 1.0, 3)[:, :4] * noise + tetrahedra(300, 0.0)[:, :4],
                   torch.randn(300, 4, 3, dtype=torch.float64, generator=seeded(4))]).to(dtype)
    g = O3.sample(x.shape[0], seeded(5), torch.float64)
    ok = torch.tensor(verdicts(make(), x))
    assert bool(ok.any()) and (dtype == torch.float64 or not bool(ok.all()))
    assert float(frame_error(make(validate=False), x[ok], g[ok]).max()) <= F.default_tol(dtype)


@pytest.mark.parametrize("make", [F.MomentCanonicaliser, F.PCACanonicaliser, F.PCAFrames])
def test_the_rounding_bound_is_what_refuses(make: type, monkeypatch: pytest.MonkeyPatch) -> None:
    """With the rounding constant removed, the check lets wrong float32 frames through (it catches them)."""
    x = tetrahedra(24, 1e-4).float()
    g = O3.sample(24, seeded(1), torch.float64)
    assert not all(verdicts(make(), x))
    monkeypatch.setattr(F, "ROUNDING", 1e-12)
    errors = frame_error(make(), x, g)  # nothing refused now: frames off by several tolerances get through
    assert float(errors.max()) > 4 * F.default_tol(torch.float32)


def direct_verdicts(make: type, x: Tensor) -> list[bool]:
    """The checks' bounds computed directly, term by term, in float64 from the library's own float32 quantities."""
    eps, tol, c = float(torch.finfo(x.dtype).eps), F.default_tol(x.dtype), F.ROUNDING
    xs = x / x.abs().amax((-2, -1), keepdim=True)
    if make is F.MomentCanonicaliser:
        sq = (xs * xs).sum(-1, keepdim=True)
        powers = torch.cat([sq**k for k in range(3)], -1)
        _, r = torch.linalg.qr(xs.transpose(-1, -2) @ powers)
        rw = (r / (sq.sqrt() * powers).sum(-2, keepdim=True)).double()
        inverse = torch.linalg.solve_triangular(rw, torch.eye(3, dtype=torch.float64).expand_as(rw), upper=True)
        return (c * eps * math.sqrt(6) * torch.linalg.matrix_norm(inverse) <= tol).tolist()
    mean = xs.mean(-2, keepdim=True)
    y = xs - mean
    values, vectors = torch.linalg.eigh(y.transpose(-1, -2) @ y / x.shape[-2])
    values, mean, y = values.double(), mean.double(), y.double()
    trace, mu = values.sum(-1), torch.linalg.vector_norm(mean, dim=(-2, -1))
    delta = c * eps * (trace + trace.sqrt() * ((trace + mu**2).sqrt() + mu))
    error = delta / (values[:, 1:] - values[:, :-1]).amin(-1)
    ok = error <= tol
    if make is F.PCAFrames:
        return ok.tolist()
    p = y @ vectors.double()
    weight = torch.linalg.vector_norm(y, dim=-1) + mu.unsqueeze(-1)  # (b, n)
    margin = 3 * (error + c * eps).unsqueeze(-1) * (p**2 * weight.unsqueeze(-1)).sum(-2)
    return (ok & ((p**3).sum(-2).abs() > margin).all(-1)).tolist()


@pytest.mark.parametrize("make", [F.MomentCanonicaliser, F.PCACanonicaliser, F.PCAFrames])
def test_the_cheap_checks_refuse_what_the_direct_bounds_refuse(make: type) -> None:
    """The checks are computed from quantities the frame already has (eigenvalues, projections, an exact small
    inverse of R): the verdicts are those of the bounds written out in full, away from the boundary."""
    x = torch.cat([torch.randn(300, 16, 3, generator=seeded(20)), tetrahedra(100, 1e-3, 21).float().repeat(1, 4, 1),
                   0.1 * torch.randn(200, 16, 3, generator=seeded(22)) + torch.tensor([5.0, -3.0, 2.0])])
    cheap, direct = verdicts(make(), x), direct_verdicts(make, x)
    assert 0 < sum(cheap) < len(cheap)
    assert sum(a != b for a, b in zip(cheap, direct)) <= len(cheap) // 100  # rounding at the boundary only


def test_canonicalised_and_frame_averaged_models_refuse_or_are_equivariant_in_float32() -> None:
    from markovcat.backends.torch import procedures as P
    from markovcat.experiments.examples import PointMLP

    torch.manual_seed(0)
    mlp = PointMLP(4, 3, 16)
    x = tetrahedra(8, 1e-4).float()
    g = O3.sample(8, seeded(1), torch.float32)
    points = O3.points(4)
    for model in (P.canonicalise(mlp, O3, points), P.frame_average(mlp, O3, points)):
        try:
            lhs, rhs = model(points.act(g, x)), points.act(g, model(x))
        except ValueError as error:
            assert all(word in str(error) for word in ADVICE), str(error)
            continue
        assert float((lhs - rhs).abs().max() / rhs.abs().max()) < 1e-3


# -- item 2: scale invariance ---------------------------------------------------------------------------
@pytest.mark.parametrize("make", [F.MomentCanonicaliser, F.PCACanonicaliser, F.PCAFrames])
def test_verdict_and_frame_do_not_depend_on_the_scale(make: type) -> None:
    x = torch.randn(200, 16, 3, generator=seeded(6))
    frame, loose = make(), make(validate=False)
    base, reference = verdicts(frame, x), loose(x)
    assert sum(base) > 150
    for k in range(-10, 11, 4):  # powers of two scale exactly: identical verdicts and frames
        assert verdicts(frame, x * 2.0**k) == base
        assert torch.equal(loose(x * 2.0**k), reference)
    for k in (-3, -1.5, 1.5, 3):  # 1e-3 .. 1e3
        assert verdicts(frame, x * 10**k) == base
        torch.testing.assert_close(loose(x * 10**k), reference, atol=1e-4, rtol=0)


# -- item 7: non-finite, extreme and half-precision input -----------------------------------------------
def canonicalisers() -> list[object]:
    return [F.MomentCanonicaliser(), F.PCACanonicaliser(), F.PCAFrames(), F.Lexsort(), F.RandomTiesLexsort(),
            F.SortCanonicaliser(torch.tensor([1.0, 2.0, 3.0])), F.OrbitArgmax(mct.Symmetric(4).sets(3)),
            F.LowerCholesky()]


@pytest.mark.parametrize("frame", canonicalisers(), ids=lambda f: type(f).__name__)
@pytest.mark.parametrize("bad", [float("nan"), float("inf")])
def test_non_finite_input_is_reported_as_such_with_its_batch_index(frame: object, bad: float) -> None:
    x = torch.randn(4, 4, 3, generator=seeded(7))
    x[2, 1, 0] = bad
    with pytest.raises(ValueError, match="non-finite input.*batch index 2"):
        frame(x)  # type: ignore[operator]


@pytest.mark.parametrize("make", [F.MomentCanonicaliser, F.PCACanonicaliser, F.PCAFrames])
def test_non_finite_input_without_validation_gives_nan_not_an_exception(make: type) -> None:
    x = torch.randn(3, 5, 3, generator=seeded(8))
    x[1, 0, 0] = float("nan")
    out = make(validate=False)(x)
    assert bool(out[1].isnan().all()) and bool(out[[0, 2]].isfinite().all())


@pytest.mark.parametrize("make", [F.MomentCanonicaliser, F.PCACanonicaliser, F.PCAFrames])
@pytest.mark.parametrize("scale", [1e20, 1e-20])
def test_extreme_scales_work_in_float32(make: type, scale: float) -> None:
    x = torch.randn(8, 16, 3, generator=seeded(9))
    ok = torch.tensor(verdicts(make(), x))
    torch.testing.assert_close(make()(x[ok] * scale), make()(x[ok]), atol=1e-5, rtol=0)


def test_frame_average_of_a_huge_cloud_runs() -> None:
    from markovcat.backends.torch import procedures as P
    from markovcat.experiments.examples import PointMLP

    torch.manual_seed(0)
    model = P.frame_average(PointMLP(16, 3, 16), O3, O3.points(16))
    x = torch.randn(4, 16, 3, generator=seeded(10))
    assert model(x * 1e20).isfinite().all() or True  # the MLP may overflow; the frame must not raise
    frames = F.PCAFrames(descending=False)
    torch.testing.assert_close(frames(x * 1e20), frames(x), atol=1e-5, rtol=0)


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
@pytest.mark.parametrize("make", [F.MomentCanonicaliser, F.PCACanonicaliser, F.PCAFrames])
def test_half_precision_is_computed_in_float32_and_returned_in_half(make: type, dtype: torch.dtype) -> None:
    x = torch.randn(64, 16, 3, generator=seeded(11)).to(dtype)
    out = make(validate=False)(x)
    assert out.dtype == dtype
    torch.testing.assert_close(out.float(), make(validate=False)(x.float()).to(dtype).float(), atol=0, rtol=0)
    try:  # thresholds follow the half-precision eps: most clouds are too close to symmetric for it
        make()(x)
    except ValueError as error:
        assert str(dtype).replace("torch.", "") in str(error) and "float64" in str(error), str(error)


# -- item 3: sets with identical rows ----------------------------------------------------------------------
def padded_sets(batch: int, seed: int = 12) -> Tensor:
    x = torch.randn(batch, 6, 2, generator=seeded(seed))
    x[:, 3:] = 0.0  # three rows of zero padding
    return x


def test_identical_rows_are_refused_by_default_with_the_options_named() -> None:
    for frame in (F.Lexsort(), F.SortCanonicaliser(torch.tensor([1.0, 0.5]))):
        with pytest.raises(ValueError, match="identical") as info:
            frame(padded_sets(2))
        for option in ('ties="allow"', 'gamma="canonical-random-ties"', "frame averaging", 'gamma="haar"'):
            assert option in str(info.value)


def test_allowed_ties_give_the_same_canonical_input_so_invariant_outputs_are_exact() -> None:
    s6 = mct.Symmetric(6)
    x = padded_sets(32)
    p = s6.sample(32, seeded(13))
    moved = s6.sets(2).act(p, x)
    net = torch.nn.Sequential(torch.nn.Flatten(1), torch.nn.Linear(12, 8), torch.nn.Tanh(), torch.nn.Linear(8, 1))
    for frame in (F.Lexsort(ties="allow"), F.SortCanonicaliser(torch.tensor([1.0, 0.5]), ties="allow"),
                  F.OrbitArgmax(s6.sets(2), ties="allow")):
        canonical = s6.sets(2).act(s6.inv(frame(x)), x)
        assert torch.equal(canonical, s6.sets(2).act(s6.inv(frame(moved)), moved))
        assert torch.equal(net(canonical), net(s6.sets(2).act(s6.inv(frame(moved)), moved)))


def test_allowed_ties_still_refuse_different_rows_with_equal_scores() -> None:
    x = torch.tensor([[[1.0, 0.0], [0.0, 2.0], [3.0, 3.0]]])  # scores 1, 1, 4.5 with weights (1, 0.5)
    with pytest.raises(ValueError, match="different rows"):
        F.SortCanonicaliser(torch.tensor([1.0, 0.5]), ties="allow")(x)
    with pytest.raises(ValueError, match="ties must be"):
        F.Lexsort(ties="maybe")


def test_random_ties_lexsort_equals_lexsort_without_ties() -> None:
    x = torch.randn(16, 7, 2, generator=seeded(14))
    for seed in range(3):
        assert torch.equal(F.RandomTiesLexsort()(x, generator=seeded(seed)), F.Lexsort()(x))


def test_random_ties_lexsort_is_uniform_over_the_sorting_permutations() -> None:
    x = torch.tensor([[[2.0, 1.0], [0.0, 0.0], [-1.0, 5.0], [0.0, 0.0], [0.0, 0.0]]])
    draws = 6000
    orders = F.RandomTiesLexsort()(x.expand(draws, 5, 2), generator=seeded(15))
    sorted_rows = torch.gather(x.expand(draws, 5, 2), 1, orders.unsqueeze(-1).expand(draws, 5, 2))
    assert torch.equal(sorted_rows, sorted_rows[:1].expand_as(sorted_rows))  # every draw sorts the set
    counts: dict[tuple[int, ...], int] = {}
    for row in orders.tolist():
        counts[tuple(row)] = counts.get(tuple(row), 0) + 1
    assert len(counts) == math.factorial(3)  # all 3! orders of the three zero rows occur, nothing else
    expected = draws / len(counts)
    chi2 = sum((c - expected) ** 2 / expected for c in counts.values())
    assert chi2 < 20.5, f"chi-square {chi2:.1f} on 5 degrees of freedom (p < 0.001)"
    assert set(counts) == {(2, *p, 0) for p in itertools.permutations((1, 3, 4))}


def test_random_ties_lexsort_is_equivariant_in_law() -> None:
    """``gamma(p.x)`` and ``p o gamma(x)`` have the same law: compare their counts on a padded set."""
    s5 = mct.Symmetric(5)
    x = torch.tensor([[[2.0, 1.0], [0.0, 0.0], [-1.0, 5.0], [0.0, 0.0], [0.0, 0.0]]])
    p = s5.sample(1, seeded(16))
    draws = 3000
    lhs = F.RandomTiesLexsort()(s5.sets(2).act(p, x).expand(draws, 5, 2), generator=seeded(17))
    rhs = s5.mul(p.expand(draws, 5), F.RandomTiesLexsort()(x.expand(draws, 5, 2), generator=seeded(18)))
    assert set(map(tuple, lhs.tolist())) == set(map(tuple, rhs.tolist()))
    assert F.RandomTiesLexsort.deterministic is False and "uniformly" in F.RandomTiesLexsort.reason


def test_orbit_argmax_separates_harmless_symmetries_from_rounding_ties() -> None:
    c4 = mct.Cyclic(4)
    symmetric = torch.ones(1, 1, 4, 4)
    with pytest.raises(ValueError, match="has a symmetry"):
        F.OrbitArgmax(c4.images(1, 4))(symmetric)
    assert F.OrbitArgmax(c4.images(1, 4), ties="allow")(symmetric).shape == (1,)
