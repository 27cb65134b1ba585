"""Free syntax: types, boxes and diagrams of a free Markov category.

A diagram is stored as a *term graph* (Fritz & Liang, arXiv 2204.02284): wires are
numbered vertices, each produced exactly once (by an input port or by one box
output); a box occurrence (a *node*) reads an ordered tuple of wires and produces
an ordered tuple of fresh wires.  Copying is a wire read more than once, discarding
a wire read by nothing.  Composition is substitution of wires, defined once in
:meth:`Diagram.then`; the tensor is disjoint union, :meth:`Diagram.tensor`.

``==`` on diagrams is *syntactic* (same term graph, same numbering).  Equality of
morphisms in the free Markov category is :func:`markovcat.equal`.

>>> X, Y = Ty("X"), Ty("Y")
>>> f = Box("f", X, Y, deterministic=True)
>>> (Copy(X) >> (f @ f)).cod
Ty('Y', 'Y')
>>> f >> Box("g", X, Y)  # doctest: +ELLIPSIS
Traceback (most recent call last):
...
markovcat.syntax.TypeMismatch: cannot compose f : X -> Y with g : X -> Y: the codomain Y of f does not match ...
"""

from __future__ import annotations

from collections.abc import Hashable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

__all__ = [
    "TypeMismatch",
    "Ty",
    "Generator",
    "Node",
    "Diagram",
    "Box",
    "Id",
    "Copy",
    "Discard",
    "Swap",
]


class TypeMismatch(TypeError):
    """Two types that should agree do not (composition, tensor, program calls)."""


class Ty:
    """A type: a finite sequence of atomic object names; ``Ty()`` is the unit ``I``.

    >>> Ty("X") @ Ty("Y") == Ty("X", "Y")
    True
    >>> str(Ty())
    'I'
    """

    __slots__ = ("atoms",)
    atoms: tuple[str, ...]

    def __init__(self, *atoms: str) -> None:
        for atom in atoms:
            if not isinstance(atom, str) or not atom:
                raise TypeError(f"a type is built from non-empty strings, got {atom!r}")
        object.__setattr__(self, "atoms", tuple(atoms))

    def __setattr__(self, name: str, value: object) -> None:
        raise AttributeError("Ty is immutable")

    def __matmul__(self, other: Ty) -> Ty:
        if not isinstance(other, Ty):
            raise TypeError(f"cannot tensor a type with {type(other).__name__} {other!r}")
        return Ty(*self.atoms, *other.atoms)

    def __len__(self) -> int:
        return len(self.atoms)

    def __reduce__(self) -> tuple[type, tuple[str, ...]]:
        return (Ty, self.atoms)

    def __iter__(self) -> Iterator[Ty]:
        return (Ty(a) for a in self.atoms)

    def __getitem__(self, key: int | slice) -> Ty:
        if isinstance(key, slice):
            return Ty(*self.atoms[key])
        return Ty(self.atoms[key])

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Ty) and self.atoms == other.atoms

    def __hash__(self) -> int:
        return hash(("Ty", self.atoms))

    def __repr__(self) -> str:
        return "Ty(" + ", ".join(map(repr, self.atoms)) + ")"

    def __str__(self) -> str:
        return " @ ".join(self.atoms) if self.atoms else "I"


@dataclass(frozen=True)
class Generator:
    """A generating box of the free Markov category (its identity is all five fields).

    ``data`` is optional hashable data that is part of the box's identity, for boxes
    that stand for a construction (e.g. the kernel an ``ave`` box averages).
    """

    name: str
    dom: Ty
    cod: Ty
    deterministic: bool = False
    data: Hashable = None

    def __str__(self) -> str:
        kind = "deterministic" if self.deterministic else "stochastic"
        return f"{self.name} : {self.dom} -> {self.cod} ({kind})"


class Node(NamedTuple):
    """One occurrence of a generator: the wires it reads and the fresh wires it writes."""

    gen: Generator
    ins: tuple[int, ...]
    outs: tuple[int, ...]


