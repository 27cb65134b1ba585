"""Published symmetrisation procedures, each a short instance of ``sym`` / ``ave``, compiled to PyTorch.

Every procedure builds its *diagram* with :mod:`markovcat.symmetrisation` and compiles it
with the torch backend; the returned module is a
:class:`~markovcat.backends.torch.compile.CompiledDiagram` (``.diagram`` draws,
``.code`` shows the generated forward), and :func:`check` (or
:func:`markovcat.check_equivariance` with the same group and actions) tests it.

* :func:`canonicalise` - ``sym(k, h)``, ``h`` a deterministic frame (Kaba et al. 2023);
* :func:`frame_average` - ``ave(sym(k, Unif F(x)))``, exact over the frame (Puny et al. 2022);
* :func:`probabilistic_symmetrise` - ``ave(sym(k, gamma_theta))``, a learned noise-outsourced
  gamma, Monte Carlo (Kim et al. 2023);
* :func:`janossy` - ``ave(sym(k, Haar(S_n)))``, exact over ``n!`` or sampled (Murphy et al. 2019);
* :func:`stochastic_symmetrise` - ``sym(k, gamma)``, one draw, Haar or recursive gamma (Cornish 2024);
* :func:`symmetrise_along` - ``sym_along(k, phi, gamma)`` for an ``H``-equivariant ``k`` and
  ``phi : H -> G`` (Cornish 2024, sec. 4).

:func:`symmetrise` is the single entry point.  A gamma is a string (``"haar"``,
``"recursive"``, ``"canonical"``, ``"frame"``, ``"learned"``: built here for the groups
in :mod:`markovcat.backends.torch.groups`) or any object following :class:`TorchGamma`:
a callable ``gamma(x)`` (deterministic) or ``gamma(x, generator=...)`` (stochastic)
returning batched group elements, optionally with ``elements(x)`` (a finite support,
uniform, for exact averaging), ``coupling`` (for pathwise checks) and ``reason``; or a
gamma given as a ``C^G`` morphism with its interpretation (``.morphism``,
``.interpretation``, ``.group``, ``.action``: the ``Gamma`` s of
:mod:`markovcat.backends.torch.gammas`, for ``T(d)``, ``E(d)``, ``GL(d)``, ``S_n``...).
A group plugs into the string gammas by providing ``elements()`` (finite groups) or
``project(raw)`` and ``raw_size`` (network gammas).  The string gammas are built from the
constructions of :mod:`markovcat.backends.torch.frames` (frames, canonicalisations) and
:mod:`markovcat.backends.torch.gammas` (:class:`GroupNet`, :class:`GramNet`, :func:`project`).

What is checked: the construction is ``sym`` / ``ave`` of ``markovcat.symmetrisation``, so the
result is a ``C^G`` morphism given that gamma is equivariant (an assumption recorded with
its reason, see :func:`morphism_of`), and the group and action axioms are checked
numerically by ``compile``.  What is not: gamma's equivariance itself (the tests check
each built-in gamma numerically), and whether ``net`` is a function (it is declared one
unless it takes ``generator=``).
"""

from __future__ import annotations

import inspect
import math
import weakref
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

import torch
from torch import Tensor, nn

from markovcat.backends.torch.compile import CompiledDiagram, Interpretation, Spec, compile
from markovcat.backends.torch.finite_groups import elements
from markovcat.backends.torch.frames import MomentCanonicaliser, OrbitArgmax, UniformFrame, UniformPCAFrame
from markovcat.backends.torch.gammas import (
    Gamma,
    GramNet,
    GroupNet,
    enumerable,
    noise_outsourced,
    project,
    raw_size,
    recursive,
)
from markovcat.backends.torch.groups import (
    HaarSampler,
    Orthogonal,
    Symmetric,
    TorchAction,
)
from markovcat.groups import Action, Group, Homomorphism
from markovcat.gspace import Cosets, Equivariant, GSpace
from markovcat.symmetrisation import ave, haar_gamma, sym, sym_along
from markovcat.syntax import Box, Ty

