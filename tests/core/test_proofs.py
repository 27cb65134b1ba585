"""Checked proofs (markovcat.proof) and the shipped ones (markovcat.theorems)."""

from __future__ import annotations

import itertools
from typing import Any

import numpy as np
import pytest

import markovcat as mc
from markovcat import theorems as proofs
from markovcat.backends.finstoch import evaluate
from markovcat.gspace import Equivariant, GSpace, equivariance_equation
from markovcat.proof import Proof, ProofError, describe
from markovcat.rewrite import Rule
from markovcat.symmetrisation import flat, haar_gamma, sharp, sym

S = proofs.Setting()
G, X, Y = S.group, S.X, S.Y
T = G.ty
ASSOC, LEFT_UNIT, RIGHT_UNIT, LEFT_INV, RIGHT_INV = G.axioms


def group_and_action_axioms() -> set[Any]:
    eqs = G.axioms + X.axioms + Y.axioms
    return {(mc.NormalForm.of(e.lhs), mc.NormalForm.of(e.rhs)) for e in eqs}


# -- every shipped proof checks ------------------------------------------------------------
ALL = proofs.all_proofs()


@pytest.mark.parametrize("name", sorted(ALL))
def test_shipped_proof_checks(name: str) -> None:
    proof = ALL[name]
    assert proof.check()
    assert len(proof) >= 1
    assert not proof.statement().check()  # none of them is a law of the free Markov category


def test_what_each_theorem_proves() -> None:
    k, m = S.k, mc.Box("m", T @ X.ty, Y.ty)
    assert mc.equal(proofs.flat_sharp().start, flat(sharp(k, X, Y))) and mc.equal(proofs.flat_sharp().end, k)
    m_cg = Equivariant.assume(m, GSpace.regular(G) @ X, Y, reason="test")
    assert mc.equal(proofs.sharp_flat().start, sharp(flat(m_cg), X, Y).diagram)
    assert mc.equal(proofs.sharp_flat().end, m)
    sharp_k = proofs.sharp_equivariant()
    claim = equivariance_equation(sharp(k, X, Y).diagram, GSpace.regular(G) @ X, Y)
    assert mc.equal(sharp_k.start, claim.lhs) and mc.equal(sharp_k.end, claim.rhs)
    gamma = S.gamma_morphism()
    stable = proofs.sym_stable()
    assert mc.equal(stable.start, sym(k, gamma, Y).diagram) and mc.equal(stable.end, k)
    claim = equivariance_equation(sym(k, gamma, Y).diagram, X, Y)
    eq = proofs.sym_equivariant()
    assert mc.equal(eq.start, claim.lhs) and mc.equal(eq.end, claim.rhs)
    haar = haar_gamma(X)
    claim = equivariance_equation(sym(k, haar, Y).diagram, X, Y)
    eq = proofs.haar_sym_equivariant()
    assert mc.equal(eq.start, claim.lhs) and mc.equal(eq.end, claim.rhs)


def test_sharp_is_equivariant_from_the_axioms_alone() -> None:
    used = {(mc.NormalForm.of(e.lhs), mc.NormalForm.of(e.rhs)) for e in proofs.sharp_equivariant().assumptions()}
    assert used <= group_and_action_axioms()


def test_hypotheses_are_listed() -> None:
    names = {e.name for e in proofs.sym_equivariant().assumptions()}
    assert "gamma is equivariant" in names
    names = {e.name for e in proofs.haar_sym_equivariant().assumptions()}
    assert "lambda_G is left-invariant" in names and "gamma is equivariant" not in names
    assert "k is equivariant" in {e.name for e in proofs.sym_stable().assumptions()}


def test_a_proof_certifies_a_cg_morphism() -> None:
    gamma = S.gamma_morphism()
    d = sym(S.k, gamma, Y).diagram
    m = Equivariant.by_proof(d, X, Y, proofs.sym_equivariant())
    assert m.evidence.kind == "proof"


