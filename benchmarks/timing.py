"""Timing shared by the benchmarks: variants interleaved round by round, thread CPU time."""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping


def timed_rounds(variants: Mapping[str, Callable[[], None]], rounds: int, calls: int, *, warmup: int = 2,
                 statistic: Callable[[list[float]], float] = min) -> dict[str, float]:
    """``statistic`` over rounds of the mean thread CPU seconds per call of each variant.

    The variants run interleaved, in alternating order, after ``warmup`` calls each. The
    minimum (the default, as ``timeit`` advises) is the least disturbed round on a shared
    machine; pass ``statistics.median`` for the typical one.
    """
    for run in variants.values():
        for _ in range(warmup):
            run()
    samples: dict[str, list[float]] = {name: [] for name in variants}
    order = list(variants.items())
    for index in range(rounds):
        for name, run in order if index % 2 == 0 else order[::-1]:
            start = time.thread_time()
            for _ in range(calls):
                run()
            samples[name].append((time.thread_time() - start) / calls)
    return {name: statistic(values) for name, values in samples.items()}
