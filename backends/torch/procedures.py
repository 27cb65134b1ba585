"""Published symmetrisation procedures, each a short instance of ``sym`` / ``ave``, compiled to PyTorch.

Every procedure builds its *diagram* with :mod:`markovcat.symmetrisation` from one
:class:`~markovcat.backends.torch.gammas.Gamma` and compiles it with the torch backend; the
returned module is a :class:`~markovcat.backends.torch.compile.CompiledDiagram` that carries
``model.morphism`` (the ``C^G`` morphism, with its evidence: ``model.morphism.explain()``),
``model.symmetry`` (the torch group and actions) and ``model.diagram`` (draw it), and
:func:`check_model` tests it.

* :func:`canonicalise` - ``sym(k, h)``, ``h`` a deterministic frame (Kaba et al. 2023);
* :func:`frame_average` - ``ave(sym(k, Unif F(x)))``, exact over the frame (Puny et al. 2022);
* :func:`probabilistic_symmetrise` - ``ave(sym(k, gamma_theta))``, a learned noise-outsourced
  gamma, Monte Carlo (Kim et al. 2023);
* :func:`janossy` - ``ave(sym(k, Haar(S_n)))``, exact over ``n!`` or sampled (Murphy et al. 2019);
* :func:`stochastic_symmetrise` - ``sym(k, gamma)``, one draw, Haar or recursive gamma (Cornish 2024);
* :func:`symmetrise_along` - ``sym_along(k, phi, gamma)`` for an ``H``-equivariant ``k`` and
  ``phi : H -> G`` (Cornish 2024, sec. 4).

:func:`symmetrise` is the single entry point.  Its ``gamma`` is a name of a built-in gamma
(:data:`markovcat.backends.torch.gammas.NAMED`: ``"haar"``, ``"recursive"``, ``"canonical"``,
``"canonical-random-ties"``, ``"frame"``, ``"learned"``), a
:class:`~markovcat.backends.torch.gammas.Gamma`, or a function / sampler of a batch
returning group elements; all three go through
:func:`~markovcat.backends.torch.gammas.as_gamma`.

What is checked: the construction is ``sym`` / ``ave`` of ``markovcat.symmetrisation``, so the
result is a ``C^G`` morphism given that gamma is equivariant (its
:class:`~markovcat.backends.torch.gammas.Guarantee`, recorded in the evidence), and the group
and action axioms are checked numerically by ``compile``.  What is not: the gamma's
equivariance itself (``gamma.check()`` tests it; the test suite checks every built-in
gamma), and whether ``net`` is a function (it is declared one unless it takes ``generator=``).
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from typing import Any

import torch
from torch import Tensor, nn

from markovcat.backends.torch.compile import CompiledDiagram, GroupActions, Interpretation, Spec, compile
from markovcat.backends.torch.equivariance import EquivarianceReport, check_equivariance
from markovcat.backends.torch.frames import MomentCanonicaliser
from markovcat.backends.torch.gammas import Gamma, as_gamma, diagram_space, orthogonal_layout, uniform_frame
from markovcat.backends.torch.groups import Orthogonal, Symmetric, TorchAction
from markovcat.backends.torch.linalg import accepts
from markovcat.groups import Action, Group, Homomorphism
from markovcat.gspace import Cosets, Equivariant, GSpace
from markovcat.symmetrisation import ave, sharp, sym, sym_along
from markovcat.syntax import Box, Ty

__all__ = [
    "symmetrise",
    "canonicalise",
    "frame_average",
    "probabilistic_symmetrise",
    "janossy",
    "stochastic_symmetrise",
    "symmetrise_along",
    "check_model",
    "ExactAverage",
    "OrientationCosets",
]


# -- the setting ---------------------------------------------------------------------------------
def _symmetry(group: Any, input: Any, output: Any) -> GroupActions:
    """The torch group and actions, checked to belong together."""
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
    return GroupActions(group, input, output)


def _codomain(space: GSpace, symmetry: GroupActions, linear: bool) -> tuple[GSpace, Interpretation]:
    """The output G-space ``(Y, b)`` next to the input space ``space``, and the interpretation of ``b``."""
    if symmetry.output is symmetry.input:
        return GSpace(space.ty, space.action, linear=linear), Interpretation()
    G = space.group
    Y = Ty(f"Y_{G.name}")
    cod = GSpace(Y, Action(f"{symmetry.output.name} on Y ({G.name})", G, Y), linear=linear)
    return cod, symmetry.group.interpretation(G, (cod.action, symmetry.output))


def _net_box(net: Any, dom: GSpace, cod: GSpace) -> Box:
    if not callable(net):
        raise TypeError(f"net must be an nn.Module or a function of a batch, got {type(net).__name__}")
    return Box("net", dom.ty, cod.ty, deterministic=not accepts(net, "generator"))


# -- exact averaging -----------------------------------------------------------------------------
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


# -- building ------------------------------------------------------------------------------------
def _follow_net(gamma: Gamma, net: Any) -> None:
    """Put the networks of a gamma built here by name on the dtype and device of ``net``'s parameters."""
    parameter = next((p for p in net.parameters() if p.is_floating_point()), None) \
        if isinstance(net, nn.Module) else None
    if parameter is None:
        return
    for meaning in gamma.interpretation.boxes.values():
        if isinstance(meaning, nn.Module):
            meaning.to(dtype=parameter.dtype, device=parameter.device)


