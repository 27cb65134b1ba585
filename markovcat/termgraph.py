"""A diagram's term graph as a :mod:`networkx` graph, for analysis and drawing by other tools.

:func:`to_networkx` gives a ``networkx.MultiDiGraph``: one node per input (``("input", i)``),
per box occurrence (``("box", k)``, ``k`` its place in ``diagram.nodes``, a topological order)
and per output (``("output", j)``), and one edge per use of a wire, from the node that writes
it to the node that reads it.  A wire read twice is copied (two edges out of one port); a wire
nobody reads is discarded (no edge).  Node attributes: ``kind`` (``"input"``, ``"box"``,
``"output"``), and for boxes ``name``, ``dom``, ``cod`` (as strings) and ``deterministic``;
edge attributes: ``wire`` (its number), ``type`` (its atom), ``source_port``, ``target_port``.
The graph is a picture of the term graph, not a second representation: nothing is read back
from it, and equality of diagrams stays :func:`~markovcat.markov.equal`.

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

from typing import Any

from markovcat.syntax import Diagram

__all__ = ["to_networkx"]


def to_networkx(diagram: Diagram) -> Any:
    """The term graph of ``diagram`` as a ``networkx.MultiDiGraph`` (see the module docstring)."""
    import networkx

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
