"""What a PASSED equivariance report is worth: every report states the smallest violation it would see."""

from __future__ import annotations

import math

import pytest
import torch

from markovcat.backends.torch.equivariance import (
    _spread,
    check_equivariance,
    energy_test,
    minimum_detectable_shift,
    samples_needed,
)
from markovcat.experiments import examples as ex

slow_only = pytest.mark.skipif("'slow' not in (config.getoption('markexpr') or '')", reason="slow: run with -m slow")


@pytest.fixture(scope="module")
def haar() -> ex.Setup:
    return ex.haar_sym(hidden=32)


def _biased(setup: ex.Setup, fraction: float):  # type: ignore[no-untyped-def]
    """The Haar-symmetrised model plus a fixed offset of ``fraction`` of its output's standard deviation."""
    model = setup.model
    x = setup.action.random(1, torch.Generator().manual_seed(5), torch.float32, torch.device("cpu"))
    with torch.no_grad():
        y = model(x.repeat(1000, 1, 1), generator=torch.Generator().manual_seed(0))
    sigma, _ = _spread(y.reshape(1000, -1).double())
    offset = fraction * sigma * torch.ones(y.shape[1:])

    def biased(x: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        return model(x, generator=generator) + offset

    return biased


def test_a_5_percent_bias_is_below_the_default_power_and_the_report_says_so(haar: ex.Setup) -> None:
    # The offset moves k(g.x) + b against g.(k(x) + b) by b - g b: between 0 and 10% of the output's std,
    # depending on g. Below the stated minimum detectable effect, so detection is a coin toss, not a rule.
    biased = _biased(haar, 0.05)
    reports = [check_equivariance(biased, haar.group, haar.action, stochastic=True, seed=s) for s in range(8)]
    report = next(r for r in reports if r.passed)
    assert report.min_detectable_effect > 0.1  # (b) the report says such a violation could have been missed
    detected = sum(not r.passed for r in reports)
    assert detected < 0.8 * len(reports), f"detected on {detected} of {len(reports)} seeds"  # (a) below the power
    assert report.effective_dim is not None and report.n_inputs == 4
    text = str(report)
    assert f"{report.min_detectable_effect:.3g} standard deviations" in text
    assert "PASSED means: no violation larger than" in text and "not a guarantee" in text


@pytest.mark.slow
@slow_only
def test_a_5_percent_bias_is_detected_with_the_samples_the_calibration_asks_for(haar: ex.Setup) -> None:
    biased = _biased(haar, 0.05)
    default = check_equivariance(biased, haar.group, haar.action, stochastic=True)
    n = samples_needed(0.05, dim=default.effective_dim or 1)
    assert n > 200
    report = check_equivariance(biased, haar.group, haar.action, stochastic=True, samples=n)
    assert not report.passed, str(report)  # (c)
    assert report.min_detectable_effect <= 0.05 + 1e-9


def test_deterministic_and_pathwise_reports_state_their_tolerance(haar: ex.Setup) -> None:
    canonical = ex.canonical_sym(hidden=8)
    for setup, method in ((canonical, "deterministic"), (haar, "pathwise")):
        report = check_equivariance(setup.model.double(), setup.group, setup.action, n_inputs=5)
        setup.model.float()
        assert report.passed and report.method == method
        assert report.min_detectable_effect == report.threshold == 1e-10 and report.effect_unit == "relative error"
        text = str(report)
        assert "PASSED means: no violation larger than a relative error of 1e-10 was found on 5 inputs" in text
        assert "not a guarantee" in text


def test_the_calibration_is_a_deterministic_function_of_its_numbers() -> None:
    first = minimum_detectable_shift(100, 4, 1000, 0.01, 6)
    minimum_detectable_shift.cache_clear()
    assert minimum_detectable_shift(100, 4, 1000, 0.01, 6) == first
    # more samples, a larger alpha or fewer pairs detect smaller shifts; fewer directions make them harder to see
    assert minimum_detectable_shift(400, 4, 1000, 0.01, 6) < first
    assert minimum_detectable_shift(100, 4, 1000, 0.05, 6) < first < minimum_detectable_shift(100, 4, 1000, 0.01, 2)
    assert minimum_detectable_shift(100, 1, 1000, 0.01, 6) < first
    # too few permutations to reach alpha / pairs: nothing is detectable
    assert math.isinf(minimum_detectable_shift(100, 4, 300, 0.01, 6))
    n = samples_needed(first, 4, 1000, 0.01, 6)
    assert n <= 120 and minimum_detectable_shift(n, 4, 1000, 0.01, 6) <= first  # 100, up to the simulation's noise
    with pytest.raises(ValueError, match="shift must be positive"):
        samples_needed(0.0)


@pytest.mark.slow
@slow_only
def test_the_calibration_matches_the_energy_test_on_gaussians() -> None:
    """At the stated minimum detectable shift, the real permutation test detects it about 80% of the time."""
    generator = torch.Generator().manual_seed(1)
    for m, dim, runs in ((200, 3, 100), (200, 48, 100), (50, 6, 100)):
        shift = minimum_detectable_shift(m, 4, 1000, 0.01, dim)
        hits = 0
        for _ in range(runs):
            a = torch.randn(m, dim, generator=generator, dtype=torch.float64)
            b = torch.randn(m, dim, generator=generator, dtype=torch.float64)
            b[:, 0] += shift * math.sqrt(dim)
            hits += energy_test(a, b, 1000, generator, floor=0.0)[1] < 0.01 / 4
        assert 0.65 <= hits / runs <= 0.95, (m, dim, hits)  # 0.8 within 3 binomial standard errors
