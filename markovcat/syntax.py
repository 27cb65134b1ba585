"""Free syntax: types, boxes and diagrams of a free Markov category.

A diagram is stored as a *term graph* (Fritz & Liang, arXiv 2204.02284): wires are
numbered vertices, each produced exactly once (by an input port or by one box
output); a box occurrence (a *node*) reads an ordered tuple of wires and produces
an ordered tuple of fresh wires.  Copying is a wire read more than once, discarding
a wire read by nothing.  Composition is substitution of wires, defined once in
:meth:`Diagram.then`; the tensor is disjoint union, :meth:`Diagram.tensor`.  The term
graph's parts (:class:`~markovcat.termgraph.Node`, the lazy join of large folds) live in
:mod:`markovcat.termgraph`; the frozen-value helpers in :mod:`markovcat.frozen`.

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

import threading
from collections.abc import Hashable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from itertools import islice
from pathlib import Path

from markovcat.frozen import rebuild as _rebuild  # noqa: F401 - values pickled before frozen.py name it here
from markovcat.termgraph import EAGER as _EAGER
from markovcat.termgraph import Node
from markovcat.termgraph import eager as _eager
from markovcat.termgraph import join as _join

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
    "Signature",
]


class TypeMismatch(TypeError):
    """Two types that should agree do not (composition, tensor, program calls)."""


class Ty:
    """A type: a finite sequence of atomic object names; ``Ty()`` is the unit ``I``.

    ``a @ b`` costs O(1): the atoms of a long tensor are joined once, on first use of
    :attr:`atoms` (so a type built by a fold ``t = t @ x`` costs linear time in all).

    >>> Ty("X") @ Ty("Y") == Ty("X", "Y")
    True
    >>> str(Ty())
    'I'
    """

    __slots__ = ("_atoms", "_parts", "_len", "_hash")
    _atoms: tuple[str, ...] | None
    _parts: tuple[Ty, Ty] | None
    _len: int
    _hash: int | None

    def __init__(self, *atoms: str) -> None:
        for atom in atoms:
            if not isinstance(atom, str) or not atom:
                raise TypeError(f"a type is built from non-empty strings, got {atom!r}")
        object.__setattr__(self, "_atoms", tuple(atoms))
        object.__setattr__(self, "_parts", None)
        object.__setattr__(self, "_len", len(atoms))
        object.__setattr__(self, "_hash", None)

    @classmethod
    def _of(cls, atoms: tuple[str, ...]) -> Ty:
        """A type from atoms already checked (internal)."""
        self = object.__new__(cls)
        object.__setattr__(self, "_atoms", atoms)
        object.__setattr__(self, "_parts", None)
        object.__setattr__(self, "_len", len(atoms))
        object.__setattr__(self, "_hash", None)
        return self

    @property
    def atoms(self) -> tuple[str, ...]:
        """The atom names, in order."""
        atoms = self._atoms
        if atoms is None:
            atoms = _join_atoms(self)
        return atoms

    def __setattr__(self, name: str, value: object) -> None:
        raise AttributeError("Ty is immutable")

    def __matmul__(self, other: Ty) -> Ty:
        if not isinstance(other, Ty):
            raise TypeError(f"cannot tensor a type with {type(other).__name__} {other!r}")
        if not other._len:
            return self
        if not self._len:
            return other
        if self._len + other._len <= _EAGER and self._atoms is not None and other._atoms is not None:
            return Ty._of(self._atoms + other._atoms)
        joined = object.__new__(Ty)
        object.__setattr__(joined, "_atoms", None)
        object.__setattr__(joined, "_parts", (self, other))
        object.__setattr__(joined, "_len", self._len + other._len)
        object.__setattr__(joined, "_hash", None)
        return joined

    def __len__(self) -> int:
        return self._len

    def __reduce__(self) -> tuple[type, tuple[str, ...]]:
        return (Ty, self.atoms)

    def __iter__(self) -> Iterator[Ty]:
        return (Ty._of((a,)) for a in self.atoms)

    def __getitem__(self, key: int | slice) -> Ty:
        if isinstance(key, slice):
            return Ty._of(self.atoms[key])
        return Ty._of((self.atoms[key],))

    def __eq__(self, other: object) -> bool:
        if self is other:
            return True
        return isinstance(other, Ty) and self._len == other._len and self.atoms == other.atoms

    def __hash__(self) -> int:
        value = self._hash
        if value is None:
            value = hash(("Ty", self.atoms))
            object.__setattr__(self, "_hash", value)
        return value

    def __repr__(self) -> str:
        return "Ty(" + ", ".join(map(repr, self.atoms)) + ")"

    def __str__(self) -> str:
        return " @ ".join(self.atoms) if self._len else "I"




def _join_atoms(ty: Ty) -> tuple[str, ...]:
    """The atoms of a type built by ``@``, joined iteratively (no recursion) and cached."""
    out: list[str] = []
    stack = [ty]
    while stack:
        t = stack.pop()
        atoms = t._atoms
        if atoms is not None:
            out.extend(atoms)
            continue
        parts = t._parts
        if parts is None:  # joined meanwhile by another thread
            out.extend(t.atoms)
            continue
        stack.append(parts[1])
        stack.append(parts[0])
    result = tuple(out)
    object.__setattr__(ty, "_atoms", result)
    object.__setattr__(ty, "_parts", None)
    return result


@dataclass(frozen=True, eq=False)
class Generator:
    """A generating box of the free Markov category (its identity is all five fields).

    ``data`` is optional hashable data that is part of the box's identity, for boxes
    that stand for a construction (e.g. the kernel an ``ave`` box averages).
    """

    name: str
    """The name that identifies the generator (with its types and data)."""
    dom: Ty
    """The input type."""
    cod: Ty
    """The output type."""
    deterministic: bool = False
    """Whether it is deterministic (a function) rather than a stochastic kernel."""
    data: Hashable = None
    _hash: int = field(default=0, init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_hash", hash((self.name, self.dom, self.cod, self.deterministic, self.data)))

    def __hash__(self) -> int:
        return self._hash

    def __eq__(self, other: object) -> bool:
        if self is other:
            return True
        if not isinstance(other, Generator):
            return NotImplemented
        return self._hash == other._hash and (
            self.name == other.name
            and self.deterministic == other.deterministic
            and self.dom == other.dom
            and self.cod == other.cod
            and self.data == other.data
        )

    def __reduce__(self) -> tuple[object, tuple[object, ...]]:
        return (Generator, (self.name, self.dom, self.cod, self.deterministic, self.data))

    def __str__(self) -> str:
        kind = "deterministic" if self.deterministic else "stochastic"
        return f"{self.name} : {self.dom} -> {self.cod} ({kind})"


class Signature(Mapping[str, Generator]):
    """The generators a diagram uses, by name: a read-only mapping.

    Diagrams built from one another share one store: a view sees the first ``len(view)``
    names added.  Adding names to the newest view appends to the store (O(names added));
    adding to an older view copies it first.  So ``>>`` and ``@`` in a loop cost the size
    of the smaller operand, and every view still reads exactly its own names.
    """

    __slots__ = ("_table", "_order", "_size")
    _table: dict[str, tuple[Generator, int]]
    _order: list[str]
    _size: int

    def __init__(self, generators: Mapping[str, Generator] | None = None) -> None:
        table: dict[str, tuple[Generator, int]] = {}
        order: list[str] = []
        for name, gen in (generators or {}).items():
            if not isinstance(gen, Generator) or gen.name != name:
                raise TypeError(f"a signature maps a box name to its Generator, got {name!r}: {gen!r}")
            table[name] = (gen, len(order))
            order.append(name)
        self._table, self._order, self._size = table, order, len(order)

    def __getitem__(self, name: str) -> Generator:
        entry = self._table.get(name)
        if entry is None or entry[1] >= self._size:
            raise KeyError(name)
        return entry[0]

    def get(self, name: str, default: Generator | None = None) -> Generator | None:  # type: ignore[override]
        entry = self._table.get(name)
        return default if entry is None or entry[1] >= self._size else entry[0]

    def __contains__(self, name: object) -> bool:
        entry = self._table.get(name)  # type: ignore[call-overload]
        return entry is not None and entry[1] < self._size

    def __iter__(self) -> Iterator[str]:
        return islice(self._order, self._size)

    def __len__(self) -> int:
        return self._size

    def __reduce__(self) -> tuple[object, tuple[object, ...]]:
        return (Signature, (dict(self.items()),))

    def __repr__(self) -> str:
        return f"Signature({dict(self.items())!r})"

    def _extended(self, new: Sequence[Generator]) -> Signature:
        """This view plus ``new`` (names not in it), sharing the store when this view is the newest."""
        with _SIGNATURE_LOCK:
            if len(self._order) == self._size and self._size:
                table, order = self._table, self._order
            else:
                order = list(islice(self._order, self._size))
                table = {name: self._table[name] for name in order}
            for gen in new:
                table[gen.name] = (gen, len(order))
                order.append(gen.name)
            size = len(order)
        view = object.__new__(Signature)
        view._table, view._order, view._size = table, order, size
        return view


_SIGNATURE_LOCK = threading.Lock()


class Diagram:
    """A morphism of the free Markov category, stored as a term graph.

    Invariants: ``inputs`` are distinct wires, one per atom of ``dom``; every other
    wire is written by exactly one node; nodes are listed in a topological order;
    ``outputs`` (one per atom of ``cod``) may repeat wires (copying).

    ``>>`` and ``@`` of large diagrams record their two operands and join the term
    graphs on first use of ``inputs``, ``nodes``, ``outputs`` or ``n_wires`` (in one
    linear pass, without recursion), so building by a fold costs linear time in all.
    Types, the signature (clashing box names), ``len`` and ``is_deterministic`` are
    known at once.  The joined graph is the one the eager definitions of
    :meth:`then` and :meth:`tensor` give, so ``==`` does not depend on when it is joined.
    """

    __slots__ = ("dom", "cod", "signature", "_graph", "_parts", "_size", "_produced", "_wires", "_det",
                 "_hash", "_name")
    dom: Ty
    """The input type."""
    cod: Ty
    """The output type."""
    signature: Mapping[str, Generator]
    """The generators the diagram uses, by name."""
    _graph: tuple[tuple[int, ...], tuple[Node, ...], tuple[int, ...]] | None
    _parts: tuple[bool, Diagram, Diagram] | None
    _size: int
    _produced: int
    _wires: int
    _det: bool
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
            add_generator(signature, node.gen)
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

    # -- internal fast constructors ----------------------------------------------------
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
        """Fill the slots of a diagram given by its term graph."""
        if not isinstance(signature, Signature):
            signature = Signature(signature) if signature else _EMPTY
        produced = 0
        det = True
        for node in nodes:
            produced += len(node.outs)
            det = det and node.gen.deterministic
        setter = object.__setattr__
        setter(self, "dom", dom)
        setter(self, "cod", cod)
        setter(self, "signature", signature)
        setter(self, "_graph", (inputs, nodes, outputs))
        setter(self, "_parts", None)
        setter(self, "_size", len(nodes))
        setter(self, "_produced", produced)
        setter(self, "_wires", n_wires)
        setter(self, "_det", det)
        setter(self, "_hash", None)
        setter(self, "_name", name)

    @staticmethod
    def _lazy(sequential: bool, a: Diagram, b: Diagram, dom: Ty, cod: Ty, signature: Signature) -> Diagram:
        """``a >> b`` (``sequential``) or ``a @ b``, joined on first use."""
        self = object.__new__(Diagram)
        setter = object.__setattr__
        setter(self, "dom", dom)
        setter(self, "cod", cod)
        setter(self, "signature", signature)
        setter(self, "_graph", None)
        setter(self, "_parts", (sequential, a, b))
        setter(self, "_size", a._size + b._size)
        setter(self, "_produced", a._produced + b._produced)
        setter(self, "_wires", a._wires + (b._produced if sequential else b._wires))
        setter(self, "_det", a._det and b._det)
        setter(self, "_hash", None)
        setter(self, "_name", None)
        return self

    # -- the term graph ------------------------------------------------------------------
    @property
    def inputs(self) -> tuple[int, ...]:
        """The input wires, one per atom of ``dom``."""
        return (self._graph or _join(self))[0]

    @property
    def nodes(self) -> tuple[Node, ...]:
        """The box occurrences, in a topological order."""
        return (self._graph or _join(self))[1]

    @property
    def outputs(self) -> tuple[int, ...]:
        """The output wires, one per atom of ``cod`` (a wire may repeat: copying)."""
        return (self._graph or _join(self))[2]

    @property
    def n_wires(self) -> int:
        """Wires are numbered ``0 .. n_wires - 1`` (some numbers may be unused)."""
        return self._wires

    def __setattr__(self, name: str, value: object) -> None:
        raise AttributeError("diagrams are immutable")

    def __reduce__(self) -> tuple[object, tuple[object, ...]]:
        fields = (self.dom, self.cod, self.inputs, self.nodes, self.outputs, self.n_wires)
        return (Diagram._raw, (*fields, dict(self.signature.items()), self._name))

    # -- composition, defined once -----------------------------------------------
    def then(self, other: Diagram) -> Diagram:
        """Sequential composition ``self >> other`` (first self, then other).

        Costs the size of the smaller operand (the term graphs are joined on first use).
        """
        check_operand(other, ">>")
        if self.cod != other.dom:
            raise TypeMismatch(
                f"cannot compose {self.short()} with {other.short()}: the codomain {self.cod} of "
                f"{self.label()} does not match the domain {other.dom} of {other.label()}"
                + _first_difference(self.cod, other.dom)
            )
        signature = _merge_signatures(self.signature, other.signature)
        if not _eager(self, other):
            return Diagram._lazy(True, self, other, self.dom, other.cod, signature)
        inputs, nodes, outputs = self._graph or _join(self)
        o_inputs, o_nodes, o_outputs = other._graph or _join(other)
        rename = [-1] * other._wires
        for wire, source in zip(o_inputs, outputs):
            rename[wire] = source
        fresh = self._wires
        for node in o_nodes:
            for wire in node.outs:
                rename[wire] = fresh
                fresh += 1
        nodes = nodes + tuple(
            Node(n.gen, tuple([rename[w] for w in n.ins]), tuple([rename[w] for w in n.outs])) for n in o_nodes
        )
        outputs = tuple([rename[w] for w in o_outputs])
        return Diagram._raw(self.dom, other.cod, inputs, nodes, outputs, fresh, signature)

    def tensor(self, other: Diagram) -> Diagram:
        """Parallel composition ``self @ other``; costs the size of the smaller operand."""
        check_operand(other, "@")
        signature = _merge_signatures(self.signature, other.signature)
        dom, cod = self.dom @ other.dom, self.cod @ other.cod
        if not _eager(self, other):
            return Diagram._lazy(False, self, other, dom, cod, signature)
        inputs, nodes, outputs = self._graph or _join(self)
        o_inputs, o_nodes, o_outputs = other._graph or _join(other)
        k = self._wires
        nodes = nodes + tuple(
            Node(n.gen, tuple([w + k for w in n.ins]), tuple([w + k for w in n.outs])) for n in o_nodes
        )
        return Diagram._raw(
            dom,
            cod,
            inputs + tuple([w + k for w in o_inputs]),
            nodes,
            outputs + tuple([w + k for w in o_outputs]),
            k + other._wires,
            signature,
        )

    def __rshift__(self, other: Diagram) -> Diagram:
        return self.then(other)

    def __rrshift__(self, other: object) -> Diagram:
        check_operand(other, ">>")
        raise AssertionError  # pragma: no cover

    def __matmul__(self, other: Diagram) -> Diagram:
        return self.tensor(other)

    def __rmatmul__(self, other: object) -> Diagram:
        check_operand(other, "@")
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
        return self._det

    def label(self) -> str:
        """The diagram's name, or ``"the diagram"`` (for messages)."""
        return self._name or "the diagram"

    def short(self) -> str:
        """``name : dom -> cod`` (for messages)."""
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
        return self._size

    # -- drawing (see markovcat.drawing) -----------------------------------------------
    def draw(self, path: str | Path | None = None, **options: object) -> object:
        """Draw as written (every box, none pruned) to ``path`` (.svg, .png or .pdf); without a path return the figure.

        ``markovcat.normal_form(d).draw()`` draws the normal form, the one equality compares.
        """
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