# -- failing steps -----------------------------------------------------------------------------
def test_a_step_citing_a_rule_that_does_not_apply_names_step_rule_and_sides() -> None:
    good = proofs.flat_sharp()
    skipping = Proof(good.start, name="too fast").step(good.diagrams[2], by=X.axioms[1])
    with pytest.raises(ProofError) as error:
        skipping.check()
    text = str(error.value)
    assert "step 1 of proof 'too fast' (d0 = d1)" in text and "'unit'" in text
    assert "left:" in text and "right:" in text and "G.inv" in text
    assert isinstance(error.value, AssertionError)
    assert not skipping.is_valid()


def test_failure_reports_the_first_bad_step_only() -> None:
    good = proofs.double_inverse()
    steps = list(good.steps)
    steps[3] = type(steps[3])(steps[3].target, Rule(LEFT_INV), 1)
    with pytest.raises(ProofError, match=r"step 4 .*'left inverse'"):
        Proof(good.start, steps, name="bad").check()


def test_markov_step_failure_explains() -> None:
    k = S.k
    with pytest.raises(ProofError, match="not equal in the free Markov category"):
        Proof(mc.Copy(X.ty) >> (k @ k)).step(k >> mc.Copy(Y.ty)).check()
    with pytest.raises(ProofError, match="different types"):
        Proof(k).step(mc.Id(X.ty)).check()


def test_as_rule_checks_first() -> None:
    bad = Proof(G.mul).step(G.unit @ G.mul >> G.mul, by=ASSOC)
    with pytest.raises(ProofError):
        bad.as_rule()
    rule = proofs.inverse_of_unit().as_rule()
    assert not rule.is_assumption() and rule.source is not None


def test_repeated_rewrites() -> None:
    @mc.program(T @ T @ T @ T, T)
    def left(a, b, c, d):  # type: ignore[no-untyped-def]
        return G.mul(G.mul(G.mul(a, b), c), d)

    @mc.program(T @ T @ T @ T, T)
    def right(a, b, c, d):  # type: ignore[no-untyped-def]
        return G.mul(a, G.mul(b, G.mul(c, d)))

    assert not Proof(left).step(right, by=ASSOC).is_valid()
    assert Proof(left).step(right, by=ASSOC, times=2).check()
    assert Proof(left).step(right, by=ASSOC, times="repeatedly").check()
    assert Proof(left).step(right, by=ASSOC, times=3).check()  # the long way round the pentagon
    assert not Proof(left).step(right, by=ASSOC, times=4).is_valid()
    with pytest.raises(ValueError, match="times"):
        Proof(left).step(right, by=ASSOC, times=0)
    with pytest.raises(ValueError, match="Markov"):
        Proof(left).step(right, by="magic")  # type: ignore[arg-type]


def test_equation_and_description() -> None:
    proof = proofs.act_cancel()
    eq = proof.equation()
    assert len(eq.sides) == len(proof) + 1 and eq.name == proof.name
    assert len(proof.statement().sides) == 2
    assert describe(G.mul) == "(x0, x1) |-> G.mul(x0, x1)"
    assert describe(mc.Copy(T) >> (G.inv @ mc.Id(T)) >> G.mul) == "(x0) |-> G.mul(G.inv(x0), x0)"
    assert "[by compatibility (reversed)]" in str(proof)


def test_proof_renders_as_a_chain_of_equations(tmp_path: Any) -> None:
    pytest.importorskip("markovcat.drawing")
    from markovcat import drawing

    if not hasattr(drawing, "draw_equation"):
        pytest.skip("equation drawing not available")
    path = tmp_path / "proof.svg"
    proofs.act_cancel().equation().draw(str(path))
    assert path.exists() and path.stat().st_size > 0


