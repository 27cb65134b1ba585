"""Train, select on the validation bound, sample, evaluate and record one SymDiff run (one contender, one seed).

One run is a :class:`SymDiffConfig`; :data:`CONFIGS` holds the named budgets (``cpu-small``,
``gpu-paper``).  :func:`train`:

* trains the contender with AdamW on EDM's ``l2`` objective: ``t ~ U{0..T}``, ``z_t = alpha_t x +
  sigma_t eps``, loss ``1/2 ||eps - eps_hat(z_t)||^2`` over the molecule's ``(3 + f) k`` coordinates
  divided by that number (``weighting="simple"``; ``"vlb"`` uses the bound's weight and ``t >= 1``);
  DiT-Aug rotates each training molecule by its own Haar ``O(3)`` element first; gradients are
  clipped to norm ``grad_clip`` (a fixed norm; EDM clips adaptively, to 1.5 times the recent mean
  plus twice their deviation); an exponential moving average of the weights (``ema``: EDM's 0.9999
  in ``gpu-paper``, 0.999 in the short ``cpu-small`` budget) is the model that is evaluated;
* ``p(N)`` (the atom count, in the bound and for sampling) is the whole training split's histogram,
  also when a subset trains;
* every ``eval_every`` steps estimates the variational bound (NLL, nats) on ``valid_size``
  validation molecules (:func:`nll_bound`: one ``t`` in each of ``2 strata_per_side`` strata per
  molecule, plus the prior, ``L_0`` and ``log p(N)``; the same ``t`` and noise at every evaluation
  and for every contender, so that the curve compares the weights, not the draws) and keeps the
  weights of the best estimate (the test split chooses nothing);
* at the end, at those weights: the bound on ``test_size`` test molecules (and on the same molecules
  randomly rotated, :func:`test_bounds`: QM9's coordinates are not uniformly oriented, and a model
  that is not invariant can exploit it), ``samples`` molecules by
  ``T``-step ancestral sampling with EDM's metrics (:mod:`~markovcat.experiments.symdiff.sample`),
  a two-sample test of the ``O(3)``-invariance of the samples' law
  (:func:`~markovcat.experiments.symdiff.sample.invariance_test`), and the ``O(3)`` check of the
  trained denoiser (:func:`equivariance`).

The record (``<out>/<name>.json``) holds all of it and the curve; the samples go to
``<out>/<name>.xyz`` and the selected weights to ``<checkpoints>/<name>.model.pt`` (for
``sample``).  A run whose record exists is skipped; an interrupted run resumes from its last
checkpoint (every ``checkpoint_every`` steps).  Every draw comes from a generator seeded by the
run's seed, a label and the step, so a resumed run gives the numbers of an uninterrupted one.

Shards and processes (the N-body runner's scheme, :class:`~markovcat.experiments.runner.ShardedObjective`).
Each batch is cut into ``shards`` equal shards (default 1); shard ``j`` of step ``t`` draws its
time steps, noise and group elements from the generator ``(seed, "noise", t, j)`` (one shard:
``(seed, "noise", t)``, the label of the records written before shards existed; ``as_dict``
leaves ``shards`` out when it is 1, so their keys stay).  Under ``torchrun --nproc_per_node=N``
the training runs with :class:`~torch.nn.parallel.DistributedDataParallel` (gloo on the CPU,
NCCL on CUDA), each process taking ``shards / N`` shards, so the numbers depend on ``shards``,
not on ``N``.  Every process keeps the EMA; rank 0 alone evaluates and checkpoints, and after the
last step (the other processes leave then) computes the test bound, samples and writes the
record: sampling runs on rank 0 only.

    torchrun --standalone --nproc_per_node=4 -m markovcat.experiments.symdiff.cli --model symdiff \\
        --config gpu-paper --shards 4 --device cuda
"""

from __future__ import annotations

import contextlib
import copy
import dataclasses
import importlib.util
import math
import platform
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from markovcat.experiments import runner
from markovcat.experiments.runner import (
    RecordedConfig,
    RecordStore,
    ShardedObjective,
    World,
    all_true,
    barrier,
    data_parallel,
    derived_seed,
    epoch_batch,
    generator,
    git_revision,
    world_for,
)
from markovcat.experiments.runner import progress as progress_bar
from markovcat.experiments.symdiff import diffusion
from markovcat.experiments.symdiff.data import CACHE, QM9, Molecules, load
from markovcat.experiments.symdiff.models import (
    METHODS,
    PRECISIONS,
    Model,
    ModelConfig,
    accelerate,
    as_double,
    build,
    pack,
    parameters,
    rotate_positions,
)
from markovcat.experiments.symdiff.pace import Lockstep