class Diagram:
    """A morphism of the free Markov category, stored as a term graph.

    Invariants: ``inputs`` are distinct wires, one per atom of ``dom``; every other
    wire is written by exactly one node; nodes are listed in a topological order;
    ``outputs`` (one per atom of ``cod``) may repeat wires (copying).
    """

    __slots__ = ("dom", "cod", "inputs", "nodes", "outputs", "n_wires", "signature", "_hash", "_name")
    dom: Ty
    cod: Ty
    inputs: tuple[int, ...]
    nodes: tuple[Node, ...]
    outputs: tuple[int, ...]
    n_wires: int
    signature: Mapping[str, Generator]
    _hash: int | None
    _name: str | None

    def __init__(
        self,
        dom: Ty,
        cod: Ty,
        inputs: Sequence[int],
        nodes: Sequence[Node],
        outputs: Sequence[int],
        n_wires: int | None = None,
    ) -> None:
        """Build a diagram from an explicit term graph, checking every invariant."""
        inputs, nodes, outputs = tuple(inputs), tuple(Node(*n) for n in nodes), tuple(outputs)
        types: dict[int, str] = {}
        if len(inputs) != len(dom):
            raise TypeMismatch(f"{len(inputs)} input wires for a domain {dom} of {len(dom)} atoms")
        for wire, atom in zip(inputs, dom.atoms):
            _write(types, wire, atom, "an input")
        signature: dict[str, Generator] = {}
        for node in nodes:
            _add_generator(signature, node.gen)
            if len(node.ins) != len(node.gen.dom) or len(node.outs) != len(node.gen.cod):
                raise TypeMismatch(f"box {node.gen.name!r} has the wrong number of wires")
            for wire, atom in zip(node.ins, node.gen.dom.atoms):
                if wire not in types:
                    raise ValueError(f"box {node.gen.name!r} reads wire {wire} before it is written")
                if types[wire] != atom:
                    raise TypeMismatch(f"box {node.gen.name!r} expects {atom} but wire {wire} has type {types[wire]}")
            for wire, atom in zip(node.outs, node.gen.cod.atoms):
                _write(types, wire, atom, f"box {node.gen.name!r}")
        if tuple(types.get(w, "?") for w in outputs) != cod.atoms:
            got = " @ ".join(types.get(w, "?") for w in outputs) or "I"
            raise TypeMismatch(f"the output wires have types {got} but the codomain is {cod}")
        size = max(types, default=-1) + 1
        self._set(dom, cod, inputs, nodes, outputs, max(size, n_wires or 0), signature)

    # -- internal fast constructor -------------------------------------------------
    @classmethod
    def _raw(
        cls,
        dom: Ty,
        cod: Ty,
        inputs: tuple[int, ...],
        nodes: tuple[Node, ...],
        outputs: tuple[int, ...],
        n_wires: int,
        signature: Mapping[str, Generator],
        name: str | None = None,
    ) -> Diagram:
        self = object.__new__(Diagram)
        self._set(dom, cod, inputs, nodes, outputs, n_wires, signature, name)
        return self

    def _set(self, dom, cod, inputs, nodes, outputs, n_wires, signature, name=None) -> None:  # type: ignore[no-untyped-def]
        for slot, value in zip(
            Diagram.__slots__,
            (dom, cod, inputs, nodes, outputs, n_wires, signature, None, name),
        ):
            object.__setattr__(self, slot, value)

    def __setattr__(self, name: str, value: object) -> None:
        raise AttributeError("diagrams are immutable")

    def __reduce__(self) -> tuple[object, tuple[object, ...]]:
        fields = (self.dom, self.cod, self.inputs, self.nodes, self.outputs, self.n_wires)
        return (Diagram._raw, (*fields, dict(self.signature), self._name))

    # -- composition, defined once -----------------------------------------------
    def then(self, other: Diagram) -> Diagram:
        """Sequential composition ``self >> other`` (first self, then other)."""
        _check_operand(other, ">>")
        if self.cod != other.dom:
            raise TypeMismatch(
                f"cannot compose {self.short()} with {other.short()}: the codomain {self.cod} of "
                f"{self.label()} does not match the domain {other.dom} of {other.label()}"
                + _first_difference(self.cod, other.dom)
            )
        signature = _merge_signatures(self.signature, other.signature)
        rename = [-1] * other.n_wires
        for wire, source in zip(other.inputs, self.outputs):
            rename[wire] = source
        fresh = self.n_wires
        for node in other.nodes:
            for wire in node.outs:
                rename[wire] = fresh
                fresh += 1
        nodes = self.nodes + tuple(
            Node(n.gen, tuple([rename[w] for w in n.ins]), tuple([rename[w] for w in n.outs]))
            for n in other.nodes
        )
        outputs = tuple([rename[w] for w in other.outputs])
        return Diagram._raw(self.dom, other.cod, self.inputs, nodes, outputs, fresh, signature)

    def tensor(self, other: Diagram) -> Diagram:
        """Parallel composition ``self @ other``."""
        _check_operand(other, "@")
        signature = _merge_signatures(self.signature, other.signature)
        k = self.n_wires
        nodes = self.nodes + tuple(
            Node(n.gen, tuple([w + k for w in n.ins]), tuple([w + k for w in n.outs])) for n in other.nodes
        )
        return Diagram._raw(
            self.dom @ other.dom,
            self.cod @ other.cod,
            self.inputs + tuple([w + k for w in other.inputs]),
            nodes,
            self.outputs + tuple([w + k for w in other.outputs]),
            k + other.n_wires,
            signature,
        )

    def __rshift__(self, other: Diagram) -> Diagram:
        return self.then(other)

    def __rrshift__(self, other: object) -> Diagram:
        _check_operand(other, ">>")
        raise AssertionError  # pragma: no cover

    def __matmul__(self, other: Diagram) -> Diagram:
        return self.tensor(other)

    def __rmatmul__(self, other: object) -> Diagram:
        _check_operand(other, "@")
        raise AssertionError  # pragma: no cover

    def __call__(self, *wires: object) -> object:
        """Inside an :func:`markovcat.program`, apply this diagram to wires."""
        from markovcat.program import apply

        return apply(self, wires)

    # -- inspection ------------------------------------------------------------------
    @property
    def boxes(self) -> tuple[Generator, ...]:
        """The generator of every node, in order (with repetitions)."""
        return tuple(n.gen for n in self.nodes)

    def wire_types(self) -> dict[int, str]:
        """The atomic type of every wire."""
        types = dict(zip(self.inputs, self.dom.atoms))
        for node in self.nodes:
            types.update(zip(node.outs, node.gen.cod.atoms))
        return types

    def uses(self) -> dict[int, list[tuple[int, int]]]:
        """For every wire, the places reading it: ``(node index, port)``, ``(-1, output index)``."""
        readers: dict[int, list[tuple[int, int]]] = {w: [] for w in self.wire_types()}
        for i, node in enumerate(self.nodes):
            for port, wire in enumerate(node.ins):
                readers[wire].append((i, port))
        for j, wire in enumerate(self.outputs):
            readers[wire].append((-1, j))
        return readers

    @property
    def is_deterministic(self) -> bool:
        """Syntactically deterministic: built from deterministic boxes only."""
        return all(n.gen.deterministic for n in self.nodes)

    def label(self) -> str:
        return self._name or "the diagram"

    def short(self) -> str:
        return f"{self._name or 'a diagram'} : {self.dom} -> {self.cod}"

    def __eq__(self, other: object) -> bool:
        if self is other:
            return True
        if not isinstance(other, Diagram):
            return NotImplemented
        return (
            self.dom == other.dom
            and self.cod == other.cod
            and self.inputs == other.inputs
            and self.outputs == other.outputs
            and self.nodes == other.nodes
        )

    def __hash__(self) -> int:
        if self._hash is None:
            value = hash((self.dom, self.cod, self.inputs, self.nodes, self.outputs))
            object.__setattr__(self, "_hash", value)
            return value
        return self._hash

    def __repr__(self) -> str:
        if self._name is not None:
            return self._name
        names = ", ".join(dict.fromkeys(n.gen.name for n in self.nodes))
        return f"<Diagram {self.dom} -> {self.cod}: {len(self.nodes)} boxes ({names})>"

    def __len__(self) -> int:
        return len(self.nodes)

    # -- drawing (see markovcat.drawing) -----------------------------------------------
    def draw(self, path: str | Path | None = None, **options: object) -> object:
        """Draw to ``path`` (``.svg``, ``.png`` or ``.pdf``); without a path return the figure."""
        from markovcat.drawing import draw

        return draw(self, path, **options)

    def _repr_svg_(self) -> str:
        """Jupyter shows a diagram as its picture."""
        return _svg(self.draw())

    def to_tikz(self, **options: object) -> str:
        """A TikZ picture of the diagram."""
        from markovcat.drawing import to_tikz

        return to_tikz(self, **options)


