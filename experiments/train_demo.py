"""The training part of ``markovcat demo``: covariance estimation at d = 4, plain MLP vs its symmetrisation.

Trains an unsymmetrised MLP and its stochastic symmetrisation (recursive gamma, O(4))
on Cornish's covariance-estimation task (:mod:`markovcat.experiments.covariance`), each for
about ``seconds / 2`` of CPU wall clock, then prints the test errors and the
equivariance report of each: the plain MLP fails it, the symmetrised model passes.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import torch

from markovcat.backends.torch.groups import Orthogonal
from markovcat.experiments import covariance as cov

__all__ = ["demo", "run"]


def run(seconds: float = 60.0, *, width: int = 250, train_size: int = 10_000, test_size: int = 1_000, seed: int = 0,
        lr: float = 1e-4, progress: bool = True, threads: int | None = 1) -> dict[str, Any]:
    """Train both models; returns their test errors, step counts, reports and the time taken.

    ``threads`` sets torch's intra-op threads while training (restored afterwards): one
    thread is fastest for these small layers and keeps the two runs comparable on a busy machine.
    """
    if seconds <= 0:
        raise ValueError(f"seconds must be positive, got {seconds}")
    previous = torch.get_num_threads()
    if threads is not None:
        torch.set_num_threads(threads)
    try:
        return _run(seconds, width, train_size, test_size, seed, lr, progress)
    finally:
        torch.set_num_threads(previous)


def _run(seconds: float, width: int, train_size: int, test_size: int, seed: int, lr: float,
         progress: bool) -> dict[str, Any]:
    start = time.perf_counter()
    torch.manual_seed(seed)
    train_data = cov.make_data(train_size, seed=seed)
    test_data = cov.make_data(test_size, seed=seed + 1)
    plain = cov.CovarianceMLP(width=width)
    torch.manual_seed(seed)
    model = cov.symmetrised(cov.CovarianceMLP(width=width), hidden=width)
    budget = max(1.0, (seconds - (time.perf_counter() - start)) * 0.9 / 2)  # leave time for the reports
    steps_plain = cov.train(plain, train_data, budget, lr=lr, seed=seed, label="plain MLP", progress=progress)
    steps_sym = cov.train(model, train_data, budget, lr=lr, seed=seed, label="sym (recursive gamma)",
                          progress=progress)
    group = Orthogonal(cov.D)
    x_action, y_action = cov.left_multiplication(group), cov.conjugation(group)
    from markovcat.backends.torch.equivariance import check_equivariance

    inputs = test_data.x[:8]
    return {
        "plain": cov.evaluate(plain, test_data),
        "sym": cov.evaluate(model, test_data, seed=seed),
        "sample covariance": float(cov.relative_squared_error(cov.sample_covariance(test_data.x),
                                                              test_data.y).mean()),
        "steps": (steps_plain, steps_sym),
        "report plain": check_equivariance(plain, group, x_action, y_action, inputs=inputs),
        "report sym": check_equivariance(model, group, x_action, y_action, inputs=inputs),
        "model": model,
        "seconds": time.perf_counter() - start,
    }


def demo(out: Callable[[str], object] = print, seconds: float = 60.0, progress: bool = True) -> dict[str, Any]:
    """Train a plain MLP and its stochastic symmetrisation in about ``seconds`` of CPU; print errors and reports."""
    out(f"Covariance estimation (Cornish 2024, sec. 7.3): x = A z, z ~ N(0, I_{cov.D}x{cov.SAMPLES}), "
        f"y = A A^T; O({cov.D}) acts by g x and g y g^T.")
    out(f"An MLP (width 250) and sym(MLP) with the recursive gamma R = R0 . QR(f([R0^T x, eps])), "
        f"about {seconds / 2:.0f} s of training each (Adam, batch 100, relative squared error):")
    result = run(seconds, progress=progress)
    out(f"  test relative squared error (1,000 examples): plain MLP {result['plain']:.4f} "
        f"({result['steps'][0]} steps), sym(MLP) {result['sym']:.4f} ({result['steps'][1]} steps); "
        f"the sample covariance x x^T / {cov.SAMPLES} scores {result['sample covariance']:.4f}")
    out("")
    out("plain MLP:")
    out("  " + str(result["report plain"]).replace("\n", "\n  "))
    out("sym(MLP), recursive gamma:")
    out("  " + str(result["report sym"]).replace("\n", "\n  "))
    out(f"training and checks took {result['seconds']:.1f} s")
    return result
