"""The matrix-experiment runner: records, determinism, resumption, skipping, sharding, sweep, CLI and plot."""

from __future__ import annotations

import json
import math
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
import torch

from markovcat.experiments import cli
from markovcat.experiments.matrix import plot as matrix_plot
from markovcat.experiments.matrix.sweep import budget, plan, sweep
from markovcat.experiments.matrix.train import (
    Objective,
    RunConfig,
    World,
    batch_indices,
    checkpoint_path,
    datasets,
    finished,
    read_record,
    record_path,
    train,
)

#: A run small enough for a test: the paper's pipeline, tiny sizes.
TINY = dict(train_size=60, test_size=20, batch=20, shards=2, train_samples=2, test_samples=3,
            backbone_hidden=(8,), gamma_hidden=(8,))


def tiny(method: str = "haar", task: str = "cov", steps: int = 20, seed: int = 0, **changes: Any) -> RunConfig:
    return RunConfig(task=task, method=method, dim=3, seed=seed, steps=steps, **{**TINY, **changes})


def folders(tmp_path: Path) -> dict[str, Path]:
    return {"out": tmp_path / "records", "checkpoints": tmp_path / "checkpoints"}


def numbers(record: dict[str, Any]) -> dict[str, Any]:
    """What a seed determines: metrics, the equivariance verdict and the final parameters' fingerprint."""
    return {"metrics": record["metrics"], "equivariance": record["equivariance"], "parameters": record["parameters"]}


pytestmark = pytest.mark.usefixtures("one_thread")  # conftest.py: torch on one thread in each test


def test_a_record_says_what_ran_and_how_it_did(tmp_path: Path) -> None:
    config = tiny()
    record = train(config, progress=False, **folders(tmp_path))
    path = record_path(config, tmp_path / "records")
    assert read_record(path) == record and json.loads(path.read_text())["config"] == config.as_dict()
    for key in ("git_revision", "torch", "device", "wall_seconds", "steps_per_second", "seed", "world_size"):
        assert key in record
    assert record["torch"] == torch.__version__ and record["device"] == "cpu" and record["world_size"] == 1
    metrics = record["metrics"]
    assert metrics["test_examples"] == 20 and metrics["train_loss_last_steps"] == 20
    assert 0 < metrics["test_rse_mean"] < 10 and metrics["test_rse_std"] > 0
    assert set(record["equivariance"]) >= {"method", "statistic", "passed"}
    assert not checkpoint_path(config, tmp_path / "checkpoints").exists()  # removed once the record is written


def test_the_same_seed_gives_the_same_numbers_and_another_seed_does_not(tmp_path: Path) -> None:
    first = train(tiny(), progress=False, out=tmp_path / "a", checkpoints=tmp_path / "c")
    again = train(tiny(), progress=False, out=tmp_path / "b", checkpoints=tmp_path / "c")
    other = train(tiny(seed=1), progress=False, out=tmp_path / "a", checkpoints=tmp_path / "c")
    assert numbers(first) == numbers(again)
    assert first["metrics"]["test_rse_mean"] != other["metrics"]["test_rse_mean"]
    assert first["parameters"] != other["parameters"]


def test_the_datasets_and_batches_come_from_the_seed() -> None:
    from markovcat.experiments.matrix.tasks import make_task

    task = make_task("cov", 3)
    a, b = datasets(task, tiny()), datasets(task, tiny())
    assert all(torch.equal(x, y) for x, y in zip(a, b))
    assert not torch.equal(a[0], datasets(task, tiny(seed=1))[0])
    assert a[0].shape == (60, 3, 25) and a[2].shape == (20, 3, 25)
    epoch = torch.cat([batch_indices(tiny(), s) for s in range(3)])  # 60 examples, batch 20: one epoch
    assert sorted(epoch.tolist()) == list(range(60))
    assert not torch.equal(batch_indices(tiny(), 0), batch_indices(tiny(), 3))  # a fresh order per epoch


class Interrupt(Exception):
    pass


def test_an_interrupted_run_resumes_to_the_same_numbers(tmp_path: Path) -> None:
    config = tiny(steps=20)
    straight = train(config, progress=False, out=tmp_path / "straight", checkpoints=tmp_path / "c1",
                     checkpoint_every=5)

    def stop(step: int) -> None:
        if step == 13:
            raise Interrupt

    with pytest.raises(Interrupt):
        train(config, progress=False, out=tmp_path / "resumed", checkpoints=tmp_path / "c2", checkpoint_every=5,
              on_step=stop)
    assert checkpoint_path(config, tmp_path / "c2").exists() and not finished(config, tmp_path / "resumed")
    seen: list[int] = []
    resumed = train(config, progress=False, out=tmp_path / "resumed", checkpoints=tmp_path / "c2",
                    checkpoint_every=5, on_step=seen.append)
    assert seen == list(range(11, 21))  # from the checkpoint at step 10
    assert resumed["resumed_from_step"] == 10
    assert numbers(resumed)["parameters"] == numbers(straight)["parameters"]
    assert resumed["metrics"]["test_rse_mean"] == straight["metrics"]["test_rse_mean"]
    assert resumed["equivariance"] == straight["equivariance"]