__all__ = ["SymDiffConfig", "CONFIGS", "config_named", "train", "run", "record_path", "checkpoint_path",
           "weights_path", "finished", "read_record", "encode", "nll_bound", "training_loss", "equivariance",
           "load_model", "run_elsewhere", "first_molecules", "rotated", "test_bounds", "RESULTS", "CHECKPOINTS",
           "CHECKPOINT_EVERY"]

RESULTS = Path("experiments/results/symdiff")
CHECKPOINTS = Path("experiments/checkpoints/symdiff")
CHECKPOINT_EVERY = 250
RECORD_VERSION = 1
MAX_SKIPPED = 0.01
NORM = diffusion.Normalisation()


@dataclass(frozen=True)
class SymDiffConfig(RecordedConfig):
    """Everything that determines a run's numbers (not the device, paths or threads).

    ``train_size`` / ``valid_size`` / ``test_size``: the first molecules of EDM's splits (``None``:
    all); ``samples``: molecules generated at the end (0: none); ``diffusion_steps``: ``T``, for
    training, the bound and sampling alike; ``strata_per_side``: the bound's time strata
    (:func:`~markovcat.experiments.symdiff.diffusion.time_strata`); ``shards``: noise shards per batch
    (module docstring), left out of ``as_dict`` when 1.
    """

    method: str
    seed: int
    steps: int
    batch: int = 64
    lr: float = 1e-4
    weight_decay: float = 1e-12
    grad_clip: float = 1.0
    ema: float = 0.999
    weighting: str = "simple"
    diffusion_steps: int = 1000
    eval_every: int = 250
    train_size: int | None = None
    valid_size: int = 500
    test_size: int = 1000
    samples: int = 100
    width: int = 128
    depth: int = 4
    heads: int = 4
    mlp_ratio: float = 4.0
    gamma_width: int = 64
    gamma_depth: int = 2
    gamma_heads: int = 4
    strata_per_side: int = 8
    shards: int = 1
    precision: str = "fp32"
    sample_batch: int = 100

    # records from before these fields existed ran with one shard, in float32, sampled 100 molecules at a time
    LATER_FIELDS = {"shards": 1, "precision": "fp32", "sample_batch": 100}

    def __post_init__(self) -> None:
        if self.method not in METHODS:
            raise ValueError(f"unknown method {self.method!r}: use one of {', '.join(METHODS)}")
        for name in ("seed", "steps", "samples"):
            value = getattr(self, name)
            if not isinstance(value, int) or value < 0:
                raise ValueError(f"{name} must be a non-negative integer, got {value!r}")
        for name in ("batch", "diffusion_steps", "eval_every", "valid_size", "test_size", "width", "depth", "heads",
                     "gamma_width", "gamma_depth", "gamma_heads", "strata_per_side", "shards", "sample_batch"):
            value = getattr(self, name)
            if not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be a positive integer, got {value!r}")
        if self.train_size is not None and (not isinstance(self.train_size, int) or self.train_size < self.batch):
            raise ValueError(f"train_size must be None or an integer >= batch ({self.batch}), got {self.train_size!r}")
        if self.batch % self.shards:
            raise ValueError(f"the batch ({self.batch}) must be a multiple of shards ({self.shards}): each batch "
                             f"is cut into equal shards")
        if self.precision not in PRECISIONS:
            raise ValueError(f"precision must be one of {', '.join(PRECISIONS)}, got {self.precision!r}")
        if self.weighting not in ("simple", "vlb"):
            raise ValueError(f"weighting must be 'simple' or 'vlb', got {self.weighting!r}")
        if not self.lr > 0 or not self.weight_decay >= 0 or not self.grad_clip > 0 or not 0 <= self.ema < 1:
            raise ValueError(f"need lr > 0, weight_decay >= 0, grad_clip > 0 and 0 <= ema < 1; got {self.lr!r}, "
                             f"{self.weight_decay!r}, {self.grad_clip!r}, {self.ema!r}")


    @property
    def name(self) -> str:
        return f"symdiff_{self.method}_seed{self.seed}_{self.key}"

    def model_config(self) -> ModelConfig:
        return ModelConfig(self.width, self.depth, self.heads, self.mlp_ratio, self.gamma_width, self.gamma_depth,
                           self.gamma_heads)

    def schedule(self) -> diffusion.NoiseSchedule:
        return diffusion.NoiseSchedule(steps=self.diffusion_steps)


