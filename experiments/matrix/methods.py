"""The methods compared on the matrix tasks (Cornish 2024, sec. 7.3), each from the same MLP backbone.

==========  ===========================================================================================
method      model (settings of the paper's code, ``stoch_sym``: ``print_runs.sh``, ``networks.py``)
==========  ===========================================================================================
mlp         the backbone alone, unsymmetrised ("Unsymmetrised"; hidden ``(250, 250, 250)``)
emlp        an EMLP backbone, no gamma ("EMLP"; three ``uniform_rep(250)`` blocks): see
            :mod:`~markovcat.experiments.matrix.emlp_models`
haar        ``sym(k, Haar)``: ``g ~ Haar; y = g . k(g^-1 . x)`` ("Kim et al. (gamma = Haar)";
            ``(250, 250, 250)``)
kim-emlp    ``sym(k, gamma)``, Kim et al.'s noise-outsourced gamma ``QR(h(x, eps))`` with ``h`` an
            EMLP, as the paper builds it ("Kim et al. (gamma = EMLP)"; backbone ``(250, 250)``,
            gamma one ``uniform_rep(250)`` block)
recursive   ``sym(k, sym(f, Haar))``: ``R0 ~ Haar; g = R0 . QR(f(R0^-1 . x, eps))``, ``f`` an MLP
            (the paper's method, "Us"; backbone ``(250, 250)``, gamma ``(250,)``)
scalars     ``sym(k, gamma)`` with a noise-outsourced gamma ``QR(M W(M^T M))`` from invariant scalars
            (Villar et al. 2021; beyond the paper, which defines but does not use it; backbone
            ``(250, 250)``, gamma ``(250,)``)
==========  ===========================================================================================

``emlp`` and ``kim-emlp`` need the ``emlp`` package (``pip install -e ".[emlp]"``) and run on
the one-group tasks only (for inversion, ``inv1``).

As in the paper's code: every MLP has tanh activations and acts on the flattened input; the
recursive gamma's noise is one standard normal ``d``-vector; the prediction is the mean of
``train_samples`` (training) or ``test_samples`` (test) independent draws of the stochastic
model, and the loss the relative squared error of that mean.

The scalars gamma.  ``h`` is
``h(x, eps) = M W(s)``: ``M`` a ``(d, m)`` matrix of columns that each move by ``g``
(``M(g.x, g.eps) = g M(x, eps)``), ``s`` invariants (the Gram matrix ``M^T M``, normalised by its
mean diagonal, plus any invariant part of ``x``), ``W`` an MLP.  So ``h(g.x, g.eps) = g h(x, eps)``
and ``QR(h)`` is an equivariant gamma in law (the Gaussian noise law is ``O(d)``-invariant). ``M`` per task:

* ``cov``, ``inv1`` (``x -> g x``): ``[x, eps]``, ``eps`` one column (the paper's "scalars" gamma);
* ``linreg``: ``[Z, eps]``, with the responses ``w`` (invariant) among the invariants;
* ``expm`` (conjugation): ``[eps, x eps, x^T eps] / sqrt(d)``-scaled, ``eps`` ``d`` columns (so ``M`` has
  full rank: one noise vector and its images would span only 3 dimensions);
* ``inv`` (``O(d) x O(d)``, ``x -> g x h^T``): one ``h`` per factor, with noise ``eps1`` moved by ``g``
  and ``eps2`` by ``h``: ``[eps1, x eps2, x x^T eps1]`` for ``g`` and ``[eps2, x^T eps1, x^T x eps2]`` for ``h``.

"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor, nn

from markovcat.backends.torch.compile import Gaussian, Interpretation, Spec
from markovcat.backends.torch.gammas import (
    Gamma,
    Guarantee,
    diagram_space,
    noise_outsourced,
    project,
    raw_size,
    recursive,
)
from markovcat.backends.torch.groups import Orthogonal, TorchAction, TorchGroup, small_matmul
from markovcat.backends.torch.matrix_groups import Product, left_multiplication
from markovcat.backends.torch.procedures import symmetrise
from markovcat.experiments.matrix.emlp_models import emlp_backbone, emlp_gamma
from markovcat.experiments.matrix.tasks import Task, relative_squared_error
from markovcat.gspace import Equivariant, GSpace
from markovcat.symmetrisation import with_noise
from markovcat.syntax import Box, Ty

__all__ = ["METHODS", "MethodConfig", "Model", "Predictor", "MLP", "GroupMLP", "InvariantWeightedColumns",
           "PairFrames", "build", "scalars_gamma", "recursive_gamma", "paired_noise", "EMLP_METHODS",
           "RENAMED"]

METHODS: tuple[str, ...] = ("mlp", "emlp", "haar", "kim-emlp", "recursive", "scalars")
#: Methods that need the ``emlp`` package (and a one-group task).
EMLP_METHODS: tuple[str, ...] = ("emlp", "kim-emlp")
#: Earlier names of methods, as older records spell them.
RENAMED: dict[str, str] = {"kim": "scalars"}


@dataclass(frozen=True)
class MethodConfig:
    """Network sizes and sample counts; the defaults are the paper's (``stoch_sym/config.py``, ``print_runs.sh``)."""

    backbone_hidden: tuple[int, ...] | None = None  # None: (250, 250), or (250, 250, 250) for haar and mlp
    gamma_hidden: tuple[int, ...] = (250,)
    train_samples: int = 10  # draws averaged per training example
    test_samples: int = 100  # draws averaged at test time

    def __post_init__(self) -> None:
        for what, sizes in (("backbone_hidden", self.backbone_hidden), ("gamma_hidden", self.gamma_hidden)):
            if sizes is not None and not all(isinstance(s, int) and s >= 1 for s in sizes):
                raise ValueError(f"{what} must be a tuple of positive layer widths, got {sizes!r}")
        for what, count in (("train_samples", self.train_samples), ("test_samples", self.test_samples)):
            if not isinstance(count, int) or count < 1:
                raise ValueError(f"{what} must be a positive number of draws, got {count!r}")

    def backbone(self, method: str) -> tuple[int, ...]:
        """The backbone's hidden widths for ``method`` (the paper gives the gamma-free methods one more layer)."""
        if self.backbone_hidden is not None:
            return tuple(self.backbone_hidden)
        return (250, 250, 250) if method in ("mlp", "emlp", "haar") else (250, 250)


