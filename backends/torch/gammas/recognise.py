"""What the built-in gammas ask of a group or an action, by the protocols of :mod:`~markovcat.backends.torch.groups`.

:func:`project` and :func:`raw_size` are a group's ``project(raw)`` and ``raw_size``;
:func:`enumerable` is its ``finite``; :func:`orthogonal_layout` reads the ``kind`` an
``O(d)`` action declares.  Nothing here probes a group or an action numerically: a group
or action that does not say what it is gets the gammas that need not know.
"""

from __future__ import annotations

from typing import Any

from torch import Tensor

from markovcat.backends.torch.groups import Orthogonal, Symmetric, TorchAction

__all__ = ["project", "raw_size", "enumerable", "orthogonal_layout"]


def enumerable(group: Any) -> bool:
    """Whether ``group`` lists its elements: ``group.finite`` (for another object, whether it has ``elements()``)."""
    finite = getattr(group, "finite", None)
    return callable(getattr(group, "elements", None)) if finite is None else bool(finite)


def project(group: Any, raw: Tensor) -> Tensor:
    """``group.project(raw)``: an unconstrained network output mapped onto the group (see the groups' protocol)."""
    own = getattr(group, "project", None)
    if not callable(own):
        raise TypeError(f"no projection onto {group.name}: define {type(group).__name__}.project(raw) and raw_size, "
                        "or pass a Gamma")
    return own(raw)  # type: ignore[no-any-return]


def raw_size(group: Any) -> int:
    """``group.raw_size``: the size of the unconstrained output that :func:`project` maps onto ``group``."""
    size = getattr(group, "raw_size", None)
    if not isinstance(size, int):
        raise TypeError(f"no network gamma for {group.name}: define {type(group).__name__}.project(raw) and "
                        "raw_size, or pass a Gamma")
    return size


def orthogonal_layout(group: Any, action: TorchAction) -> str:
    """How O(d) acts on ``action``'s space: ``"rows"`` (``x g^T`` on ``(n, d)`` clouds) or ``"columns"`` (``g x``).

    Read from the ``kind`` the action declares (``O(d).points(n)``, ``O(d).left(n)``); any
    other action raises ``TypeError``.
    """
    if not isinstance(group, Orthogonal):
        raise TypeError(f"{group.name} is not O(d)")
    kind = getattr(action, "kind", None)
    if kind in ("rows", "columns"):
        return str(kind)
    raise TypeError(f"no built-in O(d) gamma for {action!r} (only point clouds x g^T and matrices g x, "
                    "declared with kind='rows' or kind='columns'): build a Gamma with Gamma.from_callable")


def _acts_trivially(action: TorchAction) -> bool:
    """Whether ``action`` declares itself trivial (``group.trivial(spec)``)."""
    return getattr(action, "kind", None) == "trivial"


def _permutes_rows(group: Any, action: TorchAction) -> bool:
    """Whether ``action`` is ``S_n`` (index vectors) permuting the rows of ``(n, d)`` sets (:meth:`Symmetric.sets`)."""
    return isinstance(group, Symmetric) and getattr(action, "kind", None) == "permute rows"
