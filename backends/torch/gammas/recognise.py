"""What the built-in gammas need to know of a group or an action: finite or not, how to land in it, the layout.

:func:`project` and :func:`raw_size` map an unconstrained network output onto a group;
:func:`enumerable` says whether a group is treated as finite; :func:`orthogonal_layout`
recognises how ``O(d)`` acts on an action's space.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

from markovcat.backends.torch.finite_groups import elements
from markovcat.backends.torch.groups import Cyclic, Orthogonal, Symmetric, TorchAction
from markovcat.backends.torch.linalg import orthonormalise

__all__ = ["project", "raw_size", "enumerable", "orthogonal_layout"]


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
