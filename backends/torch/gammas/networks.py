"""The networks the gammas are made of: into a group (:class:`GroupNet`), Kim et al.'s (:class:`GramNet`,
:class:`EquivariantVectors`) and the noisy sort into ``S_n`` (:class:`NoisySort`).

Gradients: QR is differentiable, so gradients reach the networks of
:func:`~markovcat.backends.torch.gammas.noise_outsourced` and
:func:`~markovcat.backends.torch.gammas.recursive`.  ``argsort`` is not: :class:`NoisySort`
returns, for :class:`~markovcat.backends.torch.finite_groups.PermutationMatrices`, the exact
permutation matrix in the forward pass and the gradient of its NeuralSort relaxation
(Grover et al. 2019, temperature ``tau``) in the backward pass (straight-through).
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor, nn

from markovcat.backends.torch.compile import InterpretationError
from markovcat.backends.torch.gammas.recognise import project, raw_size
from markovcat.backends.torch.groups import Orthogonal, TorchGroup, as_rows, check_layout

__all__ = ["GroupNet", "GramNet", "EquivariantVectors", "MLPFrame", "NoisySort"]


class GroupNet(nn.Module):
    """``(x, eps) |-> project(mlp([x, eps]))``: an unconstrained network into ``G`` (a recursive gamma's ``f``)."""

    layer2: nn.Linear
    """The second layer, to the raw numbers ``project`` maps into the group."""
    layer1: nn.Linear
    """The first layer, on ``[x, eps]`` flattened."""

    group: Any
    """The group whose elements the network outputs."""

    def __init__(self, group: Any, in_numel: int, noise_numel: int, hidden: int = 64) -> None:
        super().__init__()
        self.group = group
        self.layer1 = nn.Linear(in_numel + noise_numel, hidden)
        self.layer2 = nn.Linear(hidden, raw_size(group))

    def forward(self, x: Tensor, eps: Tensor) -> Tensor:
        """``project(mlp([x, eps]))``: elements of ``group`` for inputs ``x`` and noise ``eps``."""
        h = torch.cat([x.flatten(1), eps.flatten(1)], dim=1)
        return project(self.group, self.layer2(torch.nn.functional.silu(self.layer1(h))))


class GramNet(nn.Module):
    """Kim et al.'s noise-outsourced O(d)-equivariant ``h(x, eps)``: ``z = [x, eps]`` (as rows), ``h = z^T W(z z^T)``.

    The Gram matrix ``z z^T`` is invariant, so ``h(g.x, g.eps) = g h(x, eps)``; with
    ``eps ~ N(0, I)`` (an O(d)-invariant law), ``QR(h(x, eps))`` is an equivariant gamma in
    law (:func:`noise_outsourced`).  ``points`` input and ``noise_points`` noise points,
    in rows ``(n, d)`` or, with ``layout="columns"``, columns ``(d, n)``.
    """

    layer2: nn.Linear
    """The second layer, to the weights ``W``."""
    layer1: nn.Linear
    """The first layer, on the flattened Gram matrix."""
    vouched = True  # O(d)-equivariant by construction, tested in the library's suite (gammas.vouched)

    def __init__(self, group: Orthogonal, points: int, layout: str = "rows", noise_points: int = 2,
                 hidden: int = 64) -> None:
        super().__init__()
        self.group, self.layout, self.total = group, check_layout(layout), points + noise_points
        self.layer1 = nn.Linear(self.total * self.total, hidden)
        self.layer2 = nn.Linear(hidden, self.total * group.d)

    def forward(self, x: Tensor, eps: Tensor) -> Tensor:
        """``h = z^T W(z z^T)`` for inputs ``x`` and noise ``eps``, ``(batch, d, d)``."""
        z = torch.cat([as_rows(x, self.layout), as_rows(eps, self.layout)], dim=-2)  # (b, total, d)
        gram = (z @ z.transpose(-1, -2)).flatten(1)
        w = self.layer2(torch.nn.functional.silu(self.layer1(gram))).view(-1, self.total, self.group.d)
        return z.transpose(-1, -2) @ w


class EquivariantVectors(nn.Module):
    """An ``O(d)``-equivariant ``h : (x (n, d), eps (m, d)) |-> (d, d)`` for Kim et al.'s gamma.

    Column ``k`` of the output is ``sum_j z_j s_k(|z_j|^2, <z_j, mean z>)`` over the rows
    ``z_j`` of ``[x; eps]``, with ``s`` a small MLP on these rotation invariants; so
    ``h(x g^T, eps g^T) = g h(x, eps)``.  Any ``O(d)``-equivariant network works in its place;
    a non-equivariant one breaks the gamma's equivariance.
    """

    weights: nn.Sequential
    """The small MLP ``s`` on the rotation invariants of each row."""
    vouched = True  # O(d)-equivariant by construction, tested in the library's suite (gammas.vouched)

    def __init__(self, d: int, hidden: int = 32) -> None:
        super().__init__()
        self.weights = nn.Sequential(nn.Linear(2, hidden), nn.SiLU(), nn.Linear(hidden, d))

    def forward(self, x: Tensor, eps: Tensor) -> Tensor:
        """``h(x, eps)``, ``(batch, d, d)``: column ``k`` is ``sum_j z_j s_k(...)`` over the rows of ``[x; eps]``."""
        z = torch.cat([x, eps], dim=-2)
        invariants = torch.stack([(z * z).sum(-1), (z * z.mean(-2, keepdim=True)).sum(-1)], dim=-1)
        return z.transpose(-1, -2) @ self.weights(invariants)


class MLPFrame(GroupNet):
    """``(x, eps) |-> QR(mlp([x, eps]))`` into ``O(d)``: :class:`GroupNet` for ``O(d)`` (for :func:`recursive`)."""

    d: int
    """The dimension ``d`` of the points."""

    def __init__(self, x_size: int, noise_size: int, d: int, hidden: int = 64) -> None:
        super().__init__(Orthogonal(d), x_size, noise_size, hidden)
        self.d = d


class _Projected(nn.Module):
    def __init__(self, net: nn.Module, group: Orthogonal) -> None:
        super().__init__()
        self.net, self.group = net, group

    def forward(self, x: Tensor, eps: Tensor) -> Tensor:
        return project(self.group, self.net(x, eps))


class NoisySort(nn.Module):
    """``(x (n, d), eps (n,)) |-> argsort(score(x_i) + scale eps_i)`` as an element of ``S_n``.

    ``score`` acts row by row (so permuting rows permutes scores).  For
    :class:`~markovcat.backends.torch.groups.Symmetric` it returns index vectors (no
    gradient); for :class:`~markovcat.backends.torch.finite_groups.PermutationMatrices` the
    exact permutation matrix, with the NeuralSort relaxation's gradient (straight-through).
    """

    def __init__(self, score: nn.Module, group: TorchGroup, scale: float = 1.0, tau: float = 1.0) -> None:
        super().__init__()
        if not callable(getattr(group, "from_indices", None)):
            raise InterpretationError(f"NoisySort lands in S_n (a group with from_indices), not {group.name}")
        self.score, self.group, self.scale, self.tau = score, group, scale, tau
        self.relaxed = group.spec.dtype is None  # floating elements (permutation matrices): straight-through

    def forward(self, x: Tensor, eps: Tensor) -> Tensor:
        """``argsort(score(x_i) + scale eps_i)``: index vectors, or permutation matrices with the relaxed gradient."""
        s = self.score(x).squeeze(-1) + self.scale * eps
        order = torch.argsort(s, dim=-1)
        if not self.relaxed:
            return order  # type: ignore[no-any-return]
        hard = self.group.from_indices(order, s.dtype)  # type: ignore[attr-defined]
        soft = _neural_sort(-s, self.tau).transpose(-1, -2)  # ascending order; M = S^T
        return hard + (soft - soft.detach())


def _neural_sort(s: Tensor, tau: float) -> Tensor:
    """NeuralSort: a row-stochastic relaxation of the matrix sorting ``s`` in decreasing order."""
    n = s.shape[-1]
    pairwise = (s.unsqueeze(-1) - s.unsqueeze(-2)).abs().sum(-1)  # A 1
    scaling = (n + 1 - 2 * torch.arange(1, n + 1, dtype=s.dtype, device=s.device))
    logits = scaling.unsqueeze(-1) * s.unsqueeze(-2) - pairwise.unsqueeze(-2)
    return torch.softmax(logits / tau, dim=-1)
