"""The backend part of ``markovcat demo``: compile sym with a Haar gamma, run it, check it.

Each equivariance check is printed under a plain verdict line (:func:`show_check`): a model
that should pass says ``passed, as it should``; a deliberately broken model, there to show
that the check has teeth, says ``deliberately broken (the check must catch it): caught``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch

from markovcat.backends.torch.equivariance import check_equivariance
from markovcat.experiments import examples as ex

__all__ = ["demo", "verdict", "show_check"]

Out = Callable[[str], object]


def verdict(report: Any, broken: str | None = None) -> str:
    """A one-line reading of an equivariance report, against what the check should say.

    ``broken=None`` means the model should pass; otherwise ``broken`` says why it must fail
    (e.g. ``"deliberately broken"``), and a failed check reads as the check doing its job.
    """
    if broken is None:
        return "passed, as it should" if report.passed else "FAILED: this model should have passed"
    if report.passed:
        return f"{broken} (the check must catch it): NOT caught, the check missed it"
    return f"{broken} (the check must catch it): caught"


def show_check(out: Out, label: str, report: Any, broken: str | None = None, full: bool = False) -> None:
    """Print ``label: verdict`` then the report, indented: its first two lines, or all of it but tensor dumps."""
    out(f"  {label}: {verdict(report, broken)}")
    lines = str(report).splitlines()
    for line in lines if full else lines[:2]:
        if not line.startswith(" " * 6):  # the counterexample's tensors: in the report object, not on screen
            out("      " + line)


def demo(out: Out = print) -> None:
    """Compile ``sym_haar(MLP)`` on O(3) point clouds, run it, print its code and equivariance checks.

    Runs on one torch thread (restored afterwards), so the printed figures are the same on every run.
    """
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        _demo(out)
    finally:
        torch.set_num_threads(previous)


def _demo(out: Out) -> None:
    torch.manual_seed(0)
    setup = ex.haar_sym(n=8, d=3, hidden=32)
    model = setup.model
    out("The model: sym(MLP), the stochastic symmetrisation G ~ Haar(O(3)); Y ~ k(G^-1 . x); return G . Y")
    out(f"around a 2-layer MLP k, on point clouds of 8 points in R^3, compiled to the module "
        f"{type(model).__name__} ({len(setup.diagram)} boxes).")
    out("Its generated forward pass (one line per box; w1, w3, ... are the diagram's wires):")
    for line in model.code.rstrip().splitlines():
        out("    " + line)
    x = torch.randn(2, 8, 3)
    y = model(x, generator=torch.Generator().manual_seed(0))
    out(f"Run on a batch: input shape {tuple(x.shape)} -> output shape {tuple(y.shape)}; "
        f"{sum(p.numel() for p in model.parameters())} trainable parameters.")
    out("")
    out("Equivariance checks (does model(g.x) = g.model(x) hold, in law, for random x and g in O(3)?):")
    show_check(out, "sym(MLP), Haar gamma", check_equivariance(model, setup.group, setup.action), full=True)
    broken = ex.recursive_sym(n=8, d=3, hidden=32, broken="wrong side")
    show_check(out, "recursive gamma composed on the wrong side, R = f(R0^T x) R0",
               check_equivariance(broken.model, broken.group, broken.action), broken="deliberately broken")
    out("  (shown in full for the first check only; print(report) gives the whole report)")
