"""Hypothesis strategies for random well-typed diagrams (needs the ``dev`` extra).

:func:`diagrams` draws a diagram layer by layer, ``Id @ piece @ Id``, where a piece
is a box of the given signature, a copy, a discard or a swap, so every result is
well typed by construction and built with the public combinators.
:func:`law_variants` then applies random Markov-category laws directly to the term
graph (dead boxes added, deterministic boxes duplicated, nodes reordered), giving
diagrams that must be equal to the original.
"""

from __future__ import annotations

from collections.abc import Sequence

try:
    from hypothesis import strategies as st
except ImportError as error:  # pragma: no cover - exercised in a subprocess by the tests
    raise ImportError(
        "markovcat.strategies needs the hypothesis package, which is not installed: "
        "pip install hypothesis (or install markovcat with its dev extra: pip install 'markovcat[dev]')"
    ) from error

from markovcat.syntax import Box, Copy, Diagram, Discard, Id, Node, Swap, Ty

__all__ = ["SIGNATURE", "types", "diagrams", "law_variants", "duplicate_node", "rewired"]

A, B = Ty("A"), Ty("B")
I = Ty()  # noqa: E741

#: A default signature: deterministic and stochastic boxes of every small arity.
SIGNATURE: tuple[Box, ...] = (
    Box("f", A, B, deterministic=True),
    Box("g", B, A @ B, deterministic=True),
    Box("m", A @ A, A, deterministic=True),
    Box("e", I, B, deterministic=True),
    Box("k", A, B),
    Box("h", A @ B, A),
    Box("p", B, A @ A),
    Box("s", I, A),
    Box("u", B, I),
)


def types(max_size: int = 3) -> st.SearchStrategy[Ty]:
    return st.lists(st.sampled_from(["A", "B"]), max_size=max_size).map(lambda atoms: Ty(*atoms))


@st.composite
def diagrams(
    draw: st.DrawFn,
    dom: Ty | None = None,
    signature: Sequence[Box] = SIGNATURE,
    max_layers: int = 8,
) -> Diagram:
    """A random diagram with domain ``dom`` (random if None) and any codomain."""
    if dom is None:
        dom = draw(types())
    result = Id(dom)
    for _ in range(draw(st.integers(0, max_layers))):
        cod = result.cod.atoms
        options: list[tuple[Diagram, int]] = []
        for box in signature:
            width = len(box.dom)
            for i in range(len(cod) - width + 1):
                if cod[i : i + width] == box.dom.atoms:
                    options.append((box, i))
        for i, atom in enumerate(cod):
            options.append((Copy(Ty(atom)), i))
            options.append((Discard(Ty(atom)), i))
            if i + 1 < len(cod):
                options.append((Swap(Ty(atom), Ty(cod[i + 1])), i))
        if len(cod) > 5:
            options = [(p, i) for p, i in options if len(p.cod) <= len(p.dom)]
        piece, i = draw(st.sampled_from(options))
        left, right = Ty(*cod[:i]), Ty(*cod[i + len(piece.dom) :])
        result = result >> (Id(left) @ piece @ Id(right))
    return result


def _rebuild(d: Diagram, nodes: list[Node], outputs: Sequence[int], n_wires: int) -> Diagram:
    return Diagram(d.dom, d.cod, d.inputs, nodes, outputs, n_wires)


def duplicate_node(d: Diagram, index: int, redirect: Sequence[bool]) -> Diagram:
    """Duplicate node ``index`` on the same inputs; uses of its outputs flagged in ``redirect``
    (one flag per use, in order: node inputs first, then outputs) read the duplicate.

    For a deterministic node this is copy naturality (a law); for a stochastic node
    whose uses are split between both copies it draws twice instead of once.
    """
    node = d.nodes[index]
    shift = {w: d.n_wires + j for j, w in enumerate(node.outs)}
    twin = Node(node.gen, node.ins, tuple(shift[w] for w in node.outs))
    flags = iter(redirect)
    nodes: list[Node] = []
    for i, other in enumerate(d.nodes):
        if i <= index:
            nodes.append(other)
            if i == index:
                nodes.append(twin)
            continue
        ins = tuple(shift[w] if w in shift and next(flags, False) else w for w in other.ins)
        nodes.append(Node(other.gen, ins, other.outs))
    outputs = [shift[w] if w in shift and next(flags, False) else w for w in d.outputs]
    return _rebuild(d, nodes, outputs, d.n_wires + len(node.outs))


