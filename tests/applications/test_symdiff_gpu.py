"""The GPU preparation of SymDiff, checked on the CPU: devices, precision and compilation, pace, budget, the script.

A device mismatch is caught by :func:`~markovcat.experiments.symdiff.devicecheck.simulated_device`
(a second device simulated on the CPU); the run's whole path (training, the bound, the test bound,
sampling, the checks) runs on it and gives the CPU's numbers.  The runs here use the ``smoke``
configuration (T = 10, a 1-block DiT of width 16): they prove the code paths work together, nothing
about what the ``gpu-10min`` budget reaches on a GPU.
"""

from __future__ import annotations

import copy
import importlib.util
import json
import os
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import pytest
import torch

from markovcat.experiments.symdiff import diffusion
from markovcat.experiments.symdiff.data import CACHE
from markovcat.experiments.symdiff.devicecheck import DeviceMismatch, OnDevice, simulated_device
from markovcat.experiments.symdiff.models import build
from markovcat.experiments.symdiff.pace import Lockstep
from markovcat.experiments.symdiff.train import config_named, read_record, record_path, train

pytestmark = pytest.mark.usefixtures("one_thread")  # conftest.py: torch on one thread in each test
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def qm9() -> Any:
    if importlib.util.find_spec("qm9pack") is None and not (CACHE / "qm9.pt").exists():
        pytest.skip("QM9 needs the optional package qm9pack (or a built cache)")
    pytest.importorskip("rdkit")
    from markovcat.experiments.symdiff.data import load

    return load()


def folders(tmp_path: Path, dataset: Any) -> dict[str, Any]:
    return {"out": tmp_path / "records", "checkpoints": tmp_path / "checkpoints", "progress": False,
            "dataset": dataset}


# -- devices ---------------------------------------------------------------------------------------------------------
def test_the_simulated_device_refuses_what_a_gpu_refuses() -> None:
    """Mixed operands, a generator of the other device and CPU tensors indexed by device indices raise;
    CPU scalars, CPU indices into device tensors and moves between the devices do not."""
    with simulated_device() as device:
        x = torch.randn(4, 3).to(device)
        assert isinstance(x, OnDevice) and x.device == device
        assert float((x * torch.tensor(2.0)).sum()) == pytest.approx(2 * float(x.sum()))  # a CPU scalar is fine
        assert x[torch.tensor([0, 2])].shape == (2, 3)  # CPU indices into a device tensor are fine
        assert type(x.cpu() + torch.ones(4, 3)) is torch.Tensor
        with pytest.raises(DeviceMismatch, match="mixes"):
            x + torch.ones(4, 3)
        with pytest.raises(DeviceMismatch, match="indexed"):
            torch.ones(5)[torch.tensor([1]).to(device)]
        on_device = torch.Generator(device=device).manual_seed(1)
        assert torch.randn(2, generator=on_device, device=device).device == device
        with pytest.raises(DeviceMismatch, match="generator"):
            torch.randn(2, generator=torch.Generator().manual_seed(2), device=device)
        with pytest.raises(DeviceMismatch, match="generator"):
            torch.randn(2, generator=on_device)  # a device generator drawing on the CPU
    assert torch.Generator is torch._C.Generator  # restored


