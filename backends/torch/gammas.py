"""Gammas: the ``C^G`` morphisms ``gamma : (X, a) -> (G, *)`` that symmetrisation is built from, in torch.

What a gamma is.  ``sym(k, gamma)`` (Cornish 2024) turns any network ``k : X -> Y`` into a
``G``-equivariant one, ``x |-> g . k(g^-1 . x)`` with ``g ~ gamma(x)``, provided ``gamma``
itself is equivariant: ``gamma(h . x) = h gamma(x)`` (as random elements of ``G``).  Every
gamma here, built-in or the user's, is one type, :class:`Gamma`: an immutable bundle of

* ``morphism`` - the gamma as a ``C^G`` morphism (:class:`~markovcat.gspace.Equivariant`),
  whose evidence records why it is equivariant (``gamma.morphism.explain()``);
* ``interpretation`` - the :class:`~markovcat.backends.torch.compile.Interpretation` of its boxes
  (including the group's and the action's, so that ``compile`` checks their axioms);
* ``group`` and ``action`` - the torch group and its action on the inputs;
* ``guarantee`` - a :class:`Guarantee`: what the gamma promises, in the vocabulary below;
* ``elements`` (optional) - ``elements(x) -> (batch, m, *G)``, a finite support on which
  ``gamma(x)`` is uniform, for exact averaging.

``gamma.compile()`` gives a module, ``gamma.check()`` tests the guarantee numerically
(:func:`~markovcat.backends.torch.equivariance.check_equivariance`).  A user's function
becomes a gamma with :meth:`Gamma.from_callable` (or :func:`as_gamma`, which also takes the
names of the built-in gammas).

Guarantee vocabulary (:attr:`Guarantee.kind`):

``exact``     deterministic, and ``gamma(h . x) = h gamma(x)`` at every input that is not
              degenerate (to rounding); the library's own constructions, each checked in its
              test suite.
``in law``    stochastic, and ``gamma(h . x)`` has the law of ``h gamma(x)``; ``sym`` with it is
              exactly equivariant in distribution.
``assumed``   declared equivariant by its author (a user's function): nothing checked it
              unless you run ``gamma.check()``.

:attr:`Guarantee.degenerate` says where the promise does not hold (e.g. a cloud with
repeated covariance eigenvalues) and what happens there: with ``validate=True`` such
inputs are refused with a ``ValueError`` naming the batch index; with ``validate=False``
a finite group element is returned all the same, with no equivariance at those inputs.
The guarantee's sentence is the reason recorded in the morphism's evidence, so
``gamma.morphism.assumptions()`` lists it.

Built-in gammas.  The names that ``mc.symmetrise(..., gamma=name)`` resolves (:data:`NAMED`), the
builder each calls, for which groups, and the guarantee::

    name                     builder                               groups                         kind
    "haar"                   haar_gamma                            compact: O(d), SO(d), C_n,     in law
                                                                   D_n, S_n, products
    "canonical"              canonical(PCACanonicaliser)           O(d), SO(d) on point clouds    exact
    "canonical"              canonical(Lexsort)                    S_n on sets (n, d)             exact
    "canonical"              canonical(OrbitArgmax)                other finite groups            exact
    "canonical-random-ties"  canonical_random_ties                 S_n on sets (n, d)             in law
    "frame"                  uniform_frame(PCAFrames)              O(d), SO(d) on point clouds    in law
    "frame"                  haar_gamma                            finite groups                  in law
    "recursive"              recursive(GroupNet)                   compact groups with project()  in law
    "learned"                noise_outsourced(GramNet)             O(d), SO(d) on point clouds    in law
    -                        canonical(Centroid)                   T(d) on point clouds           exact
    -                        euclidean(rotation gamma)             E(d), SE(d) on point clouds    the rotation's
    -                        general_linear                        GL(d) on (d, n) matrices       in law
    -                        noisy_sort(score)                     S_n                            in law

Their cost per input (``n`` points in ``d`` dimensions) and when they fail::

    builder                         cost                           degenerate inputs (refused with validate=True)
    haar_gamma                      one Haar draw; |G| passes      none; a non-compact group is refused
                                    for exact averaging
    canonical(PCACanonicaliser)     O(n d^2 + d^3)                 repeated covariance eigenvalues, or a vanishing
                                                                   third moment along an axis (a symmetric cloud);
                                                                   accepts about 99.8% of float32 Gaussian clouds
    canonical(MomentCanonicaliser)  O(n d^2)                       dependent moment vectors: planar, collinear or
                                                                   symmetric clouds; refuses about 9% of float32
                                                                   Gaussian clouds (use float64)
    canonical(Lexsort)              O(d n log n)                   equal rows when the output is equivariant (an
                                                                   invariant output accepts them: every tie-break
                                                                   gives the same canonical set)
    canonical(OrbitArgmax)          |G| scores                     an input with a symmetry (a tied orbit score)
    canonical_random_ties           O(d n log n)                   none: ties are broken uniformly at random among
                                                                   the sorting permutations (equivariant in law)
    uniform_frame(PCAFrames)        2^d passes for exact           repeated covariance eigenvalues
                                    averaging
    recursive(GroupNet)             one Haar draw, one network     none; equivariant in law for any network
    noise_outsourced(GramNet)       one network call               none (QR keeps a zero pivot's sign: no NaN)
    canonical(Centroid)             O(n d)                         none
    euclidean(rotation)             the rotation gamma's           the rotation gamma's
    general_linear                  one Cholesky factor            x not of full row rank (always refused)
    noisy_sort(score)               one argsort                    none (the noise breaks ties); needs a score
                                                                   acting on each row alone

"Exact" averaging (``average="exact"``) needs ``elements``: the Haar gamma of a finite
group lists the group; a uniform frame lists its frame; a deterministic gamma is its own
support (one element).

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

Gradients: QR is differentiable, so gradients reach the networks of
:func:`noise_outsourced` and :func:`recursive`.  ``argsort`` is not: :class:`NoisySort`
returns, for :class:`~markovcat.backends.torch.finite_groups.PermutationMatrices`, the exact
permutation matrix in the forward pass and the gradient of its NeuralSort relaxation
(Grover et al. 2019, temperature ``tau``) in the backward pass (straight-through).
"""