@st.composite
def law_variants(draw: st.DrawFn, d: Diagram, signature: Sequence[Box] = SIGNATURE, steps: int = 4) -> Diagram:
    """Apply up to ``steps`` random Markov-category laws to ``d``'s term graph."""
    for _ in range(draw(st.integers(0, steps))):
        law = draw(st.sampled_from(["dead box", "unmerge", "reorder", "identity"]))
        if law == "dead box":
            # discard naturality: a box whose outputs reach nothing can be added
            wires = d.wire_types()
            box = draw(st.sampled_from(list(signature)))
            ins = []
            for atom in box.dom.atoms:
                candidates = [w for w, a in wires.items() if a == atom]
                if not candidates:
                    break
                ins.append(draw(st.sampled_from(candidates)))
            else:
                outs = tuple(range(d.n_wires, d.n_wires + len(box.cod)))
                d = _rebuild(d, [*d.nodes, Node(box.generator, tuple(ins), outs)], d.outputs, d.n_wires + len(outs))
        elif law == "unmerge":
            # copy naturality of a deterministic box: recompute it for some of its uses
            det = [i for i, n in enumerate(d.nodes) if n.gen.deterministic]
            if det:
                index = draw(st.sampled_from(det))
                redirect = draw(st.lists(st.booleans(), min_size=len(d.nodes) * 3 + len(d.outputs)))
                d = duplicate_node(d, index, redirect)
        elif law == "reorder":
            # the same term graph listed in another topological order
            d = _reorder(d, draw(st.randoms(use_true_random=False)))
        else:
            d = d >> Id(d.cod) if draw(st.booleans()) else Id(d.dom) >> d
    return d


def _reorder(d: Diagram, rng: object) -> Diagram:
    written = set(d.inputs)
    pending = list(d.nodes)
    order: list[Node] = []
    while pending:
        ready = [n for n in pending if all(w in written for w in n.ins)]
        node = ready[rng.randrange(len(ready))]  # type: ignore[attr-defined]
        pending.remove(node)
        order.append(node)
        written.update(node.outs)
    return _rebuild(d, order, d.outputs, d.n_wires)


@st.composite
def rewired(draw: st.DrawFn, d: Diagram) -> Diagram:
    """``d`` with one box input or output re-attached to another wire of the same type.

    The result has the same type as ``d`` and may or may not be equal to it.
    """
    types = d.wire_types()
    order = list(d.inputs) + [w for n in d.nodes for w in n.outs]
    written_before = [len(d.inputs)]
    for n in d.nodes:
        written_before.append(written_before[-1] + len(n.outs))
    sites = [(i, p) for i, n in enumerate(d.nodes) for p in range(len(n.ins))]
    sites += [(-1, j) for j in range(len(d.outputs))]
    if not sites:
        return d
    i, p = draw(st.sampled_from(sites))
    nodes, outputs = list(d.nodes), list(d.outputs)
    if i < 0:
        limit, atom = len(order), types[outputs[p]]
    else:
        limit, atom = written_before[i], types[d.nodes[i].ins[p]]
    candidates = [w for w in order[:limit] if types[w] == atom]
    wire = draw(st.sampled_from(candidates))
    if i < 0:
        outputs[p] = wire
    else:
        ins = list(d.nodes[i].ins)
        ins[p] = wire
        nodes[i] = Node(d.nodes[i].gen, tuple(ins), d.nodes[i].outs)
    return _rebuild(d, nodes, outputs, d.n_wires)