def check_operand(other: object, op: str) -> None:
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


def add_generator(signature: dict[str, Generator], gen: Generator) -> None:
    known = signature.setdefault(gen.name, gen)
    if known != gen:
        raise ValueError(_clash(known, gen))


def _clash(a: Generator, b: Generator) -> str:
    return (
        f"two different boxes are both named {a.name!r}: [{a}] and [{b}]; "
        "a name identifies a box, so rename one of them"
    )


def _merge_signatures(a: Mapping[str, Generator], b: Mapping[str, Generator]) -> Signature:
    """The union of two signatures; a name used for two different generators is an error.

    Costs the size of the smaller one (the larger one's store is shared when it can be).
    """
    if not isinstance(a, Signature):
        a = Signature(a)
    if not isinstance(b, Signature):
        b = Signature(b)
    if b._size > a._size:
        a, b = b, a
    table, size = a._table, a._size
    new: list[Generator] = []
    for name in islice(b._order, b._size):
        gen = b._table[name][0]
        entry = table.get(name)
        if entry is None or entry[1] >= size:
            new.append(gen)
        elif entry[0] is not gen and entry[0] != gen:
            raise ValueError(_clash(entry[0], gen))
    return a._extended(new) if new else a


_EMPTY = Signature()


class Box(Diagram):
    """A generating box ``name : dom -> cod``; stochastic unless ``deterministic=True``.

    >>> k = Box("k", Ty("X"), Ty("Y"))
    >>> k.name, k.deterministic
    ('k', False)
    """

    __slots__ = ("generator",)
    generator: Generator
    """The generator this box is an occurrence of (name, type and determinism)."""

    def __init__(self, name: str, dom: Ty, cod: Ty, deterministic: bool = False, data: Hashable = None) -> None:
        if not isinstance(name, str) or not name:
            raise TypeError(f"a box name is a non-empty string, got {name!r}")
        for what, ty in (("domain", dom), ("codomain", cod)):
            if not isinstance(ty, Ty):
                raise TypeError(f"the {what} of box {name!r} must be a Ty, got {type(ty).__name__} {ty!r}")
        if not isinstance(deterministic, bool):
            raise TypeError(
                f"deterministic= of box {name!r} must be True or False, got {type(deterministic).__name__} "
                f"{deterministic!r} (pass bool(...) if you mean its truth value)"
            )
        try:
            hash(data)
        except TypeError:
            raise TypeError(f"the data of box {name!r} must be hashable, got {type(data).__name__}") from None
        gen = Generator(name, dom, cod, deterministic, data)
        k, m = len(dom), len(cod)
        ins = tuple(range(k))
        outs = tuple(range(k, k + m))
        self._set(dom, cod, ins, (Node(gen, ins, outs),), outs, k + m, {name: gen}, name)
        object.__setattr__(self, "generator", gen)

    @property
    def name(self) -> str:
        """The box's name, as drawn and as looked up by a backend's interpretation."""
        return self.generator.name

    def __reduce__(self) -> tuple[object, tuple[object, ...]]:
        return (Box, (self.name, self.dom, self.cod, self.deterministic, self.generator.data))

    @property
    def deterministic(self) -> bool:
        """Whether the box is deterministic (a function) rather than a stochastic kernel."""
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
    if isinstance(n, bool) or not isinstance(n, int):
        raise TypeError(f"Copy needs a whole number of copies n >= 0, got {type(n).__name__} {n!r}")
    if n < 0:
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