# -- deliberately wrong proofs fail ----------------------------------------------------------------
def test_gamma_equivariant_on_the_wrong_side_does_not_prove_sym_equivariant() -> None:
    gamma = S.gamma

    @mc.program(T @ X.ty, T)
    def right_mul(h, x):  # type: ignore[no-untyped-def]
        return G.mul(gamma(x), h)

    wrong = mc.Equation(right_mul, X.act >> gamma, name="gamma right-equivariant")
    with pytest.raises(ProofError, match="step 2 .*'gamma right-equivariant'"):
        proofs.sym_equivariant(gamma_equivariance=wrong).check()


def test_equivariance_of_another_gamma_does_not_prove_sym_equivariant() -> None:
    other = mc.Box("other_gamma", X.ty, T)
    hypothesis = equivariance_equation(other, X, GSpace.regular(G))
    with pytest.raises(ProofError, match="step 2"):
        proofs.sym_equivariant(gamma_equivariance=hypothesis).check()


def test_stability_needs_k_equivariant() -> None:
    k = S.k
    d = sym(k, S.gamma_morphism(), Y).diagram
    for rule in (proofs.act_cancel(), Rule(X.axioms[1]), proofs.sharp_equivariant()):
        assert not Proof(d).step(k, by=rule, times="repeatedly").is_valid()


def test_haar_draw_multiplied_on_the_wrong_side_is_not_proved_equivariant() -> None:
    """SymDiff's order matters: ``net(R0^-1 x) R0`` instead of ``R0 net(R0^-1 x)``."""
    net = mc.Box("net", X.ty, T)
    lam = mc.Box("lambda_G", mc.Ty(), T)

    @mc.program(X.ty, T)
    def wrong_gamma(x):  # type: ignore[no-untyped-def]
        r0 = lam()
        return G.mul(net(X.act(G.inv(r0), x)), r0)

    claim = equivariance_equation(wrong_gamma, X, GSpace.regular(G))
    correct = proofs.recursive_gamma_equivariant()
    attempt = Proof(claim.lhs, name="wrong order")
    for step in correct.steps:
        assert step.rule is not None
        attempt = attempt.step(claim.rhs, by=step.rule, times="repeatedly")
        assert not attempt.is_valid()
        attempt = Proof(claim.lhs, name="wrong order")


