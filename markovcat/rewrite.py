"""Rewriting diagrams with equations, up to the laws of a Markov category.

A :class:`Rule` orients an :class:`~markovcat.Equation` (``lhs -> rhs``, or the
reverse).  Matching and rewriting work on *normal forms*
(:func:`markovcat.markov.normal_form`): the host diagram and the rule's left side are
both pruned (``k >> del == del``) and hash-consed (equal deterministic boxes on equal
inputs merged), so a match is found whatever copies, discards and layout were used
to write either of them.

A :class:`Match` embeds the left side's term graph in the host's term graph:

* every pattern node goes to a host node with the same generator, port by port;
* every pattern *input* goes to a host wire of its type.  Two pattern inputs may go
  to the same wire (the context copies), and an input the pattern discards may go to
  any wire of its type that is not downstream of the match;
* two pattern nodes may go to the same host node only if it is deterministic
  (``f >> copy == copy >> (f @ f)``); stochastic nodes are matched one-to-one;
* *convexity*: no bound input may depend on a matched node, so that replacing the
  match keeps the graph acyclic;
* *internal wires*: a wire produced inside the match that is not one of the
  pattern's outputs may be read outside it only if the matched nodes it depends on
  are all deterministic; those nodes are then kept for the outside readers (this is
  ``f >> copy == copy >> (f @ f)`` read backwards).  A stochastic draw read both
  inside and outside the match is never matched: replacing it would change how many
  times it is drawn.

:func:`rewrite` replaces a match by the rule's right side: readers of each pattern
output now read the corresponding output of the right side.  When a pattern output
is one of its inputs passed straight through, the readers of that wire that are
not upstream of the match are redirected (any routing of a copied wire through an
identity is the same morphism).  Some readers only may be redirected
(:func:`reader_choices`) when the rest can keep the old value soundly: the output is
computed by deterministic matched nodes, or is an input passed through.
:func:`rewrites` tries every such choice.

What a rewrite proves: if the rule's equation holds in a Markov category, the
rewritten diagram equals the original there (each step above is a Markov-category
law or the equation composed with a context).  What it does not do: find matches
that need an equation other than the Markov laws to appear, or bind an input the
pattern discards to a wire that is not there (e.g. a fresh ``unit`` for
``e = g inv(g)``, or a draw the normal form has pruned).  A match none of whose
outputs is read by the rest of the diagram is not reported (replacing it would
change nothing).

>>> from markovcat import Id, equal
>>> from markovcat.groups import Group
>>> G = Group("G")
>>> assoc = Rule(G.axioms[0])
>>> d = (G.mul @ Id(G.ty @ G.ty)) >> (G.mul @ Id(G.ty)) >> G.mul   # ((a b) c) d
>>> len(matches(d, assoc)), len(rewrites(d, assoc))
(2, 2)
>>> all(any(equal(back, d) for back in rewrites(r, assoc.reversed())) for r in rewrites(d, assoc))
True
"""

from __future__ import annotations

from collections.abc import Collection, Iterator
from dataclasses import dataclass
from itertools import combinations, product
from typing import TYPE_CHECKING, Literal

from markovcat.equation import Equation
from markovcat.frozen import reduce_frozen
from markovcat.markov import equal, normal_form
from markovcat.syntax import Diagram, Generator, Node

if TYPE_CHECKING:  # pragma: no cover
    from markovcat.proof import Proof

__all__ = ["Rule", "Match", "Reader", "as_rule", "matches", "rewrite", "reader_choices", "rewrites", "rewrites_to"]

Direction = Literal["forward", "backward"]
#: A place that reads a wire: ``(node index, input port)``, or ``(-1, output index)``.
Reader = tuple[int, int]
#: At most this many readers of one output are split into every subset (else one at a time).
MAX_SPLIT = 4


