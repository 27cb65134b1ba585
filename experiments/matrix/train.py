"""Train, evaluate and record one matrix experiment (Cornish 2024, sec. 7.3), on one process or many.

One run is a :class:`RunConfig` (task, method, d, seed, step budget and the paper's defaults:
batch 100, Adam at lr 1e-4, a fixed set of 1,000 test examples drawn from the seed, and training
data under one of two protocols: ``fresh``, the paper's, every batch newly drawn (an epoch of 100
steps sees 10,000 new examples: ``stoch_sym``'s ``InfiniteDataset``), or ``fixed``, one set of
10,000 examples permuted per epoch, which a large model can overfit).  Every ``curve_every``
steps the mean test error on the first :data:`CURVE_EXAMPLES` test examples is recorded (the
learning curve).
:func:`train` trains it, evaluates the test relative squared error (mean and standard deviation
over test examples, each prediction the mean of ``test_samples`` draws), measures the
equivariance error of the trained model with
:func:`~markovcat.backends.torch.equivariance.check_equivariance`, and writes one small JSON
record (``<out>/<name>.json``).  A run whose record exists is skipped; an interrupted run resumes
from its last checkpoint (model, optimizer, step, torch RNG states; every ``checkpoint_every``
steps, in a separate folder that is not committed).

Non-finite gradients.  Orthonormalising a gamma-network's output (QR) has no derivative where
that output is singular, and a batch that comes close gives a non-finite gradient.  Such a step
is skipped (no optimizer update; the count is recorded as ``skipped_steps``), as mixed-precision
training does with overflowing steps.  A run that skips more than ``MAX_SKIPPED`` of its steps (and more than one),
or whose test errors are not finite, has diverged: it raises :class:`FloatingPointError` and
writes no record.

Determinism.  Every draw comes from a generator seeded by the run's seed and a label: the
datasets (``seed``), each fresh batch (``seed``, step), the order of the fixed protocol's training
examples (one permutation per epoch), the curve's and the test's draws, and the
model's noise, drawn per *shard*: each global batch is cut into ``shards`` equal shards, and shard
``j`` of step ``t`` draws its noise from its own generator seeded by ``(seed, t, j)``.  So the
numbers depend on the seed and the configuration only: not on the number of processes (any
world size dividing ``shards``), not on where a run was interrupted.

Distributed.  Under ``torchrun --nproc_per_node=N`` (``WORLD_SIZE > 1`` in the environment) the
same loop runs with :class:`~torch.nn.parallel.DistributedDataParallel`: gloo on the CPU, NCCL on
CUDA; each process takes ``shards / N`` consecutive shards of the global batch; its loss is the
sum over its shards of (shard mean loss x shard size) x N / B, so DDP's gradient average is the
gradient of the per-example mean over the global batch, as in one process (the sharding is
:class:`~markovcat.experiments.runner.ShardedObjective`, shared with the N-body runner).  Only rank 0 evaluates,
writes records and checkpoints.

    torchrun --standalone --nproc_per_node=2 -m markovcat.experiments.matrix.train --task cov --method haar --dim 4
"""

from __future__ import annotations

import math
import platform
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import torch
from torch import Tensor, nn

from markovcat.experiments import runner
from markovcat.experiments.runner import (
    RecordedConfig,
    RecordStore,
    ShardedObjective,
    World,
    barrier,
    check_shards,
    data_parallel,
    derived_seed,
    epoch_batch,
    fingerprint,
    generator,
    git_revision,
    world_from_environment,
)
from markovcat.experiments.runner import progress as progress_bar

__all__ = ["RunConfig", "World", "train", "run", "record_path", "finished", "git_revision", "derived_seed",
           "CHECKPOINT_EVERY", "RESULTS", "CHECKPOINTS"]

RESULTS = Path("experiments/results/matrix")
CHECKPOINTS = Path("experiments/checkpoints/matrix")
CHECKPOINT_EVERY = 500
EVAL_CHUNK = 100  # test examples per prediction call (memory: chunk x test_samples backbone rows)
RECORD_VERSION = 1
MAX_SKIPPED = 0.01  # a run that skips more than this fraction of its steps (non-finite gradients) has diverged
#: ``fresh``: every batch newly drawn (the paper's ``InfiniteDataset``); ``fixed``: one training set.
DATA_PROTOCOLS: tuple[str, ...] = ("fresh", "fixed")
CURVE_EXAMPLES = 200  # test examples behind each learning-curve point (the first of the fixed test set)


