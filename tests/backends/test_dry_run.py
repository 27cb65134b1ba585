"""The dry run: a real run on two random examples for models up to ``REAL_DRY_RUN_ENTRIES``, meta tensors above.

Either way it runs a copy, leaves the caller's random streams alone, names the box whose wire
is wrong, and building a model never loads torch's meta-tensor machinery (``torch._dynamo``,
``sympy``: about a second on first use) unless the model is large.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest
import torch
from torch import nn

from markovcat import Box, Ty
from markovcat.backends import torch as mct
from markovcat.backends.torch import checks

X, Y = Ty("X"), Ty("Y")


class _Devices(nn.Module):
    """A layer recording the device type of every input it sees, and drawing dropout noise."""

    def __init__(self, n: int = 3) -> None:
        super().__init__()
        self.layer = nn.Linear(n, n)
        self.dropout = nn.Dropout(0.5)
        self.seen: list[str] = []

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.seen.append(x.device.type)
        return self.dropout(self.layer(x))


def _one_box(net: nn.Module | object, dom: Ty = X, cod: Ty = X, specs: dict[Ty, mct.Spec] | None = None
             ) -> mct.CompiledDiagram:
    box = Box("net", dom, cod, deterministic=True)
    return mct.compile(box, mct.Interpretation({box: net}, specs or {X: mct.Spec((3,))}))


def _seen(model: mct.CompiledDiagram) -> list[str]:
    return [seen for module in model.modules() if isinstance(module, _Devices) for seen in module.seen]


def test_a_small_model_runs_for_real_on_a_copy_and_leaves_the_random_streams_alone() -> None:
    net = _Devices()
    torch.manual_seed(1)
    state = torch.get_rng_state()
    model = _one_box(net)
    assert torch.equal(torch.get_rng_state(), state)  # the copy's dropout drew inside fork_rng
    assert net.seen == []  # the user's module never ran
    assert model(torch.randn(2, 3)).shape == (2, 3) and net.seen == ["cpu"]


def test_a_large_model_runs_on_meta_tensors(monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[str] = []
    monkeypatch.setattr(checks, "REAL_DRY_RUN_ENTRIES", 0)
    original = checks._copy

    def spy(model: mct.CompiledDiagram, tensor: object) -> mct.CompiledDiagram:
        copied = original(model, tensor)  # type: ignore[arg-type]
        seen.append(copied._ref.device.type)  # type: ignore[union-attr]
        return copied

    monkeypatch.setattr(checks, "_copy", spy)
    _one_box(_Devices())
    assert seen == ["meta"]
    monkeypatch.setattr(checks, "REAL_DRY_RUN_ENTRIES", 10**9)
    _one_box(_Devices())
    assert seen == ["meta", "cpu"]


@pytest.mark.parametrize("entries", [0, 10**9], ids=["meta", "real"])
def test_a_wrong_wire_is_named_by_either_run(monkeypatch: pytest.MonkeyPatch, entries: int) -> None:
    monkeypatch.setattr(checks, "REAL_DRY_RUN_ENTRIES", entries)
    with pytest.raises(mct.InterpretationError, match=r"box 'net' returned per-example shape \(4,\) but its type X"):
        _one_box(nn.Linear(3, 4))


def test_a_box_that_fails_only_on_the_random_values_is_left_to_the_meta_run() -> None:
    def cholesky(x: torch.Tensor) -> torch.Tensor:  # random 3 x 3 Gaussian matrices are not positive definite
        return torch.linalg.cholesky(x)

    model = _one_box(cholesky, specs={X: mct.Spec((3, 3))})  # shapes proved on meta tensors
    spd = torch.eye(3).expand(2, 3, 3) * 2
    assert torch.allclose(model(spd), torch.eye(3).expand(2, 3, 3) * 2**0.5)


def test_a_box_that_fails_on_both_runs_is_reported_by_the_real_run_where_meta_cannot_run_it() -> None:
    def reads_a_value(x: torch.Tensor) -> torch.Tensor:
        if x.sum().item() > -1e30:
            raise ValueError("refused this value")
        return x

    with pytest.raises(mct.InterpretationError, match="box 'net' failed .*refused this value"):
        _one_box(reads_a_value)


def test_building_the_readmes_model_loads_no_meta_tensor_machinery() -> None:
    script = textwrap.dedent("""
        import sys
        import torch
        import markovcat as mc
        from markovcat.backends import torch as mct
        net = torch.nn.Sequential(torch.nn.Flatten(1), torch.nn.Linear(48, 64), torch.nn.SiLU(),
                                  torch.nn.Linear(64, 48), torch.nn.Unflatten(1, (16, 3)))
        O3 = mct.Orthogonal(3)
        model = mc.symmetrise(net, group=O3, input=O3.points(16), gamma="recursive")
        print(sorted(name for name in ("torch._dynamo", "sympy") if name in sys.modules))
    """)
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300, check=True)
    assert out.stdout.strip() == "[]", out.stdout + out.stderr
