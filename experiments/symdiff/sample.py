"""Ancestral sampling of molecules from a trained denoiser, EDM's metrics on them, and an XYZ file.

:func:`sample` draws the atom counts from the training histogram, starts from ``z_T`` standard
Gaussian (positions on the zero centre-of-mass subspace, padding zero), takes the ``T`` ancestral
steps ``z_{t-1} ~ p(z_{t-1} | z_t)`` of :func:`~markovcat.experiments.symdiff.diffusion.ancestral_step`
with the denoiser's ``eps_hat`` (a symmetrised denoiser draws a fresh rotation at every step),
and decodes ``z_0`` (:func:`~markovcat.experiments.symdiff.diffusion.decode`: positions from
``p(x | z_0)``, elements by argmax, as in EDM).  :func:`evaluate` adds the stability, validity and
uniqueness of :mod:`~markovcat.experiments.symdiff.metrics`; :func:`invariance_test` tests whether
the law of the samples is ``O(3)``-invariant.  Every draw comes from one generator, so a seed gives
the same molecules.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from markovcat.experiments.symdiff import diffusion
from markovcat.experiments.symdiff.data import ELEMENTS, MAX_ATOMS
from markovcat.experiments.symdiff.metrics import Metrics
from markovcat.experiments.symdiff.metrics import evaluate as molecule_metrics
from markovcat.experiments.symdiff.models import WIDTH, Model

__all__ = ["Samples", "draw_atom_counts", "sample", "evaluate", "write_xyz", "orientation_features", "invariance_test"]

_NORM = diffusion.Normalisation()


@dataclass(frozen=True, eq=False)
class Samples:
    """Generated molecules: ``positions`` ``(b, n, 3)`` Å, ``types`` ``(b, n)`` (``-1`` padding), ``charges``."""

    positions: Tensor
    types: Tensor
    charges: Tensor


def draw_atom_counts(histogram: Tensor, count: int, generator: torch.Generator | None = None) -> Tensor:
    """``count`` atom numbers drawn from ``histogram`` (counts of molecules with ``k`` atoms, ``k = 0..29``)."""
    if histogram.dim() != 1 or histogram.sum() <= 0 or histogram[0] != 0:
        raise ValueError("the histogram must count molecules by atom number, with none of 0 atoms")
    return torch.multinomial(histogram.double(), count, replacement=True, generator=generator)


@torch.no_grad()
def sample(model: Model, num_atoms: Tensor, schedule: diffusion.NoiseSchedule,
           generator: torch.Generator | None = None, atoms: int = MAX_ATOMS, batch: int = 100,
           norm: diffusion.Normalisation = _NORM, progress: Any = None) -> Samples:
    """Molecules with ``num_atoms`` ``(b,)`` atoms each, in chunks of ``batch``, by ``schedule.steps`` ancestral steps.

    ``atoms`` is the padded width the model was built for; ``progress`` (a tqdm bar or ``None``) is
    advanced by one per denoiser call.  The model should be in eval mode.
    """
    if num_atoms.dim() != 1 or len(num_atoms) == 0 or bool((num_atoms < 1).any() or (num_atoms > atoms).any()):
        raise ValueError(f"num_atoms must be a non-empty (b,) tensor of counts in 1..{atoms}")
    parameter = next(model.module.parameters())
    dtype, device = parameter.dtype, parameter.device
    parts = []
    for start in range(0, len(num_atoms), batch):
        counts = num_atoms[start:start + batch].to(device)
        b = len(counts)
        mask = torch.arange(atoms, device=device)[None] < counts[:, None]
        z = diffusion.sample_noise(torch.zeros(b, atoms, WIDTH, dtype=dtype, device=device), mask, generator)
        for step in range(schedule.steps, 0, -1):
            t = torch.full((b,), step, dtype=torch.long)
            eps = model(z, schedule.time(t).to(device=device, dtype=dtype), mask, generator)
            z = diffusion.ancestral_step(z, eps, t.to(device), mask, schedule, generator)
            if progress is not None:
                progress.update(1)
        zero = torch.zeros(b, dtype=torch.long)
        eps = model(z, schedule.time(zero).to(device=device, dtype=dtype), mask, generator)
        parts.append(diffusion.decode(z, eps, mask, schedule, norm, with_charges=True, generator=generator))
    positions, types, charges = (torch.cat([p[i] for p in parts]).cpu() for i in range(3))
    return Samples(positions, types, charges)


def evaluate(samples: Samples, chemistry: bool = True) -> Metrics:
    """EDM's atom / molecule stability, validity and uniqueness of the samples (``chemistry=False``: no RDKit)."""
    if not bool(torch.isfinite(samples.positions).all()):
        raise FloatingPointError("the sampler produced non-finite positions (a diverged model?)")
    return molecule_metrics(samples.positions.double(), samples.types, chemistry=chemistry)


