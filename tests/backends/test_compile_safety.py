"""Compiling is safe: it never touches the user's modules, never runs box names as code, follows the
parameters' dtype, validates inputs by default (also under ``torch.compile``), frees its generated
source, and a compiled model keeps its C^G morphism through copies and pickles."""

from __future__ import annotations

import copy
import gc
import io
import linecache
import pickle
import re
import threading
import traceback
from collections.abc import Iterator
from typing import Any

import pytest
import torch
from torch import nn

from markovcat import Box, Ty
from markovcat.backends import torch as mct
from markovcat.backends.torch.compile import GroupActions
from markovcat.groups import Action, Group
from markovcat.gspace import GSpace
from markovcat.symmetrisation import haar_gamma, sym

X = Ty("X")
N = 7
# slow tests run only when selected with -m slow
slow_only = pytest.mark.skipif("'slow' not in (config.getoption('markexpr') or '')", reason="slow: run with -m slow")


def seeded(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def haar_model(net: nn.Module, **options: Any) -> tuple[mct.CompiledDiagram, Any, Any]:
    """``x |-> R . net(R^-1 . x)`` with ``R ~ Haar(O(3))`` on clouds of N points, ``net`` applied per point."""
    G = Group("O3")
    rot = Action("rot", G, X)
    group = mct.Orthogonal(3)
    points = group.points(N)
    space = GSpace(X, rot)
    k = Box("net", X, X, deterministic=True)
    morphism = sym(k, haar_gamma(space), space)
    interpretation = group.interpretation(G, (rot, points)) | mct.Interpretation(
        {k: net, f"lambda_{G.name}": group.haar_sampler()})
    symmetry = GroupActions(group, points, points)
    return mct.compile(morphism, interpretation, symmetry=symmetry, **options), group, points


@pytest.fixture
def default_float64() -> Iterator[None]:
    before = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    try:
        yield
    finally:
        torch.set_default_dtype(before)


# -- item 4: compiling never mutates the user's modules ----------------------------------------------


def test_concurrent_compiles_leave_a_shared_module_alone() -> None:
    layer = nn.Linear(3, 3)
    weight, bias = layer.weight.detach().clone(), layer.bias.detach().clone()
    errors: list[BaseException] = []
    start = threading.Barrier(8)

    def work() -> None:
        try:
            start.wait()
            for _ in range(2):
                haar_model(layer)
        except BaseException as error:  # noqa: BLE001 - reported below
            errors.append(error)

    threads = [threading.Thread(target=work) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert layer.weight.device.type == "cpu" and layer.bias.device.type == "cpu"
    assert torch.equal(layer.weight, weight) and torch.equal(layer.bias, bias)
    assert isinstance(layer.weight, nn.Parameter) and layer.weight.requires_grad


def test_concurrent_symmetrise_leaves_a_shared_network_alone() -> None:
    import markovcat as mc

    group = mct.Orthogonal(3)
    layer = nn.Linear(3, 3)
    weight = layer.weight.detach().clone()
    errors: list[BaseException] = []

    def work() -> None:
        try:
            for _ in range(2):
                mc.symmetrise(layer, group, group.points(N))
        except BaseException as error:  # noqa: BLE001 - reported below
            errors.append(error)

    threads = [threading.Thread(target=work) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == [] and layer.weight.device.type == "cpu" and torch.equal(layer.weight, weight)


class _Watch(nn.Module):
    """A layer that records the device of its own weight every time it runs."""

    def __init__(self) -> None:
        super().__init__()
        self.layer = nn.Linear(3, 3)
        self.seen: list[str] = []

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.seen.append(self.layer.weight.device.type)
        return self.layer(x)


def test_the_dry_run_never_swaps_the_users_parameters_even_transiently() -> None:
    watch = _Watch()
    parameters = [id(p) for p in watch.parameters()]
    haar_model(watch)
    assert watch.seen == []  # the dry run ran a copy; the user's module was never called
    assert [id(p) for p in watch.parameters()] == parameters
    bn = nn.BatchNorm1d(N)  # train mode: a real run would update its running statistics
    mean = bn.running_mean.clone()
    model, _, _ = haar_model(bn)
    assert torch.equal(bn.running_mean, mean) and int(bn.num_batches_tracked) == 0
    model(torch.randn(4, N, 3))  # the model itself still trains the user's module
    assert int(bn.num_batches_tracked) == 1


# -- item 5: box names never reach the generated code ------------------------------------------------

HOSTILE = [
    'f\n    print("INJECTED"); w1 = x0 * 0',
    "g\r\n    raise SystemExit",
    "quote ' \" '''",
    "line\u2028separator = 0",
    "para\u2029graph",
    "# comment",
    "back\\slash",
    "\x00nul",
    "self",
    "torch",
    "x0",
    "ﬁ",  # NFKC-normalises to "fi": as an identifier it would be the next box's function
    "fi",
]


def test_hostile_box_names_are_never_executed(capsys: pytest.CaptureFixture[str]) -> None:
    boxes = [Box(name, X, X, deterministic=True) for name in HOSTILE]
    diagram = boxes[0]
    for box in boxes[1:]:
        diagram = diagram >> box
    meanings = {box: (lambda x, i=i: x * 2 + i) for i, box in enumerate(boxes)}  # order-sensitive
    model = mct.compile(diagram, mct.Interpretation(meanings, {X: mct.Spec((2,))}))
    x = torch.randn(3, 2, dtype=torch.float64)
    expected = x
    for i in range(len(boxes)):
        expected = expected * 2 + i
    assert torch.equal(model(x), expected)
    assert "INJECTED" not in capsys.readouterr().out
    code = model.code
    assert code.isascii() and code.splitlines() == code.split("\n")[:-1]  # no line break but "\n"
    lines = code.splitlines()
    assert len(lines) == 1 + 1 + len(HOSTILE) + 1  # def, the input check, one line per box, return
    for line in lines[2:-1]:  # only compiler-made identifiers before the comment
        assert re.fullmatch(r"    w\d+ = f_[A-Za-z0-9_]+\((x0|w\d+)\)  # .*", line), line
    assert list(model.boxes) == HOSTILE  # the names, in the order of the lines that call them


def test_box_names_that_collide_as_identifiers_call_their_own_functions() -> None:
    a, b, c = (Box(name, X, X, deterministic=True) for name in ("a-b", "a_b", "a b"))
    model = mct.compile(a >> b >> c, mct.Interpretation(
        {a: lambda x: x + 1, b: lambda x: x * 10, c: lambda x: x - 3}, {X: mct.Spec((1,))}))
    assert torch.equal(model(torch.zeros(1, 1)), torch.tensor([[7.0]]))


# -- item 6: the dry run follows the parameters' dtype ------------------------------------------------


def test_a_float64_network_compiles_with_a_float32_default() -> None:
    assert torch.get_default_dtype() == torch.float32
    model, _, _ = haar_model(nn.Linear(3, 3).double())
    x = torch.randn(2, N, 3, dtype=torch.float64)
    out = model(x, generator=seeded())
    assert out.dtype == torch.float64 and out.shape == (2, N, 3)


def test_a_float32_network_compiles_with_a_float64_default(default_float64: None) -> None:
    model, _, _ = haar_model(nn.Linear(3, 3, dtype=torch.float32))
    out = model(torch.randn(2, N, 3, dtype=torch.float32), generator=seeded())
    assert out.dtype == torch.float32


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_draws_without_inputs_follow_the_parameters_dtype(dtype: torch.dtype) -> None:
    E = Ty("E")
    noise, net = Box("noise", Ty(), E), Box("net", E, E, deterministic=True)
    before = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64 if dtype == torch.float32 else torch.float32)  # the other one
    try:
        model = mct.compile(noise >> net, mct.Interpretation({noise: mct.Gaussian((3,)), net: nn.Linear(3, 3,
                                                                                                       dtype=dtype)},
                                                             {E: mct.Spec((3,))}))
    finally:
        torch.set_default_dtype(before)
    out = model(batch_size=5, generator=seeded())
    assert out.shape == (5, 3) and out.dtype == dtype


def test_a_parameter_free_model_follows_its_input_dtype() -> None:
    model, _, _ = haar_model(nn.Identity())
    assert model(torch.randn(2, N, 3, dtype=torch.float64)).dtype == torch.float64
    assert model(torch.randn(2, N, 3)).dtype == torch.float32


# -- item 7: inputs are validated by default -----------------------------------------------------------


@pytest.fixture(scope="module")
def validated() -> mct.CompiledDiagram:
    return haar_model(nn.Linear(3, 3))[0]


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), -float("inf")])
def test_non_finite_input_is_refused_naming_the_input_and_the_box(validated: mct.CompiledDiagram,
                                                                  bad: float) -> None:
    x = torch.randn(2, N, 3)
    x[1, 3, 2] = bad
    with pytest.raises(ValueError, match=r"input 0 \(type X, read by box 'rot\(O3.inv\)'\) contains NaN or inf"):
        validated(x)


