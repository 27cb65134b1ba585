"""The cost of symmetrisation over its bare backbone: eager on the CPU, compiled on a GPU, and the build time.

Two configurations, each model side by side with its bare backbone, interleaved in rounds in
one process (forward + backward, float32; a ratio is the median of the per-round ratios of the
two, with its quartiles):

* ``readme``: the README's network (``Flatten, Linear(48, 64), SiLU, Linear(64, 48),
  Unflatten``) on clouds of 16 points in R^3 under O(3), batch 256: ``mc.symmetrise`` with
  ``gamma="haar"``, ``"recursive"`` and ``"canonical"`` (one backbone call each) and
  ``mc.frame_average`` over the exact PCA frame (8 backbone calls, also per call);
* ``nbody``: the N-body contenders (:mod:`markovcat.experiments.nbody.models`, a 3-layer
  transformer of width 64 on 5 particles, batch 100) against their backbone alone.

Modes: ``eager``; ``compile`` (``torch.compile``, inductor) and ``reduce-overhead``
(``torch.compile(mode="reduce-overhead")``, CUDA graphs), where the bare backbone is compiled
in the same mode.  A model that fails to compile in a mode is reported with its error.  On
the CPU the time is the timing thread's CPU time (``time.thread_time``: other processes count
little) on one torch thread; on CUDA the wall time between synchronisations.

Also: the build time (the first ``mc.symmetrise`` of the README's model in a fresh process,
beside the same build with the dry run forced onto meta tensors, as before
``REAL_DRY_RUN_ENTRIES``); and on the CPU where the time goes: the aten operator calls per
step of each model, the Haar model rebuilt part by part, the small-matmul kernels and the
Haar samplers.

    python benchmarks/overhead.py [--quick]          # CPU, eager: benchmarks/results/overhead.md
    bash benchmarks/overhead_gpu.sh                  # one GPU, about 5 minutes: eager, compile, CUDA graphs
    python benchmarks/overhead.py --dry-run          # every path once, nothing timed (run by the tests)
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Mapping
from pathlib import Path

import torch
from overhead_parts import ablation_table, gamma_table, kernel_table, sampler_table  # benchmarks/: the script's
from timing import paired_ratio, timed_samples
from torch import Tensor, nn

import markovcat as mc
from markovcat.backends import torch as mct

N, D, HIDDEN, BATCH = 16, 3, 64, 256
NBODY_BATCH = 100
TARGETS = {"Haar-symmetrised": 1.5, "recursive-symmetrised": 1.5, "canonicalised": 2.0}
BUILD_TARGET = 0.5
MODES = ("eager", "compile", "reduce-overhead")
HERE = Path(__file__).parent

Step = Callable[[], None]


def readme_network() -> nn.Module:
    return nn.Sequential(nn.Flatten(1), nn.Linear(N * D, HIDDEN), nn.SiLU(), nn.Linear(HIDDEN, N * D),
                         nn.Unflatten(1, (N, D)))


def readme_models(device: str) -> tuple[nn.Module, list[tuple[str, int, nn.Module]], Tensor]:
    """The README's network, its symmetrised models ``(name, backbone calls, model)``, and inputs they all accept."""
    torch.manual_seed(0)
    net = readme_network()
    o3 = mct.Orthogonal(D)
    points = o3.points(N)
    models = [("Haar-symmetrised", 1, mc.symmetrise(net, o3, points, gamma="haar")),
              ("recursive-symmetrised", 1, mc.symmetrise(net, o3, points, gamma="recursive")),
              ("canonicalised", 1, mc.symmetrise(net, o3, points, gamma="canonical")),
              ("frame-averaged (exact frame)", 8, mc.frame_average(net, o3, points))]
    x = accepted_clouds([m for *_, m in models], BATCH)
    return net.to(device), [(name, calls, model.to(device)) for name, calls, model in models], x.to(device)


def accepted_clouds(models: list[nn.Module], batch: int) -> Tensor:
    """``batch`` standard Gaussian clouds that every model's input checks and frame checks accept."""
    kept: list[Tensor] = []
    while len(kept) < batch:
        for cloud in torch.randn(batch, N, D):
            try:
                with torch.no_grad():
                    for model in models:
                        model(cloud[None])
            except ValueError:
                continue
            kept.append(cloud[None])
    return torch.cat(kept[:batch])


