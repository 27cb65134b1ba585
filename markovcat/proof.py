"""Checked equational proofs: chains of diagrams, each step justified by a rule.

A :class:`Proof` is ``d0 = d1 = ... = dn``.  Each step ``d_i = d_{i+1}`` names its
justification:

* ``"Markov"``: ``markovcat.equal(d_i, d_{i+1})``, the laws of the free Markov
  category (decided, see :mod:`markovcat.markov`);
* a :class:`~markovcat.rewrite.Rule` or an :class:`~markovcat.Equation` (used left to
  right; ``rule.reversed()`` or ``Rule(eq, "backward")`` for right to left), or a
  checked :class:`Proof` (its equation, first diagram = last): the step holds iff
  some one-step rewrite of ``d_i`` by the rule is ``equal`` to ``d_{i+1}``;
* ``times=n`` asks for exactly ``n`` successive rewrites by the same rule, and
  ``times="repeatedly"`` for any number from 1 to :data:`MAX_REPEAT`.

What :meth:`Proof.check` proves: ``d0 = dn`` in every Markov category in which the
cited equations hold.  It does not check the cited equations themselves: axioms and
hypotheses are assumptions (listed by :meth:`Proof.assumptions`), and a rule taken
from another proof is only as good as that proof, which :meth:`Proof.as_rule`
checks first.  :meth:`Proof.reversed` reads a chain backwards and :meth:`Proof.then`
joins two; either result is checked afresh (a reversed step that would have to
invent a wire, such as ``e = g inv(g)`` with no ``g`` at hand, fails).

>>> from markovcat.groups import Group
>>> from markovcat.program import program
>>> G = Group("G")
>>> assoc, left_unit = G.axioms[0], G.axioms[1]
>>> T = G.ty
>>> start = program(T @ T, T)(lambda a, b: G.mul(G.mul(G.unit(), a), b))
>>> middle = program(T @ T, T)(lambda a, b: G.mul(G.unit(), G.mul(a, b)))
>>> p = Proof(start, name="(e a) b = a b").step(middle, by=assoc).step(G.mul, by=left_unit)
>>> p.check()
True
>>> Proof(G.mul).step(middle, by=left_unit).check()
Traceback (most recent call last):
...
markovcat.proof.ProofError: step 1 of the proof (d0 = d1) by 'left unit' fails: the rule's left side does not ...
...
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from markovcat.equation import Equation
from markovcat.frozen import reduce_frozen
from markovcat.markov import NormalForm, equal, explain, normal_form
from markovcat.rewrite import Direction, Rule, as_rule, matches, rewrites
from markovcat.syntax import Diagram, check_operand

__all__ = ["Proof", "Step", "ProofError", "MAX_REPEAT", "describe"]

#: The most rewrites one ``times="repeatedly"`` step may chain.
MAX_REPEAT = 8
#: The most distinct intermediate diagrams a multi-rewrite step may visit.
MAX_STATES = 5000

Times = int | Literal["repeatedly"]


class ProofError(AssertionError):
    """A proof step that does not hold; the message names the step, the rule and both sides."""


@dataclass(frozen=True)
class Step:
    """One step ``source = target``, justified by ``rule`` (``None``: the Markov laws)."""

    target: Diagram
    rule: Rule | None
    times: Times = 1

    @property
    def reason(self) -> str:
        if self.rule is None:
            return "Markov"
        count = "" if self.times == 1 else (" repeatedly" if self.times == "repeatedly" else f" ({self.times} times)")
        return f"{self.rule.name}{count}"


class Proof:
    """A chain of diagrams ``d0 = d1 = ... = dn``, each step justified (see the module doc).

    Build it with :meth:`step` (which returns a new, longer proof), check it with
    :meth:`check`, draw it with ``proof.equation().draw(path)``, and reuse it with
    :meth:`as_rule`.
    """

    __slots__ = ("start", "steps", "name", "_checked")
    start: Diagram
    """The diagram the chain starts from."""
    steps: tuple[Step, ...]
    """The steps, each a diagram and the justification that it equals the one before."""
    name: str | None
    """The proof's name (``None``: unnamed)."""
    _checked: bool

    def __init__(self, start: Diagram, steps: Sequence[Step] = (), name: str | None = None) -> None:
        check_operand(start, "Proof")
        object.__setattr__(self, "start", start)
        object.__setattr__(self, "steps", tuple(steps))
        object.__setattr__(self, "name", name)
        object.__setattr__(self, "_checked", False)

    def __setattr__(self, name: str, value: object) -> None:
        raise AttributeError("proofs are immutable; step() returns a longer proof")

    __reduce__ = reduce_frozen

    def __eq__(self, other: object) -> bool:
        """The same chain: start, steps (targets, rules, times) and name."""
        if self is other:
            return True
        if not isinstance(other, Proof):
            return NotImplemented
        return (self.name, self.start, self.steps) == (other.name, other.start, other.steps)

    def __hash__(self) -> int:
        return hash(("Proof", self.name, self.start, len(self.steps)))

    def step(
        self, target: Diagram, by: Rule | Equation | Proof | Literal["Markov"] = "Markov", *, times: Times = 1
    ) -> Proof:
        """This proof followed by ``= target``, justified ``by`` a rule (or ``"Markov"``)."""
        check_operand(target, "Proof.step")
        if times != "repeatedly" and (not isinstance(times, int) or times < 1):
            raise ValueError(f"times is a positive integer or 'repeatedly', got {times!r}")
        rule: Rule | None
        if isinstance(by, str):
            if by != "Markov":
                raise ValueError(f"a step is justified by a Rule, an Equation, a Proof or 'Markov', got {by!r}")
            rule = None
        elif isinstance(by, Proof):
            rule = by.as_rule()
        else:
            rule = as_rule(by)
        return Proof(self.start, (*self.steps, Step(target, rule, times)), self.name)

    @property
    def diagrams(self) -> tuple[Diagram, ...]:
        """``(d0, d1, ..., dn)``."""
        return (self.start, *(s.target for s in self.steps))

    @property
    def end(self) -> Diagram:
        """The diagram the last step reaches (``start`` for a proof with no steps)."""
        return self.diagrams[-1]

    def check(self) -> bool:
        """Verify every step; return True or raise :class:`ProofError` at the first bad step."""
        if self._checked:
            return True
        diagrams = self.diagrams
        for i, step in enumerate(self.steps):
            _check_step(self, i, diagrams[i], step)
        object.__setattr__(self, "_checked", True)
        return True

    def is_valid(self) -> bool:
        """Like :meth:`check` but returns False instead of raising."""
        try:
            return self.check()
        except ProofError:
            return False

    def equation(self) -> Equation:
        """The chain as an :class:`Equation` ``d0 = d1 = ... = dn`` (not checked)."""
        diagrams = self.diagrams
        if len(diagrams) == 1:
            return Equation(self.start, self.start, name=self.name, reasons=("no step",))
        return Equation(*diagrams, name=self.name, reasons=tuple(step.reason for step in self.steps))

    def statement(self) -> Equation:
        """What the proof proves: ``d0 = dn``."""
        return Equation(self.start, self.end, name=self.name)

    def reversed(self) -> Proof:
        """The chain read backwards, each rule used in the other direction (checked on its own)."""
        diagrams = self.diagrams
        steps = [
            Step(diagrams[i], None if step.rule is None else step.rule.reversed(), step.times)
            for i, step in reversed(list(enumerate(self.steps)))
        ]
        return Proof(self.end, steps, self.name)

    def then(self, other: Proof) -> Proof:
        """This chain followed by ``other``, which must start where this one ends (up to Markov laws)."""
        if not equal(self.end, other.start):
            raise ProofError(
                f"cannot chain {_title(self)} with {_title(other)}: the first ends where the second does not "
                f"start. {explain(self.end, other.start)}"
            )
        return Proof(self.start, (*self.steps, *other.steps), self.name)

    def draw(self, path: str | None = None, **options: object) -> object:
        """Draw the chain ``d0 = d1 = ... = dn`` (see :meth:`Equation.draw`).

        A step that leaves the picture unchanged (the same term graph) is left out.
        """
        options.setdefault("skip_repeats", True)
        return self.equation().draw(path, **options)

    def as_rule(self, direction: Direction = "forward") -> Rule:
        """``d0 = dn`` as a rewriting rule, after checking this proof."""
        self.check()
        return Rule(self.statement(), direction, source=self)

    def assumptions(self) -> tuple[Equation, ...]:
        """The assumed equations this proof rests on, through the lemmas it cites."""
        found: dict[object, Equation] = {}
        stack: list[Proof] = [self]
        seen: set[int] = set()
        while stack:
            proof = stack.pop()
            if id(proof) in seen:
                continue
            seen.add(id(proof))
            for step in proof.steps:
                if step.rule is None:
                    continue
                if step.rule.source is None:
                    eq = step.rule.equation
                    found.setdefault((eq.name, NormalForm.of(eq.lhs), NormalForm.of(eq.rhs)), eq)
                else:
                    stack.append(step.rule.source)
        return tuple(found.values())

    def __len__(self) -> int:
        return len(self.steps)

    def __str__(self) -> str:
        lines = [f"proof of {self.name}:" if self.name else "proof:", f"  d0 = {describe(self.start)}"]
        for i, step in enumerate(self.steps, start=1):
            lines.append(f"  d{i} = {describe(step.target)}    [by {step.reason}]")
        return "\n".join(lines)

    def __repr__(self) -> str:
        return f"<Proof {self.name or ''!s} with {len(self.steps)} steps>".replace("<Proof  ", "<Proof ")


