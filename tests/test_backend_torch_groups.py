"""Batched torch groups: axioms, Haar sampling, exact grid rotations, frames and their failure modes."""

from __future__ import annotations

import pytest
import torch

from markovcat.backends import torch as mct
from markovcat.backends.torch.equivariance import energy_test
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