class Rule:
    """An equation used as a rewriting rule, left to right (``"forward"``) or right to left.

    The rule's *left side* is what is searched for and replaced by its *right side*.
    ``source`` records where the equation came from: ``None`` for an assumption (an
    axiom or hypothesis), or the :class:`~markovcat.proof.Proof` that established it.
    """

    __slots__ = ("equation", "direction", "source", "pattern", "replacement")
    equation: Equation
    """The equation the rule rewrites by."""
    direction: Direction
    """``"forward"`` (left side to right side) or ``"backward"``."""
    source: Proof | None
    pattern: Diagram
    """The side that is looked for (the left one, forward)."""
    replacement: Diagram
    """The side a match is replaced by."""

    def __init__(
        self, equation: Equation | Rule, direction: Direction = "forward", source: Proof | None = None
    ) -> None:
        if isinstance(equation, Rule):
            direction = equation.direction if direction == "forward" else _flip(equation.direction)
            source = source or equation.source
            equation = equation.equation
        if not isinstance(equation, Equation):
            raise TypeError(f"a rule is built from an Equation, got {type(equation).__name__} {equation!r}")
        if direction not in ("forward", "backward"):
            raise ValueError(f"a rule's direction is 'forward' or 'backward', got {direction!r}")
        lhs, rhs = (equation.lhs, equation.rhs) if direction == "forward" else (equation.rhs, equation.lhs)
        object.__setattr__(self, "equation", equation)
        object.__setattr__(self, "direction", direction)
        object.__setattr__(self, "source", source)
        object.__setattr__(self, "pattern", normal_form(lhs))
        object.__setattr__(self, "replacement", normal_form(rhs))

    def __setattr__(self, name: str, value: object) -> None:
        raise AttributeError("rules are immutable")

    __reduce__ = reduce_frozen

    @classmethod
    def from_proof(cls, proof: Proof, direction: Direction = "forward") -> Rule:
        """The equation a proof establishes (first diagram = last), after checking the proof."""
        return proof.as_rule(direction)

    def reversed(self) -> Rule:
        """The same equation used in the other direction."""
        return Rule(self.equation, _flip(self.direction), self.source)

    @property
    def name(self) -> str:
        """The equation's name, marked ``(reversed)`` when used right to left."""
        base = self.equation.name or "an unnamed equation"
        return base if self.direction == "forward" else f"{base} (reversed)"

    @property
    def lhs(self) -> Diagram:
        """The side that is searched for (in normal form)."""
        return self.pattern

    @property
    def rhs(self) -> Diagram:
        """The side that replaces it (in normal form)."""
        return self.replacement

    def is_assumption(self) -> bool:
        """True if the equation is assumed (an axiom or hypothesis) rather than proved here."""
        return self.source is None

    def __eq__(self, other: object) -> bool:
        """Same name and the same two sides, in the same direction (compared as normal forms)."""
        if not isinstance(other, Rule):
            return NotImplemented
        return (self.name, self.pattern, self.replacement) == (other.name, other.pattern, other.replacement)

    def __hash__(self) -> int:
        return hash((self.name, self.pattern, self.replacement))

    def __repr__(self) -> str:
        return f"Rule({self.name!r})"


def _flip(direction: Direction) -> Direction:
    return "backward" if direction == "forward" else "forward"


def as_rule(rule: Rule | Equation) -> Rule:
    """A :class:`Rule` from a rule or an equation (used forwards)."""
    if isinstance(rule, Rule):
        return rule
    if isinstance(rule, Equation):
        return Rule(rule)
    raise TypeError(f"expected a Rule or an Equation, got {type(rule).__name__} {rule!r}")


@dataclass(frozen=True)
class Match:
    """Where a rule's left side sits in a host diagram (the host is in normal form).

    ``nodes[i]`` is the host node matched by pattern node ``i``; ``wires[w]`` the host
    wire matched by pattern wire ``w`` (so ``wires[:len(pattern.dom)]`` are the bound
    inputs).
    """

    rule: Rule
    """The rule whose pattern matched."""
    host: Diagram
    """The diagram the pattern was found in."""
    nodes: tuple[int, ...]
    """``nodes[i]``: the host node matched by pattern node ``i``."""
    wires: tuple[int, ...]
    """``wires[w]``: the host wire matched by pattern wire ``w``."""

    @property
    def inputs(self) -> tuple[int, ...]:
        """The host wires bound to the pattern's inputs, in order."""
        return self.wires[: len(self.rule.pattern.dom)]

    def __repr__(self) -> str:
        return f"<match of {self.rule.name!r}: pattern nodes -> host nodes {list(self.nodes)}>"


