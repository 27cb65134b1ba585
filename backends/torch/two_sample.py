"""The two-sample test of :func:`~markovcat.backends.torch.equivariance.check_equivariance` and its power.

:func:`energy_test` is the energy-distance permutation test (exact distances, a rounding
floor); :func:`minimum_detectable_shift` and :func:`samples_needed` state its power, measured
by a deterministic calibration on a Gaussian surrogate (what a PASSED two-sample report can
see: see :mod:`~markovcat.backends.torch.equivariance`).  :data:`TOLERANCES` are the rounding
tolerances per dtype that the deterministic and pathwise checks and the test's floor share.
"""

from __future__ import annotations

import functools
import math

import torch
from torch import Tensor

__all__ = ["energy_test", "minimum_detectable_shift", "samples_needed", "TOLERANCES", "POWER"]

TOLERANCES: dict[torch.dtype, float] = {torch.float64: 1e-10, torch.float32: 1e-5, torch.float16: 1e-2,
                                        torch.bfloat16: 1e-2}
"""The default tolerance of the deterministic and in-law checks, by the inputs' dtype (relative error)."""
POWER = 0.8
"""The detection probability at which a two-sample report states its minimum detectable effect."""


def _tolerance(dtype: torch.dtype) -> float:
    return TOLERANCES.get(dtype, 1e-5)


def energy_test(a: Tensor, b: Tensor, permutations: int = 500, generator: torch.Generator | None = None,
                floor: float | None = None) -> tuple[float, float]:
    """Energy distance between samples ``a`` and ``b`` (rows) and its permutation p-value.

    ``E = 2 mean|a - b| - mean|a - a'| - mean|b - b'|`` (V-statistic, Euclidean norm,
    computed exactly: difference then norm, in float64); the p-value is
    ``(1 + #{permuted E >= E}) / (1 + permutations)``, exact under the null hypothesis that
    ``a`` and ``b`` have the same law.  Distances at most ``floor`` count as zero; the
    default floor is the tolerance of the inputs' dtype (:data:`TOLERANCES`) times the
    largest row norm, so samples equal up to rounding get ``E = 0`` and ``p = 1``.
    ``floor=0.0`` compares exactly.
    """
    if floor is None:
        floor = _tolerance(a.dtype) * float(torch.cat([a, b]).detach().double().flatten(1).norm(dim=1).max())
    a, b = a.detach().double().flatten(1).cpu(), b.detach().double().flatten(1).cpu()
    m, n = a.shape[0], b.shape[0]
    z = torch.cat([a, b])
    distances = torch.cdist(z, z, compute_mode="donot_use_mm_for_euclid_dist")
    if floor > 0:
        distances = torch.where(distances > floor, distances, torch.zeros((), dtype=distances.dtype))
    labels = torch.cat([torch.ones(m, dtype=torch.bool), torch.zeros(n, dtype=torch.bool)])
    orders = torch.stack([torch.randperm(m + n, generator=generator) for _ in range(permutations)])
    all_labels = torch.cat([labels[None], labels[orders]])  # (1 + P, m + n), row 0 observed
    stats = _energy_statistics(distances, all_labels)
    observed = float(stats[0])
    p = (1 + int((stats[1:] >= observed - 1e-12 * abs(observed)).sum())) / (1 + permutations)
    return observed, p if not math.isnan(observed) else 0.0


def _energy_statistics(distances: Tensor, labels: Tensor) -> Tensor:
    """The energy statistic for each row of boolean ``labels`` (True: first sample) over a distance matrix."""
    wa = labels.to(distances.dtype) / labels[0].sum()
    wb = (~labels).to(distances.dtype) / (~labels[0]).sum()
    da, db = wa @ distances, wb @ distances
    return 2 * (da * wb).sum(1) - (da * wa).sum(1) - (db * wb).sum(1)


# -- power: calibration of the two-sample test on a Gaussian surrogate ------------------------------------------------

_CALIBRATION_SAMPLES = 200  # calibrated by simulation up to here; beyond, the shift scales as 1/sqrt(samples)
_CALIBRATION_DATASETS = 48  # simulated tests per shift size
_CALIBRATION_REFERENCE = 8, 500  # null datasets x permutations, for the null law of the normalised statistic


@functools.lru_cache(maxsize=1024)
def minimum_detectable_shift(samples: int, pairs: int = 4, permutations: int = 1000, alpha: float = 0.01,
                             dim: int = 1) -> float:
    """The smallest mean shift one pair of the two-sample test detects with probability :data:`POWER`.

    In units of the standard deviation per coordinate (root mean square), for ``samples``
    draws on each side, Bonferroni over ``pairs``, ``permutations`` permutations and level
    ``alpha``.  Measured by simulation, deterministically (a fixed seed: the same numbers
    give the same answer): ``samples`` draws of ``N(0, I_dim)`` against ``N(shift, I_dim)``
    (``|shift| = delta sqrt(dim)``), the energy statistic normalised by the mean pooled
    distance, its null law from the permutations of null data (fitted by a shifted gamma law),
    the permutation test's discreteness exactly (a binomial count of exceedances), 48
    simulated tests per shift, and bisection over the shift.  Beyond 200 samples the
    shift at 200 is scaled by ``sqrt(200 / samples)`` (the rate of local alternatives).
    ``dim`` is the output's effective dimension: data spread over fewer directions makes
    a shift harder to see.  ``inf`` if the test cannot reject at all.  It proves nothing
    about shapes of violation other than a mean shift, and it is a surrogate: real
    outputs are not Gaussian.
    """
    if samples < 2 or pairs < 1 or permutations < 1 or not 0 < alpha < 1 or dim < 1:
        raise ValueError(f"need samples >= 2, pairs >= 1, permutations >= 1, 0 < alpha < 1 and dim >= 1; got "
                         f"{samples}, {pairs}, {permutations}, {alpha}, {dim}")
    m = min(samples, _CALIBRATION_SAMPLES)
    shift = _calibrate(m, pairs, permutations, alpha, dim)
    return shift * math.sqrt(m / samples)