def nbody_models(device: str) -> tuple[nn.Module, list[tuple[str, int, nn.Module]], Tensor]:
    """One N-body backbone, the contenders built on copies of it (same parameters), and systems."""
    from markovcat.experiments.nbody.models import build

    names = {"haar": "Haar-symmetrised", "recursive": "recursive-symmetrised", "canon": "canonicalised",
             "fa": "frame-averaged (exact frame)"}
    models: list[tuple[str, int, nn.Module]] = []
    backbone: nn.Module | None = None
    for method, name in names.items():
        module = build(method, seed=0).module
        backbone = backbone or next(m for m in module.modules() if type(m).__name__ == "TransformerBackbone")
        models.append((name, 8 if method == "fa" else 1, module.to(device)))
    g = torch.Generator().manual_seed(0)
    charges = torch.randint(0, 2, (NBODY_BATCH, 5, 1), generator=g).float() * 2 - 1
    x = torch.cat([torch.randn(NBODY_BATCH, 5, 6, generator=g), charges], dim=-1)
    assert backbone is not None
    return backbone.to(device), models, x.to(device)


def make_step(model: Callable[[Tensor], Tensor], x: Tensor, params: list[Tensor], graphs: bool) -> Step:
    def run() -> None:
        if graphs:
            torch.compiler.cudagraph_mark_step_begin()  # each step a new CUDA-graph generation
        model(x).square().mean().backward()
        for p in params:
            p.grad = None

    return run


def compiled(model: nn.Module, mode: str, dry: bool) -> Callable[[Tensor], Tensor]:
    if mode == "eager":
        return model
    if dry:  # the dry run traces with dynamo only: no inductor, no CUDA graphs
        return torch.compile(model, backend="eager")  # type: ignore[return-value]
    return torch.compile(model, mode=None if mode == "compile" else mode)  # type: ignore[return-value]


def cuda_samples(variants: Mapping[str, Step], rounds: int, calls: int, warmup: int) -> dict[str, list[float]]:
    """Per round, wall seconds per call of each variant between synchronisations (interleaved, order alternating)."""
    for run in variants.values():
        for _ in range(warmup):
            run()
    torch.cuda.synchronize()
    samples: dict[str, list[float]] = {name: [] for name in variants}
    order = list(variants.items())
    for index in range(rounds):
        for name, run in order if index % 2 == 0 else order[::-1]:
            torch.cuda.synchronize()
            start = time.perf_counter()
            for _ in range(calls):
                run()
            torch.cuda.synchronize()
            samples[name].append((time.perf_counter() - start) / calls)
    return samples


def ratio_table(config: str, mode: str, device: str, rounds: int, calls: int,
                dry: bool) -> tuple[str, dict[str, float]]:
    """The Markdown rows of one configuration in one mode, and each model's median ratio per backbone call."""
    bare, models, x = (readme_models if config == "readme" else nbody_models)(device)
    if dry and mode != "eager":
        models = models[:1]  # the compiled modes' code path, once (dynamo alone: every model is seconds)
    graphs = mode == "reduce-overhead" and not dry
    failures: list[tuple[str, str]] = []
    variants: dict[str, Step] = {}
    for name, module in [("bare backbone", bare)] + [(name, model) for name, _, model in models]:
        step = make_step(compiled(module, mode, dry), x, list(module.parameters()), graphs)
        try:
            for _ in range(1 if dry else 3):  # compiles, records the CUDA graphs: outside the timed rounds
                step()
        except Exception as error:  # noqa: BLE001 - reported as the row
            if name == "bare backbone":
                raise
            failures.append((name, f"{type(error).__name__}: {(str(error).splitlines() or [''])[0][:160]}"))
            continue
        variants[name] = step
    if device == "cuda":
        samples = cuda_samples(variants, rounds, calls, warmup=2)
    else:
        samples = timed_samples(variants, rounds, calls, warmup=1 if dry else 3)
    lines, ratios = [], {}
    for name, calls_of_backbone, _ in models:
        if name not in samples:
            continue
        median, low, high = paired_ratio(samples, name, "bare backbone")
        ratios[name] = median / calls_of_backbone
        target = TARGETS.get(name)
        verdict = "" if target is None or config != "readme" or mode != "eager" or dry else (
            f"<= {target}: {'met' if ratios[name] <= target else 'MISSED'}")
        lines.append(f"| {config} | {mode} | {name} | {1e6 * statistics.median(samples[name]):.0f} "
                     f"| {1e6 * statistics.median(samples['bare backbone']):.0f} | {median:.3f} | {low:.3f} to "
                     f"{high:.3f} | {median / calls_of_backbone:.3f} | {verdict} |")
    lines += [f"| {config} | {mode} | {name} | failed: {why} | | | | | |" for name, why in failures]
    return "\n".join(lines) + "\n", ratios