# -- networks ----------------------------------------------------------------------------------------
def _mlp(inputs: int, outputs: int, hidden: Sequence[int]) -> nn.Sequential:
    layers: list[nn.Module] = []
    for width in hidden:
        layers += [nn.Linear(inputs, width), nn.Tanh()]
        inputs = width
    return nn.Sequential(*layers, nn.Linear(inputs, outputs))


class MLP(nn.Module):
    """A tanh MLP on the flattened input, reshaped to ``out_shape``: the backbone of every method."""

    def __init__(self, in_shape: Sequence[int], out_shape: Sequence[int], hidden: Sequence[int]) -> None:
        super().__init__()
        self.out_shape = tuple(out_shape)
        self.net = _mlp(math.prod(in_shape), math.prod(self.out_shape), hidden)

    def forward(self, x: Tensor) -> Tensor:
        return self.net(x.flatten(1)).view(-1, *self.out_shape)  # type: ignore[no-any-return]


class GroupMLP(nn.Module):
    """``(x, eps) |-> project(mlp([x, eps]))``, into ``O(d)`` or each factor of ``O(d) x O(d)`` (the recursive ``f``).

    Unconstrained (no equivariance needed: the recursive gamma symmetrises it).  For the
    product, one MLP output of size ``2 d^2`` is split and each half orthonormalised, as in the paper's code.
    """

    def __init__(self, group: TorchGroup, in_numel: int, noise_numel: int, hidden: Sequence[int]) -> None:
        super().__init__()
        self.group = group
        self.net = _mlp(in_numel + noise_numel, raw_size(group), hidden)  # a Product's: its factors' side by side

    def forward(self, x: Tensor, eps: Tensor) -> Tensor:
        return project(self.group, self.net(torch.cat([x.flatten(1), eps.flatten(1)], dim=1)))