__all__ = [
    "TorchGamma",
    "symmetrise",
    "canonicalise",
    "frame_average",
    "probabilistic_symmetrise",
    "janossy",
    "stochastic_symmetrise",
    "symmetrise_along",
    "check",
    "morphism_of",
    "UniformPCAFrame",
    "GroupNet",
    "GramNet",
    "ExactAverage",
    "OrientationCosets",
    "project",
    "GAMMAS",
]

GAMMAS = ("haar", "recursive", "canonical", "frame", "learned")


@runtime_checkable
class TorchGamma(Protocol):
    """The interpretation of a gamma ``X -> G``: batched inputs in, batched group elements out.

    Stochastic if it accepts ``generator=`` (or has ``deterministic = False``).  Optional:
    ``elements(x) -> (batch, m, *G)`` the finite support of ``gamma(x)`` with uniform weights
    (exact averaging), ``coupling(g, draw)`` (pathwise checks), ``reason`` (why it is equivariant).
    """

    def __call__(self, x: Tensor, /) -> Tensor: ...


# -- the setting: group, actions, diagram objects ---------------------------------------------------
@dataclass
class _Setting:
    group: Any
    input: TorchAction
    output: TorchAction
    G: Group
    X: GSpace
    Y: GSpace
    interpretation: Interpretation
    boxes: dict[str, Any] = field(default_factory=dict)
    types: dict[str, Spec] = field(default_factory=dict)
    couplings: dict[str, Any] = field(default_factory=dict)


def _setting(group: Any, input: Any, output: Any, *, linear: bool = False, space: GSpace | None = None) -> _Setting:
    """The diagram-level group and G-spaces for a torch group and actions (``space``: reuse a gamma's domain)."""
    for attr in ("mul", "inv", "sample", "interpretation", "spec", "name"):
        if not hasattr(group, attr):
            raise TypeError(f"group must be a torch group (e.g. Orthogonal(3), Symmetric(5)), got "
                            f"{type(group).__name__} {group!r}: it has no {attr!r}")
    output = input if output is None else output
    for what, action in (("input", input), ("output", output)):
        if not isinstance(action, TorchAction):
            raise TypeError(f"{what} must be a TorchAction of {group.name} (e.g. group.points(n)), got "
                            f"{type(action).__name__} {action!r}")
        if action.group is not group:
            raise TypeError(f"the {what} action {action!r} is an action of {action.group.name}, not of this "
                            f"{group.name} object: build it from the same group")
    same = output is input
    if space is None:
        G = Group(group.name)
        act_x = Action("act_X", G, Ty("X"))
        space_x = GSpace(Ty("X"), act_x, linear=linear)
        pairs = [(act_x, input)]
    else:
        G, space_x, pairs = space.group, GSpace(space.ty, space.action, linear=linear), []
    space_y = space_x
    if not same:
        Y = Ty(f"Y_{space_x.ty.atoms[0]}")
        space_y = GSpace(Y, Action(f"act_{Y.atoms[0]}", G, Y), linear=linear)
        pairs.append((space_y.action, output))
    return _Setting(group, input, output, G, space_x, space_y, group.interpretation(G, *pairs))


def _diagram_gamma(gamma: Any) -> bool:
    """A gamma given as a C^G morphism with its interpretation (``markovcat.backends.torch.gammas.Gamma``)."""
    return isinstance(getattr(gamma, "morphism", None), Equivariant) and isinstance(
        getattr(gamma, "interpretation", None), Interpretation)


def _accepts(function: Any, keyword: str) -> bool:
    target = function.forward if isinstance(function, nn.Module) else function
    try:
        parameters = inspect.signature(target).parameters.values()
    except (TypeError, ValueError):
        return False
    return any(p.name == keyword or p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters)


