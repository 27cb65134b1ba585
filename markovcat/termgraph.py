"""The term graph: :class:`Node` (one box occurrence), the lazy join of ``>>`` and ``@``, and networkx export.

A :class:`~markovcat.syntax.Diagram` is a term graph: input wires, nodes in a topological
order, output wires.  Small operands of ``>>`` and ``@`` are joined at once (below
:data:`EAGER` atoms or boxes); larger ones are recorded and joined on first use by
:func:`join`, in one pass with an explicit stack (so deep folds need no recursion limit and a
fold costs linear time).  :func:`to_networkx` gives the term graph as a ``networkx.MultiDiGraph``
for analysis and drawing by other tools: one node per input (``("input", i)``), per box
occurrence (``("box", k)``, ``k`` its place in ``diagram.nodes``) and per output
(``("output", j)``), and one edge per use of a wire, from the node that writes it to the node
that reads it.  A wire read twice is copied (two edges out of one port); a wire nobody reads is
discarded (no edge).  Node attributes: ``kind`` (``"input"``, ``"box"``, ``"output"``), and for
boxes ``name``, ``dom``, ``cod`` (as strings) and ``deterministic``; edge attributes: ``wire``
(its number), ``type`` (its atom), ``source_port``, ``target_port``.  The graph is a picture of
the term graph, not a second representation: nothing is read back from it, and equality of
diagrams stays :func:`~markovcat.markov.equal`.

>>> from markovcat import Box, Copy, Ty
>>> X = Ty("X")
>>> f = Box("f", X, X, deterministic=True)
>>> graph = to_networkx(Copy(X) >> (f @ f))
>>> sorted(graph.nodes(data="name"))[:2]
[(('box', 0), 'f'), (('box', 1), 'f')]
>>> graph.out_degree(("input", 0))    # the input is copied to both boxes
2
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, NamedTuple

if TYPE_CHECKING:
    from markovcat.syntax import Diagram, Generator

__all__ = ["Node", "EAGER", "join", "eager", "to_networkx"]

#: Below this many atoms (or boxes), ``@`` and ``>>`` join eagerly; above, on first use.
EAGER = 32


class Node(NamedTuple):
    """One occurrence of a generator: the wires it reads and the fresh wires it writes."""

    gen: Generator
    """The generator this node applies."""
    ins: tuple[int, ...]
    """The wires it reads, one per atom of the generator's input type."""
    outs: tuple[int, ...]
    """The wires it writes, one per atom of the generator's output type."""


def eager(a: Diagram, b: Diagram) -> bool:
    """Join small operands at once; record large ones (see :func:`join`)."""
    return a._graph is not None and b._graph is not None and a._size + b._size <= EAGER


