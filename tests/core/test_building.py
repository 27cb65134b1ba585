"""Building diagrams by folds: linear time, and the same term graph however it was joined."""

from __future__ import annotations

import random
from collections.abc import Callable

import pytest

import markovcat as mc
from markovcat import termgraph

X = mc.Ty("X")
I = mc.Ty()  # noqa: E741
k = mc.Box("k", X, X)
f = mc.Box("f", X, X, deterministic=True)
g = mc.Box("g", X, X @ X, deterministic=True)
m = mc.Box("m", X @ X, X)
s = mc.Box("s", I, X)

#: (piece, atoms it reads, atoms it writes), all on the one type X.
PIECES: list[tuple[mc.Diagram, int, int]] = [
    (mc.Id(X), 1, 1), (k, 1, 1), (f, 1, 1), (g, 1, 2), (m, 2, 1), (mc.Copy(X), 1, 2), (mc.Discard(X), 1, 0),
    (mc.Swap(X, X), 2, 2), (s, 0, 1),
]


def _layer(rng: random.Random, width: int, side: int) -> mc.Diagram:
    """A random layer reading (side=1) or writing (side=2) exactly ``width`` atoms of X."""
    parts: list[mc.Diagram] = []
    left = width
    other = 3 - side
    while left > 0 or not parts:
        shrink = side == 1 and width > 6  # keep the diagrams narrow
        options = [p for p in PIECES if p[side] <= left and (p[other] <= p[side] if shrink else True)]
        options = [p for p in options if p[side] or (not shrink and rng.random() < 0.3)] or options
        piece = rng.choice(options)
        parts.append(piece[0])
        left -= piece[side]
    layer = parts[0]
    for part in parts[1:]:
        layer = layer @ part
    return layer


def random_build(seed: int, steps: int) -> mc.Diagram:
    """Mix the four folds (``acc >> l``, ``l >> acc``, ``acc @ p``, ``p @ acc``) at random."""
    rng = random.Random(seed)
    acc: mc.Diagram = mc.Id(X)
    for _ in range(steps):
        move = rng.randrange(4)
        piece = rng.choice(PIECES)[0]
        if move == 0 or len(acc.cod) > 8:
            acc = acc >> _layer(rng, len(acc.cod), 1)
        elif move == 1 and len(acc.dom) <= 8:
            acc = _layer(rng, len(acc.dom), 2) >> acc
        elif move == 2:
            acc = acc @ piece
        else:
            acc = piece @ acc
    return acc


@pytest.mark.parametrize("seed", range(8))
def test_a_joined_fold_is_the_graph_the_eager_definitions_give(seed: int, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(termgraph, "EAGER", 10**9)  # join at every step: the reference
    eager = random_build(seed, 150)
    assert eager._parts is None
    monkeypatch.setattr(termgraph, "EAGER", 0)  # record every step, join once at the end
    lazy = random_build(seed, 150)
    assert lazy._parts is not None and len(lazy) == len(eager) and lazy.is_deterministic == eager.is_deterministic
    assert (lazy.dom, lazy.cod, lazy.n_wires) == (eager.dom, eager.cod, eager.n_wires)
    assert (lazy.inputs, lazy.nodes, lazy.outputs) == (eager.inputs, eager.nodes, eager.outputs)
    assert lazy == eager and hash(lazy) == hash(eager) and dict(lazy.signature) == dict(eager.signature)
    assert mc.equal(lazy, eager)
    rebuilt = mc.Diagram(lazy.dom, lazy.cod, lazy.inputs, lazy.nodes, lazy.outputs, lazy.n_wires)  # checks invariants
    assert rebuilt == lazy


FOLDS: dict[str, Callable[[int], mc.Diagram]] = {}


def _fold(name: str) -> Callable[[Callable[[int], mc.Diagram]], Callable[[int], mc.Diagram]]:
    def register(build: Callable[[int], mc.Diagram]) -> Callable[[int], mc.Diagram]:
        FOLDS[name] = build
        return build

    return register


@_fold("kk >> acc")
def _right_then(n: int) -> mc.Diagram:
    acc = mc.Id(X)
    for _ in range(n):
        acc = k >> acc
    return acc


@_fold("acc >> kk")
def _left_then(n: int) -> mc.Diagram:
    acc = mc.Id(X)
    for _ in range(n):
        acc = acc >> k
    return acc


@_fold("acc @ f")
def _left_tensor(n: int) -> mc.Diagram:
    acc = mc.Id(I)
    for _ in range(n):
        acc = acc @ f
    return acc


@_fold("f @ acc")
def _right_tensor(n: int) -> mc.Diagram:
    acc = mc.Id(I)
    for _ in range(n):
        acc = f @ acc
    return acc


@_fold("acc >> new box")
def _distinct_names(n: int) -> mc.Diagram:
    acc = mc.Id(X)
    for i in range(n):
        acc = acc >> mc.Box(f"b{i}", X, X)
    return acc


@pytest.mark.parametrize("fold", sorted(FOLDS))
def test_folds_cost_linear_time(fold: str, calls: Callable[[Callable[[], object]], int]) -> None:
    """Building and joining a fold costs linear time, counted in function calls (not seconds: load varies)."""
    build = FOLDS[fold]
    assert len(build(50)) == 50 and len(build(50).nodes) == 50
    small, large = (calls(lambda n=n: len(build(n).nodes)) for n in (500, 4_000))
    assert large < 24 * small, (fold, small, large)  # linear: about 8x; quadratic: 64x


def test_signatures_are_exact_views_when_folds_branch() -> None:
    base = mc.Id(X)
    for i in range(40):
        base = base >> mc.Box(f"b{i}", X, X)
    one = base >> mc.Box("x", X, X)
    two = base >> mc.Box("x", X, X, deterministic=True)  # same name, another box: fine on its own branch
    assert "x" not in base.signature and len(base.signature) == 40
    assert not one.signature["x"].deterministic and two.signature["x"].deterministic
    with pytest.raises(ValueError, match="both named 'x'"):
        one @ two
    assert list(base.signature) == [f"b{i}" for i in range(40)]
    assert dict(one.signature) == {**dict(base.signature), "x": one.signature["x"]}


def test_deep_folds_join_hash_compare_and_free_without_recursion() -> None:
    n = 50_000
    a = FOLDS["kk >> acc"](n)
    b = FOLDS["acc >> kk"](n)
    assert a == b and hash(a) == hash(b) and mc.equal(a, b)
    del a, b
    c = FOLDS["f @ acc"](20_000)
    del c  # never joined: dropping the chain of operands must not recurse either