BUILD_SCRIPT = """
import sys, time
wall, cpu = time.perf_counter(), time.process_time()
import torch
import markovcat as mc
from markovcat.backends import torch as mct
from markovcat.backends.torch import checks
if sys.argv[1] == "meta":
    checks.REAL_DRY_RUN_ENTRIES = -1  # every dry run on meta tensors, as before the real dry run
imported, imported_cpu = time.perf_counter(), time.process_time()
net = torch.nn.Sequential(torch.nn.Flatten(1), torch.nn.Linear(48, 64), torch.nn.SiLU(),
                          torch.nn.Linear(64, 48), torch.nn.Unflatten(1, (16, 3)))
O3 = mct.Orthogonal(3)
model = mc.symmetrise(net, group=O3, input=O3.points(16), gamma="recursive")
built, built_cpu = time.perf_counter(), time.process_time()
mc.symmetrise(net, group=O3, input=O3.points(16), gamma="recursive")
again = time.perf_counter()
print(imported - wall, built - imported, built_cpu - imported_cpu, again - built, int("torch._dynamo" in sys.modules))
"""


def build_times(runs: int, kinds: tuple[str, ...] = ("real", "meta")) -> tuple[str, float]:
    """Fresh processes building the README's model: the real dry run against the meta one, interleaved."""
    results: dict[str, list[list[float]]] = {kind: [] for kind in kinds}
    environment = {**os.environ, "OMP_NUM_THREADS": "1"}
    for _ in range(runs):
        for kind in results:
            out = subprocess.run([sys.executable, "-c", BUILD_SCRIPT, kind], capture_output=True, text=True,
                                 check=True, timeout=600, env=environment)
            results[kind].append([float(v) for v in out.stdout.split()])
    lines = ["| dry run | import torch + markovcat (s) | first build, wall (s) | first build, process CPU (s) "
             "| second build (s) | torch._dynamo loaded |", "|---|---|---|---|---|---|"]
    for kind, label in (("real", "two random examples (now)"), ("meta", "meta tensors (before)")):
        if kind not in results:
            continue
        medians = [statistics.median(run[i] for run in results[kind]) for i in range(4)]
        loaded = "yes" if any(run[4] for run in results[kind]) else "no"
        lines.append(f"| {label} | {medians[0]:.2f} | {medians[1]:.3f} | {medians[2]:.3f} | {medians[3]:.3f} "
                     f"| {loaded} |")
    return "\n".join(lines) + "\n", statistics.median(run[1] for run in results["real"])