@dataclass(frozen=True)
class RunConfig(RecordedConfig):
    """Everything that determines a run's numbers (and nothing that does not: no device, world size, paths).

    Defaults are the paper's: 10,000 training / 1,000 test examples, batch 100, Adam at lr 1e-4,
    10 samples per training example, 100 averaged at test time, gamma hidden (250,), backbone
    hidden chosen by the method (``None``).  ``shards`` is the noise granularity (see the module
    docstring): runs with the same ``shards`` give the same numbers on any world size dividing it.
    """

    task: str
    method: str
    dim: int
    seed: int
    steps: int
    batch: int = 100
    lr: float = 1e-4
    train_size: int = 10_000
    test_size: int = 1_000
    shards: int = 2
    train_samples: int = 10
    test_samples: int = 100
    gamma_hidden: tuple[int, ...] = (250,)
    backbone_hidden: tuple[int, ...] | None = None
    data: str = "fresh"
    curve_every: int = 500

    #: Records written before these fields existed trained on one fixed set, with no learning curve.
    LATER_FIELDS: ClassVar[dict[str, Any]] = {"data": "fixed", "curve_every": 0}

    def __post_init__(self) -> None:
        if self.data not in DATA_PROTOCOLS:
            raise ValueError(f"data must be one of {', '.join(DATA_PROTOCOLS)} (the training-data protocol), got "
                             f"{self.data!r}")
        if not isinstance(self.curve_every, int) or self.curve_every < 0:
            raise ValueError(f"curve_every must be a non-negative number of steps (0: no learning curve), got "
                             f"{self.curve_every!r}")
        for name in ("dim", "steps", "batch", "train_size", "test_size", "shards", "train_samples", "test_samples"):
            value = getattr(self, name)
            if not isinstance(value, int) or value < (0 if name == "steps" else 1):
                raise ValueError(f"{name} must be a {'non-negative' if name == 'steps' else 'positive'} integer, "
                                 f"got {value!r}")
        if self.batch % self.shards:
            raise ValueError(f"the batch ({self.batch}) must be a multiple of shards ({self.shards}): each global "
                             f"batch is cut into equal shards")
        if self.batch > self.train_size:
            raise ValueError(f"the batch ({self.batch}) is larger than the training set ({self.train_size})")
        if not self.lr > 0:
            raise ValueError(f"lr must be positive, got {self.lr!r}")
        object.__setattr__(self, "gamma_hidden", tuple(self.gamma_hidden))
        if self.backbone_hidden is not None:
            object.__setattr__(self, "backbone_hidden", tuple(self.backbone_hidden))

    def as_dict(self) -> dict[str, Any]:
        data = super().as_dict()
        data["gamma_hidden"] = list(self.gamma_hidden)
        data["backbone_hidden"] = None if self.backbone_hidden is None else list(self.backbone_hidden)
        return data

    @classmethod
    def from_record_values(cls, values: dict[str, Any]) -> dict[str, Any]:
        values["gamma_hidden"] = tuple(values.get("gamma_hidden", (250,)))
        if values.get("backbone_hidden") is not None:
            values["backbone_hidden"] = tuple(values["backbone_hidden"])
        return values

    @property
    def name(self) -> str:
        return f"{self.task}_{self.method}_d{self.dim}_seed{self.seed}_{self.key}"

    def method_config(self) -> Any:
        from markovcat.experiments.matrix.methods import MethodConfig

        return MethodConfig(backbone_hidden=self.backbone_hidden, gamma_hidden=self.gamma_hidden,
                            train_samples=self.train_samples, test_samples=self.test_samples)


# -- processes -------------------------------------------------------------------------------------------------------


# -- records and checkpoints ----------------------------------------------------------------------------------------


#: Where the runs' records and checkpoints are kept, and what every record holds.
RECORDS = RecordStore("a matrix-experiment", ("config", "metrics", "equivariance"), RESULTS, CHECKPOINTS)


def record_path(config: RunConfig, out: Path | str = RESULTS) -> Path:
    return RECORDS.path(config, out)


def read_record(path: Path | str) -> dict[str, Any]:
    """A record, checked to have the fields the plot and the skip logic read."""
    return RECORDS.read(path)


def finished(config: RunConfig, out: Path | str = RESULTS) -> bool:
    """Whether ``out`` holds the record of a run with exactly this configuration."""
    return RECORDS.finished(config, out)


def checkpoint_path(config: RunConfig, checkpoints: Path | str = CHECKPOINTS) -> Path:
    return RECORDS.checkpoint_path(config, checkpoints)


