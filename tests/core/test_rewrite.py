"""Matching and rewriting up to the Markov laws (markovcat.rewrite)."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import markovcat as mc
from markovcat.backends.finstoch import evaluate, random_model
from markovcat.groups import Group
from markovcat.rewrite import Match, Rule, matches, reader_choices, rewrite, rewrites, rewrites_to
from markovcat.strategies import SIGNATURE, diagrams, law_variants, types

G = Group("G")
T = G.ty
ASSOC, LEFT_UNIT, RIGHT_UNIT, LEFT_INV, RIGHT_INV = G.axioms
A, B, X = mc.Ty("A"), mc.Ty("B"), mc.Ty("X")


def prog(dom: mc.Ty, cod: mc.Ty):  # type: ignore[no-untyped-def]
    return mc.program(dom, cod)


# -- rules -------------------------------------------------------------------------------
def test_rule_directions() -> None:
    forward, backward = Rule(ASSOC), Rule(ASSOC, "backward")
    assert backward == forward.reversed() and backward.reversed() == forward
    assert mc.equal(forward.lhs, ASSOC.lhs) and mc.equal(backward.lhs, ASSOC.rhs)
    assert forward.name == "associativity" and backward.name == "associativity (reversed)"
    assert Rule(backward) == backward and Rule(backward, "backward") == forward
    assert forward.is_assumption()


def test_rule_refuses_bad_input() -> None:
    with pytest.raises(TypeError, match="Equation"):
        Rule(G.mul)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="direction"):
        Rule(ASSOC, "sideways")  # type: ignore[arg-type]


# -- matching --------------------------------------------------------------------------------
@prog(T @ T @ T @ T, T)
def four(a, b, c, d):  # type: ignore[no-untyped-def]
    return G.mul(G.mul(G.mul(a, b), c), d)


def test_associativity_matches_twice_in_a_left_nested_product() -> None:
    assert len(matches(four, ASSOC)) == 2
    assert len(matches(four, Rule(ASSOC, "backward"))) == 0
    # found whatever way the diagram was written
    written_differently = mc.Id(T @ T @ T @ T) >> (G.mul @ mc.Id(T @ T)) >> (G.mul @ mc.Id(T)) >> G.mul
    assert len(matches(written_differently, ASSOC)) == 2


def test_pattern_with_a_copy_binds_one_wire_twice() -> None:
    @prog(T, T)
    def cancel(g):  # type: ignore[no-untyped-def]
        return G.mul(G.inv(g), g)

    @prog(T @ T, T)
    def not_cancel(g, h):  # type: ignore[no-untyped-def]
        return G.mul(G.inv(g), h)

    assert len(matches(cancel, LEFT_INV)) == 1
    assert matches(not_cancel, LEFT_INV) == []
    (result,) = rewrites(cancel, LEFT_INV)
    assert mc.equal(result, mc.Discard(T) >> G.unit)


def test_context_may_copy_into_two_pattern_inputs() -> None:
    square = mc.Copy(T) >> G.mul  # g g matches the pattern (a b) with a = b = g
    assert len(matches(square, Rule(RIGHT_UNIT, "backward"))) == 2  # two G wires: g and g g
    assert len(matches(mc.Copy(T) >> (mc.Copy(T) @ mc.Id(T)) >> (G.mul @ mc.Id(T)) >> G.mul, ASSOC)) == 1


def test_two_pattern_nodes_may_share_a_deterministic_host_node() -> None:
    f = mc.Box("f", A, T, deterministic=True)
    k = mc.Box("k", A, T)
    rule = mc.Equation(f @ f >> G.mul, mc.Box("ff", A @ A, T), name="f f")
    assert len(matches(mc.Copy(A) >> (f @ f) >> G.mul, rule)) == 1  # f(a) f(a): one f node in normal form
    stochastic = mc.Equation(k @ k >> G.mul, mc.Box("kk", A @ A, T), name="k k")
    assert matches(k >> mc.Copy(T) >> G.mul, stochastic) == []  # one draw squared is not two draws
    assert len(matches(mc.Copy(A) >> (k @ k) >> G.mul, stochastic)) == 1  # port order fixes which is which


def test_identity_pattern_matches_every_wire_of_its_type() -> None:
    introduce_unit = Rule(LEFT_UNIT, "backward")  # x  ~>  e x
    assert len(matches(four, introduce_unit)) == 4 + 3
    results = rewrites(mc.Id(T), introduce_unit)
    assert len(results) == 1 and mc.equal(results[0], (G.unit @ mc.Id(T)) >> G.mul)


def test_discarded_pattern_input_ranges_over_wires_not_below_the_match() -> None:
    e_to_g_inv_g = Rule(RIGHT_INV, "backward")  # e  ~>  g inv(g), for any g

    @prog(T @ T, T)
    def d(a, b):  # type: ignore[no-untyped-def]
        return G.mul(G.mul(a, G.unit()), b)

    # g may be a or b, but not a e (it depends on the unit being replaced)
    assert sorted(m.inputs for m in matches(d, e_to_g_inv_g)) == [(0,), (1,)]


def test_stochastic_draw_is_never_split() -> None:
    k = mc.Box("k", A, B)
    k2 = mc.Box("k2", A, B)
    twice = mc.Copy(A) >> (k @ k)
    once = k >> mc.Copy(B)
    rule = mc.Equation(twice, mc.Copy(A) >> (k2 @ k2), name="two draws")
    assert matches(once, rule) == []
    assert len(matches(twice, rule)) == 2  # the two draws, in either order
    # a single draw read inside and outside a match cannot be matched
    gamma = mc.Box("gamma", X, T)
    act = mc.Box("act", T @ X, X, deterministic=True)
    eq = mc.Equation((mc.Id(T) @ gamma) >> G.mul, act >> gamma, name="gamma equivariant")

    @prog(T @ X, T @ T)
    def shared(h, x):  # type: ignore[no-untyped-def]
        g = gamma(x)
        return G.mul(h, g), g

    assert matches(shared, eq) == []


def test_deterministic_internal_wire_read_outside_is_kept() -> None:
    f = mc.Box("f", X, T, deterministic=True)
    act = mc.Box("act", T @ X, X, deterministic=True)
    eq = mc.Equation((mc.Id(T) @ f) >> G.mul, act >> f, name="f equivariant")

    @prog(T @ X, T @ T)
    def shared(h, x):  # type: ignore[no-untyped-def]
        g = f(x)
        return G.mul(h, g), g

    @prog(T @ X, T @ T)
    def expected(h, x):  # type: ignore[no-untyped-def]
        return f(act(h, x)), f(x)

    (match,) = matches(shared, eq)
    assert mc.equal(rewrite(shared, eq, match), expected)


def test_matches_must_be_convex() -> None:
    f = mc.Box("f", A, A, deterministic=True)
    g = mc.Box("g", A, A, deterministic=True)
    t = mc.Box("t", A, A)
    rule = mc.Equation(f @ g, mc.Box("fg", A @ A, A @ A), name="f @ g")
    assert len(matches(f @ g, rule)) == 1
    assert matches(f >> t >> g, rule) == []  # g's input would depend on f's output
    assert matches(f >> g, rule) == []


def test_rewrites_deduplicate_and_round_trip() -> None:
    results = rewrites(four, ASSOC)
    assert len(results) == 2
    for result in results:
        assert rewrites_to(result, Rule(ASSOC, "backward"), four)


def test_rewrite_refuses_a_foreign_match() -> None:
    (match,) = matches(mc.Copy(T) >> (G.inv @ mc.Id(T)) >> G.mul, LEFT_INV)
    assert isinstance(match, Match)
    with pytest.raises(ValueError, match="different diagram"):
        rewrite(four, LEFT_INV, match)
    with pytest.raises(ValueError, match="is of rule"):
        rewrite(match.host, ASSOC, match)


def test_pass_through_output_redirects_readers_downstream() -> None:
    k = mc.Box("k", A, B)
    j = mc.Box("j", A, A)
    rule = mc.Equation(mc.Id(A) @ k, mc.Box("pair", A @ A, A @ B), name="pass")

    @prog(A @ A, A @ B)
    def host(a, b):  # type: ignore[no-untyped-def]
        return j(a), k(b)

    @prog(A @ A, A @ B)
    def expected(a, b):  # type: ignore[no-untyped-def]
        pair = mc.Box("pair", A @ A, A @ B)(a, b)
        return j(pair[0]), pair[1]

    assert any(mc.equal(r, expected) for r in rewrites(host, rule))


# -- properties ------------------------------------------------------------------------------
@st.composite
def host_with_pattern(draw: st.DrawFn) -> tuple[mc.Diagram, mc.Diagram]:
    pattern = draw(diagrams(max_layers=4))
    rest = draw(types(2))
    context = draw(diagrams(dom=pattern.cod @ rest, max_layers=5))
    return pattern, (pattern @ mc.Id(rest)) >> context


@settings(max_examples=80, deadline=None)
@given(host_with_pattern(), st.data())
def test_rewriting_there_and_back_round_trips(case: tuple[mc.Diagram, mc.Diagram], data: st.DataObject) -> None:
    pattern, host = case
    fresh = mc.Box("fresh", pattern.dom, pattern.cod)
    rule = Rule(mc.Equation(pattern, fresh, name="fold"))
    found = matches(host, rule)
    variant = data.draw(law_variants(host))
    assert len(matches(variant, rule)) == len(found)  # matching is up to the Markov laws
    for match in found:
        folded = rewrite(host, rule, match)
        assert rewrites_to(folded, rule.reversed(), host)


@settings(max_examples=80, deadline=None)
@given(diagrams(max_layers=8))
def test_markov_laws_as_rules_rewrite_to_equal_diagrams(d: mc.Diagram) -> None:
    f = mc.Box("f", A, B, deterministic=True)
    k = mc.Box("k", A, B)
    laws = [
        mc.Equation(f >> mc.Copy(B), mc.Copy(A) >> (f @ f), name="copy naturality"),
        mc.Equation(k >> mc.Discard(B), mc.Discard(A), name="discard"),
        mc.Equation(mc.Swap(A, A), mc.Swap(A, A) >> mc.Swap(A, A) >> mc.Swap(A, A), name="swap"),
    ]
    for law in laws:
        for rule in (Rule(law), Rule(law, "backward")):
            for result in rewrites(d, rule):
                assert mc.equal(result, d), (law.name, mc.explain(result, d))


SIZES = {"A": 2, "B": 3}


@settings(max_examples=40, deadline=None)
@given(host_with_pattern())
def test_folding_a_pattern_into_a_box_with_its_meaning_preserves_meaning(
    case: tuple[mc.Diagram, mc.Diagram],
) -> None:
    """Soundness in FinStoch: replace the pattern by a box interpreted as the pattern's matrix."""
    pattern, host = case
    model = random_model([b.generator for b in SIGNATURE], SIZES, seed=3)
    model["fresh"] = evaluate(pattern, model, SIZES)
    rule = Rule(mc.Equation(pattern, mc.Box("fresh", pattern.dom, pattern.cod), name="fold"))
    expected = evaluate(host, model, SIZES)
    for result in rewrites(host, rule):
        np.testing.assert_allclose(evaluate(result, model, SIZES), expected, atol=1e-12)


