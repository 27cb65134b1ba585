"""Ready-made symmetrised models on O(d) point clouds, correct and deliberately broken.

Used by the demo, the benchmarks and the tests.  Each builder returns a
:class:`Setup`: the diagram, its compiled module, and the torch group and action.

* :func:`haar_sym` - ``x |-> R . k(R^-1 . x)``, ``R ~ Haar`` (stochastic symmetrisation,
  built by :func:`markovcat.symmetrisation.sym` with :func:`~markovcat.symmetrisation.haar_gamma`);
  ``broken="inverse output"`` acts on the output by ``R^-1`` instead of ``R``.
* :func:`recursive_sym` - the recursive gamma ``R = R0 . f(R0^-1 . x, eps)``, ``R0 ~ Haar``,
  ``eps ~ N(0, I)``; ``broken="wrong side"`` composes ``R = f(R0^-1 . x, eps) . R0``.
* :func:`canonical_sym` - canonicalisation by the moment frame (deterministic);
  ``broken="inverse output"`` as above.
* :func:`plain` - the MLP alone (not equivariant).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor, nn

from markovcat.backends.torch.compile import CompiledDiagram, Gaussian, Interpretation, Spec, compile
from markovcat.backends.torch.frames import PCACanonicaliser
from markovcat.backends.torch.groups import Orthogonal, TorchAction
from markovcat.backends.torch.linalg import orthonormalise
from markovcat.groups import Action, Group
from markovcat.program import program
from markovcat.syntax import Box, Diagram, Ty

__all__ = ["PointMLP", "FrameNet", "Setup", "haar_sym", "recursive_sym", "canonical_sym", "plain"]


class PointMLP(nn.Module):
    """A 2-layer MLP on flattened point clouds ``(n, d) -> (n, d)`` (no symmetry at all)."""

    def __init__(self, n: int, d: int, hidden: int = 64) -> None:
        super().__init__()
        self.n, self.d = n, d
        self.layer1 = nn.Linear(n * d, hidden)
        self.layer2 = nn.Linear(hidden, n * d)

    def forward(self, x: Tensor) -> Tensor:
        return self.layer2(torch.nn.functional.silu(self.layer1(x.flatten(1)))).view(-1, self.n, self.d)


class FrameNet(nn.Module):
    """``(x, eps) |-> QR(mlp([x, eps]))``: an unconstrained network into O(d) (for a recursive gamma)."""

    def __init__(self, n: int, d: int, hidden: int = 64) -> None:
        super().__init__()
        self.d = d
        self.layer1 = nn.Linear(n * d + d * d, hidden)
        self.layer2 = nn.Linear(hidden, d * d)

    def forward(self, x: Tensor, eps: Tensor) -> Tensor:
        h = torch.cat([x.flatten(1), eps.flatten(1)], dim=1)
        m = self.layer2(torch.nn.functional.silu(self.layer1(h))).view(-1, self.d, self.d)
        return orthonormalise(m)


@dataclass
class Setup:
    """A diagram, its compiled model, and the torch group and action it is equivariant for."""

    diagram: Diagram
    model: CompiledDiagram
    group: Orthogonal
    action: TorchAction
    interpretation: Interpretation


def _base(n: int, d: int, hidden: int, seed: int) -> tuple[Group, Action, Ty, Orthogonal, TorchAction, Interpretation,
                                                         Box, PointMLP]:
    torch.manual_seed(seed)
    G, X = Group(f"O{d}"), Ty("X")
    act = Action("rot", G, X)
    group = Orthogonal(d)
    points = group.points(n)
    k = Box("mlp", X, X, deterministic=True)
    mlp = PointMLP(n, d, hidden)
    return G, act, X, group, points, group.interpretation(G, (act, points)), k, mlp


def haar_sym(n: int = 16, d: int = 3, hidden: int = 64, *, broken: str | None = None, seed: int = 0,
             **options: Any) -> Setup:
    """Stochastic symmetrisation of an MLP with a Haar gamma on O(d) point clouds."""
    from markovcat.gspace import GSpace
    from markovcat.symmetrisation import haar_gamma, sym

    G, act, X, group, points, interpretation, k, mlp = _base(n, d, hidden, seed)
    if broken is None:
        space = GSpace(X, act)
        diagram = sym(k, haar_gamma(space), space).diagram
    elif broken == "inverse output":
        lam = Box(f"lambda_{G.name}", Ty(), G.ty)

        @program(X, X)
        def diagram(x: Any) -> Any:
            r = lam()
            return act.act(G.inv(r), k(act.act(G.inv(r), x)))
    else:
        raise ValueError(f"unknown breakage {broken!r}")
    interpretation = interpretation | Interpretation({k: mlp, f"lambda_{G.name}": group.haar_sampler()})
    return Setup(diagram, compile(diagram, interpretation, name="sym_haar", **options), group, points, interpretation)


def recursive_sym(n: int = 16, d: int = 3, hidden: int = 64, *, broken: str | None = None, seed: int = 0,
                  **options: Any) -> Setup:
    """Symmetrisation with the recursive gamma ``R = R0 . f(R0^-1 . x, eps)``."""
    G, act, X, group, points, interpretation, k, mlp = _base(n, d, hidden, seed)
    E = Ty("E")
    lam, noise = Box("haar", Ty(), G.ty), Box("eps", Ty(), E)
    f = Box("frame_net", X @ E, G.ty, deterministic=True)
    if broken not in (None, "wrong side"):
        raise ValueError(f"unknown breakage {broken!r}")

    @program(X, X)
    def diagram(x: Any) -> Any:
        r0 = lam()
        inner = f(act.act(G.inv(r0), x), noise())
        r = G.mul(r0, inner) if broken is None else G.mul(inner, r0)
        return act.act(r, k(act.act(G.inv(r), x)))

    interpretation = interpretation | Interpretation(
        {k: mlp, f: FrameNet(n, d, hidden), lam: group.haar_sampler(), noise: Gaussian((d, d))},
        types={E: Spec((d, d))},
    )
    model = compile(diagram, interpretation, name="sym_recursive", **options)
    return Setup(diagram, model, group, points, interpretation)


def canonical_sym(n: int = 16, d: int = 3, hidden: int = 64, *, broken: str | None = None, seed: int = 0,
                  validate: bool = True, **options: Any) -> Setup:
    """Canonicalisation ``x |-> F(x) . k(F(x)^-1 . x)`` with the PCA frame ``F`` (deterministic; Kaba et al.)."""
    G, act, X, group, points, interpretation, k, mlp = _base(n, d, hidden, seed)
    frame = Box("frame", X, G.ty, deterministic=True)
    if broken not in (None, "inverse output"):
        raise ValueError(f"unknown breakage {broken!r}")

    @program(X, X)
    def diagram(x: Any) -> Any:
        r = frame(x)
        out = r if broken is None else G.inv(r)
        return act.act(out, k(act.act(G.inv(r), x)))

    interpretation = interpretation | Interpretation({k: mlp, frame: PCACanonicaliser(validate=validate)})
    return Setup(diagram, compile(diagram, interpretation, name="canonicalise", **options), group, points,
                 interpretation)


def plain(n: int = 16, d: int = 3, hidden: int = 64, *, seed: int = 0, **options: Any) -> Setup:
    """The MLP alone, compiled from the one-box diagram."""
    G, act, X, group, points, interpretation, k, mlp = _base(n, d, hidden, seed)
    return Setup(k, compile(k, interpretation | Interpretation({k: mlp}), **options), group, points, interpretation)

