"""The one gamma type: :class:`Gamma`, a ``C^G`` morphism ``(X, a) -> (G, *)`` in torch, and its :class:`Guarantee`.

``sym(k, gamma)`` (Cornish 2024) turns any network ``k : X -> Y`` into a
``G``-equivariant one, ``x |-> g . k(g^-1 . x)`` with ``g ~ gamma(x)``, provided ``gamma``
itself is equivariant: ``gamma(h . x) = h gamma(x)`` (as random elements of ``G``).  Every
gamma, built-in or the user's, is a :class:`Gamma`: an immutable bundle of its ``morphism``
(whose evidence records why it is equivariant), its ``interpretation`` (including the group's
and the action's boxes, so that ``compile`` checks their axioms), ``group`` and ``action``, a
:class:`Guarantee` (what it promises: ``exact``, ``in law`` or ``assumed``, and where it does
not hold) and optionally ``elements(x)``, a finite support on which ``gamma(x)`` is uniform.
The guarantee's sentence is the reason recorded in the morphism's evidence, so
``gamma.morphism.assumptions()`` lists it.

Guarantee vocabulary (:attr:`Guarantee.kind`, :data:`GUARANTEES`):

``exact``     deterministic, and ``gamma(h . x) = h gamma(x)`` at every input that is not
              degenerate (to rounding); the library's own constructions, each checked in its
              test suite.
``in law``    stochastic, and ``gamma(h . x)`` has the law of ``h gamma(x)``; ``sym`` with it is
              exactly equivariant in distribution.
``assumed``   a user's function or Gamma the library does not vouch for (:func:`vouched`):
              its evidence reads "assumed, not checked" and building it warns once (a
              ``UserWarning`` naming it) until ``gamma.checked()`` records a passing
              ``gamma.check()`` in its evidence (sampled evidence, not a proof).

:attr:`Guarantee.degenerate` says where the promise does not hold (e.g. a cloud with
repeated covariance eigenvalues) and what happens there: with ``validate=True`` such
inputs are refused with a ``ValueError`` naming the batch index; with ``validate=False``
a finite group element is returned all the same, with no equivariance at those inputs.
"""

from __future__ import annotations

import copy
import dataclasses
import warnings
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

import torch
from torch import Tensor, nn

from markovcat.backends.torch.compile import CompiledDiagram, GroupActions, Interpretation, compile
from markovcat.backends.torch.equivariance import EquivarianceReport, check_equivariance
from markovcat.backends.torch.groups import TorchAction, TorchGroup
from markovcat.backends.torch.linalg import accepts
from markovcat.groups import Action, Group
from markovcat.gspace import Equivariant, GSpace
from markovcat.syntax import Box, Ty

__all__ = ["Gamma", "Guarantee", "GUARANTEES", "diagram_space", "vouched"]


