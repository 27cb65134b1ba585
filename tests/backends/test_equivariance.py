"""check_equivariance: passes correct symmetrisations, catches each deliberately broken one."""

from __future__ import annotations

import pytest
import torch

from markovcat.backends import torch as mct
from markovcat.backends.torch.equivariance import EquivarianceReport, check_equivariance, energy_test
from markovcat.experiments import examples as ex

slow_only = pytest.mark.skipif("'slow' not in (config.getoption('markexpr') or '')", reason="slow: run with -m slow")


def check(setup: ex.Setup, **options) -> EquivarianceReport:  # type: ignore[no-untyped-def]
    return check_equivariance(setup.model, setup.group, setup.action, **options)


@pytest.fixture(scope="module")
def models() -> dict[str, ex.Setup]:
    return {
        "haar": ex.haar_sym(hidden=32),
        "haar inverse output": ex.haar_sym(hidden=32, broken="inverse output"),
        "recursive": ex.recursive_sym(hidden=32),
        "recursive wrong side": ex.recursive_sym(hidden=32, broken="wrong side"),
        "canonical": ex.canonical_sym(hidden=32),
        "canonical inverse output": ex.canonical_sym(hidden=32, broken="inverse output"),
        "plain": ex.plain(hidden=32),
    }


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("name", ["haar", "recursive", "canonical"])
def test_correct_symmetrisations_pass_within_tolerance(models, name: str, dtype: torch.dtype) -> None:  # type: ignore[no-untyped-def]
    setup = models[name]
    setup.model.to(dtype)
    try:
        report = check(setup, n_inputs=16)
    finally:
        setup.model.float()
    assert report.passed, str(report)
    assert report.method == ("deterministic" if name == "canonical" else "pathwise")
    assert report.statistic <= (1e-10 if dtype == torch.float64 else 1e-5)
    assert report.threshold == (1e-10 if dtype == torch.float64 else 1e-5)


@pytest.mark.parametrize(
    ("name", "method"),
    [
        ("plain", "deterministic"),
        ("canonical inverse output", "deterministic"),
        ("haar inverse output", "pathwise"),
        ("recursive wrong side", "pathwise"),
    ],
)
def test_broken_models_are_caught(models, name: str, method: str) -> None:  # type: ignore[no-untyped-def]
    report = check(models[name])
    assert not report.passed and report.method == method
    assert report.statistic > 0.1  # not a rounding-level miss
    assert report.worst is not None and report.worst.error == pytest.approx(report.statistic)
    if method == "pathwise":  # a pathwise failure also tests the law, and that fails too
        assert report.secondary is not None and report.secondary.method == "two-sample"
        assert not report.secondary.passed and report.secondary.p_value is not None


@pytest.mark.parametrize(("name", "equivariant"), [("haar", True), ("recursive", True),
                                                  ("recursive wrong side", False), ("haar inverse output", False)])
def test_two_sample_test_decides_in_law(models, name: str, equivariant: bool) -> None:  # type: ignore[no-untyped-def]
    report = check(models[name], method="two-sample", seed=3)
    assert report.method == "two-sample" and report.passed is equivariant, str(report)
    assert report.p_value is not None and (report.p_value >= 0.01) is equivariant


def test_models_without_couplings_are_tested_in_law(models) -> None:  # type: ignore[no-untyped-def]
    setup = models["haar"]
    uncoupled = mct.compile(setup.diagram, setup.interpretation.override({"lambda_O3": _uncoupled_haar(setup)}))
    report = check_equivariance(uncoupled, setup.group, setup.action)
    assert report.passed and report.method == "two-sample"
    with pytest.raises(ValueError, match="missing: lambda_O3"):
        check_equivariance(uncoupled, setup.group, setup.action, method="pathwise")