#: The named budgets.  ``cpu-small``: a small DiT (4 blocks of width 96, 0.56M parameters; SymDiff's gamma
#: network adds 18k) on the first 20,000 training molecules, 10,000 steps of batch 32 (16 epochs); T = 1000 for
#: training, the bound and sampling alike; 100 samples.  On one thread of this project's shared 2-core CPU a step
#: takes 0.07-0.08 s (median of 60; SymDiff the slowest) and sampling 100 molecules about 1 minute, so a run takes
#: about 15 to 20 minutes with the bound's evaluations (18 to 30 measured with two runs and other work sharing the
#: two cores), and the four contenders about 40 minutes with ``--jobs 2``.  Its learning rate (3e-4) is above
#: EDM's 1e-4, for progress within the short budget.
#: ``gpu-paper``: EDM's QM9 optimisation (batch 64, lr 1e-4, EMA 0.9999, 3,000 epochs of the 100k training set,
#: T = 1000) with a DiT-S sized denoiser (12 blocks, width 384, 6 heads); the seed's exact DiT sizes are not
#: restated here, so check them before quoting a run as the seed's; 10,000 samples.
#: ``gpu-10min``: SymDiff and DiT-Aug side by side on one GPU in ten minutes of wall time
#: (``experiments/symdiff/gpu.sh``): a 9.7M-parameter DiT (8 blocks of width 256, 8 heads; SymDiff's gamma
#: network, 2 blocks of width 128, adds 0.5M) in bfloat16 autocast, batch 512, lr 3e-4, EMA 0.999, the whole
#: training split; ``steps`` is a ceiling: the script's time limit stops the two runs together
#: (:mod:`~markovcat.experiments.symdiff.pace`) and the record says at which step.  The test bound on all
#: 13,083 test molecules (as stored and rotated), 1,000 samples drawn in one batch.  Sizes from a FLOP
#: count (1.16 GFLOP per molecule per training step) and an assumed H100 throughput
#: (:mod:`~markovcat.experiments.symdiff.budget`; the README gives the estimate and its assumptions).
#: ``smoke``: ``gpu-10min``'s code path at tiny sizes (T = 10, a 1-block DiT of width 16) in seconds: the
#: script's check on the GPU before the run and its dry run on the CPU (tests/applications/test_symdiff_gpu.py).
CONFIGS: dict[str, dict[str, Any]] = {
    "cpu-small": dict(steps=10_000, batch=32, lr=3e-4, ema=0.999, train_size=20_000, valid_size=300,
                      test_size=1000, samples=100, eval_every=500, width=96, depth=4, heads=4, mlp_ratio=2.0,
                      gamma_width=32, gamma_depth=1, gamma_heads=2),
    "gpu-paper": dict(steps=3000 * 100_000 // 64, batch=64, lr=1e-4, ema=0.9999, train_size=None, valid_size=2000,
                      test_size=13_083, samples=10_000, eval_every=20_000, width=384, depth=12, heads=6,
                      mlp_ratio=4.0, gamma_width=128, gamma_depth=2, gamma_heads=4),
    "gpu-10min": dict(steps=60_000, batch=512, lr=3e-4, ema=0.999, train_size=None, valid_size=1000,
                      test_size=13_083, samples=1000, sample_batch=1000, eval_every=2500, width=256, depth=8,
                      heads=8, mlp_ratio=4.0, gamma_width=128, gamma_depth=2, gamma_heads=4, precision="bf16"),
    "smoke": dict(steps=3, batch=16, lr=3e-4, ema=0.999, train_size=64, valid_size=16, test_size=16, samples=4,
                  sample_batch=4, eval_every=2, diffusion_steps=10, width=16, depth=1, heads=2, mlp_ratio=2.0,
                  gamma_width=16, gamma_depth=1, gamma_heads=2, precision="bf16"),
}


def config_named(name: str, method: str, seed: int = 0, **overrides: Any) -> SymDiffConfig:
    """The configuration ``name`` (a key of :data:`CONFIGS`) for ``method``, with ``overrides`` (``None`` ignored)."""
    if name not in CONFIGS:
        raise ValueError(f"unknown configuration {name!r}: use one of {', '.join(CONFIGS)}")
    fields = {**CONFIGS[name], **{k: v for k, v in overrides.items() if v is not None}}
    return SymDiffConfig(method=method, seed=seed, **fields)


