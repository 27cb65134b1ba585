"""The matrix experiments' training step: markovcat against hand-written PyTorch, and steps/s per method.

1. Side by side, interleaved in rounds in one process: one training step (forward, backward,
   Adam) of the Haar-symmetrised MLP on ``cov`` at d = 4, batch 100, 10 draws per example, the
   paper's backbone (tanh, hidden 250, 250, 250), as the runner takes it
   (:class:`~markovcat.experiments.matrix.train.Objective`, one shard), against the same model
   written by hand in plain PyTorch (Haar by QR with the sign fix, ``g^T x``, the MLP,
   ``g y g^T``, the mean over draws, the relative squared error).  Target: at most 1.1x.
2. The runner's training step (2 noise shards, its default) for every task x method at d = 4
   and 8: steps/s on one thread.  And the per-run cost besides training (data, the test
   evaluation with 100 draws, the equivariance check) per method and d, on ``cov``.
3. The CPU sweep's step budget derived from them (:func:`markovcat.experiments.matrix.sweep.budget`):
   120 runs (5 tasks x 4 methods x d in {4, 8} x 3 seeds) in 90 minutes on 2 single-threaded workers.

Times are CPU time of the timing thread (``time.thread_time``), so other processes on a shared
machine count little; figures are minima over interleaved rounds (part 1) or means over a few
steps after a warm-up (part 2).

    python benchmarks/matrix_step.py [--quick]

Prints Markdown and writes it to ``benchmarks/results/matrix_step.md``.
"""

from __future__ import annotations

import argparse
import os
import platform
import time
from collections.abc import Callable, Mapping
from pathlib import Path

import torch
from timing import timed_rounds as shared_timed_rounds  # benchmarks/ is the script's folder
from torch import Tensor, nn

from markovcat.experiments.matrix.methods import METHODS, build
from markovcat.experiments.matrix.sweep import CPU_DIMS, CPU_SEEDS, CPU_STEPS, budget
from markovcat.experiments.matrix.tasks import TASKS, make_task, relative_squared_error
from markovcat.experiments.matrix.train import (
    Objective,
    RunConfig,
    World,
    batch_indices,
    datasets,
    equivariance,
    evaluate,
)

TARGET = 1.1
MINUTES, CORES = 90, 2


def timed_rounds(variants: Mapping[str, Callable[[], None]], rounds: int, calls: int) -> dict[str, float]:
    """Minimum over rounds of the mean thread CPU seconds per call; variants interleaved, order alternating."""
    return shared_timed_rounds(variants, rounds, calls, warmup=2)


class HandWritten(nn.Module):
    """``cov`` under O(d), Haar-symmetrised by hand: the mean over draws of ``g . mlp(g^T x) . g^T``."""

    def __init__(self, mlp: nn.Module, samples: int) -> None:
        super().__init__()
        self.mlp, self.samples = mlp, samples

    def forward(self, x: Tensor, generator: torch.Generator) -> Tensor:
        n, d = x.shape[0], x.shape[1]
        x = x.repeat_interleave(self.samples, 0)
        q, r = torch.linalg.qr(torch.randn(x.shape[0], d, d, generator=generator, dtype=x.dtype))
        g = q * torch.sign(torch.diagonal(r, dim1=-2, dim2=-1)).unsqueeze(-2)
        y = self.mlp(g.transpose(-1, -2) @ x)
        y = g @ y @ g.transpose(-1, -2)
        return y.view(n, self.samples, d, d).mean(1)


def side_by_side(rounds: int, calls: int) -> tuple[dict[str, float], RunConfig]:
    config = RunConfig(task="cov", method="haar", dim=4, seed=0, steps=1, shards=1)
    task = make_task("cov", 4)
    model = build("haar", task, config.method_config(), 0)
    x, y, _, _ = datasets(task, config)
    x, y = x[:100], y[:100]
    objective = Objective(model, config, World())
    mlp = build("mlp", task, config.method_config(), 0).module.inner  # the same backbone: tanh (250, 250, 250)
    hand = HandWritten(mlp, config.train_samples)
    ours_opt = torch.optim.Adam(model.module.parameters(), lr=1e-4)
    hand_opt = torch.optim.Adam(hand.parameters(), lr=1e-4)
    gen_hand = torch.Generator().manual_seed(1)

    def ours() -> None:
        loss = objective(x, y, 0)
        ours_opt.zero_grad(set_to_none=True)
        loss.backward()
        ours_opt.step()

    def by_hand() -> None:
        loss = relative_squared_error(hand(x, gen_hand), y).mean()
        hand_opt.zero_grad(set_to_none=True)
        loss.backward()
        hand_opt.step()

    return timed_rounds({"hand-written PyTorch": by_hand, "markovcat (build('haar'), runner objective)": ours},
                        rounds, calls), config