class _Host:
    """Indices over a normal-form host diagram (wires ``0 .. n_wires-1``)."""

    def __init__(self, d: Diagram) -> None:
        self.d = d
        self.types = d.wire_types()
        self.wires = sorted(self.types)
        self.producer: dict[int, tuple[int, int]] = {}
        self.readers: dict[int, list[int]] = {w: [] for w in self.types}
        self.slots: dict[int, list[Reader]] = {w: [] for w in self.types}
        self.by_gen: dict[Generator, list[int]] = {}
        for i, node in enumerate(d.nodes):
            self.by_gen.setdefault(node.gen, []).append(i)
            for port, w in enumerate(node.outs):
                self.producer[w] = (i, port)
            for port, w in enumerate(node.ins):
                self.readers[w].append(i)
                self.slots[w].append((i, port))
        for j, w in enumerate(d.outputs):
            self.slots[w].append((-1, j))

    def downstream(self, nodes: set[int]) -> set[int]:
        """Every wire written by ``nodes`` or by a node that depends on them."""
        seen: set[int] = set()
        stack = [w for i in nodes for w in self.d.nodes[i].outs]
        while stack:
            w = stack.pop()
            if w in seen:
                continue
            seen.add(w)
            for reader in self.readers[w]:
                stack.extend(self.d.nodes[reader].outs)
        return seen

    def upstream(self, wires: set[int]) -> set[int]:
        """Every node that ``wires`` depend on."""
        found: set[int] = set()
        stack = list(wires)
        while stack:
            source = self.producer.get(stack.pop())
            if source is None or source[0] in found:
                continue
            found.add(source[0])
            stack.extend(self.d.nodes[source[0]].ins)
        return found


def matches(diagram: Diagram, rule: Rule | Equation) -> list[Match]:
    """Every embedding of the rule's left side into the normal form of ``diagram``."""
    return list(_matches(_Host(normal_form(diagram)), as_rule(rule)))


def _matches(host: _Host, rule: Rule) -> Iterator[Match]:
    pattern = rule.pattern
    p_producer: dict[int, tuple[int, int]] = {}
    for i, node in enumerate(pattern.nodes):
        for port, w in enumerate(node.outs):
            p_producer[w] = (i, port)
    empty: tuple[dict[int, int], dict[int, int]] = ({}, {})
    stack = [empty]  # partial (node map, wire map) pairs still to extend
    while stack:
        node_map, wire_map = stack.pop()
        root = next((i for i in range(len(pattern.nodes) - 1, -1, -1) if i not in node_map), None)
        if root is None:
            yield from _complete(rule, host, node_map, wire_map)
            continue
        for candidate in reversed(host.by_gen.get(pattern.nodes[root].gen, [])):
            extended = _bind(pattern, p_producer, host, node_map, wire_map, root, candidate)
            if extended is not None:
                stack.append(extended)


def _bind(
    pattern: Diagram,
    p_producer: dict[int, tuple[int, int]],
    host: _Host,
    node_map: dict[int, int],
    wire_map: dict[int, int],
    root: int,
    candidate: int,
) -> tuple[dict[int, int], dict[int, int]] | None:
    """Extend a partial match by ``root -> candidate`` and everything that forces."""
    node_map, wire_map = dict(node_map), dict(wire_map)
    images: dict[int, int] = {}
    for p, h in node_map.items():
        images[h] = p
    todo = [(root, candidate)]
    while todo:
        p, h = todo.pop()
        if p in node_map:
            if node_map[p] != h:
                return None
            continue
        p_node, h_node = pattern.nodes[p], host.d.nodes[h]
        if p_node.gen != h_node.gen:
            return None
        if h in images and not p_node.gen.deterministic:
            return None  # one stochastic draw cannot stand for two
        node_map[p] = h
        images[h] = p
        for pw, hw in zip(p_node.outs, h_node.outs, strict=True):
            if wire_map.setdefault(pw, hw) != hw:
                return None
        for pw, hw in zip(p_node.ins, h_node.ins, strict=True):
            if wire_map.setdefault(pw, hw) != hw:
                return None
            source = p_producer.get(pw)
            if source is not None:
                h_source = host.producer.get(hw)
                if h_source is None or h_source[1] != source[1]:
                    return None
                todo.append((source[0], h_source[0]))
    return node_map, wire_map


def _complete(rule: Rule, host: _Host, node_map: dict[int, int], wire_map: dict[int, int]) -> Iterator[Match]:
    """Bind the inputs the pattern discards, then keep the bindings that are valid matches."""
    pattern = rule.pattern
    matched = set(node_map.values())
    below = host.downstream(matched)
    free = [w for w in pattern.inputs if w not in wire_map]
    atoms = dict(zip(pattern.inputs, pattern.dom.atoms, strict=True))
    choices = [[hw for hw in host.wires if host.types[hw] == atoms[pw] and hw not in below] for pw in free]
    for chosen in product(*choices):
        full = dict(wire_map)
        full.update(zip(free, chosen, strict=True))
        if any(full[pw] in below for pw in pattern.inputs):
            continue  # not convex: an input depends on the match
        if not _internal_reads_ok(pattern, host, node_map, full, matched):
            continue
        if not _effective(pattern, host, full, matched):
            continue  # nothing reads the match's outputs: replacing it would change nothing
        yield Match(
            rule,
            host.d,
            tuple(node_map[i] for i in range(len(pattern.nodes))),
            tuple(full[w] for w in range(pattern.n_wires)),
        )


