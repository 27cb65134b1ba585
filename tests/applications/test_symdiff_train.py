"""The SymDiff runner: every contender trains a few steps, samples and writes a record; runs resume; the CLI runs.

These read the QM9 cache (``experiments/data/qm9/qm9.pt``, built from the optional ``qm9pack``)
and skip without it.  Sizes are tiny (a 1-block DiT of width 16, T = 10): they prove the
pipeline runs and records what it should, nothing about what a real budget reaches.
"""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path
from typing import Any

import pytest
import torch

from markovcat.experiments.symdiff.data import CACHE
from markovcat.experiments.symdiff.models import METHODS
from markovcat.experiments.symdiff.train import (
    CONFIGS,
    SymDiffConfig,
    checkpoint_path,
    config_named,
    load_model,
    read_record,
    record_path,
    train,
    weights_path,
)

TINY: dict[str, Any] = dict(steps=5, batch=16, train_size=64, valid_size=16, test_size=16, samples=4,
                            diffusion_steps=10, eval_every=5, width=16, depth=1, heads=2, mlp_ratio=2.0,
                            gamma_width=16, gamma_depth=1, gamma_heads=2)


@pytest.fixture(scope="module")
def qm9() -> Any:
    if importlib.util.find_spec("qm9pack") is None and not (CACHE / "qm9.pt").exists():
        pytest.skip("QM9 needs the optional package qm9pack (or a built cache)")
    pytest.importorskip("rdkit")
    from markovcat.experiments.symdiff.data import load

    return load()


pytestmark = pytest.mark.usefixtures("one_thread")  # conftest.py: torch on one thread in each test


def folders(tmp_path: Path, dataset: Any) -> dict[str, Any]:
    return {"out": tmp_path / "records", "checkpoints": tmp_path / "checkpoints", "progress": False,
            "dataset": dataset}


@pytest.mark.parametrize("method", METHODS)
def test_every_contender_trains_samples_and_records(method: str, qm9: Any, tmp_path: Path) -> None:
    config = SymDiffConfig(method=method, seed=0, **TINY)
    record = train(config, **folders(tmp_path, qm9))
    assert read_record(record_path(config, tmp_path / "records")) == record
    metrics = record["metrics"]
    assert metrics["samples"] == 4 and metrics["test_molecules"] == 16 and metrics["best_step"] == 5
    assert all(0 <= metrics[f"sample_{k}"] <= 100 for k in ("atom_stability", "molecule_stability", "validity"))
    assert torch.isfinite(torch.tensor([metrics["valid_nll"], metrics["test_nll"]])).all()
    assert [row[0] for row in record["curve"]] == [5] and record["step_seconds"] > 0
    checks = record["equivariance"]
    assert checks["O3"]["passed"] == method.startswith("symdiff"), checks
    assert ("O3_two_sample" in checks) == method.startswith("symdiff")
    assert checks.get("O3_two_sample", {"passed": True})["passed"], checks
    xyz = (tmp_path / "records" / f"{config.name}.xyz").read_text().splitlines()
    assert xyz[0].isdigit() and xyz[1].startswith(config.name)
    assert not checkpoint_path(config, tmp_path / "checkpoints").exists()  # deleted once the record is written
    loaded, model = load_model(weights_path(config, tmp_path / "checkpoints"))
    assert loaded == config and model.method == method
    assert train(config, **folders(tmp_path, qm9)) == record  # a finished run is read back, not rerun


def test_an_interrupted_run_resumes_to_the_same_numbers(qm9: Any, tmp_path: Path) -> None:
    budget = {**TINY, "steps": 6, "eval_every": 3, "samples": 2, "weighting": "vlb"}
    config = SymDiffConfig(method="symdiff", seed=1, **budget)
    whole = train(config, **folders(tmp_path / "whole", qm9))

    class Stop(Exception):
        pass

    def stop(step: int) -> None:
        if step == 4:
            raise Stop

    with pytest.raises(Stop):
        train(config, checkpoint_every=2, on_step=stop, **folders(tmp_path / "parts", qm9))
    assert checkpoint_path(config, tmp_path / "parts" / "checkpoints").exists()
    resumed = train(config, checkpoint_every=2, **folders(tmp_path / "parts", qm9))
    assert resumed["resumed_from_step"] == 4 and whole["resumed_from_step"] == 0
    assert resumed["curve"] == whole["curve"] and resumed["metrics"] == whole["metrics"]


