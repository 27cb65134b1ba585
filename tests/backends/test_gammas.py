"""Gamma constructions: equivariance (deterministic, pathwise, in law), broken variants, degeneracy, gradients."""

from __future__ import annotations

import dataclasses
import warnings
from collections.abc import Callable

import pytest
import torch
from torch import nn

import markovcat as mc
from markovcat.backends import torch as mct
from markovcat.backends.torch.equivariance import check_equivariance
from markovcat.backends.torch.gammas import Gamma
from markovcat.experiments.examples import PointMLP

gm = mct.gammas
O3, SO3, N = mct.Orthogonal(3), mct.Orthogonal(3, special=True), 10
S6, P6 = mct.Symmetric(6), mct.PermutationMatrices(6)
T3, C4, D4 = mct.Translation(3), mct.Cyclic(4), mct.Dihedral(4)  # one object per group: actions are built from it


def seeded(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def point_mlp_frame() -> nn.Module:
    torch.manual_seed(0)
    return gm.MLPFrame(N * 3, 9, 3, hidden=32)


BUILDERS: dict[str, Callable[[], Gamma]] = {
    "PCA O(3)": lambda: gm.canonical(mct.PCACanonicaliser(), O3, O3.points(N)),
    "PCA SO(3)": lambda: gm.canonical(mct.PCACanonicaliser(special=True), SO3, SO3.points(N)),
    "Gram-Schmidt O(3)": lambda: gm.canonical(mct.MomentCanonicaliser(), O3, O3.points(N)),
    "Gram-Schmidt SO(3)": lambda: gm.canonical(mct.MomentCanonicaliser(special=True), SO3, SO3.points(N)),
    "centroid T(3)": lambda: gm.canonical(mct.Centroid(), T3, T3.points(N)),
    "lexsort S6": lambda: gm.canonical(mct.Lexsort(), S6, S6.sets(2)),
    "orbit argmax C4": lambda: gm.canonical(mct.OrbitArgmax(C4.images(2, 5)), C4, C4.images(2, 5)),
    "orbit argmax D4": lambda: gm.canonical(mct.OrbitArgmax(D4.images(1, 5)), D4, D4.images(1, 5)),
    "E(3) centroid + PCA": lambda: gm.euclidean(gm.canonical(mct.PCACanonicaliser(), O3, O3.points(N)),
                                                mct.Euclidean(3)),
    "SE(3) centroid + PCA": lambda: gm.euclidean(gm.canonical(mct.PCACanonicaliser(special=True), SO3, SO3.points(N)),
                                                 mct.Euclidean(3, special=True)),
    "Haar O(3)": lambda: gm.from_haar(O3, O3.points(N)),
    "Haar D4": lambda: gm.from_haar(D4, D4.images(1, 4)),
    "Kim et al. O(3)": lambda: gm.noise_outsourced(gm.EquivariantVectors(3), O3, O3.points(N), O3.points(4)),
    "recursive O(3)": lambda: gm.recursive(point_mlp_frame(), O3, O3.points(N), (3, 3)),
    "E(3) centroid + recursive": lambda: gm.euclidean(gm.recursive(point_mlp_frame(), O3, O3.points(N), (3, 3)),
                                                      mct.Euclidean(3)),
    "E(3) centroid + Haar": lambda: gm.euclidean(gm.from_haar(O3, O3.points(N)), mct.Euclidean(3)),
    "noisy sort S6": lambda: gm.noisy_sort(nn.Linear(2, 1), S6, S6.sets(2)),
    "noisy sort S6 (matrices)": lambda: gm.noisy_sort(nn.Linear(2, 1), P6, P6.sets(2)),
    "GL(3) Cholesky": lambda: gm.general_linear(mct.GeneralLinear(3), 8),
    "uniform PCA frame O(3)": lambda: gm.uniform_frame(mct.PCAFrames(), O3, O3.points(N)),
}
EXPECTED = {"GL(3) Cholesky": "two-sample", "uniform PCA frame O(3)": "two-sample"}


@pytest.mark.parametrize("name", list(BUILDERS))
def test_gamma_is_equivariant(name: str) -> None:
    """Deterministic gammas to 1e-10 (float64); coupled stochastic ones pathwise to 1e-10; the rest in law."""
    gamma = BUILDERS[name]()
    report = gamma.check(n_inputs=16)
    assert report.passed, str(report)
    expected = EXPECTED.get(name, "deterministic" if gamma.compile().deterministic else "pathwise")
    assert report.method == expected
    if expected != "two-sample":
        assert report.statistic <= 1e-10


def test_pca_frames_are_equivariant_as_sets_and_frame_averaging_is_exact() -> None:
    frames = mct.PCAFrames()
    x = torch.randn(6, N, 3, generator=seeded(), dtype=torch.float64)
    g = O3.sample(6, seeded(1), torch.float64)
    moved, expected = frames(O3.points(N).act(g, x)), g.unsqueeze(1) @ frames(x)
    assert moved.shape == (6, 8, 3, 3)
    distance = (moved.unsqueeze(2) - expected.unsqueeze(1)).flatten(3).abs().amax(-1)  # (batch, 8, 8)
    assert float(distance.amin(-1).amax()) < 1e-10  # every element of F(g.x) is in g F(x)
    assert mct.PCAFrames(special=True)(x).shape == (6, 4, 3, 3)

    torch.manual_seed(0)
    mlp = nn.Linear(N * 3, N * 3).double()

    def averaged(points: torch.Tensor) -> torch.Tensor:  # (1 / |F|) sum_F F . f(F^-1 . x), batched over F
        f = frames(points)
        inner = (points.unsqueeze(1) @ f).flatten(0, 1)  # rows x_i -> F^T x_i
        out = mlp(inner.flatten(1)).view(-1, f.shape[1], N, 3)
        return (out @ f.transpose(-1, -2)).mean(1)

    report = check_equivariance(averaged, O3, O3.points(N), dtype=torch.float64)
    assert report.passed and report.statistic <= 1e-10, str(report)


def unsigned_pca(x: torch.Tensor) -> torch.Tensor:
    y = x - x.mean(-2, keepdim=True)
    return torch.linalg.eigh(y.transpose(-1, -2) @ y)[1].flip(-1)


def test_broken_gammas_fail() -> None:
    """PCA without the sign rule, R on the wrong side of the GL gamma, a non-equivariant h in Kim et al.'s gamma,
    and a canonical frame multiplied by a fixed element on the wrong side."""
    no_signs = gm.canonical(unsigned_pca, O3, O3.points(N)).check()
    assert not no_signs.passed and no_signs.statistic > 0.1
    wrong_gl = gm.general_linear(mct.GeneralLinear(3), 8, broken=True).check()
    assert not wrong_gl.passed and wrong_gl.method == "two-sample"
    torch.manual_seed(0)
    not_equivariant_h = gm.noise_outsourced(gm.MLPFrame(N * 3, 12, 3, hidden=16), O3, O3.points(N), O3.points(4))
    report = not_equivariant_h.check(method="pathwise")
    assert not report.passed and report.statistic > 0.1
    fixed = O3.sample(1, seeded(), torch.float64)
    wrong_side = lambda x: O3.mul(fixed, mct.PCACanonicaliser()(x))  # noqa: E731  (F(x) . fixed would be equivariant)
    assert not check_equivariance(wrong_side, O3, O3.points(N), O3.regular(), dtype=torch.float64).passed


def test_degenerate_inputs_raise_clear_errors_not_nans() -> None:
    x = torch.randn(4, N, 3, generator=seeded(), dtype=torch.float64)
    coincident = x.clone()
    coincident[1] = 1.0
    with pytest.raises(ValueError, match="batch index 1 .*all its points coincide"):
        mct.PCACanonicaliser()(coincident)
    sphere = x.clone()
    sphere[2] = torch.cat([torch.eye(3), -torch.eye(3), torch.zeros(4, 3)]).double()  # isotropic: equal eigenvalues
    for frame in (mct.PCACanonicaliser(), mct.PCAFrames()):
        with pytest.raises(ValueError, match="batch index 2 .*eigenvalues of its covariance are too close"):
            frame(sphere)
    symmetric = x.clone()
    symmetric[3] = torch.cat([x[3, :5], -x[3, :5]])  # centrally symmetric: every third moment vanishes
    with pytest.raises(ValueError, match="batch index 3 .*symmetric along principal axis"):
        mct.PCACanonicaliser()(symmetric)
    assert mct.PCAFrames()(symmetric).isfinite().all()  # frames need no sign rule
    for bad in (coincident, sphere, symmetric):  # the documented fallback: finite, orthogonal, not equivariant
        frame = mct.PCACanonicaliser(validate=False)(bad)
        assert frame.isfinite().all()
        assert torch.allclose(frame.transpose(-1, -2) @ frame, torch.eye(3, dtype=torch.float64), atol=1e-10)
    singular = torch.randn(3, 3, 8, generator=seeded(1), dtype=torch.float64)
    singular[0, 2] = singular[0, 0] + singular[0, 1]
    with pytest.raises(ValueError, match="batch index 0 .*x x\\^T is \\(numerically\\) singular"):
        mct.LowerCholesky()(singular)
    with pytest.raises(ValueError, match="two rows of the set at batch index 0 are identical"):
        mct.Lexsort()(torch.tensor([[[1.0, 2.0], [0.0, 1.0], [1.0, 2.0]]]))
    symmetric_image = torch.ones(1, 1, 4, 4)
    with pytest.raises(ValueError, match="batch index 0 has a symmetry"):
        mct.OrbitArgmax(mct.Cyclic(4).images(1, 4))(symmetric_image)
    zero = gm.orthonormalise(torch.zeros(2, 3, 3, dtype=torch.float64))  # rank 0: still orthogonal, no NaN
    assert torch.allclose(zero.transpose(-1, -2) @ zero, torch.eye(3, dtype=torch.float64), atol=1e-12)


@pytest.mark.parametrize("name", ["Kim et al. O(3)", "recursive O(3)", "noisy sort S6 (matrices)"])
def test_gradients_flow_through_learned_gammas(name: str) -> None:
    gamma = BUILDERS[name]()
    model = gamma.compile()
    x = gamma.action.random(8, seeded())
    target = gamma.group.sample(8, seeded(1), x.dtype)
    loss = (model(x, generator=seeded(2)) - target).pow(2).sum()
    loss.backward()
    grads = [p.grad for p in model.parameters()]
    assert grads and all(g is not None and g.isfinite().all() for g in grads)
    assert any(float(g.abs().max()) > 0 for g in grads if g is not None)


def test_noisy_sort_is_exact_forward_and_matches_the_index_version() -> None:
    torch.manual_seed(0)
    score = nn.Linear(2, 1)
    x, eps = torch.randn(5, 6, 2, generator=seeded()), torch.randn(5, 6, generator=seeded(1))
    as_matrix = gm.NoisySort(score, P6)(x, eps)
    as_indices = gm.NoisySort(score, S6)(x, eps)
    assert torch.equal(as_matrix, P6.from_indices(as_indices))
    sorted_scores = (P6.inv(as_matrix) @ (score(x) + eps.unsqueeze(-1))).squeeze(-1)
    assert bool((sorted_scores[:, 1:] >= sorted_scores[:, :-1]).all())  # gamma^-1 . x is in score order


def test_so3_gram_schmidt_frame_handles_planar_clouds_that_o3_refuses() -> None:
    planar = torch.randn(5, N, 3, generator=seeded(), dtype=torch.float64)
    planar[..., 2] = 0.0
    with pytest.raises(ValueError, match="degenerate point cloud at batch index 0"):
        mct.MomentCanonicaliser()(planar)
    frame = mct.MomentCanonicaliser(special=True)
    g = SO3.sample(5, seeded(1), torch.float64)
    moved = frame(SO3.points(N).act(g, planar))
    assert float(mct.relative_error(moved, g @ frame(planar)).max()) < 1e-10
    assert torch.allclose(torch.linalg.det(moved), torch.ones(5, dtype=torch.float64))


slow_only = pytest.mark.skipif("'slow' not in (config.getoption('markexpr') or '')", reason="slow: run with -m slow")


@pytest.mark.slow
@slow_only
def test_two_sample_check_of_the_gl_gamma_false_alarms_and_power() -> None:
    """Over 40 seeds at alpha = 0.01: few false alarms for the GL gamma, every seed catches R on the wrong side."""
    group = mct.GeneralLinear(3)
    good, bad = gm.general_linear(group, 8), gm.general_linear(group, 8, broken=True)
    alarms = sum(not good.check(seed=s).passed for s in range(40))
    caught = sum(not bad.check(seed=s).passed for s in range(40))
    assert alarms <= 3 and caught == 40, (alarms, caught)


# -- one gamma type: guarantees, immutability, conversion ------------------------------------------------
KINDS = {"Haar O(3)": "in law", "Haar D4": "in law", "Kim et al. O(3)": "in law", "recursive O(3)": "in law",
         "E(3) centroid + recursive": "in law", "E(3) centroid + Haar": "in law", "noisy sort S6": "in law",
         "noisy sort S6 (matrices)": "in law", "GL(3) Cholesky": "in law", "uniform PCA frame O(3)": "in law"}


@pytest.mark.parametrize("name", list(BUILDERS))
def test_every_built_in_gamma_states_its_guarantee_in_its_evidence(name: str) -> None:
    gamma = BUILDERS[name]()
    assert isinstance(gamma, Gamma)
    assert gamma.guarantee.kind == KINDS.get(name, "exact")
    assert (gamma.guarantee.kind == "exact") == gamma.deterministic
    reasons = [a.reason for a in gamma.morphism.assumptions()]
    assert any(gamma.guarantee.sentence in r or r in gamma.guarantee.sentence for r in reasons), reasons
    assert gamma.guarantee.kind in gamma.explain()


def test_gammas_are_immutable_and_refuse_inconsistent_guarantees() -> None:
    gamma = gm.from_haar(O3, O3.points(N))
    with pytest.raises(dataclasses.FrozenInstanceError):
        gamma.guarantee = gm.Guarantee("exact", "no")  # type: ignore[misc]
    with pytest.raises(ValueError, match="cannot be 'exact'"):
        dataclasses.replace(gamma, guarantee=gm.Guarantee("exact", "a Haar draw is not deterministic"))
    with pytest.raises(ValueError, match="unknown guarantee kind"):
        gm.Guarantee("probably", "it looked fine")
    with pytest.raises(TypeError, match="TorchAction of its group"):
        dataclasses.replace(gamma, action=SO3.points(N))


def test_user_gammas_are_assumed_and_library_frames_are_vouched_for() -> None:
    user = gm.as_gamma(unsigned_pca, O3, O3.points(N))
    assert user.guarantee.kind == "assumed" and user.deterministic
    assert user.guarantee.evidence.endswith("(assumed, not checked)") and "declared" not in user.explain()
    ours = gm.as_gamma(mct.PCACanonicaliser(), O3, O3.points(N))
    assert ours.guarantee.kind == "exact" and "refused" in ours.guarantee.degenerate
    loose = gm.as_gamma(mct.PCACanonicaliser(validate=False), O3, O3.points(N))
    assert "not equivariant" in loose.guarantee.degenerate
    def my_frames(x: torch.Tensor) -> torch.Tensor:
        return mct.PCAFrames()(x)

    with pytest.warns(UserWarning, match="gamma_frame_my_frames is assumed"):  # a user's frame in our sampler
        wrapped = gm.uniform_frame(my_frames, O3, O3.points(N))
    assert wrapped.guarantee.kind == "assumed" and wrapped.elements is not None
    assert gm.uniform_frame(mct.UniformFrame(my_frames), O3, O3.points(N)).guarantee.kind == "assumed"
    assert gm.as_gamma(mct.UniformFrame(lambda x: mct.PCAFrames()(x)), O3, O3.points(N)).guarantee.kind == "assumed"
    assert gm.uniform_frame(mct.PCAFrames(), O3, O3.points(N)).guarantee.kind == "in law"
    assert gm.as_gamma(ours, O3, ours.action) is ours
    assert gm.as_gamma(ours, O3, O3.points(N)) is ours  # an equal action, built again
    with pytest.raises(TypeError, match=r"differ in the spec's shape: \(10, 3\) vs \(9, 3\)"):
        gm.as_gamma(ours, O3, O3.points(N - 1))
    with pytest.raises(ValueError, match="unknown gamma 'pca'"):
        gm.as_gamma("pca", O3, O3.points(N))
    with pytest.raises(TypeError, match="a gamma is a name"):
        gm.as_gamma(3, O3, O3.points(N))
    with pytest.raises(TypeError, match="sampler"):
        gm.canonical(mct.UniformPCAFrame(O3), O3, O3.points(N))


def test_a_user_gamma_warns_once_and_reads_assumed_until_checked() -> None:
    def my_pca(x: torch.Tensor) -> torch.Tensor:
        return mct.PCACanonicaliser()(x)

    with pytest.warns(UserWarning, match="gamma_my_pca is assumed O[(]3[)]-equivariant and nothing checked it"):
        gamma = gm.as_gamma(my_pca, O3, O3.points(N))
    with warnings.catch_warnings(record=True) as again:
        warnings.simplefilter("default")  # Python's usual filter: each message once
        gm.as_gamma(my_pca, O3, O3.points(N))
        gm.as_gamma(my_pca, O3, O3.points(N))
    assert len([w for w in again if "gamma_my_pca" in str(w.message)]) <= 1
    assert [a.reason for a in gamma.morphism.assumptions()] == ["my_pca is O(3)-equivariant (assumed, not checked)"]
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a checked gamma does not warn
        checked = gamma.checked(n_inputs=8)
        assert mct.check_model(mc.symmetrise(PointMLP(N, 3, 16).double(), group=O3, input=O3.points(N),
                                       gamma=checked)).passed
    reason = checked.morphism.assumptions()[0].reason
    assert "checked numerically, not proved: gamma.check() passed, deterministic on 8 inputs" in reason
    assert checked.guarantee.kind == "assumed" and "not checked" not in checked.explain()
    with pytest.raises(ValueError, match="gamma_unsigned_pca failed gamma.check"):
        gm.as_gamma(unsigned_pca, O3, O3.points(N)).checked(n_inputs=8)
    ours = gm.named("canonical", O3, O3.points(N))
    assert ours.checked(n_inputs=8) is ours  # the library's own guarantee is left as it is


def test_check_refuses_outputs_that_are_not_group_elements_or_in_the_wrong_dtype() -> None:
    pca = mct.PCACanonicaliser()
    flip = torch.diag(torch.tensor([1.0, 1.0, -1.0]))

    def doubled(x: torch.Tensor) -> torch.Tensor:  # equivariant, but 2 F is not orthogonal
        return 2 * pca(x)

    def improper(x: torch.Tensor) -> torch.Tensor:  # an O(3) frame of det -1: equivariant for SO(3), not in it
        g = mct.PCACanonicaliser(special=True)(x)
        return g @ flip.to(x.dtype)

    def always_float64(x: torch.Tensor) -> torch.Tensor:
        return pca(x.double())

    def two_by_two(x: torch.Tensor) -> torch.Tensor:
        return pca(x)[:, :2, :2]

    def not_a_permutation(x: torch.Tensor) -> torch.Tensor:
        return torch.zeros(x.shape[0], 5, dtype=torch.long)

    assert gm.as_gamma(lambda x: pca(x), O3, O3.points(N)).check(n_inputs=8).passed  # the same frame passes
    with pytest.raises(ValueError, match=r"gamma_doubled returned 8 of 8 outputs that are not elements of O\(3\)"):
        gm.as_gamma(doubled, O3, O3.points(N)).check()
    with pytest.raises(ValueError, match=r"gamma_improper returned 8 of 8 outputs that are not elements of SO\(3\)"):
        gm.as_gamma(improper, SO3, SO3.points(N)).check()
    assert bool(O3.contains(improper(O3.points(N).random(4))).all())  # elements of O(3), not of SO(3)
    with pytest.raises(TypeError, match=r"gamma_always_float64 returned torch.float64 elements for a batch of 8 "
                                        r"float32 inputs, but elements of O\(3\) are torch.float32"):
        gm.as_gamma(always_float64, O3, O3.points(N)).check()
    with pytest.raises(mct.InterpretationError, match=r"'gamma_two_by_two' returned per-example shape \(2, 2\)"):
        gm.as_gamma(two_by_two, O3, O3.points(N)).check()
    S5 = mct.Symmetric(5)
    with pytest.raises(ValueError, match="gamma_not_a_permutation returned 8 of 8 outputs that are not elements of S5"):
        gm.as_gamma(not_a_permutation, S5, S5.sets(2)).check()
    assert bool(O3.contains(O3.sample(4, dtype=torch.float32)).all()) and not bool(SO3.contains(-torch.eye(3)[None]))
    C4 = mct.Cyclic(4)
    assert bool(C4.contains(torch.tensor([0, 3])).all()) and not bool(C4.contains(torch.tensor([4])))


def test_equal_actions_are_equal_and_a_mismatch_says_how() -> None:
    GL = mct.GeneralLinear(3)
    assert GL.left(6) == GL.left(6) and hash(GL.left(6)) == hash(GL.left(6))
    D4 = mct.Dihedral(4)
    assert O3.points(N) == O3.points(N) and D4.images(1, 5) == D4.images(1, 5) != D4.images(2, 5)
    assert GL.left(6) != GL.left(5) and O3.points(N) != O3.vectors() and O3.points(N) != SO3.points(N)
    gamma = gm.general_linear(GL, 6)
    assert gm.as_gamma(gamma, GL, GL.left(6)) is gamma  # the natural action is accepted
    with pytest.raises(TypeError) as refused:
        gm.as_gamma(gamma, GL, GL.left(5))
    message = str(refused.value)
    assert "differ in the spec's shape: (3, 6) vs (3, 5)" in message
    other = mct.Orthogonal(3)
    assert O3.points(N).differences(other.points(N)) == [
        "the group: O(3) vs O(3) (equal names, but two group objects: build both from one)"]
    differences = O3.points(N).differences(O3.vectors())
    assert any("kind: 'rows' vs None" in d for d in differences) and any("_rotate_vector" in d for d in differences)


def test_a_compiled_gamma_carries_its_symmetry_and_check_uses_it() -> None:
    gamma = gm.canonical(mct.PCACanonicaliser(), O3, O3.points(N))
    model = gamma.compile().double()
    assert model.morphism is gamma.morphism and model.symmetry.group is O3
    assert mct.check_model(model).passed
    broken = gm.canonical(unsigned_pca, O3, O3.points(N)).compile().double()
    assert not mct.check_model(broken).passed


NAMED_CASES = {  # name -> (group, action, output) it serves
    "haar": (S6, S6.sets(2), None),
    "recursive": (O3, O3.points(N), None),
    "canonical": (O3, O3.points(N), None),
    "frame": (O3, O3.points(N), None),
    "learned": (O3, O3.points(N), None),
    "canonical-random-ties": (S6, S6.sets(2), None),
}


@pytest.mark.parametrize("name", list(gm.NAMED))
def test_every_named_gamma_builds_a_gamma_that_passes_its_check(name: str) -> None:
    group, action, output = NAMED_CASES[name]
    torch.manual_seed(0)
    gamma = gm.named(name, group, action, output, hidden=16)
    assert isinstance(gamma, Gamma)
    report = gamma.check(n_inputs=8)
    assert report.passed, str(report)


def padded_sets(batch: int = 6, seed: int = 0) -> torch.Tensor:
    """Sets of 6 points in the plane, the last two rows zero padding (so two equal rows each)."""
    x = torch.randn(batch, 6, 2, generator=seeded(seed), dtype=torch.float64)
    x[:, 4:] = 0.0
    return x


def test_canonical_s_n_accepts_equal_rows_for_an_invariant_output_only() -> None:
    x = padded_sets()
    invariant = S6.trivial(mct.Spec((1,)))
    accepting = gm.named("canonical", S6, S6.sets(2), invariant).compile()
    assert accepting(x).shape == (6, 6)  # ties between equal rows: harmless for an invariant output
    refusing = gm.named("canonical", S6, S6.sets(2)).compile()
    with pytest.raises(Exception, match="two rows of the set at batch index 0 are identical"):
        refusing(x)


def test_random_ties_gamma_is_equivariant_in_law_on_padded_sets() -> None:
    gamma = gm.named("canonical-random-ties", S6, S6.sets(2))
    assert gamma.guarantee.kind == "in law" and not gamma.deterministic
    report = gamma.check(inputs=padded_sets())
    assert report.passed, str(report)


def test_random_ties_gamma_sorts_and_breaks_ties_uniformly() -> None:
    gamma = gm.named("canonical-random-ties", S6, S6.sets(2))
    assert gamma.guarantee.kind == "in law" and not gamma.deterministic
    x = padded_sets()
    g = gamma.compile()(x, generator=seeded(1))
    lexsorted = mct.Lexsort(validate=False)(x)
    sets = S6.sets(2)
    assert torch.equal(sets.act(S6.inv(g), x), sets.act(S6.inv(lexsorted), x))  # g^-1 . x is the sorted set
    draws = gamma.compile()(x[:1].repeat(4000, 1, 1), generator=seeded(2))
    position = (draws.unsqueeze(-1) == torch.tensor([4, 5])).int().argmax(-2)  # where the two padding rows land
    assert torch.equal(position.sort(-1).values, position[:1].sort(-1).values.expand(4000, 2))  # next to each other
    four_first = (position[:, 0] < position[:, 1]).double().mean()  # either order, each half of the time
    assert abs(float(four_first) - 0.5) < 0.04, float(four_first)
