"""``python -m markovcat.diagrams [OUT_DIR]``: regenerate every figure and the index."""

from __future__ import annotations

import sys
from pathlib import Path

from .render import render_all

if __name__ == "__main__":
    out = Path(sys.argv[1]) if len(sys.argv) > 1 else Path(__file__).parent / "figures"
    written = render_all(out)
    print(f"wrote {len(written)} files to {out}")