def _check_step(proof: Proof, i: int, source: Diagram, step: Step) -> None:
    where = f"step {i + 1} of {_title(proof)} (d{i} = d{i + 1}) by {step.reason!r}"
    target = step.target
    if (source.dom, source.cod) != (target.dom, target.cod):
        raise ProofError(
            f"{where} fails: the two sides have different types, {source.dom} -> {source.cod} "
            f"and {target.dom} -> {target.cod}.\n{_sides(source, target)}"
        )
    if step.rule is None:
        if not equal(source, target):
            raise ProofError(
                f"{where} fails: the two sides are not equal in the free Markov category. "
                f"{explain(source, target)}\n{_sides(source, target)}"
            )
        return
    try:
        if _reaches(source, step.rule, target, step.times):
            return
    except ProofError as error:
        raise ProofError(f"{where} fails: {error}") from None
    found = matches(source, step.rule)
    if not found:
        why = f"the rule's left side does not occur in d{i}"
    else:
        results = rewrites(source, step.rule)
        closest = min(results, key=lambda r: _distance(r, target))
        why = (
            f"its left side occurs {_places(len(found))} in d{i}, but no rewrite there gives d{i + 1}"
            + (" (nor do repeated rewrites)" if step.times != 1 else "")
            + f"; comparing the nearest one-step result with d{i + 1}: {explain(closest, target)}"
        )
    raise ProofError(f"{where} fails: {why}\n  rule: {describe(step.rule.lhs)}  ~>  {describe(step.rule.rhs)}\n"
                     + _sides(source, target))


