"""Train, select on validation, evaluate and record one N-body run (one contender, one seed).

One run is an :class:`NBodyConfig`.  :func:`train` trains the contender with Adam on mean squared
error (batch 100, one fresh permutation of the training set per epoch), evaluates the validation
MSE every ``eval_every`` steps (the learning curve; stochastic models: one draw per example),
keeps the parameters of the best validation MSE (early stopping as in the EGNN paper: the test
split is never looked at to choose anything), and at the end evaluates, at those parameters:

* the validation MSE with one draw and, for the stochastic models, with the mean of
  ``test_samples`` draws; the one with the lower *validation* MSE is used on the test split
  (``metrics.test_samples_used``);
* the test MSE (mean over the test systems of the per-system MSE over coordinates, and its
  standard deviation over systems);
* the equivariance of the trained model, with
  :func:`~markovcat.backends.torch.equivariance.check_equivariance` on a float64 copy, for
  ``E(3)`` (rotations and reflections of positions and velocities, translations of positions)
  and for ``S_5`` (permuting the particles), on the first 8 test systems;
* the parameter count, training steps/s, and forward+backward seconds per batch (the mean over
  the training steps timed).

The record (``<out>/<name>.json``, small) holds all of it and the curve.  A run whose record
exists is skipped; an interrupted run resumes from its last checkpoint (model, optimizer, best
parameters so far, curve, step; every ``checkpoint_every`` steps, in a folder that is not
committed).  Every draw comes from a generator seeded by the run's seed and a label (the order
of the examples per epoch, the model's noise per step, the augmentations, the evaluation draws),
so a resumed run gives the numbers of an uninterrupted one.

Shards and processes.  The model's noise is drawn per *shard*: each batch is cut into ``shards``
equal shards (default 1), shard ``j`` of step ``t`` drawing from the generator
``(seed, "noise", t, j)``; a 1-shard run draws from ``(seed, "noise", t)``, the label of the
records written before shards existed, so those records stay reproducible (and ``shards`` is
left out of a 1-shard configuration's ``as_dict``, so their keys are unchanged: a record
without ``shards`` means 1).  Under ``torchrun --nproc_per_node=N`` (``WORLD_SIZE > 1``) the run
trains with :class:`~torch.nn.parallel.DistributedDataParallel` (gloo on the CPU, NCCL on CUDA)
through :class:`~markovcat.experiments.runner.ShardedObjective`, the matrix runner's sharding:
each process takes ``shards / N`` consecutive shards of the batch, and its loss is normalised so
DDP's gradient average is the gradient of the mean over the whole batch.  So a run's numbers
depend on ``shards`` and not on ``N`` (any ``N`` dividing ``shards``), up to float rounding of the
sums.  Only rank 0 evaluates (the curve, the selection, the test), checks equivariance, shows
the progress bar and writes records and checkpoints; a step is skipped on every process if its
loss is non-finite on any.  The record's ``world_size`` (absent in older records: 1) says how
many processes trained it; its ``forward_backward_seconds`` then include the gradient all-reduce.

    torchrun --standalone --nproc_per_node=2 -m markovcat.experiments.nbody.train --method haar --shards 2
"""

from __future__ import annotations

import copy
import math
import platform
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from markovcat.experiments.nbody.data import CACHE, Split, load
from markovcat.experiments.nbody.models import METHODS, Model, ModelConfig, as_double, build, parameters
from markovcat.experiments.nbody.simulate import SimulationConfig
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
    fingerprint,
    generator,
    git_revision,
    world_for,
    world_from_environment,
)
from markovcat.experiments.runner import progress as progress_bar

__all__ = ["NBodyConfig", "train", "run", "main", "record_path", "finished", "read_record", "evaluate", "equivariance",
           "RESULTS", "CHECKPOINTS", "CHECKPOINT_EVERY"]

RESULTS = Path("experiments/results/nbody")
CHECKPOINTS = Path("experiments/checkpoints/nbody")
CHECKPOINT_EVERY = 500
EVAL_CHUNK = 250  # systems per prediction call (memory: chunk x draws x frames)
RECORD_VERSION = 1
MAX_SKIPPED = 0.01


