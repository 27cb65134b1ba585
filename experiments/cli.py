"""The ``markovcat`` command line."""

from __future__ import annotations

import argparse
import sys


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="markovcat", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    demo = sub.add_parser("demo", help="build sym, check it, draw it, compile it and run it")
    demo.add_argument("--out", default="markovcat-demo", help="folder for the figures (default: %(default)s)")
    demo.add_argument(
        "--train-seconds", type=float, default=60, help="time budget of the training section, 0 to skip (%(default)s)"
    )
    args = parser.parse_args(argv)
    if args.command == "demo":
        from markovcat.experiments.demo import run

        return run(args.out, train_seconds=args.train_seconds)
    return 2  # pragma: no cover


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
