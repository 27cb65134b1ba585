"""What a diagram means in PyTorch: :class:`Spec` (a type), :class:`Interpretation` (boxes, types, laws), noise.

Objects are interpreted as :class:`Spec` s (a per-example shape and a dtype; every
tensor carries a leading batch dimension), boxes by callables:

* a **deterministic** box ``f : A1 @ ... @ An -> B1 @ ... @ Bm`` by a torch function or
  an ``nn.Module`` called as ``f(a1, ..., an)``;
* a **stochastic** box by a sampler called as ``k(a1, ..., an, generator=g)``, where ``g``
  is a ``torch.Generator`` or ``None`` (the global generator), so a seeded run is
  reproducible bit for bit;
* a box with no inputs (``unit : I -> G``, a prior ``I -> Z``) additionally receives
  ``like=t``, a tensor whose leading dimension is the batch size, on the model's device
  and with its floating dtype; only its shape[0], dtype and device are meaningful.

:class:`Gaussian` is the one noise sampler (standard Gaussian entries), with the coupling
that replays its draw when the input moves (:class:`Invariant`, or an action's ``act``);
:class:`GroupActions` is the torch group and actions a compiled model carries.  All of these
are immutable values.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor

from markovcat.backends.python import InterpretationError, box_name
from markovcat.backends.torch.linalg import randn
from markovcat.syntax import Ty

__all__ = ["Spec", "Interpretation", "Invariant", "Gaussian", "GroupActions", "InterpretationError"]


@dataclass(frozen=True)
class Spec:
    """The interpretation of an atomic type: per-example ``shape`` and ``dtype``.

    ``dtype=None`` means the model's floating dtype (it follows ``model.to(dtype)``);
    a ``None`` entry in ``shape`` matches any size.  ``sample(batch, generator, dtype,
    device)`` draws random elements, used by the axiom and equivariance checks; it
    defaults to standard Gaussian entries for floating specs.
    """

    shape: tuple[int | None, ...] = ()
    """The per-example shape (without the batch dimension)."""
    dtype: torch.dtype | None = None
    """The dtype (``None``: the model's floating dtype)."""
    sample: Callable[..., Tensor] | None = None
    """``sample(batch, generator, dtype, device)``: random elements (``None``: standard Gaussian entries)."""

    def random(self, batch: int, generator: torch.Generator | None = None, dtype: torch.dtype | None = None,
               device: torch.device | str = "cpu") -> Tensor:
        """``batch`` random elements of this type."""
        dtype = self.dtype or dtype or torch.get_default_dtype()
        if self.sample is not None:
            return self.sample(batch, generator, dtype, device)
        if None in self.shape:
            raise InterpretationError(f"cannot draw random elements of a spec with a free dimension {self.shape}")
        if not dtype.is_floating_point:
            raise InterpretationError(f"a spec of dtype {dtype} needs a sample function to draw random elements")
        return randn((batch, *self.shape), generator, dtype, device)  # type: ignore[arg-type]

    def matches(self, per_example: tuple[int, ...]) -> bool:
        """Whether a per-example shape fits this spec (a ``None`` entry matches any size)."""
        return len(per_example) == len(self.shape) and all(
            s is None or s == t for s, t in zip(self.shape, per_example, strict=False)
        )

    def __str__(self) -> str:
        dims = ", ".join("*" if s is None else str(s) for s in self.shape)
        return f"({dims})" + ("" if self.dtype is None else f" {self.dtype}")


def _atom(key: str | Ty) -> str:
    if isinstance(key, Ty):
        if len(key) != 1:
            raise TypeError(f"a spec interprets one atomic type, got {key}")
        return key.atoms[0]
    if not isinstance(key, str):
        raise TypeError(f"types are keyed by atom names or atomic Ty, got {type(key).__name__} {key!r}")
    return key


@dataclass(frozen=True, init=False)
class Interpretation:
    """What the boxes and types of a diagram mean in PyTorch.

    ``boxes`` maps box names (or Boxes) to callables; ``types`` maps atom names (or atomic
    ``Ty``) to :class:`Spec`; ``laws`` lists the :class:`~markovcat.groups.Group` and
    :class:`~markovcat.groups.Action` objects whose axioms the boxes must satisfy;
    ``couplings`` maps stochastic box names to ``coupling(g, *draws) -> draws``, the
    law-preserving map that :func:`markovcat.check_equivariance` uses to replay a
    box's draw when the input is moved by ``g`` (e.g. ``R0 -> g R0`` for a Haar draw);
    a sampler with a ``coupling`` attribute declares its own.  ``fusions`` maps a pair
    ``(inner, outer)`` of deterministic box names to ``fused(a, *rest)``, equal to
    ``outer(inner(a), *rest)``: the compiler then emits one call where ``outer``'s first
    input comes from ``inner`` (e.g. ``act(inv(g), x)`` as ``x @ g`` for rotations), after
    checking the equality on random elements.  Combine interpretations with ``|``;
    replace some boxes' meanings with :meth:`override` (which drops their fusions).
    Immutable: the keys are normalised (to box and atom names) once, on construction.
    """

    boxes: Mapping[str, Any]
    types: Mapping[str, Spec]
    laws: tuple[Any, ...]
    couplings: Mapping[str, Callable[..., Any]]
    fusions: Mapping[tuple[str, str], Callable[..., Any]]

    __hash__ = None  # type: ignore[assignment]  # equal by value, holds dicts

    def __init__(self, boxes: Mapping[Any, Any] | None = None, types: Mapping[Any, Spec] | None = None,
                 laws: Sequence[Any] = (), couplings: Mapping[Any, Callable[..., Any]] | None = None,
                 fusions: Mapping[tuple[Any, Any], Callable[..., Any]] | None = None) -> None:
        normal_types = {_atom(k): v for k, v in (types or {}).items()}
        for atom, spec in normal_types.items():
            if not isinstance(spec, Spec):
                raise TypeError(f"type {atom!r} is interpreted by {type(spec).__name__} {spec!r}, not a Spec")
        fields = {
            "boxes": {box_name(k): v for k, v in (boxes or {}).items()},
            "types": normal_types,
            "laws": tuple(laws),
            "couplings": {box_name(k): v for k, v in (couplings or {}).items()},
            "fusions": {(box_name(a), box_name(b)): f for (a, b), f in (fusions or {}).items()},
        }
        for name, value in fields.items():
            object.__setattr__(self, name, value)

    def override(self, boxes: Mapping[Any, Any]) -> Interpretation:
        """A copy in which ``boxes`` replace the meanings of the boxes they name."""
        names = {box_name(k) for k in boxes}
        fusions = {pair: f for pair, f in self.fusions.items() if not names & set(pair)}  # they may no longer hold
        return Interpretation({**self.boxes, **{box_name(k): v for k, v in boxes.items()}}, self.types, self.laws,
                              self.couplings, fusions)

    def __or__(self, other: Interpretation) -> Interpretation:
        if not isinstance(other, Interpretation):
            return NotImplemented
        for mine, theirs, what in ((self.boxes, other.boxes, "box"), (self.types, other.types, "type")):
            for key in mine.keys() & theirs.keys():
                if mine[key] is not theirs[key] and mine[key] != theirs[key]:
                    raise InterpretationError(f"two interpretations give {what} {key!r} different meanings")
        laws = list(self.laws) + [law for law in other.laws if law not in self.laws]
        return Interpretation({**self.boxes, **other.boxes}, {**self.types, **other.types}, laws,
                              {**self.couplings, **other.couplings}, {**self.fusions, **other.fusions})


class Invariant:
    """The coupling ``(g, *draws) -> draws``, for noise whose law ignores the input and ``g``."""

    def __call__(self, g: Tensor, *draws: Tensor) -> Any:
        return draws[0] if len(draws) == 1 else draws

    def __repr__(self) -> str:
        return "Invariant()"


class Gaussian:
    """A sampler of standard Gaussian noise of per-example ``shape`` (for boxes ``I -> E`` or ``X -> E``).

    Its law ignores the inputs.  Its :attr:`coupling`, which replays a draw when the input
    is moved by ``g``, is :class:`Invariant` (the draw unchanged) by default; with an
    ``action`` it is ``(g, eps) |-> g . eps``, which preserves the law exactly when the
    Gaussian is invariant under the action (an orthogonal or permutation action): what
    makes the pathwise check a proof of equality in law.
    """

    shape: tuple[int, ...]
    """The per-example shape of one draw."""
    coupling: Callable[..., Any]
    """``coupling(g, draw)``: how a draw moves when the inputs move by ``g`` (unchanged when ``action`` is ``None``)."""

    action: Any
    """The action on the noise space that moves the draws in the equivariance check (``None``: invariant noise)."""

    def __init__(self, shape: Sequence[int], action: Any = None) -> None:
        self.shape = tuple(shape)
        self.action = action
        self.coupling: Callable[..., Any] = Invariant() if action is None else action.act

    def __call__(self, *inputs: Tensor, generator: torch.Generator | None = None, like: Tensor | None = None) -> Tensor:
        reference = inputs[0] if inputs else like
        if reference is None:
            raise InterpretationError("Gaussian noise with no inputs needs like=... for the batch size")
        dtype = reference.dtype if reference.is_floating_point() else torch.get_default_dtype()
        return randn((reference.shape[0], *self.shape), generator, dtype, reference.device)

    def __repr__(self) -> str:
        return f"Gaussian({self.shape})" if self.action is None else f"Gaussian({self.shape}, {self.action!r})"


@dataclass(frozen=True)
class GroupActions:
    """The torch group and actions a model is equivariant for: what :func:`check_equivariance` needs.

    ``group`` is a :class:`~markovcat.backends.torch.groups.TorchGroup`, ``input`` and
    ``output`` its :class:`~markovcat.backends.torch.groups.TorchAction` s on the model's
    input and output.  A compiled model carries it as ``model.symmetry``.
    """

    group: Any
    input: Any
    """The action on the model's input."""
    output: Any
    """The action on the model's output."""


def __getattr__(name: str) -> Any:
    """``Symmetry``, the old name of :class:`GroupActions` (beside the group ``Symmetric``), deprecated."""
    if name == "Symmetry":
        warnings.warn(f"{__name__}.Symmetry is deprecated: use GroupActions", DeprecationWarning, stacklevel=2)
        return GroupActions
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