@dataclass(frozen=True)
class NBodyConfig(RecordedConfig):
    """Everything that determines a run's numbers (not the device, paths, threads or number of processes).

    Defaults: the benchmark's splits (3,000 / 2,000 / 2,000) and simulator, batch 100, Adam at
    lr 5e-4 with weight decay 1e-12 (the EGNN paper's N-body settings).  ``shards``: the noise
    shards per batch (see the module docstring); ``as_dict`` leaves it out when it is 1, the
    meaning of a record written before it existed, so such records keep their keys.
    """

    method: str
    seed: int
    steps: int
    batch: int = 100
    lr: float = 5e-4
    weight_decay: float = 1e-12
    eval_every: int = 100
    test_samples: int = 16
    train_size: int = 3000
    valid_size: int = 2000
    test_size: int = 2000
    burn_in: int = 3000
    horizon: int = 1000
    width: int = 64
    layers: int = 3
    gamma_hidden: int = 64
    shards: int = 1

    LATER_FIELDS = {"shards": 1}  # records from before shards existed ran with one shard

    def __post_init__(self) -> None:
        if self.method not in METHODS:
            raise ValueError(f"unknown method {self.method!r}: use one of {', '.join(METHODS)}")
        for name in ("seed", "steps", "burn_in"):
            value = getattr(self, name)
            if not isinstance(value, int) or value < 0:
                raise ValueError(f"{name} must be a non-negative integer, got {value!r}")
        for name in ("batch", "eval_every", "test_samples", "train_size", "valid_size", "test_size", "horizon",
                     "width", "layers", "gamma_hidden", "shards"):
            value = getattr(self, name)
            if not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be a positive integer, got {value!r}")
        if self.batch > self.train_size:
            raise ValueError(f"the batch ({self.batch}) is larger than the training set ({self.train_size})")
        if self.batch % self.shards:
            raise ValueError(f"the batch ({self.batch}) must be a multiple of shards ({self.shards}): each batch "
                             f"is cut into equal shards")
        if not self.lr > 0 or not self.weight_decay >= 0:
            raise ValueError(f"lr must be positive and weight_decay non-negative, got {self.lr!r}, "
                             f"{self.weight_decay!r}")

    @property
    def name(self) -> str:
        return f"nbody_{self.method}_seed{self.seed}_{self.key}"

    def simulation(self) -> SimulationConfig:
        return SimulationConfig(burn_in=self.burn_in, horizon=self.horizon)

    def model_config(self) -> ModelConfig:
        return ModelConfig(test_samples=self.test_samples, gamma_hidden=self.gamma_hidden, width=self.width,
                           layers=self.layers)

    def sizes(self) -> dict[str, int]:
        return {"train": self.train_size, "valid": self.valid_size, "test": self.test_size}


# -- records and checkpoints ------------------------------------------------------------------------------------------
#: Where the runs' records and checkpoints are kept, and what every record holds.
RECORDS = RecordStore("an N-body", ("config", "metrics", "equivariance", "curve"), RESULTS, CHECKPOINTS)


def record_path(config: NBodyConfig, out: Path | str = RESULTS) -> Path:
    return RECORDS.path(config, out)


def read_record(path: Path | str) -> dict[str, Any]:
    """A record, checked to have the fields the plot and the skip logic read."""
    return RECORDS.read(path)


def finished(config: NBodyConfig, out: Path | str = RESULTS) -> bool:
    """Whether ``out`` holds the record of a run with exactly this configuration."""
    return RECORDS.finished(config, out)


def checkpoint_path(config: NBodyConfig, checkpoints: Path | str = CHECKPOINTS) -> Path:
    return RECORDS.checkpoint_path(config, checkpoints)


# -- evaluation ------------------------------------------------------------------------------------------------------
@torch.no_grad()
def evaluate(model: Model, split: Split, samples: int, seed: int, label: str) -> dict[str, float]:
    """MSE over coordinates: the mean over systems of each system's MSE, and its standard deviation over systems."""
    errors = []
    for i, start in enumerate(range(0, len(split), EVAL_CHUNK)):
        noise = generator(split.x.device, seed, label, samples, i)
        prediction = model.predict(split.x[start:start + EVAL_CHUNK], samples, noise)
        errors.append((prediction - split.y[start:start + EVAL_CHUNK]).double().square().mean((-2, -1)))
    every = torch.cat(errors)
    if not bool(torch.isfinite(every).all()):
        raise FloatingPointError(f"non-finite {label} errors (diverged training?); try a smaller --lr")
    return {"mse": float(every.mean()), "std": float(every.std()) if every.numel() > 1 else 0.0}