# -- records and checkpoints ------------------------------------------------------------------------------------------
#: Where the runs' records and checkpoints are kept, and what every record holds.
RECORDS = RecordStore("a SymDiff", ("config", "metrics", "curve", "equivariance"), RESULTS, CHECKPOINTS)


def record_path(config: SymDiffConfig, out: Path | str = RESULTS) -> Path:
    return RECORDS.path(config, out)


def checkpoint_path(config: SymDiffConfig, checkpoints: Path | str = CHECKPOINTS) -> Path:
    return RECORDS.checkpoint_path(config, checkpoints)


def weights_path(config: SymDiffConfig, checkpoints: Path | str = CHECKPOINTS) -> Path:
    """Where the selected (EMA) weights of a finished run are kept, for sampling later."""
    return Path(checkpoints) / f"{config.name}.model.pt"


def read_record(path: Path | str) -> dict[str, Any]:
    """A record, checked to have the fields the skip logic and the tables read."""
    return RECORDS.read(path)


def finished(config: SymDiffConfig, out: Path | str = RESULTS) -> bool:
    return RECORDS.finished(config, out)


def load_model(path: Path | str, device: torch.device | str = "cpu") -> tuple[SymDiffConfig, Model]:
    """The configuration and the model of a weights file written by :func:`train`."""
    stored = torch.load(path, map_location=device, weights_only=False)
    config = SymDiffConfig.from_dict(stored["config"])
    model = build(config.method, config.model_config(), config.seed)
    model.module.load_state_dict(stored["model"])
    model.module.to(device).eval()
    return config, model


# -- the objective and the bound ---------------------------------------------------------------------------------------
def encode(molecules: Molecules, device: torch.device, dtype: torch.dtype = torch.float32) -> tuple[Tensor, Tensor]:
    """``(xh, mask)``: EDM's scaled ``(positions, one-hot, charge)`` of padded molecules, on ``device``."""
    mask = molecules.mask.to(device)
    xh = NORM.encode(molecules.positions.to(device, dtype), molecules.one_hot.to(device, dtype),
                     molecules.charges.to(device, dtype), mask)
    return xh, mask


def _dims(mask: Tensor, width: int) -> Tensor:
    return mask.sum(dim=1).to(torch.float32) * width


def training_loss(model: Model, molecules: Molecules, schedule: diffusion.NoiseSchedule, gen: torch.Generator,
                  weighting: str = "simple") -> Tensor:
    """The mean over the batch of EDM's ``l2`` loss (see the module docstring); DiT-Aug rotates the batch first."""
    parameter = next(model.module.parameters())
    xh, mask = encode(molecules, parameter.device, parameter.dtype)
    b = xh.shape[0]
    if model.augment:
        xh = rotate_positions(model.group.sample(b, gen, xh.dtype, xh.device), xh)
    low = 0 if weighting == "simple" else 1
    t = torch.randint(low, schedule.steps + 1, (b,), generator=gen, device=gen.device).cpu()
    z, eps = diffusion.q_sample(xh, t, mask, schedule, generator=gen)
    eps_hat = model(z, schedule.time(t).to(xh.device, xh.dtype), mask, gen)
    loss = diffusion.epsilon_loss(eps, eps_hat, t, mask, schedule, weighting)  # type: ignore[arg-type]
    return (loss / _dims(mask, xh.shape[-1]).to(loss.dtype)).mean()