def test_a_finished_run_is_skipped_and_a_changed_one_is_not(tmp_path: Path) -> None:
    config = tiny(steps=5)
    first = train(config, progress=False, **folders(tmp_path))
    seen: list[int] = []
    assert train(config, progress=False, on_step=seen.append, **folders(tmp_path)) == first and seen == []
    longer = replace(config, steps=6)
    assert longer.name != config.name and not finished(longer, tmp_path / "records")
    train(longer, progress=False, on_step=seen.append, **folders(tmp_path))
    assert seen == list(range(1, 7))


def test_a_checkpoint_of_another_configuration_is_refused(tmp_path: Path) -> None:
    config = tiny(steps=10)
    with pytest.raises(Interrupt):
        train(config, progress=False, checkpoint_every=5, on_step=lambda s: (_ for _ in ()).throw(Interrupt)
              if s == 7 else None, **folders(tmp_path))
    saved = checkpoint_path(config, tmp_path / "checkpoints")
    other = tiny(steps=11)
    saved.rename(checkpoint_path(other, tmp_path / "checkpoints"))
    with pytest.raises(ValueError, match="another configuration"):
        train(other, progress=False, **folders(tmp_path))


def _sharded_gradients(config: RunConfig, size: int) -> list[torch.Tensor]:
    """The DDP gradient (average over ranks) of ``size`` simulated processes, each with its shards."""
    from markovcat.experiments.matrix.methods import build
    from markovcat.experiments.matrix.tasks import make_task

    task = make_task(config.task, config.dim)
    x, y, _, _ = datasets(task, config)
    index = batch_indices(config, 0)
    total: list[torch.Tensor] | None = None
    for rank in range(size):
        model = build(config.method, task, config.method_config(), config.seed)
        loss = Objective(model, config, World(rank, size))(x[index], y[index], 0)
        grads = torch.autograd.grad(loss, list(model.module.parameters()))
        total = list(grads) if total is None else [a + b for a, b in zip(total, grads)]
    assert total is not None
    return [g / size for g in total]


@pytest.mark.parametrize("method", ["mlp", "recursive"])
def test_sharding_averages_to_the_one_process_gradient(method: str) -> None:
    """World sizes 1, 2, 4 give the same averaged gradient: the loss is normalised per example of the global batch."""
    config = tiny(method=method, shards=4)
    one = _sharded_gradients(config, 1)
    for size in (2, 4):
        for a, b in zip(one, _sharded_gradients(config, size)):
            torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-7)


def test_the_objective_is_the_mean_loss_over_the_global_batch() -> None:
    """For the deterministic MLP the sharded objective equals the model's loss on the whole batch."""
    from markovcat.experiments.matrix.methods import build
    from markovcat.experiments.matrix.tasks import make_task

    config = tiny(method="mlp", shards=4)
    task = make_task("cov", 3)
    x, y, _, _ = datasets(task, config)
    model = build("mlp", task, config.method_config(), 0)
    whole = model.loss(x[:20], y[:20])
    torch.testing.assert_close(Objective(model, config, World())(x[:20], y[:20], 0), whole)
    halves = sum(Objective(model, config, World(r, 2))(x[:20], y[:20], 0) for r in range(2)) / 2
    torch.testing.assert_close(halves, whole)


def test_configurations_that_cannot_work_say_why() -> None:
    with pytest.raises(ValueError, match="multiple of shards"):
        tiny(shards=3)
    with pytest.raises(ValueError, match="larger than the training set"):
        tiny(batch=100)
    with pytest.raises(ValueError, match="steps must be"):
        tiny(steps=-1)
    with pytest.raises(ValueError, match="use --shards a multiple"):
        Objective(object(), tiny(shards=2), World(0, 4))
    with pytest.raises(ValueError, match="unknown task"):
        plan(["nope"], None, [3], [0], 5)