#: The kinds of :class:`Guarantee` and what each promises.
GUARANTEES: Mapping[str, str] = MappingProxyType({
    "exact": "deterministic, and gamma(h.x) = h gamma(x) at every input that is not degenerate (to rounding)",
    "in law": "stochastic, and gamma(h.x) has the law of h gamma(x): sym with it is equivariant in distribution",
    "assumed": "the user's claim, not the library's: assumed, not checked, unless gamma.checked() recorded a pass",
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
    """One of :data:`GUARANTEES`: how the gamma is equivariant (``exact``, ``in law``...)."""
    sentence: str
    """Why the gamma is equivariant, in one sentence (recorded in its evidence, see :attr:`evidence`)."""
    degenerate: str = ""
    checked: str = ""
    """For an ``assumed`` guarantee: what a passing :meth:`Gamma.check` saw (set by :meth:`Gamma.checked`)."""

    def __post_init__(self) -> None:
        if self.kind not in GUARANTEES:
            raise ValueError(f"unknown guarantee kind {self.kind!r}: use one of {', '.join(GUARANTEES)}")
        if not self.sentence:
            raise ValueError("a guarantee needs a sentence saying why the gamma is equivariant")

    @property
    def evidence(self) -> str:
        """The reason recorded in the gamma's evidence: the sentence, and for ``assumed`` whether it was checked."""
        if self.kind != "assumed":
            return self.sentence
        if self.checked:
            return f"{self.sentence} (assumed; checked numerically, not proved: {self.checked})"
        return f"{self.sentence} (assumed, not checked)"

    def __str__(self) -> str:
        where = f"; at degenerate inputs ({self.degenerate})" if self.degenerate else ""
        return f"{self.kind}: {self.evidence}{where}"


@dataclass(frozen=True, eq=False)
class Gamma:
    """A gamma ``(X, a) -> (G, *)``: its ``C^G`` morphism, torch interpretation, group, action and guarantee.

    Every gamma is one of these; build one with a builder of
    :mod:`~markovcat.backends.torch.gammas.builders`, :meth:`from_callable` or :func:`as_gamma`.
    Immutable: combine, do not mutate.  ``elements(x) -> (batch, m, *G)``, when given, is a finite support on which
    ``gamma(x)`` is uniform (exact averaging).  Construction checks that ``morphism``
    lands in ``(G, *)``, that an ``exact`` gamma is deterministic, and that the
    interpretation's group and action are ``group`` and ``action``.
    """

    morphism: Equivariant
    """The gamma as a ``C^G`` morphism ``(X, a) -> (G, *)``, with its evidence."""
    interpretation: Interpretation
    """The torch interpretation of the gamma's boxes (and of the group and action)."""
    group: TorchGroup
    """The group ``G`` the gamma lands in."""
    action: TorchAction
    """The action on the gamma's input space ``X``."""
    guarantee: Guarantee
    """What the gamma promises (exact, in law...) and where it fails."""
    elements: Callable[[Tensor], Tensor] | None = None
    """A finite support on which ``gamma(x)`` is uniform, ``x -> (batch, m, *G)``, when known (exact averaging)."""

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
        if self.guarantee.kind == "assumed" and not self.guarantee.checked:
            _warn_assumed(self.name, self.group)

    # -- description ------------------------------------------------------------------
    @property
    def space(self) -> GSpace:
        """The domain ``(X, a)`` of the morphism."""
        return self.morphism.dom

    @property
    def deterministic(self) -> bool:
        """Whether the gamma is deterministic (a canonicaliser) rather than stochastic."""
        return bool(self.morphism.diagram.is_deterministic)

    @property
    def name(self) -> str:
        """The gamma's name (its morphism's)."""
        return str(self.morphism.name)

    @property
    def symmetry(self) -> GroupActions:
        """The group and actions the gamma is equivariant for: ``action`` in, ``group.regular()`` out."""
        return GroupActions(self.group, self.action, self.group.regular())

    def explain(self) -> str:
        """The guarantee, then the ``C^G`` evidence tree of the morphism."""
        return f"guarantee ({self.guarantee})\n{self.morphism.explain()}"

    def __repr__(self) -> str:
        return f"<Gamma {self.name} : {self.action!r} -> {self.group.name} ({self.guarantee.kind})>"

    # -- use ----------------------------------------------------------------------------
    def compile(self, **options: Any) -> CompiledDiagram:
        """The gamma alone as a module (``model.symmetry`` set, so :func:`~.procedures.check_model` works on it)."""
        return compile(self.morphism, self.interpretation, symmetry=self.symmetry, **options)

    def check(self, dtype: torch.dtype = torch.float64, **options: Any) -> EquivarianceReport:
        """``check_equivariance`` of the compiled gamma (a copy cast to ``dtype``) into ``(G, *)``.

        First the outputs themselves, in the gamma's own dtype (its parameters', else torch's
        default) and in ``dtype``: on seeded random inputs they must have the group's element
        shape and dtype (a ``TypeError`` naming the gamma otherwise) and be elements of the group
        (:meth:`~.TorchGroup.contains`: orthogonal, ``det +1`` for ``SO(d)``, a permutation...;
        a ``ValueError`` naming the gamma otherwise).  A pass is evidence on the sampled inputs
        only (a proof in law for pathwise checks with law-preserving couplings): see
        :func:`~markovcat.backends.torch.equivariance.check_equivariance`.
        """
        compiled = self.compile()
        own = next((p.dtype for p in compiled.parameters() if p.is_floating_point()), torch.get_default_dtype())
        for probe in dict.fromkeys((own, dtype)):
            self._check_outputs(copy.deepcopy(compiled).to(probe), probe)
        model = copy.deepcopy(compiled).to(dtype)  # leaves the interpretation's modules as they are
        return check_equivariance(model, self.group, self.action, self.group.regular(), dtype=dtype, **options)

    def _check_outputs(self, model: nn.Module, dtype: torch.dtype, batch: int = 8) -> None:
        """Refuse outputs of the wrong shape or dtype, or outside the group, on seeded random inputs of ``dtype``."""
        generator = torch.Generator().manual_seed(0)
        x = self.action.random(batch, generator, dtype)

        def run(x: Tensor) -> Any:
            return model(x) if self.deterministic else model(x, generator=generator)

        try:
            g = run(x)
        except ValueError:  # refused (a degenerate input in this dtype): probe the inputs it accepts, one by one
            accepted = []
            for i in range(batch):
                try:
                    accepted.append(run(x[i:i + 1]))
                except ValueError:
                    continue
            if not accepted:
                return  # every input refused: check_equivariance reports that
            g = torch.cat(accepted) if all(isinstance(a, Tensor) for a in accepted) else accepted[0]
            batch = len(accepted)
        spec = self.group.spec
        expected = spec.dtype or dtype
        where = f"for a batch of {batch} {str(dtype).removeprefix('torch.')} inputs"
        if not isinstance(g, Tensor) or g.shape[0] != batch or not spec.matches(tuple(g.shape[1:])):
            shape = tuple(g.shape) if isinstance(g, Tensor) else type(g).__name__
            raise TypeError(f"gamma {self.name} returned {shape} {where}, but a batch of elements of "
                            f"{self.group.name} has shape (batch, {', '.join(map(str, spec.shape))})")
        if g.dtype != expected:
            raise TypeError(f"gamma {self.name} returned {g.dtype} elements {where}, but elements of "
                            f"{self.group.name} are {expected} here: return them in the input's dtype "
                            "(e.g. .to(x.dtype))")
        inside = self.group.contains(g)
        if not bool(inside.all()):
            first = int((~inside).nonzero()[0, 0])
            raise ValueError(f"gamma {self.name} returned {int((~inside).sum())} of {batch} outputs that are not "
                             f"elements of {self.group.name} {where} (the first at batch index {first}: "
                             f"{g[first].tolist()})")

    def checked(self, dtype: torch.dtype = torch.float64, **options: Any) -> Gamma:
        """This gamma with a passing :meth:`check` recorded in its evidence, or ``ValueError`` with the report.

        For an ``assumed`` guarantee the result's evidence reads "checked numerically, not proved"
        with what the check saw (its method, inputs and statistic), and building it does not warn;
        a guarantee the library vouches for is returned as it is once the check passes.
        """
        report = self.check(dtype, **options)
        if not report.passed:
            raise ValueError(f"gamma {self.name} failed gamma.check():\n{report}")
        if self.guarantee.kind != "assumed":
            return self
        seen = (f"gamma.check() passed, {report.method} on {report.n_inputs} inputs, statistic "
                f"{report.statistic:.3g} below {report.threshold:.3g}")
        guarantee = dataclasses.replace(self.guarantee, checked=seen)
        morphism = Equivariant.assume(self.morphism.diagram, self.morphism.dom, self.morphism.cod,
                                      reason=guarantee.evidence, name=self.morphism.name)
        return dataclasses.replace(self, morphism=morphism, guarantee=guarantee)

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
        (whether degenerate inputs are refused).  Unless ``guarantee`` is given, what the
        library vouches for (:func:`vouched`: its frames, :mod:`markovcat.backends.torch.frames`,
        and Haar samplers; a uniform frame only of such frames) is ``exact`` (or ``in law`` when
        stochastic) and anything else is ``assumed``.
        """
        if not callable(function):
            raise TypeError(f"a gamma is a function (or sampler) of a batch returning group elements, got "
                            f"{type(function).__name__} {function!r}")
        space, interpretation = diagram_space(group, action)
        deterministic = bool(getattr(function, "deterministic", not accepts(function, "generator")))
        label = name or getattr(function, "name", None) or getattr(function, "__name__", None) or \
            type(function).__name__
        if guarantee is None:
            ours = vouched(function) and vouched(getattr(function, "frames", function))  # a user's frame stays theirs
            kind = ("exact" if deterministic else "in law") if ours else "assumed"
            sentence = reason or getattr(function, "reason", None) or f"{label} is {group.name}-equivariant"
            guarantee = Guarantee(kind, sentence, _degenerate(function))
        box = Box(f"gamma_{label}", space.ty, space.group.ty, deterministic=deterministic)
        morphism = Equivariant.assume(box, space, GSpace.regular(space.group), reason=guarantee.evidence,
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


def _warn_assumed(name: str, group: TorchGroup) -> None:
    # One call site, so Python's warning registry shows each gamma's message once.
    warnings.warn(f"gamma {name} is assumed {group.name}-equivariant and nothing checked it: its evidence says "
                  "'assumed, not checked' until gamma.checked() records a passing gamma.check()", UserWarning,
                  stacklevel=2)


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


def vouched(obj: Any) -> bool:
    """Whether the class that computes ``obj`` (defines its ``__call__`` or ``forward``) declares ``vouched = True``.

    The library's frames, canonicalisers, Haar samplers and Kim et al. networks declare it: their
    equivariance is the library's claim, tested in its own suite.  The declaration belongs to
    the class that does the computing, so a subclass that overrides ``__call__`` or ``forward``
    is not vouched for unless it says so itself; a plain function never is.
    """
    for klass in type(obj).__mro__:
        if "__call__" in vars(klass) or "forward" in vars(klass):
            return vars(klass).get("vouched", False) is True
    return False
