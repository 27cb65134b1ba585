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

import gc
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from markovcat.syntax import Diagram, Generator, Node, Ty, check_operand

__all__ = ["NormalForm", "MarkedKernel", "normal_form", "equal", "explain", "assert_equal", "NotEqual"]


@dataclass(frozen=True)
class NormalForm:
    """The canonical term graph of a diagram.

    Wires ``0 .. len(dom)-1`` are the inputs; node ``i`` (in ``nodes``) writes the next
    ``len(gen.cod)`` wire numbers in order.  Two diagrams are equal in the free
    Markov category iff their normal forms are ``==``.
    """

    dom: Ty
    """The input type."""
    cod: Ty
    """The output type."""
    nodes: tuple[tuple[Generator, tuple[int, ...]], ...]
    """The nodes in canonical order, each ``(generator, the wires it reads)``."""
    outputs: tuple[int, ...]
    """The wire of each output, in order."""

    @classmethod
    def of(cls, d: Diagram) -> NormalForm:
        """The normal form of ``d`` (linear time, iterative: no recursion limit); ``normal_form(d)`` is its diagram."""
        return _normal_form_of(d)

    def to_diagram(self) -> Diagram:
        """A diagram with this normal form (its canonical term graph as a diagram)."""
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


#: Diagrams with more boxes than this are normalised with the cyclic garbage collector paused.
GC_PAUSE_ABOVE = 2000
_gc_lock = threading.Lock()
_gc_users = 0
_gc_restore = False


@contextmanager
def _gc_paused() -> Iterator[None]:
    """Pause the cyclic garbage collector for a linear pass that allocates many objects and no cycles.

    Normalising allocates a tuple per box that lives as long as the normal form, and the
    collector would otherwise rescan them again and again (about a quarter of the time at
    100,000 boxes).  Only the collector's scheduling changes: reference counting still
    frees everything at once, and the previous state is restored on exit, also on error.
    Nested and concurrent calls share one pause; the collector is switched back on by the
    last one to leave, and only if it was on when the first one came in.
    """
    global _gc_users, _gc_restore
    with _gc_lock:
        if _gc_users == 0:
            _gc_restore = gc.isenabled()
            gc.disable()
        _gc_users += 1
    try:
        yield
    finally:
        with _gc_lock:
            _gc_users -= 1
            if _gc_users == 0 and _gc_restore:
                gc.enable()


def _normal_form_of(d: Diagram) -> NormalForm:
    """The normal form of ``d`` (linear time, iterative: no recursion limit)."""
    check_operand(d, "normal_form")
    if len(d) > GC_PAUSE_ABOVE:
        with _gc_paused():
            return _canonical(d)
    return _canonical(d)


def _canonical(d: Diagram) -> NormalForm:
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
    return _normal_form_of(d).to_diagram()


def equal(a: Diagram, b: Diagram) -> bool:
    """Decide equality of ``a`` and ``b`` as morphisms of the free Markov category.

    >>> from markovcat.syntax import Box, Copy, Ty
    >>> X, Y = Ty("X"), Ty("Y")
    >>> f, k = Box("f", X, Y, deterministic=True), Box("k", X, Y)
    >>> equal(f >> Copy(Y), Copy(X) >> (f @ f))  # a function commutes with copying
    True
    >>> equal(k >> Copy(Y), Copy(X) >> (k @ k))  # a kernel does not: one draw copied is not two draws
    False
    """
    check_operand(a, "equal")
    check_operand(b, "equal")
    if a.dom != b.dom or a.cod != b.cod:
        return False
    if len(a) + len(b) > GC_PAUSE_ABOVE:
        with _gc_paused():
            return _canonical(a) == _canonical(b)
    return _canonical(a) == _canonical(b)


class NotEqual(AssertionError):
    """Raised by :func:`assert_equal`; the message is :func:`explain`'s sentence."""


def assert_equal(a: Diagram, b: Diagram) -> None:
    """Raise :class:`NotEqual` with an explanation unless ``equal(a, b)``."""
    if not equal(a, b):
        raise NotEqual(explain(a, b))


