"""What every experiment runner shares: seeds, processes, records on disk, progress bars, the sweep loop, figures.

An experiment (``markovcat.experiments.matrix``, ``markovcat.experiments.nbody``) defines its
configuration, its training loop and its record; this module holds the parts that are the same
for all of them, so that a run is seeded, resumed, recorded, swept and plotted one way:

* seeds: :func:`derived_seed` / :func:`generator`, one seed per labelled purpose;
* processes: :class:`World` and :func:`world_from_environment` (torchrun's process group: gloo
  on the CPU, NCCL on CUDA), :class:`ShardedObjective` (a global batch cut into seeded noise
  shards, shared out among the processes) and :func:`data_parallel` (its DDP wrapper);
* records: :class:`RecordStore` (one experiment's record and checkpoint paths, reading, the
  finished test, checkpoints), on :func:`atomic_write`, :func:`write_record`, :func:`read_record`,
  :func:`is_finished`; :func:`git_revision`, :func:`fingerprint` (of the trained parameters);
* batches: :func:`epoch_batch` (a fresh seeded permutation per epoch);
* :func:`progress` (a tqdm bar), :func:`run_pending` (the sweep loop: in this process or in
  spawned single-threaded processes, a diverged run reported and skipped);
* :func:`save_figure` (PNG, PDF and the Markdown table), :func:`add_plot_arguments` /
  :func:`run_plot` (the ``plot`` commands).
"""

from __future__ import annotations

import argparse
import dataclasses
import hashlib
import json
import math
import os
import subprocess
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor, as_completed
from contextlib import contextmanager
from dataclasses import dataclass, field
from multiprocessing import get_context
from pathlib import Path
from typing import Any, ClassVar

import torch
from torch import Tensor, nn

__all__ = ["RecordedConfig", "derived_seed", "generator", "World", "device_named", "world_from_environment",
           "world_for", "barrier", "all_true", "check_shards", "ShardedObjective", "data_parallel", "git_revision",
           "atomic_write", "write_record", "read_record", "is_finished", "load_records", "RecordStore", "fingerprint",
           "epoch_batch", "progress", "run_pending",
           "in_order", "save_figure", "add_plot_arguments", "run_plot", "Command", "run_command"]


# -- seeds ------------------------------------------------------------------------------------------------------------


def derived_seed(*parts: object) -> int:
    """A 63-bit seed from labelled parts, e.g. ``(seed, "noise", step, shard)``: the same parts, the same seed."""
    digest = hashlib.sha256("/".join(map(str, parts)).encode()).digest()
    return int.from_bytes(digest[:8], "little") >> 1


def generator(device: torch.device, *parts: object) -> torch.Generator:
    """A generator on ``device`` seeded by :func:`derived_seed` of ``parts``."""
    return torch.Generator(device=device).manual_seed(derived_seed(*parts))


