"""``python -m markovcat.diagrams [OUT_DIR]``: draw every figure of the gallery and its index into OUT_DIR.

OUT_DIR defaults to ``markovcat-figures`` in the current directory; nothing is written into
the installed package unless its folder is given explicitly (from a source checkout,
``python -m markovcat.diagrams diagrams/figures`` regenerates the gallery shipped with it).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

DEFAULT_OUT = "markovcat-figures"
FORMATS = ("svg", "png", "pdf")


def parser() -> argparse.ArgumentParser:
    """The command line of the gallery script."""
    p = argparse.ArgumentParser(prog="python -m markovcat.diagrams",
                                description="Draw every figure of the markovcat gallery, and its README.md index.")
    p.add_argument("out", nargs="?", type=Path, default=Path(DEFAULT_OUT), metavar="OUT_DIR",
                   help="folder to write the figures into, created if missing (default: ./%(default)s)")
    p.add_argument("--format", dest="formats", nargs="+", choices=FORMATS, default=["svg", "png"],
                   help="file formats to draw (default: %(default)s)")
    return p


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    from markovcat.diagrams.render import render_all

    written = render_all(args.out, formats=tuple(f".{f}" for f in args.formats))
    print(f"wrote {len(written)} files to {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
