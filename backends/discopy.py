"""DisCoPy interoperability: import and export ``discopy.markov`` diagrams (the only module importing ``discopy``).

Interoperability: diagrams written with DisCoPy
-----------------------------------------------
:func:`from_discopy` imports a ``discopy.markov.Diagram`` (for instance a symmetrisation
written with ``discopy.markov.Box``, ``Copy``, ``Swap`` and ``Id``, as in published
research code), after which :func:`markovcat.equal` decides it against a diagram built in
markovcat, :func:`markovcat.explain` says where two differ, and a backend compiles it
(``markovcat.backends.torch.compile`` with one callable per box name).  DisCoPy boxes do
not say which are functions: name them in ``from_discopy(d, deterministic={...})``, or
map DisCoPy box names to markovcat's own boxes with ``from_discopy(d, boxes={...})``.
:func:`to_discopy` goes the other way, for drawing or rewriting with DisCoPy.  A worked
example, from a DisCoPy diagram to a PyTorch module checked for equivariance, is
:mod:`markovcat.experiments.discopy_interop`.

This module imports ``discopy`` (a dependency of markovcat, tested with 1.2.2; ``import markovcat`` alone does
not import it).

Conversions
-----------
:func:`to_discopy` turns a markovcat :class:`~markovcat.syntax.Diagram` (a term graph)
into a ``discopy.markov.Diagram``: a list of layers built from ``markov.Box``,
``markov.Copy`` (``Copy(x, 0)`` is ``markov.Discard``) and atomic ``markov.Swap``.
Every box is ``markov.Box(name, dom, cod, data={"deterministic": flag})``, so a
deterministic and a stochastic box of the same name and type stay different boxes.
:func:`to_hypergraph` builds the ``discopy.markov.Hypergraph`` directly from the term
graph (no swap layers, one constructor call).  :func:`from_discopy` goes back; it
rejects ``Merge`` boxes, which have no meaning in a Markov category.

What DisCoPy's equality decides
-------------------------------
With ``markov.Diagram.hypergraph_equality`` switched on, ``d1 == d2`` compares
``d1.to_hypergraph()`` and ``d2.to_hypergraph()`` with ``Hypergraph.__eq__``: the
two must have the same ``dom`` and ``cod`` and their labelled graphs
(``Hypergraph.to_graph``: one vertex per spider, box, box port and boundary port,
ports labelled by their index, boxes by the box itself) must be isomorphic,
checked by ``networkx.is_isomorphic`` (VF2).  Copies and discards are spiders, so
this is isomorphism of term graphs fixing the boundary, which is equality in the
free **gs-monoidal** (copy-discard) category: symmetric monoidal laws plus the
commutative comonoid laws and their coherence with ``@``.  It does **not** know

* the Markov law ``k >> del == del`` (discard naturality, ``I`` terminal): a box
  whose outputs are all discarded is still a box, so
  ``k >> Discard(Y)`` and ``Discard(X)`` are different hypergraphs;
* copy naturality of deterministic boxes ``f >> copy == copy >> (f @ f)``: DisCoPy
  boxes have no notion of determinism, so two occurrences of ``f`` on the same
  wire are never merged.

markovcat's :func:`markovcat.equal` decides the free Markov category, the quotient
of the free gs-monoidal category by exactly these two laws.  Consequently
``discopy_equal(a, b)`` implies ``markovcat.equal(a, b)`` (a sound cross-check),
and not conversely.

>>> from markovcat import Box, Copy, Discard, Id, Swap, Ty, equal
>>> X, Y = Ty("X"), Ty("Y")
>>> k = Box("k", X, Y)
>>> print(to_discopy(Copy(X) >> (Id(X) @ k)))
Copy(X) >> X @ k
>>> discopy_equal(Copy(X) >> (Id(X) @ k), Copy(X) >> (k @ Id(X)) >> Swap(Y, X))
True
>>> equal(k >> Discard(Y), Discard(X)), discopy_equal(k >> Discard(Y), Discard(X))
(True, False)

DisCoPy's check costs far more than markovcat's linear canonical form: the
``Hypergraph`` constructor relabels spiders with ``list.index`` and rebuilds the
port list for every spider (superquadratic), ``to_hypergraph`` builds one
hypergraph per layer and composes them by pushouts, and the isomorphism test is a
generic VF2 search whose graph vertices hash through their ``repr``
(see ``benchmarks/equality.py``).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any

from discopy import markov  # type: ignore[import-untyped]
from discopy.monoidal import Layer as _Layer  # type: ignore[import-untyped]
from discopy.monoidal import Ty as _DTy  # type: ignore[import-untyped]

from markovcat.syntax import Diagram, Generator, Node, Ty, check_operand

__all__ = [
    "to_discopy",
    "to_hypergraph",
    "from_discopy",
    "discopy_equal",
    "discopy_diagrams_equal",
    "discopy_hypergraph_equal",
    "discopy_markov",
    "python_function",
]

#: ``discopy.markov``, re-exported so that callers (tests) need not import DisCoPy themselves.
discopy_markov = markov

# Aliases for the DisCoPy classes this module produces, for annotations.
DiscopyDiagram = Any
"""The type of a DisCoPy ``markov`` diagram (``Any``: DisCoPy is imported only inside the adapter)."""
DiscopyHypergraph = Any
"""The type of a DisCoPy hypergraph (``Any``, as :data:`DiscopyDiagram`)."""


def _dty(atoms: tuple[str, ...] | list[str]) -> Any:
    return _DTy(*atoms)


def _dbox(gen: Generator, cache: dict[Generator, Any]) -> Any:
    box = cache.get(gen)
    if box is None:
        box = markov.Box(gen.name, _dty(gen.dom.atoms), _dty(gen.cod.atoms), data={"deterministic": gen.deterministic})
        cache[gen] = box
    return box


def _remaining_uses(d: Diagram) -> dict[int, int]:
    uses: dict[int, int] = dict.fromkeys(d.inputs, 0)
    for node in d.nodes:
        for w in node.outs:
            uses[w] = 0
        for w in node.ins:
            uses[w] += 1
    for w in d.outputs:
        uses[w] += 1
    return uses


class _Builder:
    """Lays a term graph out as a list of DisCoPy layers, tracking the wires in scan order."""

    def __init__(self, d: Diagram) -> None:
        self.scan: list[object] = list(d.inputs)  # wire numbers; placed values are tokens
        self.atoms: list[str] = list(d.dom.atoms)
        self.layers: list[Any] = []
        self.remaining = _remaining_uses(d)
        self.boxes: dict[Generator, Any] = {}
        self.copies: dict[str, Any] = {}
        self.discards: dict[str, Any] = {}
        self.swaps: dict[tuple[str, str], Any] = {}

    def emit(self, box: Any, offset: int, n_in: int, cod_atoms: list[str]) -> None:
        left = _dty(self.atoms[:offset])
        right = _dty(self.atoms[offset + n_in :])
        self.layers.append(_Layer(left, box, right))
        self.atoms[offset : offset + n_in] = cod_atoms

    def discard(self, j: int) -> None:
        atom = self.atoms[j]
        box = self.discards.get(atom)
        if box is None:
            box = self.discards[atom] = markov.Discard(_dty([atom]))
        self.emit(box, j, 1, [])
        del self.scan[j]

    def copy(self, j: int, token: object, left: bool) -> None:
        """Copy the wire at ``j``; ``token`` marks the copy on the left (at ``j``) or right (``j + 1``)."""
        atom = self.atoms[j]
        box = self.copies.get(atom)
        if box is None:
            box = self.copies[atom] = markov.Copy(_dty([atom]), 2)
        self.emit(box, j, 1, [atom, atom])
        self.scan.insert(j if left else j + 1, token)

    def swap_right(self, q: int) -> None:
        """Swap the wires at ``q`` and ``q + 1``."""
        key = (self.atoms[q], self.atoms[q + 1])
        box = self.swaps.get(key)
        if box is None:
            box = self.swaps[key] = markov.Swap(_dty([key[0]]), _dty([key[1]]))
        self.emit(box, q, 2, [key[1], key[0]])
        self.scan[q], self.scan[q + 1] = self.scan[q + 1], self.scan[q]

    def move(self, a: int, b: int) -> None:
        """Move the wire at position ``a`` to position ``b`` with adjacent swaps."""
        for q in range(a, b):
            self.swap_right(q)
        for q in range(a - 1, b - 1, -1):
            self.swap_right(q)

    def take(self, wire: int, token: object, towards: int) -> int:
        """Replace one use of ``wire`` by ``token`` (copying if it is used again); its position.

        A copy is put on the side facing position ``towards``, where it will be moved.
        """
        j = self.scan.index(wire)
        self.remaining[wire] -= 1
        if self.remaining[wire] > 0:
            left = towards <= j
            self.copy(j, token, left)
            return j if left else j + 1
        self.scan[j] = token
        return j

    def gather(self, wires: tuple[int, ...]) -> int:
        """Bring one use of each of ``wires`` next to each other, in order; the offset of the block."""
        tokens = [object() for _ in wires]
        for i, wire in enumerate(wires):
            prev = self.scan.index(tokens[i - 1]) if i else len(self.scan)
            src = self.take(wire, tokens[i], prev)
            if i:
                prev = self.scan.index(tokens[i - 1])
                self.move(src, prev if src < prev else prev + 1)
        return self.scan.index(tokens[0]) if tokens else len(self.scan)

    def discard_unused(self, wires: tuple[int, ...]) -> None:
        for wire in wires:
            if self.remaining[wire] == 0:
                self.discard(self.scan.index(wire))


def to_discopy(diagram: Diagram) -> DiscopyDiagram:
    """The ``discopy.markov.Diagram`` of ``diagram`` (same ``dom``, ``cod`` and boxes).

    Copies and discards become ``markov.Copy`` / ``markov.Discard`` boxes and the
    wiring becomes atomic ``markov.Swap`` boxes; each box becomes a ``markov.Box``
    whose ``data`` records whether it is deterministic, so :func:`from_discopy` gives
    back the same diagram.  The layers are one layout of the term graph (DisCoPy's own
    ``==`` compares layouts; use :func:`discopy_equal` for its hypergraph equality).

    >>> from markovcat import Box, Copy, Id, Ty, equal
    >>> X = Ty("X")
    >>> f = Box("f", X, X, deterministic=True)
    >>> d = to_discopy(Copy(X) >> (f @ Id(X)))
    >>> print(d)
    Copy(X) >> X @ f >> Swap(X, X)
    >>> d.inside[1].boxes[0].data
    {'deterministic': True}
    >>> equal(from_discopy(d), Copy(X) >> (f @ Id(X)))
    True
    """
    check_operand(diagram, "to_discopy")
    b = _Builder(diagram)
    b.discard_unused(diagram.inputs)
    for node in diagram.nodes:
        offset = b.gather(node.ins)
        b.emit(_dbox(node.gen, b.boxes), offset, len(node.ins), list(node.gen.cod.atoms))
        b.scan[offset : offset + len(node.ins)] = list(node.outs)
        b.discard_unused(node.outs)
    for i, wire in enumerate(diagram.outputs):
        b.move(b.take(wire, object(), i), i)
    assert len(b.scan) == len(diagram.outputs)
    return markov.Diagram(tuple(b.layers), _dty(diagram.dom.atoms), _dty(diagram.cod.atoms))


def to_hypergraph(diagram: Diagram) -> DiscopyHypergraph:
    """The ``discopy.markov.Hypergraph`` of ``diagram``, built directly from its term graph.

    Spiders are the wires; this is the hypergraph that ``to_discopy(d).to_hypergraph()``
    gives, up to the numbering of spiders.
    """
    check_operand(diagram, "to_hypergraph")
    types = diagram.wire_types()
    cache: dict[Generator, Any] = {}
    boxes = tuple(_dbox(node.gen, cache) for node in diagram.nodes)
    box_wires = tuple((node.ins, node.outs) for node in diagram.nodes)
    wires = (diagram.inputs, box_wires, diagram.outputs)
    spider_types = {w: _dty([atom]) for w, atom in types.items()}
    return markov.Hypergraph(_dty(diagram.dom.atoms), _dty(diagram.cod.atoms), boxes, wires, spider_types)


def _atoms(ty: Any) -> tuple[str, ...]:
    return tuple(str(ob.name) for ob in ty.inside)


def from_discopy(diagram: DiscopyDiagram, deterministic: Iterable[str] = (),
                 boxes: Mapping[str, Diagram] | None = None) -> Diagram:
    """The markovcat diagram of a ``discopy.markov.Diagram``: same types, same boxes, same wiring.

    This imports diagrams written with DisCoPy, e.g. in the style of published research
    code that builds symmetrisations from ``discopy.markov.Box``, ``Copy``, ``Swap`` and
    ``Id``; the result can be decided with :func:`markovcat.equal`, explained, drawn, and
    compiled by a backend.  ``markov.Copy(x, n)`` becomes ``n`` reads of one wire
    (``n = 0``, ``markov.Discard``, reads it never), ``markov.Swap`` a crossing, and each
    ``markov.Box`` a generator of the same name and types.

    DisCoPy boxes do not say whether they are functions.  A box is deterministic when its
    name is in ``deterministic`` or its ``data`` is a dict with a true ``"deterministic"``
    entry (as :func:`to_discopy` writes); every other box is stochastic, which is always
    sound (it only forgoes the law ``f >> copy == copy >> (f @ f)``).

    ``boxes`` maps DisCoPy box names to markovcat diagrams put in their place (each with
    the box's domain and codomain): a functor on boxes, e.g. ``{"inv": G.inv, "act_X":
    act_X.act}`` to read a DisCoPy diagram in terms of markovcat's own group and action
    boxes, so that it can be compared with a construction such as
    :func:`markovcat.symmetrisation.sym`.

    Raises ``ValueError`` on ``Merge`` and other boxes that are not Markov structure, on a
    replacement whose type differs from its box's, and on a name in ``deterministic`` or
    ``boxes`` that no box of the diagram has (a typo would otherwise pass silently).

    >>> from discopy import markov
    >>> X, G = markov.Ty("X"), markov.Ty("G")
    >>> gamma, act = markov.Box("gamma", X, G), markov.Box("act", G @ X, X)
    >>> d = from_discopy(markov.Copy(X) >> gamma @ X >> act, deterministic={"act"})
    >>> d
    <Diagram X -> X: 2 boxes (gamma, act)>
    >>> [str(box) for box in d.boxes]
    ['gamma : X -> G (stochastic)', 'act : G @ X -> X (deterministic)']
    >>> from_discopy(to_discopy(d)) == d
    True
    >>> import markovcat as mc
    >>> noise = mc.Box("noise", mc.Ty(), mc.Ty("G"))                # gamma read as: ignore x, draw noise
    >>> e = from_discopy(markov.Copy(X) >> gamma @ X >> act, deterministic={"act"},
    ...                  boxes={"gamma": mc.Discard(mc.Ty("X")) >> noise})
    >>> e
    <Diagram X -> X: 2 boxes (noise, act)>
    """
    if not isinstance(diagram, markov.Diagram):
        raise TypeError(f"from_discopy takes a discopy.markov.Diagram, got {type(diagram).__name__}")
    declared = _names(deterministic)
    replace = dict(boxes or {})
    for name, value in replace.items():
        if not isinstance(name, str) or not isinstance(value, Diagram):
            raise TypeError(f"boxes maps DisCoPy box names (str) to markovcat diagrams, got {name!r}: "
                            f"{type(value).__name__}")
    both = declared & replace.keys()
    if both:
        raise ValueError(f"boxes {sorted(both)} are both declared deterministic and replaced: the replacement "
                         f"decides; drop them from deterministic")
    dom, cod = Ty(*_atoms(diagram.dom)), Ty(*_atoms(diagram.cod))
    scan = list(range(len(dom)))
    fresh = len(scan)
    nodes: list[Node] = []
    seen: set[str] = set()
    for layer in diagram.inside:
        offset = 0
        for i, item in enumerate(layer.boxes_or_types):
            if i % 2 == 0:
                offset += len(item)
                continue
            box, k = item, len(item.dom)
            ins = scan[offset : offset + k]
            if isinstance(box, markov.Copy):  # includes Discard
                outs = ins * len(box.cod)
            elif isinstance(box, markov.Swap):
                outs = ins[::-1]
            elif isinstance(box, markov.Merge) or type(box) is not markov.Box:
                raise ValueError(f"{type(box).__name__} box {box} has no counterpart in a Markov category")
            else:
                name, data = str(box.name), box.data
                seen.add(name)
                box_dom, box_cod = Ty(*_atoms(box.dom)), Ty(*_atoms(box.cod))
                if name in replace:
                    outs, fresh = _inline(replace[name], name, box_dom, box_cod, ins, fresh, nodes)
                else:
                    det = name in declared or (isinstance(data, dict) and bool(data.get("deterministic", False)))
                    gen = Generator(name, box_dom, box_cod, det)
                    outs = list(range(fresh, fresh + len(gen.cod)))
                    fresh += len(outs)
                    nodes.append(Node(gen, tuple(ins), tuple(outs)))
            scan[offset : offset + k] = outs
            offset += len(outs)
    unknown = (declared | replace.keys()) - seen
    if unknown:
        raise ValueError(f"{sorted(unknown)} are not names of boxes of this diagram; its boxes are "
                         f"{sorted(seen)} (names are compared exactly)")
    return Diagram(dom, cod, range(len(dom)), nodes, scan, fresh)


def _inline(body: Diagram, name: str, dom: Ty, cod: Ty, ins: list[int], fresh: int,
            nodes: list[Node]) -> tuple[list[int], int]:
    """Put ``body``'s term graph in place of the box ``name`` read on ``ins``; its output wires and the next fresh."""
    if (body.dom, body.cod) != (dom, cod):
        raise ValueError(f"box {name!r} : {dom} -> {cod} of the DisCoPy diagram is replaced by a diagram "
                         f"{body.dom} -> {body.cod}; the types must match")
    wire = dict(zip(body.inputs, ins))
    for node in body.nodes:
        outs = tuple(range(fresh, fresh + len(node.outs)))
        fresh += len(outs)
        wire.update(zip(node.outs, outs))
        nodes.append(Node(node.gen, tuple(wire[w] for w in node.ins), outs))
    return [wire[w] for w in body.outputs], fresh


