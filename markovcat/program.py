"""Program syntax: write a diagram as a Python function over wires.

Inside a function decorated with :func:`program`, arguments are wires, boxes (and
whole diagrams) are called like functions, a wire used twice is copied and a wire
never used is discarded.  The seed's sampling program
``G ~ gamma(x); Y ~ k(G^-1 . x); return G . Y`` reads:

>>> from markovcat.syntax import Ty, Box
>>> G, X, Y = Ty("G"), Ty("X"), Ty("Y")
>>> gamma, k = Box("gamma", X, G), Box("k", X, Y)
>>> inv = Box("inv", G, G, deterministic=True)
>>> act_x = Box("act_X", G @ X, X, deterministic=True)
>>> act_y = Box("act_Y", G @ Y, Y, deterministic=True)
>>> @program(X, Y)
... def sym_k(x):
...     g = gamma(x)
...     y = k(act_x(inv(g), x))
...     return act_y(g, y)
>>> sym_k.dom, sym_k.cod, len(sym_k)
(Ty('X'), Ty('Y'), 5)
"""

from __future__ import annotations

import contextvars
from collections.abc import Callable, Sequence
from typing import Any

from markovcat.syntax import Diagram, Generator, Node, Ty, TypeMismatch, add_generator

__all__ = ["Wire", "program"]


class Wire:
    """A wire of a diagram under construction; only meaningful inside its program."""

    __slots__ = ("builder", "id", "atom")

    def __init__(self, builder: _Builder, wire: int, atom: str) -> None:
        self.builder, self.id, self.atom = builder, wire, atom

    @property
    def ty(self) -> Ty:
        """The wire's type (one atom)."""
        return Ty(self.atom)

    def __repr__(self) -> str:
        return f"<wire {self.id} : {self.atom} in program {self.builder.name!r}>"

    def __bool__(self) -> bool:
        raise TypeError(
            "a wire is a symbolic value: its truth is unknown while the diagram is built "
            "(branching on wires is not supported inside @mc.program)"
        )


class _Builder:
    def __init__(self, name: str) -> None:
        self.name = name
        self.nodes: list[Node] = []
        self.signature: dict[str, Generator] = {}
        self.fresh = 0

    def new_wire(self, atom: str) -> Wire:
        wire = Wire(self, self.fresh, atom)
        self.fresh += 1
        return wire


_ACTIVE: contextvars.ContextVar[_Builder | None] = contextvars.ContextVar("markovcat_program", default=None)


def apply(diagram: Diagram, args: Sequence[object]) -> Any:
    """Apply ``diagram`` to wires of the active program; returns its output wire(s)."""
    builder = _ACTIVE.get()
    name = _describe(diagram)
    if builder is None:
        raise TypeError(
            f"{name} was called outside a program: call boxes on wires inside a function "
            "decorated with @mc.program(dom, cod), or compose diagrams with >> and @"
        )
    wires: list[Wire] = []
    for position, wire in enumerate(_flatten(args)):
        if not isinstance(wire, Wire):
            raise TypeError(f"argument {position} of {name} is {type(wire).__name__} {wire!r}, not a wire")
        wires.append(wire)
        if wire.builder is not builder:
            raise TypeError(
                f"argument {position} of {name} is a wire of program {wire.builder.name!r}, "
                f"not of the program {builder.name!r} being built"
            )
    got = Ty(*(w.atom for w in wires))
    if got != diagram.dom:
        raise TypeMismatch(
            f"in program {builder.name!r}, {name} expects {diagram.dom} but was given {got}"
            + _where(diagram.dom, got)
        )
    for gen in diagram.signature.values():
        add_generator(builder.signature, gen)
    rename: dict[int, Wire] = dict(zip(diagram.inputs, wires))
    for node in diagram.nodes:
        outs = [builder.new_wire(atom) for atom in node.gen.cod.atoms]
        builder.nodes.append(Node(node.gen, tuple(rename[w].id for w in node.ins), tuple(w.id for w in outs)))
        rename.update(zip(node.outs, outs))
    results = [rename[w] for w in diagram.outputs]
    if len(results) == 1:
        return results[0]
    return None if not results else tuple(results)


def _describe(diagram: Diagram) -> str:
    gen = getattr(diagram, "generator", None)
    if gen is not None:
        return f"box {gen.name!r}"
    return f"diagram {diagram._name!r}" if diagram._name else "the diagram"


def _flatten(args: Sequence[object]) -> list[object]:
    flat: list[object] = []
    for arg in args:
        if isinstance(arg, (tuple, list)):
            flat.extend(arg)
        else:
            flat.append(arg)
    return flat


def _where(expected: Ty, got: Ty) -> str:
    for i, (x, y) in enumerate(zip(expected.atoms, got.atoms)):
        if x != y:
            return f" (argument {i} has type {y}, expected {x})"
    return f" ({len(got)} wires given, {len(expected)} expected)"


def program(dom: Ty, cod: Ty) -> Callable[[Callable[..., Any]], Diagram]:
    """Decorator: run the function once on the input wires and return its diagram.

    The function takes one wire per atom of ``dom`` and returns a wire, a tuple of
    wires, or ``None`` (for ``cod == Ty()``), matching ``cod``.
    """
    for what, ty in (("domain", dom), ("codomain", cod)):
        if not isinstance(ty, Ty):
            raise TypeError(f"@program needs a Ty as {what}, got {type(ty).__name__} {ty!r}")

    def build(function: Callable[..., Any]) -> Diagram:
        name = getattr(function, "__name__", "program")
        builder = _Builder(name)
        inputs = [builder.new_wire(atom) for atom in dom.atoms]
        token = _ACTIVE.set(builder)
        try:
            result = function(*inputs)
        finally:
            _ACTIVE.reset(token)
        returned = [] if result is None else _flatten(result if isinstance(result, (tuple, list)) else [result])
        outputs: list[Wire] = []
        for position, wire in enumerate(returned):
            if not isinstance(wire, Wire) or wire.builder is not builder:
                raise TypeError(f"program {name!r} returned {wire!r} at position {position}, not one of its wires")
            outputs.append(wire)
        got = Ty(*(w.atom for w in outputs))
        if got != cod:
            raise TypeMismatch(f"program {name!r} returns {got} but its declared codomain is {cod}" + _where(cod, got))
        return Diagram._raw(
            dom,
            cod,
            tuple(w.id for w in inputs),
            tuple(builder.nodes),
            tuple(w.id for w in outputs),
            builder.fresh,
            builder.signature,
            name,
        )

    return build