@torch.no_grad()
def nll_bound(model: Model, molecules: Molecules, schedule: diffusion.NoiseSchedule, histogram: Tensor,
              gen: torch.Generator, batch: int = 250, per_side: int = 8,
              model_gen: torch.Generator | None = None) -> Tensor:
    """``(n,)`` float64: an unbiased estimate per molecule of EDM's variational bound on ``-log p`` (nats).

    ``prior KL + sum_t L_t + L_0 (positions and features at t = 0) - log|det| - log p(N)``, the sum
    over ``t`` estimated from one ``t`` in each stratum of
    :func:`~markovcat.experiments.symdiff.diffusion.time_strata` (``per_side``; 16 strata for 8):
    ``len(strata) + 1`` passes of the denoiser per molecule.  ``gen`` draws ``t`` and the forward
    noise, ``model_gen`` (default ``gen``) the denoiser's own randomness (SymDiff's group draws):
    with separate generators every contender sees the same ``t`` and noise, a paired comparison.
    """
    parameter = next(model.module.parameters())
    strata = diffusion.time_strata(schedule.steps, per_side)
    model_gen = gen if model_gen is None else model_gen
    out = []
    for start in range(0, len(molecules), batch):
        part = molecules.subset(range(start, min(start + batch, len(molecules))))
        xh, mask = encode(part, parameter.device, parameter.dtype)
        b = xh.shape[0]
        middle = torch.zeros(b, dtype=torch.float64)
        for first, last in strata:
            t = torch.randint(first, last + 1, (b,), generator=gen, device=gen.device).cpu()
            z, eps = diffusion.q_sample(xh, t, mask, schedule, generator=gen)
            eps_hat = model(z, schedule.time(t).to(xh.device, xh.dtype), mask, model_gen)
            # the bound's terms on the CPU, where the schedule lives
            share = (last - first + 1) / schedule.steps
            middle += share * diffusion.diffusion_term(eps.cpu(), eps_hat.cpu(), t, mask.cpu(), schedule)
        zero = torch.zeros(b, dtype=torch.long)
        z0, eps0 = diffusion.q_sample(xh, zero, mask, schedule, generator=gen)
        eps0_hat = model(z0, schedule.time(zero).to(xh.device, xh.dtype), mask, model_gen)
        xh, mask, z0, eps0, eps0_hat = (v.cpu() for v in (xh, mask, z0, eps0, eps0_hat))
        prior = diffusion.prior_kl(xh, mask, schedule)
        l0 = (diffusion.l0_positions(eps0, eps0_hat, mask, schedule)
              + diffusion.l0_features(z0, part.types, part.charges, mask, schedule, NORM))
        log_p_n = diffusion.num_atoms_log_prob(part.num_atoms, histogram)
        out.append(diffusion.nll_terms(prior, middle, l0, NORM.log_det(mask), log_p_n))
    return torch.cat(out)


def rotated(molecules: Molecules, gen: torch.Generator) -> Molecules:
    """The molecules, each turned by its own Haar-random element of ``O(3)`` (drawn from ``gen``, on the CPU)."""
    from markovcat.backends.torch import haar_orthogonal

    positions = molecules.positions
    g = haar_orthogonal(len(molecules), 3, gen, positions.dtype, positions.device)
    return dataclasses.replace(molecules, positions=rotate_positions(g, positions))


def test_bounds(model: Model, config: SymDiffConfig, test: Molecules, histogram: Tensor,
                device: torch.device) -> dict[str, Any]:
    """The test bound (mean and standard error, nats), on the test molecules and on them randomly rotated.

    Both use the same draws of ``t`` and noise.  An ``O(3)``-invariant model's law gives the two
    the same expectation; a model that learned the orientations of QM9's coordinates (which are
    not uniformly random) can score better on the molecules as they are than rotated.
    """
    out: dict[str, Any] = {"test_molecules": len(test)}
    turned = rotated(test, torch.Generator().manual_seed(derived_seed(config.seed, "test-rotation")))
    for key, molecules in (("test_nll", test), ("test_nll_rotated", turned)):
        values = nll_bound(model, molecules, schedule=config.schedule(), histogram=histogram,
                           gen=generator(device, config.seed, "test"), per_side=config.strata_per_side,
                           model_gen=generator(device, config.seed, "test-model"))
        out[key] = float(values.mean())
        out[f"{key}_sem"] = float(values.std() / math.sqrt(len(values))) if len(values) > 1 else None
    return out