def test_the_bound_terms_stay_on_the_device_of_their_inputs() -> None:
    """Every term of the bound, given device tensors (the step tensor on the CPU or on the device), gives the
    CPU's values on the device: the schedule's CPU table is moved, never mixed."""
    schedule = diffusion.NoiseSchedule(steps=20)
    g = torch.Generator().manual_seed(0)
    mask = torch.arange(5)[None] < torch.tensor([[3], [5]])
    xh = diffusion.project(torch.randn(2, 5, 9, generator=g), mask)
    eps, eps_hat = diffusion.project(torch.randn(2, 5, 9, generator=g), mask), torch.randn(2, 5, 9, generator=g)
    t = torch.tensor([3, 17])
    types = torch.where(mask, torch.tensor([0, 1, 2, 3, 4]), -1)
    charges = torch.tensor([1.0, 6, 7, 8, 9]).expand(2, 5) * mask
    histogram = torch.tensor([0, 0, 0, 4, 1, 3])
    atoms = mask.sum(1)

    def terms(xh: Any, eps: Any, eps_hat: Any, t: Any, mask: Any, types: Any, charges: Any, atoms: Any) -> list[Any]:
        return [diffusion.diffusion_term(eps, eps_hat, t, mask, schedule), diffusion.prior_kl(xh, mask, schedule),
                diffusion.l0_positions(eps, eps_hat, mask, schedule),
                diffusion.l0_features(xh, types, charges, mask, schedule),
                diffusion.num_atoms_log_prob(atoms, histogram),
                diffusion.epsilon_loss(eps, eps_hat, t, mask, schedule, "vlb"),
                diffusion.q_sample(xh, t, mask, schedule, noise=eps)[0],
                diffusion.reverse_mean_std(xh, eps_hat, t, mask, schedule)[0]]

    expected = terms(xh, eps, eps_hat, t, mask, types, charges, atoms)
    with simulated_device() as device:
        for step in (t, t.to(device)):
            moved = [v.to(device) for v in (xh, eps, eps_hat)]
            got = terms(*moved, step, *(v.to(device) for v in (mask, types, charges, atoms)))
            for value, reference in zip(got, expected, strict=True):
                assert value.device == device
                torch.testing.assert_close(value.cpu(), reference)
        with pytest.raises(DeviceMismatch):  # what the terms did before: a CPU weight times a device norm
            diffusion.training_weight(t, schedule, "vlb") * eps.to(device).sum(dim=(1, 2))


@pytest.mark.parametrize("method", ["symdiff", "dit-aug"])
def test_the_whole_run_on_a_simulated_device_gives_the_cpu_numbers(method: str, qm9: Any, tmp_path: Path) -> None:
    """A run (training, EMA, validation and test bounds, sampling, the checks) on the simulated device: no
    operation a GPU would refuse, and the record's numbers are the CPU run's (SymDiff: the gamma and the
    symmetrisation; DiT-Aug: the augmentation)."""
    config = config_named("smoke", method, steps=2, eval_every=2, precision="fp32")
    cpu = train(config, **folders(tmp_path / "cpu", qm9))
    with simulated_device() as device:
        simulated = train(config, device=device, **folders(tmp_path / "device", qm9))
    # equal to rounding: under the check, fused CPU kernels (attention) run as their decompositions
    invariance = simulated["metrics"].pop("sample_invariance"), cpu["metrics"].pop("sample_invariance")
    assert simulated["metrics"] == pytest.approx(cpu["metrics"], rel=1e-9)
    assert invariance[0] == pytest.approx(invariance[1], rel=1e-9)
    assert [row[0] for row in simulated["curve"]] == [row[0] for row in cpu["curve"]] == [2]
    assert simulated["curve"][0][1:] == pytest.approx(cpu["curve"][0][1:], rel=1e-6)
    verdicts = {k: v["passed"] for k, v in simulated["equivariance"].items() if isinstance(v, dict)}
    assert verdicts == {k: v["passed"] for k, v in cpu["equivariance"].items() if isinstance(v, dict)}
    assert verdicts == {"O3": True, "O3_two_sample": True} or method != "symdiff"


