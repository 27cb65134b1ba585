"""Options of ``markovcat experiment symdiff``, ``symdiff-sample`` and ``symdiff-plot``.

Also ``python -m markovcat.experiments.symdiff.cli [sample | plot]``.
"""

from __future__ import annotations

import argparse
import functools
import sys
from pathlib import Path
from typing import Any

from markovcat.experiments.arguments import whole_number
from markovcat.experiments.symdiff.data import CACHE
from markovcat.experiments.symdiff.models import COMPILERS, METHODS, PRECISIONS
from markovcat.experiments.symdiff.train import CHECKPOINT_EVERY, CHECKPOINTS, CONFIGS, RESULTS

__all__ = ["add_symdiff_arguments", "run_symdiff", "add_symdiff_sample_arguments", "run_symdiff_sample",
           "add_symdiff_plot_arguments", "run_symdiff_plot",
           "add_symdiff_rescore_arguments", "run_symdiff_rescore", "add_symdiff_budget_arguments", "run_symdiff_budget",
           "add_symdiff_chemistry_arguments", "run_symdiff_chemistry", "main"]

_positive = whole_number(1)
_count = whole_number(0)

SYMDIFF_EPILOG = """\
One run: --model and --config (cpu-small, gpu-paper or gpu-10min), any of the budget options overriding the
configuration's value.  --all runs every --models (--jobs of them side by side, one process
each), skipping those whose record exists; an interrupted run resumes from its checkpoint.
Sampling and the bound use T = 1000 steps in both configurations.  Needs the optional packages
qm9pack (the data, converted once to experiments/data/qm9/qm9.pt) and rdkit (validity and
uniqueness).  CPU budget: cpu-small takes about 15 to 20 minutes per run on one idle thread
(18 to 30 measured on a busy 2-core machine); the four contenders about 40 minutes with --all
--jobs 2 on two cores.

GPU recipe: --config gpu-paper --device cuda (EDM's QM9 optimisation, 3,000 epochs of batch 64),
or on N GPUs: torchrun --standalone --nproc_per_node=N -m markovcat.experiments.symdiff.cli
--model symdiff --config gpu-paper --shards N --device cuda (DistributedDataParallel; the numbers
depend on --shards, not on N; --shards 1, the default, is what the committed records used).
Ten minutes on one GPU: experiments/symdiff/gpu.sh (gpu-10min, SymDiff and DiT-Aug side by side
with --jobs 2 --lockstep, bf16 autocast, --compile inductor and a --time-limit)."""


def add_symdiff_arguments(parser: argparse.ArgumentParser) -> None:
    """The options of one run (or of every contender in turn, ``--all``)."""
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    parser.epilog = SYMDIFF_EPILOG
    what = parser.add_argument_group("what to run")
    what.add_argument("--model", choices=METHODS, help="one contender (one run)")
    what.add_argument("--all", action="store_true", help="every contender of --models, one after the other")
    what.add_argument("--models", nargs="+", choices=METHODS, default=list(METHODS),
                      help="the contenders of --all (default: all)")
    what.add_argument("--config", choices=tuple(CONFIGS), default="cpu-small",
                      help="the budget and sizes (default: %(default)s)")
    what.add_argument("--seed", type=_count, default=0, help="initialisation, order and noise seed (default: 0)")
    how = parser.add_argument_group("overrides of the configuration")
    how.add_argument("--steps", type=_count, help="training steps")
    how.add_argument("--batch", type=_positive, help="molecules per step")
    how.add_argument("--lr", type=float, help="AdamW learning rate")
    how.add_argument("--train-size", type=_positive, help="training molecules (the first of EDM's split)")
    how.add_argument("--valid-size", type=_positive, help="validation molecules for the bound estimate (selection)")
    how.add_argument("--test-size", type=_positive, help="test molecules for the bound")
    how.add_argument("--samples", type=_count, help="molecules generated at the end (0: none)")
    how.add_argument("--eval-every", type=_positive, help="steps between validation bound estimates")
    how.add_argument("--shards", type=_positive, help="noise shards per batch (default 1); under torchrun a multiple "
                                                     "of the number of processes")
    how.add_argument("--precision", choices=tuple(PRECISIONS), help="the transformer trunks' precision: fp32, or "
                                                                    "bf16 autocast")
    speed = parser.add_argument_group("speed and time (not part of the configuration)")
    speed.add_argument("--compile", choices=COMPILERS, default=None,
                       help="torch.compile the transformer trunks with this backend (default: eager)")
    speed.add_argument("--time-limit", type=float, default=None, metavar="SECONDS",
                       help="stop training at the first step after this many seconds of the run (then test and "
                            "sample); the record says where, and --steps N reproduces it")
    speed.add_argument("--lockstep", type=Path, default=None, metavar="FOLDER",
                       help="keep the runs of --all at the same step (files in FOLDER) and stop them together once "
                            "a time limit has passed")
    where = parser.add_argument_group("where and how")
    where.add_argument("--out", type=Path, default=RESULTS, help="records folder (default: %(default)s)")
    where.add_argument("--checkpoints", type=Path, default=CHECKPOINTS,
                       help="checkpoints and final weights, not committed (default: %(default)s)")
    where.add_argument("--checkpoint-every", type=_positive, default=CHECKPOINT_EVERY,
                       help="steps between checkpoints (default: %(default)s)")
    where.add_argument("--data", type=Path, default=CACHE / "qm9.pt", help="the QM9 cache (default: %(default)s)")
    where.add_argument("--device", default="auto", help="auto (CUDA if present), cpu or cuda (default: auto)")
    where.add_argument("--threads", type=_positive, default=1, help="torch threads per run (default: 1)")
    where.add_argument("--jobs", type=_positive, default=1, help="runs of --all side by side, one process each "
                                                                 "(default: 1)")
    where.add_argument("--no-progress", dest="progress", action="store_false", help="no progress bar")