def _net_box(net: Any, s: _Setting, name: str = "net") -> Box:
    if not callable(net):
        raise TypeError(f"net must be an nn.Module or a function of a batch, got {type(net).__name__}")
    k = Box(name, s.X.ty, s.Y.ty, deterministic=not _accepts(net, "generator"))
    s.boxes[k.name] = net
    return k


# -- group-specific pieces (used by the string gammas) ---------------------------------------------
_LIMIT = math.factorial(8)  # the most elements of a finite group enumerated here (S_8)


def _layout(group: Any, action: TorchAction) -> str:
    """How O(d) acts: on rows (``x g^T``, point clouds), on columns (``g x``) or on a vector."""
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
                    "pass a gamma object")


class _HaarFinite(HaarSampler):
    """Haar on a finite group, also enumerating the group for exact averaging."""

    def __init__(self, group: Any) -> None:
        super().__init__(group)
        self.all = elements(group, limit=_LIMIT)

    def elements(self, x: Tensor) -> Tensor:
        g = self.all if self.all.device == x.device else self.all.to(x.device)
        return g.unsqueeze(0).expand(x.shape[0], *g.shape)


# -- gammas ------------------------------------------------------------------------------------------
@dataclass
class _Gamma:
    morphism: Equivariant
    elements: Callable[[Tensor], Tensor] | None = None


def _numel(action: TorchAction) -> int:
    shape = action.spec.shape
    if None in shape:
        raise TypeError(f"{action!r} has a free dimension: a network gamma needs fixed sizes")
    return math.prod(int(s) for s in shape if s is not None)


def _built(gamma: Gamma, s: _Setting) -> _Gamma:
    """A gamma built as a ``C^G`` morphism with its interpretation (:mod:`markovcat.backends.torch.gammas`)."""
    s.interpretation = gamma.interpretation | s.interpretation
    return _Gamma(gamma.morphism, getattr(gamma, "elements", None))


def _gamma(gamma: Any, s: _Setting, hidden: int = 64, validate: bool = True) -> _Gamma:
    """The C^G morphism ``gamma : (X, a) -> (G, *)`` and its interpretation (recorded in ``s``)."""
    group, G, X = s.group, s.G, s.X
    if gamma == "haar":
        sampler = _HaarFinite(group) if enumerable(group) else group.haar()
        morphism = haar_gamma(X)
        s.boxes[f"lambda_{G.name}"] = sampler
        return _Gamma(morphism, getattr(sampler, "elements", None))
    if gamma == "recursive":  # Cornish: an unconstrained network into G, behind a Haar draw
        noise_shape = (group.d, group.d) if isinstance(group, Orthogonal) else (raw_size(group),)
        net = GroupNet(group, _numel(s.input), math.prod(noise_shape), hidden)
        return _built(recursive(net, group, s.input, noise_shape, X), s)
    if gamma == "learned":  # Kim et al.: QR of an O(d)-equivariant network of (x, eps)
        if not isinstance(group, Orthogonal):
            raise TypeError(f"no built-in learned (Kim et al.) gamma for {group.name}: pass a gamma object")
        layout = _layout(group, s.input)
        points = int(s.input.spec.shape[-2 if layout == "rows" else -1])  # type: ignore[arg-type]
        noise = group.points(2) if layout == "rows" else group.left(2)
        return _built(noise_outsourced(GramNet(group, points, layout, 2, hidden), group, s.input, noise, X), s)
    if gamma == "canonical":
        frame: Any
        if isinstance(group, Orthogonal):
            frame = MomentCanonicaliser(validate, special=group.special, layout=_layout(group, s.input))
        elif enumerable(group):
            frame = OrbitArgmax(s.input, validate=validate, limit=_LIMIT)
        else:
            raise TypeError(f"no built-in canonicalisation for {group.name}: pass a gamma object")
        return _object_gamma(frame, s, name="canonical")
    if gamma == "frame":
        if isinstance(group, Orthogonal):
            return _object_gamma(UniformPCAFrame(group, _layout(group, s.input), validate=validate), s, name="frame")
        return _gamma("haar", s, hidden)  # a finite group is its own frame
    if isinstance(gamma, str):
        raise ValueError(f"unknown gamma {gamma!r}: use one of {', '.join(GAMMAS)} or a gamma object")
    if not callable(gamma):
        raise TypeError(f"gamma must be one of {', '.join(GAMMAS)} or a callable gamma object, got "
                        f"{type(gamma).__name__}")
    return _object_gamma(gamma, s)