class InvariantWeightedColumns(nn.Module):
    """The scalars gamma's ``h(x, eps) = M W(s)``: ``M = columns(x, eps)``, ``s`` = scaled ``M^T M``, ``extra(x)``.

    Equivariant, ``h(g.x, g.eps) = g h(x, eps)``, whenever every column of ``M`` moves by ``g``
    and ``extra`` is invariant: then ``M^T M`` is invariant, and so is ``W``.
    """

    def __init__(self, columns: nn.Module, m: int, d: int, hidden: Sequence[int], extra: nn.Module | None = None,
                 extra_numel: int = 0) -> None:
        super().__init__()
        self.columns, self.extra, self.m, self.d = columns, extra, m, d
        self.weights = _mlp(m * m + extra_numel, m * d, hidden)

    def forward(self, x: Tensor, eps: Tensor) -> Tensor:
        m = self.columns(x, eps)  # (b, d, m)
        gram = m.transpose(-1, -2) @ m
        scale = gram.diagonal(dim1=-2, dim2=-1).mean(-1).clamp_min(torch.finfo(gram.dtype).tiny)
        s = (gram / scale[:, None, None]).flatten(1)
        if self.extra is not None:
            s = torch.cat([s, self.extra(x).flatten(1)], dim=1)
        return m @ self.weights(s).view(-1, self.m, self.d)  # type: ignore[no-any-return]


class _Beside(nn.Module):
    """``[x[:, :rows], eps]``: the input's columns (or its first ``rows`` rows' columns) beside the noise."""

    def __init__(self, rows: int | None = None) -> None:
        super().__init__()
        self.rows = rows

    def forward(self, x: Tensor, eps: Tensor) -> Tensor:
        z = x if self.rows is None else x[:, : self.rows]
        return torch.cat([z, eps], dim=-1)


class _Rows(nn.Module):
    """``x[:, start:]``: the rows of the input an action fixes (invariants)."""

    def __init__(self, start: int) -> None:
        super().__init__()
        self.start = start

    def forward(self, x: Tensor) -> Tensor:
        return x[:, self.start :]


class _Krylov(nn.Module):
    """``[eps, x eps, x^T eps]`` with ``x`` scaled by ``1/sqrt(d)``: columns moving by ``g`` under ``x -> g x g^T``."""

    def forward(self, x: Tensor, eps: Tensor) -> Tensor:
        x = x / math.sqrt(x.shape[-1])
        return torch.cat([eps, x @ eps, x.transpose(-1, -2) @ eps], dim=-1)


class _TwoSidedColumns(nn.Module):
    """Under ``x -> g x h^T``, ``eps = [e1, e2]`` (``e1`` moved by ``g``, ``e2`` by ``h``): columns moved by one factor.

    ``side=0`` (moved by ``g``): ``[e1, x e2, x x^T e1]``; ``side=1`` (by ``h``): ``[e2, x^T e1, x^T x e2]``.
    """

    def __init__(self, side: int, m: int) -> None:
        super().__init__()
        self.side, self.m = side, m

    def forward(self, x: Tensor, eps: Tensor) -> Tensor:
        x = x / math.sqrt(x.shape[-1])
        e1, e2 = eps[..., : self.m], eps[..., self.m :]
        if self.side == 1:
            x, e1, e2 = x.transpose(-1, -2), e2, e1
        return torch.cat([e1, x @ e2, x @ (x.transpose(-1, -2) @ e1)], dim=-1)


class PairFrames(nn.Module):
    """``(x, eps) |-> (QR(h_g(x, eps)), QR(h_h(x, eps)))`` packed as an element of ``O(d) x O(d)``."""

    def __init__(self, group: Product, first: nn.Module, second: nn.Module) -> None:
        super().__init__()
        self.group, self.first, self.second = group, first, second

    def forward(self, x: Tensor, eps: Tensor) -> Tensor:
        a, b = self.group.factors
        return self.group.pack(project(a, self.first(x, eps)), project(b, self.second(x, eps)))