def join(root: Diagram) -> tuple[tuple[int, ...], tuple[Node, ...], tuple[int, ...]]:
    """The term graph of a diagram built by ``>>`` and ``@``, in one pass over the operands (cached).

    The numbering is the one :meth:`Diagram.then` and :meth:`Diagram.tensor` give when they
    join at once: the left operand keeps its wires; in ``a @ b`` the wires of ``b`` are
    shifted by ``a.n_wires``; in ``a >> b`` the inputs of ``b`` become the outputs of ``a``
    and the wires its boxes write are numbered from ``a.n_wires`` on, in node order.
    An explicit stack replaces recursion, so deep folds need no recursion limit.
    """
    nodes: list[Node] = []
    inputs: list[int] = []
    outputs: list[int] = []
    # own task: (True, diagram, shift, input list, output list): the diagram's own numbering, shifted;
    # fresh task: (False, diagram, source list, offset, output list, counter): inputs read from
    # source[offset:], written wires numbered from counter[0] on.
    stack: list[tuple[Any, ...]] = [(True, root, 0, inputs, outputs)]
    while stack:
        task = stack.pop()
        d: Diagram = task[1]
        graph = d._graph
        parts = d._parts if graph is None else None
        if graph is None and parts is None:  # joined meanwhile (another thread)
            graph = d._graph
        if task[0]:
            _, _, shift, ins, outs = task
            if graph is not None:
                d_inputs, d_nodes, d_outputs = graph
                if shift:
                    ins.extend([w + shift for w in d_inputs])
                    nodes.extend(
                        Node(n.gen, tuple([w + shift for w in n.ins]), tuple([w + shift for w in n.outs]))
                        for n in d_nodes
                    )
                    outs.extend([w + shift for w in d_outputs])
                else:
                    ins.extend(d_inputs)
                    nodes.extend(d_nodes)
                    outs.extend(d_outputs)
                continue
            assert parts is not None
            sequential, a, b = parts
            if sequential:
                middle: list[int] = []
                stack.append((False, b, middle, 0, outs, [shift + a._wires]))
                stack.append((True, a, shift, ins, middle))
            else:
                stack.append((True, b, shift + a._wires, ins, outs))
                stack.append((True, a, shift, ins, outs))
            continue
        _, _, source, offset, outs, counter = task
        if graph is not None:
            d_inputs, d_nodes, d_outputs = graph
            rename = {w: source[offset + i] for i, w in enumerate(d_inputs)}
            fresh = counter[0]
            for n in d_nodes:
                written = tuple(range(fresh, fresh + len(n.outs)))
                fresh += len(written)
                rename.update(zip(n.outs, written))
                nodes.append(Node(n.gen, tuple([rename[w] for w in n.ins]), written))
            counter[0] = fresh
            outs.extend([rename[w] for w in d_outputs])
            continue
        assert parts is not None
        sequential, a, b = parts
        if sequential:
            middle = []
            stack.append((False, b, middle, 0, outs, counter))
            stack.append((False, a, source, offset, middle, counter))
        else:
            stack.append((False, b, source, offset + len(a.dom), outs, counter))
            stack.append((False, a, source, offset, outs, counter))
    graph = (tuple(inputs), tuple(nodes), tuple(outputs))
    object.__setattr__(root, "_graph", graph)
    object.__setattr__(root, "_parts", None)
    return graph


def to_networkx(diagram: Diagram) -> Any:
    """The term graph of ``diagram`` as a ``networkx.MultiDiGraph`` (see the module docstring)."""
    import networkx

    from markovcat.syntax import Diagram

    if not isinstance(diagram, Diagram):
        raise TypeError(f"to_networkx takes a Diagram, got {type(diagram).__name__} {diagram!r}")
    graph = networkx.MultiDiGraph(name=diagram.label(), dom=str(diagram.dom), cod=str(diagram.cod))
    writer: dict[int, tuple[tuple[str, int], int, str]] = {}  # wire -> (node, port, atom)
    for i, (wire, atom) in enumerate(zip(diagram.inputs, diagram.dom.atoms, strict=True)):
        graph.add_node(("input", i), kind="input", type=atom)
        writer[wire] = (("input", i), 0, atom)
    for k, node in enumerate(diagram.nodes):
        gen = node.gen
        graph.add_node(("box", k), kind="box", name=gen.name, dom=str(gen.dom), cod=str(gen.cod),
                       deterministic=gen.deterministic)
        for port, wire in enumerate(node.ins):
            source, source_port, atom = writer[wire]
            graph.add_edge(source, ("box", k), wire=wire, type=atom, source_port=source_port, target_port=port)
        for port, (wire, atom) in enumerate(zip(node.outs, gen.cod.atoms, strict=True)):
            writer[wire] = (("box", k), port, atom)
    for j, wire in enumerate(diagram.outputs):
        source, source_port, atom = writer[wire]
        graph.add_node(("output", j), kind="output", type=atom)
        graph.add_edge(source, ("output", j), wire=wire, type=atom, source_port=source_port, target_port=0)
    return graph