def _object_gamma(obj: Any, s: _Setting, name: str | None = None) -> _Gamma:
    deterministic = getattr(obj, "deterministic", not _accepts(obj, "generator"))
    name = name or getattr(obj, "name", None) or type(obj).__name__
    box = Box(f"gamma_{name}", s.X.ty, s.G.ty, deterministic=bool(deterministic))
    s.boxes[box.name] = obj
    reason = getattr(obj, "reason", None) or f"{name} is declared equivariant by its author"
    morphism = Equivariant.assume(box, s.X, GSpace.regular(s.G), reason=reason, name=f"gamma_{name}")
    elements = getattr(obj, "elements", None)
    if elements is None and deterministic:  # a point mass: its support is gamma(x) itself
        elements = _PointMass(obj)
    return _Gamma(morphism, elements)


class _PointMass:
    def __init__(self, gamma: Callable[[Tensor], Tensor]) -> None:
        self.gamma = gamma

    def __call__(self, x: Tensor) -> Tensor:
        return self.gamma(x).unsqueeze(1)


# -- exact averaging -----------------------------------------------------------------------------------
class ExactAverage(nn.Module):
    """``x |-> (1/m) sum_j k#(g_j, x)`` over the ``m`` elements ``elements(x)`` (one batched pass).

    The interpretation of ``ave(sym(k, gamma))`` when ``gamma(x)`` is uniform on a finite
    set that ``elements`` lists (a frame, or a finite group for Haar).
    """

    def __init__(self, elements: Callable[[Tensor], Tensor], sharp: nn.Module) -> None:
        super().__init__()
        self.elements, self.sharp = elements, sharp

    def forward(self, x: Tensor) -> Tensor:
        g = self.elements(x)
        b, m = g.shape[:2]
        y = self.sharp(g.flatten(0, 1), x.repeat_interleave(m, 0))
        return y.unflatten(0, (b, m)).mean(1)


# -- building and compiling ------------------------------------------------------------------------
_MORPHISMS: weakref.WeakKeyDictionary[nn.Module, tuple[Equivariant, Any, TorchAction, TorchAction]] = \
    weakref.WeakKeyDictionary()


def _interpretation(s: _Setting) -> Interpretation:
    return s.interpretation | Interpretation(s.boxes, s.types, couplings=s.couplings)


def _finish(model: CompiledDiagram, morphism: Equivariant, s: _Setting) -> CompiledDiagram:
    _MORPHISMS[model] = (morphism, s.group, s.input, s.output)
    return model


