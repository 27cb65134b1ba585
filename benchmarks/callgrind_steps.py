"""Instructions per forward + backward step (callgrind), for ratios that do not depend on the machine's load.

Run under ``valgrind --tool=callgrind --collect-atstart=no``: builds one model of
``overhead.py``'s README configuration, warms it up, and turns collection on for ``steps``
steps only (``torch._C._valgrind_toggle``).  ``bash benchmarks/overhead_callgrind.sh`` runs
every model and writes ``benchmarks/results/overhead_callgrind.md``.

    valgrind --tool=callgrind --collect-atstart=no python benchmarks/callgrind_steps.py haar 5
"""

from __future__ import annotations

import sys

import torch
from overhead import make_step, readme_models  # benchmarks/ is the script's folder

NAMES = {"bare": "bare backbone", "haar": "Haar-symmetrised", "recursive": "recursive-symmetrised",
         "canonical": "canonicalised", "frame": "frame-averaged (exact frame)"}


def main() -> None:
    which, steps = sys.argv[1], int(sys.argv[2])
    torch.set_num_threads(1)
    bare, models, x = readme_models("cpu")
    module = bare if which == "bare" else next(m for name, _, m in models if name == NAMES[which])
    step = make_step(module, x, list(module.parameters()), False)
    for _ in range(3):
        step()
    torch._C._valgrind_toggle()
    for _ in range(steps):
        step()
    torch._C._valgrind_toggle()


if __name__ == "__main__":
    main()
