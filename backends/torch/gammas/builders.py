"""The builders of the library's gammas: each returns a :class:`~markovcat.backends.torch.gammas.Gamma`.

Which builder serves which group, its guarantee, its cost and the inputs where it fails
are tabulated in the guide (``docs/how-to/gammas.md``, "Choose a gamma").  "Exact"
averaging (``average="exact"``) needs ``elements``: the Haar gamma of a finite group lists
the group; a uniform frame lists its frame; a deterministic gamma is its own support.

>>> import torch
>>> from markovcat import Box, sym
>>> from markovcat.backends import torch as mct
>>> O3 = mct.Orthogonal(3)
>>> gamma = mct.gammas.canonical(mct.PCACanonicaliser(), O3, O3.points(10))    # Kaba et al.: canonicalise by PCA
>>> gamma.guarantee.kind, gamma.check().passed
('exact', True)
>>> k = Box("k", gamma.space.ty, gamma.space.ty, deterministic=True)  # any network on (10, 3) clouds
>>> model = mct.compile(sym(k, gamma.morphism, gamma.space),
...                     gamma.interpretation | mct.Interpretation({k: torch.nn.Linear(3, 3)}))
>>> mct.check_equivariance(model.double(), O3, O3.points(10)).passed
True
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable, Sequence
from typing import Any

import torch
from torch import Tensor, nn

from markovcat.backends.torch.compile import Gaussian, Interpretation, InterpretationError, Spec
from markovcat.backends.torch.finite_groups import elements, sequences
from markovcat.backends.torch.frames import Centroid, LowerCholesky, UniformFrame
from markovcat.backends.torch.gammas.gamma import Gamma, Guarantee, _degenerate, diagram_space, vouched
from markovcat.backends.torch.gammas.networks import NoisySort, _Projected
from markovcat.backends.torch.gammas.recognise import _permutes_rows, enumerable
from markovcat.backends.torch.groups import Orthogonal, Symmetric, TorchAction, TorchGroup
from markovcat.backends.torch.linalg import accepts, haar_orthogonal
from markovcat.backends.torch.matrix_groups import Euclidean, GeneralLinear
from markovcat.gspace import Equivariant, GSpace
from markovcat.program import program
from markovcat.symmetrisation import haar_gamma as _haar_morphism
from markovcat.symmetrisation import recursive_gamma, with_noise
from markovcat.syntax import Box, Ty

__all__ = ["canonical", "canonical_random_ties", "from_haar", "uniform_frame", "noise_outsourced", "recursive",
           "general_linear", "euclidean", "noisy_sort"]


def _assume(diagram: Any, space: GSpace, guarantee: Guarantee, name: str) -> Equivariant:
    return Equivariant.assume(diagram, space, GSpace.regular(space.group), reason=guarantee.evidence, name=name)


def canonical(function: Any, group: TorchGroup, action: TorchAction, *, name: str = "canonical",
              guarantee: Guarantee | None = None) -> Gamma:
    """A deterministic gamma (a canonicaliser, e.g. :class:`~markovcat.backends.torch.frames.PCACanonicaliser`).

    :meth:`Gamma.from_callable` for a function; refuses a sampler (use ``from_callable``).
    """
    if accepts(function, "generator") or getattr(function, "deterministic", True) is False:
        raise TypeError(f"canonical takes a deterministic function of x; {type(function).__name__} is a sampler "
                        "(it takes generator=): use Gamma.from_callable")
    return Gamma.from_callable(function, group, action, name=name, guarantee=guarantee)


class _AllElements:
    """Every element of a finite group, for each input: ``(batch, |G|, *G)``."""

    def __init__(self, group: TorchGroup) -> None:
        self.all = elements(group, limit=_LIMIT)

    def __call__(self, x: Tensor) -> Tensor:
        g = self.all if self.all.device == x.device else self.all.to(x.device)
        return g.unsqueeze(0).expand(x.shape[0], *g.shape)


_LIMIT = math.factorial(8)  # the most elements of a finite group listed for exact averaging (S_8)


def from_haar(group: TorchGroup, action: TorchAction) -> Gamma:
    """The Haar gamma with its torch interpretation: ``gamma(x) = R0 ~ Haar(G)``, ignoring ``x`` (compact groups).

    The morphism is :func:`markovcat.symmetrisation.haar_gamma` (``mc.haar_gamma``, the ``C^G``
    morphism alone; this builder was also called ``haar_gamma``, a deprecated name); the draw is
    ``group.haar_sampler()``, coupled by ``R0 -> g R0`` (pathwise checks).  For a finite group
    ``elements`` lists the whole group (exact averaging: Janossy pooling).
    """
    space, interpretation = diagram_space(group, action)
    morphism = _haar_morphism(space)
    lam = next(b for b in morphism.diagram.boxes if not b.deterministic)
    guarantee = Guarantee("in law", _reasons(morphism))  # the evidence's own words: left-invariance of Haar
    support = _AllElements(group) if enumerable(group) and _countable(group) else None
    boxes = Interpretation({lam: group.haar_sampler()})
    return Gamma(morphism, interpretation | boxes, group, action, guarantee, support)


def _reasons(morphism: Equivariant) -> str:
    return "; ".join(dict.fromkeys(a.reason for a in morphism.assumptions()))


def _countable(group: TorchGroup) -> bool:
    try:
        return int(elements(group, limit=_LIMIT).shape[0]) > 0
    except InterpretationError:
        return False


def uniform_frame(frames: Any, group: TorchGroup, action: TorchAction) -> Gamma:
    """``gamma(x) ~ Uniform(F(x))`` for a set-equivariant frame ``F`` (``frames(x) -> (batch, m, *G)``).

    One stochastic box, with ``elements = frames`` (exact averaging); no coupling, so
    checks use the two-sample test.
    """
    sampler = frames if isinstance(frames, UniformFrame) else UniformFrame(frames)
    inner = getattr(sampler, "frames", frames)
    ours = vouched(frames) and vouched(inner)  # a user's frame in our sampler stays theirs
    name = "frame" if ours else f"frame_{getattr(inner, '__name__', type(inner).__name__)}"
    return Gamma.from_callable(sampler, group, action, name=name,
                               guarantee=Guarantee("in law" if ours else "assumed",
                                                   "a uniform draw from a frame with F(g.x) = g F(x) as a set",
                                                   _degenerate(getattr(frames, "frames", frames))))


def canonical_random_ties(group: Symmetric, action: TorchAction, *, validate: bool = True) -> Gamma:
    """``S_n`` on sets: the lexicographic sorting permutation, ties between equal rows broken uniformly at random.

    Equivariant in law at every input, tied or not: the sorting permutations of ``p.x``
    are ``p`` composed with those of ``x``, and a uniform choice among them moves with
    ``p``.  So ``sym`` with it is exactly equivariant in distribution even for sets with
    repeated rows (zero padding), where no deterministic canonicalisation can be.
    """
    from markovcat.backends.torch.frames import RandomTiesLexsort

    if not _permutes_rows(group, action):
        raise TypeError(f"canonical-random-ties is for S_n permuting the rows of (n, d) sets, got {action!r}")
    return Gamma.from_callable(RandomTiesLexsort(), group, action, name="random_ties",
                               guarantee=Guarantee("in law", "lexicographic order with ties broken uniformly at "
                                                   "random among the sorting permutations"))


def noise_outsourced(h: nn.Module, group: Orthogonal, action: TorchAction, noise: TorchAction) -> Gamma:
    """Kim et al. 2023: ``gamma(x) = QR(h(x, eps))``, ``eps ~ N(0, I)`` moved by ``noise`` (e.g. ``group.points(m)``).

    Equivariant in law when ``h(g.x, g.eps) = g h(x, eps)`` (e.g. :class:`EquivariantVectors`,
    :class:`GramNet`: guarantee ``in law``; any other ``h`` is ``assumed``) and the Gaussian is
    invariant under ``noise``; pathwise-checked with ``eps -> g.eps``.  ``QR`` is :func:`project`.
    """
    space, interpretation = diagram_space(group, action)
    E = Ty(f"E_{space.group.name}")
    eps = Box(f"eps_{space.group.name}", Ty(), E)
    net = Box(f"h_{space.group.name}", space.ty @ E, space.group.ty, deterministic=True)
    guarantee = Guarantee("in law" if vouched(h) else "assumed",
                          f"h ({type(h).__name__}) is O(d)-equivariant and the Gaussian noise law is invariant")
    morphism = _assume(with_noise(net, eps), space, guarantee, "kim")
    shape = tuple(int(s) for s in noise.spec.shape)  # type: ignore[arg-type]
    boxes = {eps: Gaussian(shape, noise), net: _Projected(h, group)}
    return Gamma(morphism, interpretation | Interpretation(boxes, {E: Spec(shape)}), group, action, guarantee)


def recursive(net: nn.Module, group: TorchGroup, action: TorchAction, noise_shape: Sequence[int]) -> Gamma:
    """Cornish 2024: ``R0 ~ Haar; g = R0 . net(R0^-1 . x, eps)``, ``eps ~ N(0, I)`` (``net`` unconstrained, into G).

    Built by :func:`markovcat.symmetrisation.recursive_gamma`: equivariant in law for any
    ``net``, by construction; pathwise-checked (``R0 -> g R0``, ``eps`` unchanged).
    """
    space, interpretation = diagram_space(group, action)
    E = Ty(f"N_{space.group.name}")
    eps = Box(f"noise_{space.group.name}", Ty(), E)
    f = Box(f"f_{space.group.name}", space.ty @ E, space.group.ty, deterministic=True)
    base = _haar_morphism(space)
    morphism = recursive_gamma(with_noise(f, eps), base)
    lam = next(b for b in base.diagram.boxes if not b.deterministic)
    boxes = {eps: Gaussian(noise_shape), f: net, lam: group.haar_sampler()}
    guarantee = Guarantee("in law", f"sym of any network with the Haar gamma, by {_reasons(morphism)}")
    return Gamma(morphism, interpretation | Interpretation(boxes, {E: Spec(tuple(noise_shape))}), group, action,
                 guarantee)


class _HaarInGL:
    """Haar elements of ``O(d)`` as elements of ``GL(d)`` (no coupling: GL moves them by an x-dependent rotation)."""

    def __init__(self, d: int) -> None:
        self.d = d

    def __call__(self, *, generator: torch.Generator | None = None, like: Tensor) -> Tensor:
        return haar_orthogonal(like.shape[0], self.d, generator, like.dtype, like.device)


def general_linear(group: GeneralLinear, n: int, *, broken: bool = False) -> Gamma:
    """``GL(d)`` on ``(d, n)`` matrices by ``x -> A x``: ``gamma(x) = chol(x x^T) R``, ``R ~ Haar(O(d))``.

    Equivariant in law (``chol(A x x^T A^T) = A chol(x x^T) Q``, ``Q`` orthogonal, and
    ``Q R ~ R``); two-sample checked.  ``broken=True`` puts ``R`` on the left, which is not
    (a deliberately broken gamma, for testing checks: its guarantee says so).
    Rank-deficient ``x`` raises (see :class:`~markovcat.backends.torch.frames.LowerCholesky`).
    """
    action = group.left(n)
    space, interpretation = diagram_space(group, action)
    G = space.group
    chol = Box(f"chol_{G.name}", space.ty, G.ty, deterministic=True)
    rot = Box(f"haarO_{G.name}", Ty(), G.ty)

    @program(space.ty, G.ty)
    def diagram(x: Any) -> Any:
        return G.mul(rot(), chol(x)) if broken else G.mul(chol(x), rot())

    guarantee = Guarantee("assumed", "deliberately broken (R on the left): NOT equivariant") if broken else \
        Guarantee("in law", "chol(A x x^T A^T) R ~ A chol(x x^T) R for Haar R", "x not of full row rank: refused")
    morphism = _assume(diagram, space, guarantee, "gl_cholesky")
    boxes = {chol: LowerCholesky(), rot: _HaarInGL(group.d)}
    return Gamma(morphism, interpretation | Interpretation(boxes), group, action, guarantee)


class _Through:
    """A coupling for an ``O(d)`` noise box, driven by the rotation part of an ``E(d)`` element."""

    def __init__(self, coupling: Any, part: Any) -> None:
        self.coupling, self.part = coupling, part

    def __call__(self, g: Tensor, *draws: Tensor) -> Any:
        return self.coupling(self.part(g), *draws)


def euclidean(rotation: Gamma, group: Euclidean) -> Gamma:
    """``E(d)`` on point clouds: ``gamma(x) = (c, R)``, ``c`` the centroid, ``R ~ rotation(x - c)``.

    ``rotation`` is any ``O(d)`` (``SO(d)`` for ``SE(d)``) gamma on point clouds ``(n, d)``
    (:func:`canonical` of :class:`~markovcat.backends.torch.frames.PCACanonicaliser`,
    :func:`from_haar`, :func:`recursive`, ...); its noise couplings are driven by the
    rotation part of ``g``; its guarantee carries over.
    """
    n = int(rotation.action.spec.shape[0])  # type: ignore[arg-type]
    action = group.points(n)
    space, interpretation = diagram_space(group, action)
    G, inner = space.group, rotation.space
    centre = Box(f"centre_{G.name}", space.ty, inner.ty, deterministic=True)
    shift = Box(f"centroid_{G.name}", space.ty, G.ty, deterministic=True)
    embed = Box(f"embed_{G.name}", inner.group.ty, G.ty, deterministic=True)
    rot = rotation.morphism.diagram

    @program(space.ty, G.ty)
    def diagram(x: Any) -> Any:
        return G.mul(shift(x), embed(rot(centre(x))))

    guarantee = Guarantee(rotation.guarantee.kind, f"the centroid, then {rotation.guarantee.sentence}",
                          rotation.guarantee.degenerate, rotation.guarantee.checked)
    morphism = _assume(diagram, space, guarantee, "euclidean")
    inner_interpretation = rotation.interpretation
    couplings = {}
    for name in rot.signature:
        meaning = inner_interpretation.boxes.get(name)
        coupling = inner_interpretation.couplings.get(name, getattr(meaning, "coupling", None))
        if coupling is not None:
            couplings[name] = _Through(coupling, group.rotation)
    boxes = {centre: _centre, shift: _Shift(group), embed: group.embed_rotation().map}
    extra = Interpretation(boxes, couplings=couplings)
    return Gamma(morphism, interpretation | inner_interpretation | extra, group, action, guarantee)


def _centre(x: Tensor) -> Tensor:
    return x - x.mean(-2, keepdim=True)


class _Shift:
    def __init__(self, group: Euclidean) -> None:
        self.group = group

    def __call__(self, x: Tensor) -> Tensor:
        return self.group.embed_translation().map(Centroid()(x))


def noisy_sort(score: nn.Module, group: TorchGroup, action: TorchAction, scale: float = 1.0,
               tau: float = 1.0) -> Gamma:
    """``S_n`` on sets: ``gamma(x) = argsort(score(x) + eps)``; ties are broken by the noise (probability one).

    Equivariant in law provided ``score`` acts on each row alone; pathwise-checked with the
    noise permuted along with the rows (``eps`` i.i.d., so exchangeable).
    """
    space, interpretation = diagram_space(group, action)
    n = group.n  # type: ignore[attr-defined]
    E = Ty(f"U_{space.group.name}")
    eps = Box(f"tiebreak_{space.group.name}", Ty(), E)
    sort = Box(f"sort_{space.group.name}", space.ty @ E, space.group.ty, deterministic=True)
    guarantee = Guarantee("in law", "argsort of a row-wise score plus exchangeable noise")
    morphism = _assume(with_noise(sort, eps), space, guarantee, "noisy_sort")
    boxes = {eps: Gaussian((n,), sequences(group)), sort: NoisySort(score, group, scale, tau)}
    return Gamma(morphism, interpretation | Interpretation(boxes, {E: Spec((n,))}), group, action, guarantee)


def old_names(module: str) -> Callable[[str], Any]:
    """A module ``__getattr__`` answering ``haar_gamma``, the old name of :func:`from_haar`, with a deprecation."""

    def __getattr__(name: str) -> Any:
        if name == "haar_gamma":
            warnings.warn(f"{module}.haar_gamma is deprecated: use from_haar (mc.haar_gamma is the C^G morphism "
                          f"alone)", DeprecationWarning, stacklevel=2)
            return from_haar
        raise AttributeError(f"module {module!r} has no attribute {name!r}")

    return __getattr__


__getattr__ = old_names(__name__)
