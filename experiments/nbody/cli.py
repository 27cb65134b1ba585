"""Options of ``markovcat experiment nbody`` and its plot (also ``python -m markovcat.experiments.nbody.cli``)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from markovcat.experiments.arguments import whole_number
from markovcat.experiments.nbody.sweep import CPU_SEEDS, CPU_STEPS, PAPER_STEPS
from markovcat.experiments.nbody.train import CHECKPOINT_EVERY, CHECKPOINTS, RESULTS

__all__ = ["add_nbody_arguments", "run_nbody", "add_nbody_plot_arguments", "run_nbody_plot", "main"]

_positive = whole_number(1)
_count = whole_number(0)

NBODY_EPILOG = f"""\
One run: --method and --seed.  The sweep: --all (every contender x --seeds), skipping runs whose
record exists, resuming interrupted runs from their checkpoints, and skipping (with the reason)
a peer contender whose library cannot run here.

CPU budget: --steps defaults to {CPU_STEPS}, chosen so the CPU sweep (10 runnable contenders x
seeds {{0, 1, 2}}) takes about 90 minutes on 2 otherwise idle cores with --jobs 2
(benchmarks/nbody.py --speeds).

GPU recipe (the EGNN paper's budget, 10,000 epochs): --all --steps {PAPER_STEPS} --eval-every 3000 --device cuda.
The data (3,000 / 2,000 / 2,000 systems) is simulated once and cached in experiments/data/nbody/.
Many processes: torchrun --standalone --nproc_per_node=N -m markovcat.experiments.nbody.train --shards N ...
(gloo on CPU, NCCL on GPU; the numbers depend on --shards, not on N; --shards 1, the default, gives the
committed records' numbers; under torchrun the sweep's runs go one after another)."""


def add_nbody_arguments(parser: argparse.ArgumentParser) -> None:
    """The options of one run or the sweep."""
    from markovcat.experiments.nbody.models import METHODS

    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    parser.epilog = NBODY_EPILOG
    what = parser.add_argument_group("what to run")
    what.add_argument("--method", choices=METHODS, help="one contender (one run)")
    what.add_argument("--seed", type=_count, default=0, help="initialisation, order and noise seed (default: 0)")
    what.add_argument("--all", action="store_true", help="the sweep: every contender x --seeds")
    what.add_argument("--methods", nargs="+", choices=METHODS, help="the sweep's contenders (default: all)")
    what.add_argument("--seeds", nargs="+", type=_count, default=list(CPU_SEEDS), help="the sweep's seeds "
                                                                                      "(default: 0 1 2)")
    how = parser.add_argument_group("training (defaults: the EGNN paper's N-body settings)")
    how.add_argument("--steps", type=_count, default=CPU_STEPS, help="Adam steps per run (default: %(default)s, the "
                                                                     "CPU budget)")
    how.add_argument("--batch", type=_positive, default=100, help="batch size (default: %(default)s)")
    how.add_argument("--lr", type=float, default=5e-4, help="Adam learning rate (default: %(default)s)")
    how.add_argument("--eval-every", type=_positive, default=100,
                     help="steps between validation evaluations (the curve and the selection; default: %(default)s)")
    how.add_argument("--test-samples", type=_positive, default=16,
                     help="draws averaged at test time by the stochastic models, if it helps on validation "
                          "(default: %(default)s)")
    how.add_argument("--shards", type=_positive, default=1,
                     help="noise shards per batch: the same numbers on any number of processes dividing it "
                          "(default: %(default)s)")
    how.add_argument("--train-size", type=_positive, default=3000, help="training systems (default: %(default)s)")
    how.add_argument("--valid-size", type=_positive, default=2000, help="validation systems (default: %(default)s)")
    how.add_argument("--test-size", type=_positive, default=2000, help="test systems (default: %(default)s)")
    where = parser.add_argument_group("where and how")
    where.add_argument("--out", type=Path, default=RESULTS, help="records folder (default: %(default)s)")
    where.add_argument("--checkpoints", type=Path, default=CHECKPOINTS,
                       help="checkpoint folder, not committed (default: %(default)s)")
    where.add_argument("--checkpoint-every", type=_positive, default=CHECKPOINT_EVERY,
                       help="steps between checkpoints (default: %(default)s)")
    where.add_argument("--device", default="auto", help="auto (CUDA if present), cpu or cuda (default: auto)")
    where.add_argument("--threads", type=_positive, default=1, help="torch threads per process (default: 1)")
    where.add_argument("--jobs", type=_positive, default=1, help="sweep runs side by side, one process each "
                                                                 "(default: 1)")
    where.add_argument("--no-progress", dest="progress", action="store_false", help="no progress bar")


def _configs(args: argparse.Namespace, parser: argparse.ArgumentParser) -> list[Any]:
    from markovcat.experiments.nbody.sweep import plan

    defaults = dict(batch=args.batch, lr=args.lr, eval_every=args.eval_every, test_samples=args.test_samples,
                    train_size=args.train_size, valid_size=args.valid_size, test_size=args.test_size,
                    shards=args.shards)
    try:
        if args.all:
            return plan(args.methods, args.seeds, args.steps, **defaults)
        if args.method is None:
            parser.error("one run needs --method (or --all for the sweep)")
        return plan([args.method], [args.seed], args.steps, **defaults)
    except ValueError as error:
        parser.error(str(error))
    raise AssertionError  # pragma: no cover (parser.error exits)


def run_nbody(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    """Run what ``args`` ask: one run or the sweep, in the process group the environment describes (torchrun's).

    Returns 1 if a run asked for by name cannot run here.
    """
    import torch

    from markovcat.experiments.nbody.models import available
    from markovcat.experiments.nbody.sweep import sweep
    from markovcat.experiments.runner import check_shards, world_from_environment

    torch.set_num_threads(args.threads)
    configs = _configs(args, parser)
    if not args.all:
        why = available(args.method)
        if why is not None:
            print(f"{args.method} cannot run here: {why}", file=sys.stderr)
            return 1
    world = world_from_environment(args.device)
    options: dict[str, Any] = dict(checkpoints=args.checkpoints, checkpoint_every=args.checkpoint_every,
                                   progress=args.progress)
    if args.jobs > 1:
        options["threads"] = args.threads
    try:
        if args.jobs > 1 and world.distributed:
            parser.error("--jobs runs several single-process runs side by side; under torchrun each run already "
                         "uses every process: use --jobs 1")
        try:
            check_shards(args.batch, args.shards, world)
        except ValueError as error:
            parser.error(str(error))
        sweep(configs, out=args.out, jobs=args.jobs, world=world, **options)
    finally:
        if world.distributed:
            import torch.distributed as dist

            dist.destroy_process_group()
    return 0


def add_nbody_plot_arguments(parser: argparse.ArgumentParser) -> None:
    from markovcat.experiments.nbody.plot import FIGURE
    from markovcat.experiments.runner import add_plot_arguments

    add_plot_arguments(parser, RESULTS, FIGURE, _count)


def run_nbody_plot(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    from markovcat.experiments.nbody.plot import FIGURE, plot
    from markovcat.experiments.runner import run_plot

    return run_plot(args, parser, FIGURE, plot)


def main(argv: list[str] | None = None) -> int:
    """``python -m markovcat.experiments.nbody.cli [plot] ...``: a run, the sweep, or (``plot``) figure and table."""
    from markovcat.experiments.runner import run_command

    return run_command("python -m markovcat.experiments.nbody.cli", {
        None: ("One N-body run or the sweep (charged particles, EGNN sec. 5.1).", add_nbody_arguments, run_nbody),
        "plot": ("The N-body figure and table from the records.", add_nbody_plot_arguments, run_nbody_plot)}, argv)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