def test_an_unbatched_input_is_refused(validated: mct.CompiledDiagram) -> None:
    with pytest.raises(ValueError, match=r"input 0 \(type X.*\) has shape \(7, 3\); expected \(batch, 7, 3\).*"
                                         r"unsqueeze\(0\)"):
        validated(torch.randn(N, 3))
    with pytest.raises(ValueError, match=r"per-example shape \(6, 3\), expected \(7, 3\)"):
        validated(torch.randn(2, N - 1, 3))


def test_a_dtype_other_than_the_models_is_refused(validated: mct.CompiledDiagram) -> None:
    with pytest.raises(ValueError, match=r"dtype torch.float64, but the model's parameters are torch.float32.*"
                                         r"model.to\(torch.float64\)"):
        validated(torch.randn(2, N, 3, dtype=torch.float64))
    double, _, _ = haar_model(nn.Linear(3, 3).double())
    with pytest.raises(ValueError, match="dtype torch.float32, but the model's parameters are torch.float64"):
        double(torch.randn(2, N, 3))
    with pytest.raises(ValueError, match="dtype torch.int64"):
        validated(torch.zeros(2, N, 3, dtype=torch.long))
    converted = copy.deepcopy(validated).double()  # the expected dtype follows model.to(dtype)
    assert converted(torch.randn(2, N, 3, dtype=torch.float64)).dtype == torch.float64