def _build(net: Any, group: Any, input: Any, output: Any, gamma: Any, average: int | str | None, name: str,
           hidden: int, check_laws: bool, validate: bool = True) -> CompiledDiagram:
    if average is not None and average != "exact" and not (isinstance(average, int) and average >= 1):
        raise ValueError(f"average must be None, 'exact' or a positive number of samples, got {average!r}")
    if _diagram_gamma(gamma):
        if getattr(gamma, "action", input) is not input or getattr(gamma, "group", group) is not group:
            raise TypeError(f"the gamma was built for {gamma.group.name} acting by {gamma.action!r}, but the model's "
                            f"input is {input!r}: build the gamma from the same group and action")
        s = _setting(group, input, output, linear=average is not None, space=gamma.morphism.dom)
        g = _built(gamma, s)
    else:
        s = _setting(group, input, output, linear=average is not None)
        g = _gamma(gamma, s, hidden, validate)
    k = _net_box(net, s)
    morphism: Equivariant = sym(k, g.morphism, s.Y)
    if average is None:
        model = compile(morphism, _interpretation(s), name=name, check=check_laws)
        return _finish(model, morphism, s)
    averaged = ave(morphism, name=f"ave_{name}")
    interpretation = _interpretation(s)
    if average == "exact":
        if g.elements is None:
            raise ValueError(f"gamma {gamma!r} has no finite support to average over exactly (no elements(x)): "
                             "give average=n to average n samples")
        from markovcat.symmetrisation import sharp

        body = compile(sharp(k, s.X, s.Y).diagram, interpretation, name=f"{name}_sharp", check=check_laws)
        interpretation = interpretation | Interpretation({averaged.name: ExactAverage(g.elements, body)})
        model = compile(averaged, interpretation, name=name, check=check_laws)
    else:
        model = compile(averaged, interpretation, name=name, ave_samples=int(average), check=check_laws)
    return _finish(model, averaged, s)


def symmetrise(net: Any, group: Any, input: TorchAction, output: TorchAction | None = None, *,
               gamma: Any = "haar", average: int | str | None = None, name: str | None = None, hidden: int = 64,
               check_laws: bool = True, validate: bool = True) -> CompiledDiagram:
    """Wrap ``net : X -> Y`` into a ``group``-equivariant model: ``sym(net, gamma)``, optionally averaged.

    ``input`` / ``output`` (default: ``input``) are torch actions of ``group``;
    ``gamma`` is ``"haar"``, ``"recursive"`` (Cornish), ``"canonical"`` (a deterministic
    frame), ``"frame"`` (uniform on Puny et al.'s frame), ``"learned"`` (Kim et al.) or
    a :class:`TorchGamma` object; ``average`` is ``None`` (one draw: stochastic
    symmetrisation), ``n`` (Monte-Carlo mean of ``n`` draws in one batched pass) or
    ``"exact"`` (the mean over gamma's finite support).  Network gammas get ``hidden``
    units (their parameters are the model's, trained with it).  ``validate=False`` skips the
    built-in frames' data-dependent checks for degenerate inputs (faster; needed under
    ``torch.compile``); ``check_laws=False`` skips the numerical group/action axiom checks.

    >>> import torch
    >>> from markovcat.backends.torch import Orthogonal
    >>> O3 = Orthogonal(3)
    >>> model = symmetrise(torch.nn.Identity(), O3, O3.points(4), gamma="haar")
    >>> model(torch.ones(2, 4, 3)).shape
    torch.Size([2, 4, 3])
    """
    label = name or (f"sym_{gamma}" if isinstance(gamma, str) else "sym")
    return _build(net, group, input, output, gamma, average, label, hidden, check_laws, validate)


def canonicalise(net: Any, group: Any, input: TorchAction, output: TorchAction | None = None, *,
                 frame: Any = "canonical", check_laws: bool = True, validate: bool = True) -> CompiledDiagram:
    """Canonicalisation (Kaba et al. 2023, "Equivariance with learned canonicalization functions").

    ``x |-> h(x) . f(h(x)^-1 . x)`` for a deterministic equivariant ``h`` (``frame``): ``sym(f, h)``.
    """
    return _build(net, group, input, output, frame, None, "canonicalise", 64, check_laws, validate)


def frame_average(net: Any, group: Any, input: TorchAction, output: TorchAction | None = None, *,
                  frame: Any = "frame", samples: int | None = None, check_laws: bool = True,
                  validate: bool = True) -> CompiledDiagram:
    """Frame averaging (Puny et al. 2022, "Frame averaging for invariant and equivariant network design").

    ``x |-> (1/|F(x)|) sum_{g in F(x)} g . f(g^-1 . x)``: ``ave(sym(f, Unif F))``, exact over
    the frame (one batched pass); ``samples=n`` averages ``n`` random frame elements instead.
    ``frame``: ``"frame"`` (PCA with sign flips for O(d); the whole group for a finite one),
    a gamma with ``elements(x)``, or a function returning all frame elements ``(batch, m, *G)``
    (e.g. :class:`markovcat.backends.torch.frames.PCAFrames`).
    """
    if not isinstance(frame, str) and not _diagram_gamma(frame) and not callable(getattr(frame, "elements", None)):
        frame = UniformFrame(frame)
    return _build(net, group, input, output, frame, "exact" if samples is None else samples, "frame_average", 64,
                  check_laws, validate)


