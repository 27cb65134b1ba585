"""Options of ``markovcat experiment matrix`` and ``markovcat experiment plot`` (also ``python -m ...matrix.train``)."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from markovcat.experiments.arguments import whole_number
from markovcat.experiments.matrix.sweep import CPU_DIMS, CPU_SEEDS, CPU_STEPS, PAPER_DIMS, PAPER_STEPS
from markovcat.experiments.matrix.train import CHECKPOINT_EVERY, CHECKPOINTS, RESULTS

__all__ = ["add_matrix_arguments", "run_matrix", "add_plot_arguments", "run_plot"]


_positive = whole_number(1)
_count = whole_number(0)


def _widths(text: str) -> tuple[int, ...]:
    try:
        widths = tuple(int(w) for w in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected layer widths such as 250,250, got {text!r}") from None
    if not widths or min(widths) < 1:
        raise argparse.ArgumentTypeError(f"layer widths must be positive, got {text!r}")
    return widths


MATRIX_EPILOG = f"""\
One run: --task, --method, --dim and --seed.  The sweep: --all (every task x method x --dims x --seeds),
skipping runs whose record exists and resuming interrupted runs from their checkpoints.

CPU budget: --steps defaults to {CPU_STEPS}, 10% of the paper's; training batches are fresh draws
(--data fresh, the paper's protocol) unless --data fixed.  The whole CPU sweep is many CPU-hours:
it runs seed by seed and d by d, and resumes where it stopped.  GPU: experiments/matrix/gpu.sh
runs the paper's configuration as far as it fits 10 minutes on one GPU.

Paper configuration (GPU): --all --dims {" ".join(map(str, PAPER_DIMS))} --steps {PAPER_STEPS} --device cuda
(1,000 epochs of 100 steps, as the paper's code).
Many processes: torchrun --standalone --nproc_per_node=N -m markovcat.experiments.matrix.train ...
(gloo on CPU, NCCL on GPU; the numbers equal a 1-process run for any N dividing --shards)."""


def add_matrix_arguments(parser: argparse.ArgumentParser) -> None:
    """The options of one run or the sweep."""
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    parser.epilog = MATRIX_EPILOG
    what = parser.add_argument_group("what to run")
    what.add_argument("--task", help="cov, linreg, expm, inv or inv1 (one run)")
    what.add_argument("--method", help="mlp, emlp, haar, kim-emlp, recursive or scalars (one run; methods.METHODS)")
    what.add_argument("--dim", type=_positive, help="d, the number of rows of x (one run)")
    what.add_argument("--seed", type=_count, default=0, help="data, initialisation and noise seed (default: 0)")
    what.add_argument("--all", action="store_true", help="the sweep: every task x method x --dims x --seeds")
    what.add_argument("--tasks", nargs="+", help="the sweep's tasks (default: all)")
    what.add_argument("--methods", nargs="+", help="the sweep's methods (default: all)")
    what.add_argument("--dims", nargs="+", type=_positive, default=list(CPU_DIMS), help="the sweep's d (default: 4 8)")
    what.add_argument("--seeds", nargs="+", type=_count, default=list(CPU_SEEDS),
                      help="the sweep's seeds (default: 0 1 2)")
    how = parser.add_argument_group("training (defaults: the paper's)")
    how.add_argument("--steps", type=_count, default=CPU_STEPS, help="Adam steps per run (default: %(default)s, the "
                                                                     "CPU budget)")
    how.add_argument("--batch", type=_positive, default=100, help="global batch size (default: %(default)s)")
    how.add_argument("--lr", type=float, default=1e-4, help="Adam learning rate (default: %(default)s)")
    how.add_argument("--train-size", type=_positive, default=10_000,
                     help="training examples (fixed) or examples per epoch (fresh) (default: %(default)s)")
    how.add_argument("--data", choices=("fresh", "fixed"), default="fresh",
                     help="fresh: every batch newly drawn, the paper's protocol; fixed: one training set "
                          "(default: %(default)s)")
    how.add_argument("--curve-every", type=_count, default=500,
                     help="steps between learning-curve points (0: none; default: %(default)s)")
    how.add_argument("--test-size", type=_positive, default=1_000, help="test examples (default: %(default)s)")
    how.add_argument("--train-samples", type=_positive, default=10,
                     help="draws per training example (default: %(default)s)")
    how.add_argument("--test-samples", type=_positive, default=100,
                     help="draws averaged per test prediction (default: %(default)s)")
    how.add_argument("--backbone-hidden", type=_widths, default=None,
                     help="backbone widths, e.g. 250,250 (default: the method's, as in the paper)")
    how.add_argument("--gamma-hidden", type=_widths, default=(250,), help="gamma-network widths (default: 250)")
    how.add_argument("--shards", type=_positive, default=2,
                     help="noise shards per batch: the same numbers on any number of processes dividing it "
                          "(default: %(default)s)")
    where = parser.add_argument_group("where and how")
    where.add_argument("--out", type=Path, default=RESULTS, help="records folder (default: %(default)s)")
    where.add_argument("--checkpoints", type=Path, default=CHECKPOINTS,
                       help="checkpoint folder, not committed (default: %(default)s)")
    where.add_argument("--checkpoint-every", type=_positive, default=CHECKPOINT_EVERY,
                       help="steps between checkpoints (default: %(default)s)")
    where.add_argument("--device", default="auto", help="auto (CUDA if present), cpu or cuda (default: auto)")
    where.add_argument("--threads", type=_positive, default=1,
                       help="torch threads per process (default: 1; the same seed gives the same numbers)")
    where.add_argument("--jobs", type=_positive, default=1, help="sweep runs side by side, one process each "
                                                                 "(default: 1)")
    where.add_argument("--compile", action="store_true", help="train through torch.compile")
    where.add_argument("--no-progress", dest="progress", action="store_false", help="no progress bar")


def _configs(args: argparse.Namespace, parser: argparse.ArgumentParser) -> list[Any]:
    from markovcat.experiments.matrix.sweep import plan

    defaults = dict(batch=args.batch, lr=args.lr, train_size=args.train_size, test_size=args.test_size,
                    data=args.data, curve_every=args.curve_every,
                    shards=args.shards, train_samples=args.train_samples, test_samples=args.test_samples,
                    gamma_hidden=args.gamma_hidden, backbone_hidden=args.backbone_hidden)
    try:
        if args.all:
            return plan(args.tasks, args.methods, args.dims, args.seeds, args.steps, **defaults)
        missing = [f"--{name}" for name in ("task", "method", "dim") if getattr(args, name) is None]
        if missing:
            parser.error(f"one run needs {', '.join(missing)} (or --all for the sweep)")
        return plan([args.task], [args.method], [args.dim], [args.seed], args.steps, **defaults)
    except ValueError as error:
        parser.error(str(error))
    raise AssertionError  # pragma: no cover (parser.error exits)


def run_matrix(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    """Run what ``args`` ask: one run or the sweep, in the process group the environment describes."""
    import torch

    from markovcat.experiments.matrix.sweep import sweep
    from markovcat.experiments.runner import world_from_environment

    torch.set_num_threads(args.threads)
    configs = _configs(args, parser)
    world = world_from_environment(args.device)
    options = dict(checkpoints=args.checkpoints, checkpoint_every=args.checkpoint_every, progress=args.progress,
                   compile=args.compile)
    if args.jobs > 1:
        options["threads"] = args.threads
    try:
        sweep(configs, out=args.out, jobs=args.jobs, world=world, **options)
    finally:
        if world.distributed:
            import torch.distributed as dist

            dist.destroy_process_group()
    return 0


def add_plot_arguments(parser: argparse.ArgumentParser) -> None:
    from markovcat.experiments.matrix.plot import FIGURE
    from markovcat.experiments.runner import add_plot_arguments as add

    add(parser, RESULTS, FIGURE, _count)


def run_plot(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    from markovcat.experiments.matrix.plot import FIGURE, plot
    from markovcat.experiments.runner import run_plot as run

    return run(args, parser, FIGURE, plot)