def operator_counts(steps: int) -> str:
    """aten operator calls per forward + backward step (torch.profiler; nested calls included): load-independent."""
    from torch.profiler import ProfilerActivity, profile

    bare, models, x = readme_models("cpu")
    lines = ["| model | aten calls per step | beyond the bare backbone | the most frequent beyond it |",
             "|---|---|---|---|"]
    counts: dict[str, dict[str, int]] = {}
    for name, module in [("bare backbone", bare)] + [(name, model) for name, _, model in models]:
        step = make_step(module, x, list(module.parameters()), False)
        step()
        with profile(activities=[ProfilerActivity.CPU]) as prof:
            for _ in range(steps):
                step()
        counts[name] = {e.key: e.count // steps for e in prof.key_averages() if e.key.startswith("aten::")}
    base = counts["bare backbone"]
    for name, ops in counts.items():
        extra = {op: n - base.get(op, 0) for op, n in ops.items() if n > base.get(op, 0)}
        most = sorted(extra.items(), key=lambda kv: -kv[1])[:6]
        top = ", ".join(f"{op.removeprefix('aten::')} {n}" for op, n in most)
        lines.append(f"| {name} | {sum(ops.values())} | {sum(ops.values()) - sum(base.values()):+d} | {top} |")
    return "\n".join(lines) + "\n"


def header(device: str, rounds: int, calls: int) -> str:
    if device == "cuda":
        where = f"{torch.cuda.get_device_name()}, CUDA {torch.version.cuda}; wall time between synchronisations"
    else:
        where = (f"{platform.processor() or platform.machine()}, {torch.get_num_threads()} thread; CPU time of the "
                 "timing thread")
    return (f"torch {torch.__version__}, {where}; median over {rounds} interleaved rounds of {calls} steps; load "
            f"average at the end {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores.\n\n")


RATIO_HEADER = ("| configuration | mode | model | us per step | bare us per step | ratio to bare (median) "
                "| quartiles | per backbone call | target |\n|---|---|---|---|---|---|---|---|---|\n")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cpu", choices=("cpu", "cuda"))
    parser.add_argument("--modes", default=None, help=f"comma-separated, of {', '.join(MODES)} "
                                                      "(default: eager on the CPU, all three on CUDA)")
    parser.add_argument("--configs", default="readme,nbody")
    parser.add_argument("--rounds", type=int, default=None)
    parser.add_argument("--quick", action="store_true", help="fewer rounds (a smoke run)")
    parser.add_argument("--dry-run", action="store_true", help="every path once, nothing timed, no tables written "
                        "unless --out; compiled modes traced by dynamo alone (backend='eager')")
    parser.add_argument("--build-runs", type=int, default=None, help="fresh processes timing the build "
                        "(default 7, 3 with --quick, 1 in the dry run; 0: no build table)")
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    modes = (args.modes or ("eager" if args.device == "cpu" else ",".join(MODES))).split(",")
    if unknown := set(modes) - set(MODES):
        parser.error(f"unknown modes {sorted(unknown)}")
    if args.device == "cuda" and not torch.cuda.is_available():
        parser.error("--device cuda, but torch sees no CUDA device")
    rounds = 1 if args.dry_run else args.rounds or (7 if args.quick else 41 if args.device == "cpu" else 21)
    calls = 1 if args.dry_run else 3 if args.device == "cpu" else 10
    text = ("## Ratios to the bare backbone\n\n" + ("Dry run: every path once; the figures are not timings.\n\n"
                                                     if args.dry_run else header(args.device, rounds, calls))
            + RATIO_HEADER)
    out = args.out or (None if args.dry_run else HERE / "results" / (
        "overhead.md" if args.device == "cpu" else "overhead_gpu.md"))

    def write(text: str) -> None:  # after every table: a run stopped by its time limit keeps what it measured
        if out is not None:
            out.parent.mkdir(parents=True, exist_ok=True)
            out.write_text("# The overhead of symmetrisation over the bare backbone\n\n" + text)

    for config in args.configs.split(","):
        for mode in modes:
            rows, _ = ratio_table(config, mode, args.device, rounds, calls, args.dry_run)
            text += rows
            print(rows, end="", flush=True)
            write(text)
    runs = args.build_runs if args.build_runs is not None else 1 if args.dry_run else 3 if args.quick else 7
    build_md, build = build_times(runs, ("real",) if args.dry_run else ("real", "meta")) if runs else ("", 0.0)
    if runs:
        text += ("\n## Build time: the first `mc.symmetrise` of the README's model in a fresh process\n\n"
                 f"Median over fresh processes, alternating; target < {BUILD_TARGET} s: "
                 f"{'met' if build < BUILD_TARGET else 'MISSED'} ({build:.3f} s).\n\n" + build_md)
    if args.device == "cpu":
        quick = args.quick or args.dry_run
        text += ("\n## Where the time goes (CPU, the README's configuration)\n\naten operator calls per step "
                 "(torch.profiler, nested calls included):\n\n" + operator_counts(1 if quick else 5))
        if not args.dry_run:
            text += ("\nThe Haar model rebuilt part by part (each row adds one part; thread CPU time, interleaved):"
                     "\n\n" + ablation_table(readme_network(), rounds, calls)
                     + "\nThe recursive and the canonical gammas alone:\n\n"
                     + gamma_table(readme_network(), rounds, calls)
                     + "\nsmall_matmul against torch.matmul for (B, 16, d) @ (B, d, d) (see "
                     "markovcat.backends.torch.groups.small_matmul):\n\n" + kernel_table(max(5, rounds // 3), 5)
                     + "\nHaar samplers, closed forms against the QR path:\n\n" + sampler_table(rounds, 5))
    print(text)
    write(text)


if __name__ == "__main__":
    main()

