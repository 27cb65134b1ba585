"""Immutable values: how the core's frozen classes set their fields once and pickle (any protocol) and copy.

:func:`fill` sets the fields of an immutable object in its constructor; :func:`reduce_frozen`
is the ``__reduce__`` of such a class, and :func:`rebuild` undoes it without re-running the
constructor (the fields were checked when the value was first built).  Shared by the syntax,
groups, ``C^G``, equations, rewrites and proofs.
"""

from __future__ import annotations

__all__ = ["fill", "reduce_frozen", "rebuild"]


def fill(obj: object, **fields: object) -> None:
    """Set the fields of an immutable object (in its constructor)."""
    for name, value in fields.items():
        object.__setattr__(obj, name, value)


def reduce_frozen(self: object) -> tuple[object, tuple[object, ...]]:
    """``__reduce__`` for immutable classes: pickle (any protocol) and copy rebuild the fields as they are."""
    cls = type(self)
    state = {
        slot: getattr(self, slot)
        for c in cls.__mro__
        for slot in getattr(c, "__slots__", ())
        if slot != "__weakref__" and hasattr(self, slot)
    }
    state.update(getattr(self, "__dict__", {}))
    return (rebuild, (cls, state))


def rebuild(cls: type, state: dict[str, object]) -> object:
    """Undo :func:`reduce_frozen` (the constructor is not re-run: the fields were checked when first built)."""
    obj: object = object.__new__(cls)
    for name, value in state.items():
        object.__setattr__(obj, name, value)
    return obj