def test_configurations_and_bad_input() -> None:
    small = config_named("cpu-small", "symdiff")
    assert small.diffusion_steps == 1000 and small.samples > 0
    assert set(CONFIGS) == {"cpu-small", "gpu-paper", "gpu-10min", "smoke"}
    assert config_named("cpu-small", "dit", steps=7, lr=None).steps == 7
    assert SymDiffConfig.from_dict(small.as_dict()) == small and small.name != config_named("cpu-small", "dit").name
    with pytest.raises(ValueError, match="unknown configuration"):
        config_named("laptop", "dit")
    with pytest.raises(ValueError, match="unknown method"):
        SymDiffConfig(method="edm", seed=0, steps=1)
    with pytest.raises(ValueError, match="train_size"):
        SymDiffConfig(method="dit", seed=0, steps=1, batch=64, train_size=10)
    with pytest.raises(ValueError, match="weighting"):
        SymDiffConfig(method="dit", seed=0, steps=1, weighting="l1")
    with pytest.raises(ValueError, match="multiple of shards"):
        SymDiffConfig(method="dit", seed=0, steps=1, batch=32, shards=3)
    with pytest.raises(ValueError, match="time strata|strata_per_side"):
        SymDiffConfig(method="dit", seed=0, steps=1, strata_per_side=0)


