"""The diffusion core of SymDiff on QM9, in the VDM / EDM formulation (Kingma et al. 2021; Hoogeboom et al. 2022).

A molecule is the padded tensor ``xh`` ``(b, n, 3 + f)``: positions ``x`` (first three columns, on
the zero centre-of-mass subspace) and features ``h`` (one-hot elements scaled by 1/4, charges by
1/10, :class:`Normalisation`), with a mask ``(b, n)`` of the real atoms.  Padding stays zero.

Noise schedule (:class:`NoiseSchedule`, EDM's ``polynomial_2`` with its precision clipping), for
integer steps ``t = 0..T``::

    f(t)       = (1 - (t / T)^2)^2,                         f(-1) := 1
    abar^2_t   = prod_{u = 0..t} clip(f(u) / f(u - 1), 0.001, 1)
    alpha^2_t  = (1 - 2 s) abar^2_t + s,   s = 1e-5,          sigma^2_t = 1 - alpha^2_t
    gamma_t    = log sigma^2_t - log alpha^2_t = -log SNR(t)

The clip only acts on the last step (``f(T) = 0``).  Forward process ``z_t = alpha_t xh + sigma_t eps``
with ``eps`` standard Gaussian on the zero-CoM subspace for ``x`` (:func:`sample_noise`).

Training (the seed's Algorithm 1): ``t ~ U{1..T}``, loss ``1/2 w(t) ||eps - eps_hat||^2`` per
molecule, ``eps_hat`` the (symmetrised) network's output; :func:`training_weight` gives ``w = 1``
(``"simple"``, EDM's training choice) or the bound's weight ``SNR(t-1)/SNR(t) - 1`` (``"vlb"``).

Variational bound on ``-log p(xh)`` in nats (EDM's NLL; :func:`nll_terms`):
``prior_kl`` (KL of ``q(z_T | x)`` from the standard Gaussian), ``sum_t L_t`` estimated from one
``t`` per stratum of :func:`time_strata` (:func:`diffusion_term`), ``L_0 = -log p(x, h | z_0)``
(:func:`l0_positions`, :func:`l0_features`),
the position scaling's log-determinant and ``-log p(N)`` (:func:`num_atoms_log_prob`).  The
dimension of the positions is ``3 (k - 1)`` for ``k`` atoms (:func:`~markovcat.experiments.symdiff.data.position_dof`).

Devices: every term takes its inputs on one device (CPU or an accelerator) and returns its value
there; the schedule's table lives on the CPU and is moved to the step tensor's device when read
(tests/applications/test_symdiff_gpu.py checks the terms on a simulated device,
:mod:`~markovcat.experiments.symdiff.devicecheck`).

Why strata: ``L_t`` is not flat in ``t``.  For a denoiser that is not yet exact, ``T L_t`` at
``t <= 10`` is hundreds of times its value at ``t ~ T/2`` (an error in ``x`` is divided by the tiny
``sigma_t`` there), so one uniform ``t`` per molecule hits that region for 1% of the molecules and the
mean over a few hundred molecules jumps by hundreds of nats from draw to draw.  One ``t`` in each of
16 strata, narrow near ``t = 1`` and ``t = T``, is still unbiased and agrees with itself to a few nats
(measured in tests/applications/test_symdiff_diffusion.py).

What the bound costs: even with the exact denoiser (Gaussian data, tests/applications/test_symdiff_diffusion.py)
the T = 1000 bound exceeds the true NLL by about 0.38 nats per dimension, almost all from the first
steps, where the SNR of this schedule falls by large factors per step; with T = 20,000 the excess is 0.02.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Literal

import torch
from torch import Tensor

from markovcat.experiments.symdiff.data import ATOMIC_NUMBERS, ELEMENTS, position_dof, remove_mean

__all__ = [
    "NoiseSchedule", "Normalisation", "sample_noise", "project", "q_sample", "training_weight", "epsilon_loss",
    "posterior", "reverse_mean_std", "ancestral_step", "prior_kl", "time_strata", "diffusion_term", "l0_positions",
    "l0_features", "num_atoms_log_prob", "nll_terms", "decode",
]

Weighting = Literal["simple", "vlb"]


@dataclass(frozen=True)
class NoiseSchedule:
    """EDM's polynomial noise schedule on the steps ``0..steps`` (see the module docstring for the formula).

    ``gamma(t)``, ``alpha(t)``, ``sigma(t)``, ``snr(t)`` take integer step tensors and return float64.
    """

    steps: int = 1000
    power: float = 2.0
    precision: float = 1e-5
    clip: float = 0.001
    _gamma: Tensor = field(init=False, repr=False, compare=False, hash=False)

    def __post_init__(self) -> None:
        if not isinstance(self.steps, int) or self.steps < 1:
            raise ValueError(f"steps must be a positive integer, got {self.steps!r}")
        if not 0 < self.precision < 0.5 or not 0 < self.clip <= 1 or self.power <= 0:
            raise ValueError(f"need 0 < precision < 0.5, 0 < clip <= 1, power > 0; got {self.precision}, "
                             f"{self.clip}, {self.power}")
        tau = torch.arange(self.steps + 1, dtype=torch.float64) / self.steps
        f = (1 - tau**self.power) ** 2
        ratios = f / torch.cat([torch.ones(1, dtype=torch.float64), f[:-1]])
        bar = torch.cumprod(ratios.clamp(self.clip, 1.0), dim=0)
        alpha2 = (1 - 2 * self.precision) * bar + self.precision
        object.__setattr__(self, "_gamma", torch.log1p(-alpha2) - torch.log(alpha2))

    def _index(self, t: Tensor | int) -> Tensor:
        t = torch.as_tensor(t)
        if t.is_floating_point() or bool(((t < 0) | (t > self.steps)).any()):
            raise ValueError(f"steps must be integers in 0..{self.steps}, got {t}")
        return t.long()

    def gamma(self, t: Tensor | int) -> Tensor:
        """``-log SNR(t)``."""
        index = self._index(t)
        return self._gamma.to(index.device)[index]

    def alpha(self, t: Tensor | int) -> Tensor:
        return torch.sqrt(torch.sigmoid(-self.gamma(t)))

    def sigma(self, t: Tensor | int) -> Tensor:
        return torch.sqrt(torch.sigmoid(self.gamma(t)))

    def snr(self, t: Tensor | int) -> Tensor:
        return torch.exp(-self.gamma(t))

    def time(self, t: Tensor | int) -> Tensor:
        """The network's time input ``t / T`` in [0, 1] (float32)."""
        return self._index(t).float() / self.steps


