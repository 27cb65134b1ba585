"""Batched torch groups: axioms, Haar sampling, exact grid rotations, frames and their failure modes."""

from __future__ import annotations

import pytest
import torch

from markovcat.backends import torch as mct
from markovcat.backends.torch.equivariance import energy_test
from markovcat.backends.torch.groups import SMALL_MATMUL_BATCH, SMALL_MATMUL_DIM, elementwise_matmul, small_matmul
from markovcat.groups import Action, Group
from markovcat.syntax import Ty


def seeded(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


@pytest.mark.parametrize(
    ("group", "actions"),
    [
        (mct.Orthogonal(3), lambda g: [g.points(5), g.vectors()]),
        (mct.Orthogonal(4, special=True), lambda g: [g.points(3)]),
        (mct.Cyclic(4), lambda g: [g.plane(), g.images(2, 5)]),
        (mct.Cyclic(2), lambda g: [g.images(1, 3)]),
        (mct.Cyclic(6), lambda g: [g.plane()]),
        (mct.Symmetric(5), lambda g: [g.sets(2)]),
    ],
    ids=["O3", "SO4", "C4", "C2", "C6", "S5"],
)
def test_group_and_action_axioms_hold(group: mct.TorchGroup, actions) -> None:  # type: ignore[no-untyped-def]
    G = Group(group.name)
    pairs = [(Action(f"act{i}", G, Ty(f"X{i}")), a) for i, a in enumerate(actions(group))]
    mct.check_laws(None, group.interpretation(G, *pairs), tolerance=1e-12)


def test_broken_actions_fail_their_axioms() -> None:
    G, X = Group("C4"), Ty("X")
    act = Action("act", G, X)
    c4 = mct.Cyclic(4)
    wrong_turns = mct.TorchAction("mirror", c4, mct.Spec((2, 4, 4)), lambda g, x: torch.flip(x, dims=(-1,)))
    with pytest.raises(mct.InterpretationError, match="fails its axiom"):
        mct.check_laws(None, c4.interpretation(G, (act, wrong_turns)))


def test_haar_samples_are_orthogonal_with_the_right_law() -> None:
    q = mct.haar_orthogonal(4000, 3, seeded(), torch.float64)
    assert torch.allclose(q.transpose(-1, -2) @ q, torch.eye(3, dtype=torch.float64).expand(4000, 3, 3), atol=1e-12)
    det = torch.linalg.det(q)
    assert 0.45 < (det > 0).double().mean() < 0.55  # O(3): both components, equally likely
    assert q.mean(0).abs().max() < 0.05  # E[Q] = 0 for Haar
    first = q[:, :, 0]
    assert torch.allclose(first.T @ first / 4000, torch.eye(3, dtype=torch.float64) / 3, atol=0.03)
    special = mct.haar_orthogonal(500, 3, seeded(1), torch.float64, special=True)
    assert torch.allclose(torch.linalg.det(special), torch.ones(500, dtype=torch.float64))


def test_haar_is_left_invariant_in_law_and_naive_qr_is_not() -> None:
    fixed = mct.haar_orthogonal(1, 3, seeded(5), torch.float64)
    q = mct.haar_orthogonal(600, 3, seeded(6), torch.float64)
    shifted = fixed @ mct.haar_orthogonal(600, 3, seeded(7), torch.float64)
    _, p_same = energy_test(q.flatten(1), shifted.flatten(1), 500, seeded(8))
    assert p_same > 0.01
    naive = torch.linalg.qr(torch.randn(600, 3, 3, generator=seeded(9), dtype=torch.float64))[0]  # no sign fix
    _, p_naive = energy_test(naive.flatten(1), (fixed @ naive).flatten(1), 500, seeded(8))
    assert p_naive < 0.01


def test_c4_acts_on_images_by_exact_quarter_turns() -> None:
    c4 = mct.Cyclic(4)
    act = c4.images(1, 3).act
    image = torch.arange(9.0).view(1, 1, 3, 3)
    one = torch.tensor([1])
    assert torch.equal(act(one, image), torch.rot90(image, 1, dims=(-2, -1)))
    x = torch.randn(8, 2, 5, 5)
    g, h = c4.sample(8, seeded(1)), c4.sample(8, seeded(2))
    assert torch.equal(act(c4.mul(g, h), x), act(g, act(h, x)))  # exact, no rounding
    with pytest.raises(mct.InterpretationError, match="no exact action on a pixel grid"):
        mct.Cyclic(3).images(1, 4)


def test_s_n_moves_row_i_to_p_i() -> None:
    s3 = mct.Symmetric(3)
    p = torch.tensor([[2, 0, 1]])
    x = torch.tensor([[[0.0], [1.0], [2.0]]])
    assert s3.sets(1).act(p, x).flatten().tolist() == [1.0, 2.0, 0.0]


def test_point_cloud_frame_is_equivariant_and_refuses_degenerate_clouds() -> None:
    o3 = mct.Orthogonal(3)
    frame = mct.MomentCanonicaliser()
    x = torch.randn(6, 10, 3, generator=seeded(), dtype=torch.float64)
    g = o3.sample(6, seeded(1), torch.float64)
    rotated = o3.points(10).act(g, x)
    assert torch.allclose(frame(rotated), g @ frame(x), atol=1e-10)
    planar = x.clone()
    planar[2, :, 2] = 0.0
    with pytest.raises(ValueError, match="degenerate point cloud at batch index 2"):
        frame(planar)


def test_sort_frame_is_equivariant_and_refuses_ties() -> None:
    s5 = mct.Symmetric(5)
    frame = mct.SortCanonicaliser(torch.tensor([1.0, -2.0]))
    x = torch.randn(4, 5, 2, generator=seeded())
    p = s5.sample(4, seeded(1))
    assert torch.equal(frame(s5.sets(2).act(p, x)), s5.mul(p, frame(x)))
    x[1, 3] = x[1, 0]
    with pytest.raises(ValueError, match="tied sorting scores"):
        frame(x)


# -- the small-matrix kernels -------------------------------------------------------------------------


def _small_case(batch: int, n: int, k: int, m: int, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    generator = seeded(seed)
    a = torch.randn(batch, n, k, dtype=torch.float64, generator=generator, requires_grad=True)
    b = torch.randn(batch, k, m, dtype=torch.float64, generator=generator, requires_grad=True)
    return a, b


@pytest.mark.parametrize("d", [1, 2, 3, SMALL_MATMUL_DIM, SMALL_MATMUL_DIM + 1, 9])
@pytest.mark.parametrize("batch", [SMALL_MATMUL_BATCH - 1, SMALL_MATMUL_BATCH, 256])
def test_small_matmul_agrees_with_matmul_on_and_off_the_fast_path(d: int, batch: int,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    """Values equal ``torch.matmul``'s to 1e-12 in float64, contiguous like matmul's; the elementwise kernel runs
    exactly where the rule says (no gradient to record, small d, large batch)."""
    from markovcat.backends.torch import groups

    calls: list[int] = []

    def counted(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        calls.append(1)
        return elementwise_matmul(a, b)

    monkeypatch.setattr(groups, "elementwise_matmul", counted)
    a, b = _small_case(batch, 5, d, d)
    fast = d <= SMALL_MATMUL_DIM and batch >= SMALL_MATMUL_BATCH
    with torch.no_grad():
        out, ref = small_matmul(a, b), torch.matmul(a, b)
    assert len(calls) == int(fast) and out.is_contiguous()
    torch.testing.assert_close(out, ref, atol=1e-12, rtol=1e-12)
    recorded = small_matmul(a, b)  # a gradient to record: bmm (its backward is the cheaper one)
    assert len(calls) == int(fast) and recorded.grad_fn is not None
    torch.testing.assert_close(recorded, ref, atol=1e-12, rtol=1e-12)


@pytest.mark.parametrize("d", [1, 2, 3, 4, 6, 9])
@pytest.mark.parametrize("batch", [1, 256])
def test_elementwise_matmul_has_matmuls_values_and_gradients(d: int, batch: int) -> None:
    """The elementwise kernel against ``torch.matmul``: values, first and second derivatives to 1e-12 in float64."""
    a, b = _small_case(batch, 5, d, d)
    out, ref = elementwise_matmul(a, b), torch.matmul(a, b)
    torch.testing.assert_close(out, ref, atol=1e-12, rtol=1e-12)
    weight = torch.randn(ref.shape, dtype=torch.float64, generator=seeded(1))
    grads = torch.autograd.grad((out.sin() * weight).sum(), (a, b), create_graph=True)
    expected = torch.autograd.grad((ref.sin() * weight).sum(), (a, b), create_graph=True)
    for got, want in zip(grads, expected, strict=True):
        torch.testing.assert_close(got, want, atol=1e-12, rtol=1e-12)
    second = torch.autograd.grad(sum(g.square().sum() for g in grads), (a, b))
    second_expected = torch.autograd.grad(sum(g.square().sum() for g in expected), (a, b))
    for got, want in zip(second, second_expected, strict=True):
        torch.testing.assert_close(got, want, atol=1e-10, rtol=1e-10)


def test_small_matmul_comparison_catches_a_wrong_kernel() -> None:
    """The 1e-12 comparison above is not vacuous: a kernel off by a transpose fails it."""
    a, b = _small_case(256, 5, 3, 3)
    with pytest.raises(AssertionError):
        torch.testing.assert_close(elementwise_matmul(a, b.transpose(-1, -2)), a @ b, atol=1e-12, rtol=1e-12)


def test_small_matmul_keeps_matmul_errors_and_broadcasting() -> None:
    a = torch.randn(128, 4, 3)
    with pytest.raises(RuntimeError):  # mixed dtypes are refused, as by matmul, not silently promoted
        small_matmul(a, torch.randn(128, 3, 3, dtype=torch.float64))
    eye = torch.eye(3).expand(128, 3, 3)  # an expanded unit: stride 0 in the batch
    torch.testing.assert_close(small_matmul(a, eye), a)
    torch.testing.assert_close(small_matmul(a, torch.eye(3)), a)  # unbatched right factor: matmul's broadcasting


@pytest.mark.parametrize("d", [2, 3, SMALL_MATMUL_DIM + 2])
def test_orthogonal_kernels_agree_with_matmul_on_the_fast_path(d: int) -> None:
    """Each O(d) kernel (mul, both point and vector actions, left and conjugation actions and their inverse
    fusions) against its matmul definition, in float64 at a batch above the fast-path threshold."""
    group, batch, generator = mct.Orthogonal(d), 2 * SMALL_MATMUL_BATCH, seeded(2)
    g = group.sample(batch, generator, torch.float64)
    h = group.sample(batch, generator, torch.float64)
    gt = g.transpose(-1, -2)
    x = torch.randn(batch, 7, d, dtype=torch.float64, generator=generator)
    v = torch.randn(batch, d, dtype=torch.float64, generator=generator)
    c = torch.randn(batch, d, d, dtype=torch.float64, generator=generator)
    left, conj = group.left(5), group.conjugation()
    cols = torch.randn(batch, d, 5, dtype=torch.float64, generator=generator)
    cases = [
        (group.mul(g, h), g @ h),
        (group.points(7).act(g, x), x @ gt),
        (group.points(7).act_inverse(g, x), x @ g),  # type: ignore[misc]
        (group.vectors().act(g, v), (g @ v.unsqueeze(-1)).squeeze(-1)),
        (group.vectors().act_inverse(g, v), (gt @ v.unsqueeze(-1)).squeeze(-1)),  # type: ignore[misc]
        (left.act(g, cols), g @ cols),
        (left.act_inverse(g, cols), gt @ cols),  # type: ignore[misc]
        (conj.act(g, c), g @ c @ gt),
        (conj.act_inverse(g, c), gt @ c @ g),  # type: ignore[misc]
    ]
    for got, want in cases:
        torch.testing.assert_close(got, want, atol=1e-12, rtol=1e-12)


def test_orthogonal_axioms_hold_on_the_fast_path() -> None:
    """The axiom checks at a batch where the elementwise kernels run (check_laws' default batch is below it)."""
    group = mct.Orthogonal(3)
    G = Group(group.name)
    pairs = [(Action("pts", G, Ty("X")), group.points(4)), (Action("vec", G, Ty("V")), group.vectors()),
             (Action("conj", G, Ty("C")), group.conjugation())]
    mct.check_laws(None, group.interpretation(G, *pairs), batch=2 * SMALL_MATMUL_BATCH, tolerance=1e-12)
