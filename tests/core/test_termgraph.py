"""A diagram's term graph as a networkx graph: one node per input, box occurrence and output, one edge per use."""

from __future__ import annotations

import networkx
import pytest

import markovcat as mc

X, Y = mc.Ty("X"), mc.Ty("Y")
f = mc.Box("f", X, Y, deterministic=True)
k = mc.Box("k", X, X @ Y)  # stochastic, two outputs


def test_copies_are_edges_out_of_one_port_and_discards_have_none() -> None:
    d = mc.Copy(X) >> (f @ (k >> (mc.Discard(X) @ mc.Id(Y))))
    graph = mc.to_networkx(d)
    kinds = sorted(kind for _, kind in graph.nodes(data="kind"))
    assert kinds == ["box", "box", "input", "output", "output"]
    assert graph.out_degree(("input", 0)) == 2  # copied into f and into k
    boxes = {name: node for node, name in graph.nodes(data="name") if name is not None}
    assert graph.nodes[boxes["k"]]["deterministic"] is False and graph.nodes[boxes["f"]]["cod"] == "Y"
    assert graph.out_degree(boxes["k"]) == 1  # its X output is discarded: no edge
    (_, _, edge), = graph.out_edges(boxes["k"], data=True)
    assert edge["source_port"] == 1 and edge["type"] == "Y"
    assert networkx.is_directed_acyclic_graph(graph)
    assert graph.graph["dom"] == "X" and graph.graph["cod"] == "Y @ Y"


def test_equal_diagrams_give_isomorphic_graphs_and_unequal_ones_do_not() -> None:
    a = mc.Copy(X) >> (f @ f)
    b = f >> mc.Copy(Y)  # equal to a: f is deterministic
    c = mc.Copy(X) >> (k @ k)
    match = networkx.algorithms.isomorphism.categorical_node_match("name", None)
    assert mc.equal(a, b) and not networkx.is_isomorphic(mc.to_networkx(a), mc.to_networkx(b), node_match=match)
    assert networkx.is_isomorphic(mc.to_networkx(mc.normal_form(a)), mc.to_networkx(mc.normal_form(b)),
                                  node_match=match)
    assert not networkx.is_isomorphic(mc.to_networkx(a), mc.to_networkx(c), node_match=match)
    with pytest.raises(TypeError, match="takes a Diagram"):
        mc.to_networkx("f")