def _uncoupled_haar(setup: ex.Setup):  # type: ignore[no-untyped-def]
    group = setup.group

    def draw(*inputs: torch.Tensor, generator=None, like=None) -> torch.Tensor:  # type: ignore[no-untyped-def]
        return group.sample(like.shape[0], generator, like.dtype, like.device)

    return draw


def test_stochastic_callables_that_are_not_compiled(models) -> None:  # type: ignore[no-untyped-def]
    o3 = mct.Orthogonal(3)
    points = o3.points(6)

    def noisy_scale(x: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        return x * (1 + torch.rand(x.shape[0], 1, 1, generator=generator, dtype=x.dtype))

    def noisy_shift(x: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        return x + torch.rand(x.shape[0], 1, 3, generator=generator, dtype=x.dtype)  # translation breaks O(3)

    assert check_equivariance(noisy_scale, o3, points, stochastic=True).passed
    assert not check_equivariance(noisy_shift, o3, points, stochastic=True).passed


def test_report_prints_verdict_statistic_and_counterexample(models) -> None:  # type: ignore[no-untyped-def]
    text = str(check(models["plain"]))
    assert text.startswith("Equivariance check FAILED (deterministic)")
    assert "max relative error" in text and "worst counterexample" in text and "k(g.x) =" in text
    good = str(check(models["haar"]))
    assert good.startswith("Equivariance check PASSED (pathwise)") and "LeftTranslation" in good


def test_bad_inputs_are_refused(models) -> None:  # type: ignore[no-untyped-def]
    setup = models["canonical"]
    with pytest.raises(ValueError, match="given inputs contains NaN"):
        check(setup, inputs=torch.full((2, 16, 3), float("nan")))
    with pytest.raises(ValueError, match="method 'pathwise' is for stochastic models"):
        check(setup, method="pathwise")
    with pytest.raises(ValueError, match="more permutations"):
        check(models["haar"], method="two-sample", permutations=100)
    nan_model = lambda x: x * float("nan")  # noqa: E731
    with pytest.raises(ValueError, match="model's output .* contains NaN"):
        check_equivariance(nan_model, setup.group, setup.action)


def test_energy_test_separates_laws() -> None:
    g = torch.Generator().manual_seed(0)
    a, b = torch.randn(300, 4, generator=g), torch.randn(300, 4, generator=g)
    stat_same, p_same = energy_test(a, b, 999, g)
    stat_diff, p_diff = energy_test(a, b + 0.5, 999, g)
    assert p_same > 0.01 and p_diff == pytest.approx(1 / 1000) and stat_diff > stat_same


@pytest.mark.slow
@slow_only
def test_false_alarm_rate_and_power() -> None:
    """The measurements quoted in the README: false alarms on equivariant models, power on broken ones.

    Defaults of the two-sample test (4 pairs, 200 samples each, 1000 permutations), 100 seeds per model.
    """
    runs = 100
    cases = [("haar", ex.haar_sym, {}), ("recursive", ex.recursive_sym, {}),
             ("recursive wrong side", ex.recursive_sym, {"broken": "wrong side"}),
             ("haar inverse output", ex.haar_sym, {"broken": "inverse output"})]
    rates = {}
    for name, build, kw in cases:
        setup = build(hidden=32, **kw)
        p_values = [check(setup, method="two-sample", seed=seed).p_value for seed in range(runs)]
        rates[name] = {alpha: sum(p < alpha for p in p_values) / runs for alpha in (0.01, 0.05)}  # type: ignore[operator]
    print(rates)
    for name in ("haar", "recursive"):  # nominal rates 0.01 and 0.05 (at most: Bonferroni); allow 3 standard errors
        assert rates[name][0.01] <= 0.04 and rates[name][0.05] <= 0.12
    for name in ("recursive wrong side", "haar inverse output"):
        assert rates[name][0.01] >= 0.9


def _sym_program(frame_box, act_x, act_y, group_boxes, k):  # type: ignore[no-untyped-def]
    from markovcat.program import program

    X, Y = act_x.space, act_y.space

    @program(X, Y)
    def symmetrised(x):  # type: ignore[no-untyped-def]
        g = frame_box(x)
        return act_y.act(g, k(act_x.act(group_boxes.inv(g), x)))

    return symmetrised


def test_s_n_canonicalisation_by_sorting_is_exactly_equivariant() -> None:
    from markovcat import Box, Ty
    from markovcat.groups import Action, Group

    G, X = Group("S5"), Ty("X")
    act = Action("permute", G, X)
    s5 = mct.Symmetric(5)
    rows = s5.sets(2)
    k = Box("set_mlp", X, X, deterministic=True)
    frame = Box("sort", X, G.ty, deterministic=True)
    mlp = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(10, 16), torch.nn.Tanh(), torch.nn.Linear(16, 10),
                              torch.nn.Unflatten(1, (5, 2)))
    interpretation = s5.interpretation(G, (act, rows)) | mct.Interpretation(
        {k: mlp, frame: mct.SortCanonicaliser(torch.tensor([1.0, 0.5]))})
    model = mct.compile(_sym_program(frame, act, act, G, k), interpretation).double()
    report = check_equivariance(model, s5, rows, n_inputs=32)
    assert report.passed and report.statistic == 0.0  # permutations move numbers, they do not round them
    plain = check_equivariance(mct.compile(k, interpretation).double(), s5, rows, n_inputs=32)
    assert not plain.passed and plain.statistic > 0.1


def test_c4_symmetrisation_of_a_cnn_on_images() -> None:
    from markovcat import Box, Ty
    from markovcat.groups import Action, Group

    G, X = Group("C4"), Ty("Image")
    act = Action("turn", G, X)
    c4 = mct.Cyclic(4)
    images = c4.images(1, 6)
    k = Box("cnn", X, X, deterministic=True)
    uniform = Box("uniform", X, G.ty)  # the Haar measure of a finite group, ignoring x
    cnn = torch.nn.Sequential(torch.nn.Conv2d(1, 4, 3, padding=1), torch.nn.ReLU(), torch.nn.Conv2d(4, 1, (3, 1),
                                                                                                     padding=(1, 0)))
    interpretation = c4.interpretation(G, (act, images)) | mct.Interpretation({k: cnn, uniform: c4.haar_sampler()})
    model = mct.compile(_sym_program(uniform, act, act, G, k), interpretation)
    report = check_equivariance(model, c4, images)
    assert report.passed and report.method == "pathwise" and report.statistic == 0.0
    assert not check_equivariance(mct.compile(k, interpretation), c4, images).passed  # (3, 1) kernels: not C4


def _cubic(x: torch.Tensor) -> torch.Tensor:
    return x * (x**2).sum(-1, keepdim=True)  # O(3)-equivariant per point


class _PointLinear(torch.nn.Module):
    """A linear map on the point axis (mixes points, not coordinates): O(3)-equivariant."""

    def __init__(self, n: int) -> None:
        super().__init__()
        self.linear = torch.nn.Linear(n, n, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.linear(x.transpose(-1, -2)).transpose(-1, -2)


def _sym_of_equivariant(k) -> tuple[mct.CompiledDiagram, ex.Setup]:  # type: ignore[no-untyped-def]
    setup = ex.haar_sym(hidden=8)
    return mct.compile(setup.diagram, setup.interpretation.override({"mlp": k})), setup


@pytest.mark.parametrize(("k", "dtype", "seeds"), [(_cubic, torch.float32, (0, 1, 2)), (_cubic, torch.float64, (1, 2)),
                                                  (_PointLinear(16), torch.float32, (0, 1))])
def test_outputs_equal_up_to_rounding_are_not_rejected(k, dtype: torch.dtype, seeds: tuple[int, ...]) -> None:  # type: ignore[no-untyped-def]
    """sym of an equivariant map is deterministic up to rounding: the energy test must not see the rounding."""
    model, setup = _sym_of_equivariant(k)
    for seed in seeds:
        report = check_equivariance(model, setup.group, setup.action, method="two-sample", seed=seed, dtype=dtype)
        assert report.passed and report.p_value is not None and report.p_value >= 0.5, str(report)


class _InverseAction:
    """The output acted on by g^-1: a wrong output action, for checking that the rounding floor hides nothing."""

    def __init__(self, action: mct.TorchAction) -> None:
        self.action, self.name = action, f"inverse {action.name}"

    def act(self, g: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        return self.action.act(g.transpose(-1, -2), x)


def test_outputs_equal_up_to_rounding_are_still_caught_when_broken() -> None:
    model, setup = _sym_of_equivariant(_cubic)
    report = check_equivariance(model, setup.group, setup.action, _InverseAction(setup.action), method="two-sample")
    assert not report.passed and report.p_value is not None and report.p_value < 0.01, str(report)
    offset = 1e-3 * torch.ones(16, 3)  # a fixed translation of relative size 1e-3: not O(3)-equivariant

    def shifted(x: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        return model(x, generator=generator) + offset.to(x.dtype)

    report = check_equivariance(shifted, setup.group, setup.action, stochastic=True)
    assert not report.passed and report.p_value is not None and report.p_value < 0.01, str(report)


def test_energy_test_has_a_rounding_floor() -> None:
    g = torch.Generator().manual_seed(0)
    x = torch.randn(1, 48, generator=g, dtype=torch.float64).repeat(100, 1)
    noise = 1e-13 * torch.randn(200, 48, generator=g, dtype=torch.float64)
    a, b = x + noise[:100], x + noise[100:] + 1e-12  # equal up to rounding (float64), offset by 10x the noise
    _, p = energy_test(a, b, 999, g)
    assert p == 1.0
    _, p_exact = energy_test(a, b, 999, g, floor=0.0)  # without the floor the rounding difference is "significant"
    assert p_exact < 0.01
    _, p_far = energy_test(a, b + 1e-3, 999, g)  # a difference above the floor is still seen
    assert p_far == pytest.approx(1 / 1000)


def test_str_report_keeps_the_users_print_options(models) -> None:  # type: ignore[no-untyped-def]
    saved = dict(vars(torch._tensor_str.PRINT_OPTS))
    try:
        torch.set_printoptions(precision=7, threshold=5, edgeitems=1, linewidth=50, sci_mode=True)
        mine = dict(vars(torch._tensor_str.PRINT_OPTS))
        text = str(check(models["plain"]))
        assert "k(g.x) =" in text
        assert dict(vars(torch._tensor_str.PRINT_OPTS)) == mine
    finally:
        torch.set_printoptions(**saved)


def test_a_report_summarises_itself_as_json_values() -> None:
    """The summary the experiment records keep: the verdict, its statistic and what the check could detect."""
    import json

    O3 = mct.Orthogonal(3)
    norms = mct.compile(*_norm_model(O3))
    report = check_equivariance(norms, O3, O3.points(5), O3.trivial(mct.Spec((5,))), dtype=torch.float64)
    summary = report.summary()
    assert json.loads(json.dumps(summary)) == summary
    assert set(summary) == {"method", "statistic", "threshold", "passed", "p_value", "min_detectable_effect",
                            "effect_unit"}
    assert summary["passed"] is True and summary["method"] == "deterministic" and summary["p_value"] is None
    assert summary["statistic"] == report.statistic and summary["min_detectable_effect"] == report.min_detectable_effect


def _norm_model(group: mct.Orthogonal) -> tuple[object, mct.Interpretation]:
    from markovcat import Box, Ty

    X, N = Ty("X"), Ty("N")
    norm = Box("norm", X, N, deterministic=True)
    return norm, mct.Interpretation({norm: lambda x: x.norm(dim=-1)}, {X: mct.Spec((5, 3)), N: mct.Spec((5,))})
