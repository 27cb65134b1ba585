"""Decided equality in the free Markov category.

A diagram's term graph is brought to normal form in two linear passes:

1. *Hash-consing*: two nodes of the same **deterministic** generator reading the
   same wires are merged (``f >> copy == copy >> (f @ f)``).  Stochastic nodes are
   never merged: drawing twice is not drawing once and copying.
2. *Canonical numbering with Markov pruning*: a depth-first walk from the ordered
   outputs, visiting each node's inputs in port order, numbers nodes and wires by
   first visit.  Nodes the walk never reaches (none of their outputs reaches the
   codomain) are dropped: ``k >> del == del`` for every box, ``I`` is terminal.
   Since every wire has exactly one producer and both boundaries are ordered, two
   term graphs are isomorphic (fixing the boundary) iff their walks agree, so no
   graph search is needed.

What this proves: two diagrams with the same normal form are equal in every Markov
category interpreting the boxes (each pass is an instance of a Markov-category law,
so the procedure is sound).  Completeness, that different normal forms are
different morphisms of the *free* Markov category, is the theorem of Fritz & Liang
(arXiv 2204.02284) for the free Markov category on the stated generators, where only
boxes declared deterministic are copyable.  It says nothing about equations between
particular interpretations (e.g. a group axiom): those are stated as equations and
used as rewriting rules.

>>> from markovcat.syntax import Ty, Box, Copy, Discard
>>> X, Y = Ty("X"), Ty("Y")
>>> f, k = Box("f", X, Y, deterministic=True), Box("k", X, Y)
>>> equal(f >> Copy(Y), Copy(X) >> (f @ f))
True
>>> equal(k >> Copy(Y), Copy(X) >> (k @ k))
False
>>> equal(k >> Discard(Y), Discard(X))
True
"""

from __future__ import annotations

from dataclasses import dataclass

from markovcat.syntax import Diagram, Generator, Node, Ty, _check_operand

__all__ = ["NormalForm", "canonical", "normal_form", "equal", "explain", "assert_equal", "NotEqual"]


@dataclass(frozen=True)
class NormalForm:
    """The canonical term graph of a diagram.

    Wires ``0 .. len(dom)-1`` are the inputs; node ``i`` (in ``nodes``) writes the next
    ``len(gen.cod)`` wire numbers in order.  Two diagrams are equal in the free
    Markov category iff their normal forms are ``==``.
    """

    dom: Ty
    cod: Ty
    nodes: tuple[tuple[Generator, tuple[int, ...]], ...]
    outputs: tuple[int, ...]

    def to_diagram(self) -> Diagram:
        nodes = []
        fresh = len(self.dom)
        for gen, ins in self.nodes:
            outs = tuple(range(fresh, fresh + len(gen.cod)))
            fresh += len(gen.cod)
            nodes.append(Node(gen, ins, outs))
        return Diagram(self.dom, self.cod, range(len(self.dom)), nodes, self.outputs, fresh)


def _merge(d: Diagram) -> tuple[list[Node], list[int]]:
    """Hash-consing: later repeats of a deterministic node on the same wires are dropped."""
    rep: dict[int, int] = {}
    table: dict[tuple[Generator, tuple[int, ...]], tuple[int, ...]] = {}
    kept: list[Node] = []
    for node in d.nodes:
        if rep and any(w in rep for w in node.ins):
            node = Node(node.gen, tuple([rep.get(w, w) for w in node.ins]), node.outs)
        if node.gen.deterministic:
            key = (node.gen, node.ins)
            earlier = table.get(key)
            if earlier is not None:
                rep.update(zip(node.outs, earlier))
                continue
            table[key] = node.outs
        kept.append(node)
    outputs = [rep.get(w, w) for w in d.outputs] if rep else list(d.outputs)
    return kept, outputs


def canonical(d: Diagram) -> NormalForm:
    """The normal form of ``d`` (linear time, iterative: no recursion limit)."""
    _check_operand(d, "normal_form")
    nodes, outputs = _merge(d)
    producer: dict[int, int] = {}
    for index, node in enumerate(nodes):
        for w in node.outs:
            producer[w] = index
    number: dict[int, int] = {w: i for i, w in enumerate(d.inputs)}
    fresh = len(d.inputs)
    result: list[tuple[Generator, tuple[int, ...]]] = []
    for root in outputs:
        if root in number:
            continue
        stack = [(producer[root], 0)]
        while stack:
            index, port = stack[-1]
            node = nodes[index]
            ins = node.ins
            while port < len(ins) and ins[port] in number:
                port += 1
            if port < len(ins):
                stack[-1] = (index, port + 1)
                stack.append((producer[ins[port]], 0))
                continue
            stack.pop()
            for w in node.outs:
                number[w] = fresh
                fresh += 1
            result.append((node.gen, tuple([number[w] for w in ins])))
    return NormalForm(d.dom, d.cod, tuple(result), tuple([number[w] for w in outputs]))