def _svg(figure: object) -> str:
    import io

    buffer = io.StringIO()
    figure.savefig(buffer, format="svg")  # type: ignore[attr-defined]
    return buffer.getvalue()


def _write(types: dict[int, str], wire: int, atom: str, where: str) -> None:
    if not isinstance(wire, int) or wire < 0:
        raise ValueError(f"wires are non-negative integers, got {wire!r}")
    if wire in types:
        raise ValueError(f"wire {wire} is written twice (again by {where})")
    types[wire] = atom


def _check_operand(other: object, op: str) -> None:
    if not isinstance(other, Diagram):
        raise TypeError(
            f"{op!r} combines two diagrams, but one operand is {type(other).__name__} {other!r}"
            + (" (use mc.Id(ty) for the identity on a type)" if isinstance(other, Ty) else "")
        )


def _first_difference(a: Ty, b: Ty) -> str:
    for i, (x, y) in enumerate(zip(a.atoms, b.atoms)):
        if x != y:
            return f" (wire {i}: {x} vs {y})"
    if len(a) != len(b):
        return f" ({len(a)} wires vs {len(b)})"
    return ""  # pragma: no cover


def _add_generator(signature: dict[str, Generator], gen: Generator) -> None:
    known = signature.setdefault(gen.name, gen)
    if known != gen:
        raise ValueError(_clash(known, gen))