def write_xyz(path: Path | str, samples: Samples, comments: Sequence[str] | None = None) -> Path:
    """All molecules into one multi-frame XYZ file (Å); ``comments`` (one per molecule) on the comment lines."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    lines: list[str] = []
    for i in range(len(samples.types)):
        real = samples.types[i] >= 0
        elements = [ELEMENTS[int(k)] for k in samples.types[i][real]]
        lines += [str(len(elements)), comments[i] if comments is not None else f"sample {i}"]
        for element, (x, y, z) in zip(elements, samples.positions[i][real].tolist(), strict=True):
            lines.append(f"{element} {x:.5f} {y:.5f} {z:.5f}")
    path.write_text("\n".join(lines) + "\n")
    return path


def orientation_features(positions: Tensor, types: Tensor) -> Tensor:
    """``(b, 12)``: features of each molecule that move with its orientation (rotation and reflection).

    The second-moment matrix ``(1/k) sum_i x_i x_i^T`` of the centred positions (9 entries, moved as
    ``g M g^T``) and the vector ``(1/k) sum_i |x_i|^2 x_i`` (3 entries, moved as ``g v``; it also sees
    a preferred handedness).  Independent of the atom order.
    """
    mask = (types >= 0).to(positions.dtype)[..., None]
    k = mask.sum(dim=1)
    x = (positions - (positions * mask).sum(dim=1, keepdim=True) / k[:, None]) * mask
    second = torch.einsum("bni,bnj->bij", x, x).flatten(1) / k
    third = ((x * x).sum(dim=-1, keepdim=True) * x).sum(dim=1) / k
    return torch.cat([second, third], dim=-1)


def invariance_test(samples: Samples, generator: torch.Generator | None = None,
                    permutations: int = 1000) -> dict[str, float | int]:
    """A two-sample test of the ``O(3)``-invariance of the samples' law: ``{"statistic", "p_value", "n"}``.

    The molecules are split in two halves; each molecule of the second half is moved by its own
    Haar-random ``O(3)`` element, which gives that half the symmetrised law.  The energy test
    (:func:`~markovcat.backends.torch.equivariance.energy_test`) compares the halves'
    :func:`orientation_features`.  Under invariance the halves are exchangeable and the p-value is
    exact; a small p-value exhibits a preferred orientation.  A large one proves nothing beyond the
    test's power, which grows with the number of samples (a hundred detect only a strong preference).
    """
    from markovcat.backends.torch.equivariance import energy_test
    from markovcat.backends.torch.linalg import haar_orthogonal

    n = len(samples.types)
    if n < 4:
        raise ValueError(f"the invariance test needs at least 4 molecules, got {n}")
    half = n // 2
    positions = samples.positions.double()
    g = haar_orthogonal(n - half, 3, generator, torch.float64)
    moved = positions[half:] @ g.transpose(-1, -2)
    a = orientation_features(positions[:half], samples.types[:half])
    b = orientation_features(moved, samples.types[half:])
    statistic, p = energy_test(a, b, permutations, generator)
    return {"statistic": statistic, "p_value": p, "n": n}
