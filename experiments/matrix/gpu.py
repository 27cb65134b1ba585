"""The paper's matrix configuration on one GPU within a wall-clock budget: calibrate, choose what fits, run.

``experiments/matrix/gpu.sh`` calls this.  The models are small and leave a GPU idle when run
one at a time, so ``--jobs`` single-run processes share the GPU.  Three phases, all written to
``--out``:

1. **Calibrate**: every (method, d) trains ``--calibration-steps`` steps on ``cov`` with all
   ``--jobs`` processes busy, as in the real run; each record's ``steps_per_second`` is the
   measured rate under that load (``calibration/``).
2. **Choose**: the runs of the paper's grid (d in ``--dims``, the paper's 100,000 steps or
   ``--steps``), in the sweep's order (seed, then d, task and method), are taken while their
   estimated time (steps / measured rate, plus the measured per-run overhead), spread over
   ``--jobs`` processes, fits what is left of ``--budget`` seconds.  ``plan.json`` lists them
   and the rates behind the choice.
3. **Run**: the chosen runs, through the sweep (records in ``records/``, checkpoints of
   unfinished runs in ``checkpoints/``, so a later call resumes them: pass the same ``--out``).

A run that does not finish in time is stopped with the rest (by ``gpu.sh``'s ``timeout``);
records already written stay.  ``--tiny`` shrinks the networks and data for a dry run of the
same path on the CPU (the test suite runs it).
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from markovcat.experiments.matrix.sweep import PAPER_DIMS, PAPER_STEPS, plan, sweep
from markovcat.experiments.matrix.train import RunConfig, World

__all__ = ["TINY", "calibrate", "choose", "main"]

#: Settings of the ``--tiny`` dry run.
TINY: dict[str, Any] = dict(test_size=20, batch=20, train_samples=2, test_samples=3, backbone_hidden=(8,),
                            gamma_hidden=(8,), curve_every=2)
#: The tasks of the paper's figure, and ``inv1`` for the two EMLP methods.
GPU_TASKS: tuple[str, ...] = ("cov", "linreg", "expm", "inv", "inv1")


def _methods(with_emlp: bool) -> tuple[str, ...]:
    from markovcat.experiments.matrix.methods import EMLP_METHODS, METHODS

    return tuple(m for m in METHODS if with_emlp or m not in EMLP_METHODS)


def _emlp_installed() -> bool:
    try:
        import emlp  # noqa: F401
    except ImportError:
        return False
    return True


def calibrate(methods: Sequence[str], dims: Sequence[int], steps: int, out: Path, jobs: int, device: str,
              **settings: Any) -> dict[tuple[str, int], dict[str, float]]:
    """Measured ``{(method, d): {"steps_per_second", "overhead_seconds"}}``: short ``cov`` runs, ``jobs`` at once."""
    settings = dict(settings, curve_every=0, test_size=min(int(settings.get("test_size", 100)), 100))
    configs = [RunConfig(task="cov", method=m, dim=d, seed=0, steps=steps, **settings) for d in dims for m in methods]
    records = sweep(configs, out=out, jobs=jobs, world=World(device=_device(device)), checkpoints=out / "checkpoints",
                    progress=False)
    rates = {}
    for record in records:
        c = record["config"]
        speed = record.get("steps_per_second") or math.nan
        rates[(c["method"], c["dim"])] = {"steps_per_second": float(speed),
                                          "overhead_seconds": float(record["wall_seconds"] - record["train_seconds"])}
    return rates


def choose(configs: Sequence[RunConfig], rates: dict[tuple[str, int], dict[str, float]], seconds: float,
           jobs: int) -> list[RunConfig]:
    """The longest prefix of ``configs`` whose estimated time fits ``seconds`` on ``jobs`` processes.

    A run's estimate: steps / measured rate + measured overhead.  It fits when the total over
    the prefix is at most ``jobs * seconds`` and no single run exceeds ``seconds``.
    """
    chosen, total = [], 0.0
    for config in configs:
        rate = rates.get((config.method, config.dim))
        if rate is None or not rate["steps_per_second"] > 0:
            break
        estimate = config.steps / rate["steps_per_second"] + rate["overhead_seconds"]
        if estimate > seconds or total + estimate > jobs * seconds:
            break
        chosen.append(config)
        total += estimate
    return chosen


def _device(name: str) -> Any:
    import torch

    return torch.device(name)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m markovcat.experiments.matrix.gpu", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=Path("experiments/results/matrix-gpu"))
    parser.add_argument("--budget", type=float, default=540.0, help="seconds for all three phases (default: 540)")
    parser.add_argument("--jobs", type=int, default=12, help="single-run processes sharing the GPU (default: 12)")
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--steps", type=int, default=PAPER_STEPS, help="steps per run (default: the paper's)")
    parser.add_argument("--calibration-steps", type=int, default=300)
    parser.add_argument("--dims", type=int, nargs="+", default=list(PAPER_DIMS))
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--tasks", nargs="+", default=list(GPU_TASKS), help="the tasks (default: %(default)s)")
    parser.add_argument("--methods", nargs="+", help="the methods (default: all; the EMLP ones if emlp is installed)")
    parser.add_argument("--tiny", action="store_true", help="tiny networks and data: a dry run of the same path")
    args = parser.parse_args(argv)
    started = time.monotonic()
    settings = dict(TINY) if args.tiny else {}
    with_emlp = _emlp_installed()
    methods = tuple(args.methods) if args.methods else _methods(with_emlp)
    args.out.mkdir(parents=True, exist_ok=True)
    print(f"gpu: calibrating {len(methods)} methods x d in {args.dims} ({args.calibration_steps} steps, "
          f"{args.jobs} processes on {args.device}){'' if with_emlp else '; emlp is not installed: no EMLP methods'}",
          flush=True)
    rates = calibrate(methods, args.dims, args.calibration_steps, args.out / "calibration", args.jobs, args.device,
                      **settings)
    left = args.budget - (time.monotonic() - started)
    grid = plan(args.tasks, methods, args.dims, args.seeds, args.steps, **settings)
    chosen = choose(grid, rates, left, args.jobs)
    summary = {"budget_seconds": args.budget, "left_after_calibration": round(left, 1), "jobs": args.jobs,
               "device": args.device, "steps": args.steps, "grid_runs": len(grid), "chosen_runs": len(chosen),
               "chosen": [c.name for c in chosen],
               "rates": {f"{m} d={d}": r for (m, d), r in sorted(rates.items())}}
    (args.out / "plan.json").write_text(json.dumps(summary, indent=1) + "\n")
    print(f"gpu: {len(chosen)} of the grid's {len(grid)} runs fit the {left:.0f} s left (plan.json)", flush=True)
    if chosen:
        sweep(chosen, out=args.out / "records", jobs=args.jobs, world=World(device=_device(args.device)),
              checkpoints=args.out / "checkpoints", checkpoint_every=max(args.steps // 20, 1), progress=False)
    print(f"gpu: done in {time.monotonic() - started:.0f} s", flush=True)
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
