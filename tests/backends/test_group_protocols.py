"""The protocols by which groups, actions and gammas say what they are (no probing, no module names).

A group lists its elements (``finite``), lands network outputs in itself (``project``,
``raw_size``); an action declares its ``kind``; a gamma's function is vouched for by the class
that computes it.  A user's group that implements the protocol gets the built-in gammas.
"""

from __future__ import annotations

import pytest
import torch
from torch import Tensor

from markovcat.backends import torch as mct

gm = mct.gammas
O3, S4, C5, D4 = mct.Orthogonal(3), mct.Symmetric(4), mct.Cyclic(5), mct.Dihedral(4)


class Parity(mct.TorchGroup):
    """A user's finite group, Z/2 as {0, 1}, acting on R^2 by x -> (-1)^g x: finite through its elements() alone."""

    name = "Z2"

    def __init__(self) -> None:
        self.spec = mct.Spec((), torch.long, self.sample)

    def mul(self, a: Tensor, b: Tensor) -> Tensor:
        return torch.remainder(a + b, 2)

    def inv(self, a: Tensor) -> Tensor:
        return a

    def unit(self, *, like: Tensor) -> Tensor:
        return torch.zeros(like.shape[0], dtype=torch.long, device=like.device)

    def sample(self, batch: int, generator: torch.Generator | None = None, dtype: torch.dtype | None = None,
               device: torch.device | str = "cpu") -> Tensor:
        return torch.randint(0, 2, (batch,), generator=generator, device=device)

    def elements(self, *, dtype: torch.dtype | None = None, device: torch.device | str = "cpu",
                 limit: int = 5040) -> Tensor:
        return torch.arange(2, device=device)

    def flip(self) -> mct.TorchAction:
        return mct.TorchAction("flip", self, mct.Spec((2,)), lambda g, x: x * (1 - 2 * g).unsqueeze(-1).to(x.dtype))


def test_finite_groups_say_so_through_their_elements() -> None:
    assert C5.finite and S4.finite and D4.finite and mct.PermutationMatrices(3).finite and Parity().finite
    assert not O3.finite and not mct.Translation(2).finite
    assert mct.elements(C5).tolist() == [0, 1, 2, 3, 4] and mct.elements(D4).shape == (8,)
    assert mct.elements(S4).shape == (24, 4) and mct.elements(mct.PermutationMatrices(3)).shape == (6, 3, 3)
    with pytest.raises(mct.InterpretationError, match="cannot enumerate the elements of O\\(3\\)"):
        mct.elements(O3)
    with pytest.raises(mct.InterpretationError, match="limit 100"):
        mct.elements(mct.Symmetric(6), limit=100)


def test_groups_land_network_outputs_in_themselves() -> None:
    raw = torch.randn(7, 9, dtype=torch.float64)
    g = O3.project(raw)
    eye = torch.eye(3, dtype=torch.float64).expand(7, 3, 3)
    assert O3.raw_size == 9 and torch.allclose(g @ g.transpose(-1, -2), eye)
    scores = torch.tensor([[3.0, 1.0, 2.0, 0.0]])
    assert S4.raw_size == 4 and torch.equal(S4.project(scores), torch.tensor([[3, 1, 2, 0]]))
    assert C5.raw_size == 5 and C5.project(torch.eye(5)).tolist() == [0, 1, 2, 3, 4]  # argmax over one logit each
    product = mct.Product(O3, mct.Orthogonal(2))
    assert product.raw_size == 13
    parts = product.split(product.project(torch.randn(4, 13)))
    assert [tuple(p.shape) for p in parts] == [(4, 3, 3), (4, 2, 2)]
    with pytest.raises(TypeError, match="defines no project"):
        mct.Translation(2).project(torch.randn(1, 2))


def test_a_users_finite_group_gets_the_network_and_orbit_gammas() -> None:
    z2 = Parity()
    flip = z2.flip()
    torch.manual_seed(0)
    recursive = gm.named("recursive", z2, flip, hidden=8)
    assert recursive.check(n_inputs=8).passed
    assert gm.named("canonical", z2, flip).check(n_inputs=8).passed  # OrbitArgmax over the listed elements
    assert gm.named("haar", z2, flip).elements is not None  # exact averaging over the whole group


def test_actions_declare_their_kind_and_gammas_read_it() -> None:
    assert O3.points(5).kind == "rows" and O3.left(5).kind == "columns" and S4.sets(2).kind == "permute rows"
    assert O3.trivial(mct.Spec((1,))).kind == "trivial" and O3.vectors().kind is None
    assert mct.PermutationMatrices(4).sets(2).kind == "permute rows"
    assert D4.trivial(mct.Spec((1,))).restrict(D4.rotations()).kind == "trivial"  # trivial along any homomorphism
    assert D4.plane().restrict(D4.rotations()).kind is None
    with pytest.raises(ValueError, match="unknown action kind 'diagonal'"):
        mct.TorchAction("mine", O3, mct.Spec((5, 3)), lambda g, x: x, kind="diagonal")
    # the same action, undeclared: the built-in O(d) gammas do not guess
    rows = mct.TorchAction("my rotation", O3, mct.Spec((5, 3)), lambda g, x: x @ g.transpose(-1, -2))
    with pytest.raises(TypeError, match="kind='rows'"):
        gm.named("canonical", O3, rows)
    declared = mct.TorchAction("my rotation", O3, mct.Spec((5, 3)), lambda g, x: x @ g.transpose(-1, -2), kind="rows")
    assert gm.named("canonical", O3, declared).check(n_inputs=8).passed


class MyPCA(mct.PCACanonicaliser):
    """A user's subclass that changes the computation: no longer the library's claim."""

    def __call__(self, x: Tensor) -> Tensor:
        return super().__call__(x).flip(-1)


class QuietPCA(mct.PCACanonicaliser):
    """A user's subclass that only changes a parameter: still the library's computation."""

    def __init__(self) -> None:
        super().__init__(validate=False)


def test_the_class_that_computes_a_gamma_says_whether_the_library_vouches_for_it() -> None:
    points = O3.points(6)
    assert gm.vouched(mct.PCACanonicaliser()) and gm.vouched(QuietPCA()) and gm.vouched(O3.haar_sampler())
    assert not gm.vouched(MyPCA()) and not gm.vouched(lambda x: x) and not gm.vouched(torch.nn.Linear(2, 2))
    assert gm.as_gamma(QuietPCA(), O3, points).guarantee.kind == "exact"
    assert gm.as_gamma(MyPCA(), O3, points).guarantee.kind == "assumed"
    assert gm.as_gamma(O3.haar_sampler(), O3, points).guarantee.kind == "in law"
    compiled = gm.canonical(MyPCA(), O3, points).compile()  # a compiled model is no library frame
    assert gm.as_gamma(compiled, O3, points).guarantee.kind == "assumed"
