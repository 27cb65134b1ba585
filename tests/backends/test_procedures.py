"""Named procedures: each against its paper's formula in plain torch, each checked for equivariance, each breakable.

The reference formulas below use torch only (no markovcat): they re-derive the frame,
the group elements and the noise from the same seeded generators and the same weights.
"""

from __future__ import annotations

import copy
import itertools
import math
import pickle
from pathlib import Path
from typing import Any

import pytest
import torch
from torch import Tensor, nn

from markovcat import Diagram
from markovcat.backends import torch as mct
from markovcat.backends.torch import gammas as gm
from markovcat.backends.torch import procedures as P
from markovcat.backends.torch.equivariance import check_equivariance
from markovcat.backends.torch.frames import UniformPCAFrame
from markovcat.experiments.examples import PointMLP

N, D = 6, 3


def seeded(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


@pytest.fixture(scope="module", autouse=True)
def float64() -> object:
    """Everything in float64 (compile dry-runs in the default dtype), so formulas agree to 1e-12."""
    previous = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    yield
    torch.set_default_dtype(previous)


@pytest.fixture(scope="module")
def o3() -> mct.Orthogonal:
    return mct.Orthogonal(D)


@pytest.fixture(scope="module")
def mlp() -> PointMLP:
    torch.manual_seed(0)
    return PointMLP(N, D, 32).double()


def clouds(batch: int = 5, seed: int = 1) -> Tensor:
    return torch.randn(batch, N, D, generator=seeded(seed), dtype=torch.float64)


# -- plain-torch references ---------------------------------------------------------------------
def sign_fixed_qr(m: Tensor) -> Tensor:
    q, r = torch.linalg.qr(m)
    return q * torch.sgn(torch.diagonal(r, dim1=-2, dim2=-1)).unsqueeze(-2)


def moment_frame(x: Tensor) -> Tensor:
    norms = (x * x).sum(-1, keepdim=True)
    return sign_fixed_qr(torch.stack([(x * norms**k).sum(-2) for k in range(x.shape[-1])], dim=-1))


def pca_canonical(x: Tensor) -> Tensor:
    """Kaba et al.'s PCA canonicalisation by hand: eigenvectors by decreasing eigenvalue, third-moment signs."""
    y = x - x.mean(-2, keepdim=True)
    _, vectors = torch.linalg.eigh(y.transpose(-1, -2) @ y / x.shape[-2])
    vectors = vectors.flip(-1)
    third = ((y @ vectors) ** 3).sum(-2)
    return vectors * torch.sgn(third).unsqueeze(-2)


def haar(batch: int, generator: torch.Generator) -> Tensor:
    """Haar on O(3) by hand: a uniform unit quaternion's rotation, times -1 with probability 1/2."""
    q = torch.randn(5, batch, generator=generator, dtype=torch.float64)
    w, x, y, z = q[:4] / torch.linalg.vector_norm(q[:4], dim=0)
    r = torch.stack([w * w + x * x - y * y - z * z, 2 * (x * y - w * z), 2 * (x * z + w * y),
                     2 * (x * y + w * z), w * w - x * x + y * y - z * z, 2 * (y * z - w * x),
                     2 * (x * z - w * y), 2 * (y * z + w * x), w * w - x * x - y * y + z * z], dim=-1)
    return r.view(batch, D, D) * torch.where(q[4] < 0, -1.0, 1.0).to(r.dtype)[:, None, None]


def act(g: Tensor, f: nn.Module, x: Tensor) -> Tensor:
    """``g . f(g^-1 . x)`` for point clouds (rows): ``f(x g) g^T``."""
    return f(x @ g) @ g.transpose(-1, -2)


# -- canonicalisation (Kaba et al.) ----------------------------------------------------------------
def test_canonicalise_is_kaba_et_al(o3: mct.Orthogonal, mlp: PointMLP) -> None:
    model = P.canonicalise(mlp, o3, o3.points(N))
    x = clouds()
    h = pca_canonical(x)
    assert torch.allclose(model(x), act(h, mlp, x), atol=1e-12)  # h(x) f(h(x)^-1 x)
    assert P.check_model(model).passed and P.check_model(model).method == "deterministic"
    assert isinstance(model.diagram, Diagram) and model.diagram.is_deterministic


def test_a_non_equivariant_canonicaliser_fails(o3: mct.Orthogonal, mlp: PointMLP) -> None:
    weights = torch.randn(N * D, D * D, generator=seeded(3), dtype=torch.float64)

    def not_a_frame(x: Tensor) -> Tensor:  # QR of a fixed linear map of x: not equivariant
        return sign_fixed_qr((x.flatten(1) @ weights).view(-1, D, D))

    with pytest.warns(UserWarning, match=r"gamma_not_a_frame is assumed O\(3\)-equivariant and nothing checked it"):
        model = P.canonicalise(mlp, o3, o3.points(N), frame=not_a_frame)
    assert "not_a_frame is O(3)-equivariant (assumed, not checked)" in [a.reason for a in model.morphism.assumptions()]
    assert not P.check_model(model).passed


def test_a_gamma_of_the_wrong_shape_is_named_at_symmetrise(o3: mct.Orthogonal, mlp: PointMLP) -> None:
    pca = mct.PCACanonicaliser()

    def two_by_two(x: Tensor) -> Tensor:
        return pca(x)[:, :2, :2]

    with pytest.warns(UserWarning, match="gamma_two_by_two"), pytest.raises(
            mct.InterpretationError, match=r"upstream: box 'gamma_two_by_two' returned per-example shape \(2, 2\)"):
        P.symmetrise(mlp, o3, o3.points(N), gamma=two_by_two)


def test_canonicalise_refuses_degenerate_and_nan_clouds(o3: mct.Orthogonal, mlp: PointMLP) -> None:
    model = P.canonicalise(mlp, o3, o3.points(N))
    coincident = torch.ones(1, N, D, dtype=torch.float64)
    with pytest.raises(ValueError, match="degenerate point cloud"):
        model(coincident)
    with pytest.raises(ValueError, match="NaN"):
        model.check_inputs(torch.full((1, N, D), float("nan"), dtype=torch.float64))


# -- frame averaging (Puny et al.) -------------------------------------------------------------------
def pca_frame(x: Tensor) -> Tensor:
    c = x - x.mean(-2, keepdim=True)
    _, v = torch.linalg.eigh(c.transpose(-1, -2) @ c)
    signs = torch.tensor(list(itertools.product((1.0, -1.0), repeat=D)), dtype=x.dtype)
    return torch.stack([v * s for s in signs], dim=1)  # (b, 2^d, d, d): V diag(s)


def test_frame_average_is_puny_et_al(o3: mct.Orthogonal, mlp: PointMLP) -> None:
    model = P.frame_average(mlp, o3, o3.points(N))
    x = clouds()
    frames = pca_frame(x)
    expected = torch.stack([act(frames[:, j], mlp, x) for j in range(frames.shape[1])]).mean(0)
    assert frames.shape[1] == 2**D
    assert torch.allclose(model(x), expected, atol=1e-12)  # (1/|F|) sum_{g in F} g f(g^-1 x)
    assert P.check_model(model).passed


def test_the_pca_frame_is_equivariant_as_a_set(o3: mct.Orthogonal) -> None:
    frame = UniformPCAFrame(o3)
    x, g = clouds(), o3.sample(5, seeded(4), torch.float64)
    moved, expected = frame.elements(x @ g.transpose(-1, -2)), g[:, None] @ frame.elements(x)
    # as sets: every element of F(g.x) is one of g F(x)
    distance = (moved[:, :, None] - expected[:, None]).flatten(3).abs().amax(-1).amin(-1)
    assert distance.max() < 1e-10


def test_frame_average_without_sign_flips_fails(o3: mct.Orthogonal, mlp: PointMLP) -> None:
    class OneSign(UniformPCAFrame):
        def elements(self, x: Tensor) -> Tensor:
            return super().elements(x)[:, :1]  # eigh's own sign choice: not equivariant

    report = P.check_model(P.frame_average(mlp, o3, o3.points(N), frame=OneSign(o3)))
    assert not report.passed


def test_pca_frame_policy_for_repeated_eigenvalues(o3: mct.Orthogonal, mlp: PointMLP) -> None:
    model = P.frame_average(mlp, o3, o3.points(N))
    square = torch.tensor([[[1.0, 0, 0], [-1, 0, 0], [0, 1, 0], [0, -1, 0], [0, 0, 2], [0, 0, -2]]],
                          dtype=torch.float64)  # eigenvalues 2, 2, 8
    with pytest.raises(ValueError, match="eigenvalues"):
        model(square)
    with pytest.raises(ValueError, match="NaN"):
        model(torch.full((1, N, D), float("nan"), dtype=torch.float64))


# -- probabilistic symmetrisation (Kim et al.) -------------------------------------------------------
def test_probabilistic_symmetrise_is_kim_et_al(o3: mct.Orthogonal, mlp: PointMLP) -> None:
    torch.manual_seed(5)
    n = 7
    model = P.probabilistic_symmetrise(mlp, o3, o3.points(N), samples=n).double()
    x = clouds(3)
    h = next(m for m in model.modules() if isinstance(m, gm.GramNet))
    gen = seeded(11)
    xs = x.repeat_interleave(n, 0)
    eps = torch.randn(xs.shape[0], 2, D, generator=gen, dtype=torch.float64)  # the same draws, same order
    z = torch.cat([xs, eps], dim=-2)
    w = h.layer2(torch.nn.functional.silu(h.layer1((z @ z.transpose(-1, -2)).flatten(1)))).view(-1, N + 2, D)
    g = sign_fixed_qr(z.transpose(-1, -2) @ w)  # g ~ p(g | x) = QR(h([x, eps]))
    expected = act(g, mlp, xs).unflatten(0, (3, n)).mean(1)  # E_g[g f(g^-1 x)], n samples
    assert torch.allclose(model(x, generator=seeded(11)), expected, atol=1e-12)
    assert P.check_model(model, samples=100).passed  # the law of the n-sample average


@pytest.mark.parametrize("build", [lambda net, g, a: P.probabilistic_symmetrise(net, g, a, samples=2),
                                   lambda net, g, a: P.stochastic_symmetrise(net, g, a, gamma="recursive")],
                         ids=["learned", "recursive"])
def test_a_gamma_network_built_by_name_follows_the_nets_dtype(o3: mct.Orthogonal, build: Any) -> None:
    torch.set_default_dtype(torch.float32)  # the gamma's networks are made in the default dtype
    try:
        net = PointMLP(N, D, 8).double()
        model = build(net, o3, o3.points(N))
    finally:
        torch.set_default_dtype(torch.float64)  # the module's fixture
    assert {p.dtype for p in model.parameters()} == {torch.float64}
    assert model(clouds(2), generator=seeded(0)).dtype == torch.float64


def test_kim_gamma_is_equivariant_pathwise_and_a_plain_one_fails(o3: mct.Orthogonal, mlp: PointMLP) -> None:
    torch.manual_seed(6)
    single = P.symmetrise(mlp, o3, o3.points(N), gamma="learned").double()
    report = P.check_model(single)
    assert report.passed and report.method == "pathwise"  # eps moved by g: checks h's equivariance too
    net = gm.GroupNet(o3, N * D, D * D, 16).double()

    def plain_gamma(x: Tensor, generator: torch.Generator | None = None) -> Tensor:
        return net(x, torch.randn(x.shape[0], D, D, generator=generator, dtype=x.dtype))

    broken = P.probabilistic_symmetrise(mlp, o3, o3.points(N), gamma=plain_gamma, samples=4)
    assert not P.check_model(broken, samples=100).passed


# -- Janossy pooling (Murphy et al.) -----------------------------------------------------------------
def first_rows(x: Tensor) -> Tensor:  # not permutation invariant
    return torch.tanh(x[:, 0] * x[:, 1] + x[:, 2]).sum(-1, keepdim=True) + x[:, 0, :1] ** 2


def test_janossy_is_murphy_et_al() -> None:
    s4 = mct.Symmetric(4)
    out = s4.trivial(mct.Spec((1,)))
    model = P.janossy(first_rows, s4, s4.sets(2), out)
    x = torch.randn(3, 4, 2, generator=seeded(2), dtype=torch.float64)
    perms = list(itertools.permutations(range(4)))
    expected = sum(first_rows(x[:, list(p)]) for p in perms) / math.factorial(4)  # (1/n!) sum f(x_sigma)
    assert torch.allclose(model(x), expected, atol=1e-12)
    assert P.check_model(model).passed
    assert not check_equivariance(first_rows, s4, s4.sets(2), out, dtype=torch.float64).passed


def test_janossy_over_a_subset_of_permutations_fails() -> None:
    s4 = mct.Symmetric(4)
    out = s4.trivial(mct.Spec((1,)))

    class Shifts:
        """The 4 cyclic shifts only: not a frame for S_4."""

        def __call__(self, x: Tensor, generator: torch.Generator | None = None) -> Tensor:
            return self.elements(x)[:, 0]

        def elements(self, x: Tensor) -> Tensor:
            shifts = torch.stack([torch.roll(torch.arange(4), k) for k in range(4)])
            return shifts.expand(x.shape[0], 4, 4)

    assert not P.check_model(P.frame_average(first_rows, s4, s4.sets(2), out, frame=Shifts())).passed


def test_janossy_sampled_is_invariant_in_law_and_needs_s_n() -> None:
    s4 = mct.Symmetric(4)
    out = s4.trivial(mct.Spec((1,)))
    assert P.check_model(P.janossy(first_rows, s4, s4.sets(2), out, samples=8), samples=100).passed
    with pytest.raises(TypeError, match="symmetric group"):
        P.janossy(first_rows, mct.Cyclic(4), mct.Cyclic(4).plane())  # type: ignore[arg-type]


# -- stochastic symmetrisation (Cornish) -------------------------------------------------------------
def test_stochastic_symmetrise_recursive_is_cornish_sample_path(o3: mct.Orthogonal, mlp: PointMLP) -> None:
    torch.manual_seed(7)
    model = P.stochastic_symmetrise(mlp, o3, o3.points(N), gamma="recursive", hidden=16).double()
    f = next(m for m in model.modules() if isinstance(m, gm.GroupNet))
    x, gen = clouds(4), seeded(12)
    r0 = haar(4, gen)  # R0 ~ Haar, drawn first
    eps = torch.randn(4, D, D, generator=gen, dtype=torch.float64)
    hidden = torch.nn.functional.silu(f.layer1(torch.cat([(x @ r0).flatten(1), eps.flatten(1)], 1)))
    r = r0 @ sign_fixed_qr(f.layer2(hidden).view(-1, D, D))  # R = R0 QR(f([R0^T x, eps]))
    assert torch.allclose(model(x, generator=seeded(12)), act(r, mlp, x), atol=1e-12)
    report = P.check_model(model)
    assert report.passed and report.method == "pathwise"


def test_stochastic_symmetrise_haar_sample_path(o3: mct.Orthogonal, mlp: PointMLP) -> None:
    model = P.stochastic_symmetrise(mlp, o3, o3.points(N), gamma="haar")
    x = clouds(4)
    assert torch.allclose(model(x, generator=seeded(3)), act(haar(4, seeded(3)), mlp, x), atol=1e-12)
    assert P.check_model(model).passed


def test_a_gamma_ignoring_r0_fails(o3: mct.Orthogonal, mlp: PointMLP) -> None:
    torch.manual_seed(8)
    net = gm.GroupNet(o3, N * D, D * D, 16).double()

    def no_r0(x: Tensor, generator: torch.Generator | None = None) -> Tensor:
        return net(x, torch.randn(x.shape[0], D, D, generator=generator, dtype=x.dtype))

    assert not P.check_model(P.stochastic_symmetrise(mlp, o3, o3.points(N), gamma=no_r0)).passed


# -- along a homomorphism -------------------------------------------------------------------------
class Chiral(nn.Module):
    """``x_i |-> x_i + c(|x|) (x_i x m)``, ``m`` the mean: SO(3)-equivariant, not O(3) (the cross product)."""

    def forward(self, x: Tensor) -> Tensor:
        m = x.mean(-2, keepdim=True).expand_as(x)
        scale = torch.tanh(x.norm(dim=-1, keepdim=True))
        return x + scale * torch.linalg.cross(x, m, dim=-1)


def test_symmetrise_along_so_to_o(o3: mct.Orthogonal) -> None:
    net, so3 = Chiral().double(), mct.Orthogonal(3, special=True)
    assert check_equivariance(net, so3, so3.points(N), dtype=torch.float64).passed
    assert not check_equivariance(net, o3, o3.points(N), dtype=torch.float64).passed
    model = P.symmetrise_along(net, o3, o3.points(N))
    x = clouds()
    q = torch.sgn(torch.linalg.det(moment_frame(x)))
    r = torch.eye(3, dtype=torch.float64).repeat(5, 1, 1)
    r[:, 0, 0] = q  # the coset representative diag(q, 1, 1)
    assert torch.allclose(model(x, generator=seeded(0)), act(r, net, x), atol=1e-12)
    assert P.check_model(model).passed
    assert not P.check_model(P.symmetrise_along(PointMLP(N, D, 16).double(), o3, o3.points(N))).passed  # not SO(3)-eq.


# -- every group, the entry point, errors --------------------------------------------------------------
class Conv(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(1, 1, 3, padding=1)

    def forward(self, x: Tensor) -> Tensor:
        return self.conv(x) + x[..., :1, :] ** 2  # not rotation equivariant


CASES = {
    "O3 points": (lambda: mct.Orthogonal(3), lambda g: g.points(N), lambda: PointMLP(N, D, 16)),
    "SO3 points": (lambda: mct.Orthogonal(3, special=True), lambda g: g.points(N), lambda: PointMLP(N, D, 16)),
    "C4 images": (lambda: mct.Cyclic(4), lambda g: g.images(1, 5), Conv),
    "S5 sets": (lambda: mct.Symmetric(5), lambda g: g.sets(2), lambda: PointMLP(5, 2, 16)),
}

try:  # groups of the group library, where present
    from markovcat.backends.torch.finite_groups import Dihedral

    CASES["D4 images"] = (lambda: Dihedral(4), lambda g: g.images(1, 5), Conv)
except ImportError:  # pragma: no cover
    pass


@pytest.mark.parametrize("case", list(CASES))
@pytest.mark.parametrize("gamma", ["haar", "recursive", "canonical", "frame"])
def test_symmetrise_every_group_and_gamma(case: str, gamma: str) -> None:
    make_group, make_action, make_net = CASES[case]
    torch.manual_seed(0)
    group = make_group()
    action, net = make_action(group), make_net().double()
    assert not check_equivariance(net, group, action, dtype=torch.float64).passed
    average = "exact" if gamma == "frame" else None
    model = P.symmetrise(net, group, action, gamma=gamma, average=average).double()
    assert P.check_model(model).passed, P.check_model(model)


def test_symmetrise_monte_carlo_average_and_explain(o3: mct.Orthogonal, mlp: PointMLP, tmp_path: Path) -> None:
    model = P.symmetrise(mlp, o3, o3.points(N), gamma="haar", average=16)
    model.diagram.draw(tmp_path / "ave.svg")
    assert (tmp_path / "ave.svg").exists()
    assert model(clouds(2), generator=seeded(0)).shape == (2, N, D)
    text = model.morphism.explain()
    assert "Haar" in text and "linear" in text  # assumptions on record: Haar invariance, linear action


def test_bad_input_gives_clear_errors(o3: mct.Orthogonal, mlp: PointMLP) -> None:
    with pytest.raises(TypeError, match="torch group"):
        P.symmetrise(mlp, "O(3)", o3.points(N))
    with pytest.raises(TypeError, match="TorchAction"):
        P.symmetrise(mlp, o3, "points")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="not of this"):
        P.symmetrise(mlp, o3, mct.Orthogonal(3).points(N))
    with pytest.raises(ValueError, match="unknown gamma"):
        P.symmetrise(mlp, o3, o3.points(N), gamma="pca")
    with pytest.raises(ValueError, match="average must be"):
        P.symmetrise(mlp, o3, o3.points(N), average=0)
    with pytest.raises(ValueError, match="no finite support"):
        P.symmetrise(mlp, o3, o3.points(N), gamma="haar", average="exact")
    with pytest.raises(TypeError, match="no built-in"):
        P.symmetrise(mlp, o3, o3.vectors(), gamma="canonical")
    with pytest.raises(ValueError, match="carries no symmetry"):
        P.check_model(mlp)


# -- gammas built as C^G morphisms elsewhere plug in unchanged ------------------------------------------
def test_diagram_gammas_from_the_gamma_library_plug_in(o3: mct.Orthogonal, mlp: PointMLP) -> None:
    gl = pytest.importorskip("markovcat.backends.torch.gammas")
    gammas = pytest.importorskip("markovcat.backends.torch.frames")
    matrix = pytest.importorskip("markovcat.backends.torch.matrix_groups")
    points = o3.points(N)
    torch.manual_seed(0)
    kim = gl.noise_outsourced(gl.EquivariantVectors(D), o3, points, o3.points(2))
    for gamma in (gl.from_haar(o3, points), kim, gl.canonical(gammas.PCACanonicaliser(), o3, points)):
        model = P.symmetrise(mlp, o3, points, gamma=gamma)
        assert P.check_model(model).passed
    frames = P.frame_average(mlp, o3, points, frame=gammas.PCAFrames())
    assert P.check_model(frames).passed  # exact average over a frame listed by a plain function
    e3 = matrix.Euclidean(D)
    euclidean = gl.euclidean(gl.canonical(gammas.PCACanonicaliser(), o3, points), e3)
    assert P.check_model(P.symmetrise(mlp, e3, euclidean.action, gamma=euclidean)).passed
    assert P.check_model(P.symmetrise(mlp, e3, e3.points(N), gamma=euclidean)).passed  # the natural action is equal
    with pytest.raises(TypeError, match=r"differ in the spec's shape: \(\d+, 3\) vs \(\d+, 3\)"):
        P.symmetrise(mlp, o3, o3.points(N + 1), gamma=gl.from_haar(o3, points))


def test_translation_and_general_linear_gammas_plug_in() -> None:
    gl = pytest.importorskip("markovcat.backends.torch.gammas")
    gammas = pytest.importorskip("markovcat.backends.torch.frames")
    matrix = pytest.importorskip("markovcat.backends.torch.matrix_groups")
    torch.manual_seed(0)
    t3 = matrix.Translation(D)
    centroid = gl.canonical(gammas.Centroid(), t3, t3.points(N))
    assert P.check_model(P.canonicalise(PointMLP(N, D, 16), t3, centroid.action, frame=centroid)).passed
    gl3 = matrix.GeneralLinear(D)
    net = nn.Sequential(nn.Flatten(1), nn.Linear(D * N, D * N), nn.Unflatten(1, (D, N)))
    good, bad = gl.general_linear(gl3, N), gl.general_linear(gl3, N, broken=True)
    assert P.check_model(P.symmetrise(net, gl3, good.action, gamma=good)).passed  # in law: two-sample
    assert not P.check_model(P.symmetrise(net, gl3, bad.action, gamma=bad)).passed


# -- a model carries its own morphism and symmetry ---------------------------------------------------------
def test_every_procedure_sets_morphism_and_symmetry(o3: mct.Orthogonal, mlp: PointMLP) -> None:
    points = o3.points(N)
    s4 = mct.Symmetric(4)
    out = s4.trivial(mct.Spec((1,)))
    models = [P.symmetrise(mlp, o3, points), P.canonicalise(mlp, o3, points), P.frame_average(mlp, o3, points),
              P.probabilistic_symmetrise(mlp, o3, points, samples=2), P.stochastic_symmetrise(mlp, o3, points),
              P.symmetrise_along(Chiral(), o3, points), P.janossy(first_rows, s4, s4.sets(2), out)]
    for model in models:
        assert model.symmetry.group in (o3, s4) and model.symmetry.input.group is model.symmetry.group
        assert model.morphism.dom.ty.atoms and model.morphism.assumptions()  # its evidence, on the model itself
    assert models[-1].symmetry.output is out


def test_morphism_symmetry_and_check_survive_deepcopy(o3: mct.Orthogonal, mlp: PointMLP) -> None:
    model = P.canonicalise(mlp, o3, o3.points(N))
    twin = copy.deepcopy(model)
    assert twin.symmetry is not None and twin.symmetry.group.name == "O(3)"
    assert twin.morphism is not None and twin.morphism.explain() == model.morphism.explain()
    assert P.check_model(twin).passed
    assert torch.allclose(twin(clouds()), model(clouds()), atol=1e-12)


def test_morphism_symmetry_and_check_survive_pickle(o3: mct.Orthogonal, mlp: PointMLP) -> None:
    model = P.canonicalise(mlp, o3, o3.points(N))
    twin = pickle.loads(pickle.dumps(model))
    assert twin.symmetry is not None and P.check_model(twin).passed
    assert twin.morphism is not None and twin.morphism.explain() == model.morphism.explain()


def test_the_public_namespace() -> None:
    import sys

    import markovcat.backends.torch.compile  # noqa: F401  (a submodule named like the function it defines)

    assert mct.compile is sys.modules["markovcat.backends.torch.compile"].compile  # the function, not the module
    assert mct.gammas.Gamma is mct.Gamma and mct.procedures.symmetrise is mct.symmetrise
    assert not hasattr(P, "morphism_of") and not hasattr(P, "_MORPHISMS")
    for name in mct.__all__:
        assert getattr(mct, name) is not None, name


# -- sets with equal rows (zero padding) ---------------------------------------------------------------------
def padded(batch: int = 6, seed: int = 0) -> Tensor:
    x = torch.randn(batch, 5, 2, generator=seeded(seed), dtype=torch.float64)
    x[:, 3:] = 0.0  # two padding rows: every set has two equal rows
    return x


def test_canonicalise_sets_with_equal_rows() -> None:
    """Invariant output: ties are harmless, accepted.  Equivariant output: refused by the deterministic canonical
    gamma, and exactly equivariant in law with the random tie-break."""
    s5 = mct.Symmetric(5)
    torch.manual_seed(0)
    net = PointMLP(5, 2, 16).double()
    pooled = nn.Sequential(PointMLP(5, 2, 16), nn.Flatten(1), nn.Linear(10, 1)).double()
    invariant = P.canonicalise(pooled, s5, s5.sets(2), s5.trivial(mct.Spec((1,))))
    x = padded()
    assert invariant(x).shape == (6, 1)
    assert P.check_model(invariant, inputs=x).passed
    refusing = P.canonicalise(net, s5, s5.sets(2))
    with pytest.raises(ValueError, match="canonical-random-ties"):  # the error says what to use instead
        refusing(x)
    random_ties = P.symmetrise(net, s5, s5.sets(2), gamma="canonical-random-ties")
    assert random_ties(x, generator=seeded(1)).shape == (6, 5, 2)
    report = P.check_model(random_ties, inputs=x)
    assert report.passed, str(report)
    unfixed = P.symmetrise(net, s5, s5.sets(2), gamma="canonical", validate=False)  # the ties broken by position
    assert not P.check_model(unfixed, inputs=x).passed