def _fixed(host: _Host, matched: set[int], inputs: set[int]) -> set[int]:
    """Host nodes whose inputs a rewrite leaves alone: the matched ones and those upstream of the match."""
    return matched | host.upstream(inputs)


def _effective(pattern: Diagram, host: _Host, wires: dict[int, int], matched: set[int]) -> bool:
    """True if some output of the match is read by the rest of the host (so a rewrite changes something)."""
    fixed = _fixed(host, matched, {wires[w] for w in pattern.inputs})
    host_outputs = set(host.d.outputs)
    for pw in pattern.outputs:
        hw = wires[pw]
        if hw in host_outputs or any(r not in fixed for r in host.readers[hw]):
            return True
    return False


def _internal_reads_ok(
    pattern: Diagram, host: _Host, node_map: dict[int, int], wires: dict[int, int], matched: set[int]
) -> bool:
    """Internal wires read outside the match must depend on deterministic matched nodes only."""
    outputs = {wires[w] for w in pattern.outputs}
    host_outputs = set(host.d.outputs)
    needed: list[int] = []
    for h in matched:
        for w in host.d.nodes[h].outs:
            if w in outputs:
                continue
            if w in host_outputs or any(r not in matched for r in host.readers[w]):
                needed.append(h)
                break
    seen: set[int] = set()
    while needed:
        h = needed.pop()
        if h in seen:
            continue
        seen.add(h)
        if not host.d.nodes[h].gen.deterministic:
            return False
        for w in host.d.nodes[h].ins:
            source = host.producer.get(w)
            if source is not None and source[0] in matched:
                needed.append(source[0])
    return True


def rewrite(
    diagram: Diagram, rule: Rule | Equation, match: Match, readers: Collection[Reader] | None = None
) -> Diagram:
    """``diagram`` with ``match`` replaced by the rule's right side (returned in normal form).

    By default every reader of the match's outputs (outside the match) now reads the
    right side.  ``readers`` (see :func:`reader_choices`) redirects only those places;
    the rest keep reading the old outputs, which is sound when the part of the match
    they depend on is deterministic (``f >> copy == copy >> (f @ f)``) or passes an
    input straight through, and refused otherwise.
    """
    rule = as_rule(rule)
    host_d = normal_form(diagram)
    if match.host != host_d:
        raise ValueError("this match was found in a different diagram (matches refer to the host's normal form)")
    if match.rule != rule:
        raise ValueError(f"this match is of rule {match.rule.name!r}, not of {rule.name!r}")
    host = _Host(host_d)
    chosen = None if readers is None else frozenset(readers)
    if chosen is not None and chosen not in _reader_choices(host, match):
        raise ValueError(
            "these readers cannot be redirected on their own: each must read an output of the match, and the "
            "part of the match the others keep reading must be deterministic (a stochastic draw is not split)"
        )
    return _rewrite(host, rule, match, chosen)


def reader_choices(diagram: Diagram, match: Match) -> list[frozenset[Reader] | None]:
    """The ways to redirect readers of the match's outputs: ``None`` (all), then proper subsets.

    A subset is offered only for outputs that may be split (see :func:`rewrite`); with
    more than :data:`MAX_SPLIT` readers of one output, one reader at a time.
    """
    host_d = normal_form(diagram)
    if match.host != host_d:
        raise ValueError("this match was found in a different diagram (matches refer to the host's normal form)")
    return _reader_choices(_Host(host_d), match)


def _reader_choices(host: _Host, match: Match) -> list[frozenset[Reader] | None]:
    pattern = match.rule.pattern
    matched = set(match.nodes)
    fixed = _fixed(host, matched, set(match.inputs))
    options: list[list[frozenset[Reader]]] = []
    for hw in dict.fromkeys(match.wires[pw] for pw in pattern.outputs):
        eligible = [slot for slot in host.slots[hw] if slot[0] == -1 or slot[0] not in fixed]
        if len(eligible) < 2 or not _splittable(host, matched, hw):
            options.append([frozenset(eligible)])
            continue
        if len(eligible) <= MAX_SPLIT:
            subsets = [
                frozenset(c) for size in range(len(eligible), 0, -1) for c in combinations(eligible, size)
            ]
        else:
            subsets = [frozenset(eligible)] + [frozenset([slot]) for slot in eligible]
        options.append(subsets)
    choices: list[frozenset[Reader] | None] = [None]
    for combo in product(*options):
        union = frozenset().union(*combo)
        if combo and any(len(part) < len(opts[0]) for part, opts in zip(combo, options, strict=True)) and union:
            choices.append(union)
    return choices


