"""The VDM/EDM diffusion core: the schedule against its closed form, the forward and reverse Gaussians,
the training loss, and the variational bound against its exact value for Gaussian data."""

from __future__ import annotations

import math
import pickle

import pytest
import torch

from markovcat.experiments.symdiff import diffusion as D
from markovcat.experiments.symdiff.data import com_error, position_dof, zero_com_gaussian

S = D.NoiseSchedule()


def test_schedule_matches_the_polynomial_closed_form() -> None:
    t = torch.arange(S.steps + 1)
    alpha2, sigma2 = S.alpha(t) ** 2, S.sigma(t) ** 2
    assert torch.allclose(alpha2 + sigma2, torch.ones_like(alpha2))
    f = (1 - (t.double() / S.steps) ** 2) ** 2
    # the clip only acts on the last step, where f(T) / f(T - 1) = 0 < 0.001
    assert torch.allclose(alpha2[:-1], (1 - 2e-5) * f[:-1] + 1e-5, rtol=1e-12, atol=1e-15)
    assert alpha2[-1].item() == pytest.approx((1 - 2e-5) * 0.001 * f[-2].item() + 1e-5, rel=1e-12)
    assert torch.allclose(S.snr(t), alpha2 / sigma2) and bool((S.gamma(t).diff() > 0).all())
    assert sigma2[0].item() == pytest.approx(1e-5, rel=1e-3) and alpha2[-1].item() == pytest.approx(1e-5, rel=1e-3)
    assert torch.equal(pickle.loads(pickle.dumps(S)).gamma(t), S.gamma(t)) and S == D.NoiseSchedule()
    with pytest.raises(ValueError, match="integers in 0..1000"):
        S.gamma(torch.tensor([1001]))
    with pytest.raises(ValueError, match="positive integer"):
        D.NoiseSchedule(steps=0)


