"""Compiling diagrams to nn.Modules: semantics, parameters, serialisation, checks before compiling."""

from __future__ import annotations

import copy
import io
import pickle

import pytest
import torch
from torch import nn

from markovcat import Box, Copy, Discard, Id, Swap, Ty, program
from markovcat.backends import torch as mct
from markovcat.experiments import examples as ex
from markovcat.groups import Action, Group

X, Y = Ty("X"), Ty("Y")
# slow tests run only when selected with -m slow
slow_only = pytest.mark.skipif("'slow' not in (config.getoption('markexpr') or '')", reason="slow: run with -m slow")


def seeded(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


@pytest.fixture(scope="module")
def haar() -> ex.Setup:
    return ex.haar_sym(n=16, d=3, hidden=32)


def test_forward_is_straight_line_and_reproducible(haar: ex.Setup) -> None:
    model, x = haar.model, torch.randn(5, 16, 3)
    code = model.code
    assert "for " not in code and "if " not in code
    # def, the input check, one line per box occurrence (inv and the action on x fused into one), return
    assert len(code.splitlines()) == 1 + 1 + len(haar.diagram) - 1 + 1
    assert code.splitlines()[1] == "    self._validate_inputs(x0)  # unless model.validate is False"
    first, again = model(x, generator=seeded(1)), model(x, generator=seeded(1))
    assert torch.equal(first, again)
    assert not torch.equal(first, model(x, generator=seeded(2)))
    assert torch.equal(model.trace(x, generator=seeded(1)).output, first)


def test_semantics_match_the_hand_written_model(haar: ex.Setup) -> None:
    x = torch.randn(4, 16, 3, dtype=torch.float64)
    model = copy.deepcopy(haar.model).double()
    mlp = model.b_mlp
    r = mct.haar_orthogonal(4, 3, seeded(7), torch.float64)
    expected = mlp(x @ r) @ r.transpose(-1, -2)  # R . k(R^-1 . x) with rows rotated by x -> x R^T
    assert torch.allclose(model(x, generator=seeded(7)), expected, atol=1e-12)


def test_a_box_used_twice_shares_its_parameters() -> None:
    k = Box("k", X, X, deterministic=True)
    layer = nn.Linear(3, 3)
    model = mct.compile(k >> k, mct.Interpretation({k: layer}, {X: mct.Spec((3,))}))
    assert len(list(model.parameters())) == 2 and list(model.state_dict()) == ["b_k.weight", "b_k.bias"]
    x = torch.randn(2, 3)
    assert torch.allclose(model(x), layer(layer(x)))
    model(x).sum().backward()
    assert layer.weight.grad is not None and layer.weight.grad.abs().sum() > 0


def test_state_dict_round_trip_and_autograd() -> None:
    a, b = ex.canonical_sym(hidden=16, seed=0).model, ex.canonical_sym(hidden=16, seed=1).model
    x = torch.randn(3, 16, 3)
    assert not torch.allclose(a(x), b(x))
    buffer = io.BytesIO()
    torch.save(a.state_dict(), buffer)
    buffer.seek(0)
    b.load_state_dict(torch.load(buffer))
    assert torch.equal(a(x), b(x))
    x.requires_grad_(True)
    b(x).square().sum().backward()
    assert x.grad is not None and all(p.grad is not None for p in b.parameters())


def test_to_dtype_moves_parameters_and_draws(haar: ex.Setup) -> None:
    model = copy.deepcopy(haar.model).to(torch.float64)
    out = model(torch.randn(2, 16, 3, dtype=torch.float64), generator=seeded())
    assert out.dtype == torch.float64 and model._ref.dtype == torch.float64


def test_pickle_and_deepcopy_reproduce_the_model(haar: ex.Setup) -> None:
    x = torch.randn(3, 16, 3)
    expected = haar.model(x, generator=seeded(4))
    for clone in (pickle.loads(pickle.dumps(haar.model)), copy.deepcopy(haar.model)):
        assert torch.equal(clone(x, generator=seeded(4)), expected)
        assert clone.code == haar.model.code


def test_torch_compile_captures_one_graph() -> None:
    torch._dynamo.reset()
    det = ex.canonical_sym(hidden=16, validate=False).model
    x = torch.randn(4, 16, 3)
    assert det.validate  # the input checks are traced too
    compiled = torch.compile(det, backend="eager", fullgraph=True)  # fullgraph: any graph break raises
    assert torch.allclose(compiled(x), det(x))
    x[1, 2, 0] = float("nan")
    with pytest.raises(RuntimeError, match=r"input 0 \(type X, read by box 'frame'\) contains NaN or inf"):
        compiled(x)  # traced as an assertion on the device: no graph break, no host synchronisation
    x = torch.randn(4, 16, 3)
    stochastic = ex.haar_sym(hidden=16).model
    fast = torch.compile(stochastic, backend="eager", fullgraph=True)
    for batch in (4, 7, 9):  # a second batch size makes it recompile with a dynamic batch dimension
        x = torch.randn(batch, 16, 3)
        torch.manual_seed(0)
        expected = stochastic(x)
        torch.manual_seed(0)
        assert torch.allclose(fast(x), expected)


@pytest.mark.slow
@slow_only
def test_torch_compile_inductor_forward_backward() -> None:
    torch._dynamo.reset()
    model = ex.canonical_sym(hidden=16, validate=False).model
    x = torch.randn(4, 16, 3, requires_grad=True)
    compiled = torch.compile(model, fullgraph=True)
    out = compiled(x)
    out.sum().backward()
    assert torch.allclose(out, model(x), atol=1e-5)


def test_samples_fold_into_the_batch(haar: ex.Setup) -> None:
    folded = mct.compile(haar.diagram, haar.interpretation, samples=6)
    averaged = mct.compile(haar.diagram, haar.interpretation, samples=6, reduce="mean")
    x = torch.randn(2, 16, 3)
    out = folded(x, generator=seeded(3))
    assert out.shape == (2, 6, 16, 3)
    looped = folded.trace(x.repeat_interleave(6, 0), generator=seeded(3)).output.view(2, 6, 16, 3)
    assert torch.equal(out, looped)
    assert not torch.equal(out[:, 0], out[:, 1])  # independent draws
    assert torch.allclose(averaged(x, generator=seeded(3)), out.mean(1))


def test_ave_boxes_compile_to_monte_carlo_means(haar: ex.Setup) -> None:
    from markovcat.gspace import GSpace
    from markovcat.symmetrisation import ave, haar_gamma, sym

    G, act = Group("O3"), None
    act = Action("rot", G, X)
    space = GSpace(X, act, linear=True)
    k = Box("mlp", X, X, deterministic=True)
    box = ave(sym(k, haar_gamma(space), space), name="ave_sym_test")
    model = mct.compile(box.diagram, haar.interpretation, ave_samples=8)
    direct = mct.compile(haar.diagram, haar.interpretation, samples=8, reduce="mean")
    x = torch.randn(3, 16, 3)
    assert torch.equal(model(x, generator=seeded(5)), direct(x, generator=seeded(5)))


def test_discarded_boxes_are_not_run_and_outputs_are_tuples() -> None:
    f = Box("f", X, X, deterministic=True)
    dead = Box("dead", X, Y)
    calls: list[str] = []

    def never(x: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        calls.append("dead")
        return x

    d = Copy(X) >> (f @ (dead >> Discard(Y))) >> Copy(X)
    model = mct.compile(d, mct.Interpretation({f: torch.sin, dead: never}, {X: mct.Spec((2,)), Y: mct.Spec((2,))}))
    a, b = model(torch.ones(1, 2))
    assert torch.equal(a, b) and calls == [] and "dead" not in model.code


def test_a_diagram_without_inputs_takes_a_batch_size() -> None:
    G = Group("C4")
    group = mct.Cyclic(4)
    model = mct.compile(G.unit, group.interpretation(G))
    assert torch.equal(model(batch_size=3), torch.zeros(3, dtype=torch.long))


def test_missing_and_wrongly_shaped_boxes_are_named() -> None:
    k = Box("k", X, Y, deterministic=True)
    types = {X: mct.Spec((3,)), Y: mct.Spec((4,))}
    with pytest.raises(mct.InterpretationError, match="no meaning for box 'k'"):
        mct.compile(Id(X) >> k, mct.Interpretation({}, types))
    wrong_shape = r"box 'k' returned per-example shape \(5,\).*Y is specified as \(4\)"
    with pytest.raises(mct.InterpretationError, match=wrong_shape):
        mct.compile(k, mct.Interpretation({k: nn.Linear(3, 5)}, types))
    with pytest.raises(mct.InterpretationError, match=r"box 'k' failed on inputs of shapes \(2, 3\)"):
        mct.compile(k, mct.Interpretation({k: nn.Linear(7, 4)}, types))
    with pytest.raises(mct.InterpretationError, match="type 'X' is an input of the diagram but has no concrete Spec"):
        mct.compile(k, {k: nn.Linear(3, 4)})


def test_unspecified_types_must_be_consistent() -> None:
    f, g = Box("f", X, Y, deterministic=True), Box("g", X, Y, deterministic=True)

    @program(X, Y @ Y)
    def both(x):  # type: ignore[no-untyped-def]
        return f(x), g(x)

    inconsistent = r"box 'g' returned per-example shape \(2,\) for type Y, but the box 'f'"
    with pytest.raises(mct.InterpretationError, match=inconsistent):
        mct.compile(both, mct.Interpretation({f: nn.Linear(3, 5), g: nn.Linear(3, 2)}, {X: mct.Spec((3,))}))


def test_stochastic_boxes_need_samplers_and_states_need_like() -> None:
    k = Box("k", X, X)
    with pytest.raises(mct.InterpretationError, match="box 'k' is stochastic.*generator"):
        mct.compile(k, mct.Interpretation({k: torch.sin}, {X: mct.Spec((2,))}))
    s = Box("s", Ty(), X, deterministic=True)
    with pytest.raises(mct.InterpretationError, match="box 's' has no inputs.*like"):
        mct.compile(s, {s: lambda: torch.zeros(1, 2)})


def test_broken_group_interpretations_name_the_axiom() -> None:
    G, P = Group("O3"), Ty("P")
    rot = Action("rot", G, P)
    group = mct.Orthogonal(3)
    good = group.interpretation(G, (rot, group.points(4)))
    d = (Copy(G.ty) @ Id(P)) >> (Id(G.ty) @ rot.act) >> rot.act
    mct.compile(d, good)
    with pytest.raises(mct.InterpretationError, match="fails its axiom 'left inverse'"):
        mct.compile(G.inv >> G.inv, good.override({G.inv: lambda a: a}))
    right_action = good.override({rot.act: lambda g, x: x @ g})  # a right action: g.(h.x) = (hg).x
    with pytest.raises(mct.InterpretationError, match="Action\\('rot'.*fails its axiom 'compatibility'"):
        mct.compile(d, right_action)


def test_trace_names_the_first_box_producing_nan() -> None:
    f, g = Box("f", X, X, deterministic=True), Box("g", X, X, deterministic=True)
    model = mct.compile(f >> g, mct.Interpretation({f: torch.log, g: torch.exp}, {X: mct.Spec((2,))}))
    with pytest.raises(FloatingPointError, match="box 'f' produced NaN"):
        model.trace(torch.tensor([[-1.0, 1.0]]), check_finite=True)
    with pytest.raises(FloatingPointError, match="input 0"):
        model.trace(torch.tensor([[float("nan"), 1.0]]), check_finite=True)


def test_check_inputs_names_the_problem(haar: ex.Setup) -> None:
    model = haar.model
    model.check_inputs(torch.randn(2, 16, 3))
    with pytest.raises(ValueError, match=r"input 0 \(type X, read by box 'rot\(O3.inv\)'\) has per-example shape "
                                         r"\(15, 3\), expected \(16, 3\)"):
        model.check_inputs(torch.randn(2, 15, 3))
    with pytest.raises(ValueError, match="contains NaN"):
        model.check_inputs(torch.full((2, 16, 3), float("nan")))
    with pytest.raises(TypeError, match="takes 1 inputs"):
        model.check_inputs()


def test_declared_fusions_are_used_and_checked(haar: ex.Setup) -> None:
    assert "f_rot_O3_inv(w1, x0)  # 'rot(O3.inv)'" in haar.model.code  # act(inv(g), x) as one call: x @ g
    plain = mct.compile(haar.diagram, haar.interpretation, fuse=False)
    assert "O3.inv" in plain.code and "rot(O3.inv)" not in plain.code
    x = torch.randn(3, 16, 3)
    assert torch.allclose(plain(x, generator=seeded(2)), haar.model(x, generator=seeded(2)), atol=1e-6)
    wrong = mct.Interpretation(fusions={("O3.inv", "rot"): lambda g, x: x @ g.transpose(-1, -2)})
    with pytest.raises(mct.InterpretationError, match="fusion of 'rot' after 'O3.inv' does not compute"):
        mct.compile(haar.diagram, haar.interpretation | wrong)


def test_structural_diagrams_and_boxes_with_several_outputs() -> None:
    spec = mct.Interpretation({}, {X: mct.Spec((2,)), Y: mct.Spec((2,))})
    x, y = torch.randn(3, 2), torch.randn(3, 2)
    assert torch.equal(mct.compile(Id(X), spec)(x), x)
    a, b = mct.compile(Copy(X), spec)(x)
    assert a is x and b is x
    assert mct.compile(Discard(X), spec)(x) == ()
    swapped = mct.compile(Swap(X, Y), spec)(x, y)
    assert swapped[0] is y and swapped[1] is x
    split = Box("split", X, X @ Y, deterministic=True)
    model = mct.compile(split >> Swap(X, Y), spec.override({split: lambda v: (v + 1, v - 1)}))
    first, second = model(x)
    assert torch.equal(first, x - 1) and torch.equal(second, x + 1)
    folded = mct.compile(Copy(X), spec, samples=4)(x)
    assert folded[0].shape == (3, 4, 2) and torch.equal(folded[0][:, 2], x)


def test_a_cg_morphism_compiles_with_its_axioms_checked(haar: ex.Setup) -> None:
    from markovcat.gspace import GSpace
    from markovcat.symmetrisation import haar_gamma, sym

    G = Group("O3")
    rot = Action("rot", G, X)
    space = GSpace(X, rot)
    morphism = sym(Box("mlp", X, X, deterministic=True), haar_gamma(space), space)
    bare = mct.Interpretation(haar.interpretation.boxes, haar.interpretation.types)  # no laws declared
    model = mct.compile(morphism, bare)
    x = torch.randn(2, 16, 3)
    assert torch.equal(model(x, generator=seeded(1)), haar.model(x, generator=seeded(1)))
    mct.compile(morphism.diagram, bare.override({G.inv: lambda a: a}))  # a plain diagram: nothing to check
    with pytest.raises(mct.InterpretationError, match="Group\\('O3'\\) fails its axiom 'left inverse'"):
        mct.compile(morphism, bare.override({G.inv: lambda a: a}))