def _splittable(host: _Host, matched: set[int], wire: int) -> bool:
    """May some readers of ``wire`` keep the old value? Yes if the match computes it deterministically."""
    stack = [wire]
    seen: set[int] = set()
    while stack:
        source = host.producer.get(stack.pop())
        if source is None or source[0] not in matched or source[0] in seen:
            continue
        seen.add(source[0])
        node = host.d.nodes[source[0]]
        if not node.gen.deterministic:
            return False
        stack.extend(node.ins)
    return True


def _rewrite(host: _Host, rule: Rule, match: Match, chosen: frozenset[Reader] | None = None) -> Diagram:
    host_d, pattern, replacement = host.d, rule.pattern, rule.replacement
    fixed = _fixed(host, set(match.nodes), set(match.inputs))
    fresh = host_d.n_wires
    where = dict(zip(replacement.inputs, match.inputs, strict=True))
    added: list[Node] = []
    for node in replacement.nodes:
        outs = tuple(range(fresh, fresh + len(node.outs)))
        fresh += len(outs)
        where.update(zip(node.outs, outs, strict=True))
        added.append(Node(node.gen, tuple(where[w] for w in node.ins), outs))
    redirect: dict[int, int] = {}
    for pw, rw in zip(pattern.outputs, replacement.outputs, strict=True):
        old, new = match.wires[pw], where[rw]
        if old != new:
            redirect.setdefault(old, new)

    def moved(slot: Reader, wire: int) -> int:
        return redirect.get(wire, wire) if chosen is None or slot in chosen else wire

    kept = [
        node if i in fixed else Node(node.gen, tuple(moved((i, p), w) for p, w in enumerate(node.ins)), node.outs)
        for i, node in enumerate(host_d.nodes)
    ]
    outputs = [moved((-1, j), w) for j, w in enumerate(host_d.outputs)]
    nodes = _topological(host_d.inputs, kept + added)
    return normal_form(Diagram(host_d.dom, host_d.cod, host_d.inputs, nodes, outputs, fresh))


def _topological(inputs: tuple[int, ...], nodes: list[Node]) -> list[Node]:
    """Order ``nodes`` so that every wire is written before it is read (Kahn's algorithm)."""
    writer: dict[int, int] = {}
    for i, node in enumerate(nodes):
        for w in node.outs:
            writer[w] = i
    waiting = [0] * len(nodes)
    dependents: list[list[int]] = [[] for _ in nodes]
    for i, node in enumerate(nodes):
        for w in set(node.ins):
            if w in writer:
                waiting[i] += 1
                dependents[writer[w]].append(i)
    ready = [i for i in range(len(nodes) - 1, -1, -1) if waiting[i] == 0]
    order: list[Node] = []
    while ready:
        i = ready.pop()
        order.append(nodes[i])
        for j in dependents[i]:
            waiting[j] -= 1
            if waiting[j] == 0:
                ready.append(j)
    if len(order) != len(nodes):  # pragma: no cover - excluded by the convexity check
        raise AssertionError("rewriting produced a cycle")
    return order


def rewrites(diagram: Diagram, rule: Rule | Equation) -> list[Diagram]:
    """Every distinct one-step rewrite of ``diagram`` by ``rule`` (normal forms, no repeats).

    For every match, every way of redirecting its readers (:func:`reader_choices`).
    """
    rule = as_rule(rule)
    host = _Host(normal_form(diagram))
    results: list[Diagram] = []
    seen: set[Diagram] = set()
    for match in _matches(host, rule):
        for chosen in _reader_choices(host, match):
            result = _rewrite(host, rule, match, chosen)
            if result not in seen:
                seen.add(result)
                results.append(result)
    return results


def rewrites_to(diagram: Diagram, rule: Rule | Equation, target: Diagram) -> bool:
    """True iff some one-step rewrite of ``diagram`` by ``rule`` is ``equal`` to ``target``."""
    return any(equal(result, target) for result in rewrites(diagram, rule))