from __future__ import annotations

import copy
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

import torch
from torch import Tensor, nn

from markovcat.backends.torch.compile import (
    CompiledDiagram,
    Gaussian,
    Interpretation,
    InterpretationError,
    Spec,
    Symmetry,
    compile,
)
from markovcat.backends.torch.equivariance import EquivarianceReport, check_equivariance
from markovcat.backends.torch.finite_groups import PermutationMatrices, elements, sequences
from markovcat.backends.torch.frames import (
    Centroid,
    Lexsort,
    LowerCholesky,
    OrbitArgmax,
    PCACanonicaliser,
    UniformFrame,
    UniformPCAFrame,
)
from markovcat.backends.torch.groups import (
    Cyclic,
    Orthogonal,
    Symmetric,
    TorchAction,
    TorchGroup,
    as_rows,
    check_layout,
)
from markovcat.backends.torch.linalg import accepts, haar_orthogonal, orthonormalise, randn
from markovcat.backends.torch.matrix_groups import Euclidean, GeneralLinear
from markovcat.groups import Action, Group
from markovcat.gspace import Equivariant, GSpace
from markovcat.program import program
from markovcat.symmetrisation import haar_gamma as _haar_morphism
from markovcat.symmetrisation import recursive_gamma, with_noise
from markovcat.syntax import Box, Ty

__all__ = ["Gamma", "Guarantee", "GUARANTEES", "as_gamma", "NAMED", "named", "diagram_space", "canonical",
           "canonical_random_ties", "haar_gamma", "uniform_frame", "noise_outsourced", "recursive", "general_linear",
           "euclidean", "noisy_sort", "EquivariantVectors", "GramNet", "GroupNet", "MLPFrame", "NoisySort",
           "orthonormalise", "project", "raw_size", "enumerable", "orthogonal_layout", "ActedGaussian"]

