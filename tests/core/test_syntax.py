"""Syntax: construction, immutability, program syntax and the errors bad input gets."""

from __future__ import annotations

import pickle
from collections.abc import Callable

import pytest

import markovcat as mc

X, Y, G = mc.Ty("X"), mc.Ty("Y"), mc.Ty("G")
f = mc.Box("f", X, Y, deterministic=True)
k = mc.Box("k", X, Y)
gamma = mc.Box("gamma", X, G)
inv = mc.Box("inv", G, G, deterministic=True)
act_x = mc.Box("act_X", G @ X, X, deterministic=True)
act_y = mc.Box("act_Y", G @ Y, Y, deterministic=True)


def test_types() -> None:
    assert X @ Y == mc.Ty("X", "Y")
    assert len(mc.Ty()) == 0 and str(mc.Ty()) == "I"
    assert (X @ Y)[1] == Y and (X @ Y @ X)[1:] == Y @ X
    assert hash(X @ Y) == hash(mc.Ty("X", "Y"))
    with pytest.raises(TypeError, match="non-empty strings"):
        mc.Ty("")
    with pytest.raises(TypeError, match="cannot tensor"):
        X @ "Y"  # type: ignore[operator]


def test_structure_on_any_type() -> None:
    for ty in (mc.Ty(), X, X @ Y @ G):
        assert (mc.Copy(ty).dom, mc.Copy(ty).cod) == (ty, ty @ ty)
        assert mc.Discard(ty).cod == mc.Ty()
        assert mc.Id(ty).cod == ty
    assert mc.Swap(X, Y @ G).cod == Y @ G @ X
    assert mc.Copy(X @ Y).cod == X @ Y @ X @ Y


def test_diagrams_are_immutable_hashable_and_picklable() -> None:
    d = mc.Copy(X) >> (f @ k)
    with pytest.raises(AttributeError):
        d.dom = Y  # type: ignore[misc]
    assert d == mc.Copy(X) >> (f @ k) and hash(d) == hash(mc.Copy(X) >> (f @ k))
    assert len({d, mc.Copy(X) >> (f @ k)}) == 1
    assert pickle.loads(pickle.dumps(d)) == d
    assert pickle.loads(pickle.dumps(k)).name == "k"


def test_composition_type_errors_name_both_types() -> None:
    with pytest.raises(mc.TypeMismatch, match=r"codomain Y of f does not match the domain X of k"):
        f >> k
    assert issubclass(mc.TypeMismatch, TypeError)


def test_non_diagram_operands() -> None:
    for bad in (3, "f", X, None):
        with pytest.raises(TypeError, match="combines two diagrams"):
            f >> bad  # type: ignore[operator]
        with pytest.raises(TypeError, match="combines two diagrams"):
            bad >> f  # type: ignore[operator]
        with pytest.raises(TypeError, match="combines two diagrams"):
            f @ bad  # type: ignore[operator]
    with pytest.raises(TypeError, match=r"mc.Id\(ty\)"):
        f >> Y  # type: ignore[operator]


def test_same_name_different_boxes_is_an_error() -> None:
    other = mc.Box("f", X, Y)  # stochastic, unlike f
    with pytest.raises(ValueError, match="two different boxes are both named 'f'"):
        f @ other
    with pytest.raises(ValueError, match="both named 'f'"):

        @mc.program(X, Y @ Y)
        def clash(x):  # type: ignore[no-untyped-def]
            return f(x), other(x)


def test_box_argument_errors() -> None:
    with pytest.raises(TypeError, match="must be a Ty"):
        mc.Box("b", "X", Y)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="non-empty string"):
        mc.Box("", X, Y)
    with pytest.raises(TypeError, match="Copy takes a Ty"):
        mc.Copy("X")  # type: ignore[arg-type]


def test_program_matches_combinators() -> None:
    @mc.program(X, Y)
    def sym_k(x):  # type: ignore[no-untyped-def]
        g = gamma(x)
        y = k(act_x(inv(g), x))
        return act_y(g, y)

    combinators = (
        mc.Copy(X)
        >> (gamma @ mc.Id(X))
        >> (mc.Copy(G) @ mc.Id(X))
        >> (mc.Id(G) @ ((inv @ mc.Id(X)) >> act_x >> k))
        >> act_y
    )
    assert mc.equal(sym_k, combinators)
    assert mc.normal_form(sym_k) == mc.normal_form(combinators)


def test_program_copy_and_discard() -> None:
    @mc.program(X @ X, Y @ Y)
    def twice(x, unused):  # type: ignore[no-untyped-def]
        y = k(x)
        return y, y

    assert mc.equal(twice, (k >> mc.Copy(Y)) @ mc.Discard(X))
    assert not mc.equal(twice, (mc.Copy(X) >> (k @ k)) @ mc.Discard(X))


def test_program_calls_whole_diagrams_and_returns_nothing() -> None:
    pair = mc.Copy(X) >> (f @ k)

    @mc.program(X, Y @ Y)
    def use(x):  # type: ignore[no-untyped-def]
        return pair(x)

    assert mc.equal(use, pair)

    @mc.program(X, mc.Ty())
    def nothing(x):  # type: ignore[no-untyped-def]
        k(x)

    assert mc.equal(nothing, mc.Discard(X))