# -- the proofs are sound in a concrete model -----------------------------------------------------
def _s3_model(seed: int = 0) -> tuple[dict[str, np.ndarray], dict[str, int]]:
    """S_3 acting on {0, 1, 2} (X and Y) by permutation; k, gamma, m equivariant; lambda uniform."""
    rng = np.random.default_rng(seed)
    perms = list(itertools.permutations(range(3)))
    n = len(perms)
    compose = [[perms.index(tuple(p[q[i]] for i in range(3))) for q in perms] for p in perms]
    inverse = [perms.index(tuple(p.index(i) for i in range(3))) for p in perms]

    def function(rows: int, cols: int, f: Any) -> np.ndarray:
        matrix = np.zeros((rows, cols))
        for r in range(rows):
            matrix[r, f(r)] = 1.0
        return matrix

    act = function(n * 3, 3, lambda r: perms[r // 3][r % 3])
    k0 = rng.dirichlet(np.ones(3), size=3)
    k = np.mean([[[k0[p[x], p[y]] for y in range(3)] for x in range(3)] for p in perms], axis=0)
    g0 = rng.dirichlet(np.ones(n), size=3)
    gamma = np.mean([[[g0[p[x], compose[i][g]] for g in range(n)] for x in range(3)] for i, p in enumerate(perms)],
                    axis=0)
    m0 = rng.dirichlet(np.ones(3), size=n * 3)
    m = np.mean([[[m0[compose[i][r // 3] * 3 + p[r % 3], p[y]] for y in range(3)] for r in range(n * 3)]
                 for i, p in enumerate(perms)], axis=0)
    model = {
        "G.mul": function(n * n, n, lambda r: compose[r // n][r % n]),
        "G.unit": function(1, n, lambda r: perms.index((0, 1, 2))),
        "G.inv": function(n, n, lambda r: inverse[r]),
        "act_X": act,
        "act_Y": act,
        "k": k,
        "gamma": gamma,
        "m": m,
        "net": rng.dirichlet(np.ones(n), size=3),
        "lambda_G": np.full((1, n), 1.0 / n),
    }
    return model, {"G": n, "X": 3, "Y": 3}


SEMANTIC = [name for name in sorted(ALL) if name not in ("ave_sym", "frame_averaging", "haar_averaging")]


def test_the_model_satisfies_the_assumptions() -> None:
    model, sizes = _s3_model()
    lam = mc.Box("lambda_G", mc.Ty(), T)
    assumed = [*G.axioms, *X.axioms, *Y.axioms, equivariance_equation(S.k, X, Y),
               equivariance_equation(S.gamma, X, GSpace.regular(G)),
               equivariance_equation(lam, GSpace.unit(G), GSpace.regular(G)),
               equivariance_equation(mc.Box("m", T @ X.ty, Y.ty), GSpace.regular(G) @ X, Y)]
    for eq in assumed:
        np.testing.assert_allclose(evaluate(eq.lhs, model, sizes), evaluate(eq.rhs, model, sizes), atol=1e-12)
    assert not np.allclose(evaluate(G.mul, model, sizes), evaluate(mc.Swap(T, T) >> G.mul, model, sizes))


@pytest.mark.parametrize("name", SEMANTIC)
def test_every_diagram_of_a_proof_has_the_same_meaning(name: str) -> None:
    model, sizes = _s3_model()
    chain = ALL[name].diagrams
    first = evaluate(chain[0], model, sizes)
    for d in chain[1:]:
        np.testing.assert_allclose(evaluate(d, model, sizes), first, atol=1e-12)


def test_the_model_separates_what_the_hypotheses_protect() -> None:
    model, sizes = _s3_model()
    model["k"] = np.random.default_rng(1).dirichlet(np.ones(3), size=3)  # not equivariant
    stable = proofs.sym_stable()
    assert not np.allclose(evaluate(stable.start, model, sizes), evaluate(stable.end, model, sizes))


def test_chaining_and_reusing_proofs() -> None:
    first, second = proofs.cancel_product(), proofs.inverse_of_product()
    assert Rule.from_proof(first) == first.as_rule()
    assert first.as_rule("backward") == first.as_rule().reversed()
    whole = second.then(Proof(second.end).step(second.end, by="Markov"))
    assert whole.check() and len(whole) == len(second) + 1
    with pytest.raises(ProofError, match="cannot chain"):
        first.then(second)
    back = proofs.act_cancel().reversed()
    assert back.check() and mc.equal(back.start, proofs.act_cancel().end)


def test_shipped_verdicts_do_not_depend_on_what_ran_before() -> None:
    det = proofs.Setting(k=mc.Box("k", X.ty, Y.ty, deterministic=True))
    verdicts = [proofs.ave_sym().is_valid(), proofs.ave_sym(det).is_valid(), proofs.ave_sym().is_valid(),
                proofs.ave_sym(det).is_valid()]
    assert verdicts == [True, True, True, True]
    assert proofs.expectation(det.k) == proofs.expectation(det.k)
    assert proofs.expectation(det.k) != proofs.expectation(S.k)  # read alike, differ as boxes


def test_evidence_names_its_shipped_proof_which_the_proof_library_builds() -> None:
    s = sym(S.k, S.gamma_morphism(), Y)
    assert s.evidence.proof_ref == "sym_equivariant"
    assert proofs.proof_of(s.evidence) == proofs.sym_equivariant()
    assert proofs.proof_of(S.gamma_morphism().evidence) is None
    with pytest.raises(TypeError, match="Evidence"):
        proofs.proof_of(s)  # type: ignore[arg-type]