def _reaches(source: Diagram, rule: Rule, target: Diagram, times: Times) -> bool:
    """Breadth-first search over rewrite sequences of the allowed lengths."""
    goal = NormalForm.of(target)
    low, high = (1, MAX_REPEAT) if times == "repeatedly" else (times, times)
    frontier = [normal_form(source)]
    seen = {NormalForm.of(source)}
    for depth in range(1, high + 1):
        following: list[Diagram] = []
        for d in frontier:
            for result in rewrites(d, rule):
                form = NormalForm.of(result)
                if depth >= low and form == goal:
                    return True
                if form not in seen or depth < low:
                    seen.add(form)
                    following.append(result)
        if len(seen) > MAX_STATES:
            raise ProofError(
                f"rewriting repeatedly by {rule.name!r} visits more than {MAX_STATES} diagrams; "
                "split the step or give times=n"
            )
        frontier = following
        if not frontier:
            break
    return False


def _distance(a: Diagram, b: Diagram) -> int:
    """A rough dissimilarity, used only to pick which failed rewrite to show."""
    count: dict[str, int] = {}
    for node in normal_form(a).nodes:
        count[node.gen.name] = count.get(node.gen.name, 0) + 1
    for node in normal_form(b).nodes:
        count[node.gen.name] = count.get(node.gen.name, 0) - 1
    return sum(abs(v) for v in count.values())


def _places(n: int) -> str:
    return "once" if n == 1 else f"at {n} places"


def _title(proof: Proof) -> str:
    return f"proof {proof.name!r}" if proof.name else "the proof"


def _sides(source: Diagram, target: Diagram) -> str:
    return f"  left:  {describe(source)}\n  right: {describe(target)}"


def describe(d: Diagram) -> str:
    """A one-line term reading of ``d`` in normal form, e.g. ``(x0, x1) |-> G.mul(x0, x1)``.

    Each box application is written once and named by ``let``; a name used twice is a
    copy, and what is never used has been discarded.
    """
    nf = normal_form(d)
    names = {w: f"x{i}" for i, w in enumerate(nf.inputs)}
    uses: dict[int, int] = {}
    for node in nf.nodes:
        for w in node.ins:
            uses[w] = uses.get(w, 0) + 1
    for w in nf.outputs:
        uses[w] = uses.get(w, 0) + 1
    lets: list[str] = []
    for node in nf.nodes:
        call = f"{node.gen.name}({', '.join(names[w] for w in node.ins)})"
        if len(node.outs) == 1 and uses.get(node.outs[0], 0) == 1:
            names[node.outs[0]] = call
            continue
        outs = [f"w{w}" for w in node.outs]
        names.update(zip(node.outs, outs, strict=True))
        lets.append(f"{', '.join(outs) or '()'} = {call}")
    args = ", ".join(names[w] for w in nf.inputs)
    body = ", ".join(names[w] for w in nf.outputs) or "()"
    prefix = "".join(f"let {x}; " for x in lets)
    return f"({args}) |-> {prefix}{body}"