def _rng_states() -> dict[str, Any]:
    states: dict[str, Any] = {"torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        states["cuda"] = torch.cuda.get_rng_state_all()
    return states


def _set_rng_states(states: dict[str, Any]) -> None:
    torch.set_rng_state(states["torch"])
    if "cuda" in states and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(states["cuda"])


def _save_checkpoint(path: Path, config: RunConfig, module: nn.Module, optimizer: torch.optim.Optimizer,
                     step: int, skipped: int, curve: list[list[float]]) -> None:
    state = {"config": config.as_dict(), "step": step, "skipped": skipped, "model": module.state_dict(),
             "optimizer": optimizer.state_dict(), "rng": _rng_states(), "curve": curve}
    RECORDS.save_checkpoint(path, state)


def _load_checkpoint(path: Path, config: RunConfig, module: nn.Module, optimizer: torch.optim.Optimizer,
                     device: torch.device) -> tuple[int, int, list[list[float]]]:
    """Load a checkpoint into ``module`` and ``optimizer``; returns ``(step, skipped steps, curve so far)``."""
    state = RECORDS.load_checkpoint(path, config, device)
    if not all(bool(torch.isfinite(v).all()) for v in state["model"].values() if v.is_floating_point()):
        raise ValueError(f"checkpoint {path} holds non-finite parameters (a diverged run); delete it to start this "
                         f"run afresh")
    module.load_state_dict(state["model"])
    optimizer.load_state_dict(state["optimizer"])
    _set_rng_states(state["rng"])
    return int(state["step"]), int(state.get("skipped", 0)), [list(point) for point in state.get("curve", [])]


# -- the loop -------------------------------------------------------------------------------------------------------


def datasets(task: Any, config: RunConfig) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """``(x_train, y_train, x_test, y_test)`` of the ``fixed`` protocol, drawn from the run's seed (on the CPU)."""
    data = generator(torch.device("cpu"), config.seed, "data")
    x_train, y_train = task.sample(config.train_size, data)
    x_test, y_test = task.sample(config.test_size, data)
    return x_train, y_train, x_test, y_test


def test_set(task: Any, config: RunConfig) -> tuple[Tensor, Tensor]:
    """The run's fixed test set: ``test_size`` examples from the seed (``fixed``: drawn after the training set)."""
    if config.data == "fixed":
        return datasets(task, config)[2:]
    return task.sample(config.test_size, generator(torch.device("cpu"), config.seed, "test set"))  # type: ignore[no-any-return]


def training_batch(task: Any, config: RunConfig, step: int, fixed: tuple[Tensor, Tensor] | None = None
                   ) -> tuple[Tensor, Tensor]:
    """Global batch ``step`` (on the CPU): ``fresh``, drawn from ``(seed, "train", step)``; ``fixed``, from ``fixed``.

    Under ``fresh`` every batch is new (an epoch of ``train_size / batch`` steps sees
    ``train_size`` new examples, as the paper's ``InfiniteDataset``) and the same on a rerun.
    """
    if config.data == "fresh":
        return task.sample(config.batch, generator(torch.device("cpu"), config.seed, "train", step))  # type: ignore[no-any-return]
    if fixed is None:
        raise ValueError("the fixed protocol draws its batches from the training set: pass fixed=(x_train, y_train)")
    index = batch_indices(config, step)
    return fixed[0][index], fixed[1][index]


def batch_indices(config: RunConfig, step: int) -> Tensor:
    """The examples of global batch ``step``: a fresh seeded permutation per epoch, last partial batch dropped."""
    return epoch_batch(config.train_size, config.batch, config.seed, step)


class Objective(ShardedObjective):
    """:class:`~markovcat.experiments.runner.ShardedObjective` of a matrix model and run (``model.loss`` per shard).

    ``forward(x, y, step)``: ``x, y`` the whole global batch; shard ``j``'s noise from the
    generator ``(seed, "noise", step, j)``; returns ``world_size / B * sum_j |shard j| *
    model.loss(shard j)`` over this process's shards.
    """

    def __init__(self, model: Any, config: RunConfig, world: World) -> None:
        check_shards(config.batch, config.shards, world)

        def loss(x: Tensor, y: Tensor, noise: torch.Generator) -> Tensor:
            return model.loss(x, y, generator=noise)  # type: ignore[no-any-return]

        super().__init__(loss, model.module, seed=config.seed, batch=config.batch, shards=config.shards, world=world)
        self._model = model
        self._config = config


@torch.no_grad()
def evaluate(model: Any, config: RunConfig, x: Tensor, y: Tensor, device: torch.device,
             label: tuple[Any, ...] = ("test",)) -> dict[str, float]:
    """Test relative squared error: mean and standard deviation over test examples (each the mean of the draws).

    The draws of chunk ``i`` come from the generator ``(seed, *label, i)``.
    """
    from markovcat.experiments.matrix.tasks import relative_squared_error

    errors = []
    for i, start in enumerate(range(0, x.shape[0], EVAL_CHUNK)):
        noise = generator(device, config.seed, *label, i)
        prediction = model.predict(x[start:start + EVAL_CHUNK], config.test_samples, generator=noise)
        error = relative_squared_error(prediction, y[start:start + EVAL_CHUNK])
        if error.shape != (prediction.shape[0],):
            raise ValueError(f"relative_squared_error returned shape {tuple(error.shape)}; expected one error per "
                             f"example ({prediction.shape[0]},)")
        errors.append(error.double())
    every = torch.cat(errors)
    if not bool(torch.isfinite(every).all()):
        raise FloatingPointError(f"{config.name}: non-finite test errors (diverged training?); try a smaller --lr")
    return {"test_rse_mean": float(every.mean()), "test_rse_std": float(every.std()), "test_examples": every.numel()}


def equivariance(model: Any, task: Any, x_test: Tensor, seed: int) -> dict[str, Any]:
    """The trained model's equivariance check on the first 8 test inputs (its verdict, statistic and what it proves).

    A float32 model that fails is checked again as a float64 copy (same parameters, same inputs,
    same seed), recorded under ``"float64"``: a failure that vanishes there is float32 rounding
    amplified by the model (e.g. a QR of an ill-conditioned matrix), one that stays is a violation
    of the construction.  The verdict ``"passed"`` stays the float32 one.
    """
    import copy

    from markovcat.backends.torch import check_equivariance

    def check(net: Any, inputs: Tensor) -> dict[str, Any]:
        with torch.no_grad():
            report = check_equivariance(net, task.group, task.input, task.output, inputs=inputs,
                                        seed=derived_seed(seed, "equivariance"))
        return {**report.summary(), "dtype": str(inputs.dtype).split(".")[-1]}

    result = check(model.model, x_test[:8])
    if not result["passed"] and x_test.dtype != torch.float64:
        result["float64"] = check(copy.deepcopy(model.model).double(), x_test[:8].double())
    return result


def _curve_point(model: Any, config: RunConfig, x: Tensor, y: Tensor, device: torch.device, step: int) -> float:
    """The mean test error on the first :data:`CURVE_EXAMPLES` test examples after ``step`` steps (a curve point)."""
    was_training = model.module.training
    model.module.eval()
    point = evaluate(model, config, x[:CURVE_EXAMPLES], y[:CURVE_EXAMPLES], device, ("curve", step))
    model.module.train(was_training)
    return point["test_rse_mean"]


def _finite_gradients(parameters: list[nn.Parameter]) -> bool:
    """Whether every gradient is finite (one reduction and one synchronisation)."""
    grads = [p.grad for p in parameters if p.grad is not None]
    return not grads or bool(torch.isfinite(torch.nn.utils.get_total_norm(grads)))


def train(config: RunConfig, *, world: World | None = None, out: Path | str = RESULTS,
          checkpoints: Path | str = CHECKPOINTS, checkpoint_every: int = CHECKPOINT_EVERY, progress: bool = True,
          compile: bool = False, on_step: Callable[[int], None] | None = None) -> dict[str, Any]:
    """Train, evaluate and record one run; returns its record (read from disk if the run was finished already).

    Resumes from ``checkpoints`` if a checkpoint of this configuration is there; deletes it once
    the record is written.  ``compile=True`` trains through ``torch.compile`` of the objective
    (same numbers up to rounding).  ``on_step(step)`` is called after each step (tests use it
    to interrupt a run).
    """
    from markovcat.experiments.matrix.methods import build
    from markovcat.experiments.matrix.tasks import make_task

    world = world or World()
    if checkpoint_every < 1:
        raise ValueError(f"checkpoint_every must be a positive number of steps, got {checkpoint_every}")
    path = record_path(config, out)
    if finished(config, out):
        return read_record(path)
    started = time.perf_counter()
    task = make_task(config.task, config.dim)
    model = build(config.method, task, config.method_config(), config.seed)
    module = model.module.to(world.device)
    optimizer = torch.optim.Adam(module.parameters(), lr=config.lr)
    fixed: tuple[Tensor, Tensor] | None = None
    if config.data == "fixed":
        x_train, y_train, x_test, y_test = datasets(task, config)
        fixed = (x_train.to(world.device), y_train.to(world.device))
    else:
        x_test, y_test = test_set(task, config)
    x_test, y_test = x_test.to(world.device), y_test.to(world.device)
    saved = checkpoint_path(config, checkpoints)
    curve: list[list[float]] = []
    step, skipped = 0, 0
    if saved.exists():
        step, skipped, curve = _load_checkpoint(saved, config, module, optimizer, world.device)
    parameters = [p for p in module.parameters() if p.requires_grad]
    objective = data_parallel(Objective(model, config, world), world)
    if compile:
        objective = torch.compile(objective)
    first, tail_from = step, max(config.steps - 100, 0)
    tail = torch.zeros((), dtype=torch.float64, device=world.device)
    tail_steps = 0
    module.train()
    train_started = time.perf_counter()
    with progress_bar(config.steps, step, progress and world.main, config.name) as bar:
        while step < config.steps:
            x, y = (t.to(world.device) for t in training_batch(task, config, step, fixed))
            loss = objective(x, y, step)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            if _finite_gradients(parameters):
                optimizer.step()
                if step >= tail_from:
                    tail += loss.detach().double()
                    tail_steps += 1
            else:
                skipped += 1
                if skipped > max(1, int(MAX_SKIPPED * config.steps)):
                    raise FloatingPointError(f"{config.name}: non-finite gradients at {skipped} steps (the last "
                                             f"at step {step}): more than {MAX_SKIPPED:.0%} of the run; the "
                                             f"training diverged; try a smaller --lr")
            step += 1
            bar.update(1)
            if step % 50 == 0 or step == config.steps:
                bar.set_postfix(loss=f"{loss.item():.4g}")
            if world.main and config.curve_every and step % config.curve_every == 0:
                curve.append([step, _curve_point(model, config, x_test, y_test, world.device, step)])
            if world.main and step % checkpoint_every == 0 and step < config.steps:
                _save_checkpoint(saved, config, module, optimizer, step, skipped, curve)
            if on_step is not None:
                on_step(step)
    train_seconds = time.perf_counter() - train_started
    if world.distributed:
        import torch.distributed as dist

        dist.all_reduce(tail)
        tail /= world.size  # every process skips the same steps (gradients are all-reduced first)
    record: dict[str, Any] = {}
    if world.main:
        module.eval()
        metrics = evaluate(model, config, x_test, y_test, world.device)
        metrics["train_loss_last"] = float(tail) / tail_steps if tail_steps > 0 else math.nan
        metrics["train_loss_last_steps"] = tail_steps
        record = {
            "version": RECORD_VERSION,
            "name": config.name,
            "config": config.as_dict(),
            "seed": config.seed,
            "git_revision": git_revision(),
            "torch": torch.__version__,
            "python": platform.python_version(),
            "device": str(world.device) if world.device.type != "cuda" else torch.cuda.get_device_name(world.device),
            "world_size": world.size,
            "threads": torch.get_num_threads(),
            "resumed_from_step": first,
            "skipped_steps": skipped,
            "steps_timed": config.steps - first,
            "train_seconds": round(train_seconds, 3),
            "steps_per_second": round((config.steps - first) / train_seconds, 3) if config.steps > first else None,
            "metrics": metrics,
            "curve": {"examples": min(CURVE_EXAMPLES, config.test_size), "points": curve},
            "parameters": fingerprint(module),
            "equivariance": equivariance(model, task, x_test, config.seed),
        }
        record["wall_seconds"] = round(time.perf_counter() - started, 3)
        RECORDS.write(config, record, out)
        saved.unlink(missing_ok=True)
    barrier(world)
    return record


def run(config: RunConfig, **options: Any) -> dict[str, Any]:
    """:func:`train` in the process group the environment describes (see :func:`world_from_environment`)."""
    device = options.pop("device", "auto")
    return train(config, world=world_from_environment(device), **options)


def main(argv: list[str] | None = None) -> int:
    """``python -m markovcat.experiments.matrix.train`` (or torchrun): ``markovcat experiment matrix`` 's options."""
    from markovcat.experiments.matrix.cli import add_matrix_arguments, run_matrix

    return runner.run_command("python -m markovcat.experiments.matrix.train", {
        None: ("One matrix experiment or the sweep; torchrun-ready.", add_matrix_arguments, run_matrix)}, argv)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
