"""The ``markovcat`` command line."""

from __future__ import annotations

import argparse
import sys


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="markovcat", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("demo", help="build, check and draw the seed's diagrams")
    args = parser.parse_args(argv)
    if args.command == "demo":
        from markovcat.demo import run

        return run()
    return 2  # pragma: no cover


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
