"""The N-body runner's shards: 1-shard runs keep the committed records' numbers and keys; shards average right.

What these prove: a 1-shard objective is, bit for bit, the loss the runner computed before it had
shards (same generator labels, no rescaling); the committed records are still found "finished"
for their configurations; simulated ranks (no processes) average to the one-process gradient.
What they do not: that torchrun and DDP deliver that average (``tests/applications/test_ddp.py`` runs them).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import torch

from markovcat.experiments.nbody import plot as nbody_plot
from markovcat.experiments.nbody.cli import main
from markovcat.experiments.nbody.models import build
from markovcat.experiments.nbody.train import NBodyConfig, finished, read_record, record_path
from markovcat.experiments.runner import ShardedObjective, World, generator

RECORDS = Path(__file__).resolve().parents[2] / "experiments" / "results" / "nbody"


pytestmark = pytest.mark.usefixtures("one_thread")  # conftest.py: torch on one thread in each test


def batch(size: int = 8, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(size, 5, 6, generator=g)
    q = torch.randint(0, 2, (size, 5, 1), generator=g).float() * 2 - 1
    return torch.cat([x, q], dim=-1), torch.randn(size, 5, 3, generator=g)


def objective(method: str, config: NBodyConfig, world: World) -> tuple[ShardedObjective, Any]:
    model = build(method, config.model_config(), config.seed)
    return ShardedObjective(model.loss, model.module, seed=config.seed, batch=config.batch, shards=config.shards,
                            world=world, index_single_shard=False), model


def test_committed_records_keep_their_keys_and_stay_finished() -> None:
    paths = sorted(RECORDS.glob("nbody_*.json"))
    assert len(paths) >= 30
    for path in paths:
        record = json.loads(path.read_text())
        config = NBodyConfig.from_dict(record["config"])
        assert config.as_dict() == record["config"]  # a 1-shard record has no "shards" and keeps it out
        assert config.name == record["name"] == path.stem
        assert finished(config, RECORDS)


def test_shards_enter_the_key_only_when_not_one() -> None:
    one, two = NBodyConfig(method="haar", seed=0, steps=5), NBodyConfig(method="haar", seed=0, steps=5, shards=2)
    assert "shards" not in one.as_dict() and two.as_dict()["shards"] == 2 and one.key != two.key
    assert NBodyConfig.from_dict(two.as_dict()) == two and NBodyConfig.from_dict(one.as_dict()) == one
    from markovcat.experiments.symdiff.train import SymDiffConfig  # the other runner with shards, same rule

    one_s, two_s = SymDiffConfig(method="dit", seed=0, steps=5), SymDiffConfig(method="dit", seed=0, steps=5, shards=2)
    assert "shards" not in one_s.as_dict() and two_s.as_dict()["shards"] == 2
    assert SymDiffConfig.from_dict(one_s.as_dict()) == one_s and SymDiffConfig.from_dict(two_s.as_dict()) == two_s


@pytest.mark.parametrize("method", ["haar", "mlp-aug"])
def test_one_shard_is_the_loss_of_the_runner_before_shards(method: str) -> None:
    """Bit for bit: the generator ``(seed, "noise", step)`` and the loss itself (not rescaled by batch / batch)."""
    config = NBodyConfig(method=method, seed=3, steps=5, batch=8)
    sharded, model = objective(method, config, World())
    x, y = batch()
    with torch.no_grad():
        assert torch.equal(sharded(x, y, 7), model.loss(x, y, generator(torch.device("cpu"), 3, "noise", 7)))


def _gradient(method: str, config: NBodyConfig, world: World, x: torch.Tensor, y: torch.Tensor) -> list[torch.Tensor]:
    sharded, model = objective(method, config, world)
    return list(torch.autograd.grad(sharded(x, y, 0), list(model.module.parameters())))


@pytest.mark.parametrize("method", ["haar", "mlp-aug"])
def test_simulated_ranks_average_to_the_one_process_gradient(method: str) -> None:
    """Shards 4 on 1, 2 and 4 simulated ranks: the rank average (DDP's) equals the one-process gradient."""
    config = NBodyConfig(method=method, seed=1, steps=5, batch=8, train_size=8, shards=4)
    x, y = batch()
    one = _gradient(method, config, World(), x, y)
    for size in (2, 4):
        per_rank = [_gradient(method, config, World(rank, size), x, y) for rank in range(size)]
        for i, expected in enumerate(one):
            torch.testing.assert_close(sum(g[i] for g in per_rank) / size, expected, rtol=1e-5, atol=1e-7)
    other = _gradient(method, NBodyConfig(method=method, seed=1, steps=5, batch=8, train_size=8, shards=2),
                      World(), x, y)
    assert not all(torch.allclose(a, b) for a, b in zip(one, other))  # the noise depends on the shards


def test_shards_that_cannot_work_say_why(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(ValueError, match="multiple of shards"):
        NBodyConfig(method="haar", seed=0, steps=1, batch=10, shards=3)
    with pytest.raises(ValueError, match="shards must be a positive integer"):
        NBodyConfig(method="haar", seed=0, steps=1, shards=0)
    with pytest.raises(ValueError, match="use --shards a multiple"):
        objective("mlp", NBodyConfig(method="mlp", seed=0, steps=1, shards=2), World(0, 4))
    with pytest.raises(SystemExit):
        main(["--method", "mlp", "--steps", "1", "--batch", "10", "--shards", "3"])
    assert "multiple of shards" in capsys.readouterr().err


def test_the_plot_reads_committed_records_without_world_size() -> None:
    """The committed records were written before ``world_size`` was recorded; the table is made from them."""
    records = nbody_plot.load(RECORDS)
    text = nbody_plot.table(nbody_plot.summarise(records), records[0]["config"]["steps"])
    assert "| haar |" in text and "| recursive |" in text


def test_a_new_record_says_its_world_size(tmp_path: Path) -> None:
    from markovcat.experiments.nbody.train import train

    config = NBodyConfig(method="mlp", seed=0, steps=2, batch=10, eval_every=2, train_size=20, valid_size=10,
                         test_size=10, burn_in=0, horizon=10, width=8, layers=1, gamma_hidden=8, test_samples=2)
    record = train(config, out=tmp_path, checkpoints=tmp_path / "c", data_cache=None, progress=False)
    assert record["world_size"] == 1 and read_record(record_path(config, tmp_path))["world_size"] == 1
    with pytest.raises(ValueError, match="pass one of them"):
        train(config, world=World(), device="meta", out=tmp_path / "other", data_cache=None, progress=False)