#: The kinds of :class:`Guarantee` and what each promises.
GUARANTEES: Mapping[str, str] = MappingProxyType({
    "exact": "deterministic, and gamma(h.x) = h gamma(x) at every input that is not degenerate (to rounding)",
    "in law": "stochastic, and gamma(h.x) has the law of h gamma(x): sym with it is equivariant in distribution",
    "assumed": "declared equivariant by its author; nothing checked it unless gamma.check() was run",
})


@dataclass(frozen=True)
class Guarantee:
    """What a gamma promises: a ``kind`` from :data:`GUARANTEES`, a human ``sentence`` saying why, and where it fails.

    ``degenerate`` describes the inputs where the promise does not hold and what happens
    there (``""``: there are none).  The sentence is the reason recorded in the gamma's
    ``C^G`` evidence (``gamma.morphism.assumptions()``).  A guarantee is a claim, not a
    proof: :meth:`Gamma.check` tests it numerically on sampled inputs.
    """

    kind: str
    sentence: str
    degenerate: str = ""

    def __post_init__(self) -> None:
        if self.kind not in GUARANTEES:
            raise ValueError(f"unknown guarantee kind {self.kind!r}: use one of {', '.join(GUARANTEES)}")
        if not self.sentence:
            raise ValueError("a guarantee needs a sentence saying why the gamma is equivariant")

    def __str__(self) -> str:
        where = f"; at degenerate inputs ({self.degenerate})" if self.degenerate else ""
        return f"{self.kind}: {self.sentence}{where}"