def explain(a: Diagram, b: Diagram) -> str:
    """A short account of whether ``a`` and ``b`` are equal, and if not, where they first differ.

    The two normal forms are walked back from the outputs in step (linear time); the
    first place where they disagree is named, with the path to it (long paths are
    shortened), and the cause is traced upstream: when one side copies a wire where the
    other computes it twice, the blame goes past deterministic boxes to the stochastic
    draw (or the input) that makes the two computations differ.  A one-line summary of
    the other differences (boxes that occur a different number of times) follows.  The
    message stays short however large the diagrams are.

    >>> from markovcat.syntax import Box, Copy, Ty
    >>> X, Y = Ty("X"), Ty("Y")
    >>> k = Box("k", X, Y)
    >>> print(explain(k >> Copy(Y), Copy(X) >> (k @ k)).split(";")[0])
    Following output 1 (type Y): the left draws box 'k' once and copies the result, where the right draws it separately
    """
    check_operand(a, "explain")
    check_operand(b, "explain")
    if a.dom != b.dom or a.cod != b.cod:
        return (
            f"They have different types: the left is {_clip(str(a.dom))} -> {_clip(str(a.cod))}, "
            f"the right is {_clip(str(b.dom))} -> {_clip(str(b.cod))}."
        )
    left, right = _normal_form_of(a), _normal_form_of(b)
    if left == right:
        return "They are equal in the free Markov category (same normal form)."
    first = _first_divergence(left, right)
    rest = _count_summary(left, right)
    return f"{first} {rest}" if rest else first


#: At most this many differences are named in a summary, and this many steps of a path shown.
_SHOWN = 4
#: Box names longer than this are shortened in messages.
_NAME_LIMIT = 60

Source = tuple[Generator | None, int, tuple[int, ...]]
#: A path back from an output: ``(previous link, input port, box name)``, or ``(output index,)``.
Link = tuple[object, ...]


def _clip(text: str) -> str:
    return text if len(text) <= _NAME_LIMIT else text[: _NAME_LIMIT - 3] + "..."


def _box(gen: Generator) -> str:
    return repr(_clip(gen.name))


def _counts(nf: NormalForm) -> dict[Generator, int]:
    counts: dict[Generator, int] = {}
    for gen, _ in nf.nodes:
        counts[gen] = counts.get(gen, 0) + 1
    return counts


def _boxes(n: int) -> str:
    return "1 box" if n == 1 else f"{n:,} boxes"


def _times(n: int) -> str:
    return {0: "nowhere", 1: "once", 2: "twice"}.get(n, f"{n:,} times")


def _count_summary(left: NormalForm, right: NormalForm) -> str:
    """Which boxes occur a different number of times (after normalising), at most a few named."""
    counts = _counts(left), _counts(right)
    differ = [
        (gen, counts[0].get(gen, 0), counts[1].get(gen, 0))
        for gen in {**counts[0], **counts[1]}
        if counts[0].get(gen, 0) != counts[1].get(gen, 0)
    ]
    if not differ:
        return ""
    differ.sort(key=lambda item: (item[0].deterministic, item[0].name))  # stochastic boxes first
    shown = ", ".join(f"{_box(gen)} {_times(m)} vs {_times(n)}" for gen, m, n in differ[:_SHOWN])
    more = f" and {len(differ) - _SHOWN:,} more" if len(differ) > _SHOWN else ""
    total = f" ({_boxes(len(left.nodes))} on the left, {_boxes(len(right.nodes))} on the right)"
    return f"In all, after removing discarded boxes and merging repeated deterministic ones{total}: {shown}{more}."


def _path(link: Link, cod: Ty) -> str:
    """'output j (type T)' followed by the inputs taken back from it, long paths shortened."""
    steps: list[str] = []
    while len(link) == 3:
        previous, port, name = link
        steps.append(f"input {port} of {name}")
        link = previous  # type: ignore[assignment]
    j = link[0]
    assert isinstance(j, int)
    head = f"output {j} (type {cod.atoms[j]})"
    steps.reverse()
    if not steps:
        return head
    runs: list[list[Any]] = []  # consecutive repeats of one step are said once
    for step in steps:
        if runs and runs[-1][0] == step:
            runs[-1][1] += 1
        else:
            runs.append([step, 1])
    said = [step if n == 1 else f"{step} ({n:,} times in a row)" for step, n in runs]
    if len(said) > 2 * _SHOWN:
        skipped = sum(n for _, n in runs[_SHOWN:-_SHOWN])
        said = [*said[:_SHOWN], f"... ({skipped:,} more steps) ...", *said[-_SHOWN:]]
    return f"{head}, then " + ", then ".join(said)