def probabilistic_symmetrise(net: Any, group: Any, input: TorchAction, output: TorchAction | None = None, *,
                             gamma: Any = "learned", samples: int = 10, hidden: int = 64,
                             check_laws: bool = True) -> CompiledDiagram:
    """Probabilistic symmetrisation (Kim et al. 2023, "Learning probabilistic symmetrization for architecture
    agnostic equivariance").

    ``x |-> E_{g ~ p_theta(g|x)}[g . f(g^-1 . x)]``, estimated with ``samples`` draws of a
    learned noise-outsourced ``p_theta`` (``QR(h([x, eps]))``, ``h`` equivariant): ``ave(sym(f, gamma_theta))``.
    """
    return _build(net, group, input, output, gamma, samples, "probabilistic_symmetrise", hidden, check_laws)


def janossy(net: Any, group: Symmetric, input: TorchAction, output: TorchAction | None = None, *,
            samples: int | None = None, check_laws: bool = True) -> CompiledDiagram:
    """Janossy pooling (Murphy et al. 2019, "Janossy pooling: learning deep permutation-invariant functions").

    ``x |-> (1/n!) sum_sigma sigma . f(sigma^-1 . x)``: Haar averaging over ``S_n``,
    ``ave(sym(f, Haar))``; exact over all ``n!`` permutations, or with ``samples=m`` the
    sampled approximation (pi-SGD).  With a trivial output action it is ``(1/n!) sum f(x_sigma)``.
    """
    if not isinstance(group, Symmetric):
        raise TypeError(f"Janossy pooling is over a symmetric group S_n, got {type(group).__name__} {group!r}")
    return _build(net, group, input, output, "haar", "exact" if samples is None else samples, "janossy", 64,
                  check_laws)


def stochastic_symmetrise(net: Any, group: Any, input: TorchAction, output: TorchAction | None = None, *,
                          gamma: Any = "recursive", hidden: int = 64, check_laws: bool = True) -> CompiledDiagram:
    """Stochastic symmetrisation (Cornish 2024, "Stochastic neural network symmetrisation in Markov categories").

    ``G ~ gamma(x); Y ~ f(G^-1 . x); return G . Y``: ``sym(f, gamma)``, one draw, exact in
    distribution.  ``gamma="recursive"``: ``G = R0 . f_gamma(R0^-1 . x, eps)``, ``R0 ~ Haar``.
    """
    name = f"stochastic_symmetrise_{gamma}" if isinstance(gamma, str) else "stochastic_symmetrise"
    return _build(net, group, input, output, gamma, None, name, hidden, check_laws)


class OrientationCosets:
    """``O(d)/SO(d) = {+1, -1}`` for point clouds: ``gamma(x) = det(frame(x))``, ``section(q) = diag(q, 1, .., 1)``.

    ``gamma(g.x) = det(g) gamma(x)``: the coset of ``g`` times that of ``x``.  Degenerate
    clouds (no moment frame) raise ``ValueError``.
    """

    reason = "det of the O(d)-equivariant moment frame picks the coset: det(g F) = det(g) det(F)"

    def __init__(self, group: Orthogonal, layout: str = "rows", validate: bool = True) -> None:
        if not isinstance(group, Orthogonal) or group.special:
            raise TypeError(f"OrientationCosets are the cosets of SO(d) in O(d); got {group!r}")
        self.frame, self.d, self.spec = MomentCanonicaliser(validate, layout=layout), group.d, Spec(())

    def __call__(self, x: Tensor) -> Tensor:
        return torch.sgn(torch.linalg.det(self.frame(x)))

    def section(self, q: Tensor, *, generator: torch.Generator | None = None) -> Tensor:
        eye = torch.eye(self.d, dtype=q.dtype, device=q.device).repeat(q.shape[0], 1, 1)
        eye[:, 0, 0] = q
        return eye

    def section_coupling(self, g: Tensor, r: Tensor) -> Tensor:
        """The section's value when the input moves by ``g`` (it is deterministic): the coset times ``det g``."""
        moved = r.clone()
        moved[:, 0, 0] = r[:, 0, 0] * torch.sgn(torch.linalg.det(g))
        return moved