def equivariance(model: Model, molecules: Molecules, schedule: diffusion.NoiseSchedule, seed: int,
                 step: int | None = None, method: str = "auto") -> dict[str, Any]:
    """``check_equivariance`` of a float64 copy of the denoiser on noisy ``molecules`` at ``step`` (default ``T/2``).

    The input action rotates the positions of ``z_t`` (features, time, mask fixed), the output
    action the predicted position noise.  For the symmetrised denoisers ``auto`` is the pathwise
    check (couplings of the Haar draw), and the two-sample test runs too (``O3_two_sample``);
    for the DiTs the deterministic check.
    """
    from markovcat.backends.torch import check_equivariance

    double = as_double(model)
    double.module.cpu().eval()
    gen = torch.Generator().manual_seed(derived_seed(seed, "equivariance-inputs"))
    xh, mask = encode(molecules, torch.device("cpu"), torch.float64)
    t = torch.full((len(molecules),), schedule.steps // 2 if step is None else step, dtype=torch.long)
    z, _ = diffusion.q_sample(xh, t, mask, schedule, generator=gen)
    x = pack(z, schedule.time(t).double(), mask)
    result: dict[str, Any] = {"step": int(t[0])}
    methods = [method] if method != "auto" or not double.stochastic else ["auto", "two-sample"]
    for name in methods:
        report = check_equivariance(double.module, double.group, double.input_action, double.output_action,
                                    inputs=x, stochastic=double.stochastic, method=name,
                                    seed=derived_seed(seed, "equivariance", name), dtype=torch.float64)
        result["O3" if name == method else "O3_two_sample"] = report.summary()
    return result


# -- the loop --------------------------------------------------------------------------------------------------------
def _batch_indices(config: SymDiffConfig, size: int, step: int) -> Tensor:
    return epoch_batch(size, config.batch, config.seed, step)


def _ema_update(ema: dict[str, Tensor], module: torch.nn.Module, decay: float) -> None:
    """``ema <- decay ema + (1 - decay) weights`` for the floating tensors, two fused (``_foreach``) operations:
    the same arithmetic, element by element, as ``mul_`` then ``add_`` on each tensor."""
    with torch.no_grad():
        pairs = [(ema[key], value) for key, value in module.state_dict().items() if value.is_floating_point()]
        averages, values = [a for a, _ in pairs], [v for _, v in pairs]
        torch._foreach_mul_(averages, decay)
        torch._foreach_add_(averages, values, alpha=1 - decay)


def _global_mean(value: Tensor, world: World) -> float:
    """The mean of ``value`` over the processes of ``world`` (each process's share of the batch's loss)."""
    if world.distributed:
        import torch.distributed as dist

        value = value.clone()
        dist.all_reduce(value)
        value /= world.size
    return float(value)


def first_molecules(molecules: Molecules, count: int | None) -> Molecules:
    """The first ``count`` molecules (all of them if ``None`` or more than there are): a run's subset of a split."""
    return molecules if count is None or count >= len(molecules) else molecules.subset(range(count))


def train(config: SymDiffConfig, *, world: World | None = None, device: torch.device | str | None = None,
          out: Path | str = RESULTS,
          checkpoints: Path | str = CHECKPOINTS, checkpoint_every: int = CHECKPOINT_EVERY, progress: bool = True,
          data: Path | str = CACHE / "qm9.pt", dataset: QM9 | None = None,
          on_step: Callable[[int], None] | None = None, compile: str | None = None,
          time_limit: float | None = None, pace: Lockstep | None = None) -> dict[str, Any]:
    """Train, select, sample, evaluate and record one run; returns its record (read from disk if it exists).

    Resumes from ``checkpoints`` if a checkpoint of this configuration is there, and deletes it once
    the record is written.  ``data`` is the QM9 cache (built from ``qm9pack`` when missing);
    ``dataset``, if given, is used instead (the splits already loaded).
    ``world``: this process's place among torchrun's processes (default: one process on
    ``device``, the CPU if not given); every process calls this, rank 0 returns the record and
    the others ``{}`` once training ends.
    ``on_step(step)`` is called after each step (tests interrupt a run with it).
    ``compile``: a ``torch.compile`` backend for the transformer trunks
    (:func:`~markovcat.experiments.symdiff.models.accelerate`; ``None``: eager); the precision is
    the configuration's.  ``time_limit`` (seconds): training stops at the first step that ends
    after it (then evaluated and selected as a last step would be), so that the test bound and
    sampling still run within a fixed budget; the record says where (``stopped_at_step``).  ``pace``
    (:class:`~markovcat.experiments.symdiff.pace.Lockstep`) keeps runs side by side at the same step
    and stops them together once the time limit of any of them has passed.
    """
    if checkpoint_every < 1:
        raise ValueError(f"checkpoint_every must be a positive number of steps, got {checkpoint_every}")
    world = world_for(world, device)
    device = world.device
    path = record_path(config, out)
    if finished(config, out):
        return read_record(path) if world.main else {}
    started = time.perf_counter()
    if not world.main:
        barrier(world)  # rank 0 builds the cache first if it is missing; the others then read it
    qm9 = load(data) if dataset is None else dataset
    if world.main:
        barrier(world)
    train_set = first_molecules(qm9.train, config.train_size)
    valid, test = first_molecules(qm9.valid, config.valid_size), first_molecules(qm9.test, config.test_size)
    if len(train_set) < config.batch:
        raise ValueError(f"the training set has {len(train_set)} molecules, fewer than the batch {config.batch}")
    histogram = qm9.train.histogram()  # log p(N) and the sampled atom counts: the whole training split's law
    schedule = config.schedule()
    model = build(config.method, config.model_config(), config.seed)
    module = model.module.to(device)
    scoring = copy.deepcopy(module)  # the evaluated copy: the EMA weights are loaded into it
    for part in (module, scoring):
        accelerate(part, config.precision, compile)
    optimizer = torch.optim.AdamW(module.parameters(), lr=config.lr, weight_decay=config.weight_decay, amsgrad=True)
    ema = {k: v.detach().clone() for k, v in module.state_dict().items()}

    def shard_loss(index: Tensor, _: Tensor, gen: torch.Generator) -> Tensor:
        return training_loss(model, train_set.subset(index), schedule, gen, config.weighting)

    objective = ShardedObjective(shard_loss, module, seed=config.seed, batch=config.batch, shards=config.shards,
                                 world=world, index_single_shard=False)
    state: dict[str, Any] = {"step": 0, "skipped": 0, "curve": [], "best": None, "best_step": 0, "best_nll": math.inf,
                             "loss_sum": 0.0, "loss_count": 0, "seconds": 0.0}
    saved = checkpoint_path(config, checkpoints)
    if saved.exists():
        stored = RECORDS.load_checkpoint(saved, config, device)
        module.load_state_dict(stored["model"])
        optimizer.load_state_dict(stored["optimizer"])
        ema, state = stored["ema"], stored["state"]
    wrapped = data_parallel(objective, world)  # after loading: DDP starts from rank 0's parameters
    first = state["step"]

    def evaluated() -> torch.nn.Module:
        """The evaluated copy with the EMA weights (or the weights themselves without EMA)."""
        scoring.load_state_dict(ema if config.ema > 0 else module.state_dict())
        return scoring.eval()

    timed, fwd_bwd, stopped = 0, 0.0, None
    pace = None if pace is None else pace.for_run(config.name)
    module.train()
    with progress_bar(config.steps, first, progress and world.main, config.name) as bar, \
            (pace.running() if pace is not None else contextlib.nullcontext()):
        while state["step"] < config.steps:
            step = state["step"]
            tick = time.perf_counter()
            index = _batch_indices(config, len(train_set), step)
            loss = wrapped(index, index, step)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            if all_true(bool(torch.isfinite(loss)), world):  # every process steps, or none
                torch.nn.utils.clip_grad_norm_(module.parameters(), config.grad_clip)
                optimizer.step()
                _ema_update(ema, module, config.ema if step > 0 else 0.0)
                state["loss_sum"] += _global_mean(loss.detach(), world)
                state["loss_count"] += 1
            else:
                state["skipped"] += 1
                if state["skipped"] > max(1, int(MAX_SKIPPED * config.steps)):
                    raise FloatingPointError(f"{config.name}: non-finite losses at {state['skipped']} steps: the "
                                             f"training diverged; try a smaller --lr")
            elapsed = time.perf_counter() - tick
            fwd_bwd += elapsed
            state["seconds"] += elapsed
            timed += 1
            state["step"] = step = step + 1
            bar.update(1)
            late = time_limit is not None and time.perf_counter() - started >= time_limit
            if (pace.after(step, late) if pace is not None else all_true(late, world)) and step < config.steps:
                stopped = step
            if world.main and (step % config.eval_every == 0 or step == config.steps or stopped is not None):
                candidate = evaluated()
                scored = dataclasses.replace(model, module=candidate)
                # the same t and noise at every evaluation and for every contender
                bound = nll_bound(scored, valid, schedule, histogram, generator(device, config.seed, "valid"),
                                  per_side=config.strata_per_side,
                                  model_gen=generator(device, config.seed, "valid-model"))
                nll = float(bound.mean())
                mean_loss = state["loss_sum"] / max(1, state["loss_count"])
                state["curve"].append([step, mean_loss, nll])
                state["loss_sum"], state["loss_count"] = 0.0, 0
                bar.set_postfix(loss=f"{mean_loss:.4g}", valid_nll=f"{nll:.1f}")
                if nll < state["best_nll"]:
                    state["best_nll"], state["best_step"] = nll, step
                    state["best_sem"] = float(bound.std() / math.sqrt(len(bound))) if len(bound) > 1 else None
                    state["best"] = {k: v.detach().cpu().clone() for k, v in candidate.state_dict().items()}
            if world.main and step % checkpoint_every == 0 and step < config.steps:
                RECORDS.save_checkpoint(saved, {"config": config.as_dict(), "model": module.state_dict(),
                                                "optimizer": optimizer.state_dict(), "ema": ema, "state": state})
            if on_step is not None:
                on_step(step)
            if stopped is not None:
                break
    barrier(world)
    if not world.main:
        return {}  # rank 0 alone tests, samples and records (no process waits on it)
    selected = evaluated()
    if state["best"] is not None:
        selected.load_state_dict(state["best"])
    final = dataclasses.replace(model, module=selected)
    RECORDS.save_checkpoint(weights_path(config, checkpoints),
                            {"config": config.as_dict(), "model": selected.state_dict()})
    metrics: dict[str, Any] = {"best_step": state["best_step"], "valid_nll": state["best_nll"],
                               "valid_nll_sem": state.get("best_sem"),
                               "bound_strata": len(diffusion.time_strata(config.diffusion_steps,
                                                                         config.strata_per_side))}
    metrics.update(test_bounds(final, config, test, histogram, world.device))
    sampling_seconds = None
    if config.samples > 0:
        from markovcat.experiments.symdiff.sample import draw_atom_counts, evaluate, invariance_test, sample, write_xyz

        gen = generator(device, config.seed, "sample")
        counts = draw_atom_counts(histogram, config.samples, torch.Generator().manual_seed(derived_seed(
            config.seed, "atom-counts")))
        tick = time.perf_counter()
        with progress_bar(config.diffusion_steps * math.ceil(config.samples / config.sample_batch), 0, progress,
                          f"{config.name} sampling") as bar:
            drawn = sample(final, counts, schedule, gen, batch=config.sample_batch, progress=bar)
        sampling_seconds = time.perf_counter() - tick
        chemistry = importlib.util.find_spec("rdkit") is not None
        scores = evaluate(drawn, chemistry=chemistry)
        metrics.update({f"sample_{k}": v if v == v else None for k, v in scores.as_percent().items()},
                       samples=scores.n)
        if not chemistry:  # validity and uniqueness from the XYZ file later (symdiff-chemistry)
            metrics["sample_chemistry"] = "pending: no RDKit where the samples were drawn"
        if config.samples >= 4:
            metrics["sample_invariance"] = invariance_test(drawn, torch.Generator().manual_seed(derived_seed(
                config.seed, "invariance")))
        smiles = scores.smiles if chemistry else ("",) * scores.n
        write_xyz(Path(out) / f"{config.name}.xyz", drawn,
                  [f"{config.name} sample {i}: {s or ('invalid' if chemistry else 'unchecked')}"
                   for i, s in enumerate(smiles)])
    record: dict[str, Any] = {
        "version": RECORD_VERSION,
        "name": config.name,
        "config": config.as_dict(),
        "seed": config.seed,
        "git_revision": git_revision(),
        "torch": torch.__version__,
        "python": platform.python_version(),
        "device": str(world.device) if world.device.type != "cuda" else torch.cuda.get_device_name(world.device),
        "threads": torch.get_num_threads(),
        "world_size": world.size,
        "resumed_from_step": first,
        "stopped_at_step": stopped,
        "compile": compile,
        "skipped_steps": state["skipped"],
        "train_seconds": round(state["seconds"], 3),
        "step_seconds": round(fwd_bwd / timed, 6) if timed else None,
        "sampling_seconds": None if sampling_seconds is None else round(sampling_seconds, 3),
        "parameter_count": parameters(model),
        "metrics": metrics,
        "curve": state["curve"],
        "curve_fields": ["step", "mean training loss since the last point", "valid NLL bound estimate (nats)"],
        "equivariance": equivariance(final, test.subset(range(min(4, len(test)))), schedule, config.seed),
    }
    record["wall_seconds"] = round(time.perf_counter() - started, 3)
    RECORDS.write(config, record, out)
    saved.unlink(missing_ok=True)
    return record


def run_elsewhere(config: SymDiffConfig, threads: int = 1, **options: Any) -> tuple[str, dict[str, Any]]:
    """:func:`train` in a spawned process with ``threads`` torch threads: ``(name, record)`` (for the sweep loop)."""
    torch.set_num_threads(threads)
    return config.name, train(config, **options)


def run(config: SymDiffConfig, device: str = "auto", **options: Any) -> dict[str, Any]:
    """:func:`train` in the process group the environment describes (torchrun's), on ``device`` (``auto``: CUDA
    if present)."""
    return train(config, world=runner.world_from_environment(device), **options)