def _first_divergence(left: NormalForm, right: NormalForm) -> str:
    """Walk both normal forms from the outputs in step and describe the first mismatch (linear time)."""
    sources = _sources(left), _sources(right)
    seen: dict[int, int] = {}
    back: dict[int, int] = {}
    for j, (u0, v0) in enumerate(zip(left.outputs, right.outputs)):
        stack: list[tuple[int, int, Link]] = [(u0, v0, (j,))]
        while stack:
            u, v, link = stack.pop()
            if seen.get(u, v) != v:  # the left shares u where the right has two wires
                return _sharing(link, left.cod, "left", sources[1], seen[u], v)
            if back.get(v, u) != u:  # the right shares v where the left has two wires
                return _sharing(link, left.cod, "right", sources[0], back[v], u)
            if u in seen:
                continue
            seen[u], back[v] = v, u
            su, sv = sources[0][u], sources[1][v]
            if su[0] != sv[0] or su[1] != sv[1]:
                return (
                    f"Following {_path(link, left.cod)}: the left comes from {_describe(su)} "
                    f"but the right from {_describe(sv)}."
                )
            gen = su[0]
            if gen is not None:
                name = _box(gen)
                for port in range(len(su[2]) - 1, -1, -1):
                    stack.append((su[2][port], sv[2][port], (link, port, name)))
    # not reached: normal forms that differ differ somewhere on this walk
    return "They differ in how outputs share wires (a copied wire on one side, separate wires on the other)."


def _sharing(link: Link, cod: Ty, sharer: str, sources: dict[int, Source], x: int, y: int) -> str:
    """One side uses one wire where the other has two, ``x`` and ``y``: trace why upstream."""
    other = "right" if sharer == "left" else "left"
    where = f"Following {_path(link, cod)}"
    steps = 0
    while True:
        sx, sy = sources[x], sources[y]
        gen = sx[0]
        if gen is None or sx[0] != sy[0] or sx[1] != sy[1]:
            return (
                f"{where}: the {sharer} reuses one wire where the {other} has two different ones, which come "
                f"from {_describe(sx)} and from {_describe(sy)}."
            )
        if not gen.deterministic:
            via = f" (reached through {_boxes(steps)}, deterministic, computed twice)" if steps else ""
            return (
                f"{where}: the {sharer} draws box {_box(gen)} once and copies the result, where the {other} draws "
                f"it separately{via}; {_box(gen)} is stochastic, so drawing it twice differs from drawing once "
                "and copying: if it is a function, declare it with deterministic=True."
            )
        # two occurrences of one deterministic box: they differ only because some input differs
        port = next(p for p, (i, k) in enumerate(zip(sx[2], sy[2])) if i != k)
        x, y = sx[2][port], sy[2][port]
        steps += 1


def _sources(nf: NormalForm) -> dict[int, Source]:
    """For each wire: (generator, output port, input wires), or (None, input index, ())."""
    table: dict[int, Source] = {i: (None, i, ()) for i in range(len(nf.dom))}
    fresh = len(nf.dom)
    for gen, ins in nf.nodes:
        for port in range(len(gen.cod)):
            table[fresh] = (gen, port, ins)
            fresh += 1
    return table


def _describe(source: Source) -> str:
    gen, port, _ = source
    if gen is None:
        return f"input {port} directly"
    where = f"output {port} of " if len(gen.cod) > 1 else ""
    return f"{where}box {_box(gen)}"


@dataclass(frozen=True)
class MarkedKernel:
    """The data of a box that stands for a construction on a kernel: the construction's ``mark`` and the kernel.

    The one mechanism behind ``ave`` boxes (:func:`markovcat.symmetrisation.ave`, mark ``"ave"``)
    and ``E[...]`` boxes (:func:`markovcat.theorems.expectation`, mark ``"E"``).  The kernel is kept
    as its normal form, so kernels equal in the free Markov category give the same box, and the
    mark keeps two constructions on one kernel apart.
    """

    mark: str
    """Which construction the box stands for: ``"ave"`` or ``"E"``."""
    kernel: NormalForm
    """The normal form of the kernel the construction is applied to."""

    @staticmethod
    def of(box: Any, mark: str) -> Diagram | None:
        """The kernel of ``box`` (a Box or a Generator) if its data is a MarkedKernel with ``mark``, else None."""
        gen = getattr(box, "generator", box)
        data = getattr(gen, "data", None)
        if isinstance(data, MarkedKernel) and data.mark == mark:
            return data.kernel.to_diagram()
        return None