def test_the_sweep_runs_what_is_missing(tmp_path: Path) -> None:
    configs = plan(["cov"], ["mlp", "haar"], [3], [0], 4, **TINY)
    assert [c.method for c in configs] == ["mlp", "haar"]
    train(configs[0], progress=False, **folders(tmp_path))
    said: list[str] = []
    records = sweep(configs, say=said.append, progress=False, **folders(tmp_path))
    assert said[0].startswith("sweep: 2 runs, 1 finished already, 1 to run")
    assert len(said) == 2 and said[1].startswith("[1/1] cov_haar_d3_seed0")
    assert [r["config"]["method"] for r in records] == ["mlp", "haar"]


def test_a_diverged_run_is_reported_and_the_sweep_goes_on(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from markovcat.experiments.matrix import sweep as sweep_module

    configs = plan(["cov"], ["mlp", "haar"], [3], [0], 4, **TINY)

    def diverging(config: Any, **options: Any) -> dict[str, Any]:
        if config.method == "mlp":
            raise FloatingPointError(f"{config.name}: non-finite test errors")
        return train(config, **options)

    monkeypatch.setattr(sweep_module, "train", diverging)
    said: list[str] = []
    records = sweep(configs, say=said.append, progress=False, **folders(tmp_path))
    assert [r["config"]["method"] for r in records] == ["haar"]  # the other run still ran and wrote its record
    assert any("cov_mlp_d3_seed0" in line and "FAILED, no record written" in line for line in said)
    assert said[-1].startswith("sweep: 1 run(s) failed and have no record: cov_mlp_d3_seed0")


def test_a_failed_float32_check_is_repeated_in_float64(tmp_path: Path) -> None:
    plain = train(tiny("mlp"), progress=False, **folders(tmp_path))["equivariance"]
    symmetrised = train(tiny("haar"), progress=False, **folders(tmp_path))["equivariance"]
    assert not plain["passed"] and plain["dtype"] == "float32"
    assert plain["float64"]["dtype"] == "float64" and not plain["float64"]["passed"]  # a real violation stays
    assert plain["float64"]["statistic"] > 1e3 * plain["float64"]["threshold"]
    assert symmetrised["passed"] and "float64" not in symmetrised


def _poison(monkeypatch: pytest.MonkeyPatch, steps: set[int]) -> None:
    """Make the loss (so every gradient) NaN at the given steps, as a singular QR input would."""
    forward = Objective.forward

    def poisoned(self: Objective, x: torch.Tensor, y: torch.Tensor, step: int) -> torch.Tensor:
        loss = forward(self, x, y, step)
        return loss * math.nan if step in steps else loss

    monkeypatch.setattr(Objective, "forward", poisoned)


def test_a_step_with_non_finite_gradients_is_skipped_and_counted(tmp_path: Path,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    clean = train(tiny(), progress=False, out=tmp_path / "clean", checkpoints=tmp_path / "c")
    _poison(monkeypatch, {19})  # the last step: skipping it leaves the parameters of a 19-step run
    record = train(tiny(), progress=False, **folders(tmp_path))
    assert record["skipped_steps"] == 1 and clean["skipped_steps"] == 0
    assert math.isfinite(record["metrics"]["test_rse_mean"]) and record["metrics"]["train_loss_last_steps"] == 19
    monkeypatch.undo()
    shorter = train(tiny(steps=19), progress=False, out=tmp_path / "short", checkpoints=tmp_path / "c")
    assert record["parameters"] == shorter["parameters"] != clean["parameters"]


def test_a_run_that_keeps_skipping_has_diverged(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _poison(monkeypatch, {3, 7})  # two of 20 steps: more than 1% and more than one
    with pytest.raises(FloatingPointError, match="non-finite gradients at 2 steps .*diverged"):
        train(tiny(), progress=False, **folders(tmp_path))
    assert not record_path(tiny(), tmp_path / "records").exists()


def test_a_checkpoint_with_non_finite_parameters_is_refused(tmp_path: Path) -> None:
    config = tiny(steps=4)

    def interrupt(step: int) -> None:
        if step == 2:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        train(config, progress=False, checkpoint_every=2, on_step=interrupt, **folders(tmp_path))
    saved = checkpoint_path(config, tmp_path / "checkpoints")
    state = torch.load(saved, weights_only=False)
    next(iter(state["model"].values())).fill_(math.nan)
    torch.save(state, saved)
    with pytest.raises(ValueError, match="non-finite parameters"):
        train(config, progress=False, **folders(tmp_path))


def test_the_budget_fills_the_time_asked_for() -> None:
    speeds = {("mlp", 4): 20.0, ("haar", 4): 10.0}
    steps = budget(speeds, runs_per_method_and_dim=15, cores=2, minutes=90, overhead_seconds=5)
    seconds = sum(15 * (steps / s + 5) for s in speeds.values())
    assert abs(seconds - 90 * 60 * 2) < 15 * (1 / 10 + 1 / 20) + 1e-9


def test_the_command_trains_records_and_plots(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "records"
    common = ["--steps", "3", "--train-size", "40", "--test-size", "10", "--batch", "10", "--train-samples", "2",
              "--test-samples", "2", "--backbone-hidden", "8", "--gamma-hidden", "8", "--out", str(out),
              "--checkpoints", str(tmp_path / "c"), "--no-progress"]
    for method in ("mlp", "haar"):
        for dim in ("2", "3"):
            assert cli.main(["experiment", "matrix", "--task", "expm", "--method", method, "--dim", dim,
                             *common]) == 0
    assert len(list(out.glob("*.json"))) == 4
    assert "1 finished already" not in capsys.readouterr().out
    assert cli.main(["experiment", "plot", "--records", str(out), "--out", str(tmp_path / "fig")]) == 0
    for suffix in (".png", ".pdf", ".md"):
        assert (tmp_path / f"fig{suffix}").stat().st_size > 0
    text = (tmp_path / "fig.md").read_text()
    assert "| expm | mlp | 2 |" in text and "| expm | haar | 3 |" in text and "3 steps" in text
    assert "0/1 (deterministic)" in text  # the plain MLP fails the check


def test_the_command_says_what_is_missing(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        cli.main(["experiment", "matrix", "--task", "cov"])
    assert "one run needs --method, --dim" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        cli.main(["experiment", "matrix", "--all", "--tasks", "nope"])
    assert "unknown task" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        cli.main(["experiment", "matrix", "--task", "cov", "--method", "mlp", "--dim", "3", "--shards", "3"])
    assert "multiple of shards" in capsys.readouterr().err


def _record(tmp_path: Path, task: str, method: str, dim: int, seed: int, error: float, passed: bool,
            steps: int = 10) -> None:
    config = RunConfig(task=task, method=method, dim=dim, seed=seed, steps=steps)
    record = {"config": config.as_dict(), "metrics": {"test_rse_mean": error},
              "equivariance": {"passed": passed, "method": "pathwise"}}
    record_path(config, tmp_path).parent.mkdir(parents=True, exist_ok=True)
    record_path(config, tmp_path).write_text(json.dumps(record))


def test_the_table_is_the_mean_and_spread_over_seeds(tmp_path: Path) -> None:
    for seed, error in enumerate((1.0, 2.0, 3.0)):
        _record(tmp_path, "cov", "haar", 4, seed, error, passed=seed != 1)
    _record(tmp_path, "cov", "mlp", 4, 0, 5.0, passed=False)
    rows = matrix_plot.summarise(matrix_plot.load(tmp_path))
    assert [(r["method"], r["mean"], r["seeds"], r["passed"]) for r in rows] == [("mlp", 5.0, 1, 0),
                                                                                   ("haar", 2.0, 3, 2)]
    assert rows[1]["std"] == pytest.approx(1.0) and math.isnan(rows[0]["std"])
    text = matrix_plot.table(rows, 10)
    assert "| cov | haar | 4 | 2 ± 1 | 3 | 2/3 (pathwise) |" in text and "| cov | mlp | 4 | 5 | 1 |" in text
    _record(tmp_path, "cov", "haar", 4, 0, 1.0, passed=True, steps=20)
    with pytest.raises(ValueError, match="mixes step budgets"):
        matrix_plot.load(tmp_path)
    assert len(matrix_plot.load(tmp_path, steps=20)) == 1
    with pytest.raises(ValueError, match="no records"):
        matrix_plot.load(tmp_path / "nothing")


def test_a_50_step_run_of_every_task_and_method_records_and_plots(tmp_path: Path) -> None:
    """The smoke run: every task x method trains 50 steps, writes a valid record, and the figure is drawn from them."""
    from markovcat.experiments.matrix.methods import EMLP_METHODS
    from markovcat.experiments.matrix.methods import METHODS as ALL
    from markovcat.experiments.matrix.tasks import TASKS

    METHODS = tuple(m for m in ALL if m not in EMLP_METHODS)  # the EMLP methods: tests/test_matrix_emlp.py
    configs = plan(None, METHODS, [2], [0], 50, **TINY)
    assert {(c.task, c.method) for c in configs} == {(t, m) for t in TASKS for m in METHODS}
    records = sweep(configs, say=lambda _: None, progress=False, **folders(tmp_path))
    assert len(records) == len(TASKS) * len(METHODS)
    for record in records:
        assert read_record(record_path(RunConfig.from_dict(record["config"]), tmp_path / "records")) == record
        assert math.isfinite(record["metrics"]["test_rse_mean"]) and record["metrics"]["train_loss_last_steps"] == 50
        # the symmetrised methods pass the equivariance check, the plain MLP fails it
        assert record["equivariance"]["passed"] == (record["config"]["method"] != "mlp"), record["name"]
    written = matrix_plot.plot(tmp_path / "records", tmp_path / "figure")
    assert [p.suffix for p in written] == [".png", ".pdf", ".md"] and all(p.stat().st_size > 0 for p in written)
    assert (tmp_path / "figure.md").read_text().count("\n| ") == len(records) + 1


def test_the_gpu_script_dry_runs_on_the_cpu(tmp_path: Path) -> None:
    """``experiments/matrix/gpu.sh``'s path (calibrate, choose, run) with tiny sizes on the CPU."""
    import json
    import subprocess
    import sys

    from markovcat.experiments.matrix import gpu

    script = Path(__file__).resolve().parents[2] / "experiments" / "matrix" / "gpu.sh"
    assert script.exists() and script.stat().st_mode & 0o111  # the one command exists and is executable
    out = tmp_path / "gpu"
    assert gpu.main(["--out", str(out), "--device", "cpu", "--jobs", "1", "--tiny", "--dims", "2", "--seeds", "0",
                     "--steps", "4", "--calibration-steps", "2", "--budget", "600", "--methods", "mlp", "haar",
                     "--tasks", "cov"]) == 0
    summary = json.loads((out / "plan.json").read_text())
    assert summary["chosen_runs"] >= 1 and summary["rates"]
    records = sorted((out / "records").glob("*.json"))
    assert [p.stem for p in records] == sorted(summary["chosen"])
    assert all(json.loads(p.read_text())["config"]["steps"] == 4 for p in records)
    # choose: a prefix that fits the budget, and nothing when a run alone is too long
    configs = plan(["cov"], ["mlp", "haar"], [2], [0, 1], 100)
    rates = {(m, 2): {"steps_per_second": 10.0, "overhead_seconds": 0.0} for m in ("mlp", "haar")}
    assert len(gpu.choose(configs, rates, 25.0, jobs=2)) == 4 and len(gpu.choose(configs, rates, 25.0, jobs=1)) == 2
    assert gpu.choose(configs, rates, 5.0, jobs=8) == []
    assert sys.executable  # the script runs with the environment's python (PYTHON=...)
    subprocess.run(["bash", "-n", str(script)], check=True)  # it parses


def test_fresh_batches_differ_between_epochs_and_repeat_on_a_rerun() -> None:
    """The paper's protocol: every batch newly drawn from (seed, step); the same seed gives the same batches."""
    from markovcat.experiments.matrix.tasks import make_task
    from markovcat.experiments.matrix.train import test_set, training_batch

    task = make_task("cov", 3)
    fresh = RunConfig(task="cov", method="mlp", dim=3, seed=4, steps=300)
    assert fresh.data == "fresh"
    first, again = training_batch(task, fresh, 0), training_batch(task, fresh, 0)
    next_epoch = training_batch(task, fresh, 100)  # 100 steps of batch 100: one epoch of 10,000 examples
    assert all(torch.equal(a, b) for a, b in zip(first, again, strict=True))
    assert not torch.equal(first[0], next_epoch[0]) and not torch.equal(first[0], training_batch(task, fresh, 1)[0])
    other_seed = training_batch(task, RunConfig(task="cov", method="mlp", dim=3, seed=5, steps=300), 0)
    assert not torch.equal(first[0], other_seed[0])
    assert torch.equal(test_set(task, fresh)[0], test_set(task, fresh)[0])  # one fixed test set per seed
    # the fixed protocol draws from one training set, and repeats it epoch after epoch
    fixed = RunConfig(task="cov", method="mlp", dim=3, seed=4, steps=300, data="fixed", train_size=200)
    data = task.sample(200, torch.Generator().manual_seed(0))
    epoch = [training_batch(task, fixed, step, data)[0] for step in (0, 1)]
    pool = {tuple(row.flatten().tolist()) for row in data[0]}
    assert all(tuple(row.flatten().tolist()) in pool for batch in epoch for row in batch)
    with pytest.raises(ValueError, match="fixed protocol"):
        training_batch(task, fixed, 0)
    with pytest.raises(ValueError, match="data must be one of"):
        RunConfig(task="cov", method="mlp", dim=3, seed=0, steps=1, data="stream")
