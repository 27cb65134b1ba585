"""From a diagram written with DisCoPy to a checked PyTorch model: the covariance task's ``sym``.

Research code may already describe its models as ``discopy.markov`` diagrams: plain
``Box``es (``f``, ``gamma_0``, ``inv``, ``act_X``, ``act_Y``) wired with ``Copy``, ``Swap``
and ``Id``, a symmetrisation written as the adjunction
``k+ = (s >> Copy(G)) @ X >> G @ (inv @ X >> act_X >> f) >> act_Y`` precomposed with
``Copy(X) >> gamma @ X`` (the layout of the public ``stoch_sym`` experiments).  This module
takes such a diagram through markovcat:

1. :func:`discopy_sym` writes it with DisCoPy (``broken="inverse output"`` acts on the
   output by ``g^-1`` instead of ``g``, a deliberate bug);
2. :func:`import_sym` reads it with :func:`markovcat.backends.discopy.from_discopy`, mapping
   the DisCoPy box names to markovcat's boxes for the group ``O(4)``, its actions, the
   network ``f`` and the Haar gamma;
3. :func:`markovcat_sym` builds the same model with markovcat's own construction,
   :func:`markovcat.symmetrisation.sym`, whose equivariance is a checked proof; ``mc.equal``
   then decides whether the imported diagram *is* that construction (and ``mc.explain``
   says where it is not);
4. :func:`compile_sym` compiles the imported diagram to a ``torch.nn.Module`` with the
   covariance task's actions (left multiplication on ``x``, conjugation on ``y``), ready for
   :func:`markovcat.backends.torch.equivariance.check_equivariance` and training.

>>> imported, built = import_sym(), markovcat_sym()
>>> import markovcat as mc
>>> mc.equal(imported, built.diagram)
True
>>> mc.equal(import_sym(broken="inverse output"), built.diagram)
False
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch

from markovcat.backends.discopy import discopy_markov as markov
from markovcat.backends.discopy import from_discopy
from markovcat.backends.torch.compile import CompiledDiagram, Interpretation, compile
from markovcat.backends.torch.groups import Orthogonal
from markovcat.experiments import covariance as cov
from markovcat.groups import Action, Group
from markovcat.gspace import Equivariant, GSpace
from markovcat.symmetrisation import haar_gamma, sym
from markovcat.syntax import Box, Diagram, Ty

__all__ = ["Theory", "theory", "discopy_sym", "import_sym", "markovcat_sym", "compile_sym"]


def discopy_sym(broken: str | None = None) -> Any:
    """``sym(f)`` as a ``discopy.markov.Diagram`` with a Haar gamma ``gamma_0 : X -> G``, all boxes plain.

    ``broken="inverse output"`` writes ``act_Y(inv(g), f(...))``: not equivariant.
    """
    if broken not in (None, "inverse output"):
        raise ValueError(f"unknown breakage {broken!r}; the one offered is 'inverse output'")
    X, Y, G = markov.Ty("X"), markov.Ty("Y"), markov.Ty("G")
    f, gamma = markov.Box("f", X, Y), markov.Box("gamma_0", X, G)
    inv = markov.Box("inv", G, G)
    act_x, act_y = markov.Box("act_X", G @ X, X), markov.Box("act_Y", G @ Y, Y)
    s = markov.Id(G)
    branch = inv @ X >> act_x >> f
    k_plus = (s >> markov.Copy(G)) @ X >> ((G @ branch) if broken is None else (inv @ branch)) >> act_y
    return markov.Copy(X) >> gamma @ X >> k_plus


@dataclass(frozen=True)
class Theory:
    """The markovcat side: the group, its actions on ``X`` and ``Y``, the network box, the Haar gamma."""

    group: Group
    x: GSpace
    y: GSpace
    f: Box
    gamma: Equivariant

    def boxes(self) -> dict[str, Diagram]:
        """How each DisCoPy box name reads in markovcat (the functor on boxes given to ``from_discopy``)."""
        return {"f": self.f, "gamma_0": self.gamma.diagram, "inv": self.group.inv,
                "act_X": self.x.act, "act_Y": self.y.act}


def theory(d: int = cov.D) -> Theory:
    """A group ``G`` (interpreted as ``O(d)``) on ``X`` and ``Y``, ``f : X -> Y`` deterministic, ``gamma`` Haar."""
    G, X, Y = Group("G"), Ty("X"), Ty("Y")  # the DisCoPy diagram's type names
    x_space = GSpace(X, Action("act_X", G, X))
    y_space = GSpace(Y, Action("act_Y", G, Y), linear=True)
    return Theory(G, x_space, y_space, Box("f", X, Y, deterministic=True), haar_gamma(x_space))


def import_sym(broken: str | None = None, d: int = cov.D) -> Diagram:
    """:func:`discopy_sym` read into markovcat through :meth:`Theory.boxes`."""
    return from_discopy(discopy_sym(broken), boxes=theory(d).boxes())


def markovcat_sym(d: int = cov.D) -> Equivariant:
    """The same model built by markovcat: ``sym(f, gamma, Y)``, a morphism of ``C^G`` (proved equivariant)."""
    t = theory(d)
    return sym(t.f, t.gamma, t.y)


def compile_sym(diagram: Diagram, net: torch.nn.Module | None = None, d: int = cov.D,
                n: int = cov.SAMPLES) -> tuple[CompiledDiagram, Orthogonal, Any, Any]:
    """Compile ``diagram`` (imported or built) for the covariance task; the model, the group and the two actions.

    ``f`` is ``net`` (default a fresh :class:`~markovcat.experiments.covariance.CovarianceMLP`),
    the Haar draw is ``Orthogonal(d).haar_sampler()``, ``act_X`` left multiplication and ``act_Y``
    conjugation; :func:`compile` checks the group's and actions' axioms numerically.
    """
    t = theory(d)
    group = Orthogonal(d)
    x_action, y_action = group.left(n), group.conjugation()
    lam = next(box for box in t.gamma.diagram.boxes if not box.deterministic)
    interpretation = group.interpretation(t.group, (t.x.action, x_action), (t.y.action, y_action)) | Interpretation(
        {t.f: net if net is not None else cov.CovarianceMLP(d, n), lam.name: group.haar_sampler()})
    return compile(diagram, interpretation, name="sym_from_discopy"), group, x_action, y_action
