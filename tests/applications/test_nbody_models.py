"""The N-body contenders: each builds and trains (20 steps), the symmetrised ones pass the checks, the peers agree."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import torch

from markovcat.backends.torch.procedures import frame_average
from markovcat.experiments.nbody import plot as nbody_plot
from markovcat.experiments.nbody.cli import main
from markovcat.experiments.nbody.models import (
    METHODS,
    CloudFrames,
    Model,
    PeerFrameAverage,
    TransformerBackbone,
    available,
    build,
    move,
    random_euclidean,
    symmetry,
)
from markovcat.experiments.nbody.sweep import budget, plan, sweep
from markovcat.experiments.nbody.train import NBodyConfig, checkpoint_path, read_record, record_path, train

#: A run small enough for a test: the benchmark's pipeline with tiny data, network and budget.
TINY = dict(batch=20, eval_every=10, train_size=60, valid_size=20, test_size=20, burn_in=0, horizon=20, width=16,
            layers=1, gamma_hidden=16, test_samples=4)
#: Contenders equivariant by construction: E(3) x S_5.
EQUIVARIANT = ("egnn", "fa-peer", "fa", "canon", "canon-peer", "haar", "recursive")


def tiny(method: str, steps: int = 20, seed: int = 0) -> NBodyConfig:
    return NBodyConfig(method=method, seed=seed, steps=steps, **TINY)  # type: ignore[arg-type]


def runnable(method: str) -> None:
    why = available(method)
    if why is not None:
        pytest.skip(why)


def folders(tmp_path: Path) -> dict[str, Any]:
    return {"out": tmp_path / "records", "checkpoints": tmp_path / "checkpoints", "data_cache": None,
            "progress": False}


pytestmark = pytest.mark.usefixtures("one_thread")  # conftest.py: torch on one thread in each test


def inputs(batch: int = 6, seed: int = 0, dtype: torch.dtype = torch.float64) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(batch, 5, 6, generator=g, dtype=dtype)
    q = torch.randint(0, 2, (batch, 5, 1), generator=g).to(dtype) * 2 - 1
    return torch.cat([x, q], dim=-1)


@pytest.mark.parametrize("method", METHODS)
def test_every_contender_trains_20_steps_and_is_checked(method: str, tmp_path: Path) -> None:
    runnable(method)
    record = train(tiny(method), **folders(tmp_path))
    assert record["metrics"]["test_mse"] > 0 and len(record["curve"]) == 2
    assert record["parameter_count"] > 0 and record["forward_backward_seconds"] > 0
    check = record["equivariance"]
    if method in EQUIVARIANT:
        assert check["E3"]["passed"] and check["S5"]["passed"], check
    if method in ("mlp", "transformer"):
        assert not check["E3"]["passed"], check  # the plain backbone is not E(3)-equivariant ...
    if method == "mlp":
        assert not check["S5"]["passed"], check  # ... and the MLP not permutation-equivariant either
    if method == "transformer":
        assert check["S5"]["passed"], check  # the transformer is (no positional encoding)


def test_the_peer_frame_average_and_mc_frame_average_agree() -> None:
    runnable("fa-peer")
    sym = symmetry()
    torch.manual_seed(0)
    backbone = TransformerBackbone(16, 4, 32, 1).double()
    ours = frame_average(backbone, sym.rotations, sym.system, sym.points, frame=CloudFrames())
    theirs = PeerFrameAverage(backbone)
    x = inputs()
    assert x[..., 3:6].mean(1).abs().min() > 1e-3  # velocities with a non-zero mean: the centres differ
    centre = x[..., :3].mean(-2, keepdim=True)
    centred = torch.cat([x[..., :3] - centre, x[..., 3:]], dim=-1)
    with torch.no_grad():
        a, b = ours(centred) + centre, theirs(x)
        plain = backbone(x)
    assert torch.allclose(a, b, atol=1e-10, rtol=1e-10)
    assert not torch.allclose(a, plain, atol=1e-3)  # and the average is not the backbone itself


def test_built_fa_contenders_agree_at_initialisation() -> None:
    runnable("fa-peer")
    x = inputs(dtype=torch.float32)
    peer, ours = build("fa-peer", seed=3), build("fa", seed=3)
    with torch.no_grad():
        assert torch.allclose(peer.forward(x), ours.forward(x), atol=1e-4, rtol=1e-4)


def test_augmentation_moves_inputs_and_targets_together() -> None:
    x = inputs(4)
    y = torch.randn(4, 5, 3, dtype=torch.float64)
    r, t = random_euclidean(4, torch.Generator().manual_seed(1), torch.float64)
    mx, my = move(r, t, x, y)
    assert torch.allclose(mx[..., 6:], x[..., 6:])  # charges fixed
    assert torch.allclose(mx[..., 3:6] - mx[..., :3], (x[..., 3:6] - x[..., :3] - t[:, None] @ r) @ r.mT)
    assert torch.allclose(my - mx[..., :3], (y - x[..., :3]) @ r.mT)  # displacements rotate, do not translate


def test_stochastic_models_average_draws() -> None:
    model: Model = build("haar", seed=0)
    x = inputs(3, dtype=torch.float32)
    with torch.no_grad():
        one = model.predict(x, 1, torch.Generator().manual_seed(0))
        other = model.predict(x, 1, torch.Generator().manual_seed(1))
        mean = model.predict(x, 8, torch.Generator().manual_seed(0))
    assert not torch.allclose(one, other) and mean.shape == one.shape


def test_a_resumed_run_gives_the_numbers_of_an_uninterrupted_one(tmp_path: Path) -> None:
    config = tiny("recursive", steps=20)
    whole = train(config, **folders(tmp_path / "whole"))

    def stop(step: int) -> None:
        if step == 12:
            raise KeyboardInterrupt

    options = folders(tmp_path / "parts")
    with pytest.raises(KeyboardInterrupt):
        train(config, checkpoint_every=10, on_step=stop, **options)
    assert checkpoint_path(config, options["checkpoints"]).exists()
    resumed = train(config, checkpoint_every=10, **options)
    assert resumed["resumed_from_step"] == 10
    for key in ("metrics", "curve", "parameters", "equivariance"):
        assert resumed[key] == whole[key], key
    assert not checkpoint_path(config, options["checkpoints"]).exists()


def test_sweep_skips_finished_runs_and_plots(tmp_path: Path) -> None:
    configs = plan(["mlp", "canon"], [0], 10, **{k: v for k, v in TINY.items()})
    said: list[str] = []
    options = folders(tmp_path)
    records = sweep(configs, say=said.append, **options)
    assert len(records) == 2 and all(record_path(c, options["out"]).exists() for c in configs)
    text = record_path(configs[0], options["out"]).read_text()
    assert json.loads(text) == records[0] and len(text) < 20_000  # small records, committed
    again: list[str] = []
    sweep(configs, say=again.append, **options)
    assert "0 to run" in again[0]
    written = nbody_plot.plot(options["out"], tmp_path / "figure")
    table = written[-1].read_text()
    assert "| mlp |" in table and "| canon |" in table and all(p.exists() for p in written)
    assert read_record(record_path(configs[0], options["out"]))["config"] == configs[0].as_dict()


def test_configurations_and_the_command_line_refuse_bad_input(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(ValueError, match="unknown method"):
        NBodyConfig(method="gnn", seed=0, steps=1)
    with pytest.raises(ValueError, match="larger than the training set"):
        NBodyConfig(method="mlp", seed=0, steps=1, batch=10, train_size=5)
    with pytest.raises(ValueError, match="unknown method"):
        plan(["gnn"])
    with pytest.raises(SystemExit):
        main(["--steps", "3"])  # neither --method nor --all
    assert "needs --method" in capsys.readouterr().err


def test_budget_solves_for_the_steps() -> None:
    speeds = {"a": 10.0, "b": 5.0}
    steps = budget(speeds, seeds=3, cores=2, minutes=10, overhead_seconds=0)
    assert steps == int(1200 / (3 / 10 + 3 / 5))
    assert budget(speeds, 3, 2, 10, overhead_seconds=1000) == 0
