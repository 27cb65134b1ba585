"""The covariance-estimation task (Cornish sec. 7.3): data, loss, models, training, the demo."""

from __future__ import annotations

import pytest
import torch

from markovcat.backends.torch.equivariance import check_equivariance
from markovcat.backends.torch.groups import Orthogonal
from markovcat.experiments import covariance as cov
from markovcat.experiments.demo import training as train_demo


def test_data_is_a_z_and_a_a_transpose() -> None:
    data = cov.make_data(64, seed=3, dtype=torch.float64)
    assert data.x.shape == (64, cov.D, cov.SAMPLES) and data.y.shape == (64, cov.D, cov.D)
    assert torch.allclose(data.y, data.y.transpose(-1, -2))
    assert bool((torch.linalg.eigvalsh(data.y) > -1e-12).all())  # A A^T is positive semi-definite
    assert torch.equal(cov.make_data(64, seed=3, dtype=torch.float64).x, data.x)  # seeded
    many = cov.make_data(4000, n=400, seed=4, dtype=torch.float64)
    # the sample covariance estimates A A^T: relative error ~ (d + 1) / n
    assert float(cov.relative_squared_error(cov.sample_covariance(many.x), many.y).mean()) < 0.03
    with pytest.raises(ValueError, match="positive"):
        cov.make_data(0)


def test_relative_squared_error() -> None:
    y = torch.eye(2).expand(3, 2, 2)
    assert torch.allclose(cov.relative_squared_error(2 * y, y), torch.ones(3))
    assert torch.allclose(cov.relative_squared_error(y, y), torch.zeros(3))
    with pytest.raises(ValueError, match="shape"):
        cov.relative_squared_error(y, y[:, :1])


def test_actions_and_equivariance_of_the_models() -> None:
    group = Orthogonal(cov.D)
    left, conj = group.left(cov.SAMPLES), group.conjugation()
    assert check_equivariance(cov.sample_covariance, group, left, conj, dtype=torch.float64).passed
    torch.manual_seed(0)
    plain = cov.CovarianceMLP(width=32)
    assert not check_equivariance(plain, group, left, conj).passed
    model = cov.symmetrised(cov.CovarianceMLP(width=32), hidden=32)
    report = check_equivariance(model, group, left, conj)
    assert report.passed and report.method == "pathwise"


def test_training_lowers_the_test_error() -> None:
    torch.manual_seed(0)
    train, test = cov.make_data(500, seed=0), cov.make_data(200, seed=1)
    model = cov.symmetrised(cov.CovarianceMLP(width=32), hidden=32)
    before = cov.evaluate(model, test)
    loss = cov.train(model, train, 100, lr=3e-3, progress=False)
    assert 0 < loss < 1 and cov.evaluate(model, test) < 0.8 * before
    for bad in (0, -1, 2.5, True):
        with pytest.raises(ValueError, match="steps must be a positive integer"):
            cov.train(model, train, bad, progress=False)  # type: ignore[arg-type]


def test_training_is_reproducible_whatever_the_load() -> None:
    """A fixed number of steps from fixed seeds: two runs give the same weights (no wall-clock budget)."""
    data = cov.make_data(300, seed=0)
    weights = []
    for _ in range(2):
        torch.manual_seed(1)
        model = cov.symmetrised(cov.CovarianceMLP(width=16), hidden=16)
        cov.train(model, data, 7, seed=3, progress=False)
        weights.append(torch.cat([p.detach().flatten() for p in model.parameters()]))
    assert torch.equal(weights[0], weights[1])


def _small_demo() -> tuple[str, dict[str, object]]:
    lines: list[str] = []
    result = train_demo.demo(lines.append, steps=40, progress=False, width=32, train_size=400, test_size=100)
    return "\n".join(lines), result


def test_demo_prints_errors_and_labelled_reports() -> None:
    text, result = _small_demo()
    assert "Test relative squared error" in text and "40 Adam steps" in text
    assert not result["report plain"].passed and result["report sym"].passed  # type: ignore[attr-defined]
    assert "plain MLP: not symmetrised (the check must catch it): caught" in text
    assert "sym(MLP): passed, as it should" in text


def test_two_runs_of_the_training_demo_print_the_same_numbers() -> None:
    first, _ = _small_demo()
    second, _ = _small_demo()
    assert first == second


@pytest.mark.slow
def test_the_full_demo_symmetrisation_beats_the_plain_mlp() -> None:
    """The demo's default run (``markovcat demo``): the symmetrised model has the lower test error."""
    result = train_demo.run(progress=False)
    assert result["sym"] < result["plain"]
    assert not result["report plain"].passed and result["report sym"].passed
