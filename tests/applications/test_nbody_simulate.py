"""The N-body simulator: conservation laws, equivariance of whole trajectories, the norm clamp, the cached splits."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from markovcat.experiments.nbody.data import cache_path, generate, load
from markovcat.experiments.nbody.simulate import SimulationConfig, energy, forces, initial_state, simulate


def state(batch: int = 16, seed: int = 0) -> tuple[torch.Tensor, ...]:
    return initial_state(batch, SimulationConfig(), torch.Generator().manual_seed(seed))


def random_orthogonal(seed: int, reflect: bool) -> torch.Tensor:
    q, r = torch.linalg.qr(torch.randn(3, 3, generator=torch.Generator().manual_seed(seed), dtype=torch.float64))
    q = q * torch.sign(torch.diagonal(r))
    if (torch.det(q) < 0) != reflect:
        q = q * torch.tensor([1.0, 1.0, -1.0], dtype=torch.float64)
    return q


def test_momentum_is_conserved_even_with_the_clamp_active() -> None:
    config = SimulationConfig(max_force=0.5)  # far below typical forces: the clamp acts on many pairs
    x, v, q = state()
    assert (forces(x, q, max_force=None).norm(dim=-1) > 0.5).any()
    _, v1 = simulate(x, v, q, 300, config)
    assert torch.allclose(v1.sum(1), v.sum(1), atol=1e-12, rtol=0)


def test_energy_is_conserved_with_a_small_step_and_converges_with_the_step() -> None:
    errors = []
    for dt in (1e-3, 1e-4):
        config = SimulationConfig(dt=dt, max_force=None)
        x, v, q = state(seed=1)
        x1, v1 = simulate(x, v, q, round(0.2 / dt), config)  # the same time span, 0.2
        e0, e1 = energy(x, v, q), energy(x1, v1, q)
        errors.append(((e1 - e0).abs() / e0.abs().clamp_min(1.0)).median().item())
    assert errors[1] < 1e-3
    assert errors[1] < errors[0] / 3  # first order: ten times smaller steps, about ten times smaller error


def test_forces_are_clamped_by_norm_per_pair() -> None:
    x = torch.tensor([[[0.0, 0.0, 0.0], [0.01, 0.0, 0.0]]], dtype=torch.float64)
    q = torch.tensor([[1.0, 1.0]], dtype=torch.float64)
    f = forces(x, q, max_force=100.0)
    assert torch.allclose(f.norm(dim=-1), torch.full((1, 2), 100.0, dtype=torch.float64))
    assert f[0, 0, 0] < 0 < f[0, 1, 0]  # like charges repel
    unlike = q * torch.tensor([1.0, -1.0], dtype=torch.float64)
    assert torch.allclose(forces(x, unlike, max_force=100.0), -f)  # unlike charges attract


@pytest.mark.parametrize("reflect", [False, True])
def test_trajectories_are_euclidean_equivariant(reflect: bool) -> None:
    config = SimulationConfig(max_force=5.0)  # the clamp is part of what must commute
    x, v, q = state(8, seed=2)
    r = random_orthogonal(3, reflect)
    t = torch.tensor([0.3, -1.2, 2.0], dtype=torch.float64)
    x1, v1 = simulate(x, v, q, 200, config)
    x2, v2 = simulate(x @ r.T + t, v @ r.T, q, 200, config)
    assert torch.allclose(x2, x1 @ r.T + t, atol=1e-9, rtol=0)
    assert torch.allclose(v2, v1 @ r.T, atol=1e-9, rtol=0)


def test_trajectories_are_permutation_equivariant() -> None:
    config = SimulationConfig(max_force=5.0)
    x, v, q = state(8, seed=4)
    p = torch.tensor([3, 0, 4, 1, 2])
    x1, v1 = simulate(x, v, q, 200, config)
    x2, v2 = simulate(x[:, p], v[:, p], q[:, p], 200, config)
    assert torch.allclose(x2, x1[:, p], atol=1e-10, rtol=0) and torch.allclose(v2, v1[:, p], atol=1e-10, rtol=0)


def test_a_coordinatewise_clip_would_not_be_equivariant() -> None:
    """The reason for the norm clamp: NRI's clip of each coordinate changes with the axes (a check that can fail)."""
    x, _, q = state(8, seed=5)
    r = random_orthogonal(6, reflect=False)
    clip = lambda f: f.clamp(-0.5, 0.5)  # noqa: E731
    assert not torch.allclose(clip(forces(x @ r.T, q)), clip(forces(x, q)) @ r.T, atol=1e-6)
    assert torch.allclose(forces(x @ r.T, q, max_force=0.5), forces(x, q, max_force=0.5) @ r.T, atol=1e-12)


def test_initial_states_follow_the_stated_laws() -> None:
    x, v, q = state(200)
    assert torch.allclose(v.norm(dim=-1), torch.full((200, 5), 0.5, dtype=torch.float64))
    assert set(q.unique().tolist()) == {-1.0, 1.0}
    assert 0.8 < x.std().item() < 1.2


def test_splits_are_cached_and_reproducible(tmp_path: Path) -> None:
    sizes = {"train": 6, "valid": 4, "test": 4}
    config = SimulationConfig(burn_in=5, horizon=5)
    first = load(sizes, config, cache=tmp_path)
    assert cache_path(sizes, config, cache=tmp_path).exists()
    again = load(sizes, config, cache=tmp_path)
    assert torch.equal(first.test.x, again.test.x) and torch.equal(first.train.y, again.train.y)
    fresh = generate(sizes, config)
    assert torch.equal(fresh["valid"].x.float(), first.valid.x)
    assert not torch.equal(first.train.x[:4], first.valid.x)  # each split from its own generator
    assert first.train.x.shape == (6, 5, 7) and first.train.y.shape == (6, 5, 3)
    with pytest.raises(ValueError, match="exactly the splits"):
        load({"train": 3}, config, cache=None)