# -- precision, compilation, EMA, the time limit ---------------------------------------------------------------------
def test_bf16_and_compilation_change_the_trunks_only() -> None:
    """bf16 autocast runs the trunks and returns float32; the compiled trunk (dynamo, eager backend) gives the
    eager numbers; a copy is eager; the float64 copy for the checks has no autocast; bad names are refused."""
    from markovcat.experiments.symdiff.models import _Trunk, accelerate, as_double

    config = config_named("smoke", "symdiff")
    model = build("symdiff", config.model_config(), 0)
    g = torch.Generator().manual_seed(0)
    with torch.no_grad():  # away from adaLN-Zero's initialisation, whose output is exactly zero
        for parameter in model.module.parameters():
            parameter.add_(0.2 * torch.randn(parameter.shape, generator=g))
    mask = torch.arange(29)[None] < torch.tensor([[5], [9]])
    z, time = diffusion.project(torch.randn(2, 29, 9, generator=g), mask), torch.tensor([0.3, 0.8])
    full = model(z, time, mask, torch.Generator().manual_seed(1))
    accelerate(model.module, "bf16")
    trunks = [m for m in model.module.modules() if isinstance(m, _Trunk)]
    assert len(trunks) == 2 and all(m.autocast is torch.bfloat16 for m in trunks)  # the DiT's and the gamma's
    half = model(z, time, mask, torch.Generator().manual_seed(1))
    assert half.dtype == torch.float32 and not torch.equal(half, full)
    torch.testing.assert_close(half, full, atol=0.05, rtol=0.05)
    accelerate(model.module, "bf16", "eager")
    assert all(m.compiled is not None for m in trunks)
    assert torch.equal(model(z, time, mask, torch.Generator().manual_seed(1)), half)
    copied = copy.deepcopy(model.module)
    assert all(m.compiled is None and m.autocast is torch.bfloat16 for m in copied.modules() if isinstance(m, _Trunk))
    double = as_double(model)
    assert all(m.compiled is None and m.autocast is None for m in double.module.modules() if isinstance(m, _Trunk))
    with pytest.raises(ValueError, match="precision"):
        accelerate(model.module, "fp8")
    with pytest.raises(ValueError, match="compile backend"):
        accelerate(model.module, "fp32", "tensorrt")
    with pytest.raises(ValueError, match="precision"):
        config_named("smoke", "dit", precision="fp16")


def test_the_fused_ema_update_is_the_per_tensor_update() -> None:
    from markovcat.experiments.symdiff.train import _ema_update

    module = torch.nn.Linear(3, 2)
    ema = {k: v.detach().clone() + 1 for k, v in module.state_dict().items()}
    expected = {k: (ema[k].clone().mul_(0.9).add_(v, alpha=0.1)) for k, v in module.state_dict().items()}
    _ema_update(ema, module, 0.9)
    assert all(torch.equal(ema[k], expected[k]) for k in ema)


def test_a_run_stopped_by_its_time_limit_is_the_run_of_that_many_steps(qm9: Any, tmp_path: Path) -> None:
    config = config_named("smoke", "dit-aug", samples=0)
    stopped = train(config, time_limit=0.0, **folders(tmp_path / "limit", qm9))
    assert stopped["stopped_at_step"] == 1 and [row[0] for row in stopped["curve"]] == [1]
    short = train(config_named("smoke", "dit-aug", samples=0, steps=1), **folders(tmp_path / "short", qm9))
    assert short["stopped_at_step"] is None
    assert short["metrics"] == stopped["metrics"] and short["curve"] == stopped["curve"]