def equivariance(model: Model, inputs: Tensor, seed: int) -> dict[str, Any]:
    """``check_equivariance`` of a float64 copy for ``E(3)`` and for ``S_5`` on ``inputs`` (the trained model)."""
    from markovcat.backends.torch import check_equivariance

    double = as_double(model)
    double.module.eval()
    sym = model.symmetry

    def forward(x: Tensor, generator: torch.Generator | None = None) -> Tensor:
        return double.forward(x, generator)

    x = inputs.double().cpu()
    double.module.cpu()
    with torch.no_grad():
        euclidean = check_equivariance(forward, sym.euclidean, sym.euclidean_system, sym.euclidean_points, inputs=x,
                                       stochastic=model.stochastic, seed=derived_seed(seed, "equivariance"),
                                       dtype=torch.float64)
        permutation = check_equivariance(forward, sym.permutations, sym.permuted_system, sym.permuted_points,
                                         inputs=x, stochastic=model.stochastic, seed=derived_seed(seed, "permutation"),
                                         dtype=torch.float64)
    return {"E3": euclidean.summary(), "S5": permutation.summary()}


# -- the loop --------------------------------------------------------------------------------------------------------
def batch_indices(config: NBodyConfig, step: int) -> Tensor:
    """The examples of batch ``step``: a fresh seeded permutation per epoch, the last partial batch dropped."""
    return epoch_batch(config.train_size, config.batch, config.seed, step)


def train(config: NBodyConfig, *, world: World | None = None, device: torch.device | str | None = None,
          out: Path | str = RESULTS, checkpoints: Path | str = CHECKPOINTS, checkpoint_every: int = CHECKPOINT_EVERY,
          progress: bool = True, data_cache: Path | str | None = CACHE,
          on_step: Callable[[int], None] | None = None) -> dict[str, Any]:
    """Train, select, evaluate and record one run; returns its record (read from disk if it was finished already).

    ``world``: this process's place among torchrun's processes (default: one process on
    ``device``, the CPU if not given); every process calls this, rank 0 returns the record and
    the others ``{}``.  Resumes from ``checkpoints`` if a checkpoint of this configuration is
    there, and deletes it once the record is written.  ``on_step(step)`` is called after each
    step (tests interrupt a run with it).
    """
    world = world_for(world, device)
    device = world.device
    if checkpoint_every < 1:
        raise ValueError(f"checkpoint_every must be a positive number of steps, got {checkpoint_every}")
    path = record_path(config, out)
    if finished(config, out):
        return read_record(path) if world.main else {}
    started = time.perf_counter()
    if not world.main:
        barrier(world)  # rank 0 simulates and caches the splits first; the others then read the cache
    splits = load(config.sizes(), config.simulation(), cache=data_cache)
    if world.main:
        barrier(world)
    train_split, valid, test = (s.to(device=device) for s in (splits.train, splits.valid, splits.test))
    model = build(config.method, config.model_config(), config.seed)
    module = model.module.to(device)
    objective = ShardedObjective(model.loss, module, seed=config.seed, batch=config.batch, shards=config.shards,
                                 world=world, index_single_shard=False)
    optimizer = torch.optim.Adam(module.parameters(), lr=config.lr, weight_decay=config.weight_decay)
    state: dict[str, Any] = {"step": 0, "skipped": 0, "curve": [], "best": None, "best_step": 0,
                             "best_mse": math.inf}
    saved = checkpoint_path(config, checkpoints)
    if saved.exists():
        stored = RECORDS.load_checkpoint(saved, config, device)
        module.load_state_dict(stored["model"])
        optimizer.load_state_dict(stored["optimizer"])
        state = stored["state"]
    wrapped = data_parallel(objective, world)  # after loading: DDP starts from rank 0's parameters
    first = state["step"]
    timed, fwd_bwd = 0, 0.0
    module.train()
    train_started = time.perf_counter()
    with progress_bar(config.steps, first, progress and world.main, config.name) as bar:
        while state["step"] < config.steps:
            step = state["step"]
            index = batch_indices(config, step).to(device)
            tick = time.perf_counter()
            loss = wrapped(train_split.x[index], train_split.y[index], step)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            fwd_bwd += time.perf_counter() - tick
            timed += 1
            if all_true(bool(torch.isfinite(loss)), world):  # every process steps, or none
                optimizer.step()
            else:
                state["skipped"] += 1
                if state["skipped"] > max(1, int(MAX_SKIPPED * config.steps)):
                    raise FloatingPointError(f"{config.name}: non-finite losses at {state['skipped']} steps: the "
                                             f"training diverged; try a smaller --lr")
            state["step"] = step = step + 1
            bar.update(1)
            if world.main and (step % config.eval_every == 0 or step == config.steps):
                module.eval()
                mse = evaluate(model, valid, 1, config.seed, "valid-curve")["mse"]
                module.train()
                state["curve"].append([step, mse])
                bar.set_postfix(loss=f"{loss.item():.4g}", valid=f"{mse:.4g}")
                if mse < state["best_mse"]:
                    state["best_mse"], state["best_step"] = mse, step
                    state["best"] = copy.deepcopy(module.state_dict())
            if world.main and step % checkpoint_every == 0 and step < config.steps:
                checkpoint = {"config": config.as_dict(), "model": module.state_dict(),
                              "optimizer": optimizer.state_dict(), "state": state}
                RECORDS.save_checkpoint(saved, checkpoint)
            if on_step is not None:
                on_step(step)
    train_seconds = time.perf_counter() - train_started
    record: dict[str, Any] = {}
    if world.main:
        record = _finish(config, model, state, valid, test, world)
        record.update(resumed_from_step=first, train_seconds=round(train_seconds, 3),
                      steps_per_second=round((config.steps - first) / train_seconds, 3) if config.steps > first
                      else None, forward_backward_seconds=round(fwd_bwd / timed, 6) if timed else None)
        record["wall_seconds"] = round(time.perf_counter() - started, 3)
        RECORDS.write(config, record, out)
        saved.unlink(missing_ok=True)
    barrier(world)
    return record