@dataclass(frozen=True, eq=False)
class Gamma:
    """A gamma ``(X, a) -> (G, *)``: its ``C^G`` morphism, torch interpretation, group, action and guarantee.

    Every gamma is one of these (see the module docstring); build one with a builder of
    this module, :meth:`from_callable` or :func:`as_gamma`.  Immutable: combine, do not
    mutate.  ``elements(x) -> (batch, m, *G)``, when given, is a finite support on which
    ``gamma(x)`` is uniform (exact averaging).  Construction checks that ``morphism``
    lands in ``(G, *)``, that an ``exact`` gamma is deterministic, and that the
    interpretation's group and action are ``group`` and ``action``.
    """

    morphism: Equivariant
    interpretation: Interpretation
    group: TorchGroup
    action: TorchAction
    guarantee: Guarantee
    elements: Callable[[Tensor], Tensor] | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.morphism, Equivariant):
            raise TypeError(f"a gamma's morphism is a C^G morphism (Equivariant), got {type(self.morphism).__name__}")
        regular = GSpace.regular(self.morphism.group)
        if self.morphism.cod != regular:
            raise TypeError(f"a gamma lands in {regular}, but {self.morphism.name} lands in {self.morphism.cod}")
        if not isinstance(self.interpretation, Interpretation):
            raise TypeError(f"a gamma's interpretation is an Interpretation, got {type(self.interpretation).__name__}")
        if not isinstance(self.action, TorchAction) or self.action.group is not self.group:
            raise TypeError(f"a gamma's action must be a TorchAction of its group {self.group!r}, got {self.action!r}")
        if not isinstance(self.guarantee, Guarantee):
            raise TypeError(f"a gamma's guarantee is a Guarantee, got {type(self.guarantee).__name__}")
        if self.guarantee.kind == "exact" and not self.deterministic:
            raise ValueError(f"{self.morphism.name} is stochastic, so its guarantee cannot be 'exact': say 'in law'")

    # -- description ------------------------------------------------------------------
    @property
    def space(self) -> GSpace:
        """The domain ``(X, a)`` of the morphism."""
        return self.morphism.dom

    @property
    def deterministic(self) -> bool:
        return bool(self.morphism.diagram.is_deterministic)

    @property
    def name(self) -> str:
        return str(self.morphism.name)

    @property
    def symmetry(self) -> Symmetry:
        """The group and actions the gamma is equivariant for: ``action`` in, ``group.regular()`` out."""
        return Symmetry(self.group, self.action, self.group.regular())

    def explain(self) -> str:
        """The guarantee, then the ``C^G`` evidence tree of the morphism."""
        return f"guarantee ({self.guarantee})\n{self.morphism.explain()}"

    def __repr__(self) -> str:
        return f"<Gamma {self.name} : {self.action!r} -> {self.group.name} ({self.guarantee.kind})>"

    # -- use ----------------------------------------------------------------------------
    def compile(self, **options: Any) -> CompiledDiagram:
        """The gamma alone as a module (``model.symmetry`` set, so :func:`~.procedures.check` works on it)."""
        return compile(self.morphism, self.interpretation, symmetry=self.symmetry, **options)

    def check(self, dtype: torch.dtype = torch.float64, **options: Any) -> EquivarianceReport:
        """``check_equivariance`` of the compiled gamma (a copy cast to ``dtype``) into ``(G, *)``.

        A pass is evidence on the sampled inputs only (a proof in law for pathwise checks
        with law-preserving couplings): see :func:`~markovcat.backends.torch.equivariance.check_equivariance`.
        """
        model = copy.deepcopy(self.compile()).to(dtype)  # leaves the interpretation's modules as they are
        return check_equivariance(model, self.group, self.action, self.group.regular(), dtype=dtype, **options)

    def support(self) -> Callable[[Tensor], Tensor] | None:
        """``x |-> (batch, m, *G)``, a finite support on which ``gamma(x)`` is uniform, or ``None`` if unknown.

        ``elements`` if given; else, for a deterministic gamma, its own value (a point mass).
        """
        if self.elements is not None:
            return self.elements
        if self.deterministic:
            return _PointMass(self.compile(check=False))
        return None

    # -- construction -------------------------------------------------------------------
    @classmethod
    def from_callable(cls, function: Any, group: TorchGroup, action: TorchAction, *, name: str | None = None,
                      reason: str | None = None, elements: Callable[[Tensor], Tensor] | None = None,
                      guarantee: Guarantee | None = None) -> Gamma:
        """A batched function or sampler ``x |-> g`` as a gamma (one box).

        Stochastic if it takes ``generator=`` (or says ``deterministic = False``).  Optional
        attributes it may carry: ``reason`` (why it is equivariant), ``elements(x)`` (its
        finite uniform support), ``coupling(g, draw)`` (for pathwise checks) and ``validate``
        (whether degenerate inputs are refused).  Unless ``guarantee`` is given, the
        library's own frames (:mod:`markovcat.backends.torch.frames`) are ``exact`` (or
        ``in law`` when stochastic) and anything else is ``assumed``.
        """
        if not callable(function):
            raise TypeError(f"a gamma is a function (or sampler) of a batch returning group elements, got "
                            f"{type(function).__name__} {function!r}")
        space, interpretation = diagram_space(group, action)
        deterministic = bool(getattr(function, "deterministic", not accepts(function, "generator")))
        label = name or getattr(function, "name", None) or getattr(function, "__name__", None) or \
            type(function).__name__
        if guarantee is None:
            ours = _ours(function) and _ours(getattr(function, "frames", function))  # a user's frame stays theirs
            kind = ("exact" if deterministic else "in law") if ours else "assumed"
            sentence = reason or getattr(function, "reason", None) or f"{label} is declared {group.name}-equivariant"
            guarantee = Guarantee(kind, sentence, _degenerate(function))
        box = Box(f"gamma_{label}", space.ty, space.group.ty, deterministic=deterministic)
        morphism = Equivariant.assume(box, space, GSpace.regular(space.group), reason=guarantee.sentence,
                                      name=f"gamma_{label}")
        support = elements if elements is not None else getattr(function, "elements", None)
        return cls(morphism, interpretation | Interpretation({box: function}), group, action, guarantee, support)