# -- pace ------------------------------------------------------------------------------------------------------------
def test_lockstep_keeps_runs_at_the_same_step_and_stops_them_together(tmp_path: Path) -> None:
    """A fast and a slow run (in threads): both stop at the same step, one past the furthest step either had
    reached when the slow one's time limit passed (the fast one is never more than one step ahead)."""
    import time

    group = Lockstep(tmp_path, ("fast", "slow"))
    seen: dict[str, list[int]] = {"fast": [], "slow": []}
    stops: dict[str, int] = {}

    def run(name: str, pause: float, late_after: int) -> None:
        pace = group.for_run(name)
        with pace.running():
            for step in range(1, 1000):
                time.sleep(pause)
                seen[name].append(step)
                if pace.after(step, step >= late_after):
                    stops[name] = step
                    return

    threads = [threading.Thread(target=run, args=("fast", 0.0, 10**6)), threading.Thread(target=run,
                                                                                        args=("slow", 0.01, 8))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert stops["fast"] == stops["slow"] in (9, 10)  # one past the furthest step when the slow one ran late
    assert all(len(seen[name]) == stops[name] for name in seen)
    with pytest.raises(ValueError, match="not among"):
        group.for_run("other")
    with pytest.raises(ValueError, match="for_run"):
        group.start()


# -- the budget ------------------------------------------------------------------------------------------------------
def test_the_flop_count_and_the_estimate() -> None:
    """Backward costs about twice the forward; the count grows with the batch; the estimate's step count is the
    smaller of its two bounds."""
    from markovcat.experiments.symdiff.budget import Throughput, count_flops, estimate, measure_cpu_step

    config = config_named("smoke", "symdiff")
    small, large = count_flops(config, batch=4), count_flops(config, batch=8)
    assert 2.5 < small["train_step"] / small["forward"] < 3.5
    assert large["forward"] == pytest.approx(2 * small["forward"], rel=0.01)
    step_flops = small["train_step"] * config.batch / 4
    gpu = Throughput("test", peak=step_flops * 100, fraction=0.5, step_floor=0.001)  # 50 steps/s by FLOPs, 2 shared
    plan = estimate(config, small, seconds=10.0, gpu=gpu, side_by_side=2)
    assert plan["steps (FLOP-bound)"] == 250 and plan["steps (step-floor bound)"] == 10_000 and plan["steps"] == 250
    assert plan["bound"] == "FLOPs" and plan["molecules seen"] == 250 * config.batch
    assert plan["sampling FLOP"] == pytest.approx(config.samples * 11 * small["forward_per_molecule"])
    assert measure_cpu_step(config, 4, steps=1) > 0


# -- the chemistry filled in later -----------------------------------------------------------------------------------
def test_chemistry_from_the_xyz_file_completes_a_record_sampled_without_rdkit(qm9: Any, tmp_path: Path,
                                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    from markovcat.experiments.symdiff import chemistry
    from markovcat.experiments.symdiff.cli import _summary

    config = config_named("smoke", "dit", steps=1)
    with_rdkit = train(config, **folders(tmp_path / "with", qm9))
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "rdkit" else real(name, *a))
    pending = train(config, **folders(tmp_path / "without", qm9))
    monkeypatch.undo()
    assert pending["metrics"]["sample_validity"] is None and "pending" in pending["metrics"]["sample_chemistry"]
    assert "valid pending of 4" in _summary(pending)  # the sweep's line for such a run
    path = record_path(config, tmp_path / "without" / "records")
    completed = chemistry.complete(path)
    assert completed["metrics"] == with_rdkit["metrics"] and read_record(path) == completed
    tampered = json.loads(path.read_text())
    tampered["metrics"].update(sample_chemistry="pending", sample_atom_stability=50.0)
    path.write_text(json.dumps(tampered))
    with pytest.raises(ValueError, match="not this record's samples"):
        chemistry.complete(path)


# -- the script ------------------------------------------------------------------------------------------------------
def test_the_gpu_script_dry_run(qm9: Any, tmp_path: Path) -> None:
    """``DRY_RUN=1 experiments/symdiff/gpu.sh``: the script's commands on the CPU with the smoke configuration:
    both contenders side by side, in lockstep, stopped together by the time limit, records and samples in one
    folder."""
    folder = tmp_path / "out"
    env = {**os.environ, "DRY_RUN": "1", "TIME_LIMIT": "0", "PYTHON": sys.executable, "BUDGET": "300"}
    done = subprocess.run(["bash", str(ROOT / "experiments/symdiff/gpu.sh"), str(folder)], env=env, cwd=ROOT,
                          capture_output=True, text=True, timeout=280)
    log = (folder / "gpu.log").read_text() if (folder / "gpu.log").exists() else ""
    assert done.returncode == 0, done.stdout + done.stderr + log
    records = [json.loads(p.read_text()) for p in sorted(folder.glob("symdiff_*.json"))]
    assert [r["config"]["method"] for r in records] == ["dit-aug", "symdiff"]
    assert [r["stopped_at_step"] for r in records] == [2, 2] and all(r["config"]["precision"] == "bf16"
                                                                       for r in records)
    assert all((folder / f"{r['name']}.xyz").exists() for r in records) and "done (status 0)" in log
