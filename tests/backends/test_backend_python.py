"""The Set backend: callables for boxes, structural copy/discard/swap, iterative evaluation."""

from __future__ import annotations

import random

import pytest

from markovcat import Box, Copy, Discard, Id, Swap, Ty, program
from markovcat.backends.python import InterpretationError, Sampler, evaluate, interpret

X, Y = Ty("X"), Ty("Y")
f = Box("f", X, Y, deterministic=True)
g = Box("g", Y, X, deterministic=True)
k = Box("k", X, Y)
pair = Box("pair", X @ X, Y, deterministic=True)
split = Box("split", X, X @ Y, deterministic=True)
point = Box("point", Ty(), X, deterministic=True)


def test_structure_copy_swap_discard() -> None:
    boxes = {"f": lambda x: x + 1, "pair": lambda a, b: (a, b)}
    assert evaluate(Copy(X) >> (f @ Id(X)), boxes, 3) == (4, 3)
    assert evaluate(Swap(X, Y), boxes, 1, "y") == ("y", 1)
    assert evaluate(Discard(X), boxes, 1) == ()
    assert evaluate(Copy(X) >> pair, boxes, 7) == (7, 7)


def test_boxes_with_several_or_no_outputs() -> None:
    boxes = {"split": lambda x: (x, -x), "point": lambda: 5, "pair": lambda a, b: a * b}
    assert evaluate(split, boxes, 2) == (2, -2)
    assert evaluate(point >> Copy(X) >> pair, boxes) == 25


def test_keys_may_be_boxes_or_generators() -> None:
    assert evaluate(f >> g, {f: lambda x: x * 10, g.generator: lambda y: y + 1}, 2) == 21


def test_program_sampling_seeded() -> None:
    @program(X, Y @ Y)
    def twice(x):  # type: ignore[no-untyped-def]
        return k(x), k(x)

    run = interpret(twice, {"k": Sampler(lambda rng, x: x + rng.random())})
    # two independent draws (k is stochastic, not copied); the same seed gives the same draws
    a1, b1 = run(0.0, rng=random.Random(3))
    a2, b2 = run(0.0, rng=random.Random(3))
    assert (a1, b1) == (a2, b2) and a1 != b1
    copied = interpret(k >> Copy(Y), {"k": Sampler(lambda rng, x: x + rng.random())})(0.0, rng=random.Random(3))
    assert copied[0] == copied[1] == a1


def test_long_chain_evaluates_iteratively() -> None:
    h = Box("h", X, X, deterministic=True)
    chain = Id(X)
    for _ in range(10_000):
        chain = chain >> h
    assert len(chain) == 10_000
    assert evaluate(chain, {"h": lambda v: v + 1}, 0) == 10_000


def test_missing_interpretation_names_the_box() -> None:
    with pytest.raises(InterpretationError, match="no meaning for box 'g'"):
        evaluate(f >> g, {"f": lambda x: x}, 1)


def test_stochastic_box_needs_a_sampler() -> None:
    with pytest.raises(InterpretationError, match="box 'k' is stochastic"):
        evaluate(k, {"k": lambda x: x}, 1)


def test_wrong_number_of_outputs_and_failures_name_the_box() -> None:
    with pytest.raises(InterpretationError, match="box 'split'.*tuple of 2"):
        evaluate(split, {"split": lambda x: x}, 1)
    with pytest.raises(InterpretationError, match="box 'f' failed: ZeroDivisionError"):
        evaluate(f, {"f": lambda x: 1 / x}, 0)


def test_a_differently_typed_box_of_the_same_name_is_refused() -> None:
    other = Box("f", Y, Y, deterministic=True)
    with pytest.raises(InterpretationError, match="diagram's box of that name"):
        evaluate(f, {other: lambda y: y}, 1)


def test_wrong_arity_call() -> None:
    with pytest.raises(TypeError, match="takes 1 inputs"):
        interpret(f, {"f": lambda x: x})(1, 2)
