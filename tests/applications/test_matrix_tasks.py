"""The matrix tasks (Cornish 2024, sec. 7.3): generators against independent references, action axioms, equivariance."""

from __future__ import annotations

import mpmath
import numpy as np
import pytest
import torch

from markovcat.backends.torch.checks import check_laws
from markovcat.backends.torch.compile import InterpretationError
from markovcat.backends.torch.groups import TorchAction
from markovcat.experiments.matrix import tasks as mt
from markovcat.groups import Action, Group
from markovcat.syntax import Ty

F64 = torch.float64


def _replay(seed: int, *shapes: tuple[int, ...]) -> list[np.ndarray]:
    """The latents ``Task.sample`` draws, in its documented order, from the same seed."""
    generator = torch.Generator().manual_seed(seed)
    return [torch.randn(*s, generator=generator, dtype=F64).numpy() for s in shapes]


def _relative(a: torch.Tensor, b: torch.Tensor) -> float:
    return float((a - b).abs().max() / b.abs().max())


def test_expm_targets_match_mpmath() -> None:
    task = mt.make_task("expm", 4)
    x, y = task.sample(3, torch.Generator().manual_seed(0), F64)
    assert x.shape == (3, 4, 4) and y.shape == (3, 4, 4)
    mpmath.mp.dps = 30
    for xi, yi in zip(x, y, strict=True):
        reference = np.array(mpmath.expm(mpmath.matrix(xi.tolist())).tolist(), dtype=float)
        assert np.abs(yi.numpy() - reference).max() <= 1e-12 * np.abs(reference).max()
    assert np.array_equal(x.numpy(), _replay(0, (3, 4, 4))[0])  # x is the documented standard normal draw


@pytest.mark.parametrize("name", ["inv", "inv1"])
def test_inverse_targets_match_numpy(name: str) -> None:
    task = mt.make_task(name, 4)
    x, y = task.sample(5, torch.Generator().manual_seed(1), F64)
    reference = np.linalg.inv(x.numpy())
    assert np.allclose(y.numpy(), reference, rtol=1e-10, atol=1e-10 * np.abs(reference).max())
    assert np.allclose(x.numpy() @ y.numpy(), np.eye(4), atol=1e-10)


def test_cov_is_g_z_and_g_g_transpose() -> None:
    task = mt.make_task("cov", 3)
    x, y = task.sample(4, torch.Generator().manual_seed(2), F64)
    g, z = _replay(2, (4, 3, 3), (4, 3, mt.POINTS))
    assert np.allclose(x.numpy(), g @ z, rtol=0, atol=1e-12) and np.allclose(y.numpy(), g @ g.transpose(0, 2, 1))
    # the covariance identity: the columns of x are N(0, G G^T), so their sample covariance estimates y
    big = mt.cov_example(torch.tensor(g), torch.randn(4, 3, 20000, generator=torch.Generator().manual_seed(3),
                                                      dtype=F64))[0]
    estimate = big @ big.transpose(-1, -2) / big.shape[-1]
    assert float(mt.relative_squared_error(estimate, y).max()) < 0.01


def test_linreg_responses_and_least_squares() -> None:
    task = mt.make_task("linreg", 3)
    x, y = task.sample(4, torch.Generator().manual_seed(4), F64)
    coefficients, z, u = _replay(4, (4, 3), (4, 3, mt.POINTS), (4, 1, mt.POINTS))
    assert x.shape == (4, 4, mt.POINTS) and y.shape == (4, 3)
    assert np.array_equal(y.numpy(), coefficients) and np.array_equal(x[:, :3].numpy(), z)
    assert np.allclose(x[:, 3].numpy(), np.einsum("bd,bdn->bn", coefficients, z) + u[:, 0], atol=1e-12)
    # without the noise u, least squares on (Z^T, responses) recovers y exactly
    exact, _ = mt.linreg_example(y, x[:, :3], torch.zeros(4, 1, mt.POINTS, dtype=F64))
    for i in range(4):
        solution = np.linalg.lstsq(x[i, :3].numpy().T, exact[i, 3].numpy(), rcond=None)[0]
        assert np.allclose(solution, y[i].numpy(), atol=1e-10)


