"""Gamma constructions as ``C^G`` morphisms ``(X, alpha) -> (G, *)`` with their PyTorch meaning.

Each builder returns a :class:`Gamma`: the diagram-level morphism (an
:class:`~markovcat.gspace.Equivariant`, ready for :func:`markovcat.symmetrisation.sym`),
an :class:`~markovcat.backends.torch.compile.Interpretation` of its boxes (group and
action axioms declared, couplings for the noise), and the torch group and action.
``gamma.compile()`` gives a module; ``gamma.check()`` runs
:func:`~markovcat.backends.torch.equivariance.check_equivariance` on it (pathwise where every
noise box declares a law-preserving coupling, else the two-sample test).

Public names (stable): :class:`Gamma`, :func:`canonical` (any deterministic gamma of
:mod:`markovcat.backends.torch.frames`), :func:`haar`, :func:`uniform_frame`,
:func:`noise_outsourced` (Kim et al. 2023), :func:`recursive` (Cornish 2024),
:func:`general_linear`, :func:`euclidean`, :func:`noisy_sort`; the networks
:class:`EquivariantVectors`, :class:`GramNet` (Kim et al.'s ``h``), :class:`GroupNet` and
:class:`MLPFrame` (unconstrained, into a group), :class:`NoisySort`; the helpers
:func:`orthonormalise`, :func:`project` and :class:`ActedGaussian`.

>>> import torch
>>> from markovcat import Box, check_equivariance, sym
>>> from markovcat.backends import torch as mct
>>> O3 = mct.Orthogonal(3)
>>> gamma = mct.gammas.canonical(mct.PCACanonicaliser(), O3, O3.points(10))    # Kaba et al.: canonicalise by PCA
>>> gamma.check().passed
True
>>> k = Box("k", gamma.space.ty, gamma.space.ty, deterministic=True)  # any network on (10, 3) clouds
>>> model = mct.compile(sym(k, gamma.morphism, gamma.space),
...                     gamma.interpretation | mct.Interpretation({k: torch.nn.Linear(3, 3)}))
>>> check_equivariance(model.double(), O3, O3.points(10)).passed
True

Gradients: QR is differentiable, so gradients reach the networks of
:func:`noise_outsourced` and :func:`recursive`.  ``argsort`` is not: :class:`NoisySort`
returns, for :class:`~markovcat.backends.torch.finite_groups.PermutationMatrices`, the exact
permutation matrix in the forward pass and the gradient of its NeuralSort relaxation
(Grover et al. 2019, temperature ``tau``) in the backward pass (straight-through).
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor, nn

from markovcat.backends.torch.compile import CompiledDiagram, Interpretation, InterpretationError, Spec, compile
from markovcat.backends.torch.equivariance import EquivarianceReport, check_equivariance
from markovcat.backends.torch.finite_groups import PermutationMatrices, elements, sequences
from markovcat.backends.torch.frames import Centroid, LowerCholesky
from markovcat.backends.torch.groups import (
    Cyclic,
    Orthogonal,
    Symmetric,
    TorchAction,
    TorchGroup,
    as_rows,
    check_layout,
)
from markovcat.backends.torch.linalg import haar_orthogonal, orthonormalise, randn
from markovcat.backends.torch.matrix_groups import Euclidean, GeneralLinear
from markovcat.groups import Action, Group
from markovcat.gspace import Equivariant, GSpace
from markovcat.program import program
from markovcat.symmetrisation import haar_gamma, recursive_gamma, with_noise
from markovcat.syntax import Box, Ty

__all__ = ["Gamma", "canonical", "haar", "uniform_frame", "noise_outsourced", "recursive", "general_linear",
           "euclidean", "noisy_sort", "EquivariantVectors", "GramNet", "GroupNet", "MLPFrame", "NoisySort",
           "orthonormalise", "project", "ActedGaussian"]


@dataclass
class Gamma:
    """A gamma construction: ``morphism : (X, alpha) -> (G, *)`` in ``C^G`` and its torch interpretation."""

    morphism: Equivariant
    interpretation: Interpretation
    group: TorchGroup
    action: TorchAction

    @property
    def space(self) -> GSpace:
        return self.morphism.dom

    def compile(self, **options: Any) -> CompiledDiagram:
        return compile(self.morphism, self.interpretation, **options)

    def check(self, dtype: torch.dtype = torch.float64, **options: Any) -> EquivarianceReport:
        """``check_equivariance`` of the compiled gamma (a copy cast to ``dtype``) into ``(G, *)``.

        A pass is evidence on the sampled inputs only (a proof in law for pathwise
        checks with law-preserving couplings); see :func:`~markovcat.backends.torch.equivariance.check_equivariance`.
        """
        model = copy.deepcopy(self.compile()).to(dtype)  # leaves the interpretation's modules as they are
        return check_equivariance(model, self.group, self.action, self.group.regular(), dtype=dtype, **options)


def _space(group: TorchGroup, action: TorchAction, space: GSpace | None) -> tuple[GSpace, Interpretation]:
    if space is None:
        G = Group(group.name)
        X = Ty(f"X_{group.name}")
        space = GSpace(X, Action(f"{action.name} ({group.name})", G, X))
    return space, group.interpretation(space.group, (space.action, action))


def _assume(diagram: Any, space: GSpace, reason: str, name: str) -> Equivariant:
    return Equivariant.assume(diagram, space, GSpace.regular(space.group), reason=reason, name=name)


def enumerable(group: Any) -> bool:
    """Whether the network gammas treat ``group`` as finite (``C_n``, ``S_n``, or a group with ``elements()``)."""
    return isinstance(group, (Cyclic, Symmetric)) or callable(getattr(group, "elements", None))


def project(group: Any, raw: Tensor) -> Tensor:
    """Map an unconstrained network output onto the group, equivariantly in ``raw`` where it matters.

    O(d)/SO(d): :func:`orthonormalise` of a ``(d, d)`` matrix (``project(g m) = g project(m)``;
    a singular ``m`` still gives an orthogonal matrix, never NaN);
    S_n: ``argsort`` of ``n`` scores; another finite group (``elements()``): ``argmax`` of
    one logit per element.  Another group plugs in by defining ``project(raw)`` and ``raw_size``.
    """
    if callable(getattr(group, "project", None)):
        return group.project(raw)  # type: ignore[no-any-return]
    if isinstance(group, Orthogonal):
        return orthonormalise(raw.reshape(-1, group.d, group.d), special=group.special)
    if isinstance(group, Symmetric):
        return torch.argsort(raw.reshape(-1, group.n), dim=-1)
    if enumerable(group):  # logits over the elements
        return elements(group, device=raw.device)[torch.argmax(raw.reshape(raw.shape[0], -1), dim=-1)]
    raise TypeError(f"no projection onto {group.name}: pass a gamma object instead of a string")


def raw_size(group: Any) -> int:
    """The size of the unconstrained output that :func:`project` maps onto ``group``."""
    if isinstance(getattr(group, "raw_size", None), int):
        return int(group.raw_size)
    if isinstance(group, Orthogonal):
        return group.d * group.d
    if isinstance(group, Symmetric):
        return group.n
    if enumerable(group):
        return int(elements(group).shape[0])
    raise TypeError(f"no network gamma for {group.name}: pass a gamma object instead of a string")


class GroupNet(nn.Module):
    """``(x, eps) |-> project(mlp([x, eps]))``: an unconstrained network into ``G`` (a recursive gamma's ``f``)."""

    def __init__(self, group: Any, in_numel: int, noise_numel: int, hidden: int = 64) -> None:
        super().__init__()
        self.group = group
        self.layer1 = nn.Linear(in_numel + noise_numel, hidden)
        self.layer2 = nn.Linear(hidden, raw_size(group))

    def forward(self, x: Tensor, eps: Tensor) -> Tensor:
        h = torch.cat([x.flatten(1), eps.flatten(1)], dim=1)
        return project(self.group, self.layer2(torch.nn.functional.silu(self.layer1(h))))


class GramNet(nn.Module):
    """Kim et al.'s noise-outsourced O(d)-equivariant ``h(x, eps)``: ``z = [x, eps]`` (as rows), ``h = z^T W(z z^T)``.

    The Gram matrix ``z z^T`` is invariant, so ``h(g.x, g.eps) = g h(x, eps)``; with
    ``eps ~ N(0, I)`` (an O(d)-invariant law), ``QR(h(x, eps))`` is an equivariant gamma in
    law (:func:`noise_outsourced`).  ``points`` input and ``noise_points`` noise points,
    in rows ``(n, d)`` or, with ``layout="columns"``, columns ``(d, n)``.
    """

    def __init__(self, group: Orthogonal, points: int, layout: str = "rows", noise_points: int = 2,
                 hidden: int = 64) -> None:
        super().__init__()
        self.group, self.layout, self.total = group, check_layout(layout), points + noise_points
        self.layer1 = nn.Linear(self.total * self.total, hidden)
        self.layer2 = nn.Linear(hidden, self.total * group.d)

    def forward(self, x: Tensor, eps: Tensor) -> Tensor:
        z = torch.cat([as_rows(x, self.layout), as_rows(eps, self.layout)], dim=-2)  # (b, total, d)
        gram = (z @ z.transpose(-1, -2)).flatten(1)
        w = self.layer2(torch.nn.functional.silu(self.layer1(gram))).view(-1, self.total, self.group.d)
        return z.transpose(-1, -2) @ w


class ActedGaussian:
    """Standard Gaussian noise of per-example ``shape``, coupled by ``action``: ``(g, eps) |-> g . eps``.

    The coupling preserves the law exactly when the Gaussian is invariant under the
    action (an orthogonal or permutation action), which is what makes the pathwise
    check a proof of equality in law.
    """

    def __init__(self, shape: Sequence[int], action: TorchAction) -> None:
        self.shape, self.coupling = tuple(shape), action.act

    def __call__(self, *inputs: Tensor, generator: torch.Generator | None = None, like: Tensor | None = None) -> Tensor:
        reference = inputs[0] if inputs else like
        assert reference is not None
        dtype = reference.dtype if reference.is_floating_point() else torch.get_default_dtype()
        return randn((reference.shape[0], *self.shape), generator, dtype, reference.device)


def canonical(function: Any, group: TorchGroup, action: TorchAction, space: GSpace | None = None,
              name: str = "canonical") -> Gamma:
    """A deterministic gamma (e.g. :class:`~markovcat.backends.torch.frames.PCACanonicaliser`) as one box."""
    space, interpretation = _space(group, action, space)
    box = Box(f"{name}_{space.group.name}", space.ty, space.group.ty, deterministic=True)
    morphism = _assume(box, space, f"{type(function).__name__} is {group.name}-equivariant (checked numerically)", name)
    return Gamma(morphism, interpretation | Interpretation({box: function}), group, action)


def haar(group: TorchGroup, action: TorchAction, space: GSpace | None = None) -> Gamma:
    """``gamma(x) = R0 ~ Haar`` (ignores ``x``; compact groups only); coupled by ``R0 -> g R0``."""
    space, interpretation = _space(group, action, space)
    morphism = haar_gamma(space)
    lam = next(b for b in morphism.diagram.boxes if not b.deterministic)
    return Gamma(morphism, interpretation | Interpretation({lam: group.haar()}), group, action)


def uniform_frame(frames: Any, group: TorchGroup, action: TorchAction, space: GSpace | None = None) -> Gamma:
    """``gamma(x) ~ Uniform(F(x))`` for a set-equivariant frame ``F`` (one stochastic box, two-sample checked)."""
    from markovcat.backends.torch.frames import UniformFrame

    space, interpretation = _space(group, action, space)
    box = Box(f"frame_{space.group.name}", space.ty, space.group.ty)
    morphism = _assume(box, space, "a uniform draw from an equivariant frame", "uniform_frame")
    return Gamma(morphism, interpretation | Interpretation({box: UniformFrame(frames)}), group, action)


class EquivariantVectors(nn.Module):
    """An ``O(d)``-equivariant ``h : (x (n, d), eps (m, d)) |-> (d, d)`` for Kim et al.'s gamma.

    Column ``k`` of the output is ``sum_j z_j s_k(|z_j|^2, <z_j, mean z>)`` over the rows
    ``z_j`` of ``[x; eps]``, with ``s`` a small MLP on these rotation invariants; so
    ``h(x g^T, eps g^T) = g h(x, eps)``.  Any ``O(d)``-equivariant network works in its place;
    a non-equivariant one breaks the gamma's equivariance.
    """

    def __init__(self, d: int, hidden: int = 32) -> None:
        super().__init__()
        self.weights = nn.Sequential(nn.Linear(2, hidden), nn.SiLU(), nn.Linear(hidden, d))

    def forward(self, x: Tensor, eps: Tensor) -> Tensor:
        z = torch.cat([x, eps], dim=-2)
        invariants = torch.stack([(z * z).sum(-1), (z * z.mean(-2, keepdim=True)).sum(-1)], dim=-1)
        return z.transpose(-1, -2) @ self.weights(invariants)


class _Projected(nn.Module):
    def __init__(self, net: nn.Module, group: Orthogonal) -> None:
        super().__init__()
        self.net, self.group = net, group

    def forward(self, x: Tensor, eps: Tensor) -> Tensor:
        return project(self.group, self.net(x, eps))


class MLPFrame(GroupNet):
    """``(x, eps) |-> QR(mlp([x, eps]))`` into ``O(d)``: :class:`GroupNet` for ``O(d)`` (for :func:`recursive`)."""

    def __init__(self, x_size: int, noise_size: int, d: int, hidden: int = 64) -> None:
        super().__init__(Orthogonal(d), x_size, noise_size, hidden)
        self.d = d


def noise_outsourced(h: nn.Module, group: Orthogonal, action: TorchAction, noise: TorchAction,
                     space: GSpace | None = None) -> Gamma:
    """Kim et al. 2023: ``gamma(x) = QR(h(x, eps))``, ``eps ~ N(0, I)`` moved by ``noise`` (e.g. ``group.points(m)``).

    Equivariant in law when ``h(g.x, g.eps) = g h(x, eps)`` (e.g. :class:`EquivariantVectors`,
    :class:`GramNet`) and the Gaussian is invariant under ``noise``; pathwise-checked with
    ``eps -> g.eps``.  ``QR`` is :func:`project` (for ``SO(d)`` it lands in ``SO(d)``).
    """
    space, interpretation = _space(group, action, space)
    E = Ty(f"E_{space.group.name}")
    eps = Box(f"eps_{space.group.name}", Ty(), E)
    net = Box(f"h_{space.group.name}", space.ty @ E, space.group.ty, deterministic=True)
    morphism = _assume(with_noise(net, eps), space, "h is equivariant and the noise law is invariant", "kim")
    shape = tuple(int(s) for s in noise.spec.shape)  # type: ignore[arg-type]
    boxes = {eps: ActedGaussian(shape, noise), net: _Projected(h, group)}
    return Gamma(morphism, interpretation | Interpretation(boxes, {E: Spec(shape)}), group, action)


def recursive(net: nn.Module, group: TorchGroup, action: TorchAction, noise_shape: Sequence[int],
              space: GSpace | None = None) -> Gamma:
    """Cornish 2024: ``R0 ~ Haar; g = R0 . net(R0^-1 . x, eps)``, ``eps ~ N(0, I)`` (``net`` unconstrained, into G).

    Built by :func:`markovcat.symmetrisation.recursive_gamma`; pathwise-checked (``R0 -> g R0``, ``eps`` unchanged).
    """
    from markovcat.backends.torch.compile import Gaussian

    space, interpretation = _space(group, action, space)
    E = Ty(f"N_{space.group.name}")
    eps = Box(f"noise_{space.group.name}", Ty(), E)
    f = Box(f"f_{space.group.name}", space.ty @ E, space.group.ty, deterministic=True)
    base = haar_gamma(space)
    morphism = recursive_gamma(with_noise(f, eps), base)
    lam = next(b for b in base.diagram.boxes if not b.deterministic)
    boxes = {eps: Gaussian(noise_shape), f: net, lam: group.haar()}
    return Gamma(morphism, interpretation | Interpretation(boxes, {E: Spec(tuple(noise_shape))}), group, action)


class _HaarInGL:
    """Haar elements of ``O(d)`` as elements of ``GL(d)`` (no coupling: GL moves them by an x-dependent rotation)."""

    def __init__(self, d: int) -> None:
        self.d = d

    def __call__(self, *, generator: torch.Generator | None = None, like: Tensor) -> Tensor:
        return haar_orthogonal(like.shape[0], self.d, generator, like.dtype, like.device)


def general_linear(group: GeneralLinear, n: int, space: GSpace | None = None, *, broken: bool = False) -> Gamma:
    """``GL(d)`` on ``(d, n)`` matrices by ``x -> A x``: ``gamma(x) = chol(x x^T) R``, ``R ~ Haar(O(d))``.

    Equivariant in law (``chol(A x x^T A^T) = A chol(x x^T) Q``, ``Q`` orthogonal, and
    ``Q R ~ R``); two-sample checked.  ``broken=True`` puts ``R`` on the left, which is not.
    Rank-deficient ``x`` raises (see :class:`~markovcat.backends.torch.frames.LowerCholesky`).
    """
    action = group.left(n)
    space, interpretation = _space(group, action, space)
    G = space.group
    chol = Box(f"chol_{G.name}", space.ty, G.ty, deterministic=True)
    rot = Box(f"haarO_{G.name}", Ty(), G.ty)

    @program(space.ty, G.ty)
    def diagram(x: Any) -> Any:
        return G.mul(rot(), chol(x)) if broken else G.mul(chol(x), rot())

    morphism = _assume(diagram, space, "chol(A x x^T A^T) R ~ A chol(x x^T) R for Haar R", "gl_cholesky")
    boxes = {chol: LowerCholesky(), rot: _HaarInGL(group.d)}
    return Gamma(morphism, interpretation | Interpretation(boxes), group, action)


class _Through:
    """A coupling for an ``O(d)`` noise box, driven by the rotation part of an ``E(d)`` element."""

    def __init__(self, coupling: Any, part: Any) -> None:
        self.coupling, self.part = coupling, part

    def __call__(self, g: Tensor, *draws: Tensor) -> Any:
        return self.coupling(self.part(g), *draws)


def euclidean(rotation: Gamma, group: Euclidean, space: GSpace | None = None) -> Gamma:
    """``E(d)`` on point clouds: ``gamma(x) = (c, R)``, ``c`` the centroid, ``R ~ rotation(x - c)``.

    ``rotation`` is any ``O(d)`` (``SO(d)`` for ``SE(d)``) gamma on point clouds ``(n, d)``
    (:func:`canonical` with :class:`~markovcat.backends.torch.frames.PCACanonicaliser`, :func:`haar`,
    :func:`recursive`, ...); its noise couplings are driven by the rotation part of ``g``.
    """
    n = int(rotation.action.spec.shape[0])  # type: ignore[arg-type]
    action = group.points(n)
    space, interpretation = _space(group, action, space)
    G, inner = space.group, rotation.space
    centre = Box(f"centre_{G.name}", space.ty, inner.ty, deterministic=True)
    shift = Box(f"centroid_{G.name}", space.ty, G.ty, deterministic=True)
    embed = Box(f"embed_{G.name}", inner.group.ty, G.ty, deterministic=True)
    rot = rotation.morphism.diagram

    @program(space.ty, G.ty)
    def diagram(x: Any) -> Any:
        return G.mul(shift(x), embed(rot(centre(x))))

    morphism = _assume(diagram, space, "centroid then an O(d) gamma of the centred cloud", "euclidean")
    inner_interpretation = rotation.interpretation
    couplings = {}
    for name in rot.signature:
        meaning = inner_interpretation.boxes.get(name)
        coupling = inner_interpretation.couplings.get(name, getattr(meaning, "coupling", None))
        if coupling is not None:
            couplings[name] = _Through(coupling, group.rotation)
    boxes = {centre: _centre, shift: _Shift(group), embed: group.embed_rotation().map}
    extra = Interpretation(boxes, couplings=couplings)
    return Gamma(morphism, interpretation | inner_interpretation | extra, group, action)


def _centre(x: Tensor) -> Tensor:
    return x - x.mean(-2, keepdim=True)


class _Shift:
    def __init__(self, group: Euclidean) -> None:
        self.group = group

    def __call__(self, x: Tensor) -> Tensor:
        return self.group.embed_translation().map(Centroid()(x))


class NoisySort(nn.Module):
    """``(x (n, d), eps (n,)) |-> argsort(score(x_i) + scale eps_i)`` as an element of ``S_n``.

    ``score`` acts row by row (so permuting rows permutes scores).  For
    :class:`~markovcat.backends.torch.groups.Symmetric` it returns index vectors (no
    gradient); for :class:`~markovcat.backends.torch.finite_groups.PermutationMatrices` the
    exact permutation matrix, with the NeuralSort relaxation's gradient (straight-through).
    """

    def __init__(self, score: nn.Module, group: TorchGroup, scale: float = 1.0, tau: float = 1.0) -> None:
        super().__init__()
        if not isinstance(group, (Symmetric, PermutationMatrices)):
            raise InterpretationError(f"NoisySort lands in S_n, not {group.name}")
        self.score, self.group, self.scale, self.tau = score, group, scale, tau

    def forward(self, x: Tensor, eps: Tensor) -> Tensor:
        s = self.score(x).squeeze(-1) + self.scale * eps
        order = torch.argsort(s, dim=-1)
        if isinstance(self.group, Symmetric):
            return order
        hard = self.group.from_indices(order, s.dtype)
        soft = _neural_sort(-s, self.tau).transpose(-1, -2)  # ascending order; M = S^T
        return hard + (soft - soft.detach())


def _neural_sort(s: Tensor, tau: float) -> Tensor:
    """NeuralSort: a row-stochastic relaxation of the matrix sorting ``s`` in decreasing order."""
    n = s.shape[-1]
    pairwise = (s.unsqueeze(-1) - s.unsqueeze(-2)).abs().sum(-1)  # A 1
    scaling = (n + 1 - 2 * torch.arange(1, n + 1, dtype=s.dtype, device=s.device))
    logits = scaling.unsqueeze(-1) * s.unsqueeze(-2) - pairwise.unsqueeze(-2)
    return torch.softmax(logits / tau, dim=-1)


def noisy_sort(score: nn.Module, group: TorchGroup, action: TorchAction, space: GSpace | None = None,
               scale: float = 1.0, tau: float = 1.0) -> Gamma:
    """``S_n`` on sets: ``gamma(x) = argsort(score(x) + eps)``; ties are broken by the noise (probability one).

    Pathwise-checked with the noise permuted along with the rows (``eps`` i.i.d., so exchangeable).
    """
    space, interpretation = _space(group, action, space)
    n = group.n  # type: ignore[attr-defined]
    E = Ty(f"U_{space.group.name}")
    eps = Box(f"tiebreak_{space.group.name}", Ty(), E)
    sort = Box(f"sort_{space.group.name}", space.ty @ E, space.group.ty, deterministic=True)
    morphism = _assume(with_noise(sort, eps), space, "a row-wise score and exchangeable noise", "noisy_sort")
    boxes = {eps: ActedGaussian((n,), sequences(group)), sort: NoisySort(score, group, scale, tau)}
    return Gamma(morphism, interpretation | Interpretation(boxes, {E: Spec((n,))}), group, action)