def _configs(args: argparse.Namespace, parser: argparse.ArgumentParser) -> list[Any]:
    from markovcat.experiments.symdiff.train import config_named

    if not args.all and args.model is None:
        parser.error("one run needs --model (or --all for every contender)")
    overrides = dict(steps=args.steps, batch=args.batch, lr=args.lr, train_size=args.train_size,
                     valid_size=args.valid_size, test_size=args.test_size, samples=args.samples,
                     eval_every=args.eval_every, shards=args.shards, precision=args.precision)
    try:
        return [config_named(args.config, method, args.seed, **overrides)
                for method in (args.models if args.all else [args.model])]
    except ValueError as error:
        parser.error(str(error))
    raise AssertionError  # pragma: no cover (parser.error exits)


def _summary(record: dict[str, Any]) -> str:
    m = record["metrics"]
    text = f"test NLL {m['test_nll']:.2f}"
    if "sample_atom_stability" in m:
        valid = "pending" if m.get("sample_validity") is None else f"{m['sample_validity']:.1f}%"
        text += (f", atom stable {m['sample_atom_stability']:.1f}%, molecule stable "
                 f"{m['sample_molecule_stability']:.1f}%, valid {valid} of {m['samples']}")
    return text


def run_symdiff(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    """Run what ``args`` ask: one run, or every contender of ``--models`` in turn."""
    import torch

    from markovcat.experiments.runner import check_shards, run_pending, world_from_environment
    from markovcat.experiments.symdiff.train import run_elsewhere, train

    torch.set_num_threads(args.threads)
    configs = _configs(args, parser)
    world = world_from_environment(args.device)
    try:
        if world.distributed and args.jobs > 1:
            parser.error("--jobs runs several single-process runs side by side; under torchrun each run already "
                         "uses every process: use --jobs 1")
        for config in configs:
            try:
                check_shards(config.batch, config.shards, world)
            except ValueError as error:
                parser.error(str(error))
        options: dict[str, Any] = dict(out=args.out, checkpoints=args.checkpoints,
                                       checkpoint_every=args.checkpoint_every,
                                       progress=args.progress and args.jobs == 1, data=args.data,
                                       compile=args.compile, time_limit=args.time_limit)
        if args.lockstep is not None:
            if args.jobs < len(configs):
                parser.error(f"--lockstep runs the {len(configs)} runs side by side: it needs --jobs {len(configs)}")
            from markovcat.experiments.symdiff.pace import Lockstep

            options["pace"] = Lockstep(args.lockstep, tuple(config.name for config in configs))

        def here(config: Any) -> dict[str, Any]:
            return train(config, world=world, **options)

        elsewhere = functools.partial(run_elsewhere, threads=args.threads, device=world.device, **options)
        failed = run_pending(configs, here=here, elsewhere=elsewhere, jobs=min(args.jobs, len(configs)),
                             say=print if world.main else lambda line: None,
                             summary=_summary if world.main else lambda record: "")  # other ranks: no record
    finally:
        if world.distributed:
            import torch.distributed as dist

            dist.destroy_process_group()
    return 1 if failed else 0


def add_symdiff_sample_arguments(parser: argparse.ArgumentParser) -> None:
    """The options of ``symdiff-sample``: molecules from a finished run's weights, to an XYZ file, with the metrics."""
    parser.add_argument("weights", type=Path, help="a <run>.model.pt file written by a finished run")
    parser.add_argument("--count", type=_positive, default=10_000, help="molecules to generate (default: %(default)s)")
    parser.add_argument("--out", type=Path, default=None, help="XYZ file (default: next to the weights, .xyz)")
    parser.add_argument("--seed", type=_count, default=0, help="sampling seed (default: 0)")
    parser.add_argument("--batch", type=_positive, default=100, help="molecules per sampling batch (default: 100)")
    parser.add_argument("--data", type=Path, default=CACHE / "qm9.pt", help="the QM9 cache, for p(N) "
                                                                             "(default: %(default)s)")
    parser.add_argument("--device", default="auto", help="auto (CUDA if present), cpu or cuda (default: auto)")
    parser.add_argument("--threads", type=_positive, default=1, help="torch threads (default: 1)")
    parser.add_argument("--no-progress", dest="progress", action="store_false", help="no progress bar")


def run_symdiff_sample(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    """Generate ``--count`` molecules, write them, print EDM's metrics."""
    import json
    import math

    import torch

    from markovcat.experiments.runner import derived_seed, device_named, generator, progress
    from markovcat.experiments.symdiff.data import load
    from markovcat.experiments.symdiff.sample import draw_atom_counts, evaluate, sample, write_xyz
    from markovcat.experiments.symdiff.train import load_model

    torch.set_num_threads(args.threads)
    if not args.weights.exists():
        parser.error(f"no weights file {args.weights}: a finished run writes <checkpoints>/<run>.model.pt")
    device = device_named(args.device)
    config, model = load_model(args.weights, device)
    histogram = load(args.data).train.histogram()
    counts = draw_atom_counts(histogram, args.count, torch.Generator().manual_seed(derived_seed(args.seed, "atoms")))
    schedule = config.schedule()
    with progress(schedule.steps * math.ceil(args.count / args.batch), 0, args.progress, "sampling") as bar:
        drawn = sample(model, counts, schedule, generator(device, args.seed, "sample"), batch=args.batch,
                       progress=bar)
    scores = evaluate(drawn)
    out = args.out if args.out is not None else args.weights.with_suffix("").with_suffix(".xyz")
    write_xyz(out, drawn, [f"sample {i}: {s or 'invalid'}" for i, s in enumerate(scores.smiles)])
    print(json.dumps({"run": config.name, "samples": scores.n, **scores.as_percent(), "xyz": str(out)}, indent=1))
    return 0


def add_symdiff_plot_arguments(parser: argparse.ArgumentParser) -> None:
    """``--records``, ``--out`` and ``--steps`` of ``symdiff-plot``."""
    from markovcat.experiments.runner import add_plot_arguments
    from markovcat.experiments.symdiff.plot import FIGURE

    add_plot_arguments(parser, RESULTS, FIGURE, _count)


def run_symdiff_plot(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    """The figure (PNG, PDF) and the Markdown table from the records."""
    from markovcat.experiments.runner import run_plot
    from markovcat.experiments.symdiff.plot import FIGURE, plot

    return run_plot(args, parser, FIGURE, plot)


def add_symdiff_rescore_arguments(parser: argparse.ArgumentParser) -> None:
    """The options of ``symdiff-rescore``: where the records, the weights and the data are."""
    parser.add_argument("--records", type=Path, default=RESULTS, help="records folder (default: %(default)s)")
    parser.add_argument("--checkpoints", type=Path, default=CHECKPOINTS,
                        help="where the runs' <run>.model.pt weights are (default: %(default)s)")
    parser.add_argument("--data", type=Path, default=CACHE / "qm9.pt", help="the QM9 cache (default: %(default)s)")
    parser.add_argument("--threads", type=_positive, default=1, help="torch threads (default: 1)")


def run_symdiff_rescore(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    """Add the rotated test bound to every record that lacks it; 1 if any could not be."""
    import torch

    from markovcat.experiments.symdiff.rescore import rescore_all

    torch.set_num_threads(args.threads)
    if not args.records.is_dir():
        parser.error(f"no records folder {args.records}")
    return 1 if rescore_all(args.records, args.checkpoints, args.data) else 0


def add_symdiff_chemistry_arguments(parser: argparse.ArgumentParser) -> None:
    """The options of ``chemistry``: the records to complete."""
    parser.add_argument("records", type=Path, nargs="+", help="records (<run>.json, the <run>.xyz beside each)")


def run_symdiff_chemistry(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    """Fill in validity and uniqueness for every record whose samples were drawn without RDKit; 1 if any failed."""
    from markovcat.experiments.symdiff.chemistry import complete

    failed = 0
    for path in args.records:
        try:
            record = complete(path)
        except (FileNotFoundError, ValueError) as error:
            print(f"{path}: {error}")
            failed += 1
        else:
            m = record["metrics"]
            print(f"{path}: valid {m['sample_validity']:.1f}%, unique {m['sample_uniqueness']:.1f}% of {m['samples']}")
    return 1 if failed else 0


def add_symdiff_budget_arguments(parser: argparse.ArgumentParser) -> None:
    """The options of ``budget``: the configuration, the training seconds and the assumed GPU."""
    from markovcat.experiments.symdiff.budget import H100_BF16

    parser.add_argument("--config", choices=tuple(CONFIGS), default="gpu-10min", help="(default: %(default)s)")
    parser.add_argument("--models", nargs="+", choices=METHODS, default=["symdiff", "dit-aug"],
                        help="contenders, side by side on the GPU (default: %(default)s)")
    parser.add_argument("--seconds", type=float, default=300.0,
                        help="training seconds, compilation excluded (default: %(default)s, what gpu.sh leaves)")
    parser.add_argument("--peak", type=float, default=H100_BF16.peak, help="GPU peak FLOP/s (default: %(default)s)")
    parser.add_argument("--fraction", type=float, default=H100_BF16.fraction,
                        help="assumed fraction of the peak a training step achieves (default: %(default)s)")
    parser.add_argument("--step-floor", type=float, default=H100_BF16.step_floor,
                        help="assumed least seconds per training step of one process (default: %(default)s)")
    parser.add_argument("--cpu-batch", type=_positive, default=16,
                        help="batch of the measured CPU steps (calibration; default: %(default)s)")
    parser.add_argument("--threads", type=_positive, default=1, help="torch threads (default: 1)")


def run_symdiff_budget(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    """Print, per contender, the counted FLOPs, a measured CPU step and the estimated GPU budget (JSON)."""
    import json

    import torch

    from markovcat.experiments.symdiff.budget import Throughput, count_flops, estimate, measure_cpu_step
    from markovcat.experiments.symdiff.train import config_named

    torch.set_num_threads(args.threads)
    gpu = Throughput("assumed GPU", args.peak, args.fraction, args.step_floor)
    report = {}
    for method in args.models:
        config = config_named(args.config, method)
        flops = count_flops(config, batch=args.cpu_batch)
        cpu = measure_cpu_step(config, args.cpu_batch)
        report[method] = {"flops": flops, "cpu step seconds": cpu, "cpu FLOP/s achieved": flops["train_step"] / cpu,
                          "estimate": estimate(config, flops, args.seconds, gpu, side_by_side=len(args.models))}
    print(json.dumps(report, indent=1))
    return 0


def main(argv: list[str] | None = None) -> int:
    """``python -m markovcat.experiments.symdiff.cli [sample | plot | rescore | budget | chemistry] ...``: a run
    (or --all), sampling, the figure, the rotated test bound for older records, a budget estimate, or the RDKit
    metrics of samples drawn where RDKit was missing."""
    from markovcat.experiments.runner import run_command

    return run_command("python -m markovcat.experiments.symdiff.cli", {
        None: ("One SymDiff run on QM9 (or every contender, --all).", add_symdiff_arguments, run_symdiff),
        "sample": ("Molecules from a finished SymDiff run, with EDM's metrics.", add_symdiff_sample_arguments,
                   run_symdiff_sample),
        "plot": ("The SymDiff figure and table from the records.", add_symdiff_plot_arguments, run_symdiff_plot),
        "rescore": ("Add the rotated test bound to records that lack it.", add_symdiff_rescore_arguments,
                    run_symdiff_rescore),
        "budget": ("FLOPs, a CPU step and the estimated GPU budget of a configuration.",
                   add_symdiff_budget_arguments, run_symdiff_budget),
        "chemistry": ("Validity and uniqueness of sampled molecules, from a record's XYZ file (RDKit).",
                      add_symdiff_chemistry_arguments, run_symdiff_chemistry)}, argv)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