def _build(net: Any, group: Any, input: Any, output: Any, gamma: Any, average: int | str | None, name: str,
           hidden: int, check_laws: bool, validate: bool = True) -> CompiledDiagram:
    if average is not None and average != "exact" and not (isinstance(average, int) and average >= 1):
        raise ValueError(f"average must be None, 'exact' or a positive number of samples, got {average!r}")
    symmetry = _symmetry(group, input, output)
    g = as_gamma(gamma, group, symmetry.input, symmetry.output, hidden=hidden, validate=validate)
    if isinstance(gamma, str):
        _follow_net(g, net)
    cod, output_meaning = _codomain(g.space, symmetry, linear=average is not None)
    k = _net_box(net, g.space, cod)
    interpretation = g.interpretation | output_meaning | Interpretation({k: net})
    morphism: Equivariant = sym(k, g.morphism, cod)
    if average is None:
        return compile(morphism, interpretation, name=name, check=check_laws, symmetry=symmetry)
    averaged = ave(morphism, name=f"ave_{name}")
    if average == "exact":
        support = g.support()
        if support is None:
            raise ValueError(f"gamma {g.name} has no finite support to average over exactly (no elements(x)): "
                             "give average=n to average n samples")
        body = compile(sharp(k, g.space, cod).diagram, interpretation, name=f"{name}_sharp", check=check_laws)
        interpretation = interpretation | Interpretation({averaged.name: ExactAverage(support, body)})
        return compile(averaged, interpretation, name=name, check=check_laws, symmetry=symmetry)
    return compile(averaged, interpretation, name=name, ave_samples=int(average), check=check_laws,
                   symmetry=symmetry)


def symmetrise(net: Any, group: Any, input: TorchAction, output: TorchAction | None = None, *,
               gamma: str | Gamma | Callable[..., Tensor] = "haar", average: int | str | None = None,
               name: str | None = None, hidden: int = 64, check_laws: bool = True,
               validate: bool = True) -> CompiledDiagram:
    """Wrap ``net : X -> Y`` into a ``group``-equivariant model: ``sym(net, gamma)``, optionally averaged.

    ``input`` / ``output`` (default: ``input``) are torch actions of ``group``; ``gamma`` is
    a built-in name (``"haar"``, ``"recursive"`` (Cornish), ``"canonical"`` (a deterministic
    frame), ``"canonical-random-ties"`` (S_n sets with repeated rows), ``"frame"`` (uniform on
    Puny et al.'s frame), ``"learned"`` (Kim et al.)), a
    :class:`~markovcat.backends.torch.gammas.Gamma` or a function of a batch (see
    :func:`~markovcat.backends.torch.gammas.as_gamma`); ``average`` is ``None`` (one draw:
    stochastic symmetrisation), ``n`` (Monte-Carlo mean of ``n`` draws in one batched
    pass) or ``"exact"`` (the mean over gamma's finite support).  Network gammas get
    ``hidden`` units (their parameters are the model's, trained with it).
    ``validate=False`` skips the built-in frames' data-dependent checks for degenerate
    inputs; ``check_laws=False`` skips the numerical group/action axiom checks.

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
    a Gamma or sampler with ``elements(x)``, or a function returning all frame elements
    ``(batch, m, *G)`` (e.g. :class:`markovcat.backends.torch.frames.PCAFrames`), made a
    gamma by :func:`~markovcat.backends.torch.gammas.uniform_frame`.
    """
    if callable(frame) and not isinstance(frame, Gamma) and not callable(getattr(frame, "elements", None)):
        frame = uniform_frame(frame, *_frame_setting(group, input))
    return _build(net, group, input, output, frame, "exact" if samples is None else samples, "frame_average", 64,
                  check_laws, validate)