def test_some_readers_may_be_redirected_when_that_is_sound() -> None:
    introduce_unit = Rule(LEFT_UNIT, "backward")
    # an input passed through: every non-empty set of its readers
    results = rewrites(mc.Copy(T), introduce_unit)
    assert len(results) == 3
    # a deterministic output: likewise (the old box is kept for the others)
    f, f2 = mc.Box("f", A, B, deterministic=True), mc.Box("f2", A, B, deterministic=True)
    assert len(rewrites(f >> mc.Copy(B), mc.Equation(f, f2, name="f = f2"))) == 3
    # a stochastic draw is never split between old and new
    k, k2 = mc.Box("k", A, B), mc.Box("k2", A, B)
    rule = mc.Equation(k, k2, name="k = k2")
    host = k >> mc.Copy(B)
    (only,) = rewrites(host, rule)
    assert mc.equal(only, k2 >> mc.Copy(B))
    (match,) = matches(host, rule)
    assert reader_choices(host, match) == [None]
    with pytest.raises(ValueError, match="cannot be redirected"):
        rewrite(host, rule, match, readers=[(-1, 0)])


def test_invertible_proofs_check_backwards() -> None:
    from markovcat import theorems as proofs

    for make in (proofs.flat_sharp, proofs.sharp_flat, proofs.sharp_equivariant, proofs.sym_equivariant):
        assert make().reversed().check()
    # a step whose reverse must invent a wire cannot be reversed: e = g inv(g) needs some g
    assert not proofs.inverse_of_unit().reversed().is_valid()