def test_cli_runs_one_contender(qm9: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from markovcat.experiments.symdiff import cli
    from markovcat.experiments.symdiff import train as train_module

    monkeypatch.setitem(CONFIGS, "cpu-small", {**CONFIGS["cpu-small"], **TINY})
    monkeypatch.setattr(train_module, "load", lambda path: qm9)
    out = tmp_path / "records"
    assert cli.main(["--model", "dit-aug", "--steps", "2", "--eval-every", "1", "--samples", "0", "--out", str(out),
                     "--checkpoints", str(tmp_path / "ck"), "--no-progress"]) == 0
    [path] = out.glob("*.json")
    record = json.loads(path.read_text())
    assert record["config"]["steps"] == 2 and [row[0] for row in record["curve"]] == [1, 2]
    weights = weights_path(SymDiffConfig.from_dict(record["config"]), tmp_path / "ck")
    monkeypatch.setattr("markovcat.experiments.symdiff.data.load", lambda path: qm9)
    assert cli.main(["sample", str(weights), "--count", "3", "--out", str(tmp_path / "s.xyz"), "--no-progress"]) == 0
    assert (tmp_path / "s.xyz").read_text().count("sample ") == 3
    with pytest.raises(SystemExit):
        cli.main(["--steps", "1"])  # neither --model nor --all


class _Oracle(torch.nn.Module):
    """The exact ``eps_hat(z_t) = (z_t - alpha_t x*) / sigma_t`` of data that is one molecule ``x*`` (the only one)."""

    def __init__(self, target: torch.Tensor, schedule: Any) -> None:
        super().__init__()
        self.target, self.schedule = target, schedule
        self.unused = torch.nn.Parameter(torch.zeros((), dtype=target.dtype))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        from markovcat.experiments.symdiff.models import unpack

        z, time, mask = unpack(x)
        t = torch.round(time * self.schedule.steps).long()
        alpha = self.schedule.alpha(t).to(z.dtype)[:, None, None]
        sigma = self.schedule.sigma(t).to(z.dtype)[:, None, None]
        return (z - alpha * self.target) / sigma * mask[..., None]


def test_sampling_with_the_exact_denoiser_returns_the_data(qm9: Any) -> None:
    """With the exact denoiser of a one-molecule data set, T = 1000 ancestral steps return that molecule.

    Proves the sampler's schedule, steps, time input and decoding fit together (to the decoder's
    noise, ``sigma_0 / alpha_0 = 0.003``); says nothing about a trained network.
    """
    from markovcat.experiments.symdiff.models import build
    from markovcat.experiments.symdiff.sample import sample
    from markovcat.experiments.symdiff.train import encode

    molecule = qm9.test.subset([0])
    xh, mask = encode(molecule, torch.device("cpu"), torch.float64)
    schedule = SymDiffConfig(method="dit", seed=0, steps=1).schedule()
    shell = build("dit", atoms=xh.shape[1])
    model = type(shell)("dit", _Oracle(xh[0], schedule), False, False, shell.group, shell.input_action,
                        shell.output_action)
    drawn = sample(model, molecule.num_atoms.repeat(3), schedule, torch.Generator().manual_seed(0))
    assert torch.equal(drawn.types, molecule.types.repeat(3, 1))
    assert torch.allclose(drawn.positions, xh[:1, :, :3].expand(3, -1, -1), atol=0.02)


def test_the_invariance_test_sees_a_preferred_orientation_and_passes_an_invariant_law() -> None:
    """Anisotropic molecules all aligned with the axes are caught; the same molecules turned at random pass."""
    from markovcat.backends.torch.linalg import haar_orthogonal
    from markovcat.experiments.symdiff.sample import Samples, invariance_test, orientation_features

    g = torch.Generator().manual_seed(0)
    positions = torch.randn(200, 8, 3, generator=g, dtype=torch.float64) * torch.tensor([3.0, 1.0, 0.3],
                                                                                         dtype=torch.float64)
    types = torch.zeros(200, 8, dtype=torch.long)
    aligned = invariance_test(Samples(positions, types, types.double()), torch.Generator().manual_seed(1))
    turned = positions @ haar_orthogonal(200, 3, g, torch.float64).transpose(-1, -2)
    invariant = invariance_test(Samples(turned, types, types.double()), torch.Generator().manual_seed(1))
    assert aligned["p_value"] < 0.01 < invariant["p_value"] and aligned["n"] == 200
    r = haar_orthogonal(1, 3, g, torch.float64)[0]
    features = orientation_features(positions[:2], types[:2])
    moved = orientation_features(positions[:2] @ r.T, types[:2])
    assert torch.allclose(moved[:, :9].view(2, 3, 3), r @ features[:, :9].view(2, 3, 3) @ r.T)
    assert torch.allclose(moved[:, 9:], features[:, 9:] @ r.T)
    with pytest.raises(ValueError, match="at least 4"):
        invariance_test(Samples(positions[:3], types[:3], types[:3].double()))


def test_rotated_molecules_keep_their_shape() -> None:
    """``rotated`` turns each molecule rigidly (distances kept, padding zero), by different elements."""
    from markovcat.experiments.symdiff.data import Molecules
    from markovcat.experiments.symdiff.train import rotated

    g = torch.Generator().manual_seed(3)
    positions = torch.randn(3, 4, 3, generator=g, dtype=torch.float64)
    positions[:, 3] = 0.0
    types = torch.tensor([[0, 1, 1, -1]] * 3)
    molecules = Molecules(positions, types, ("C", "C", "C"), torch.arange(3))
    turned = rotated(molecules, torch.Generator().manual_seed(4))
    assert torch.allclose(torch.cdist(turned.positions, turned.positions), torch.cdist(positions, positions))
    assert bool((turned.positions[:, 3] == 0).all()) and not torch.allclose(turned.positions, positions)
    assert torch.equal(turned.types, types)


def test_rescore_adds_the_rotated_bound_only_for_the_run_that_wrote_the_record(qm9: Any, tmp_path: Path) -> None:
    """An older record (no rotated bound) gets it from the run's weights; a record its weights do not reproduce,
    or whose weights are gone, is refused and left as it was."""
    from markovcat.experiments.symdiff.rescore import needs_rescore, rescore, rescore_all

    config = SymDiffConfig(method="dit", seed=0, **{**TINY, "samples": 0})
    record = train(config, **folders(tmp_path, qm9))
    full = dict(record["metrics"])
    assert not needs_rescore(record) and full["test_nll_rotated_sem"] > 0
    path = record_path(config, tmp_path / "records")
    older = json.loads(path.read_text())
    for key in ("test_nll_rotated", "test_nll_rotated_sem"):
        older["metrics"].pop(key)
    path.write_text(json.dumps(older))
    again = rescore(path, tmp_path / "checkpoints", qm9=qm9)
    assert again["metrics"]["test_nll_rotated"] == pytest.approx(full["test_nll_rotated"], rel=1e-9)
    assert again["rescored"]["fields"] == ["test_nll_rotated", "test_nll_rotated_sem"]
    tampered = json.loads(path.read_text())
    tampered["metrics"]["test_nll"] += 1.0
    del tampered["metrics"]["test_nll_rotated"]
    path.write_text(json.dumps(tampered))
    with pytest.raises(ValueError, match="not the run that wrote it"):
        rescore(path, tmp_path / "checkpoints", qm9=qm9)
    assert "test_nll_rotated" not in json.loads(path.read_text())["metrics"]
    with pytest.raises(FileNotFoundError, match="no weights"):
        rescore(path, tmp_path / "elsewhere", qm9=qm9)
    said: list[str] = []
    assert rescore_all(tmp_path / "records", tmp_path / "elsewhere", say=said.append) == 1 and "no weights" in said[-1]
