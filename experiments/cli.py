"""The ``markovcat`` command line: ``markovcat demo``, ``markovcat gallery``, ``markovcat experiment ...``."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from markovcat.experiments.arguments import whole_number


def version() -> str:
    """The installed distribution's version (``markovcat.__version__`` when run from a source tree)."""
    from importlib.metadata import PackageNotFoundError
    from importlib.metadata import version as installed

    try:
        return installed("markovcat")
    except PackageNotFoundError:
        import markovcat

        return markovcat.__version__


_steps = whole_number(0, "a number of steps; 0 skips training")


def parser() -> argparse.ArgumentParser:
    """The argument parser of the ``markovcat`` command."""
    from markovcat.experiments.demo import STEPS

    top = argparse.ArgumentParser(prog="markovcat", description="String diagrams for neural-network symmetrisation: "
                                  "the demo, the figure gallery and the experiments.")
    top.add_argument("--version", action="version", version=f"markovcat {version()}")
    sub = top.add_subparsers(dest="command", required=True, metavar="COMMAND")
    demo = sub.add_parser("demo", help="build sym, check it, draw it, compile it, run it and train it",
                          description="Build the symmetrisation as a diagram, decide equations, draw figures, "
                                      "compile to PyTorch, check equivariance and train a small model. Every "
                                      "figure printed is the same on a rerun (fixed seeds and step counts).")
    demo.add_argument("--out", default="markovcat-demo", help="folder for the figures (default: %(default)s)")
    demo.add_argument("--train-steps", "--steps", dest="train_steps", type=_steps, default=STEPS, metavar="N",
                      help="Adam steps per model in the training section, 0 to skip it (default: %(default)s)")
    demo.add_argument("--no-progress", dest="progress", action="store_false", help="no progress bars while training")
    demo.add_argument("--train-seconds", help=argparse.SUPPRESS)  # replaced by --train-steps: a clear error
    gallery = sub.add_parser("gallery", help="draw every figure of the gallery (markovcat.diagrams) into a folder",
                             description="Draw every figure of the markovcat gallery, and its README.md index.")
    gallery.add_argument("out", type=Path, metavar="OUTDIR",
                         help="folder to write the figures into, created if missing")
    gallery.add_argument("--format", dest="formats", nargs="+", choices=("svg", "png", "pdf"), default=["svg", "png"],
                         help="file formats to draw (default: %(default)s)")
    experiment = sub.add_parser("experiment", help="reproduce the paper's experiments and plot them",
                                description="Reproduce the experiments of Cornish 2024 (sec. 7.3): train, evaluate, "
                                            "record, and plot the records.")
    kinds = experiment.add_subparsers(dest="experiment", required=True, metavar="EXPERIMENT")
    from markovcat.experiments.matrix.cli import add_matrix_arguments, add_plot_arguments

    matrix = kinds.add_parser("matrix", help="the matrix tasks (cov, linreg, expm, inv): one run or --all",
                              description="Train one matrix-task model (or the sweep, --all), evaluate its test error "
                                          "and equivariance, and write a JSON record.")
    add_matrix_arguments(matrix)
    plot = kinds.add_parser("plot", help="the figure (PNG, PDF) and Markdown table from the records",
                            description="Test error against d, one panel per task, one line per method, seeds as "
                                        "error bars; and the table for the README.")
    add_plot_arguments(plot)
    from markovcat.experiments.nbody.cli import add_nbody_arguments, add_nbody_plot_arguments

    nbody = kinds.add_parser("nbody", help="the N-body benchmark against the peers: one run or --all",
                             description="Train one N-body contender (or the sweep, --all), select it on validation, "
                                         "evaluate its test MSE and equivariance, and write a JSON record.")
    add_nbody_arguments(nbody)
    nbody_plot = kinds.add_parser("nbody-plot", help="the N-body figure (PNG, PDF) and Markdown table from the records",
                                  description="Validation MSE against training steps and test MSE per contender; "
                                              "and the table for the README.")
    add_nbody_plot_arguments(nbody_plot)
    from markovcat.experiments.symdiff.cli import (
        add_symdiff_arguments,
        add_symdiff_plot_arguments,
        add_symdiff_rescore_arguments,
        add_symdiff_sample_arguments,
    )

    symdiff = kinds.add_parser("symdiff", help="SymDiff on QM9: train one contender (or --all), sample, record",
                               description="Train one SymDiff contender on QM9 (symdiff, symdiff-h, dit, dit-aug), "
                                           "select it on the validation bound, estimate the test NLL bound, sample "
                                           "molecules with EDM's metrics, check its O(3) equivariance, and write a "
                                           "JSON record.")
    add_symdiff_arguments(symdiff)
    symdiff_sample = kinds.add_parser("symdiff-sample", help="molecules from a finished SymDiff run, and their metrics",
                                      description="Generate molecules from a finished run's weights (T = 1000 "
                                                  "ancestral steps), write them to an XYZ file and print EDM's "
                                                  "metrics.")
    add_symdiff_sample_arguments(symdiff_sample)
    symdiff_plot = kinds.add_parser("symdiff-plot", help="the SymDiff figure (PNG, PDF) and Markdown table from the "
                                                         "records",
                                    description="Validation NLL bound and training loss against steps, the first "
                                                "generated molecules of each contender drawn with RDKit, and the "
                                                "table (with the published Table 1 rows beside it) for the README.")
    add_symdiff_plot_arguments(symdiff_plot)
    symdiff_rescore = kinds.add_parser("symdiff-rescore", help="add the rotated test bound to SymDiff records that "
                                                               "lack it, from the runs' saved weights",
                                       description="For every record without the test bound on randomly rotated "
                                                   "molecules: load the run's weights, check that they reproduce "
                                                   "the recorded test bound, and add the rotated one.")
    add_symdiff_rescore_arguments(symdiff_rescore)
    matrix.set_defaults(subparser=matrix)  # for its error messages
    plot.set_defaults(subparser=plot)
    nbody.set_defaults(subparser=nbody)
    nbody_plot.set_defaults(subparser=nbody_plot)
    symdiff.set_defaults(subparser=symdiff)
    symdiff_sample.set_defaults(subparser=symdiff_sample)
    symdiff_plot.set_defaults(subparser=symdiff_plot)
    symdiff_rescore.set_defaults(subparser=symdiff_rescore)
    return top