def test_input_count_kind_and_batch_sizes_are_checked() -> None:
    Y = Ty("Y")
    add = Box("add", X @ Y, X, deterministic=True)
    model = mct.compile(add, mct.Interpretation({add: torch.add}, {X: mct.Spec((2,)), Y: mct.Spec((2,))}))
    assert torch.equal(model(torch.ones(3, 2), torch.ones(3, 2)), torch.full((3, 2), 2.0))
    with pytest.raises(TypeError, match=r"missing 1 required positional argument: 'x1'"):
        model(torch.ones(3, 2))
    with pytest.raises(TypeError, match=r"takes 2 inputs.*got 1"):
        model.check_inputs(torch.ones(3, 2))
    with pytest.raises(TypeError, match=r"input 1 \(type Y, read by box 'add'\) is list, not a tensor"):
        model(torch.ones(3, 2), [[1.0, 2.0]])
    with pytest.raises(ValueError, match=r"different batch sizes: input 0 has 3, input 1 has 4"):
        model(torch.ones(3, 2), torch.ones(4, 2))  # broadcasting would silently give (4, 2) otherwise


def test_validation_can_be_switched_off_for_the_bare_fast_path() -> None:
    bare, _, _ = haar_model(nn.Linear(3, 3), validate=False)
    assert not bare.validate
    nan = torch.full((2, N, 3), float("nan"))
    assert bare(nan).isnan().all()  # the caller's responsibility now
    model, _, _ = haar_model(nn.Linear(3, 3))
    assert model.validate
    model.validate = False
    assert model(nan).isnan().all()
    model.validate = True
    with pytest.raises(ValueError, match="NaN"):
        model(nan)


def test_the_device_side_finiteness_assertion_names_the_input() -> None:
    # the form used off the CPU and under torch.compile: torch._assert_async, never a Python bool of a tensor
    # (on the CPU it raises at once; that it does not synchronise a CUDA device is not tested here)
    from markovcat.backends.torch.validation import assert_finite as _assert_finite

    x = torch.randn(2, N, 3)
    _assert_finite(x, "input 0")
    x[0, 0, 0] = float("nan")
    with pytest.raises(RuntimeError, match="input 0 contains NaN or inf"):
        _assert_finite(x, "input 0 contains NaN or inf")


