"""The sweep: every task x method x d x seed, skipping finished runs and resuming interrupted ones.

The CPU configuration (``markovcat experiment matrix --all``): the five tasks (cov, linreg, expm,
inv, inv1) x the six methods (the two EMLP methods on the one-group tasks only) x d in {4, 8} x
seeds {0, 1, 2} = 168 runs of :data:`CPU_STEPS` steps each, under the paper's data protocol
(fresh batches).  That is many CPU-hours (a plain-torch 10,000-step haar or recursive run at
d = 4 takes 5 to 6.5 minutes on one thread; an EMLP method about ten times as long): the sweep
runs seed by seed, d by d, skips finished runs and resumes interrupted ones, so it can be
spread over several sittings.  Each run is one single-threaded process's work, so its numbers
do not depend on ``--jobs``.

The 2,500-step sweep on one fixed training set (``data="fixed"``), with ``scalars`` under its
earlier name ``kim``, is kept in ``experiments/results/matrix-fixed``.

The paper's configuration (a GPU recipe, see ``experiments/results/README.md``): d in
{4, 8, 16, 32} and the paper's step budget (:data:`PAPER_STEPS`), e.g.
``markovcat experiment matrix --all --dims 4 8 16 32 --steps 100000 --device cuda``.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Sequence
from functools import partial
from pathlib import Path
from typing import Any

from markovcat.experiments.matrix.train import RESULTS, RunConfig, World, finished, read_record, record_path, train
from markovcat.experiments.runner import run_pending

__all__ = ["CPU_STEPS", "FIXED_STEPS", "CPU_DIMS", "CPU_SEEDS", "PAPER_STEPS", "PAPER_DIMS", "plan", "sweep",
           "budget", "applies"]

#: Steps per run of the CPU sweep: 10% of the paper's budget (100 epochs of 100 fresh batches).
CPU_STEPS = 10_000
#: Steps of the earlier sweep on a fixed training set (``experiments/results/matrix-fixed``).
FIXED_STEPS = 2500
#: Steps per run in the paper's code (``stoch_sym/config.py``: 1,000 epochs of 10,000 / 100 = 100 steps).
PAPER_STEPS = 100_000
PAPER_DIMS = (4, 8, 16, 32)
CPU_DIMS = (4, 8)
CPU_SEEDS = (0, 1, 2)


def _names() -> tuple[tuple[str, ...], tuple[str, ...]]:
    from markovcat.experiments.matrix.methods import METHODS
    from markovcat.experiments.matrix.tasks import TASKS

    return tuple(TASKS), tuple(METHODS)


def plan(tasks: Sequence[str] | None = None, methods: Sequence[str] | None = None, dims: Sequence[int] = CPU_DIMS,
         seeds: Sequence[int] = CPU_SEEDS, steps: int = CPU_STEPS, **defaults: Any) -> list[RunConfig]:
    """The runs of a sweep, in the order they are run: by seed, then d, task and method (early seeds first).

    Pairs where the method has no setting for the task (:func:`applies`: the EMLP methods on the
    two-sided ``inv``) are left out.
    """
    all_tasks, all_methods = _names()
    tasks = tuple(tasks) if tasks else all_tasks
    methods = tuple(methods) if methods else all_methods
    for kind, asked, known in (("task", tasks, all_tasks), ("method", methods, all_methods)):
        unknown = [name for name in asked if name not in known]
        if unknown:
            raise ValueError(f"unknown {kind}(s) {unknown}; choose from {list(known)}")
    return [RunConfig(task=t, method=m, dim=d, seed=s, steps=steps, **defaults)
            for s in seeds for d in dims for t in tasks for m in methods if applies(m, t)]


def applies(method: str, task: str) -> bool:
    """Whether ``method`` has a setting for ``task`` (the EMLP methods need a one-group task)."""
    from markovcat.experiments.matrix.emlp_models import EMLP_TASKS
    from markovcat.experiments.matrix.methods import EMLP_METHODS

    return method not in EMLP_METHODS or task in EMLP_TASKS


def _one(config: RunConfig, options: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    """One run in a spawned process: ``threads`` (default 1) torch threads, on ``device``, then :func:`train`."""
    import torch

    options = dict(options)
    torch.set_num_threads(options.pop("threads", 1))
    device = torch.device(options.pop("device", "cpu"))
    return config.name, train(config, world=World(device=device), **options)


def _summary(record: dict[str, Any]) -> str:
    metrics, check = record["metrics"], record["equivariance"]
    speed = record.get("steps_per_second")
    return (f"test RSE {metrics['test_rse_mean']:.4g} ± {metrics['test_rse_std']:.3g}, equivariance "
            f"{'passed' if check['passed'] else 'FAILED'} ({check['method']}), "
            f"{f'{speed:.1f} steps/s' if speed else 'no steps'}, {record['wall_seconds']:.0f} s")


def sweep(configs: Sequence[RunConfig], *, out: Path | str = RESULTS, jobs: int = 1, world: World | None = None,
          say: Callable[[str], None] = print, **options: Any) -> list[dict[str, Any]]:
    """Run every configuration not finished yet (``jobs`` single-threaded processes side by side); return all records.

    ``options`` go to :func:`~markovcat.experiments.matrix.train.train` (checkpoints, progress,
    ...).  Under torchrun (``world`` distributed) the runs go one after another, each over all
    processes; ``jobs`` must then be 1.
    """
    world = world or World()
    if jobs < 1:
        raise ValueError(f"jobs must be a positive number of processes, got {jobs}")
    if jobs > 1 and world.distributed:
        raise ValueError("--jobs runs several single-process runs side by side; under torchrun each run already "
                         "uses every process: use --jobs 1")
    pending = [c for c in configs if not finished(c, out)]
    if world.main:
        say(f"sweep: {len(configs)} runs, {len(configs) - len(pending)} finished already, {len(pending)} to run "
            f"(records in {out})")
    run_pending(pending, here=lambda config: train(config, out=out, world=world, **options),
                elsewhere=partial(_one, options=dict(options, out=out, progress=False, device=str(world.device))),
                jobs=jobs,
                say=say if world.main else lambda line: None,
                summary=_summary if world.main else lambda record: "")  # other ranks get no record
    return [read_record(record_path(c, out)) for c in configs if finished(c, out)] if world.main else []


def budget(steps_per_second: dict[tuple[str, int], float], runs_per_method_and_dim: int, cores: int,
           minutes: float, overhead_seconds: float) -> int:
    """The step budget so that the sweep's runs fill ``minutes`` on ``cores`` single-threaded workers.

    ``steps_per_second[(method, d)]`` is one thread's training speed (averaged over the tasks);
    ``runs_per_method_and_dim`` the runs of each (tasks x seeds); ``overhead_seconds`` the per-run
    cost besides training (data, evaluation, equivariance check).  Solves
    ``sum over runs (steps / speed + overhead) = minutes * 60 * cores`` for ``steps``.
    """
    seconds_per_step = sum(runs_per_method_and_dim / s for s in steps_per_second.values())
    runs = runs_per_method_and_dim * len(steps_per_second)
    return max(int((minutes * 60 * cores - runs * overhead_seconds) / seconds_per_step), 0)


if __name__ == "__main__":  # pragma: no cover
    from markovcat.experiments.matrix.train import main

    sys.exit(main(["--all", *sys.argv[1:]]))
