"""Benchmark: building diagrams by folds, beside deciding and explaining their equality.

Usage::

    python benchmarks/building.py [--sizes 1000 4000 16000 64000] [--limit 20]

Users build diagrams in loops.  For each fold pattern and size ``n`` (number of boxes) the
script times, in one run:

* building: ``acc = kk >> acc`` (right fold), ``acc = acc >> kk`` (left fold),
  ``acc = acc @ f`` and ``acc = f @ acc``, ``n`` steps from the identity;
* joining: the first use of the term graph (``d.nodes``), which ``>>`` and ``@`` defer;
* ``mc.equal`` between the result and the same diagram built by the mirror fold
  (right vs left, ``acc @ f`` vs ``f @ acc``): equal, and asserted so;
* ``mc.explain`` on an unequal pair: the same fold with one box, near the inputs,
  replaced (the first difference is as deep as it can be); the message length is shown.

A size is skipped when the times measured so far predict that one of these steps would
take more than ``--limit`` seconds (fitting the growth between the last two sizes).  Wall-clock times
(``time.perf_counter``), garbage collector on, as users run; medians of ``--repeats``
runs.  The Markdown table is printed and written to ``benchmarks/results/building.md``.
"""

from __future__ import annotations

import argparse
import gc
import math
import platform
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import markovcat as mc

X = mc.Ty("X")
I = mc.Ty()  # noqa: E741
KK = mc.Box("kk", X, X)
F = mc.Box("f", X, X, deterministic=True)
OTHER = {"kk": mc.Box("hh", X, X), "f": mc.Box("g", X, X, deterministic=True)}

Fold = Callable[[int, int], mc.Diagram]  # (size, index of the box to replace or -1) -> diagram


def _box(name: str, i: int, odd: int) -> mc.Diagram:
    base = KK if name == "kk" else F
    return OTHER[name] if i == odd else base


def right_then(n: int, odd: int = -1) -> mc.Diagram:
    acc = mc.Id(X)
    for i in range(n):
        acc = _box("kk", n - 1 - i, odd) >> acc
    return acc


def left_then(n: int, odd: int = -1) -> mc.Diagram:
    acc = mc.Id(X)
    for i in range(n):
        acc = acc >> _box("kk", i, odd)
    return acc


def left_tensor(n: int, odd: int = -1) -> mc.Diagram:
    acc = mc.Id(I)
    for i in range(n):
        acc = acc @ _box("f", i, odd)
    return acc


def right_tensor(n: int, odd: int = -1) -> mc.Diagram:
    acc = mc.Id(I)
    for i in range(n):
        acc = _box("f", n - 1 - i, odd) @ acc
    return acc


#: pattern -> (fold, its mirror): both build the same diagram.
PATTERNS: dict[str, tuple[Fold, Fold]] = {
    "`acc = kk >> acc` (right fold)": (right_then, left_then),
    "`acc = acc >> kk` (left fold)": (left_then, right_then),
    "`acc = acc @ f`": (left_tensor, right_tensor),
    "`acc = f @ acc`": (right_tensor, left_tensor),
}


def median(fn: Callable[[], Any], repeats: int) -> tuple[float, Any]:
    times, value = [], None
    for _ in range(repeats):
        start = time.perf_counter()
        value = fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times), value


def joined(d: mc.Diagram) -> mc.Diagram:
    """``d`` with its term graph joined (the first use of ``d.nodes``)."""
    assert len(d.nodes) == len(d)
    return d


def measure(fold: Fold, mirror: Fold, n: int, repeats: int) -> dict[str, Any]:
    build, d = median(lambda: fold(n), repeats)
    fresh = fold(n)
    join, _ = median(lambda: joined(fresh), 1)  # the join is cached: time it once, on a fresh diagram
    other = joined(mirror(n))
    joined(d)
    eq, answer = median(lambda: mc.equal(d, other), repeats)
    assert answer is True, "the mirror fold builds the same diagram"
    odd = joined(fold(n, 0))  # the box nearest the inputs replaced
    ne, message = median(lambda: mc.explain(d, odd), repeats)
    assert not mc.equal(d, odd)
    return {"build": build, "join": join, "equal": eq, "explain": ne, "message": len(message)}


def fmt(seconds: float | None) -> str:
    if seconds is None:
        return "skipped"
    if seconds < 1e-3:
        return f"{seconds * 1e6:.0f} µs"
    if seconds < 1:
        return f"{seconds * 1e3:.3g} ms"
    return f"{seconds:.3g} s"


def render(rows: list[tuple[str, int, dict[str, Any] | None]], repeats: int, limit: float) -> str:
    lines = [
        "| fold | boxes | build | per box | join (first use) | `mc.equal` (mirror fold) | `mc.explain` (unequal) "
        "| explain message |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for pattern, n, row in rows:
        if row is None:
            lines.append(f"| {pattern} | {n:,} | skipped (a step predicted > {limit:g} s) | | | | | |")
            continue
        lines.append(
            f"| {pattern} | {n:,} | {fmt(row['build'])} | {fmt(row['build'] / n)} | {fmt(row['join'])} | "
            f"{fmt(row['equal'])} | {fmt(row['explain'])} | {row['message']:,} chars |"
        )
    lines += [
        "",
        f"Median wall-clock time of {repeats} runs, garbage collector on; Python {platform.python_version()}, "
        f"{platform.machine()}. `>>` and `@` record their operands and join the term graphs on first use, in one "
        "linear pass; *join* is that first use. `mc.equal` compares the diagram with the same one built by the "
        "mirror fold (asserted equal); `mc.explain` compares it with a copy whose box nearest the inputs is "
        "replaced, so the first difference is at the far end of every path from the outputs.",
        "",
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="building diagrams by folds, beside equal and explain")
    parser.add_argument("--sizes", type=int, nargs="+", default=[1000, 4000, 16000, 64000])
    parser.add_argument("--limit", type=float, default=20.0, help="skip a size predicted to take longer (seconds)")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results" / "building.md")
    args = parser.parse_args(argv)
    sys.setrecursionlimit(1000)  # the default: nothing here needs a deeper stack
    assert gc.isenabled()
    rows: list[tuple[str, int, dict[str, Any] | None]] = []
    for pattern, (fold, mirror) in PATTERNS.items():
        history: list[tuple[int, float]] = []
        for n in sorted(args.sizes):
            if len(history) >= 2:
                (n0, t0), (n1, t1) = history[-2:]
                power = max(1.0, math.log(max(t1, 1e-9) / max(t0, 1e-9)) / math.log(n1 / n0))
                predicted = t1 * (n / n1) ** power
                if predicted > args.limit:
                    rows.append((pattern, n, None))
                    continue
            row = measure(fold, mirror, n, args.repeats)
            history.append((n, max(row["build"], row["join"], row["equal"], row["explain"])))
            rows.append((pattern, n, row))
            print(f"{pattern} n={n}: build {fmt(row['build'])}, join {fmt(row['join'])}, equal "
                  f"{fmt(row['equal'])}, explain {fmt(row['explain'])}", file=sys.stderr, flush=True)
    table = render(rows, args.repeats, args.limit)
    print(table)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(table)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