def samples_needed(shift: float, pairs: int = 4, permutations: int = 1000, alpha: float = 0.01,
                   dim: int = 1) -> int:
    """Samples per side at which :func:`minimum_detectable_shift` is at most ``shift``.

    The fewest up to the simulation's noise (a bisection over sample sizes below 200, the
    ``1/sqrt(samples)`` law above).
    """
    if not shift > 0:
        raise ValueError(f"shift must be positive, got {shift!r}")
    at_cap = minimum_detectable_shift(_CALIBRATION_SAMPLES, pairs, permutations, alpha, dim)
    if math.isinf(at_cap):
        raise ValueError(f"{permutations} permutations cannot reject at alpha={alpha} over {pairs} pairs")
    if at_cap > shift:
        return math.ceil(_CALIBRATION_SAMPLES * (at_cap / shift) ** 2)
    lo, hi = 2, _CALIBRATION_SAMPLES  # minimum_detectable_shift(hi) <= shift
    while hi - lo > 1:
        mid = (lo + hi) // 2
        lo, hi = (lo, mid) if minimum_detectable_shift(mid, pairs, permutations, alpha, dim) <= shift else (mid, hi)
    return hi


def _calibrate(m: int, pairs: int, permutations: int, alpha: float, dim: int) -> float:
    """``minimum_detectable_shift`` for ``m`` samples, by simulation (see there)."""
    # the test rejects a pair when c = #{permuted E >= E} satisfies (1 + c) / (1 + P) < alpha / pairs
    k_max = math.ceil(alpha / pairs * (1 + permutations) - 1) - 1
    if k_max < 0:
        return math.inf
    generator = torch.Generator().manual_seed(20240611)
    f64 = torch.float64
    reference = []
    datasets, perms = _CALIBRATION_REFERENCE
    for _ in range(datasets):
        z = torch.randn(2 * m, dim, generator=generator, dtype=f64)
        distances = torch.cdist(z, z)
        u = torch.rand(perms, 2 * m, generator=generator)
        labels = u <= u.median(1, keepdim=True).values  # random halves (m each): the permutations of the labels
        reference.append(_energy_statistics(distances.float(), labels).double() / distances.mean())
    null = torch.cat(reference)
    # a Pearson type III law (a shifted gamma: mean, variance and skewness) fits the null's tail; a plain gamma
    # fit is too light there and overstates the power
    mean, sd = float(null.mean()), float(null.std())
    skew = max(float(((null - mean) ** 3).mean()) / sd**3, 0.05)
    shape = 4 / skew**2
    scale = sd * skew / 2
    loc = mean - shape * scale
    t = _CALIBRATION_DATASETS
    a = torch.randn(t, m, dim, generator=generator, dtype=f64)
    b = torch.randn(t, m, dim, generator=generator, dtype=f64)
    within = torch.cdist(a, a).sum((1, 2)) + torch.cdist(b, b).sum((1, 2))
    cross2 = (torch.cdist(a, b) ** 2).float()
    along = (a[..., 0, None] - b[..., None, :, 0]).float()  # (a_i - b_j) along the shift's direction
    counts = torch.arange(k_max + 1, dtype=f64)
    log_binomial = (math.lgamma(permutations + 1) - torch.lgamma(counts + 1)
                    - torch.lgamma(permutations - counts + 1))
    shape_t = torch.tensor(shape, dtype=f64)

    def power(delta: float) -> float:
        step = delta * math.sqrt(dim)  # |shift|: delta per coordinate
        cross = along.mul(-2 * step).add_(cross2).add_(step**2).clamp_min_(0).sqrt_().sum((1, 2), dtype=f64)
        energy = (2 * cross - within) / m**2
        mean_distance = (within + 2 * cross) / (2 * m) ** 2
        exceed = torch.special.gammaincc(shape_t, ((energy / mean_distance - loc) / scale).clamp_min(0))
        exceed = exceed.clamp(1e-300, 1.0)[:, None]
        log_terms = log_binomial + torch.xlogy(counts, exceed) + (permutations - counts) * torch.log1p(-exceed)
        return float(log_terms.exp().sum(1).clamp(max=1.0).mean())

    lo, hi = 0.0, 0.25
    while power(hi) < POWER:
        lo, hi = hi, 2 * hi
        if hi > 1e4:
            return math.inf
    for _ in range(8):  # to 1/256 of the bracket, well inside the simulation's own error
        mid = (lo + hi) / 2
        lo, hi = (mid, hi) if power(mid) < POWER else (lo, mid)
    return hi
