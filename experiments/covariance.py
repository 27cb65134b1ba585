"""Covariance estimation (Cornish 2024, sec. 7.3; the public ``stoch_sym`` experiments), on the CPU.

Data: ``x = A z`` with ``A`` a random ``(d, d)`` matrix and ``z ~ N(0, I_{d x n})``
(``n = 25`` samples as columns), target ``y = A A^T``.  ``O(d)`` acts on ``x`` by left
multiplication (``x |-> g x``, ``O(d).left(n)``) and on ``y`` by conjugation (``y |-> g y g^T``,
``O(d).conjugation()``); the map
``x |-> y`` is equivariant in law (``g A`` has the same role as ``A``).  Loss: the relative
squared error ``|f(x) - y|^2 / |y|^2`` (Frobenius), averaged over the batch.

Models: :class:`CovarianceMLP` (an unconstrained MLP ``(d, n) -> (d, d)``, width 250 by
default) and :func:`symmetrised`, its stochastic symmetrisation with the recursive gamma
``R = R0 . QR(f([R0^T x, eps]))``, built by :func:`markovcat.backends.torch.procedures.stochastic_symmetrise`.
:func:`train` runs Adam for a fixed number of steps (reproducible) with a tqdm progress bar.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import Tensor, nn

from markovcat.backends.torch.compile import CompiledDiagram
from markovcat.backends.torch.groups import Orthogonal

__all__ = ["D", "SAMPLES", "Data", "make_data", "relative_squared_error",
           "CovarianceMLP", "symmetrised", "train", "evaluate", "sample_covariance"]

D, SAMPLES = 4, 25


@dataclass
class Data:
    """Inputs ``x`` of shape ``(count, d, n)`` and targets ``y = A A^T`` of shape ``(count, d, d)``."""

    x: Tensor
    y: Tensor

    def __len__(self) -> int:
        return self.x.shape[0]


def make_data(count: int, d: int = D, n: int = SAMPLES, seed: int = 0, dtype: torch.dtype = torch.float32) -> Data:
    """``count`` examples ``(A z, A A^T)``, ``A`` with i.i.d. ``N(0, 1/d)`` entries, ``z ~ N(0, I_{d x n})``."""
    if count < 1 or d < 1 or n < 1:
        raise ValueError(f"count, d and n must be positive, got {count}, {d}, {n}")
    generator = torch.Generator().manual_seed(seed)
    a = torch.randn(count, d, d, generator=generator, dtype=torch.float64) / d**0.5
    z = torch.randn(count, d, n, generator=generator, dtype=torch.float64)
    return Data((a @ z).to(dtype), (a @ a.transpose(-1, -2)).to(dtype))


def relative_squared_error(prediction: Tensor, target: Tensor) -> Tensor:
    """Per-example ``|prediction - target|_F^2 / |target|_F^2``."""
    if prediction.shape != target.shape:
        raise ValueError(f"prediction has shape {tuple(prediction.shape)}, target {tuple(target.shape)}")
    error = (prediction - target).flatten(1).square().sum(1)
    return error / target.flatten(1).square().sum(1).clamp_min(torch.finfo(target.dtype).tiny)


def sample_covariance(x: Tensor) -> Tensor:
    """The classical estimator ``x x^T / n`` (equivariant; a reference point, not trained)."""
    return x @ x.transpose(-1, -2) / x.shape[-1]


class CovarianceMLP(nn.Module):
    """An MLP ``(d, n) -> (d, d)`` on the flattened input, ``depth`` hidden layers of ``width`` (no symmetry)."""

    def __init__(self, d: int = D, n: int = SAMPLES, width: int = 250, depth: int = 2) -> None:
        super().__init__()
        self.d = d
        layers: list[nn.Module] = []
        size = d * n
        for _ in range(depth):
            layers += [nn.Linear(size, width), nn.SiLU()]
            size = width
        layers.append(nn.Linear(size, d * d))
        self.net = nn.Sequential(*layers)

    def forward(self, x: Tensor) -> Tensor:
        return self.net(x.flatten(1)).view(-1, self.d, self.d)


def symmetrised(net: nn.Module, d: int = D, n: int = SAMPLES, hidden: int = 250) -> CompiledDiagram:
    """``sym(net)`` with the recursive gamma on ``O(d)`` (left multiplication in, conjugation out)."""
    from markovcat.backends.torch.procedures import stochastic_symmetrise

    group = Orthogonal(d)
    return stochastic_symmetrise(net, group, group.left(n), group.conjugation(), gamma="recursive",
                                 hidden=hidden)


def evaluate(model: Callable[..., Tensor], data: Data, batch: int = 500, seed: int = 0) -> float:
    """Mean relative squared error on ``data`` (one draw per example for a stochastic model)."""
    generator = torch.Generator().manual_seed(seed)
    total = 0.0
    with torch.no_grad():
        for start in range(0, len(data), batch):
            x, y = data.x[start:start + batch], data.y[start:start + batch]
            out = model(x, generator=generator) if isinstance(model, CompiledDiagram) else model(x)
            total += float(relative_squared_error(out, y).sum())
    return total / len(data)


def train(model: nn.Module, data: Data, steps: int, *, batch: int = 100, lr: float = 1e-3, seed: int = 0,
          label: str = "training", progress: bool = True) -> float:
    """Adam on the relative squared error for exactly ``steps`` minibatch steps; the final running loss.

    Shuffled minibatches of ``batch`` drawn from a generator seeded with ``seed`` (a stochastic
    model draws its noise from the same generator), so a run is reproducible: the same
    arguments give the same weights on the same machine and torch build, whatever the load.
    A tqdm bar shows the steps and the running loss.  Batch 100 follows Cornish's experiments.
    """
    from tqdm.auto import tqdm

    if not isinstance(steps, int) or isinstance(steps, bool) or steps < 1:
        raise ValueError(f"steps must be a positive integer, got {steps!r}")
    if batch < 1 or batch > len(data):
        raise ValueError(f"batch must be between 1 and the {len(data)} training examples, got {batch}")
    generator = torch.Generator().manual_seed(seed)
    optimiser = torch.optim.Adam(model.parameters(), lr=lr)
    stochastic = isinstance(model, CompiledDiagram) and not model.deterministic
    done, running = 0, float("nan")
    bar = tqdm(total=steps, unit="step", desc=label, disable=not progress, leave=True, mininterval=0.5)
    model.train()
    try:
        while done < steps:
            for index in torch.randperm(len(data), generator=generator).split(batch):
                out = model(data.x[index], generator=generator) if stochastic else model(data.x[index])
                loss = relative_squared_error(out, data.y[index]).mean()
                optimiser.zero_grad(set_to_none=True)
                loss.backward()
                optimiser.step()
                done += 1
                value = loss.item()
                running = value if running != running else 0.98 * running + 0.02 * value
                bar.update(1)
                if done % 50 == 0:
                    bar.set_postfix_str(f"loss {running:.4f}", refresh=False)
                if done >= steps:
                    break
        bar.set_postfix_str(f"loss {running:.4f}", refresh=False)
    finally:
        bar.close()
        model.eval()
    return running
