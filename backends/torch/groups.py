"""Batched PyTorch groups and actions for interpreting group diagrams.

Elements carry a leading batch dimension.  Each :class:`TorchGroup` gives ``mul``,
``unit(like=...)``, ``inv`` and ``sample`` (Haar / uniform random elements); each
:class:`TorchAction` gives ``act(g, x)`` and a :class:`Spec` for its space.
:meth:`TorchGroup.interpretation` turns them into an
:class:`~markovcat.backends.torch.compile.Interpretation` for the boxes of a
:class:`~markovcat.groups.Group` and its :class:`~markovcat.groups.Action` s, declaring
their axioms so that :func:`compile` checks them.

* :class:`Orthogonal` ``O(d)`` / ``SO(d)``: ``(d, d)`` matrices; Haar samples by QR of a
  Gaussian matrix with the sign fix (and a column flip for ``SO(d)``); acts on point
  clouds ``(n, d)`` (each row rotated) and on vectors ``(d,)``.
* :class:`Cyclic` ``C_n``: integers mod ``n``; acts on ``R^2`` by rotation and, for
  ``n`` in 1, 2, 4, on square images ``(c, h, w)`` by exact grid rotations (``rot90``).
* :class:`Symmetric` ``S_n``: permutations as index vectors ``p`` (``p[i]`` is the
  image of ``i``); acts on sets ``(n, d)`` by moving row ``i`` to row ``p[i]``.

:meth:`TorchAction.restrict` restricts an action along a homomorphism
(:class:`~markovcat.backends.torch.homomorphisms.TorchHomomorphism`).  More groups live in
:mod:`markovcat.backends.torch.matrix_groups` and :mod:`markovcat.backends.torch.finite_groups`.

**The protocol a user's group implements.**  Subclass :class:`TorchGroup` and define
``name``, ``spec``, ``mul``, ``inv``, ``unit`` and ``sample`` (the axioms are checked when a
model is compiled).  Optionally:

* ``compact = False`` for a group without a Haar probability measure (no Haar gamma);
* ``elements(*, dtype, device, limit)``: every element, as a batch ``(|G|, ...)``; a group
  that defines it is :attr:`~TorchGroup.finite` (exact averaging, orbit canonicalisation,
  network gammas by logits over the elements);
* ``project(raw)`` and ``raw_size``: how an unconstrained network output of ``raw_size``
  numbers per example lands in the group (the network gammas, e.g. ``gamma="recursive"``);
  a finite group gets both from ``elements`` (an argmax over one logit per element).

A :class:`TorchAction` says what kind of action it is (:data:`ACTION_KINDS`: trivial,
rotating the rows of ``(n, d)`` clouds, multiplying ``(d, n)`` matrices on the left, permuting
rows), so that the built-in gammas recognise it without probing it; an action with no
``kind`` is any other action, served by gammas that do not need to know (``"haar"``,
``"recursive"``, or the user's own).

(Over 500 lines for a reason: the protocol and the three basic groups stay with the small-matrix
kernels their actions share, which are measured and tuned together in ``benchmarks/overhead.py``.)
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

import torch
from torch import Tensor

from markovcat.backends.torch.compile import Interpretation, InterpretationError, Spec
from markovcat.backends.torch.linalg import haar_orthogonal, orthonormalise, rand
from markovcat.groups import Action, Group
from markovcat.syntax import Box, Diagram

if TYPE_CHECKING:
    from markovcat.backends.torch.homomorphisms import TorchHomomorphism

__all__ = [
    "TorchGroup",
    "TorchAction",
    "ByValue",
    "ACTION_KINDS",
    "Orthogonal",
    "Cyclic",
    "Symmetric",
    "HaarSampler",
    "LeftTranslation",
    "haar_orthogonal",
    "small_matmul",
    "elementwise_matmul",
    "SMALL_MATMUL_DIM",
    "SMALL_MATMUL_BATCH",
    "membership_tolerance",
]

#: :func:`small_matmul` uses its elementwise kernel on the CPU when both matrix dimensions of the
#: right factor are at most this (measured in ``benchmarks/overhead.py``) ...
SMALL_MATMUL_DIM = 4
#: ... the batch has at least this many examples (below it, ``torch.matmul`` is faster) ...
SMALL_MATMUL_BATCH = 64
# ... and no gradient is recorded: through autograd, the elementwise form's backward costs more than
# matmul's (measured in the same benchmark), so the training path keeps ``torch.matmul``.


def small_matmul(a: Tensor, b: Tensor) -> Tensor:
    """``a @ b`` for batches ``a (B, n, k)``, ``b (B, k, m)`` of small matrices, by the faster formulation for the size.

    On the CPU ``torch.matmul`` of tiny matrices runs a scalar loop per example (about
    100 us for ``(256, 16, 3) @ (256, 3, 3)``, as long as a small MLP's forward pass).
    For ``k, m <= SMALL_MATMUL_DIM``, ``B >= SMALL_MATMUL_BATCH`` and no gradient to
    record (inference, or inputs that need none), this computes the same sum
    ``sum_k a[..., k, None] * b[..., k, :]`` as one broadcast product and one sum with
    the batch as the innermost (vectorised) dimension (:func:`elementwise_matmul`);
    everywhere else it is ``torch.bmm`` (three-dimensional factors of equal batch: the
    same product as ``torch.matmul`` without its reshapes, whose autograd nodes cost
    about 30 us a step here) or, for other shapes, ``torch.matmul`` itself.

    The result equals ``a @ b`` up to rounding (the same terms, summed in order of
    ``k``), and is contiguous like ``matmul``'s.  Measured (``benchmarks/overhead.py``,
    one thread): the fast path takes 0.7 to 0.8 of ``bmm``'s time for ``d`` = 3, 4 at
    batch 256, copy to a contiguous result included; through autograd the elementwise
    form's backward costs 1.4 to 2 times ``bmm``'s, hence the rule.
    """
    if not (a.dim() == 3 and b.dim() == 3 and a.shape[0] == b.shape[0] and a.shape[-1] == b.shape[-2]):
        return torch.matmul(a, b)  # matmul's broadcasting and its errors
    if (a.device.type == "cpu" and a.shape[0] >= SMALL_MATMUL_BATCH and a.dtype == b.dtype and b.device == a.device
            and b.shape[-2] <= SMALL_MATMUL_DIM and b.shape[-1] <= SMALL_MATMUL_DIM
            and not (torch.is_grad_enabled() and (a.requires_grad or b.requires_grad))):
        return elementwise_matmul(a, b).contiguous()  # matmul's layout, so no caller can tell the kernels apart
    return torch.bmm(a, b)  # = matmul here, without its reshapes (three fewer autograd nodes)


def elementwise_matmul(a: Tensor, b: Tensor) -> Tensor:
    """``a @ b`` for ``a (B, n, k)``, ``b (B, k, m)`` as ``(a[..., :, None] * b[..., None, :, :]).sum(-2)``.

    Differentiable (plain torch operations); the kernel :func:`small_matmul` picks for
    tiny matrices.  Returns a ``(B, n, m)`` view whose batch stride is 1 (not contiguous).
    """
    product = a.movedim(0, -1).contiguous().unsqueeze(2) * b.movedim(0, -1).contiguous().unsqueeze(0)
    return product.sum(1).movedim(-1, 0)


def _batch_of(inputs: tuple[Tensor, ...], like: Tensor | None) -> tuple[int, torch.dtype, torch.device]:
    reference = inputs[0] if inputs else like
    if reference is None:
        raise InterpretationError("a sampler with no inputs needs like=... to know the batch size")
    dtype = reference.dtype if reference.is_floating_point() else torch.get_default_dtype()
    if like is not None and like.is_floating_point():
        dtype = like.dtype
    return reference.shape[0], dtype, reference.device


#: What a :class:`TorchAction` may declare itself to be (its ``kind``), so that gammas need not probe it.
ACTION_KINDS = MappingProxyType({
    "trivial": "act(g, x) = x",
    "rows": "a group of (d, d) matrices on (n, d) point clouds, every row moved: x g^T",
    "columns": "a group of (d, d) matrices on (d, n) matrices by left multiplication: g x",
    "permute rows": "S_n (index vectors) on (n, d) sets, row i moved to row p[i]",
})


class TorchAction:
    """A batched action ``act(g, x)`` of ``group`` on tensors of per-example ``spec``.

    ``act`` takes a batch of elements ``g`` and a batch of points ``x`` (equal batch sizes) and
    returns ``g . x``, of the same shape as ``x``; it must be an action (``act(e, x) = x`` and
    ``act(g, act(h, x)) = act(g h, x)``), which :func:`compile` checks numerically on random
    elements and points.  ``act_inverse(g, x)``, if given, must equal ``act(inv(g), x)``: a cheaper
    kernel that compiled models use for ``g^-1 . x`` (checked as a fusion when compiled).
    ``kind`` (a key of :data:`ACTION_KINDS`, or ``None``) declares which standard action this is.
    A declared kind is a claim the built-in gammas rely on; the library's own actions declare theirs.
    """

    name: str
    """How the action is named in messages (``"rows"``, ``"mul"``)."""
    group: TorchGroup
    """The group that acts."""
    spec: Spec
    """The per-example shape and dtype of a point of the space."""
    act: Callable[[Tensor, Tensor], Tensor]
    """The batched action ``(g, x) -> g . x``."""
    act_inverse: Callable[[Tensor, Tensor], Tensor] | None
    """``(g, x) -> g^-1 . x`` when a cheaper kernel than ``act(inv(g), x)`` is known, else ``None``."""
    kind: str | None
    """Which standard action this is (a key of :data:`ACTION_KINDS`), or ``None``: undeclared."""

    def __init__(self, name: str, group: TorchGroup, spec: Spec, act: Callable[[Tensor, Tensor], Tensor],
                 act_inverse: Callable[[Tensor, Tensor], Tensor] | None = None, *, kind: str | None = None) -> None:
        if kind is not None and kind not in ACTION_KINDS:
            raise ValueError(f"unknown action kind {kind!r}: use one of {', '.join(ACTION_KINDS)} or None")
        self.name, self.group, self.spec, self.act = name, group, spec, act
        self.act_inverse = act_inverse
        self.kind = kind

    def __call__(self, g: Tensor, x: Tensor) -> Tensor:
        """``act(g, x)``."""
        return self.act(g, x)

    def random(self, batch: int, generator: torch.Generator | None = None, dtype: torch.dtype | None = None,
               device: torch.device | str = "cpu") -> Tensor:
        """Random points of the space (standard Gaussian entries unless the spec says otherwise)."""
        return self.spec.random(batch, generator, dtype, device)

    def restrict(self, phi: TorchHomomorphism) -> TorchAction:
        """The action of ``phi.source`` through ``phi``: ``(h, x) |-> act(phi(h), x)``."""
        if phi.target is not self.group and phi.target.name != self.group.name:
            raise InterpretationError(f"{phi.name} lands in {phi.target.name}, but this action is of {self.group.name}")
        return TorchAction(f"{self.name}|{phi.name}", phi.source, self.spec, _Restricted(self.act, phi.map),
                           kind="trivial" if self.kind == "trivial" else None)  # other kinds speak of the group

    # -- equality by value ----------------------------------------------------------------
    def _value(self) -> tuple[Any, ...]:
        return (self.group, self.spec, self.kind, self.act, self.act_inverse)

    def __eq__(self, other: object) -> bool:
        """Equal when the group (the same object), spec, kind and kernels are equal, whatever the name.

        Kernels compare by value: a function is itself, a bound method its object and function, and
        the library's kernel objects (:class:`ByValue`) their type and parameters, so two calls of
        ``GL.left(6)`` give equal actions.
        """
        if not isinstance(other, TorchAction):
            return NotImplemented
        return self is other or self._value() == other._value()

    def __hash__(self) -> int:
        return hash((id(self.group), self.spec.shape, self.spec.dtype, self.kind))

    def differences(self, other: TorchAction) -> list[str]:
        """How ``other`` differs from this action, one phrase a field (empty when they are equal)."""
        out = []
        if self.group is not other.group:
            same = " (equal names, but two group objects: build both from one)" if \
                self.group.name == other.group.name else ""
            out.append(f"the group: {self.group.name} vs {other.group.name}{same}")
        for field in ("shape", "dtype", "sample"):
            mine, theirs = getattr(self.spec, field), getattr(other.spec, field)
            if mine != theirs:
                out.append(f"the spec's {field}: {mine!r} vs {theirs!r}")
        if self.kind != other.kind:
            out.append(f"the declared kind: {self.kind!r} vs {other.kind!r}")
        for field in ("act", "act_inverse"):
            mine, theirs = getattr(self, field), getattr(other, field)
            if mine != theirs:
                out.append(f"the {field} kernel: {_kernel_name(mine)} vs {_kernel_name(theirs)}")
        return out

    def __repr__(self) -> str:
        return f"<{self.group.name} acting on {self.spec} by {self.name}>"


def _kernel_name(kernel: Any) -> str:
    if kernel is None:
        return "none"
    name = getattr(kernel, "__qualname__", None)
    if name is not None:
        owner = getattr(kernel, "__self__", None)
        return f"{name} of {owner!r}" if owner is not None else str(name)
    if isinstance(kernel, ByValue):
        return f"{type(kernel).__qualname__}({', '.join(f'{k}={v!r}' for k, v in vars(kernel).items())})"
    return f"{type(kernel).__qualname__} object at {id(kernel):#x}"


class ByValue:
    """A kernel object compared by its type and attributes, so that actions built alike are equal.

    Subclass it for an action's kernel that is an object (it holds the group or sizes it needs):
    then two calls that build the same action give equal :class:`TorchAction` s.
    """

    def __eq__(self, other: object) -> bool:
        return type(other) is type(self) and vars(other) == vars(self)

    def __hash__(self) -> int:
        return hash((type(self), tuple(sorted(vars(self)))))


class _Restricted(ByValue):
    def __init__(self, act: Callable[[Tensor, Tensor], Tensor], phi: Callable[[Tensor], Tensor]) -> None:
        self.act, self.phi = act, phi

    def __call__(self, h: Tensor, x: Tensor) -> Tensor:
        return self.act(self.phi(h), x)


def _trivial(g: Tensor, x: Tensor) -> Tensor:
    return x


class TorchGroup:
    """Base class of the batched groups: subclasses define ``name``, ``spec``, ``mul``, ``inv``, ``unit``, ``sample``.

    Elements are tensors with a leading batch dimension and per-element shape ``spec.shape``
    (``(d, d)`` matrices for ``Orthogonal(d)``, integers for ``Cyclic(n)``).  A subclass of your
    own plugs into :func:`compile`, :func:`~markovcat.backends.torch.check_equivariance` and the
    named procedures like the shipped groups; :meth:`interpretation` declares its axioms, which
    ``compile`` checks numerically on random elements, so a wrong ``mul`` or ``inv`` is refused,
    not trusted.  The guide "Your own group, action and inputs with parts" writes one.

    Optional parts of the protocol: ``compact``, :meth:`elements` (which makes the group
    :attr:`finite`), :meth:`project`, :attr:`raw_size` and :meth:`contains` (membership, which
    :meth:`Gamma.check` tests a gamma's outputs with).
    """

    name: str
    """How the group is named in messages and reprs (``"O(3)"``)."""
    spec: Spec
    """The per-element shape and dtype of an element (without the batch dimension)."""
    compact: bool = True
    """Whether the group has a Haar probability measure (then :meth:`sample` draws it); ``GL(d)`` has not."""

    def elements(self, *, dtype: torch.dtype | None = None, device: torch.device | str = "cpu",
                 limit: int = 5040) -> Tensor:
        """Every element, as a batch ``(|G|, ...)`` (finite groups; at most ``limit`` of them).

        Not defined for this group: a finite group overrides it (and is then :attr:`finite`).
        """
        raise InterpretationError(f"cannot enumerate the elements of {self.name}: it defines no elements()")

    @property
    def finite(self) -> bool:
        """Whether the group lists its elements (it defines :meth:`elements`)."""
        return type(self).elements is not TorchGroup.elements

    @property
    def raw_size(self) -> int:
        """How many unconstrained numbers per example :meth:`project` maps onto the group."""
        if self.finite:
            return int(self.elements().shape[0])
        raise TypeError(f"no network gamma for {self.name}: {type(self).__name__} defines no project(raw) and "
                        "raw_size (see markovcat.backends.torch.groups), or pass a Gamma")

    def project(self, raw: Tensor) -> Tensor:
        """Map an unconstrained network output ``(batch, raw_size)`` onto the group, equivariantly where it matters.

        For a finite group: the element with the largest of one logit per element.
        """
        if self.finite:
            return self.elements(device=raw.device)[torch.argmax(raw.reshape(raw.shape[0], -1), dim=-1)]
        raise TypeError(f"no projection onto {self.name}: {type(self).__name__} defines no project(raw) and "
                        "raw_size (see markovcat.backends.torch.groups), or pass a Gamma")

    def contains(self, g: Tensor, *, tolerance: float | None = None) -> Tensor:
        """Which examples of a batch ``g`` of the element shape are elements of the group: a bool per example.

        This default accepts every finite tensor, except that a finite group (one that defines
        :meth:`elements`) compares with its elements; a group that knows its equations
        overrides it (``O(d)``: ``g^T g = I`` within ``tolerance``, default :func:`membership_tolerance`,
        and ``det g = +1`` for ``SO(d)``; ``S_n``: a permutation).  :meth:`Gamma.check` uses it.
        """
        flat = g.reshape(g.shape[0], -1)
        if self.finite:
            every = self.elements(device=g.device).reshape(-1, flat.shape[1]).to(g.dtype)
            if g.is_floating_point():
                atol = membership_tolerance(g.dtype) if tolerance is None else tolerance
                return ((flat[:, None] - every[None]).abs() <= atol).all(-1).any(-1)
            return (flat[:, None] == every[None]).all(-1).any(-1)
        return torch.isfinite(flat).all(-1) if g.is_floating_point() else torch.ones_like(flat[:, 0], dtype=torch.bool)

    def mul(self, a: Tensor, b: Tensor) -> Tensor:
        """The batched product ``a * b`` of two batches of elements (example by example)."""
        raise NotImplementedError

    def inv(self, a: Tensor) -> Tensor:
        """The batched inverse ``a^-1`` of a batch of elements."""
        raise NotImplementedError

    def unit(self, *, like: Tensor) -> Tensor:
        """The identity element, one per example of ``like`` (its batch size, dtype and device)."""
        raise NotImplementedError

    def sample(self, batch: int, generator: torch.Generator | None = None, dtype: torch.dtype | None = None,
               device: torch.device | str = "cpu") -> Tensor:
        """``batch`` independent random elements: Haar (uniform) for a compact group, drawn with ``generator``."""
        raise NotImplementedError

    def regular(self) -> TorchAction:
        """The group acting on itself by left multiplication (the object ``(G, *)``)."""
        return TorchAction("mul", self, self.spec, self.mul)

    def trivial(self, spec: Spec) -> TorchAction:
        """The group leaving every point of ``spec`` alone (an invariant output)."""
        return TorchAction("trivial", self, spec, _trivial, kind="trivial")

    def interpretation(self, group: Group, *actions: tuple[Action, TorchAction]) -> Interpretation:
        """Interpret the boxes of ``group`` (and of each ``(action, torch_action)``) by this group.

        The group's and actions' axioms are declared, so :func:`compile` checks them
        numerically on random elements.
        """
        if not isinstance(group, Group):
            raise TypeError(f"interpretation needs a markovcat Group, got {type(group).__name__} {group!r}")
        boxes: dict[str, Any] = {}
        for part, function in ((group.mul, self._fast("mul")), (group.unit, self.unit), (group.inv, self._fast("inv"))):
            boxes[_box_of(part, group)] = function
        types = {group.ty.atoms[0]: self.spec}
        laws: list[Any] = [group]
        fusions: dict[tuple[str, str], Any] = {}
        for action, torch_action in actions:
            if action.group != group:
                raise InterpretationError(f"{action!r} is an action of {action.group!r}, not of {group!r}")
            boxes[_box_of(action.act, action)] = torch_action.act
            if torch_action.act_inverse is not None:
                fusions[(_box_of(group.inv, group), _box_of(action.act, action))] = torch_action.act_inverse
            if len(action.space) != 1:
                raise InterpretationError(f"{action!r} acts on {action.space}: give one action per atomic type")
            types[action.space.atoms[0]] = torch_action.spec
            laws.append(action)
        return Interpretation(boxes, types, laws, fusions=fusions)

    def _fast(self, op: str) -> Callable[..., Tensor]:
        """The plain function implementing ``op`` (cheaper to call than the bound method), if any."""
        return getattr(self, f"_{op}_function", None) or getattr(self, op)

    def haar_sampler(self) -> HaarSampler:
        """A sampler of uniform (Haar) elements ignoring its inputs; see :class:`HaarSampler`."""
        if not self.compact:
            raise InterpretationError(f"{self.name} is not compact: it has no Haar probability measure")
        return HaarSampler(self)

    def __repr__(self) -> str:
        return self.name


def membership_tolerance(dtype: torch.dtype) -> float:
    """The default tolerance of :meth:`TorchGroup.contains` for floating elements: ``1000`` machine epsilons."""
    return 1000 * torch.finfo(dtype).eps


def _box_of(part: Diagram, owner: object) -> str:
    if isinstance(part, Box):
        return part.name
    raise InterpretationError(
        f"{owner!r} is built from other groups' boxes; interpret its factors instead of the product"
    )


class HaarSampler:
    """Interpretation of a stochastic box ``gamma : X -> G`` drawing Haar elements independently of ``X``.

    Its :attr:`coupling` is left translation: if the input moves by ``g``, the draw
    ``R0`` may be replaced by ``g R0``, which has the same (Haar) law.
    """

    group: TorchGroup
    """The compact group whose Haar measure is sampled."""
    coupling: LeftTranslation
    """``(g, draw) -> g * draw``: a Haar draw moved by ``g`` has the same law."""
    vouched = True  # equivariant in law for every group with a Haar measure (gammas.vouched)

    def __init__(self, group: TorchGroup) -> None:
        self.group = group
        self.coupling = LeftTranslation(group)

    def __call__(self, *inputs: Tensor, generator: torch.Generator | None = None, like: Tensor | None = None) -> Tensor:
        if like is None:
            batch, dtype, device = _batch_of(inputs, like)
            return self.group.sample(batch, generator, dtype, device)
        return self.group.sample(like.shape[0], generator, like.dtype, like.device)

    def __repr__(self) -> str:
        return f"Haar({self.group.name})"


class LeftTranslation:
    """The coupling ``(g, draw) -> g * draw``."""

    group: TorchGroup
    """The group whose elements are translated."""

    def __init__(self, group: TorchGroup) -> None:
        self.group = group

    def __call__(self, g: Tensor, draw: Tensor) -> Tensor:
        return self.group.mul(g, draw)


# ------------------------------------------------------------------------------------
# O(d) and SO(d)


def _transpose(a: Tensor) -> Tensor:
    return a.transpose(-1, -2)


def _rotate_points(g: Tensor, x: Tensor) -> Tensor:
    return small_matmul(x, g.transpose(-1, -2))


def _unrotate_points(g: Tensor, x: Tensor) -> Tensor:
    return small_matmul(x, g)  # rows x_i -> g^T x_i = g^-1 x_i


def _rotate_vector(g: Tensor, x: Tensor) -> Tensor:
    return small_matmul(x.unsqueeze(-2), g.transpose(-1, -2)).squeeze(-2)


def _unrotate_vector(g: Tensor, x: Tensor) -> Tensor:
    return small_matmul(x.unsqueeze(-2), g).squeeze(-2)


class Orthogonal(TorchGroup):
    """``O(d)`` (or ``SO(d)`` with ``special=True``) as batched ``(d, d)`` matrices."""

    def __init__(self, d: int, special: bool = False) -> None:
        if not isinstance(d, int) or d < 1:
            raise ValueError(f"O(d) needs a dimension d >= 1, got {d!r}")
        self.d, self.special = d, special
        self.name = f"{'SO' if special else 'O'}({d})"
        self.spec = Spec((d, d), None, self.sample)
        self._mul_function, self._inv_function = small_matmul, _transpose

    def mul(self, a: Tensor, b: Tensor) -> Tensor:
        return small_matmul(a, b)

    def inv(self, a: Tensor) -> Tensor:
        return _transpose(a)

    def unit(self, *, like: Tensor) -> Tensor:
        return torch.eye(self.d, dtype=like.dtype, device=like.device).expand(like.shape[0], self.d, self.d)

    def sample(self, batch: int, generator: torch.Generator | None = None, dtype: torch.dtype | None = None,
               device: torch.device | str = "cpu") -> Tensor:
        return haar_orthogonal(batch, self.d, generator, dtype, device, self.special)

    @property
    def raw_size(self) -> int:
        return self.d * self.d

    def contains(self, g: Tensor, *, tolerance: float | None = None) -> Tensor:
        """Orthogonal within ``tolerance`` (``|g^T g - I| <= tolerance * d`` entrywise); ``det g > 0`` for SO(d)."""
        if not g.is_floating_point():
            return torch.zeros(g.shape[0], dtype=torch.bool, device=g.device)
        atol = (membership_tolerance(g.dtype) if tolerance is None else tolerance) * self.d
        eye = torch.eye(self.d, dtype=g.dtype, device=g.device)
        inside = ((g.transpose(-1, -2) @ g - eye).abs() <= atol).flatten(1).all(-1)
        return inside & (torch.linalg.det(g) > 0) if self.special else inside

    def project(self, raw: Tensor) -> Tensor:
        """:func:`~.linalg.orthonormalise` of a ``(d, d)`` matrix: ``project(g m) = g project(m)``.

        A singular ``m`` still gives an orthogonal matrix, never NaN.
        """
        return orthonormalise(raw.reshape(-1, self.d, self.d), special=self.special)

    def points(self, n: int) -> TorchAction:
        """Acting on point clouds ``(n, d)``: every point (row) is rotated, ``x -> x g^T``."""
        return TorchAction("rotate points", self, Spec((n, self.d)), _rotate_points, _unrotate_points, kind="rows")

    def vectors(self) -> TorchAction:
        """``O(d)`` acting on vectors ``(d,)`` by ``v -> g v``."""
        return TorchAction("rotate vector", self, Spec((self.d,)), _rotate_vector, _unrotate_vector)

    def left(self, n: int) -> TorchAction:
        """Acting on ``(d, n)`` matrices by left multiplication ``x -> g x``."""
        from markovcat.backends.torch.matrix_groups import left_multiplication

        return left_multiplication(self, n)

    def conjugation(self) -> TorchAction:
        """Acting on ``(d, d)`` matrices by ``x -> g x g^T``."""
        from markovcat.backends.torch.matrix_groups import conjugation

        return conjugation(self)


def check_layout(layout: str) -> str:
    """``layout`` if it is "rows" or "columns" (see :func:`as_rows`), else ``ValueError``."""
    if layout not in ("rows", "columns"):
        raise ValueError(f"layout must be 'rows' (x g^T on (n, d) clouds) or 'columns' (g x on (d, n)), got {layout!r}")
    return layout


def as_rows(x: Tensor, layout: str) -> Tensor:
    """A batch of point clouds as rows ``(.., n, d)``: ``layout="columns"`` means ``(.., d, n)``, acted on by ``g x``.

    ``(g x)^T = x^T g^T``, so an O(d)-frame of clouds in rows is one of the columns too.
    """
    return x if layout == "rows" else x.transpose(-1, -2)


# ------------------------------------------------------------------------------------
# C_n


def _rot90_batched(k: Tensor, x: Tensor) -> Tensor:
    out = x
    for turns in (1, 2, 3):
        mask = (k == turns).view(-1, *([1] * (x.dim() - 1)))
        out = torch.where(mask, torch.rot90(x, turns, dims=(-2, -1)), out)
    return out


class Cyclic(TorchGroup):
    """``C_n`` as batched integers ``0..n-1`` (``k`` is rotation by ``2 pi k / n``)."""

    n: int
    """The order ``n`` of ``C_n``."""

    def __init__(self, n: int) -> None:
        if not isinstance(n, int) or n < 1:
            raise ValueError(f"C_n needs n >= 1, got {n!r}")
        self.n = n
        self.name = f"C{n}"
        self.spec = Spec((), torch.long, self.sample)

    def mul(self, a: Tensor, b: Tensor) -> Tensor:
        return torch.remainder(a + b, self.n)

    def inv(self, a: Tensor) -> Tensor:
        return torch.remainder(-a, self.n)

    def unit(self, *, like: Tensor) -> Tensor:
        return torch.zeros(like.shape[0], dtype=torch.long, device=like.device)

    def sample(self, batch: int, generator: torch.Generator | None = None, dtype: torch.dtype | None = None,
               device: torch.device | str = "cpu") -> Tensor:
        if generator is None:
            return torch.randint(0, self.n, (batch,), device=device)
        return torch.randint(0, self.n, (batch,), generator=generator, device=device)

    def elements(self, *, dtype: torch.dtype | None = None, device: torch.device | str = "cpu",
                 limit: int = 5040) -> Tensor:
        """``0, ..., n - 1``."""
        return torch.arange(self.n, device=device)

    def rotate_plane(self, g: Tensor, v: Tensor) -> Tensor:
        """The action on ``R^2``: rotate each vector ``v`` by ``2 pi g / n``."""
        angle = g.to(v.dtype) * (2 * math.pi / self.n)
        c, s = torch.cos(angle), torch.sin(angle)
        return torch.stack([c * v[..., 0] - s * v[..., 1], s * v[..., 0] + c * v[..., 1]], dim=-1)

    def plane(self) -> TorchAction:
        """Acting on ``R^2`` by rotation."""
        return TorchAction("rotate plane", self, Spec((2,)), self.rotate_plane)

    def images(self, channels: int, size: int) -> TorchAction:
        """Acting on square images ``(channels, size, size)`` by exact quarter turns (n in 1, 2, 4)."""
        if 4 % self.n:
            raise InterpretationError(f"C{self.n} has no exact action on a pixel grid; use n in 1, 2, 4")
        step = 4 // self.n
        return TorchAction("rotate image", self, Spec((channels, size, size)), _GridRotation(step))


class _GridRotation(ByValue):
    def __init__(self, step: int) -> None:
        self.step = step

    def __call__(self, g: Tensor, x: Tensor) -> Tensor:
        return _rot90_batched(g * self.step, x)


# ------------------------------------------------------------------------------------
# S_n


def _compose(p: Tensor, q: Tensor) -> Tensor:
    return torch.gather(p, -1, q)


def _invert(p: Tensor) -> Tensor:
    return torch.argsort(p, dim=-1)


def _permute_rows(p: Tensor, x: Tensor) -> Tensor:
    index = _invert(p).unsqueeze(-1).expand(*p.shape, x.shape[-1])
    return torch.gather(x, -2, index)


def _unpermute_rows(p: Tensor, x: Tensor) -> Tensor:
    return torch.gather(x, -2, p.unsqueeze(-1).expand(*p.shape, x.shape[-1]))  # row p[i] back to row i


class Symmetric(TorchGroup):
    """``S_n`` as batched index vectors; ``mul(p, q) = p o q`` (``q`` first)."""

    n: int
    """The number ``n`` of points permuted."""

    def __init__(self, n: int) -> None:
        if not isinstance(n, int) or n < 1:
            raise ValueError(f"S_n needs n >= 1, got {n!r}")
        self.n = n
        self.name = f"S{n}"
        self.spec = Spec((n,), torch.long, self.sample)
        self._mul_function, self._inv_function = _compose, _invert

    def mul(self, a: Tensor, b: Tensor) -> Tensor:
        return _compose(a, b)

    def inv(self, a: Tensor) -> Tensor:
        return _invert(a)

    def unit(self, *, like: Tensor) -> Tensor:
        return torch.arange(self.n, device=like.device).expand(like.shape[0], self.n)

    def sample(self, batch: int, generator: torch.Generator | None = None, dtype: torch.dtype | None = None,
               device: torch.device | str = "cpu") -> Tensor:
        return torch.argsort(rand((batch, self.n), generator, None, device), dim=-1)

    def elements(self, *, dtype: torch.dtype | None = None, device: torch.device | str = "cpu",
                 limit: int = 5040) -> Tensor:
        """Every permutation, as index vectors ``(n!, n)``; refuses ``n! > limit``."""
        if math.factorial(self.n) > limit:
            raise InterpretationError(f"S{self.n} has {math.factorial(self.n)} elements (limit {limit})")
        return torch.tensor(list(itertools.permutations(range(self.n))), device=device)

    @property
    def raw_size(self) -> int:
        return self.n

    def contains(self, g: Tensor, *, tolerance: float | None = None) -> Tensor:
        """Index vectors that are permutations of ``0, ..., n - 1``."""
        if g.is_floating_point() or g.is_complex():
            return torch.zeros(g.shape[0], dtype=torch.bool, device=g.device)
        return (torch.sort(g, dim=-1).values == torch.arange(self.n, device=g.device)).all(-1)

    def from_indices(self, p: Tensor, dtype: torch.dtype | None = None) -> Tensor:
        """Index vectors as elements of this group: themselves (as for :class:`~.finite_groups.PermutationMatrices`)."""
        return p

    def project(self, raw: Tensor) -> Tensor:
        """``argsort`` of ``n`` scores (permuting the scores permutes the result)."""
        return torch.argsort(raw.reshape(-1, self.n), dim=-1)

    def sets(self, d: int) -> TorchAction:
        """Acting on sets of ``n`` points of ``R^d`` (rows) by permuting rows."""
        return TorchAction("permute rows", self, Spec((self.n, d)), _permute_rows, _unpermute_rows,
                           kind="permute rows")
