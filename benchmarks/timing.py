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
    return {name: statistic(values) for name, values in timed_samples(variants, rounds, calls, warmup).items()}


def paired_ratio(samples: Mapping[str, list[float]], numerator: str, denominator: str) -> tuple[float, float, float]:
    """``(median, lower quartile, upper quartile)`` of the per-round ratios ``numerator / denominator``.

    Both variants ran in the same rounds, next to each other, so a round's ratio cancels what
    disturbed that round; the spread of the ratios says how far one ratio can be trusted.
    """
    ratios = sorted(a / b for a, b in zip(samples[numerator], samples[denominator], strict=True))
    if not ratios:
        raise ValueError("no rounds were timed")

    def quantile(q: float) -> float:
        position = q * (len(ratios) - 1)
        low = int(position)
        high = min(low + 1, len(ratios) - 1)
        return ratios[low] + (ratios[high] - ratios[low]) * (position - low)

    return quantile(0.5), quantile(0.25), quantile(0.75)


def timed_samples(variants: Mapping[str, Callable[[], None]], rounds: int, calls: int,
                  warmup: int = 2) -> dict[str, list[float]]:
    """Per round, the mean thread CPU seconds per call of each variant (interleaved, alternating order)."""
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
    return samples
