"""The synthetic matrix tasks of Cornish 2024, section 7.3: data generators, targets and the declared symmetry.

Settings follow the paper's public research code (``stoch_sym``: ``datasets.py`` for the data,
``print_runs.sh`` for the group and actions of each task, ``experiment.py`` for the loss).
``x`` has ``d`` rows; all entries below are standard normal.

========  ==============================  ==============  ===========================  =========================
task      x                               target          input action                 output action
========  ==============================  ==============  ===========================  =========================
cov       ``G Z`` (``G`` d x d,           ``G G^T``       ``x -> g x``                 ``y -> g y g^T``
          ``Z`` d x 25)
linreg    ``[Z; y^T Z + u]`` (``Z``       ``y`` (d,)      ``g`` on ``Z``, the last     ``y -> g y``
          d x 25, ``u`` 1 x 25)                           row fixed
expm      d x d                           ``exp(x)``      ``x -> g x g^T``             ``y -> g y g^T``
inv       d x d                           ``x^-1``        ``(g, h): x -> g x h^T``     ``y -> h y g^T``
          (group ``O(d) x O(d)``)
inv1      d x d                           ``x^-1``        ``x -> g x``                 ``y -> y g^T``
========  ==============================  ==============  ===========================  =========================

``inv1`` is the one-group setting the paper's code uses for its Kim et al. and EMLP baselines
on inversion (``--group=orth --input-action=lmul --output-action=rmul``): ``(g x)^-1 = x^-1 g^T``.

For ``cov`` and ``linreg`` the target is not a function of ``x`` (it is a latent of the
generator), so :meth:`Task.target` raises there; :func:`cov_example` and
:func:`linreg_example` give ``(x, y)`` from the latents, and equivariance holds in law:
moving the latents by ``g`` (``G -> g G``; ``y -> g y``, ``Z -> g Z``) moves ``(x, y)`` by the
declared actions, and leaves their (Gaussian) law unchanged.

Examples are drawn in float64 and cast to the requested dtype, so targets are exact to
that dtype's rounding (the paper draws in float32).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from markovcat.backends.torch.compile import Spec
from markovcat.backends.torch.groups import Orthogonal, TorchAction, TorchGroup, small_matmul
from markovcat.backends.torch.matrix_groups import (
    Product,
    conjugation,
    left_multiplication,
    right_transpose,
    vectors,
)
from markovcat.experiments.covariance import relative_squared_error

__all__ = ["Task", "TASKS", "PAPER_TASKS", "POINTS", "make_task", "relative_squared_error", "cov_example",
           "linreg_example", "regression_action"]

#: Every task :func:`make_task` builds; ``inv1`` is the one-group variant of ``inv``.
TASKS: tuple[str, ...] = ("cov", "linreg", "expm", "inv", "inv1")
#: The four tasks of the paper's figure, with the group each method uses there for ``inv`` (``O(d) x O(d)``).
PAPER_TASKS: tuple[str, ...] = ("cov", "linreg", "expm", "inv")
#: Number of samples (columns) in the ``cov`` and ``linreg`` inputs, as in the paper's code.
POINTS = 25


@dataclass(frozen=True, eq=False)
class Task:
    """A matrix task: its generator, exact target (where ``y`` is a function of ``x``) and declared symmetry.

    ``group`` acts on per-example inputs by ``input`` and on targets by ``output``; both are
    actions of this very ``group`` object (as :func:`markovcat.backends.torch.symmetrise` requires).
    """

    name: str
    d: int
    group: TorchGroup
    input: TorchAction
    output: TorchAction
    x_shape: tuple[int, ...]
    y_shape: tuple[int, ...]

    def sample(self, n: int, generator: torch.Generator, dtype: torch.dtype = torch.float32) -> tuple[Tensor, Tensor]:
        """``n`` fresh examples ``(x, y)``, of shapes ``(n, *x_shape)`` and ``(n, *y_shape)``.

        Drawn in float64 from ``generator`` (same generator state, same examples), then cast to ``dtype``.
        """
        if not isinstance(n, int) or n < 1:
            raise ValueError(f"n must be a positive number of examples, got {n!r}")
        d, f64 = self.d, torch.float64
        if self.name == "cov":
            g = torch.randn(n, d, d, generator=generator, dtype=f64)
            z = torch.randn(n, d, POINTS, generator=generator, dtype=f64)
            x, y = cov_example(g, z)
        elif self.name == "linreg":
            y = torch.randn(n, d, generator=generator, dtype=f64)
            z = torch.randn(n, d, POINTS, generator=generator, dtype=f64)
            u = torch.randn(n, 1, POINTS, generator=generator, dtype=f64)
            x, y = linreg_example(y, z, u)
        else:
            x = torch.randn(n, d, d, generator=generator, dtype=f64)
            y = self.target(x)
        return x.to(dtype), y.to(dtype)

    def target(self, x: Tensor) -> Tensor:
        """The exact target ``y = f(x)`` (``expm``: ``exp(x)``; ``inv``, ``inv1``: ``x^-1``), batched.

        ``cov`` and ``linreg`` have no target function of ``x`` (the target is a latent of the
        generator): ``NotImplementedError``; use :func:`cov_example` / :func:`linreg_example`.
        """
        if self.name == "expm":
            return torch.linalg.matrix_exp(x)
        if self.name in ("inv", "inv1"):
            return torch.linalg.inv(x)
        raise NotImplementedError(f"task {self.name!r}: the target is a latent of the generator, not a function of x "
                                  f"(use {self.name}_example on the latents, or Task.sample)")

    def __repr__(self) -> str:
        return f"Task({self.name!r}, d={self.d}, group={self.group.name})"


def cov_example(g: Tensor, z: Tensor) -> tuple[Tensor, Tensor]:
    """``x = G Z`` (``d`` x ``25`` samples of ``N(0, G G^T)`` as columns) and ``y = G G^T``, batched."""
    return g @ z, g @ g.transpose(-1, -2)


def linreg_example(y: Tensor, z: Tensor, u: Tensor) -> tuple[Tensor, Tensor]:
    """``x = [Z; y^T Z + u]`` (``d + 1`` rows: covariates ``Z``, then responses) and the coefficients ``y``."""
    return torch.cat([z, y.unsqueeze(-2) @ z + u], dim=-2), y


class _RegressionAct:
    """``[Z; w] -> [g Z; w]`` (``inverse=True``: ``[g^T Z; w]``) on ``(d + 1, n)`` matrices."""

    def __init__(self, d: int, inverse: bool = False) -> None:
        self.d, self.inverse = d, inverse

    def __call__(self, g: Tensor, x: Tensor) -> Tensor:
        if self.inverse:
            g = g.transpose(-1, -2)
        return torch.cat([small_matmul(g, x[..., : self.d, :]), x[..., self.d :, :]], dim=-2)


def regression_action(group: Orthogonal, n: int = POINTS) -> TorchAction:
    """``O(d)`` on regression data ``[Z; w]``, ``(d + 1, n)``: ``g`` moves the covariates ``Z``, fixes the responses."""
    return TorchAction("left multiplication of covariates", group, Spec((group.d + 1, n)), _RegressionAct(group.d),
                       _RegressionAct(group.d, inverse=True))


def make_task(name: str, d: int) -> Task:
    """The task ``name`` (one of :data:`TASKS`) in dimension ``d``, with fresh group and action objects."""
    if name not in TASKS:
        raise ValueError(f"unknown task {name!r}: use one of {', '.join(TASKS)}")
    if not isinstance(d, int) or isinstance(d, bool) or d < 1:
        raise ValueError(f"d must be a positive integer dimension, got {d!r}")
    o = Orthogonal(d)
    if name == "cov":
        return Task(name, d, o, left_multiplication(o, POINTS), conjugation(o), (d, POINTS), (d, d))
    if name == "linreg":
        return Task(name, d, o, regression_action(o), vectors(o), (d + 1, POINTS), (d,))
    if name == "expm":
        action = conjugation(o)
        return Task(name, d, o, action, action, (d, d), (d, d))
    if name == "inv1":
        return Task(name, d, o, left_multiplication(o, d), right_transpose(o, d), (d, d), (d, d))
    pair = Product(Orthogonal(d), Orthogonal(d))
    return Task(name, d, pair, pair.two_sided(), pair.two_sided(swap=True), (d, d), (d, d))