def test_sampling_is_seeded_and_cast() -> None:
    for name in mt.TASKS:
        task = mt.make_task(name, 3)
        a = task.sample(2, torch.Generator().manual_seed(5))
        b = task.sample(2, torch.Generator().manual_seed(5))
        assert all(torch.equal(p, q) for p, q in zip(a, b, strict=True))
        assert a[0].dtype == torch.float32 and a[0].shape == (2, *task.x_shape) and a[1].shape == (2, *task.y_shape)
        assert a[0].shape[1] == 3 + (name == "linreg")  # x has d rows (plus the responses for linreg)
    with pytest.raises(ValueError, match="unknown task"):
        mt.make_task("det", 3)
    with pytest.raises(ValueError, match="positive"):
        mt.make_task("cov", 0)
    with pytest.raises(NotImplementedError, match="latent"):
        mt.make_task("cov", 3).target(torch.zeros(1, 3, mt.POINTS))


@pytest.mark.parametrize("name", mt.TASKS)
def test_actions_satisfy_the_axioms(name: str) -> None:
    task = mt.make_task(name, 3)
    G = Group(task.group.name)
    actions = [(Action(f"a{i}", G, Ty(f"S{i}")), a) for i, a in enumerate((task.input, task.output))]
    check_laws(None, task.group.interpretation(G, *actions))  # raises on a failing axiom
    generator = torch.Generator().manual_seed(6)
    g = task.group.sample(5, generator, F64)
    for action in (task.input, task.output):
        assert action.group is task.group
        x = action.random(5, generator, F64)
        assert torch.allclose(action.act(task.group.unit(like=g), x), x)
        if action.act_inverse is not None:
            assert torch.allclose(action.act_inverse(g, x), action.act(task.group.inv(g), x), atol=1e-12)
    broken = TorchAction("broken", task.group, task.input.spec, lambda g, x: task.input.act(g, x) * 2)
    with pytest.raises(InterpretationError, match="fails its axiom"):
        check_laws(None, task.group.interpretation(G, (Action("b", G, Ty("B")), broken)))


def _wrong(action: TorchAction) -> TorchAction:
    """The output acted on by ``g^-1``: a right action, so the target is not equivariant for it."""
    group = action.group
    return TorchAction("by the inverse", group, action.spec, lambda g, y: action.act(group.inv(g), y))


def _equivariance_error(task: mt.Task, output: TorchAction, seed: int = 7) -> float:
    """max relative error of ``f(g.latents) = g.f(latents)`` over a batch (float64): the target's equivariance."""
    generator = torch.Generator().manual_seed(seed)
    g = task.group.sample(6, generator, F64)
    if task.name == "cov":
        a, z = torch.randn(6, task.d, task.d, generator=generator, dtype=F64), task.input.random(6, generator, F64)
        x, y = mt.cov_example(a, z)
        moved_x, moved_y = mt.cov_example(g @ a, z)  # G -> g G
    elif task.name == "linreg":
        coefficients = torch.randn(6, task.d, generator=generator, dtype=F64)
        z = torch.randn(6, task.d, mt.POINTS, generator=generator, dtype=F64)
        u = torch.randn(6, 1, mt.POINTS, generator=generator, dtype=F64)
        x, y = mt.linreg_example(coefficients, z, u)
        moved_x, moved_y = mt.linreg_example((g @ coefficients.unsqueeze(-1)).squeeze(-1), g @ z, u)
    else:
        x = task.input.random(6, generator, F64)
        y, moved_x = task.target(x), task.input.act(g, x)
        moved_y = task.target(moved_x)
    assert _relative(moved_x, task.input.act(g, x)) < 1e-12  # the latents' move is the declared input action
    return _relative(moved_y, output.act(g, y))


@pytest.mark.parametrize("name", mt.TASKS)
def test_targets_are_exactly_equivariant(name: str) -> None:
    task = mt.make_task(name, 4)
    assert _equivariance_error(task, task.output) < 1e-10
    assert _equivariance_error(task, _wrong(task.output)) > 1e-2  # a wrong output action is caught


def test_inv_one_group_output_is_right_multiplication() -> None:
    task = mt.make_task("inv1", 3)
    pair = mt.make_task("inv", 3)
    assert task.group.name == "O(3)" and pair.group.name == "O(3) x O(3)"
    # conjugation is not the symmetry of inversion with x -> g x: (g x)^-1 = x^-1 g^T, not g x^-1 g^T
    from markovcat.backends.torch.matrix_groups import conjugation

    assert _equivariance_error(task, conjugation(task.group)) > 1e-2