@dataclass(frozen=True)
class Normalisation:
    """Scales of EDM's QM9 set-up: positions / 1, one-hot / 4, charges / 10."""

    positions: float = 1.0
    one_hot: float = 4.0
    charges: float = 10.0

    def encode(self, positions: Tensor, one_hot: Tensor, charges: Tensor | None, mask: Tensor) -> Tensor:
        """``xh`` ``(b, n, 3 + f)``: centred, scaled positions, then scaled one-hot and (optional) charges."""
        m = mask.to(positions.dtype)[..., None]
        parts = [remove_mean(positions, mask) / self.positions, one_hot.to(positions.dtype) * m / self.one_hot]
        if charges is not None:
            parts.append(charges.to(positions.dtype)[..., None] * m / self.charges)
        return torch.cat(parts, dim=-1)

    def log_det(self, mask: Tensor) -> Tensor:
        """``(b,)``: ``-dof * log(scale)``, the change of density of the positions under the scaling."""
        return -position_dof(mask).to(torch.float64) * math.log(self.positions)


def _mask(z: Tensor, mask: Tensor) -> Tensor:
    if z.dim() != 3 or z.shape[-1] < 3 or mask.shape != z.shape[:2]:
        raise ValueError(f"need xh (b, n, 3 + f) and mask (b, n); got {tuple(z.shape)} and {tuple(mask.shape)}")
    return mask.to(z.dtype)[..., None]


def project(z: Tensor, mask: Tensor) -> Tensor:
    """Positions onto the zero-CoM subspace, features and padding masked (an orthogonal projection)."""
    m = _mask(z, mask)
    return torch.cat([remove_mean(z[..., :3], mask), z[..., 3:] * m], dim=-1)


def sample_noise(like: Tensor, mask: Tensor, generator: torch.Generator | None = None) -> Tensor:
    """Standard Gaussian noise shaped like ``xh``: on the zero-CoM subspace for positions, zero on padding."""
    noise = torch.randn(like.shape, generator=generator, dtype=like.dtype, device=like.device)
    return project(noise, mask)


def _b(v: Tensor, z: Tensor) -> Tensor:
    return v.to(device=z.device, dtype=z.dtype).reshape(-1, 1, 1)


