"""The built-in gammas by name (:data:`NAMED`, read by :func:`named`) and :func:`as_gamma`, the one conversion.

The names that ``mc.symmetrise(..., gamma=name)`` resolves: ``"haar"``, ``"canonical"``,
``"canonical-random-ties"``, ``"frame"``, ``"recursive"`` and ``"learned"``; which builder
each calls for which group is tabulated in the guide (``docs/how-to/gammas.md``).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from types import MappingProxyType
from typing import Any

from markovcat.backends.torch.frames import Lexsort, OrbitArgmax, PCACanonicaliser, UniformPCAFrame
from markovcat.backends.torch.gammas.builders import (
    _LIMIT,
    canonical,
    canonical_random_ties,
    from_haar,
    noise_outsourced,
    recursive,
    uniform_frame,
)
from markovcat.backends.torch.gammas.gamma import Gamma
from markovcat.backends.torch.gammas.networks import GramNet, GroupNet
from markovcat.backends.torch.gammas.recognise import (
    _acts_trivially,
    _permutes_rows,
    enumerable,
    orthogonal_layout,
    raw_size,
)
from markovcat.backends.torch.groups import Orthogonal, TorchAction, TorchGroup

__all__ = ["NAMED", "named", "as_gamma"]


def _numel(action: TorchAction) -> int:
    shape = action.spec.shape
    if None in shape:
        raise TypeError(f"{action!r} has a free dimension: a network gamma needs fixed sizes")
    return math.prod(int(s) for s in shape if s is not None)


def _named_haar(group: Any, action: TorchAction, output: TorchAction, hidden: int, validate: bool) -> Gamma:
    return from_haar(group, action)


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
        return from_haar(group, action)  # a finite group is its own frame
    raise TypeError(f"no built-in frame for {group.name}: pass a Gamma (e.g. gammas.uniform_frame(frames, ...))")


#: The built-in gammas by name: ``name -> builder(group, action, output, hidden, validate)``.  A constant table,
#: read by :func:`named`; the guide (``docs/how-to/gammas.md``) says which groups each serves.
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
    after checking it was built for this group and an equal action (actions compare by value); a
    callable goes through :meth:`Gamma.from_callable` (guarantee ``assumed`` unless it is one of the library's frames).
    """
    if isinstance(obj, str):
        return named(obj, group, action, output, hidden=hidden, validate=validate)
    if isinstance(obj, Gamma):
        if obj.group is not group or obj.action != action:
            differences = obj.action.differences(action) or [f"the group: {obj.group.name} vs {group.name}"]
            raise TypeError(f"the gamma {obj.name} was built for {obj.action!r}, but the model's input is {action!r}; "
                            f"they differ in {'; '.join(differences)}: build the gamma for the model's group and "
                            "input action")
        return obj
    if callable(obj):
        return Gamma.from_callable(obj, group, action)
    raise TypeError(f"a gamma is a name ({', '.join(NAMED)}), a Gamma or a function of a batch, got "
                    f"{type(obj).__name__} {obj!r}")