def normal_form(d: Diagram) -> Diagram:
    """The canonical representative of ``d``: ``normal_form(a) == normal_form(b)`` iff ``equal(a, b)``."""
    return canonical(d).to_diagram()


def equal(a: Diagram, b: Diagram) -> bool:
    """Decide equality of ``a`` and ``b`` as morphisms of the free Markov category."""
    _check_operand(a, "equal")
    _check_operand(b, "equal")
    if a.dom != b.dom or a.cod != b.cod:
        return False
    return canonical(a) == canonical(b)


class NotEqual(AssertionError):
    """Raised by :func:`assert_equal`; the message is :func:`explain`'s sentence."""


def assert_equal(a: Diagram, b: Diagram) -> None:
    """Raise :class:`NotEqual` with an explanation unless ``equal(a, b)``."""
    if not equal(a, b):
        raise NotEqual(explain(a, b))


def explain(a: Diagram, b: Diagram) -> str:
    """One sentence saying whether ``a`` and ``b`` are equal, and if not, where they differ."""
    _check_operand(a, "explain")
    _check_operand(b, "explain")
    if a.dom != b.dom or a.cod != b.cod:
        return f"They have different types: the left is {a.dom} -> {a.cod}, the right is {b.dom} -> {b.cod}."
    left, right = canonical(a), canonical(b)
    if left == right:
        return "They are equal in the free Markov category (same normal form)."
    counts = _counts(left), _counts(right)
    for gen in sorted(set(counts[0]) | set(counts[1]), key=lambda g: g.name):
        m, n = counts[0].get(gen, 0), counts[1].get(gen, 0)
        if m != n:
            hint = ""
            if not gen.deterministic and max(m, n) > 1:
                hint = (
                    f"; {gen.name!r} is stochastic, so drawing it twice differs from drawing once and "
                    "copying: if it is a function, declare it with deterministic=True"
                )
            return (
                f"Box {gen.name!r} occurs {_times(m)} on the left but {_times(n)} on the right, after "
                f"removing discarded boxes and merging repeated deterministic boxes{hint}."
            )
    return _first_divergence(left, right)


def _counts(nf: NormalForm) -> dict[Generator, int]:
    counts: dict[Generator, int] = {}
    for gen, _ in nf.nodes:
        counts[gen] = counts.get(gen, 0) + 1
    return counts


def _times(n: int) -> str:
    return {0: "nowhere", 1: "once", 2: "twice"}.get(n, f"{n} times")


def _first_divergence(left: NormalForm, right: NormalForm) -> str:
    """Walk both normal forms from the outputs in step and report the first mismatch."""
    sources = _sources(left), _sources(right)
    seen: dict[int, int] = {}
    back: dict[int, int] = {}
    for j, (u, v) in enumerate(zip(left.outputs, right.outputs)):
        stack = [(u, v, f"output {j} (type {left.cod.atoms[j]})")]
        while stack:
            u, v, path = stack.pop()
            if seen.get(u, v) != v or back.get(v, u) != u:
                return (
                    f"Following {path}: the left reuses a wire there (copying) where the right "
                    "has a separate one, or the other way round."
                )
            if u in seen:
                continue
            seen[u], back[v] = v, u
            su, sv = sources[0][u], sources[1][v]
            if su[0] != sv[0] or su[1] != sv[1]:
                return f"Following {path}: the left comes from {_describe(su)} but the right from {_describe(sv)}."
            if su[0] is not None:
                for port, (x, y) in reversed(list(enumerate(zip(su[2], sv[2])))):
                    stack.append((x, y, f"{path}, then input {port} of {su[0].name!r}"))
    return "They differ in how outputs share wires (a copied wire on one side, separate wires on the other)."


def _sources(nf: NormalForm) -> dict[int, tuple[Generator | None, int, tuple[int, ...]]]:
    """For each wire: (generator, output port, input wires), or (None, input index, ())."""
    table: dict[int, tuple[Generator | None, int, tuple[int, ...]]] = {
        i: (None, i, ()) for i in range(len(nf.dom))
    }
    fresh = len(nf.dom)
    for gen, ins in nf.nodes:
        for port in range(len(gen.cod)):
            table[fresh] = (gen, port, ins)
            fresh += 1
    return table


def _describe(source: tuple[Generator | None, int, tuple[int, ...]]) -> str:
    gen, port, _ = source
    if gen is None:
        return f"input {port} directly"
    where = f"output {port} of " if len(gen.cod) > 1 else ""
    return f"{where}box {gen.name!r}"
