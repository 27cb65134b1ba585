"""Training under ``torchrun`` with DistributedDataParallel equals one process with the same global batch and seed.

The matrix, N-body and SymDiff runners, through the command lines a user runs
(``torchrun -m markovcat.experiments.{matrix,nbody}.train``, ``-m markovcat.experiments.symdiff.cli``),
against :func:`train` in this process.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import torch

from markovcat.experiments.matrix.train import RunConfig, read_record, record_path, train
from markovcat.experiments.nbody import train as nbody

TINY = dict(task="cov", dim=3, seed=0, steps=20, train_size=80, test_size=20, batch=20, shards=2, train_samples=2,
            test_samples=3, backbone_hidden=(16,), gamma_hidden=(8,))


def _options(config: RunConfig, out: Path, checkpoints: Path) -> list[str]:
    return ["--task", config.task, "--method", config.method, "--dim", str(config.dim), "--seed", str(config.seed),
            "--steps", str(config.steps), "--train-size", str(config.train_size), "--test-size", str(config.test_size),
            "--batch", str(config.batch), "--shards", str(config.shards), "--train-samples", str(config.train_samples),
            "--test-samples", str(config.test_samples), "--backbone-hidden", "16", "--gamma-hidden", "8",
            "--out", str(out), "--checkpoints", str(checkpoints), "--no-progress", "--device", "cpu"]


def _run_torchrun(module: str, options: list[str], cwd: Path) -> None:
    """``torchrun --standalone --nproc_per_node=2 -m module options`` (one thread per process), which must succeed."""
    torchrun = shutil.which("torchrun", path=str(Path(sys.executable).parent)) or shutil.which("torchrun")
    if torchrun is None:
        pytest.skip("torchrun is not installed next to this python")
    command = [torchrun, "--standalone", "--nproc_per_node=2", "-m", module, *options]
    env = dict(os.environ, OMP_NUM_THREADS="1")
    result = subprocess.run(command, capture_output=True, text=True, timeout=300, env=env, cwd=cwd)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]


def _torchrun(config: RunConfig, tmp_path: Path, *extra: str) -> dict[str, Any]:
    out = tmp_path / "ddp"
    _run_torchrun("markovcat.experiments.matrix.train", [*_options(config, out, tmp_path / "ddp-checkpoints"),
                                                         *extra], tmp_path)
    return read_record(record_path(config, out))


def _one_process(config: RunConfig, tmp_path: Path, **options: Any) -> dict[str, Any]:
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        return train(config, out=tmp_path / "one", checkpoints=tmp_path / "one-checkpoints", progress=False, **options)
    finally:
        torch.set_num_threads(threads)


def _assert_same_numbers(ddp: dict[str, Any], one: dict[str, Any], rtol: float) -> None:
    assert ddp["world_size"] == 2 and one["world_size"] == 1
    assert ddp["parameters"]["count"] == one["parameters"]["count"]
    for key in ("sum", "sum_of_squares"):
        assert ddp["parameters"][key] == pytest.approx(one["parameters"][key], rel=rtol, abs=1e-6)
    for key in ("test_rse_mean", "test_rse_std", "train_loss_last"):
        assert ddp["metrics"][key] == pytest.approx(one["metrics"][key], rel=rtol)
    assert ddp["equivariance"]["passed"] == one["equivariance"]["passed"]


def test_two_processes_equal_one_with_the_same_global_batch(tmp_path: Path) -> None:
    """The paper's method (stochastic, learned gamma): 2 gloo processes x 1 shard each = 1 process x 2 shards."""
    config = RunConfig(method="recursive", **TINY)  # type: ignore[arg-type]
    ddp = _torchrun(config, tmp_path)
    one = _one_process(config, tmp_path)
    _assert_same_numbers(ddp, one, rtol=1e-5)
    assert ddp["equivariance"]["passed"]


@pytest.mark.slow
def test_a_compiled_symmetrised_model_trains_inside_ddp(tmp_path: Path) -> None:
    """``--compile``: torch.compile of the DDP-wrapped objective of a Haar-symmetrised model, 2 processes."""
    config = RunConfig(method="haar", **{**TINY, "steps": 6})  # type: ignore[arg-type]
    ddp = _torchrun(config, tmp_path, "--compile")
    one = _one_process(config, tmp_path)
    _assert_same_numbers(ddp, one, rtol=1e-4)
    assert ddp["equivariance"]["passed"]


#: A tiny N-body run that the command line can express (the model keeps its default sizes).
NBODY = dict(seed=0, steps=6, eval_every=3, train_size=60, valid_size=20, test_size=20, batch=20, test_samples=4,
             shards=2)


def _nbody_options(config: nbody.NBodyConfig, out: Path, checkpoints: Path) -> list[str]:
    return ["--method", config.method, "--seed", str(config.seed), "--steps", str(config.steps), "--eval-every",
            str(config.eval_every), "--train-size", str(config.train_size), "--valid-size", str(config.valid_size),
            "--test-size", str(config.test_size), "--batch", str(config.batch), "--test-samples",
            str(config.test_samples), "--shards", str(config.shards), "--out", str(out), "--checkpoints",
            str(checkpoints), "--no-progress", "--device", "cpu"]