def _finish(config: NBodyConfig, model: Model, state: dict[str, Any], valid: Split, test: Split,
            world: World) -> dict[str, Any]:
    """Select the best parameters, evaluate them and check equivariance: the record (without the timings)."""
    module = model.module
    if state["best"] is not None:
        module.load_state_dict(state["best"])
    module.eval()
    metrics: dict[str, Any] = {"best_step": state["best_step"]}
    metrics["valid_mse_one_draw"] = evaluate(model, valid, 1, config.seed, "valid")["mse"]
    samples = 1
    if model.stochastic:
        averaged = evaluate(model, valid, config.test_samples, config.seed, "valid")["mse"]
        metrics["valid_mse_averaged"] = averaged
        if averaged < metrics["valid_mse_one_draw"]:
            samples = config.test_samples
    tested = evaluate(model, test, samples, config.seed, "test")
    metrics.update(test_samples_used=samples, valid_mse=metrics.get("valid_mse_averaged", math.inf)
                   if samples > 1 else metrics["valid_mse_one_draw"], test_mse=tested["mse"],
                   test_mse_std=tested["std"], test_systems=len(test))
    device = world.device
    return {
        "version": RECORD_VERSION,
        "name": config.name,
        "config": config.as_dict(),
        "seed": config.seed,
        "git_revision": git_revision(),
        "torch": torch.__version__,
        "python": platform.python_version(),
        "device": str(device) if device.type != "cuda" else torch.cuda.get_device_name(device),
        "world_size": world.size,
        "threads": torch.get_num_threads(),
        "skipped_steps": state["skipped"],
        "parameter_count": parameters(model),
        "metrics": metrics,
        "curve": state["curve"],
        "curve_split": "valid (one draw per system)",
        "parameters": fingerprint(module),
        "equivariance": equivariance(model, test.x[:8], config.seed),
    }


def run(config: NBodyConfig, device: str = "auto", **options: Any) -> dict[str, Any]:
    """:func:`train` in the process group the environment describes (torchrun's, else one process on ``device``)."""
    return train(config, world=world_from_environment(device), **options)


def main(argv: list[str] | None = None) -> int:
    """``python -m markovcat.experiments.nbody.train`` (or torchrun): ``markovcat experiment nbody`` 's options."""
    from markovcat.experiments.nbody.cli import add_nbody_arguments, run_nbody
    from markovcat.experiments.runner import run_command

    return run_command("python -m markovcat.experiments.nbody.train", {
        None: ("One N-body run or the sweep; torchrun-ready.", add_nbody_arguments, run_nbody)}, argv)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
