"""What a SymDiff configuration costs: FLOPs counted on the CPU, time measured on the CPU, time estimated on a GPU.

:func:`count_flops` runs one training step (forward and backward) and one forward pass of a
contender under ``torch.utils.flop_counter`` (matrix products and attention; elementwise work,
normalisation and the optimiser are not counted) on random padded molecules: the counts depend on
the sizes only.  :func:`measure_cpu_step` times whole training steps (loss, backward, AdamW, EMA)
on this machine's CPU, which calibrates the count against a measured time (the achieved FLOP/s).
:func:`estimate` adds the run's other work (validation bounds, the test bound on the molecules
as they are and rotated, sampling) and turns FLOPs into seconds at a throughput that is *assumed*,
not measured, and bounds the step rate by an assumed floor on the time of one step (a small model's
step on a GPU is limited by kernel launches and synchronisations, not by its FLOPs).

    python -m markovcat.experiments.symdiff.cli budget --config gpu-10min
"""

from __future__ import annotations

import copy
import math
import time
from dataclasses import dataclass
from typing import Any

import torch

from markovcat.experiments.symdiff import diffusion
from markovcat.experiments.symdiff.data import MAX_ATOMS
from markovcat.experiments.symdiff.models import WIDTH, Model, accelerate, build, parameters
from markovcat.experiments.symdiff.train import SymDiffConfig

__all__ = ["Throughput", "H100_BF16", "count_flops", "measure_cpu_step", "estimate"]


@dataclass(frozen=True)
class Throughput:
    """An assumed GPU: ``peak`` dense FLOP/s, the ``fraction`` of it a training step achieves, the shortest step.

    ``step_floor`` (seconds): the least time one training step of one process takes whatever its
    FLOPs (kernel launches, the loop's synchronisations), an assumption to be replaced by a
    measured step time.
    """

    name: str
    peak: float
    fraction: float
    step_floor: float

    @property
    def achieved(self) -> float:
        return self.peak * self.fraction


#: One H100 (SXM) in bfloat16: 989 TFLOP/s dense at its datasheet clock (798 measured here on an 8192-cubed
#: product); a small transformer's whole step is assumed to reach 20% of the datasheet figure with torch.compile,
#: and one step of one process to take at least 10 ms (a compiled step of ~10 transformer blocks plus the
#: symmetrisation, AdamW and EMA is some hundreds of kernel launches and two host synchronisations).
H100_BF16 = Throughput("H100 bf16 (assumed)", 989e12, 0.20, 0.010)


def _molecules(batch: int, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    counts = torch.randint(9, MAX_ATOMS + 1, (batch,), generator=generator)
    mask = torch.arange(MAX_ATOMS)[None] < counts[:, None]
    z = diffusion.project(torch.randn(batch, MAX_ATOMS, WIDTH, generator=generator), mask)
    return z, torch.rand(batch, generator=generator), mask


def count_flops(config: SymDiffConfig, batch: int | None = None) -> dict[str, Any]:
    """FLOPs of one training step of ``batch`` molecules (default the configuration's) and of one forward pass.

    ``{"batch", "train_step", "forward", "forward_per_molecule", "parameters"}``: ``train_step`` is the
    forward and backward pass (``torch.utils.flop_counter``), ``forward`` a pass without gradients.
    """
    from torch.utils.flop_counter import FlopCounterMode

    batch = config.batch if batch is None else batch
    model = build(config.method, config.model_config(), config.seed)
    gen = torch.Generator().manual_seed(0)
    z, t, mask = _molecules(batch, gen)
    with FlopCounterMode(display=False) as counter:
        (model(z, t, mask, gen) ** 2).mean().backward()
    train_step = counter.get_total_flops()
    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        model(z, t, mask, gen)
    forward = counter.get_total_flops()
    return {"batch": batch, "train_step": train_step, "forward": forward, "forward_per_molecule": forward / batch,
            "parameters": parameters(model)}


def measure_cpu_step(config: SymDiffConfig, batch: int, steps: int = 3, model: Model | None = None) -> float:
    """The median wall time (s) of ``steps`` whole training steps on the CPU at ``batch`` (after one warm-up).

    A step: the ``epsilon`` loss, backward, gradient clipping, AdamW and the EMA update, in the
    configuration's precision, eager.  For calibration only: the CPU is not the target.
    """
    from markovcat.experiments.symdiff.train import _ema_update

    model = build(config.method, config.model_config(), config.seed) if model is None else model
    module = accelerate(model.module, config.precision, None)
    optimizer = torch.optim.AdamW(module.parameters(), lr=config.lr, weight_decay=config.weight_decay, amsgrad=True)
    ema = copy.deepcopy(module.state_dict())
    gen = torch.Generator().manual_seed(0)
    times = []
    for _ in range(steps + 1):
        z, t, mask = _molecules(batch, gen)
        tick = time.perf_counter()
        loss = (model(z, t, mask, gen) - z).pow(2).mean()
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(module.parameters(), config.grad_clip)
        optimizer.step()
        _ema_update(ema, module, config.ema)
        times.append(time.perf_counter() - tick)
    return sorted(times[1:])[len(times[1:]) // 2]


def estimate(config: SymDiffConfig, flops: dict[str, Any], seconds: float, gpu: Throughput = H100_BF16,
             side_by_side: int = 2) -> dict[str, Any]:
    """The steps ``seconds`` of training buy, and the FLOPs and GPU time of the rest of the run, at ``gpu``.

    ``side_by_side`` runs share the GPU (each gets ``1 / side_by_side`` of its throughput).  The
    step count is the smaller of the FLOP-bound count and ``seconds / step_floor``.
    """
    passes = len(diffusion.time_strata(config.diffusion_steps, config.strata_per_side)) + 1
    per_molecule = flops["forward_per_molecule"]
    share = gpu.achieved / side_by_side
    step_flops = flops["train_step"] * config.batch / flops["batch"]
    by_flops = seconds * share / step_flops
    by_floor = seconds / gpu.step_floor
    steps = int(min(by_flops, by_floor))
    evaluations = math.ceil(steps / config.eval_every)
    rest = {"validation": evaluations * config.valid_size * passes * per_molecule,
            "test (as stored and rotated)": 2 * config.test_size * passes * per_molecule,
            "sampling": config.samples * (config.diffusion_steps + 1) * per_molecule}
    return {"gpu": gpu.name, "achieved FLOP/s (assumed)": gpu.achieved, "runs side by side": side_by_side,
            "training seconds": seconds, "train step FLOP": step_flops, "steps (FLOP-bound)": int(by_flops),
            "steps (step-floor bound)": int(by_floor), "steps": steps, "bound": "FLOPs" if by_flops < by_floor else
            "step floor", "molecules seen": steps * config.batch,
            "epochs of 100k": steps * config.batch / 100_000, "training FLOP": steps * step_flops,
            **{f"{k} FLOP": v for k, v in rest.items()},
            **{f"{k} seconds (FLOP-bound)": v / share for k, v in rest.items()}}