def step_rate(task_name: str, method: str, dim: int, steps: int) -> float:
    """The runner's steps/s (default 2 shards) on one thread, over ``steps`` steps after 2 warm-up steps."""
    config = RunConfig(task=task_name, method=method, dim=dim, seed=0, steps=steps + 2)
    task = make_task(task_name, dim)
    model = build(method, task, config.method_config(), 0)
    x, y, _, _ = datasets(task, config)
    objective = Objective(model, config, World())
    optimizer = torch.optim.Adam(model.module.parameters(), lr=config.lr)
    elapsed = 0.0
    for step in range(steps + 2):
        start = time.thread_time()
        index = batch_indices(config, step)
        loss = objective(x[index], y[index], step)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        if step >= 2:
            elapsed += time.thread_time() - start
    return steps / elapsed


def overhead(method: str, dim: int) -> float:
    """Seconds per run besides training, on ``cov``: build, data, test evaluation (100 draws), equivariance check."""
    start = time.thread_time()
    config = RunConfig(task="cov", method=method, dim=dim, seed=0, steps=1)
    task = make_task("cov", dim)
    model = build(method, task, config.method_config(), 0)
    _, _, x_test, y_test = datasets(task, config)
    model.module.eval()
    evaluate(model, config, x_test, y_test, torch.device("cpu"))
    equivariance(model, task, x_test, 0)
    return time.thread_time() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer rounds and steps")
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results" / "matrix_step.md")
    args = parser.parse_args()
    torch.set_num_threads(1)
    rounds, calls, steps = (5, 2, 3) if args.quick else (41, 3, 6)
    lines = ["# The matrix experiments' training step", "",
             f"torch {torch.__version__}, {platform.machine()}, 1 thread; thread CPU time.", ""]
    times, _ = side_by_side(rounds, calls)
    hand = times["hand-written PyTorch"]
    lines += ["## markovcat against hand-written PyTorch", "",
              f"Haar-symmetrised MLP (tanh, 250, 250, 250) on cov, d = 4, batch 100, 10 draws per example, Adam; "
              f"minimum over {rounds} interleaved rounds of {calls} steps.", "",
              "| model | ms per step | ratio to hand-written | target |", "|---|---:|---:|---|"]
    for name, seconds in times.items():
        ratio = seconds / hand
        mark = "" if name.startswith("hand") else f"<= {TARGET}: {'met' if ratio <= TARGET else 'MISSED'}"
        lines.append(f"| {name} | {seconds * 1e3:.1f} | {ratio:.3f} | {mark} |")
    lines += ["", "## The runner's step, per task, method and d (2 noise shards, batch 100, 10 draws)", "",
              f"Steps/s on one thread, mean over {steps} steps after 2 warm-up steps.", "",
              "| task | method | " + " | ".join(f"d = {d}" for d in CPU_DIMS) + " |",
              "|---|---|" + "---:|" * len(CPU_DIMS)]
    rates: dict[tuple[str, str, int], float] = {}
    for task_name in TASKS:
        for method in METHODS:
            for dim in CPU_DIMS:
                rates[(task_name, method, dim)] = step_rate(task_name, method, dim, steps)
            lines.append(f"| {task_name} | {method} | "
                         + " | ".join(f"{rates[(task_name, method, d)]:.1f}" for d in CPU_DIMS) + " |")
    costs = {(m, d): overhead(m, d) for m in METHODS for d in CPU_DIMS}
    lines += ["", "## Per-run cost besides training (cov: build, data, test evaluation, equivariance check)", "",
              "| method | " + " | ".join(f"d = {d} (s)" for d in CPU_DIMS) + " |", "|---|" + "---:|" * len(CPU_DIMS)]
    for m in METHODS:
        lines.append(f"| {m} | " + " | ".join(f"{costs[(m, d)]:.1f}" for d in CPU_DIMS) + " |")
    per_method_dim = {(m, d): len(TASKS) / sum(1 / rates[(t, m, d)] for t in TASKS) for m in METHODS for d in CPU_DIMS}
    mean_overhead = sum(costs.values()) / len(costs)
    runs = len(TASKS) * len(CPU_SEEDS)
    derived = budget(per_method_dim, runs, CORES, MINUTES, mean_overhead)
    total = sum(runs * (CPU_STEPS / s + mean_overhead) for s in per_method_dim.values()) / CORES / 60
    lines += ["", "## The CPU sweep's step budget", "",
              f"{len(TASKS)} tasks x {len(METHODS)} methods x d in {{{', '.join(map(str, CPU_DIMS))}}} x "
              f"{len(CPU_SEEDS)} seeds = "
              f"{runs * len(per_method_dim)} runs on {CORES} single-threaded workers (`--jobs {CORES}`), "
              f"{mean_overhead:.1f} s per run besides training: **{derived} steps** fill {MINUTES} minutes.  "
              f"The default (`CPU_STEPS`) is {CPU_STEPS}: about {total:.0f} minutes by these figures.",
              "", f"Load average at the end: {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores."]
    text = "\n".join(lines) + "\n"
    print(text)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(text)


if __name__ == "__main__":
    main()