def q_sample(xh: Tensor, t: Tensor, mask: Tensor, schedule: NoiseSchedule, noise: Tensor | None = None,
             generator: torch.Generator | None = None) -> tuple[Tensor, Tensor]:
    """``(z_t, eps)`` with ``z_t = alpha_t xh + sigma_t eps`` (``eps`` from :func:`sample_noise` unless given)."""
    _mask(xh, mask)
    eps = sample_noise(xh, mask, generator) if noise is None else noise
    return _b(schedule.alpha(t), xh) * xh + _b(schedule.sigma(t), xh) * eps, eps


def training_weight(t: Tensor, schedule: NoiseSchedule, weighting: Weighting = "simple") -> Tensor:
    """``w(t)`` of Algorithm 1: ``1`` (``"simple"``) or ``SNR(t-1)/SNR(t) - 1`` (``"vlb"``, needs ``t >= 1``)."""
    if weighting == "simple":
        t = torch.as_tensor(t)
        return torch.ones(t.shape, dtype=torch.float64, device=t.device)
    if weighting == "vlb":
        t = torch.as_tensor(t)
        if bool((t < 1).any()):
            raise ValueError("the bound's weight needs t >= 1")
        return torch.expm1(schedule.gamma(t) - schedule.gamma(t - 1))
    raise ValueError(f"weighting must be 'simple' or 'vlb', got {weighting!r}")


def _sq(eps: Tensor, eps_pred: Tensor, mask: Tensor) -> Tensor:
    if eps.shape != eps_pred.shape:
        raise ValueError(f"eps {tuple(eps.shape)} and prediction {tuple(eps_pred.shape)} differ in shape")
    return ((eps - project(eps_pred, mask)) ** 2).sum(dim=(1, 2))


def epsilon_loss(eps: Tensor, eps_pred: Tensor, t: Tensor, mask: Tensor, schedule: NoiseSchedule,
                 weighting: Weighting = "simple") -> Tensor:
    """``(b,)``: ``1/2 w(t) ||eps - P eps_pred||^2`` per molecule, ``P`` = :func:`project`.

    For SymDiff, ``eps_pred`` is ``R . eps_theta(R^T . z_t)``, formed by the caller.
    """
    return 0.5 * training_weight(t, schedule, weighting).to(eps.dtype).to(eps.device) * _sq(eps, eps_pred, mask)


def posterior(z_t: Tensor, xh: Tensor, t: Tensor, schedule: NoiseSchedule) -> tuple[Tensor, Tensor]:
    """Mean ``(b, n, d)`` and std ``(b,)`` of ``q(z_{t-1} | z_t, xh)``, the forward process's posterior."""
    s = t - 1
    gamma_t, gamma_s = schedule.gamma(t), schedule.gamma(s)
    sigma2_ts = -torch.expm1(torch.nn.functional.softplus(gamma_s) - torch.nn.functional.softplus(gamma_t))
    alpha_ts = schedule.alpha(t) / schedule.alpha(s)
    sigma2_t, sigma2_s = torch.sigmoid(gamma_t), torch.sigmoid(gamma_s)
    mean = _b(alpha_ts * sigma2_s / sigma2_t, z_t) * z_t + _b(schedule.alpha(s) * sigma2_ts / sigma2_t, z_t) * xh
    return mean, torch.sqrt(sigma2_ts * sigma2_s / sigma2_t)


def reverse_mean_std(z_t: Tensor, eps_pred: Tensor, t: Tensor, mask: Tensor,
                     schedule: NoiseSchedule) -> tuple[Tensor, Tensor]:
    """Mean and std ``(b,)`` of ``p(z_{t-1} | z_t)``: the posterior with ``xh`` replaced by its eps-prediction.

    ``mean = z_t / alpha_{t|s} - sigma^2_{t|s} / (alpha_{t|s} sigma_t) eps_pred``,
    std ``sigma_{t|s} sigma_s / sigma_t``.
    """
    s = t - 1
    gamma_t, gamma_s = schedule.gamma(t), schedule.gamma(s)
    sigma2_ts = -torch.expm1(torch.nn.functional.softplus(gamma_s) - torch.nn.functional.softplus(gamma_t))
    alpha_ts = schedule.alpha(t) / schedule.alpha(s)
    sigma_t, sigma_s = schedule.sigma(t), schedule.sigma(s)
    eps_pred = project(eps_pred, mask)
    mean = z_t / _b(alpha_ts, z_t) - _b(sigma2_ts / (alpha_ts * sigma_t), z_t) * eps_pred
    return project(mean, mask), torch.sqrt(sigma2_ts) * sigma_s / sigma_t


