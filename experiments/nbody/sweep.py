"""The N-body sweep: every contender x seed, skipping finished runs and resuming interrupted ones.

The CPU configuration (``markovcat experiment nbody --all --jobs 2``): the runnable contenders of
:data:`~markovcat.experiments.nbody.models.METHODS` x seeds {0, 1, 2}, :data:`CPU_STEPS` steps
each, two single-threaded runs side by side; see :data:`CPU_STEPS` for the measurement behind it.

The GPU recipe for the published budget (EGNN paper: 10,000 epochs of 3,000 systems, batch 100):
``markovcat experiment nbody --all --steps 300000 --eval-every 3000 --device cuda``; on several
GPUs, ``torchrun --standalone --nproc_per_node=N -m markovcat.experiments.nbody.train --all
--shards N ...``, the runs then one after another, each over all processes.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Sequence
from functools import partial
from pathlib import Path
from typing import Any

from markovcat.experiments.nbody.models import METHODS, available
from markovcat.experiments.nbody.train import RESULTS, NBodyConfig, finished, read_record, record_path, train
from markovcat.experiments.runner import World, run_pending

__all__ = ["CPU_STEPS", "CPU_SEEDS", "PAPER_STEPS", "plan", "sweep", "budget"]

#: Steps per run of the CPU sweep (batch 100: 150 epochs of the 3,000 training systems).  From the
#: one-thread training speeds (thread CPU time) measured by ``benchmarks/nbody.py --speeds`` on the
#: 2-core development machine (``benchmarks/results/nbody_speeds.md``) and :func:`budget` (10 runnable
#: contenders x 3 seeds, two single-threaded jobs, 90 minutes, 60 s per run besides training): two
#: measurements gave 4782 and 5089 steps.  The three slowest contenders (egnn, fa, fa-peer: about 6
#: steps/s) take half the time; 4500 leaves room for the pool's tail (one long run finishing alone).
#: On a machine shared with other work, wall-clock time grows with the load.
CPU_STEPS = 4500
CPU_SEEDS = (0, 1, 2)
#: The EGNN paper's budget: 10,000 epochs of 30 batches.
PAPER_STEPS = 300_000


def plan(methods: Sequence[str] | None = None, seeds: Sequence[int] = CPU_SEEDS, steps: int = CPU_STEPS,
         **defaults: Any) -> list[NBodyConfig]:
    """The runs of a sweep, by seed then method; unknown methods raise, unrunnable peers are left out (see skipped)."""
    methods = tuple(methods) if methods else METHODS
    unknown = [m for m in methods if m not in METHODS]
    if unknown:
        raise ValueError(f"unknown method(s) {unknown}; choose from {list(METHODS)}")
    return [NBodyConfig(method=m, seed=s, steps=steps, **defaults) for s in seeds for m in methods]


def _one(config: NBodyConfig, options: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    """One run in a spawned process: ``threads`` (default 1) torch threads, then :func:`train`."""
    import torch

    options = dict(options)
    torch.set_num_threads(options.pop("threads", 1))
    return config.name, train(config, **options)


def _summary(record: dict[str, Any]) -> str:
    metrics, check = record["metrics"], record["equivariance"]
    verdict = "/".join(f"{group} {'passed' if c['passed'] else 'FAILED'}" for group, c in check.items())
    speed = record.get("steps_per_second")
    return (f"test MSE {metrics['test_mse']:.4g} (valid {metrics['valid_mse']:.4g}, best step "
            f"{metrics['best_step']}), {verdict}, {f'{speed:.1f} steps/s' if speed else 'no steps'}, "
            f"{record['wall_seconds']:.0f} s")


def sweep(configs: Sequence[NBodyConfig], *, out: Path | str = RESULTS, jobs: int = 1, world: World | None = None,
          say: Callable[[str], None] = print, **options: Any) -> list[dict[str, Any]]:
    """Run every runnable configuration not finished yet (``jobs`` processes side by side); return all records.

    A contender whose peer library cannot run here is reported and skipped; a run that diverges
    is reported, writes no record, and the sweep goes on.  ``options`` go to
    :func:`~markovcat.experiments.nbody.train.train`.  Under torchrun (``world`` distributed) the
    runs go one after another, each over all processes (``jobs`` must then be 1); only rank 0
    speaks and returns the records.
    """
    world = world or World()
    if jobs < 1:
        raise ValueError(f"jobs must be a positive number of processes, got {jobs}")
    if jobs > 1 and world.distributed:
        raise ValueError("--jobs runs several single-process runs side by side; under torchrun each run already "
                         "uses every process: use --jobs 1")
    tell = say if world.main else (lambda line: None)
    reasons = {m: available(m) for m in {c.method for c in configs}}
    for method, why in sorted(reasons.items()):
        if why is not None:
            tell(f"sweep: skipping {method}: {why}")
    runnable = [c for c in configs if reasons[c.method] is None]
    pending = [c for c in runnable if not finished(c, out)]
    tell(f"sweep: {len(runnable)} runs, {len(runnable) - len(pending)} finished already, {len(pending)} to run "
         f"(records in {out})")
    run_pending(pending, here=lambda config: train(config, out=out, world=world, **options),
                elsewhere=partial(_one, options=dict(options, out=out, progress=False, device=world.device)),
                jobs=jobs, say=tell, summary=_summary if world.main else lambda record: "")  # other ranks: no record
    return [read_record(record_path(c, out)) for c in runnable if finished(c, out)] if world.main else []


def budget(steps_per_second: dict[str, float], seeds: int, cores: int, minutes: float,
           overhead_seconds: float) -> int:
    """The step budget so that every method x ``seeds`` runs fill ``minutes`` on ``cores`` single-threaded workers.

    ``steps_per_second[method]`` is one thread's training speed, ``overhead_seconds`` the per-run
    cost besides training steps (data loading, validation curve, test, equivariance checks).
    Solves ``sum over runs (steps / speed + overhead) = minutes * 60 * cores`` for ``steps``.
    """
    seconds_per_step = sum(seeds / s for s in steps_per_second.values())
    runs = seeds * len(steps_per_second)
    return max(int((minutes * 60 * cores - runs * overhead_seconds) / seconds_per_step), 0)


if __name__ == "__main__":  # pragma: no cover
    from markovcat.experiments.nbody.cli import main

    sys.exit(main(["--all", *sys.argv[1:]]))
