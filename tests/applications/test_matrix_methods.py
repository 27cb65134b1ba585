"""The methods of the matrix experiments: every method builds for every task, trains, and is equivariant or not."""

from __future__ import annotations

import copy
import pickle

import pytest
import torch

from markovcat.backends.torch.equivariance import check_equivariance
from markovcat.experiments.matrix import methods as mm
from markovcat.experiments.matrix import tasks as mt

#: The methods that need no optional package (the EMLP methods: ``tests/test_matrix_emlp.py``).
PLAIN = tuple(m for m in mm.METHODS if m not in mm.EMLP_METHODS)
SMALL = mm.MethodConfig(backbone_hidden=(16,), gamma_hidden=(16,), train_samples=3, test_samples=5)


@pytest.fixture(scope="module", params=mt.TASKS)
def task(request: pytest.FixtureRequest) -> mt.Task:
    return mt.make_task(request.param, 3)


@pytest.mark.parametrize("method", PLAIN)
def test_builds_predicts_and_trains(task: mt.Task, method: str) -> None:
    model = mm.build(method, task, SMALL, seed=1)
    x, y = task.sample(4, torch.Generator().manual_seed(0))
    assert model.predict(x, 5, torch.Generator().manual_seed(1)).shape == (4, *task.y_shape)
    loss = model.loss(x, y, torch.Generator().manual_seed(1))
    assert loss.shape == () and bool(torch.isfinite(loss))
    loss.backward()
    parameters = list(model.module.parameters())
    assert {id(p) for p in model.model.parameters()} <= {id(p) for p in parameters}
    assert all(p.grad is not None and bool(torch.isfinite(p.grad).all()) for p in parameters)  # gammas train too
    backbone = sum(p.numel() for p in mm.MLP(task.x_shape, task.y_shape, (16,)).parameters())
    has_gamma_net = method in ("scalars", "recursive")
    assert (sum(p.numel() for p in parameters) > backbone) == has_gamma_net
    assert model.symmetrised == (method != "mlp")
    torch.manual_seed(0)
    pickle.loads(pickle.dumps(model.module))(x, 2)  # picklable (records, multiprocessing) and still runs


@pytest.mark.parametrize("method", PLAIN)
def test_symmetrised_methods_are_equivariant_and_the_mlp_is_not(task: mt.Task, method: str) -> None:
    model = mm.build(method, task, SMALL, seed=2)
    report = check_equivariance(copy.deepcopy(model.model).double(), task.group, task.input, task.output)
    assert report.passed == model.symmetrised, str(report)
    if model.symmetrised:
        assert report.method == "pathwise" and report.statistic < 1e-10


def test_scalars_and_recursive_gammas_are_equivariant(task: mt.Task) -> None:
    for gamma in (mm.scalars_gamma(task, (8,)), mm.recursive_gamma(task, (8,))):
        assert gamma.check().passed, gamma.name


def test_a_scalars_gamma_with_non_equivariant_columns_is_caught() -> None:
    # under conjugation the columns of x do not move by g: [x, eps] is the wrong M for expm
    task = mt.make_task("expm", 3)
    h = mm.InvariantWeightedColumns(mm._Beside(), 4, 3, (8,))
    gamma = mm.noise_outsourced(h, task.group, task.input, mm.left_multiplication(task.group, 1))
    assert not gamma.check(method="pathwise").passed
    # and the two-sided columns with the factors' noise exchanged are not equivariant for O(d) x O(d)
    pair = mt.make_task("inv", 3)
    good = mm.scalars_gamma(pair, (8,))
    assert good.check().passed
    heads = [mm.InvariantWeightedColumns(mm._TwoSidedColumns(side, 3), 9, 3, (8,)) for side in (1, 0)]
    frames = good.interpretation.boxes[next(b for b in good.interpretation.boxes if str(b).startswith("h_"))]
    frames.first, frames.second = heads
    assert not good.check(method="pathwise").passed


def test_prediction_averages_draws() -> None:
    task = mt.make_task("cov", 3)
    model = mm.build("haar", task, SMALL)
    x, _ = task.sample(2, torch.Generator().manual_seed(0))
    one = model.predict(x, 1, torch.Generator().manual_seed(3))
    assert torch.equal(one, model.model(x, generator=torch.Generator().manual_seed(3)))
    many = model.predict(x, 4, torch.Generator().manual_seed(3))
    draws = model.model(x.repeat_interleave(4, 0), generator=torch.Generator().manual_seed(3)).view(2, 4, 3, 3)
    assert torch.allclose(many, draws.mean(1))
    model.module.train()
    assert not torch.equal(model.module(x, generator=torch.Generator().manual_seed(3)), one)  # 3 draws by default
    plain = mm.build("mlp", task, SMALL)
    assert torch.equal(plain.predict(x, 7), plain.model(x))


def test_seeds_defaults_and_errors() -> None:
    task = mt.make_task("expm", 2)
    state = torch.random.get_rng_state()
    a, b, c = (mm.build("recursive", task, SMALL, seed=s) for s in (0, 0, 1))
    assert torch.equal(torch.random.get_rng_state(), state)  # the global random state is left alone
    weights = [torch.cat([p.flatten() for p in m.module.parameters()]) for m in (a, b, c)]
    assert torch.equal(weights[0], weights[1]) and not torch.equal(weights[0], weights[2])
    for method, widths in (("mlp", [250, 250, 250]), ("haar", [250, 250, 250]), ("scalars", [250, 250]),
                           ("recursive", [250, 250])):
        model = mm.build(method, task)
        backbone = next(m for m in model.module.modules() if isinstance(m, mm.MLP))
        assert [layer.out_features for layer in backbone.net if isinstance(layer, torch.nn.Linear)][:-1] == widths
        assert isinstance(backbone.net[1], torch.nn.Tanh)
    gamma = next(m for m in mm.build("recursive", task).module.modules() if isinstance(m, mm.GroupMLP))
    assert [layer.out_features for layer in gamma.net if isinstance(layer, torch.nn.Linear)] == [250, 4]
    with pytest.raises(ValueError, match="unknown method"):
        mm.build("emlp-haar", task)
    with pytest.raises(ValueError, match="now called 'scalars'"):
        mm.build("kim", task)
    with pytest.raises(ValueError, match="positive"):
        mm.MethodConfig(train_samples=0)