def ancestral_step(z_t: Tensor, eps_pred: Tensor, t: Tensor, mask: Tensor, schedule: NoiseSchedule,
                   generator: torch.Generator | None = None) -> Tensor:
    """One draw ``z_{t-1} ~ p(z_{t-1} | z_t)`` for ``t >= 1``, noise on the zero-CoM subspace for positions."""
    mean, std = reverse_mean_std(z_t, eps_pred, t, mask, schedule)
    return mean + _b(std, z_t) * sample_noise(z_t, mask, generator)


def _dofs(z: Tensor, mask: Tensor) -> tuple[Tensor, Tensor]:
    k = mask.to(torch.float64).sum(dim=1)
    return position_dof(mask).to(torch.float64), k * (z.shape[-1] - 3)


def prior_kl(xh: Tensor, mask: Tensor, schedule: NoiseSchedule) -> Tensor:
    """``(b,)``: ``KL(q(z_T | xh) || N(0, I))`` on the molecule's subspace (``3(k-1) + k f`` dimensions)."""
    _mask(xh, mask)
    t = torch.full((xh.shape[0],), schedule.steps, device=xh.device)
    a2, s2 = torch.sigmoid(-schedule.gamma(t)), torch.sigmoid(schedule.gamma(t))
    dx, dh = _dofs(xh, mask)
    norm2 = (project(xh, mask).to(torch.float64) ** 2).sum(dim=(1, 2))
    return 0.5 * (a2 * norm2 + (dx + dh) * (s2 - 1 - torch.log(s2)))


def time_strata(steps: int, per_side: int = 8) -> list[tuple[int, int]]:
    """Strata ``(first, last)`` covering ``1..steps``: geometric from ``t = 1`` and, mirrored, from ``t = steps``.

    The starts are ``round(steps^(i / per_side))`` for ``i = 0..per_side`` and their mirrors
    ``steps + 1 - start``, so the strata are single steps at both ends and widest in the middle,
    where ``L_t`` is flattest (``per_side = 8``, ``steps = 1000``: 16 strata).
    """
    if not isinstance(steps, int) or steps < 1 or not isinstance(per_side, int) or per_side < 1:
        raise ValueError(f"need positive integers steps and per_side, got {steps!r} and {per_side!r}")
    ends = {max(1, round(steps ** (i / per_side))) for i in range(per_side + 1)}
    starts = sorted(ends | {steps + 1 - e for e in ends})
    return [(first, (starts[i + 1] - 1) if i + 1 < len(starts) else steps) for i, first in enumerate(starts)]


def diffusion_term(eps: Tensor, eps_pred: Tensor, t: Tensor, mask: Tensor, schedule: NoiseSchedule) -> Tensor:
    """``(b,)``: the unbiased one-sample estimate ``T * L_t`` of ``sum_{t=1..T} L_t`` for ``t ~ U{1..T}``.

    ``L_t = KL(q(z_{t-1} | z_t, xh) || p(z_{t-1} | z_t)) = 1/2 (SNR(t-1)/SNR(t) - 1) ||eps - eps_pred||^2``.
    With ``t`` uniform in a stratum ``a..b`` of :func:`time_strata`, ``(b - a + 1) / T`` times this
    estimates that stratum's share of the sum; the strata's shares add up to an unbiased estimate
    of lower variance.
    """
    weight = training_weight(t, schedule, "vlb").to(eps.device)
    return schedule.steps * 0.5 * weight * _sq(eps, eps_pred, mask).to(torch.float64)


def l0_positions(eps: Tensor, eps_pred: Tensor, mask: Tensor, schedule: NoiseSchedule) -> Tensor:
    """``(b,)``: ``-log p(x | z_0)`` with ``p(x | z_0) = N(x_hat, sigma_0^2 / alpha_0^2)`` on the zero-CoM subspace.

    ``x_hat = (z_0 - sigma_0 eps_pred) / alpha_0``, so the quadratic part is ``1/2 ||eps - eps_pred||^2``
    over the position columns.  Only the first three columns of ``eps`` / ``eps_pred`` are used.
    """
    dx = position_dof(mask).to(torch.float64)
    zero = torch.zeros(eps.shape[0], dtype=torch.long, device=eps.device)
    log_scale = 0.5 * schedule.gamma(zero)  # log(sigma_0 / alpha_0)
    quad = 0.5 * _sq(eps[..., :3], eps_pred[..., :3], mask).to(torch.float64)
    return quad + dx * (log_scale + 0.5 * math.log(2 * math.pi))


def _log_bin(upper: Tensor, lower: Tensor) -> Tensor:
    """``log(Phi(upper) - Phi(lower))``, computed on the side of the tail for accuracy."""
    flip = lower > 0
    hi = torch.where(flip, -lower, upper)
    lo = torch.where(flip, -upper, lower)
    log_hi = torch.special.log_ndtr(hi)
    return log_hi + torch.log(-torch.expm1(torch.special.log_ndtr(lo) - log_hi))