@pytest.mark.slow  # the shared sharding runs under DDP in the matrix test above;
# tests/applications/test_nbody_runner.py checks N-body's gradient average over simulated ranks in-process
def test_nbody_two_processes_equal_one_with_the_same_batch(tmp_path: Path) -> None:
    """A stochastic symmetrised contender (``recursive``): 2 gloo processes x 1 shard = 1 process x 2 shards.

    Same parameters (fingerprint), validation curve, test metrics and equivariance verdicts; only
    rank 0 wrote (one record, and it says ``world_size`` 2).  The two runs share the data: the
    torchrun run simulates the splits into ``tmp_path``'s cache, the one-process run reads them.
    """
    config = nbody.NBodyConfig(method="recursive", **NBODY)  # type: ignore[arg-type]
    out = tmp_path / "ddp"
    _run_torchrun("markovcat.experiments.nbody.train", _nbody_options(config, out, tmp_path / "ddp-checkpoints"),
                  tmp_path)
    assert [p.name for p in out.iterdir()] == [f"{config.name}.json"]
    ddp = nbody.read_record(nbody.record_path(config, out))
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        one = nbody.train(config, out=tmp_path / "one", checkpoints=tmp_path / "one-checkpoints", progress=False,
                          data_cache=tmp_path / nbody.CACHE)
    finally:
        torch.set_num_threads(threads)
    assert ddp["world_size"] == 2 and one["world_size"] == 1 and ddp["config"] == one["config"]
    assert ddp["parameters"]["count"] == one["parameters"]["count"]
    for key in ("sum", "sum_of_squares"):
        assert ddp["parameters"][key] == pytest.approx(one["parameters"][key], rel=1e-5)
    assert [s for s, _ in ddp["curve"]] == [s for s, _ in one["curve"]] == [3, 6]
    assert [v for _, v in ddp["curve"]] == pytest.approx([v for _, v in one["curve"]], rel=1e-5)
    for key in ("test_mse", "test_mse_std", "valid_mse", "valid_mse_one_draw"):
        assert ddp["metrics"][key] == pytest.approx(one["metrics"][key], rel=1e-5)
    assert ddp["metrics"]["best_step"] == one["metrics"]["best_step"]
    assert ddp["equivariance"]["E3"]["passed"] and ddp["equivariance"]["S5"]["passed"]
    assert one["equivariance"]["E3"]["passed"] and one["equivariance"]["S5"]["passed"]


@pytest.mark.slow  # about 30 s on a quiet 2-core machine: three processes each load torch, QM9 and the DiT
def test_symdiff_two_processes_equal_one_with_the_same_batch(tmp_path: Path) -> None:
    """SymDiff (the recursive gamma's draws per shard): 2 gloo processes x 1 shard = 1 process x 2 shards.

    The ``cpu-small`` model for 4 steps of 8 molecules, through the command line under torchrun:
    same validation curve (bound and loss), test bound and equivariance verdict; one record, from
    rank 0, saying ``world_size`` 2.  Needs the QM9 cache (the optional ``qm9pack``).
    """
    import importlib.util

    from markovcat.experiments.symdiff import train as symdiff
    from markovcat.experiments.symdiff.data import CACHE

    if importlib.util.find_spec("qm9pack") is None and not (CACHE / "qm9.pt").exists():
        pytest.skip("QM9 needs the optional package qm9pack (or a built cache)")
    sizes = dict(steps=4, batch=8, train_size=64, valid_size=8, test_size=8, samples=0, eval_every=2, shards=2)
    config = symdiff.config_named("cpu-small", "symdiff", 0, **sizes)
    out = tmp_path / "ddp"
    options = ["--model", "symdiff", "--config", "cpu-small", "--device", "cpu", "--no-progress", "--out", str(out),
               "--checkpoints", str(tmp_path / "ddp-checkpoints"), "--data", str(CACHE / "qm9.pt")]
    for key, value in sizes.items():
        options += [f"--{key.replace('_', '-')}", str(value)]
    _run_torchrun("markovcat.experiments.symdiff.cli", options, tmp_path)
    assert [p.name for p in out.glob("*.json")] == [f"{config.name}.json"]
    ddp = symdiff.read_record(symdiff.record_path(config, out))
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        one = symdiff.train(config, out=tmp_path / "one", checkpoints=tmp_path / "one-checkpoints", progress=False)
    finally:
        torch.set_num_threads(threads)
    assert ddp["world_size"] == 2 and one["world_size"] == 1 and ddp["config"] == one["config"]
    assert ddp["config"]["shards"] == 2
    assert [row[0] for row in ddp["curve"]] == [row[0] for row in one["curve"]] == [2, 4]
    for row_ddp, row_one in zip(ddp["curve"], one["curve"], strict=True):
        assert row_ddp[1:] == pytest.approx(row_one[1:], rel=1e-5)
    for key in ("valid_nll", "test_nll", "best_step"):
        assert ddp["metrics"][key] == pytest.approx(one["metrics"][key], rel=1e-5)
    assert ddp["equivariance"]["O3"]["passed"] and one["equivariance"]["O3"]["passed"]