class _PointMass(nn.Module):
    """The support of a deterministic gamma: its one value, ``(batch, 1, *G)``."""

    def __init__(self, gamma: nn.Module) -> None:
        super().__init__()
        self.gamma = gamma

    def forward(self, x: Tensor) -> Tensor:
        return self.gamma(x).unsqueeze(1)  # type: ignore[no-any-return]


def _degenerate(function: Any) -> str:
    validate = getattr(function, "validate", None)
    if validate is True:
        return "refused with a ValueError naming the batch index"
    if validate is False:
        return "validate=False: a finite group element, not equivariant there"
    return ""


def diagram_space(group: TorchGroup, action: TorchAction, label: str = "X") -> tuple[GSpace, Interpretation]:
    """The diagram-level G-space ``(X, a)`` for a torch action, and the interpretation of its group and action."""
    G = Group(group.name)
    X = Ty(f"{label}_{group.name}")
    space = GSpace(X, Action(f"{action.name} on {label} ({group.name})", G, X))
    return space, group.interpretation(G, (space.action, action))


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
    raise TypeError(f"no projection onto {group.name}: define {type(group).__name__}.project(raw) and raw_size, "
                    "or pass a Gamma")


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
    raise TypeError(f"no network gamma for {group.name}: define {type(group).__name__}.project(raw) and raw_size, "
                    "or pass a Gamma")


def orthogonal_layout(group: Any, action: TorchAction) -> str:
    """How O(d) acts on ``action``'s space: ``"rows"`` (``x g^T`` on ``(n, d)`` clouds) or ``"columns"`` (``g x``).

    Recognised numerically on random points; any other action raises ``TypeError``.
    """
    if not isinstance(group, Orthogonal):
        raise TypeError(f"{group.name} is not O(d)")
    gen = torch.Generator().manual_seed(0)
    try:
        x = action.random(2, gen, torch.float64)
    except Exception as error:
        raise TypeError(f"cannot draw points of {action!r} to recognise the action: {error}") from error
    g = group.sample(2, gen, torch.float64)
    y = action.act(g, x)
    if x.dim() == 3 and x.shape[-1] == group.d and torch.allclose(y, x @ g.transpose(-1, -2)):
        return "rows"
    if x.dim() == 3 and x.shape[-2] == group.d and torch.allclose(y, g @ x):
        return "columns"
    raise TypeError(f"no built-in O(d) gamma for {action!r} (only point clouds x g^T and matrices g x): "
                    "build a Gamma with Gamma.from_callable")


def _acts_trivially(action: TorchAction) -> bool:
    """Whether ``action`` leaves every point alone (checked exactly on random elements and points)."""
    gen = torch.Generator().manual_seed(0)
    try:
        y = action.random(4, gen, torch.float64)
        g = action.group.sample(4, gen, torch.float64)
        return bool(torch.equal(action.act(g, y), y))
    except Exception:  # noqa: BLE001 - an action we cannot sample is not known to be trivial
        return False


def _permutes_rows(group: Any, action: TorchAction) -> bool:
    """Whether ``action`` is ``S_n`` permuting the rows of ``(n, d)`` sets (as :meth:`Symmetric.sets`)."""
    shape = action.spec.shape
    if not isinstance(group, Symmetric) or len(shape) != 2 or not isinstance(shape[1], int):
        return False
    gen = torch.Generator().manual_seed(0)
    x = action.random(4, gen, torch.float64)
    p = group.sample(4, gen)
    return bool(torch.equal(action.act(p, x), group.sets(shape[1]).act(p, x)))


# -- networks -----------------------------------------------------------------------------------------
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


class MLPFrame(GroupNet):
    """``(x, eps) |-> QR(mlp([x, eps]))`` into ``O(d)``: :class:`GroupNet` for ``O(d)`` (for :func:`recursive`)."""

    def __init__(self, x_size: int, noise_size: int, d: int, hidden: int = 64) -> None:
        super().__init__(Orthogonal(d), x_size, noise_size, hidden)
        self.d = d