class RecordedConfig:
    """``as_dict``, ``from_dict`` and ``key`` for a run configuration (a frozen dataclass) kept in records.

    ``key`` is a short hash of ``as_dict()``: two runs with the same key give the same numbers,
    and a record is "finished" for a configuration only if its ``config`` equals ``as_dict()``.
    A subclass whose fields do not survive JSON as they are overrides ``as_dict`` and
    :meth:`from_record_values`.  A field added after records were written goes in
    :attr:`LATER_FIELDS` with the value those records ran with: ``as_dict`` (and so ``key``)
    leaves it out at that value, so the older records keep their keys and stay finished.
    """

    #: Field name -> the value that records written before the field existed ran with.
    LATER_FIELDS: ClassVar[dict[str, Any]] = {}

    def as_dict(self) -> dict[str, Any]:
        data = dataclasses.asdict(self)  # type: ignore[call-overload]
        for name, before in self.LATER_FIELDS.items():
            if data[name] == before:
                del data[name]
        return data

    @classmethod
    def from_record_values(cls, values: dict[str, Any]) -> dict[str, Any]:
        """The constructor's arguments from a record's ``config`` (JSON values)."""
        return values

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Any:
        unknown = set(data) - {f.name for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
        if unknown:
            raise ValueError(f"unknown run configuration fields {sorted(unknown)}: the record was written by a "
                             f"different version; rerun it")
        return cls(**cls.from_record_values(dict(data)))

    @property
    def key(self) -> str:
        """A short hash of the whole configuration: two runs with the same key give the same numbers."""
        return hashlib.sha256(json.dumps(self.as_dict(), sort_keys=True).encode()).hexdigest()[:10]


# -- processes --------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class World:
    """This process's place among the training processes: ``rank`` of ``size``, on ``device``."""

    rank: int = 0
    size: int = 1
    device: torch.device = field(default_factory=lambda: torch.device("cpu"))

    @property
    def main(self) -> bool:
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.size > 1


def device_named(name: str) -> torch.device:
    """``"auto"`` (CUDA if torch sees it, else the CPU), ``"cpu"`` or ``"cuda[:i]"`` (refused without CUDA)."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    device = torch.device(name)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise RuntimeError("--device cuda was asked for, but torch sees no CUDA device; use --device cpu")
    return device


def world_from_environment(device: str = "auto") -> World:
    """The process group torchrun describes (``WORLD_SIZE``, ``RANK``, ``LOCAL_RANK``), joined; else one process.

    gloo on the CPU, NCCL on CUDA (one device per process: ``cuda:LOCAL_RANK``).
    """
    import torch.distributed as dist

    size = int(os.environ.get("WORLD_SIZE", "1"))
    dev = device_named(device)
    if size <= 1:
        return World(0, 1, dev)
    if dev.type == "cuda":
        dev = torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")))
        torch.cuda.set_device(dev)
    if not dist.is_initialized():
        dist.init_process_group(backend="nccl" if dev.type == "cuda" else "gloo")
    return World(dist.get_rank(), dist.get_world_size(), dev)


def world_for(world: World | None, device: torch.device | str | None) -> World:
    """``world``, or one process on ``device`` (the CPU if ``None``); both given must agree on the device."""
    if world is None:
        return World(device=torch.device("cpu" if device is None else device))
    if device is not None and torch.device(device) != world.device:
        raise ValueError(f"train got device {device} and a world on {world.device}: pass one of them")
    return world


def barrier(world: World) -> None:
    """Wait for every process of ``world`` (nothing to wait for in one process)."""
    if world.distributed:
        import torch.distributed as dist

        dist.barrier()


def all_true(flag: bool, world: World) -> bool:
    """Whether ``flag`` holds on every process of ``world`` (one all-reduce; in one process, ``flag``)."""
    if not world.distributed:
        return flag
    import torch.distributed as dist

    value = torch.tensor([1 if flag else 0], dtype=torch.int32, device=world.device)
    dist.all_reduce(value, op=dist.ReduceOp.MIN)
    return bool(value.item())


def check_shards(batch: int, shards: int, world: World) -> None:
    """Refuse a batch that ``shards`` does not divide, and a number of processes that does not divide ``shards``."""
    if shards < 1 or batch % shards:
        raise ValueError(f"the batch ({batch}) must be a positive multiple of shards ({shards}): each global "
                         f"batch is cut into equal shards")
    if shards % world.size:
        raise ValueError(f"{world.size} processes cannot share {shards} noise shards: use --shards a multiple of "
                         f"the number of processes (the numbers depend on --shards, not on the number of "
                         f"processes)")


#: ``loss(x, y, generator) -> Tensor``: the mean loss of one shard, its noise drawn from ``generator``.
ShardLoss = Callable[[Tensor, Tensor, torch.Generator], Tensor]


class ShardedObjective(nn.Module):
    """The loss of this process's shards of one global batch, normalised so DDP's average is the global mean.

    The global batch of ``batch`` examples is cut into ``shards`` equal shards; shard ``j`` of step
    ``t`` draws its noise from the generator ``(seed, "noise", t, j)``; the process of rank ``r``
    among ``N`` takes shards ``r k, ..., r k + k - 1`` (``k = shards / N``).  ``forward(x, y, step)``
    (``x, y`` the whole global batch, which every process holds) returns
    ``N / batch * sum_j |shard j| * loss(shard j)``: DDP averages the gradients over the processes,
    so the update is the gradient of the mean loss over the global batch, whatever ``N`` divides
    ``shards``; the numbers depend on ``shards``, not on ``N``.  One shard (so one process) returns
    ``loss`` of the whole batch itself (the factor ``batch / batch`` is exactly 1).

    ``index_single_shard=False`` drops the shard index from the label of a 1-shard run, i.e.
    ``(seed, "noise", t)``: the labels of runners that drew one generator per step before they
    had shards (their records stay reproducible).  ``net`` (the trained module) is registered as
    a submodule, so wrapping this in DDP (:func:`data_parallel`) synchronises exactly its
    parameters.  Proves nothing about the loss itself: it only decides who computes which part.
    """

    def __init__(self, loss: ShardLoss, net: nn.Module, *, seed: int, batch: int, shards: int, world: World,
                 index_single_shard: bool = True) -> None:
        super().__init__()
        check_shards(batch, shards, world)
        self.net = net
        self._loss = loss
        self._seed, self._batch, self._shards = seed, batch, shards
        self._world = world
        self._index_single_shard = index_single_shard

    def noise(self, step: int, shard: int) -> torch.Generator:
        """The generator of shard ``shard`` at step ``step`` (on this process's device)."""
        if self._shards == 1 and not self._index_single_shard:
            return generator(self._world.device, self._seed, "noise", step)
        return generator(self._world.device, self._seed, "noise", step, shard)

    def local_shards(self) -> range:
        """The shards this process computes."""
        per_rank = self._shards // self._world.size
        return range(self._world.rank * per_rank, (self._world.rank + 1) * per_rank)

    def forward(self, x: Tensor, y: Tensor, step: int) -> Tensor:
        if self._shards == 1:
            return self._loss(x, y, self.noise(step, 0))
        size = self._batch // self._shards
        total: Tensor | None = None
        for j in self.local_shards():
            loss = self._loss(x[j * size:(j + 1) * size], y[j * size:(j + 1) * size], self.noise(step, j)) * size
            total = loss if total is None else total + loss
        assert total is not None
        return total * (self._world.size / self._batch)


def data_parallel(objective: nn.Module, world: World) -> nn.Module:
    """``objective`` in :class:`~torch.nn.parallel.DistributedDataParallel` when ``world`` has many processes."""
    if not world.distributed:
        return objective
    from torch.nn.parallel import DistributedDataParallel

    return DistributedDataParallel(objective, device_ids=[world.device] if world.device.type == "cuda" else None)


# -- records ----------------------------------------------------------------------------------------------------------


def git_revision() -> str:
    """``git rev-parse HEAD`` of the source tree this module is in, or ``"unknown"`` (not a checkout, no git)."""
    try:
        result = subprocess.run(["git", "rev-parse", "HEAD"], cwd=Path(__file__).resolve().parent, capture_output=True,
                                text=True, timeout=10, check=False)
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    revision = result.stdout.strip()
    return revision if result.returncode == 0 and revision else "unknown"


def atomic_write(path: Path, write: Callable[[Path], object]) -> None:
    """``write(partial)`` then rename onto ``path``: an interrupted write never leaves a half file at ``path``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(path.name + ".partial")
    write(partial)
    os.replace(partial, path)


def write_record(path: Path, record: dict[str, Any]) -> None:
    """The record as indented JSON with sorted keys (small diffs between reruns), written atomically."""
    atomic_write(path, lambda p: p.write_text(json.dumps(record, indent=1, sort_keys=True) + "\n"))


def read_record(path: Path | str, required: Sequence[str], kind: str) -> dict[str, Any]:
    """A JSON record, checked to have the ``required`` fields (``kind`` names the experiment in the error)."""
    path = Path(path)
    try:
        record = json.loads(path.read_text())
    except json.JSONDecodeError as error:
        raise ValueError(f"{path} is not a valid JSON record ({error}); delete it to rerun that run") from None
    for key in required:
        if key not in record:
            raise ValueError(f"{path} has no {key!r}: not {kind} record; delete it to rerun that run")
    return record


def is_finished(path: Path, config: dict[str, Any], read: Callable[[Path], dict[str, Any]]) -> bool:
    """Whether ``path`` holds the record of a run with exactly this configuration."""
    return path.exists() and read(path)["config"] == config


def load_records(records: Path | str, read: Callable[[Path], dict[str, Any]], experiment: str,
                 steps: int | None = None) -> list[dict[str, Any]]:
    """The records in a folder (``*.json``, read by ``read``), all of one step budget (``steps``, or the only one)."""
    from collections import Counter

    folder = Path(records)
    if not folder.is_dir():
        raise ValueError(f"no records folder {folder}: run `markovcat experiment {experiment} ...` first, or pass "
                         f"--records")
    found = [read(p) for p in sorted(folder.glob("*.json"))]
    if steps is not None:
        found = [r for r in found if r["config"]["steps"] == steps]
    if not found:
        raise ValueError(f"no records{'' if steps is None else f' of {steps} steps'} in {folder}")
    budgets = Counter(r["config"]["steps"] for r in found)
    if len(budgets) > 1:
        raise ValueError(f"{folder} mixes step budgets {dict(budgets)} (budget: runs); choose one with --steps")
    return found


@dataclass(frozen=True)
class RecordStore:
    """One experiment's records, ``<results>/<config.name>.json``, and checkpoints, ``<checkpoints>/<config.name>.pt``.

    ``kind`` names the experiment in errors ("an N-body"); ``required`` lists the fields every
    record has (a file without them is refused, not half-read).  Every method that takes a
    folder defaults to the store's own.  A record is *finished* for a configuration when its
    ``config`` equals ``config.as_dict()``; a checkpoint belongs to the configuration it was
    saved with, and loading it for another is refused.
    """

    kind: str
    required: tuple[str, ...]
    results: Path
    checkpoints: Path

    def path(self, config: Any, out: Path | str | None = None) -> Path:
        """Where the record of ``config`` is (or will be)."""
        return Path(self.results if out is None else out) / f"{config.name}.json"

    def read(self, path: Path | str) -> dict[str, Any]:
        """A record, checked to have the :attr:`required` fields."""
        return read_record(path, self.required, self.kind)

    def finished(self, config: Any, out: Path | str | None = None) -> bool:
        """Whether ``out`` holds the record of a run with exactly this configuration."""
        return is_finished(self.path(config, out), config.as_dict(), self.read)

    def write(self, config: Any, record: dict[str, Any], out: Path | str | None = None) -> Path:
        """Write ``record`` as the record of ``config`` (atomically); returns its path."""
        path = self.path(config, out)
        write_record(path, record)
        return path

    def checkpoint_path(self, config: Any, checkpoints: Path | str | None = None) -> Path:
        """Where the checkpoint of an unfinished run of ``config`` is kept."""
        return Path(self.checkpoints if checkpoints is None else checkpoints) / f"{config.name}.pt"

    @staticmethod
    def save_checkpoint(path: Path, state: dict[str, Any]) -> None:
        """``torch.save(state)`` atomically; ``state`` holds the run's ``config`` (checked on loading)."""
        atomic_write(path, lambda p: torch.save(state, p))

    @staticmethod
    def load_checkpoint(path: Path, config: Any, device: torch.device | str) -> dict[str, Any]:
        """The checkpoint at ``path``, refused unless it was saved for exactly ``config``.

        Loaded with ``weights_only=False``: a checkpoint holds the run's own state (optimizer,
        generator states, curves), written by this runner, not a file from elsewhere.
        """
        state: dict[str, Any] = torch.load(path, map_location=device, weights_only=False)
        if state.get("config") != config.as_dict():
            raise ValueError(f"checkpoint {path} belongs to another configuration; delete it to start this run "
                             f"afresh")
        return state


def fingerprint(module: nn.Module) -> dict[str, float | int]:
    """A summary of the trained parameters (count, sum, sum of squares, in float64) that two equal runs share."""
    flat = torch.cat([p.detach().double().flatten().cpu() for p in module.parameters()])
    return {"count": flat.numel(), "sum": float(flat.sum()), "sum_of_squares": float(flat.square().sum())}


def epoch_batch(size: int, batch: int, seed: int, step: int) -> Tensor:
    """The examples of batch ``step`` of ``size``: a fresh permutation per epoch (seeded by ``(seed, "order",
    epoch)``, drawn on the CPU, so the same on any device), the last partial batch dropped."""
    per_epoch = size // batch
    epoch, position = divmod(step, per_epoch)
    order = torch.randperm(size, generator=generator(torch.device("cpu"), seed, "order", epoch))
    return order[position * batch:(position + 1) * batch]


@contextmanager
def progress(total: int, initial: int, enabled: bool, label: str) -> Iterator[Any]:
    """A tqdm bar over training steps (disabled: a bar that prints nothing)."""
    from tqdm.auto import tqdm

    bar = tqdm(total=total, initial=initial, disable=not enabled, desc=label, leave=False, dynamic_ncols=True)
    try:
        yield bar
    finally:
        bar.close()


# -- the sweep loop ---------------------------------------------------------------------------------------------------


def run_pending(pending: Sequence[Any], *, here: Callable[[Any], dict[str, Any]],
                elsewhere: Callable[[Any], tuple[str, dict[str, Any]]], jobs: int, say: Callable[[str], None],
                summary: Callable[[dict[str, Any]], str]) -> list[str]:
    """Run every configuration of ``pending`` (each has a ``name``); return the names of those that diverged.

    ``jobs == 1``: ``here(config)`` in this process.  Otherwise ``jobs`` spawned processes run
    ``elsewhere(config) -> (name, record)`` (a picklable function, e.g. a ``functools.partial``
    of a module-level one).  After each run one line is said: its ``summary`` (or ``FAILED`` for a
    run that raised :class:`FloatingPointError`: it wrote no record, and the loop goes on), with
    the time so far and an estimate of the time left.  Any other error stops the loop.
    """
    started, done, failed = time.perf_counter(), 0, []

    def report(name: str, what: str) -> None:
        nonlocal done
        done += 1
        elapsed = time.perf_counter() - started
        left = elapsed / done * (len(pending) - done)
        say(f"[{done}/{len(pending)}] {name}: {what}; elapsed {elapsed / 60:.1f} min, about {left / 60:.1f} min left")

    def fail(name: str, error: BaseException) -> None:
        failed.append(name)
        report(name, f"FAILED, no record written ({type(error).__name__}: {error})")

    if jobs == 1:
        for config in pending:
            try:
                record = here(config)
            except FloatingPointError as error:  # a diverged run is a result to report, not a reason to stop
                fail(config.name, error)
            else:
                report(config.name, summary(record))
    else:
        with ProcessPoolExecutor(jobs, mp_context=get_context("spawn")) as pool:
            futures = {pool.submit(elsewhere, config): config for config in pending}
            for future in as_completed(futures):
                try:
                    name, record = future.result()
                except FloatingPointError as error:
                    fail(futures[future].name, error)
                else:
                    report(name, summary(record))
    if failed:
        say(f"sweep: {len(failed)} run(s) failed and have no record: {', '.join(failed)}")
    return failed


# -- figures and the plot commands ------------------------------------------------------------------------------------


def in_order(name: str, order: Sequence[str]) -> tuple[int, str]:
    """A sort key: ``name``'s place in ``order``, names not in it after, alphabetically."""
    return (order.index(name) if name in order else len(order), name)


def smallest_text_px(figure: Any, dpi: float) -> float:
    """The height in pixels, at ``dpi``, of the smallest visible text of a Matplotlib ``figure`` (its font size)."""
    from matplotlib.text import Text

    sizes = [t.get_fontsize() for t in figure.findobj(Text) if t.get_visible() and t.get_text().strip()]
    return min(sizes) * dpi / 72 if sizes else math.nan


def save_figure(figure: Any, out: Path | str, table: str) -> list[Path]:
    """Write ``out.png`` and ``out.pdf`` (``figure``, then closed) and ``out.md`` (``table``); return the paths.

    The PNG records the size of its smallest text in its ``smallest text px`` metadata (pixels of
    the PNG), which ``docs/browser_check.py`` scales to the width the site shows it at.
    """
    import matplotlib.pyplot as plt

    base = Path(out)
    base.parent.mkdir(parents=True, exist_ok=True)
    written = []
    dpi = 150
    for suffix in (".png", ".pdf"):
        path = base.with_suffix(suffix)
        metadata = ({"CreationDate": None} if suffix == ".pdf" else
                    {"smallest text px": f"{smallest_text_px(figure, dpi):.1f}"})
        figure.savefig(path, dpi=dpi, metadata=metadata)
        written.append(path)
    plt.close(figure)
    path = base.with_suffix(".md")
    path.write_text(table)
    written.append(path)
    return written


def add_plot_arguments(parser: argparse.ArgumentParser, records: Path, figure: str,
                       steps: Callable[[str], int]) -> None:
    """``--records``, ``--out`` and ``--steps`` of a plot command (``steps`` parses a whole number)."""
    parser.add_argument("--records", type=Path, default=records, help="records folder (default: %(default)s)")
    parser.add_argument("--out", type=Path, default=None,
                        help=f"figure path without suffix (default: <records>/{figure}); writes .png, .pdf and .md")
    parser.add_argument("--steps", type=steps, default=None,
                        help="use only records of this step budget (needed when the folder mixes budgets)")


def run_plot(args: argparse.Namespace, parser: argparse.ArgumentParser, figure: str,
             plot: Callable[..., list[Path]]) -> int:
    """Call ``plot(records, out, steps=...)`` with :func:`add_plot_arguments` ' options; print what it wrote."""
    out = args.out if args.out is not None else args.records / figure
    try:
        written = plot(args.records, out, steps=args.steps)
    except ValueError as error:
        parser.error(str(error))
    for path in written:
        print(f"wrote {path}")
    return 0


#: A command line: ``(description, add_arguments(parser), run(args, parser) -> exit status)``.
Command = tuple[str, Callable[[argparse.ArgumentParser], None], Callable[[argparse.Namespace, argparse.ArgumentParser],
                                                                         int]]


def run_command(prog: str, commands: dict[str | None, Command], argv: Sequence[str] | None = None) -> int:
    """``python -m <prog> [word] ...``: the command named by the first argument if ``commands`` has it, else ``None``'s.

    Each command gets its own parser (``prog`` and the word as its name, its description and
    options), so ``--help`` and errors speak of that command alone.
    """
    import sys

    words = list(sys.argv[1:] if argv is None else argv)
    word = words[0] if words and words[0] in commands else None
    description, add, run = commands[word]
    parser = argparse.ArgumentParser(prog=prog if word is None else f"{prog} {word}", description=description)
    add(parser)
    return run(parser.parse_args(words if word is None else words[1:]), parser)
