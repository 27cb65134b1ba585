"""The backend part of ``markovcat demo``: compile sym with a Haar gamma, run it, check it."""

from __future__ import annotations

from collections.abc import Callable

import torch

from markovcat.backends.torch.equivariance import check_equivariance
from markovcat.experiments import examples as ex

__all__ = ["demo"]


def demo(out: Callable[[str], object] = print) -> None:
    """Compile ``sym_haar(MLP)`` on O(3) point clouds, run it, print its code and equivariance reports."""
    torch.manual_seed(0)
    setup = ex.haar_sym(n=8, d=3, hidden=32)
    model = setup.model
    out("Stochastic symmetrisation G ~ Haar(O(3)); Y ~ k(G^-1 . x); return G . Y, around a 2-layer MLP")
    out(f"on point clouds of 8 points in R^3, compiled to {type(model).__name__} ({len(setup.diagram)} boxes).")
    out("Generated forward:")
    out(model.code.rstrip())
    x = torch.randn(2, 8, 3)
    y = model(x, generator=torch.Generator().manual_seed(0))
    out(f"model(x) for x of shape {tuple(x.shape)} -> {tuple(y.shape)}; "
        f"{sum(p.numel() for p in model.parameters())} parameters")
    out("")
    out(str(check_equivariance(model, setup.group, setup.action)))
    out("")
    broken = ex.recursive_sym(n=8, d=3, hidden=32, broken="wrong side")
    out("The same check on a recursive gamma composed on the wrong side (R = f(R0^T x) R0):")
    out(str(check_equivariance(broken.model, broken.group, broken.action)))