def symmetrise_along(net: Any, group: Any, input: TorchAction, output: TorchAction | None = None, *,
                     cosets: Any = None, subgroup: str = "SO", check_laws: bool = True,
                     validate: bool = True) -> CompiledDiagram:
    """Symmetrisation along a homomorphism ``phi : H -> G`` (Cornish 2024, sec. 4.2).

    ``net`` is *declared* ``H``-equivariant (not checked); ``cosets`` is a gamma into
    ``G/phi(H)`` (``cosets(x)``) with a ``section`` (a representative), a ``spec`` for the
    coset labels and optionally a ``section_coupling`` (pathwise checks), default
    :class:`OrientationCosets` (``SO(d) -> O(d)``).  Result: ``r . f(r^-1 . x)`` with
    ``r = section(gamma(x))``, built by :func:`markovcat.symmetrisation.sym_along`; it is
    ``G``-equivariant because ``f`` is ``H``-equivariant.
    """
    s = _setting(group, input, output)
    if cosets is None:
        cosets = OrientationCosets(group, _layout(group, s.input), validate)
    for attr in ("section", "spec"):
        if not hasattr(cosets, attr):
            raise TypeError(f"cosets must have .section(q) and .spec (the label's Spec), got {type(cosets).__name__}")
    H = Group(subgroup)
    phi = Homomorphism(f"incl_{subgroup}", H, s.G)
    quotient = Cosets(phi)
    k = _net_box(net, s)
    restricted = Equivariant.assume(k, s.X.restrict(phi), s.Y.restrict(phi),
                                    reason=f"net is declared {subgroup}-equivariant")
    label = Box(f"coset_{phi.name}", s.X.ty, quotient.ty, deterministic=True)
    gamma = Equivariant.assume(label, s.X, quotient.space, reason=getattr(cosets, "reason", "declared equivariant"))
    morphism = sym_along(restricted, phi, gamma, quotient, s.Y)
    s.boxes.update({label.name: cosets, quotient.section.name: cosets.section})
    if callable(getattr(cosets, "section_coupling", None)):
        s.couplings[quotient.section.name] = cosets.section_coupling
    s.types[quotient.ty.atoms[0]] = cosets.spec
    model = compile(morphism, _interpretation(s), name="symmetrise_along", check=check_laws)
    return _finish(model, morphism, s)


# -- inspection ---------------------------------------------------------------------------------------
def morphism_of(model: nn.Module) -> Equivariant:
    """The ``C^G`` morphism a model of this module was compiled from (``.explain()``, ``.assumptions()``)."""
    try:
        return _MORPHISMS[model][0]
    except KeyError:
        raise KeyError(f"{type(model).__name__} was not built by markovcat's procedures in this process") from None


def check(model: nn.Module, **options: Any) -> Any:
    """:func:`markovcat.check_equivariance` with the group and actions the model was built for."""
    from markovcat.backends.torch.equivariance import check_equivariance

    try:
        _, group, input, output = _MORPHISMS[model]
    except KeyError:
        raise KeyError(f"{type(model).__name__} was not built by markovcat.backends.torch.procedures: call "
                       "check_equivariance(model, group, in_action, out_action)") from None
    return check_equivariance(model, group, input, output, **options)