def test_program_type_errors() -> None:
    with pytest.raises(mc.TypeMismatch, match=r"box 'k' expects X but was given Y"):

        @mc.program(X, Y)
        def wrong(x):  # type: ignore[no-untyped-def]
            return k(f(x))

    with pytest.raises(mc.TypeMismatch, match="returns Y @ Y but its declared codomain is Y"):

        @mc.program(X, Y)
        def too_many(x):  # type: ignore[no-untyped-def]
            return f(x), f(x)

    with pytest.raises(TypeError, match="argument 0 of box 'f' is int"):

        @mc.program(X, Y)
        def not_a_wire(x):  # type: ignore[no-untyped-def]
            return f(3)

    with pytest.raises(TypeError, match="outside a program"):
        f(None)

    with pytest.raises(TypeError, match="symbolic value"):

        @mc.program(X, Y)
        def branch(x):  # type: ignore[no-untyped-def]
            return f(x) if x else k(x)


def test_explicit_term_graph_is_validated() -> None:
    node = mc.Node(f.generator, (0,), (1,))
    d = mc.Diagram(X, Y, [0], [node], [1])
    assert mc.equal(d, f)
    with pytest.raises(ValueError, match="before it is written"):
        mc.Diagram(X, Y, [0], [mc.Node(f.generator, (5,), (1,))], [1])
    with pytest.raises(mc.TypeMismatch, match="output wires have types X"):
        mc.Diagram(X, Y, [0], [node], [0])
    with pytest.raises(ValueError, match="written twice"):
        mc.Diagram(X, Y, [0], [mc.Node(f.generator, (0,), (0,))], [0])


def test_explain_is_actionable() -> None:
    assert mc.explain(f, f).startswith("They are equal")
    assert "different types" in mc.explain(f, mc.Id(X))
    message = mc.explain(mc.Swap(X, X) >> (f @ k), f @ k)
    assert "input 1" in message and "input 0" in message
    with pytest.raises(mc.NotEqual, match="stochastic"):
        mc.assert_equal(k >> mc.Copy(Y), mc.Copy(X) >> (k @ k))


def test_deep_diagrams_have_no_recursion_limit() -> None:
    h = mc.Box("h", X, X)
    chain = mc.Id(X)
    for _ in range(10_000):
        chain = chain >> h
    assert mc.equal(chain, chain >> mc.Id(X))
    assert not mc.equal(chain, chain >> h)
    assert len(mc.normal_form(chain)) == 10_000


def test_equation() -> None:
    eq = mc.Equation(k >> mc.Discard(Y), mc.Discard(X), mc.Id(X) >> mc.Discard(X), name="markov")
    assert eq.check() and eq.lhs == k >> mc.Discard(Y)
    bad = mc.Equation(k >> mc.Copy(Y), mc.Copy(X) >> (k @ k))
    assert not bad.check() and "step 0 -> 1" in bad.explain()
    with pytest.raises(mc.TypeMismatch, match="side 1 has type"):
        mc.Equation(f, k >> mc.Copy(Y))


def test_box_determinism_must_be_a_bool() -> None:
    with pytest.raises(TypeError, match="True or False"):
        mc.Box("f", X, Y, deterministic="no")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="True or False"):
        mc.Box("f", X, Y, deterministic=1)  # type: ignore[arg-type]
    assert mc.Box("f", X, Y, deterministic=False).deterministic is False


def test_copy_counts_must_be_whole_numbers_not_bools() -> None:
    with pytest.raises(TypeError, match="whole number of copies"):
        mc.Copy(X, True)
    with pytest.raises(TypeError, match="whole number of copies"):
        mc.Copy(X, 2.0)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="n >= 0"):
        mc.Copy(X, -1)
    assert mc.Copy(X, 1).cod == X and mc.Copy(X, 0).cod == mc.Ty()


def test_explain_blames_the_upstream_stochastic_box_not_the_deterministic_one_after_it() -> None:
    Z = mc.Ty("Z")
    g = mc.Box("g", Y, Z, deterministic=True)
    once = (k >> g) >> mc.Copy(Z)
    twice = mc.Copy(X) >> ((k >> g) @ (k >> g))
    for a, b in ((once, twice), (twice, once)):
        message = mc.explain(a, b)
        first = message.split(". In all")[0]
        assert "box 'k'" in first and "'g'" not in first, message
        assert "stochastic" in first and "deterministic=True" in first


def test_explain_is_short_and_linear_on_long_chains(calls: Callable[[Callable[[], object]], int]) -> None:
    """``explain`` on long chains: a short message, at a linear cost in function calls (not seconds: load varies)."""
    def chains(n: int) -> tuple[mc.Diagram, mc.Diagram]:
        a, b = mc.Id(X), mc.Id(X)
        kx, hx = mc.Box("kx", X, X), mc.Box("hx", X, X)
        for i in range(n):
            a = a >> kx
            b = b >> (hx if i == 3 else kx)  # the difference is at the far end from the outputs
        return a, b

    def cost(n: int) -> int:
        a, b = chains(n)
        assert len(a.nodes) == len(b.nodes) == n  # join the graphs first: count explain alone
        messages: list[str] = []
        count = calls(lambda: messages.append(mc.explain(a, b)))
        assert len(messages[0]) < 1000, len(messages[0])
        assert "'hx'" in messages[0] and "more steps" in messages[0] or "times in a row" in messages[0]
        return count

    small, large = cost(2_000), cost(16_000)
    assert large < 24 * small, (small, large)  # linear: about 8x; quadratic: 64x


def test_types_built_by_folds_are_ordinary_types() -> None:
    t = mc.Ty()
    for i in range(100):
        t = t @ (X if i % 2 else Y)
    assert len(t) == 100 and t == mc.Ty(*("Y", "X") * 50) and hash(t) == hash(mc.Ty(*("Y", "X") * 50))
    assert t[3] == X and t[:2] == Y @ X and pickle.loads(pickle.dumps(t)) == t
    with pytest.raises(AttributeError):
        t._atoms = ()  # type: ignore[misc]
