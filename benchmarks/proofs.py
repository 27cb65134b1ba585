"""Time checking every shipped proof (target: at most 5 s in total).

Each proof is built fresh and checked; building includes the lemmas it cites,
and checking a step enumerates every rewrite of its left side.  Writes
``benchmarks/results/proofs.md``.  Run: ``python benchmarks/proofs.py [--repeat N]``.
"""

from __future__ import annotations

import argparse
import platform
import statistics
import time
from pathlib import Path

from markovcat import theorems as proofs

TARGET_S = 5.0
RESULTS = Path(__file__).resolve().parent / "results" / "proofs.md"


def time_once() -> dict[str, tuple[int, float, float]]:
    """For each proof: (steps, seconds to build, seconds to check), all fresh."""
    timings: dict[str, tuple[int, float, float]] = {}
    for name in proofs.all_proofs():
        make = getattr(proofs, name)
        start = time.perf_counter()
        proof = make()
        built = time.perf_counter()
        proof.check()
        checked = time.perf_counter()
        timings[name] = (len(proof), built - start, checked - built)
    return timings


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeat", type=int, default=5, help="runs; the median is reported")
    args = parser.parse_args()
    runs = [time_once() for _ in range(args.repeat)]
    names = list(runs[0])
    rows = []
    for name in names:
        steps = runs[0][name][0]
        build = statistics.median(r[name][1] for r in runs)
        check = statistics.median(r[name][2] for r in runs)
        rows.append((name, steps, build, check))
    totals = [sum(r[n][1] + r[n][2] for n in names) for r in runs]
    total = statistics.median(totals)
    lines = [
        "# Checking the shipped proofs",
        "",
        f"Median of {args.repeat} runs; each proof built fresh (with the lemmas it cites) and checked.",
        f"Machine: {platform.processor() or platform.machine()}, Python {platform.python_version()}.",
        "",
        "| proof | steps | build (ms) | check (ms) |",
        "| --- | ---: | ---: | ---: |",
        *(f"| {n} | {s} | {b * 1e3:.1f} | {c * 1e3:.1f} |" for n, s, b, c in rows),
        "",
        f"**Total: {total:.3f} s** (target: at most {TARGET_S:.0f} s; "
        f"{'met' if total <= TARGET_S else 'NOT met'}).",
        "",
    ]
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text("\n".join(lines))
    print("\n".join(lines))


if __name__ == "__main__":
    main()
