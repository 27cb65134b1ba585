"""The Set backend: interpret a diagram by Python callables (a functor into Set / Stoch).

Every box is interpreted by a callable keyed by the box's name (or by the
:class:`~markovcat.Box` / :class:`~markovcat.Generator` itself).  A box ``f : A1 @ ... @ An
-> B1 @ ... @ Bm`` is called with ``n`` positional values and returns one value when
``m == 1``, a tuple of ``m`` values otherwise (``None`` or ``()`` when ``m == 0``).
Copying, discarding and swapping are structural: a wire read twice passes the same
value twice, a wire read by nothing is dropped.

A *stochastic* box must be interpreted by a :class:`Sampler`, a callable that takes a
``random.Random`` as its first argument; a plain function for a stochastic box is
refused, because a seeded run could not be reproduced and the law of the box would be
ambiguous.  (A deterministic function is a legitimate sampler: wrap it with
``Sampler(lambda rng, x: f(x))``.)

Evaluation walks the nodes once in their topological order, so it is iterative and
linear in the size of the diagram: diagrams of many thousands of boxes evaluate
without touching the recursion limit.

>>> from markovcat import Ty, Box, Copy, program
>>> X = Ty("X")
>>> double = Box("double", X, X, deterministic=True)
>>> noise = Box("noise", X, X)
>>> run = interpret(Copy(X) >> (double @ noise), {"double": lambda v: 2 * v,
...                                               "noise": Sampler(lambda rng, v: v + rng.choice([0, 1]))})
>>> a, b = run(5, rng=random.Random(0))
>>> a, b in (5, 6)
(10, True)
>>> try:
...     evaluate(noise, {"noise": lambda v: v}, 1)
... except InterpretationError as error:
...     print(str(error)[:70])
box 'noise' is stochastic but is interpreted by a plain function; wrap
"""

from __future__ import annotations

import random
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from markovcat.syntax import Diagram, Generator

__all__ = ["InterpretationError", "Sampler", "interpret", "evaluate", "resolve", "box_name"]


class InterpretationError(ValueError):
    """An interpretation does not fit a diagram (a box missing, a wrong kind of callable, a bad value)."""


@dataclass(frozen=True)
class Sampler:
    """The interpretation of a stochastic box: ``function(rng, *inputs)`` draws its outputs."""

    function: Callable[..., Any]
    """``function(rng, *inputs)``: one draw of the box's outputs, with ``rng`` a ``random.Random``."""

    def __call__(self, rng: random.Random, *inputs: Any) -> Any:
        return self.function(rng, *inputs)


def box_name(key: object) -> str:
    """The box name a key of an interpretation refers to (a name, a Box or a Generator)."""
    if isinstance(key, str):
        return key
    if isinstance(key, Generator):
        return key.name
    generator = getattr(key, "generator", None)
    if isinstance(generator, Generator):
        return generator.name
    raise TypeError(
        f"an interpretation is keyed by box names, Boxes or Generators, got {type(key).__name__} {key!r}"
    )


def resolve(diagram: Diagram, boxes: Mapping[Any, Any], what: str = "interpretation") -> dict[str, Any]:
    """Match the keys of ``boxes`` to the boxes of ``diagram`` by name; every box must be covered.

    A key that is a Box or Generator must be the very box the diagram uses under that name.
    Extra keys (boxes the diagram does not use) are allowed, so one interpretation can serve
    several diagrams.
    """
    table: dict[str, Any] = {}
    for key, value in boxes.items():
        name = box_name(key)
        gen = key if isinstance(key, Generator) else getattr(key, "generator", None)
        known = diagram.signature.get(name)
        if isinstance(gen, Generator) and known is not None and known != gen:
            raise InterpretationError(
                f"the {what} gives a meaning to [{gen}] but the diagram's box of that name is [{known}]"
            )
        if name in table:
            raise InterpretationError(f"the {what} gives box {name!r} two meanings")
        table[name] = value
    missing = [gen for name, gen in diagram.signature.items() if name not in table]
    if missing:
        listed = ", ".join(f"[{gen}]" for gen in missing)
        raise InterpretationError(f"the {what} has no meaning for box {missing[0].name!r} (missing: {listed})")
    return table


def _check_kinds(diagram: Diagram, table: Mapping[str, Any]) -> None:
    for name, gen in diagram.signature.items():
        value = table[name]
        if not callable(value):
            raise InterpretationError(f"box {name!r} is interpreted by {type(value).__name__}, not a function")
        if not gen.deterministic and not isinstance(value, Sampler):
            raise InterpretationError(
                f"box {name!r} is stochastic but is interpreted by a plain function; wrap a sampler that takes a "
                "random.Random first, e.g. Sampler(lambda rng, *xs: ...), or declare the box deterministic=True"
            )


def _outputs(gen: Generator, result: Any) -> Sequence[Any]:
    m = len(gen.cod)
    if m == 1:
        return (result,)
    if m == 0:
        if result not in (None, ()):
            raise InterpretationError(f"box {gen.name!r} has codomain I but its interpretation returned {result!r}")
        return ()
    if not isinstance(result, (tuple, list)) or len(result) != m:
        raise InterpretationError(
            f"box {gen.name!r} : {gen.dom} -> {gen.cod} must return a tuple of {m} values, got {result!r}"
        )
    return result


def interpret(diagram: Diagram, boxes: Mapping[Any, Any]) -> Callable[..., Any]:
    """Turn ``diagram`` into a Python function of ``len(diagram.dom)`` arguments.

    The function returns one value for a codomain of one atom, a tuple otherwise, and
    takes an optional keyword ``rng`` (a ``random.Random``) for the stochastic boxes.
    """
    if not isinstance(diagram, Diagram):
        raise TypeError(f"interpret takes a Diagram, got {type(diagram).__name__} {diagram!r}")
    table = resolve(diagram, boxes)
    _check_kinds(diagram, table)
    steps = [(table[node.gen.name], node) for node in diagram.nodes]
    n_in = len(diagram.inputs)

    def run(*args: Any, rng: random.Random | None = None) -> Any:
        if len(args) != n_in:
            raise TypeError(f"{diagram.label()} takes {n_in} inputs ({diagram.dom}), got {len(args)}")
        generator = rng if rng is not None else random.Random()
        values: list[Any] = [None] * diagram.n_wires
        for wire, value in zip(diagram.inputs, args, strict=False):
            values[wire] = value
        for function, node in steps:
            ins = [values[w] for w in node.ins]
            try:
                result = function(generator, *ins) if isinstance(function, Sampler) else function(*ins)
            except InterpretationError:
                raise
            except Exception as error:
                raise InterpretationError(f"box {node.gen.name!r} failed: {type(error).__name__}: {error}") from error
            for wire, value in zip(node.outs, _outputs(node.gen, result), strict=False):
                values[wire] = value
        results = [values[w] for w in diagram.outputs]
        return results[0] if len(results) == 1 else tuple(results)

    return run


def evaluate(diagram: Diagram, boxes: Mapping[Any, Any], *args: Any, rng: random.Random | None = None) -> Any:
    """``interpret(diagram, boxes)(*args, rng=rng)``."""
    return interpret(diagram, boxes)(*args, rng=rng)