def l0_features(z0: Tensor, types: Tensor, charges: Tensor | None, mask: Tensor, schedule: NoiseSchedule,
                norm: Normalisation = Normalisation()) -> Tensor:
    """``(b,)``: ``-log p(h | z_0)``, EDM's discretised likelihood of the element and charge.

    With ``u = norm * z_0 / alpha_0`` and ``s = norm * sigma_0 / alpha_0`` (unscaled units), the element
    ``c`` has probability proportional to ``P(N(u_c, s) in [0.5, 1.5])`` over the categories, and the
    integer charge ``q`` probability ``P(N(u, s) in [q - 1/2, q + 1/2])``.  ``z0`` is ``(b, n, 3 + f)``
    with the one-hot columns first among the features, then the charge column if ``charges`` is given.
    """
    m = mask.to(torch.bool)
    n_types = len(ELEMENTS)
    zero = torch.zeros(z0.shape[0], dtype=torch.long, device=z0.device)
    alpha0, sigma0 = schedule.alpha(zero), schedule.sigma(zero)
    z = z0.to(torch.float64)
    u = z[..., 3: 3 + n_types] * norm.one_hot / alpha0[:, None, None]
    s = (norm.one_hot * sigma0 / alpha0)[:, None, None]
    logits = _log_bin((1.5 - u) / s, (0.5 - u) / s)
    log_p = logits - torch.logsumexp(logits, dim=-1, keepdim=True)
    nll = -(log_p.gather(-1, types.clamp(min=0).long()[..., None])[..., 0] * m).sum(dim=1)
    if charges is not None:
        uq = z[..., 3 + n_types] * norm.charges / alpha0[:, None]
        sq = (norm.charges * sigma0 / alpha0)[:, None]
        q = charges.to(torch.float64)
        nll = nll - (_log_bin((q + 0.5 - uq) / sq, (q - 0.5 - uq) / sq) * m).sum(dim=1)
    return nll


def num_atoms_log_prob(num_atoms: Tensor, histogram: Tensor) -> Tensor:
    """``(b,)``: ``log p(N)`` from counts ``histogram[k]`` of molecules with ``k`` atoms (e.g. the train split's)."""
    probs = histogram.to(num_atoms.device, torch.float64) / histogram.sum()
    if bool((probs[num_atoms.long()] == 0).any()):
        raise ValueError("a molecule has an atom count that the histogram never saw (log p(N) = -inf)")
    return torch.log(probs[num_atoms.long()])


def nll_terms(prior: Tensor, diffusion: Tensor, l0: Tensor, log_det: Tensor,
              log_p_n: Tensor | None = None) -> Tensor:
    """``(b,)``: the bound on ``-log p(molecule)`` in nats, ``prior + diffusion + l0 - log_det - log p(N)``."""
    total = prior + diffusion + l0 - log_det
    return total if log_p_n is None else total - log_p_n


def decode(z0: Tensor, eps_pred: Tensor, mask: Tensor, schedule: NoiseSchedule, norm: Normalisation = Normalisation(),
           with_charges: bool = True, generator: torch.Generator | None = None) -> tuple[Tensor, Tensor, Tensor]:
    """The last sampling step: ``(positions Å, element indices (-1 padding), charges)`` from ``z_0``.

    Positions are drawn from ``p(x | z_0)``; elements are the argmax of the predicted one-hot and
    charges the rounded prediction, as in EDM.
    """
    m = _mask(z0, mask)
    zero = torch.zeros(z0.shape[0], dtype=torch.long)
    alpha0, sigma0 = _b(schedule.alpha(zero), z0), _b(schedule.sigma(zero), z0)
    xh_hat = project((z0 - sigma0 * project(eps_pred, mask)) / alpha0, mask)
    noise = sample_noise(z0, mask, generator)
    positions = (xh_hat[..., :3] + sigma0 / alpha0 * noise[..., :3]) * norm.positions * m
    n_types = len(ELEMENTS)
    types = torch.where(mask.to(torch.bool), xh_hat[..., 3: 3 + n_types].argmax(dim=-1), -1)
    if with_charges:
        charges = torch.round(xh_hat[..., 3 + n_types] * norm.charges) * m[..., 0]
    else:
        charges = torch.tensor((0, *ATOMIC_NUMBERS), dtype=z0.dtype, device=z0.device)[types + 1]
    return positions, types, charges