def _clash(a: Generator, b: Generator) -> str:
    return (
        f"two different boxes are both named {a.name!r}: [{a}] and [{b}]; "
        "a name identifies a box, so rename one of them"
    )


def _merge_signatures(a: Mapping[str, Generator], b: Mapping[str, Generator]) -> Mapping[str, Generator]:
    if len(b) > len(a):
        a, b = b, a
    new = False
    for name, gen in b.items():
        known = a.get(name)
        if known is None:
            new = True
        elif known != gen:
            raise ValueError(_clash(known, gen))
    return {**a, **b} if new else a


_EMPTY: Mapping[str, Generator] = {}


class Box(Diagram):
    """A generating box ``name : dom -> cod``; stochastic unless ``deterministic=True``.

    >>> k = Box("k", Ty("X"), Ty("Y"))
    >>> k.name, k.deterministic
    ('k', False)
    """

    __slots__ = ("generator",)
    generator: Generator

    def __init__(self, name: str, dom: Ty, cod: Ty, deterministic: bool = False, data: Hashable = None) -> None:
        if not isinstance(name, str) or not name:
            raise TypeError(f"a box name is a non-empty string, got {name!r}")
        for what, ty in (("domain", dom), ("codomain", cod)):
            if not isinstance(ty, Ty):
                raise TypeError(f"the {what} of box {name!r} must be a Ty, got {type(ty).__name__} {ty!r}")
        try:
            hash(data)
        except TypeError:
            raise TypeError(f"the data of box {name!r} must be hashable, got {type(data).__name__}") from None
        gen = Generator(name, dom, cod, bool(deterministic), data)
        k, m = len(dom), len(cod)
        ins = tuple(range(k))
        outs = tuple(range(k, k + m))
        self._set(dom, cod, ins, (Node(gen, ins, outs),), outs, k + m, {name: gen}, name)
        object.__setattr__(self, "generator", gen)

    @property
    def name(self) -> str:
        return self.generator.name

    def __reduce__(self) -> tuple[object, tuple[object, ...]]:
        return (Box, (self.name, self.dom, self.cod, self.deterministic, self.generator.data))

    @property
    def deterministic(self) -> bool:
        return self.generator.deterministic

    def __repr__(self) -> str:
        det = ", deterministic=True" if self.deterministic else ""
        data = "" if self.generator.data is None else ", data=..."
        return f"Box({self.name!r}, {self.dom!r}, {self.cod!r}{det}{data})"


def _structural(dom: Ty, cod: Ty, inputs: tuple[int, ...], outputs: tuple[int, ...], name: str) -> Diagram:
    return Diagram._raw(dom, cod, inputs, (), outputs, len(inputs), _EMPTY, name)


def _check_ty(ty: object, what: str) -> Ty:
    if not isinstance(ty, Ty):
        raise TypeError(f"{what} takes a Ty, got {type(ty).__name__} {ty!r}")
    return ty


def Id(ty: Ty) -> Diagram:
    """The identity on ``ty``."""
    _check_ty(ty, "Id")
    wires = tuple(range(len(ty)))
    return _structural(ty, ty, wires, wires, f"Id({ty})")


def Copy(ty: Ty, n: int = 2) -> Diagram:
    """``copy_ty : ty -> ty @ ... @ ty`` (``n`` copies); on ``X @ Y`` it is ``X @ Y @ X @ Y``.

    ``Copy(ty, 1)`` is the identity and ``Copy(ty, 0)`` is ``Discard(ty)``.
    """
    _check_ty(ty, "Copy")
    if not isinstance(n, int) or n < 0:
        raise ValueError(f"Copy needs a number of copies n >= 0, got {n!r}")
    wires = tuple(range(len(ty)))
    cod = Ty(*(ty.atoms * n))
    return _structural(ty, cod, wires, wires * n, f"Copy({ty})" if n == 2 else f"Copy({ty}, {n})")


def Discard(ty: Ty) -> Diagram:
    """``del_ty : ty -> I``."""
    _check_ty(ty, "Discard")
    return _structural(ty, Ty(), tuple(range(len(ty))), (), f"Discard({ty})")


def Swap(a: Ty, b: Ty) -> Diagram:
    """``swap : a @ b -> b @ a``."""
    _check_ty(a, "Swap")
    _check_ty(b, "Swap")
    left, right = tuple(range(len(a))), tuple(range(len(a), len(a) + len(b)))
    return _structural(a @ b, b @ a, left + right, right + left, f"Swap({a}, {b})")
