"""Training under ``torchrun`` with DistributedDataParallel equals one process with the same global batch and seed."""

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

TINY = dict(task="cov", dim=3, seed=0, steps=20, train_size=80, test_size=20, batch=20, shards=2, train_samples=2,
            test_samples=3, backbone_hidden=(16,), gamma_hidden=(8,))


def _options(config: RunConfig, out: Path, checkpoints: Path) -> list[str]:
    return ["--task", config.task, "--method", config.method, "--dim", str(config.dim), "--seed", str(config.seed),
            "--steps", str(config.steps), "--train-size", str(config.train_size), "--test-size", str(config.test_size),
            "--batch", str(config.batch), "--shards", str(config.shards), "--train-samples", str(config.train_samples),
            "--test-samples", str(config.test_samples), "--backbone-hidden", "16", "--gamma-hidden", "8",
            "--out", str(out), "--checkpoints", str(checkpoints), "--no-progress", "--device", "cpu"]


def _torchrun(config: RunConfig, tmp_path: Path, *extra: str) -> dict[str, Any]:
    torchrun = shutil.which("torchrun", path=str(Path(sys.executable).parent)) or shutil.which("torchrun")
    if torchrun is None:
        pytest.skip("torchrun is not installed next to this python")
    out = tmp_path / "ddp"
    command = [torchrun, "--standalone", "--nproc_per_node=2", "-m", "markovcat.experiments.matrix.train",
               *_options(config, out, tmp_path / "ddp-checkpoints"), *extra]
    env = dict(os.environ, OMP_NUM_THREADS="1")
    result = subprocess.run(command, capture_output=True, text=True, timeout=300, env=env, cwd=tmp_path)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
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
