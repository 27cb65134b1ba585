"""The training part of ``markovcat demo``: covariance estimation at d = 4, plain MLP vs its symmetrisation.

Trains an unsymmetrised MLP and its stochastic symmetrisation (recursive gamma, O(4)) on
Cornish's covariance-estimation task (:mod:`markovcat.experiments.covariance`) for the same
fixed number of Adam steps, from fixed seeds, on one torch thread, then prints the test
errors and the equivariance report of each: the plain MLP fails it, the symmetrised model
passes.  Training by steps (not by a time budget) makes the printed figures the same on a
rerun and on a busy machine.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import torch

from markovcat.backends.torch.groups import Orthogonal
from markovcat.experiments import covariance as cov
from markovcat.experiments.demo import STEPS
from markovcat.experiments.demo.backend import show_check

__all__ = ["STEPS", "LR", "demo", "run"]

#: The demo's learning rate: higher than Cornish's 1e-4, so that a short run already separates the models.
LR = 1e-3


def run(steps: int = STEPS, *, width: int = 250, train_size: int = 10_000, test_size: int = 1_000, seed: int = 0,
        lr: float = LR, progress: bool = True, threads: int | None = 1) -> dict[str, Any]:
    """Train both models for ``steps`` steps each; their test errors, final training losses and reports.

    ``threads`` sets torch's intra-op threads while training (restored afterwards): one
    thread is fastest for these small layers, and a fixed thread count keeps the floating-point
    reductions, hence the printed figures, the same from run to run.
    """
    previous = torch.get_num_threads()
    if threads is not None:
        torch.set_num_threads(threads)
    try:
        return _run(steps, width, train_size, test_size, seed, lr, progress)
    finally:
        torch.set_num_threads(previous)


def _run(steps: int, width: int, train_size: int, test_size: int, seed: int, lr: float,
         progress: bool) -> dict[str, Any]:
    start = time.perf_counter()
    train_data = cov.make_data(train_size, seed=seed)
    test_data = cov.make_data(test_size, seed=seed + 1)
    torch.manual_seed(seed)
    plain = cov.CovarianceMLP(width=width)
    torch.manual_seed(seed)
    model = cov.symmetrised(cov.CovarianceMLP(width=width), hidden=width)
    loss_plain = cov.train(plain, train_data, steps, lr=lr, seed=seed, label="plain MLP", progress=progress)
    loss_sym = cov.train(model, train_data, steps, lr=lr, seed=seed, label="sym(MLP)", progress=progress)
    group = Orthogonal(cov.D)
    x_action, y_action = group.left(cov.SAMPLES), group.conjugation()
    from markovcat.backends.torch.equivariance import check_equivariance

    inputs = test_data.x[:8]
    return {
        "plain": cov.evaluate(plain, test_data),
        "sym": cov.evaluate(model, test_data, seed=seed),
        "sample covariance": float(cov.relative_squared_error(cov.sample_covariance(test_data.x),
                                                              test_data.y).mean()),
        "steps": steps,
        "training loss": (loss_plain, loss_sym),
        "report plain": check_equivariance(plain, group, x_action, y_action, inputs=inputs),
        "report sym": check_equivariance(model, group, x_action, y_action, inputs=inputs),
        "model": model,
        "seconds": time.perf_counter() - start,
    }


def demo(out: Callable[[str], object] = print, steps: int = STEPS, progress: bool = True,
         **options: Any) -> dict[str, Any]:
    """Train a plain MLP and its stochastic symmetrisation for ``steps`` steps each; print errors and reports.

    The printed figures depend only on the arguments (fixed seeds, one thread, a fixed number
    of steps), not on the machine's load; ``options`` go to :func:`run` (``width``, ``seed``...).
    """
    width = options.get("width", 250)
    lr = options.get("lr", LR)
    out(f"The task (Cornish 2024, sec. 7.3): from x = A z, z ~ N(0, I_{cov.D}x{cov.SAMPLES}), "
        f"estimate y = A A^T; O({cov.D}) acts by g x and g y g^T.")
    out(f"Two models: an MLP of width {width}, and sym(MLP), its stochastic symmetrisation with the recursive")
    out("gamma R = R0 . QR(f([R0^T x, eps])), R0 ~ Haar(O(4)). Each is trained for the same fixed number of steps")
    out(f"({steps} Adam steps, lr {lr:g}, batch 100, seed {options.get('seed', 0)}, one torch thread), so a rerun "
        "prints the same figures.")
    result = run(steps, progress=progress, **options)
    out("Test relative squared error |f(x) - y|^2 / |y|^2 on 1,000 held-out examples (lower is better):")
    out(f"  plain MLP: {result['plain']:.4f}")
    out(f"  sym(MLP):  {result['sym']:.4f}")
    reference = result["sample covariance"]
    out(f"  for reference, the sample covariance x x^T / {cov.SAMPLES} (no training): {reference:.4f}")
    better = "sym(MLP)" if result["sym"] < result["plain"] else "the plain MLP"
    out(f"  after the same number of steps, {better} has the lower error.")
    out("Equivariance of each trained model (does f(g.x) = g.f(x) hold?):")
    show_check(out, "plain MLP", result["report plain"], broken="not symmetrised")
    show_check(out, "sym(MLP)", result["report sym"])
    return result