class _PairedColumns:
    """``((g, h), [e1, e2]) |-> [g e1, h e2]`` on ``(d, 2m)`` noise (``inverse``: by ``g^T``, ``h^T``)."""

    def __init__(self, group: Product, m: int, inverse: bool = False) -> None:
        self.group, self.m, self.inverse = group, m, inverse

    def __call__(self, gh: Tensor, e: Tensor) -> Tensor:
        g, h = self.group.split(gh)
        if self.inverse:
            g, h = g.transpose(-1, -2), h.transpose(-1, -2)
        return torch.cat([small_matmul(g, e[..., : self.m]), small_matmul(h, e[..., self.m :])], dim=-1)


def paired_noise(group: Product, m: int) -> TorchAction:
    """``O(d) x O(d)`` on ``(d, 2m)`` noise: the first ``m`` columns moved by ``g``, the last ``m`` by ``h``."""
    d = group.factors[0].d  # type: ignore[attr-defined]
    return TorchAction("paired columns", group, Spec((d, 2 * m)), _PairedColumns(group, m),
                       _PairedColumns(group, m, inverse=True))


# -- gammas ------------------------------------------------------------------------------------------
def recursive_gamma(task: Task, hidden: Sequence[int]) -> Gamma:
    """The paper's gamma, ``R0 . f(R0^-1 . x, eps)`` (``R0 ~ Haar``, ``eps`` a standard normal ``d``-vector)."""
    noise = (task.d,)
    net = GroupMLP(task.group, math.prod(task.x_shape), task.d, hidden)
    return recursive(net, task.group, task.input, noise)


def scalars_gamma(task: Task, hidden: Sequence[int]) -> Gamma:
    """The scalars gamma ``QR(M W(M^T M))`` for ``task``, noise-outsourced (``M`` per task: the module docstring)."""
    d, group = task.d, task.group
    if isinstance(group, Product):
        return _pair_gamma(task, hidden)
    assert isinstance(group, Orthogonal)
    if task.name == "linreg":
        h = InvariantWeightedColumns(_Beside(d), task.x_shape[1] + 1, d, hidden, _Rows(d), task.x_shape[1])
        noise = 1
    elif task.name == "expm":
        h, noise = InvariantWeightedColumns(_Krylov(), 3 * d, d, hidden), d
    else:  # x -> g x on (d, n): the columns of x beside one noise column
        h, noise = InvariantWeightedColumns(_Beside(), task.x_shape[1] + 1, d, hidden), 1
    return noise_outsourced(h, group, task.input, left_multiplication(group, noise))


def _pair_gamma(task: Task, hidden: Sequence[int]) -> Gamma:
    """The scalars gamma into ``O(d) x O(d)``: one equivariant ``h`` per factor, each orthonormalised."""
    group, d = task.group, task.d
    assert isinstance(group, Product)
    noise_action = paired_noise(group, d)
    heads = [InvariantWeightedColumns(_TwoSidedColumns(side, d), 3 * d, d, hidden) for side in (0, 1)]
    space, interpretation = diagram_space(group, task.input)
    E = Ty(f"E_{space.group.name}")
    eps = Box(f"eps_{space.group.name}", Ty(), E)
    net = Box(f"h_{space.group.name}", space.ty @ E, space.group.ty, deterministic=True)
    guarantee = Guarantee("assumed", "each factor's h is equivariant for its factor and invariant for the other, "
                                     "and the Gaussian noise law is invariant")
    morphism = Equivariant.assume(with_noise(net, eps), space, GSpace.regular(space.group), reason=guarantee.evidence,
                                  name="scalars_pair")
    shape = (d, 2 * d)
    boxes = {eps: Gaussian(shape, noise_action), net: PairFrames(group, *heads)}
    return Gamma(morphism, interpretation | Interpretation(boxes, {E: Spec(shape)}), group, task.input, guarantee)