def main(argv: list[str] | None = None) -> int:
    top = parser()
    args = top.parse_args(argv)
    if args.command == "demo":
        if args.train_seconds is not None:
            top.error("--train-seconds was replaced by --train-steps N (training now runs a fixed number of steps, "
                      "so its figures are the same on every run); use --train-steps 0 to skip training")
        from markovcat.experiments.demo import run

        return run(args.out, train_steps=args.train_steps, progress=args.progress)
    if args.command == "gallery":
        from markovcat.diagrams.render import render_all

        written = render_all(args.out, formats=tuple(f".{f}" for f in args.formats))
        print(f"wrote {len(written)} files to {args.out}")
        return 0
    if args.command == "experiment":
        from markovcat.experiments.matrix.cli import run_matrix, run_plot
        from markovcat.experiments.nbody.cli import run_nbody, run_nbody_plot
        from markovcat.experiments.symdiff.cli import (
            run_symdiff,
            run_symdiff_plot,
            run_symdiff_rescore,
            run_symdiff_sample,
        )

        run = {"matrix": run_matrix, "plot": run_plot, "nbody": run_nbody, "nbody-plot": run_nbody_plot,
               "symdiff": run_symdiff, "symdiff-sample": run_symdiff_sample, "symdiff-plot": run_symdiff_plot,
               "symdiff-rescore": run_symdiff_rescore}
        return run[args.experiment](args, args.subparser)
    return 2  # pragma: no cover


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