def _frame_setting(group: Any, input: Any) -> tuple[Any, TorchAction]:
    symmetry = _symmetry(group, input, None)
    return symmetry.group, symmetry.input


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
    """Why it is equivariant, in one sentence: the reason recorded in the evidence of a gamma built from it."""

    def __init__(self, group: Orthogonal, layout: str = "rows", validate: bool = True) -> None:
        if not isinstance(group, Orthogonal) or group.special:
            raise TypeError(f"OrientationCosets are the cosets of SO(d) in O(d); got {group!r}")
        self.frame, self.d, self.spec = MomentCanonicaliser(validate, layout=layout), group.d, Spec(())

    def __call__(self, x: Tensor) -> Tensor:
        return torch.sgn(torch.linalg.det(self.frame(x)))

    def section(self, q: Tensor, *, generator: torch.Generator | None = None) -> Tensor:
        """The representative ``diag(q, 1, ..., 1)`` of each coset ``q`` in ``{+1, -1}``."""
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
    symmetry = _symmetry(group, input, output)
    if cosets is None:
        cosets = OrientationCosets(group, orthogonal_layout(group, symmetry.input), validate)
    for attr in ("section", "spec"):
        if not hasattr(cosets, attr):
            raise TypeError(f"cosets must have .section(q) and .spec (the label's Spec), got {type(cosets).__name__}")
    dom, interpretation = diagram_space(group, symmetry.input)
    cod, output_meaning = _codomain(dom, symmetry, linear=False)
    H = Group(subgroup)
    phi = Homomorphism(f"incl_{subgroup}", H, dom.group)
    quotient = Cosets(phi)
    k = _net_box(net, dom, cod)
    restricted = Equivariant.assume(k, dom.restrict(phi), cod.restrict(phi),
                                    reason=f"net is declared {subgroup}-equivariant")
    label = Box(f"coset_{phi.name}", dom.ty, quotient.ty, deterministic=True)
    gamma = Equivariant.assume(label, dom, quotient.space, reason=getattr(cosets, "reason", "declared equivariant"))
    morphism = sym_along(restricted, phi, gamma, quotient, cod)
    coupling = getattr(cosets, "section_coupling", None)
    couplings = {quotient.section.name: coupling} if callable(coupling) else {}
    boxes = {k: net, label: cosets, quotient.section: cosets.section}
    interpretation = interpretation | output_meaning | Interpretation(boxes, {quotient.ty: cosets.spec},
                                                                      couplings=couplings)
    return compile(morphism, interpretation, name="symmetrise_along", check=check_laws, symmetry=symmetry)


# -- checking ------------------------------------------------------------------------------------------
def check_model(model: nn.Module, **options: Any) -> EquivarianceReport:
    """:func:`~markovcat.backends.torch.equivariance.check_equivariance` for the symmetry the model carries.

    Uses ``model.symmetry`` (set by the procedures, :meth:`Gamma.compile` and
    ``compile(..., symmetry=...)``); ``options`` go to ``check_equivariance``.  What a pass
    proves is what ``check_equivariance`` says (evidence on sampled inputs).
    """
    symmetry = getattr(model, "symmetry", None)
    if not isinstance(symmetry, GroupActions):
        raise ValueError(f"this {type(model).__name__} carries no symmetry (model.symmetry is None): compile it with "
                         "compile(..., symmetry=GroupActions(group, input, output)) or build it with a procedure, or "
                         "call check_equivariance(model, group, in_action, out_action)")
    return check_equivariance(model, symmetry.group, symmetry.input, symmetry.output, **options)


def __getattr__(name: str) -> Any:
    """``procedures.check``, the old name of :func:`check_model`, with a ``DeprecationWarning``."""
    if name == "check":
        warnings.warn("markovcat.backends.torch.procedures.check is deprecated: use check_model",
                      DeprecationWarning, stacklevel=2)
        return check_model
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