# -- item 8: validation under torch.compile(fullgraph=True) ------------------------------------------


@pytest.mark.slow
@slow_only
def test_validation_works_under_torch_compile_fullgraph() -> None:
    # (the default suite covers this in test_backend_torch.py::test_torch_compile_captures_one_graph)
    torch._dynamo.reset()
    model, _, _ = haar_model(nn.Linear(3, 3))
    assert model.validate
    fast = torch.compile(model, backend="eager", fullgraph=True)
    x = torch.randn(4, N, 3)
    torch.manual_seed(1)
    expected = model(x)
    torch.manual_seed(1)
    assert torch.allclose(fast(x), expected)  # (a torch.Generator argument would break the graph)
    nan = x.clone()
    nan[0, 0, 0] = float("nan")
    with pytest.raises(RuntimeError, match=r"input 0 \(type X, read by box 'rot\(O3.inv\)'\) contains NaN or inf"):
        fast(nan)
    torch._dynamo.reset()


@pytest.mark.slow
@slow_only
def test_validation_under_torch_compile_refuses_malformed_input() -> None:
    torch._dynamo.reset()
    model, _, _ = haar_model(nn.Linear(3, 3))
    fast = torch.compile(model, backend="eager", fullgraph=True)
    fast(torch.randn(4, N, 3))
    with pytest.raises(Exception, match=r"has shape \(7, 3\); expected \(batch, 7, 3\)"):
        fast(torch.randn(N, 3))
    with pytest.raises(Exception, match=r"per-example shape \(\w+, \w+\), expected \(7, 3\)"):  # maybe symbolic
        fast(torch.randn(4, 5, 3))
    torch._dynamo.reset()


# -- the generated source is freed with its class ----------------------------------------------------


def _compiled_entries() -> int:
    return sum(1 for name in linecache.cache if name.startswith("<markovcat-compiled"))


def test_generated_source_is_freed_with_the_model() -> None:
    boom = Box("boom", X, X, deterministic=True)

    def fails(x: torch.Tensor) -> torch.Tensor:
        raise ArithmeticError("boom")

    model = mct.compile(boom, mct.Interpretation({boom: fails}, {X: mct.Spec((2,))}), check=False)
    with pytest.raises(ArithmeticError) as info:
        model(torch.ones(1, 2))
    rendered = "".join(traceback.format_exception(info.value))
    assert "w1 = f_" in rendered  # the generated line is shown while the model lives
    del model, info
    gc.collect()
    before = _compiled_entries()
    for i in range(50):  # a different source each time
        box = Box(f"box{i}", X, X, deterministic=True)
        copy.deepcopy(mct.compile(box, mct.Interpretation({box: torch.sin}, {X: mct.Spec((2,))})))
    gc.collect()
    assert _compiled_entries() <= before


# -- a compiled model keeps its morphism, symmetry and diagram ----------------------------------------


def _round_trips(model: mct.CompiledDiagram) -> list[mct.CompiledDiagram]:
    buffer = io.BytesIO()
    torch.save(model, buffer)
    buffer.seek(0)
    return [copy.deepcopy(model), pickle.loads(pickle.dumps(model)), torch.load(buffer, weights_only=False)]


def test_the_diagram_and_symmetry_survive_copies_and_pickles() -> None:
    model, group, points = haar_model(nn.Linear(3, 3))
    x = torch.randn(3, N, 3)
    for clone in _round_trips(model):
        assert clone.diagram == model.diagram
        assert isinstance(clone.symmetry, GroupActions) and clone.symmetry.group.name == group.name
        assert clone.symmetry.input.name == points.name
        assert torch.equal(clone(x, generator=seeded(2)), model(x, generator=seeded(2)))
        assert clone.validate and clone.boxes == model.boxes


def test_the_morphism_survives_copies_and_pickles() -> None:
    model, _, _ = haar_model(nn.Linear(3, 3))
    assert model.morphism is not None
    for clone in _round_trips(model):
        assert clone.morphism is not None
        assert clone.morphism.diagram == model.morphism.diagram and clone.morphism.group == model.morphism.group