# -- models ------------------------------------------------------------------------------------------
class Predictor(nn.Module):
    """The model as the paper trains it: the mean of ``samples`` draws of a stochastic ``inner`` model.

    ``forward(x, samples=None, generator=None)``: ``samples`` defaults to ``train_samples`` in
    training mode and ``test_samples`` in eval mode (as the paper's ``AveragedPredictor``); a
    deterministic ``inner`` is called once.  Holds every trainable parameter, so it is what to
    wrap in ``DistributedDataParallel`` (call the wrapper with the same arguments).
    """

    def __init__(self, inner: nn.Module, stochastic: bool, train_samples: int, test_samples: int) -> None:
        super().__init__()
        self.inner, self.stochastic = inner, stochastic
        self.train_samples, self.test_samples = train_samples, test_samples

    def forward(self, x: Tensor, samples: int | None = None, generator: torch.Generator | None = None) -> Tensor:
        if not self.stochastic:
            return self.inner(x)  # type: ignore[no-any-return]
        count = samples if samples is not None else (self.train_samples if self.training else self.test_samples)
        if count == 1:
            return self.inner(x, generator=generator)  # type: ignore[no-any-return]
        y = self.inner(x.repeat_interleave(count, dim=0), generator=generator)
        return y.view(x.shape[0], count, *y.shape[1:]).mean(1)  # type: ignore[no-any-return]


@dataclass(frozen=True, eq=False)
class Model:
    """A built method: ``module`` (all parameters), ``model`` (one draw, for ``check_equivariance``), and their uses."""

    method: str
    task: Task
    config: MethodConfig
    module: Predictor
    model: nn.Module
    symmetrised: bool

    def predict(self, x: Tensor, samples: int, generator: torch.Generator | None = None) -> Tensor:
        """The mean of ``samples`` draws (the plain MLP: its forward pass)."""
        return self.module(x, samples, generator)  # type: ignore[no-any-return]

    def loss(self, x: Tensor, y: Tensor, generator: torch.Generator | None = None) -> Tensor:
        """Mean relative squared error of the ``train_samples``-draw mean prediction (the paper's training loss)."""
        return relative_squared_error(self.module(x, self.config.train_samples, generator), y).mean()


def build(method: str, task: Task, config: MethodConfig = MethodConfig(), seed: int = 0, **options: Any) -> Model:
    """``method`` (one of :data:`METHODS`) for ``task``, its parameters initialised from ``seed``.

    The global random state is left as it was.  ``options`` go to
    :func:`~markovcat.backends.torch.procedures.symmetrise` (e.g. ``check_laws=False``; the plain
    ``mlp`` takes none).
    """
    if method in RENAMED:
        raise ValueError(f"method {method!r} is now called {RENAMED[method]!r}")
    if method not in METHODS:
        raise ValueError(f"unknown method {method!r}: use one of {', '.join(METHODS)}")
    if not isinstance(task, Task):
        raise TypeError(f"task must be a Task (make_task(name, d)), got {type(task).__name__}")
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model: nn.Module
        if method in ("mlp", "emlp"):
            if options:
                raise TypeError(f"the {method} backbone is not symmetrised: options {sorted(options)} do not apply")
            model = (MLP(task.x_shape, task.y_shape, config.backbone(method)) if method == "mlp"
                     else emlp_backbone(task, config.backbone(method), seed))
        else:
            backbone = MLP(task.x_shape, task.y_shape, config.backbone(method))
            gamma: Any = "haar"
            if method == "kim-emlp":
                gamma = emlp_gamma(task, config.gamma_hidden, seed)
            elif method == "scalars":
                gamma = scalars_gamma(task, config.gamma_hidden)
            elif method == "recursive":
                gamma = recursive_gamma(task, config.gamma_hidden)
            model = symmetrise(backbone, task.group, task.input, task.output, gamma=gamma,
                               name=f"{method.replace('-', '_')}_{task.name}",
                               **options)
    symmetrised = method not in ("mlp", "emlp")
    module = Predictor(model, symmetrised, config.train_samples, config.test_samples)
    return Model(method, task, config, module, model, symmetrised)