def _batch(b: int = 5, f: int = 2, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    counts = torch.tensor([2, 3, 5, 6, 6])[:b]
    mask = torch.arange(6)[None, :] < counts[:, None]
    xh = D.project(torch.randn(b, 6, 3 + f, generator=g, dtype=torch.float64), mask)
    return xh, mask


def test_forward_process_keeps_zero_com_and_padding() -> None:
    xh, mask = _batch()
    t = torch.tensor([1, 10, 500, 999, 1000])
    z, eps = D.q_sample(xh, t, mask, S, generator=torch.Generator().manual_seed(1))
    assert com_error(z[..., :3], mask).max() < 1e-12 and com_error(eps[..., :3], mask).max() < 1e-12
    assert z[~mask].abs().max() == 0
    expected = S.alpha(t)[:, None, None] * xh + S.sigma(t)[:, None, None] * eps
    assert torch.allclose(z, expected)


def test_reverse_step_is_the_posterior_when_the_noise_is_known() -> None:
    """With ``eps_pred = eps`` the model's mean and std are those of ``q(z_{t-1} | z_t, x)`` (closed form)."""
    xh, mask = _batch()
    t = torch.tensor([1, 2, 300, 999, 1000])
    z, eps = D.q_sample(xh, t, mask, S, generator=torch.Generator().manual_seed(2))
    mean_q, std_q = D.posterior(z, xh, t, S)
    mean_p, std_p = D.reverse_mean_std(z, eps, t, mask, S)
    assert torch.allclose(mean_p, mean_q, atol=1e-9) and torch.allclose(std_p, std_q)
    a2, s2 = S.alpha(t) ** 2, S.sigma(t) ** 2
    a2s, s2s = S.alpha(t - 1) ** 2, S.sigma(t - 1) ** 2
    sigma2_ts = s2 - a2 / a2s * s2s  # the variance of q(z_t | z_s)
    assert torch.allclose(std_q**2, sigma2_ts * s2s / s2, rtol=1e-6)
    step = D.ancestral_step(z, eps, t, mask, S, torch.Generator().manual_seed(3))
    assert com_error(step[..., :3], mask).max() < 1e-9 and step[~mask].abs().max() == 0


def test_ancestral_step_has_the_stated_law() -> None:
    mask = torch.ones(20000, 2, dtype=torch.bool)
    z = torch.zeros(20000, 2, 4, dtype=torch.float64)
    t = torch.full((20000,), 400)
    step = D.ancestral_step(z, torch.zeros_like(z), t, mask, S, torch.Generator().manual_seed(4))
    _, std = D.reverse_mean_std(z, z, t, mask, S)
    # positions of two atoms: x_1 = -x_2 with variance std^2 / 2 per coordinate; the feature has std^2
    assert step[:, 0, :3].var().item() == pytest.approx(std[0].item() ** 2 / 2, rel=0.05)
    assert step[:, :, 3].var().item() == pytest.approx(std[0].item() ** 2, rel=0.05)


def test_epsilon_loss_and_its_weights() -> None:
    xh, mask = _batch()
    t = torch.tensor([1, 2, 300, 999, 1000])
    z, eps = D.q_sample(xh, t, mask, S)
    assert D.epsilon_loss(eps, eps, t, mask, S).abs().max() < 1e-20
    shift = torch.zeros_like(eps)
    shift[..., 3] = 1.0  # one feature column off by one on every real atom
    loss = D.epsilon_loss(eps, eps + shift * mask[..., None], t, mask, S)
    assert torch.allclose(loss, 0.5 * mask.sum(dim=1).double())
    translated = eps.clone()
    translated[..., :3] += 7.0  # a translation of eps_pred is projected away
    assert D.epsilon_loss(eps, translated, t, mask, S).abs().max() < 1e-20
    vlb = D.training_weight(t, S, "vlb")
    assert torch.allclose(vlb, S.snr(t - 1) / S.snr(t) - 1)
    with pytest.raises(ValueError, match="weighting"):
        D.training_weight(t, S, "other")  # type: ignore[arg-type]


def _gaussian_bound(s2: float, dof: float, schedule: D.NoiseSchedule) -> dict[str, float]:
    """The exact bound terms for x ~ N(0, s2 I) on a ``dof``-dimensional subspace with the optimal eps-prediction."""
    snr = schedule.snr(torch.arange(schedule.steps + 1))
    v = 1 / (1 / s2 + snr)  # Var(x | z_t) per dimension
    aT2 = float(snr[-1] / (1 + snr[-1]))
    prior = 0.5 * dof * (aT2 * s2 + (1 - aT2) - 1 - math.log(1 - aT2))
    steps = 0.5 * dof * float(((snr[:-1] - snr[1:]) * v[1:]).sum())
    var0 = float(1 / snr[0])  # sigma_0^2 / alpha_0^2
    l0 = 0.5 * dof * (math.log(2 * math.pi * var0) + float(v[0]) / var0)
    return {"prior": prior, "steps": steps, "l0": l0}


def test_variational_bound_is_exact_for_gaussian_data() -> None:
    """Gaussian positions on the zero-CoM subspace, ``eps_pred`` the exact posterior mean of the noise:
    the Monte Carlo bound terms match their closed forms, and the bound lies above the true NLL."""
    s2, m, atoms = 2.0, 400, 3
    g = torch.Generator().manual_seed(5)
    mask = torch.ones(m, atoms, dtype=torch.bool)
    dof = float(position_dof(mask)[0])
    exact = _gaussian_bound(s2, dof, S)
    x = math.sqrt(s2) * zero_com_gaussian((m, atoms, 3), mask, g, torch.float64)

    def optimal(z: torch.Tensor, t: torch.Tensor) -> torch.Tensor:  # E[eps | z_t] for Gaussian data
        a2, sig = S.alpha(t) ** 2, S.sigma(t)
        return (sig / (a2 * s2 + sig**2))[:, None, None] * z

    prior = D.prior_kl(x, mask, S).mean().item()
    assert prior == pytest.approx(exact["prior"], rel=0.2)
    loose = D.NoiseSchedule(precision=0.05)  # alpha_T^2 = 0.05: a prior term well above zero
    assert D.prior_kl(x, mask, loose).mean().item() == pytest.approx(_gaussian_bound(s2, dof, loose)["prior"], rel=0.1)
    # every step t = 1..T once per molecule batch: sum over t of E[L_t] = E[T L_t] for t uniform
    total = 0.0
    for t_value in range(1, S.steps + 1, 1):
        t = torch.full((m,), t_value)
        z, eps = D.q_sample(x, t, mask, S, generator=g)
        total += D.diffusion_term(eps, optimal(z, t), t, mask, S).mean().item() / S.steps
    assert total == pytest.approx(exact["steps"], rel=0.02)
    zero = torch.zeros(m, dtype=torch.long)
    z0, eps0 = D.q_sample(x, zero, mask, S, generator=g)
    l0 = D.l0_positions(eps0, optimal(z0, zero), mask, S).mean().item()
    assert l0 == pytest.approx(exact["l0"], abs=0.05 * dof)
    true_nll = 0.5 * dof * math.log(2 * math.pi * math.e * s2)
    bound = sum(exact.values())
    # the bound is above the true NLL; the gap (about 0.38 nats per dimension) is the discretisation of
    # the schedule's first steps, where SNR falls fast, and it shrinks with more steps
    assert true_nll < bound < true_nll + 0.45 * dof
    finer = sum(_gaussian_bound(s2, dof, D.NoiseSchedule(steps=20000)).values())
    assert true_nll < finer < true_nll + 0.05 * dof
    total_nll = D.nll_terms(torch.tensor(prior), torch.tensor(total), torch.tensor(l0),
                            D.Normalisation().log_det(mask[:1]))
    assert total_nll.item() == pytest.approx(bound, abs=0.1 * dof)


def test_feature_likelihood_is_a_distribution() -> None:
    """``p(h | z_0)``: the elements' probabilities sum to one, the charge bins tile the line."""
    mask = torch.ones(1, 1, dtype=torch.bool)
    z0 = torch.zeros(1, 1, 3 + 5 + 1, dtype=torch.float64)
    z0[0, 0, 3:8] = torch.tensor([0.1, 0.24, 0.3, -0.05, 0.2])
    z0[0, 0, 8] = 0.63
    loose = D.NoiseSchedule(precision=0.01)  # sigma_0 = 0.1: a spread-out decoder
    probs = torch.stack([torch.exp(-D.l0_features(z0, torch.tensor([[c]]), None, mask, loose)) for c in range(5)])
    assert probs.sum().item() == pytest.approx(1.0, rel=1e-9)
    assert int(probs.argmax()) == 1  # nearest to 1/4 (the scaled one-hot value)
    element = D.l0_features(z0, torch.tensor([[1]]), None, mask, loose)
    charge = torch.stack([torch.exp(-(D.l0_features(z0, torch.tensor([[1]]), torch.tensor([[q]]), mask, loose)
                                      - element)) for q in range(-5, 20)])
    assert charge.sum().item() == pytest.approx(1.0, rel=1e-6) and int(charge.argmax()) == 6 + 5
    exact = D.l0_features(z0 * 0 + torch.tensor([0, 0, 0, 0, 0.25, 0, 0, 0, 0.6]), torch.tensor([[1]]),
                          torch.tensor([[6]]), mask, S)
    assert exact.item() < 1e-6  # a clean z_0 at the right values is decoded with certainty


def test_decode_and_the_number_of_atoms() -> None:
    norm = D.Normalisation()
    positions = torch.tensor([[[0.0, 0.0, 0.0], [1.1, 0.0, 0.0], [0.0, 0.0, 0.0]]])
    mask = torch.tensor([[True, True, False]])
    types = torch.tensor([[1, 0, -1]])
    one_hot = torch.nn.functional.one_hot(types.clamp(min=0), 5) * mask[..., None]
    xh = norm.encode(positions, one_hot, torch.tensor([[6.0, 1.0, 0.0]]), mask)
    zero = torch.zeros(1, dtype=torch.long)
    z0, eps = D.q_sample(xh, zero, mask, S, generator=torch.Generator().manual_seed(6))
    pos, kinds, charges = D.decode(z0, eps, mask, S, norm, generator=torch.Generator().manual_seed(7))
    assert kinds.tolist() == types.tolist() and charges.tolist() == [[6.0, 1.0, 0.0]]
    assert torch.allclose(pos, positions - positions[0, :2].mean(0) * mask[..., None], atol=0.02)
    hist = torch.tensor([0, 0, 3, 1])
    expected = torch.log(torch.tensor([0.75, 0.25], dtype=torch.float64))
    assert torch.allclose(D.num_atoms_log_prob(torch.tensor([2, 3]), hist), expected)
    with pytest.raises(ValueError, match="never saw"):
        D.num_atoms_log_prob(torch.tensor([1]), hist)


def test_time_strata_partition_the_steps() -> None:
    strata = D.time_strata(1000)
    assert len(strata) == 16 and strata[0] == (1, 1) and strata[-1] == (1000, 1000)
    covered = [t for first, last in strata for t in range(first, last + 1)]
    assert covered == list(range(1, 1001))  # every step exactly once, in order
    assert D.time_strata(3, 8) == [(1, 1), (2, 2), (3, 3)]
    with pytest.raises(ValueError, match="positive integers"):
        D.time_strata(0)


def test_stratified_bound_is_unbiased_and_steadier_than_one_uniform_step() -> None:
    """A denoiser whose position error is a fixed fraction of ``x`` (so its noise error grows like
    ``alpha_t / sigma_t`` near ``t = 0``, as for a trained model): the stratified estimate of
    ``sum_t L_t`` agrees with the exact sum and spreads over repeats far less than one uniform ``t``."""
    m, atoms, s2 = 64, 3, 2.0
    g = torch.Generator().manual_seed(11)
    mask = torch.ones(m, atoms, dtype=torch.bool)
    x = math.sqrt(s2) * zero_com_gaussian((m, atoms, 3), mask, g, torch.float64)

    def term(t: torch.Tensor) -> torch.Tensor:
        z, eps = D.q_sample(x, t, mask, S, generator=g)
        a, sig = S.alpha(t)[:, None, None], S.sigma(t)[:, None, None]
        optimal = (sig / (a**2 * s2 + sig**2)) * z
        return D.diffusion_term(eps, optimal - 0.05 * a / sig * x, t, mask, S)  # x_hat off by 5% of x

    exact = sum(term(torch.full((m,), t)).mean().item() for t in range(1, S.steps + 1)) / S.steps

    def uniform() -> float:
        return term(torch.randint(1, S.steps + 1, (m,), generator=g)).mean().item()

    def stratified() -> float:
        total = torch.zeros(m, dtype=torch.float64)
        for first, last in D.time_strata(S.steps):
            t = torch.randint(first, last + 1, (m,), generator=g)
            total += (last - first + 1) / S.steps * term(t)
        return total.mean().item()

    one = torch.tensor([uniform() for _ in range(40)])
    strat = torch.tensor([stratified() for _ in range(40)])
    assert abs(strat.mean().item() - exact) < 3 * strat.std().item() / math.sqrt(40) + 1e-9
    assert abs(one.mean().item() - exact) < 4 * one.std().item() / math.sqrt(40)
    assert strat.std().item() < one.std().item() / 5