class _Projected(nn.Module):
    def __init__(self, net: nn.Module, group: Orthogonal) -> None:
        super().__init__()
        self.net, self.group = net, group

    def forward(self, x: Tensor, eps: Tensor) -> Tensor:
        return project(self.group, self.net(x, eps))


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
        if reference is None:
            raise InterpretationError("noise with no inputs needs like=... for the batch size")
        dtype = reference.dtype if reference.is_floating_point() else torch.get_default_dtype()
        return randn((reference.shape[0], *self.shape), generator, dtype, reference.device)


# -- builders -----------------------------------------------------------------------------------------
def _assume(diagram: Any, space: GSpace, guarantee: Guarantee, name: str) -> Equivariant:
    return Equivariant.assume(diagram, space, GSpace.regular(space.group), reason=guarantee.sentence, name=name)


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


def haar_gamma(group: TorchGroup, action: TorchAction) -> Gamma:
    """The Haar gamma with its torch interpretation: ``gamma(x) = R0 ~ Haar(G)``, ignoring ``x`` (compact groups).

    The morphism is :func:`markovcat.symmetrisation.haar_gamma`; the draw is
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
    return Gamma.from_callable(sampler, group, action, name="frame",
                               guarantee=Guarantee("in law" if _ours(frames) else "assumed",
                                                   "a uniform draw from a frame with F(g.x) = g F(x) as a set",
                                                   _degenerate(getattr(frames, "frames", frames))))


def _ours(obj: Any) -> bool:
    return str(getattr(obj, "__module__", "")).startswith("markovcat.backends.torch.")


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
    vouched = isinstance(h, (EquivariantVectors, GramNet))
    guarantee = Guarantee("in law" if vouched else "assumed",
                          f"h ({type(h).__name__}) is O(d)-equivariant and the Gaussian noise law is invariant")
    morphism = _assume(with_noise(net, eps), space, guarantee, "kim")
    shape = tuple(int(s) for s in noise.spec.shape)  # type: ignore[arg-type]
    boxes = {eps: ActedGaussian(shape, noise), net: _Projected(h, group)}
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
    :func:`haar_gamma`, :func:`recursive`, ...); its noise couplings are driven by the
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
                          rotation.guarantee.degenerate)
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
    boxes = {eps: ActedGaussian((n,), sequences(group)), sort: NoisySort(score, group, scale, tau)}
    return Gamma(morphism, interpretation | Interpretation(boxes, {E: Spec((n,))}), group, action, guarantee)


# -- the named gammas -------------------------------------------------------------------------------
def _numel(action: TorchAction) -> int:
    shape = action.spec.shape
    if None in shape:
        raise TypeError(f"{action!r} has a free dimension: a network gamma needs fixed sizes")
    return math.prod(int(s) for s in shape if s is not None)


def _named_haar(group: Any, action: TorchAction, output: TorchAction, hidden: int, validate: bool) -> Gamma:
    return haar_gamma(group, action)


def _named_recursive(group: Any, action: TorchAction, output: TorchAction, hidden: int, validate: bool) -> Gamma:
    noise_shape = (group.d, group.d) if isinstance(group, Orthogonal) else (raw_size(group),)
    net = GroupNet(group, _numel(action), math.prod(noise_shape), hidden)
    return recursive(net, group, action, noise_shape)


def _named_learned(group: Any, action: TorchAction, output: TorchAction, hidden: int, validate: bool) -> Gamma:
    if not isinstance(group, Orthogonal):
        raise TypeError(f"no built-in learned (Kim et al.) gamma for {group.name}: pass a Gamma "
                        "(e.g. gammas.noise_outsourced with your equivariant network)")
    layout = orthogonal_layout(group, action)
    points = int(action.spec.shape[-2 if layout == "rows" else -1])  # type: ignore[arg-type]
    noise = group.points(2) if layout == "rows" else group.left(2)
    return noise_outsourced(GramNet(group, points, layout, 2, hidden), group, action, noise)


def _named_canonical(group: Any, action: TorchAction, output: TorchAction, hidden: int, validate: bool) -> Gamma:
    frame: Any
    invariant = _acts_trivially(output)
    ties = {"ties": "allow"} if invariant else {}  # equal rows are harmless when the output ignores the order
    if isinstance(group, Orthogonal):
        frame = PCACanonicaliser(group.special, validate, layout=orthogonal_layout(group, action))
    elif _permutes_rows(group, action):
        frame = Lexsort(validate=validate, **ties)
    elif enumerable(group):
        frame = OrbitArgmax(action, validate=validate, limit=_LIMIT, **ties)
    else:
        raise TypeError(f"no built-in canonicalisation for {group.name}: pass a Gamma "
                        "(e.g. gammas.canonical(your_function, group, action))")
    return canonical(frame, group, action)


def _named_random_ties(group: Any, action: TorchAction, output: TorchAction, hidden: int, validate: bool) -> Gamma:
    return canonical_random_ties(group, action, validate=validate)


def _named_frame(group: Any, action: TorchAction, output: TorchAction, hidden: int, validate: bool) -> Gamma:
    if isinstance(group, Orthogonal):
        return uniform_frame(UniformPCAFrame(group, orthogonal_layout(group, action), validate=validate), group,
                             action)
    if enumerable(group):
        return haar_gamma(group, action)  # a finite group is its own frame
    raise TypeError(f"no built-in frame for {group.name}: pass a Gamma (e.g. gammas.uniform_frame(frames, ...))")


#: The built-in gammas by name: ``name -> builder(group, action, output, hidden, validate)``.  A constant table,
#: read by :func:`named`; see the module docstring for which groups each serves.
NAMED: Mapping[str, Callable[[Any, TorchAction, TorchAction, int, bool], Gamma]] = MappingProxyType({
    "haar": _named_haar,
    "recursive": _named_recursive,
    "canonical": _named_canonical,
    "canonical-random-ties": _named_random_ties,
    "frame": _named_frame,
    "learned": _named_learned,
})


def named(name: str, group: TorchGroup, action: TorchAction, output: TorchAction | None = None, *,
          hidden: int = 64, validate: bool = True) -> Gamma:
    """The built-in gamma ``name`` (a key of :data:`NAMED`) for ``group`` acting by ``action``.

    ``output`` (default ``action``) is the model's output action: ``"canonical"`` accepts
    ties between equal rows when it is trivial.  Network gammas get ``hidden`` units;
    ``validate=False`` turns off the frames' degeneracy checks.
    """
    builder = NAMED.get(name)
    if builder is None:
        raise ValueError(f"unknown gamma {name!r}: use one of {', '.join(NAMED)} or a Gamma")
    return builder(group, action, action if output is None else output, hidden, validate)


def as_gamma(obj: Any, group: TorchGroup, action: TorchAction, output: TorchAction | None = None, *,
             hidden: int = 64, validate: bool = True) -> Gamma:
    """``obj`` as a :class:`Gamma` for ``group`` acting by ``action``: the one conversion.

    A string is a built-in gamma (:func:`named`); a :class:`Gamma` is returned as it is,
    after checking it was built for this group and action; a callable goes through
    :meth:`Gamma.from_callable` (guarantee ``assumed`` unless it is one of the library's frames).
    """
    if isinstance(obj, str):
        return named(obj, group, action, output, hidden=hidden, validate=validate)
    if isinstance(obj, Gamma):
        if obj.group is not group or obj.action is not action:
            raise TypeError(f"the gamma was built for {obj.group.name} acting by {obj.action!r}, but the model's "
                            f"input is {action!r}: build the gamma from the same group and action objects")
        return obj
    if callable(obj):
        return Gamma.from_callable(obj, group, action)
    raise TypeError(f"a gamma is a name ({', '.join(NAMED)}), a Gamma or a function of a batch, got "
                    f"{type(obj).__name__} {obj!r}")