def _names(names: Iterable[str]) -> frozenset[str]:
    if isinstance(names, str):
        raise TypeError(f"deterministic is a collection of box names, got the string {names!r}: "
                        f"write deterministic={{{names!r}}}")
    out = frozenset(names)
    bad = [n for n in out if not isinstance(n, str)]
    if bad:
        raise TypeError(f"deterministic is a collection of box names (str), got {bad!r}")
    return out


def discopy_equal(a: Diagram, b: Diagram) -> bool:
    """DisCoPy's ``hypergraph_equality`` of ``to_discopy(a)`` and ``to_discopy(b)``.

    Decides equality in the free gs-monoidal category (see the module docstring):
    ``True`` implies ``markovcat.equal(a, b)``, not conversely.
    """
    return discopy_diagrams_equal(to_discopy(a), to_discopy(b))


def discopy_diagrams_equal(a: DiscopyDiagram, b: DiscopyDiagram) -> bool:
    """``a == b`` for two DisCoPy Markov diagrams under ``markov.Diagram.hypergraph_equality``."""
    with markov.Diagram.hypergraph_equality:
        return bool(a == b)


def discopy_hypergraph_equal(a: Diagram, b: Diagram) -> bool:
    """``Hypergraph.__eq__`` on :func:`to_hypergraph` of both (the same theory as :func:`discopy_equal`)."""
    return bool(to_hypergraph(a) == to_hypergraph(b))


def python_function(
    diagram: Diagram, functions: Mapping[str, Callable[..., Any]], wire_type: type
) -> Callable[..., Any]:
    """``diagram`` through DisCoPy's ``markov.Functor`` into ``python.Category``.

    Every box named ``name`` becomes ``functions[name]``; every wire has the Python type
    ``wire_type``.  Used as a reference point in benchmarks (DisCoPy evaluates layer by
    layer, with the interpretation's Python functions).
    """
    from discopy import python  # type: ignore[import-untyped]

    def arrow(box: Any) -> Any:
        f = functions[box.name]
        return python.Function(f, tuple([wire_type] * len(box.dom)), tuple([wire_type] * len(box.cod)))

    functor = markov.Functor(ob=lambda _: (wire_type,), ar=arrow, cod=python.Category())
    return functor(to_discopy(diagram))  # type: ignore[no-any-return]
