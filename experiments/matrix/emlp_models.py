"""The paper's two EMLP methods on the matrix tasks: the EMLP backbone, and Kim et al.'s gamma through an EMLP.

As in the paper's code (``stoch_sym``: ``model/semantic/networks.py``, ``print_runs.sh``), on
``O(d)`` with ``emlp``'s representations (``V = T(1)``, ``n = 25`` points):

========  ==============================  ==================  ==================================
task      EMLP backbone                   Kim et al.'s gamma  coordinates (torch layout -> emlp)
========  ==============================  ==================  ==================================
cov       ``n V -> T(2)``                 ``(n + 1) V``       ``x`` by columns; ``y`` row-major
linreg    ``n (V + T(0)) -> V``           ``n (V + T(0)) + V``  ``x`` by columns ``[z_k; w_k]``
expm      ``T(2) -> T(2)``                ``T(2) + V``        row-major
inv1      ``d V -> d V``                  ``(d + 1) V``       ``x`` by columns; ``y`` by rows
========  ==============================  ==================  ==================================

The backbone: three blocks on ``uniform_rep(250, O(d))`` and an equivariant linear layer (no
gamma).  Kim et al.'s gamma: the noise ``eps ~ N(0, I_d)`` appended to the input as one more
``V``; one block on ``uniform_rep(250, O(d))``, then an equivariant linear layer to ``d V``,
``d`` vectors stacked as the columns of a ``d x d`` matrix, orthonormalised by QR with the sign
fix (:func:`~markovcat.backends.torch.gammas.noise_outsourced`).  The two-sided ``inv``
(``O(d) x O(d)``) has no such setting: the paper's code runs its EMLP baselines on ``inv1``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch import Tensor, nn

from markovcat.backends.torch.gammas import Gamma, noise_outsourced
from markovcat.backends.torch.matrix_groups import left_multiplication
from markovcat.experiments.matrix.equivariant_mlp import EMLP, require_emlp
from markovcat.experiments.matrix.tasks import POINTS, Task

__all__ = ["EMLP_TASKS", "representations", "EMLPBackbone", "EMLPColumns", "emlp_backbone", "emlp_gamma",
           "flatten_input"]

#: The tasks with an EMLP setting (one group, ``O(d)``).
EMLP_TASKS: tuple[str, ...] = ("cov", "linreg", "expm", "inv1")


def _check(task: Task) -> None:
    if task.name not in EMLP_TASKS:
        raise ValueError(f"task {task.name!r} has no EMLP setting: its group is {task.group.name}, and the paper's "
                         f"code runs its EMLP baselines on the one-group tasks {', '.join(EMLP_TASKS)} (for "
                         f"inversion: inv1)")


def representations(task: Task, noise: bool = False) -> tuple[Any, Any]:
    """``(rep_in, rep_out)`` of ``task`` in ``emlp``'s terms; ``noise=True``: one more ``V`` in, ``d V`` out."""
    _check(task)
    reps = require_emlp().reps
    V, T, Scalar = reps.V, reps.T, reps.Scalar
    d = task.d
    rep_in, rep_out = {"cov": (POINTS * V, T(2)), "linreg": (POINTS * (V + Scalar), V), "expm": (T(2), T(2)),
                       "inv1": (d * V, d * V)}[task.name]
    return (rep_in + V, d * V) if noise else (rep_in, rep_out)


def flatten_input(task_name: str, x: Tensor) -> Tensor:
    """Inputs as ``emlp``'s coordinate vectors (columns as vectors; ``expm``'s ``T(2)``: row-major)."""
    return x.flatten(1) if task_name == "expm" else x.transpose(-1, -2).flatten(1)


def _widths(hidden: Sequence[int], what: str) -> tuple[int, int]:
    widths = tuple(hidden)
    if not widths or len(set(widths)) != 1:
        raise ValueError(f"an EMLP has equal hidden layers (uniform_rep(ch) each): {what} must repeat one width, "
                         f"got {widths}")
    return widths[0], len(widths)


class EMLPBackbone(nn.Module):
    """The EMLP baseline: ``x -> y`` in the task's torch layout, through an ``emlp`` network."""

    def __init__(self, task: Task, hidden: Sequence[int], seed: int) -> None:
        super().__init__()
        emlp = require_emlp()
        self.task_name, self.y_shape = task.name, task.y_shape
        ch, layers = _widths(hidden, "backbone_hidden")
        rep_in, rep_out = representations(task)
        self.net = EMLP(rep_in, rep_out, emlp.groups.O(task.d), ch, layers, seed=seed)

    def forward(self, x: Tensor) -> Tensor:
        y = self.net(flatten_input(self.task_name, x))
        return y.view(-1, *self.y_shape)  # row-major: T(2), and inv1's rows as vectors


class EMLPColumns(nn.Module):
    """Kim et al.'s ``h(x, eps)``: an EMLP on ``[x, eps]`` to ``d`` vectors, the columns of a ``(d, d)`` matrix."""

    def __init__(self, task: Task, hidden: Sequence[int], seed: int) -> None:
        super().__init__()
        emlp = require_emlp()
        self.task_name, self.d = task.name, task.d
        ch, layers = _widths(hidden, "gamma_hidden")
        rep_in, rep_out = representations(task, noise=True)
        self.net = EMLP(rep_in, rep_out, emlp.groups.O(task.d), ch, layers, seed=seed)

    def forward(self, x: Tensor, eps: Tensor) -> Tensor:
        flat = torch.cat([flatten_input(self.task_name, x), eps.flatten(1)], dim=1)
        vectors = self.net(flat).view(-1, self.d, self.d)  # (b, vector, coordinate)
        return vectors.transpose(-1, -2)


def emlp_backbone(task: Task, hidden: Sequence[int], seed: int) -> EMLPBackbone:
    """The paper's EMLP baseline for ``task`` (``hidden``: equal widths, one ``uniform_rep`` block each)."""
    return EMLPBackbone(task, hidden, seed)


def emlp_gamma(task: Task, hidden: Sequence[int], seed: int) -> Gamma:
    """Kim et al.'s gamma as the paper builds it: ``QR(EMLP([x, eps]))``, ``eps`` one standard normal vector."""
    _check(task)
    group: Any = task.group
    return noise_outsourced(EMLPColumns(task, hidden, seed), group, task.input, left_multiplication(group, 1))
