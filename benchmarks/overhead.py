"""The cost of symmetrisation over the bare backbone, and the small-matrix kernels behind it.

The README's configuration: a 2-layer MLP (width 64) on clouds of 16 points in R^3 under
O(3), batch 256, forward + backward, float32 on the CPU, one torch thread.  Side by side,
interleaved in rounds in one process:

* the bare backbone;
* ``mc.symmetrise(..., gamma="haar")`` (one backbone call);
* ``mc.symmetrise(..., gamma="canonical")`` (one backbone call);
* ``mc.frame_average`` over the exact PCA frame (8 backbone calls for O(3); also per backbone call);

each with the input validation on and off where the model offers an opt-out
(``validate=False`` at construction, and ``model.validate = False`` when the compiled model
has that attribute), and each once more with the point actions through ``torch.matmul``
(the formulation before :func:`markovcat.backends.torch.groups.small_matmul`), and the Haar model once more
with its draws by the sign-fixed QR (``haar_orthogonal(..., method="qr")``, the sampler before the closed
forms).  Target: at most 1.5x the bare backbone for a model with one backbone call.

Then the kernel table behind :data:`~markovcat.backends.torch.groups.SMALL_MATMUL_DIM` and
:data:`~markovcat.backends.torch.groups.SMALL_MATMUL_BATCH`: ``small_matmul`` against
``torch.matmul`` for ``(B, 16, d) @ (B, d, d)``, forward and forward + backward; and the
Haar samplers, closed forms against QR.

Times are CPU time of the timing thread (``time.thread_time``: other processes on a shared
machine do not count), per call; each figure is the minimum over interleaved rounds, the
order of variants alternating.  Where the target is missed, a ``torch.profiler`` table of
the Haar model's top operators says where the time goes.

    python benchmarks/overhead.py [--quick]

Prints Markdown and writes it to ``benchmarks/results/overhead.md``.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import platform
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import torch
from timing import timed_rounds as shared_timed_rounds  # benchmarks/ is the script's folder
from torch import Tensor, nn

import markovcat as mc
from markovcat.backends import torch as mct
from markovcat.backends.torch import groups as torch_groups
from markovcat.experiments.examples import PointMLP

N, D, HIDDEN, BATCH, FRAME = 16, 3, 64, 256, 8
TARGET = 1.5


@contextlib.contextmanager
def matmul_only() -> Iterator[None]:
    """The O(d) point actions through ``torch.matmul`` again, as before ``small_matmul`` (benchmark use only)."""
    saved = torch_groups.small_matmul
    torch_groups.small_matmul = torch.matmul  # looked up by the point actions at each call
    try:
        yield
    finally:
        torch_groups.small_matmul = saved


@contextlib.contextmanager
def qr_sampler() -> Iterator[None]:
    """Haar draws on O(d) by the sign-fixed QR again, as before the closed forms (benchmark use only)."""
    saved = torch_groups.haar_orthogonal

    def qr(batch: int, d: int, generator: torch.Generator | None = None, dtype: torch.dtype | None = None,
           device: torch.device | str = "cpu", special: bool = False) -> Tensor:
        return saved(batch, d, generator, dtype, device, special, method="qr")

    torch_groups.haar_orthogonal = qr  # looked up by Orthogonal.sample at each call
    try:
        yield
    finally:
        torch_groups.haar_orthogonal = saved


def timed_rounds(variants: Mapping[str, Callable[[], None]], rounds: int, calls: int) -> dict[str, float]:
    """Minimum over rounds of the mean thread CPU seconds per call; variants interleaved, order alternating.

    The minimum (as ``timeit`` advises): on a shared machine the median of one variant can
    double between runs, the minimum is the least disturbed round.
    """
    return shared_timed_rounds(variants, rounds, calls, warmup=3)


def step(model: Callable[[Tensor], Tensor], x: Tensor, params: Sequence[Tensor], fast: bool = True,
         qr: bool = False) -> None:
    with contextlib.nullcontext() if fast else matmul_only(), qr_sampler() if qr else contextlib.nullcontext():
        model(x).square().mean().backward()
    for p in params:
        p.grad = None


def without_validation(build: Callable[..., nn.Module]) -> tuple[nn.Module | None, str]:
    """The model built with every validation opt-out it offers, and which ones those were."""
    used = []
    try:
        model = build(validate=False)
        used.append("validate=False")
    except TypeError:  # no such keyword
        model = build()
    if hasattr(model, "validate"):
        with contextlib.suppress(AttributeError, TypeError):
            setattr(model, "validate", False)  # noqa: B010
            used.append("model.validate = False")
    return (model, ", ".join(used)) if used else (None, "no opt-out")


def models(mlp: nn.Module) -> list[tuple[str, int, Callable[..., nn.Module]]]:
    o3 = mct.Orthogonal(D)
    points = o3.points(N)

    def haar(**kw: Any) -> nn.Module:
        return mc.symmetrise(mlp, o3, points, gamma="haar", **kw)

    def canonical(**kw: Any) -> nn.Module:
        return mc.symmetrise(mlp, o3, points, gamma="canonical", **kw)

    def frame(**kw: Any) -> nn.Module:
        return mc.frame_average(mlp, o3, points, **kw)

    return [("Haar-symmetrised", 1, haar), ("canonicalised", 1, canonical),
            (f"frame-averaged (exact frame, {FRAME} elements)", FRAME, frame)]


def accepted_clouds(models: list[nn.Module], batch: int) -> tuple[Tensor, int]:
    """``batch`` standard Gaussian clouds that every model's input validation accepts, and how many were refused.

    (The validating canonicaliser refuses clouds whose float32 frame it cannot vouch for.)
    """
    kept: list[Tensor] = []
    refused = 0
    while sum(len(k) for k in kept) < batch:
        for cloud in torch.randn(batch, N, D):
            try:
                with torch.no_grad():
                    for model in models:
                        model(cloud[None])
            except ValueError:
                refused += 1
                continue
            kept.append(cloud[None])
    return torch.cat(kept)[:batch], refused


def model_table(rounds: int, calls: int) -> tuple[str, dict[str, float], nn.Module, int]:
    torch.manual_seed(0)
    mlp = PointMLP(N, D, HIDDEN)
    params = list(mlp.parameters())
    built = [(what, calls_of_backbone, build, build()) for what, calls_of_backbone, build in models(mlp)]
    x, refused = accepted_clouds([on for *_, on in built], BATCH)
    variants: dict[str, Callable[[], None]] = {"bare": lambda: step(mlp, x, params)}
    rows: list[tuple[str, str, int, str]] = []
    haar_model: nn.Module | None = None
    for what, calls_of_backbone, build, on in built:
        haar_model = haar_model or on
        kernel_variants = [("small_matmul", True, False), ("torch.matmul (before)", False, False)]
        if calls_of_backbone == 1 and "Haar" in what:
            kernel_variants.append(("small_matmul, QR sampler (before)", True, True))
        for kernels, fast, qr in kernel_variants:
            key = f"{what}|on|{kernels}"
            variants[key] = lambda m=on, f=fast, q=qr: step(m, x, params, f, q)  # type: ignore[misc]
            rows.append((key, "on", calls_of_backbone, kernels))
        off, how = without_validation(build)
        if off is not None:
            key = f"{what}|off|small_matmul"
            variants[key] = lambda m=off: step(m, x, params)  # type: ignore[misc]
            rows.append((key, f"off ({how})", calls_of_backbone, "small_matmul"))
    t = timed_rounds(variants, rounds, calls)
    bare = t["bare"]
    lines = ["| model | validation | kernels | us per step | ratio to bare | per backbone call | target |",
             "|---|---|---|---|---|---|---|",
             f"| bare backbone | - | - | {bare * 1e6:.0f} | 1.000 | 1.000 | |"]
    for key, validation, backbone_calls, kernels in rows:
        what = key.split("|")[0]
        ratio = t[key] / bare
        per_call = ratio / backbone_calls
        target = f"<= {TARGET}: {'met' if per_call <= TARGET else 'MISSED'}"
        lines.append(f"| {what} | {validation} | {kernels} | {t[key] * 1e6:.0f} | {ratio:.3f} | {per_call:.3f} "
                     f"| {target} |")
    assert haar_model is not None
    return "\n".join(lines) + "\n", {k: v / bare for k, v in t.items()}, haar_model, refused


def inference(model: Callable[[Tensor], Tensor], x: Tensor, fast: bool = True) -> None:
    with torch.no_grad(), contextlib.nullcontext() if fast else matmul_only():
        model(x)


def inference_table(haar: nn.Module, rounds: int, calls: int) -> str:
    """Forward passes without gradients (where the elementwise kernels run for both actions)."""
    torch.manual_seed(0)
    mlp = next(m for m in haar.modules() if isinstance(m, PointMLP))
    x = torch.randn(BATCH, N, D)
    t = timed_rounds({"bare": lambda: inference(mlp, x), "fast": lambda: inference(haar, x),
                      "before": lambda: inference(haar, x, False)}, rounds, calls)
    return ("| model (forward, no gradient) | kernels | us per call | ratio to bare |\n|---|---|---|---|\n"
            f"| bare backbone | - | {t['bare'] * 1e6:.0f} | 1.000 |\n"
            f"| Haar-symmetrised | small_matmul | {t['fast'] * 1e6:.0f} | {t['fast'] / t['bare']:.3f} |\n"
            f"| Haar-symmetrised | torch.matmul (before) | {t['before'] * 1e6:.0f} | {t['before'] / t['bare']:.3f} |\n")


def sampler_table(rounds: int, calls: int) -> str:
    """Haar draws of a batch: the closed forms (d = 2, 3) against the sign-fixed QR path they replaced."""
    from markovcat.backends.torch.linalg import haar_orthogonal

    lines = ["| group | closed form (us) | QR path, before (us) | ratio |", "|---|---|---|---|"]
    for d, special in ((3, False), (3, True), (2, False)):
        t = timed_rounds({"new": lambda d=d, s=special: haar_orthogonal(BATCH, d, special=s),  # type: ignore[misc]
                          "qr": lambda d=d, s=special: haar_orthogonal(BATCH, d, special=s,  # type: ignore[misc]
                                                                       method="qr")}, rounds, calls)
        name = f"{'SO' if special else 'O'}({d})"
        new, qr = t["new"], t["qr"]
        lines.append(f"| {name}, batch {BATCH} | {new * 1e6:.0f} | {qr * 1e6:.0f} | {new / qr:.2f} |")
    return "\n".join(lines) + "\n"


def _forward(f: Callable[[Tensor, Tensor], Tensor], a: Tensor, b: Tensor) -> Callable[[], None]:
    def run() -> None:
        with torch.no_grad():
            f(a, b)
    return run


def _both(f: Callable[[Tensor, Tensor], Tensor], a: Tensor, b: Tensor, grad: Tensor) -> Callable[[], None]:
    def run() -> None:
        f(a, b).backward(grad)
        a.grad = None
    return run


def kernel_table(rounds: int, calls: int) -> str:
    lines = ["| B | d | forward: matmul (us) | forward: small_matmul (us) | ratio | fwd+bwd: matmul (us) "
             "| fwd+bwd: elementwise through autograd (us) | ratio | small_matmul's kernel: no grad / grad |",
             "|---|---|---|---|---|---|---|---|---|"]
    cases = [(BATCH, d) for d in (2, 3, 4, 5, 6, 8, 12)] + [(b, D) for b in (8, 32, 64, 1024)]
    for batch, d in cases:
        a = torch.randn(batch, N, d, requires_grad=True)
        b = torch.randn(batch, d, d)
        grad = torch.randn(batch, N, d)

        t = timed_rounds({"mf": _forward(torch.matmul, a, b), "sf": _forward(torch_groups.small_matmul, a, b),
                          "mb": _both(torch.matmul, a, b, grad),
                          "sb": _both(torch_groups.elementwise_matmul, a, b, grad)}, rounds, calls)
        fast = d <= torch_groups.SMALL_MATMUL_DIM and batch >= torch_groups.SMALL_MATMUL_BATCH
        lines.append(f"| {batch} | {d} | {t['mf'] * 1e6:.0f} | {t['sf'] * 1e6:.0f} | {t['sf'] / t['mf']:.2f} "
                     f"| {t['mb'] * 1e6:.0f} | {t['sb'] * 1e6:.0f} | {t['sb'] / t['mb']:.2f} "
                     f"| {'elementwise' if fast else 'bmm'} / bmm |")
    return "\n".join(lines) + "\n"


def ablation_table(haar: nn.Module, rounds: int, calls: int) -> str:
    """The Haar model's step rebuilt part by part by hand; each row's increment is that part's cost."""
    torch.manual_seed(0)
    mlp = next(m for m in haar.modules() if isinstance(m, PointMLP))
    params = list(mlp.parameters())
    x = torch.randn(BATCH, N, D)
    o3 = mct.Orthogonal(D)

    def bare() -> None:
        step(mlp, x, params)

    def sampled() -> None:
        o3.sample(BATCH, None, x.dtype)
        step(mlp, x, params)

    def first_action() -> None:
        g = o3.sample(BATCH, None, x.dtype)
        step(mlp, torch_groups.small_matmul(x, g), params)

    def both_actions() -> None:
        g = o3.sample(BATCH, None, x.dtype)
        torch_groups.small_matmul(mlp(torch_groups.small_matmul(x, g)), g.transpose(-1, -2)).square().mean().backward()
        for p in params:
            p.grad = None

    def compiled() -> None:
        step(haar, x, params)

    parts = {"bare backbone": bare, "+ Haar sample (O(3).sample)": sampled,
             "+ input action x g (no gradient: small_matmul)": first_action,
             "+ output action y g^T (with gradient: bmm, forward and backward)": both_actions,
             "the compiled Haar model (validation on)": compiled}
    t = timed_rounds(parts, rounds, calls)
    lines = ["| step | us per step | increment (us) | ratio to bare |", "|---|---|---|---|"]
    previous = None
    for name in parts:
        increment = "" if previous is None else f"{(t[name] - t[previous]) * 1e6:+.0f}"
        lines.append(f"| {name} | {t[name] * 1e6:.0f} | {increment} | {t[name] / t['bare backbone']:.3f} |")
        previous = name
    return "\n".join(lines) + "\n"


def profile_table(model: nn.Module, steps: int) -> str:
    from torch.profiler import ProfilerActivity, profile

    torch.manual_seed(0)
    x = torch.randn(BATCH, N, D)
    params = list(model.parameters())
    for _ in range(3):
        step(model, x, params)
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        for _ in range(steps):
            step(model, x, params)
    table = prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=15)
    return f"```\n{table}\n```\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer rounds (a smoke run)")
    args = parser.parse_args()
    torch.set_num_threads(1)
    rounds, calls = (5, 2) if args.quick else (31, 2)
    models_md, ratios, haar, refused = model_table(rounds, calls)
    print(models_md, flush=True)
    inference_md = inference_table(haar, rounds, calls * 2)
    print(inference_md, flush=True)
    kernels_md = kernel_table(max(5, rounds // 2), 5)
    print(kernels_md, flush=True)
    samplers_md = sampler_table(rounds, 5)
    print(samplers_md, flush=True)
    current = {k: v for k, v in ratios.items() if "|" in k and "small_matmul" in k and "before" not in k}
    one_call = [v for k, v in current.items() if "frame" not in k]
    frame = [v / FRAME for k, v in current.items() if "frame" in k]
    worst = max(one_call + frame)
    header = (
        f"torch {torch.__version__}, {platform.processor() or platform.machine()}, {torch.get_num_threads()} "
        f"thread(s); {HIDDEN}-wide 2-layer MLP on {N} points in R^{D} under O(3), batch {BATCH}, float32, forward + "
        f"backward; thread CPU time, minimum over {rounds} interleaved rounds of {calls} steps.  Inputs: standard "
        f"Gaussian clouds that every validating model accepts ({refused} drawn clouds refused and replaced).  "
        f"Load average at the end: {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores (other processes shift "
        "figures between runs by a few percent even as minima; compare rows of one run).\n\n"
    )
    verdict = (f"Target (<= {TARGET}x the bare backbone per backbone call, small_matmul kernels): "
               f"{'met' if worst <= TARGET else 'MISSED'}, worst {worst:.2f}x.\n\n")
    text = "## Models\n\n" + header + models_md + "\n" + verdict + "## Inference\n\n" + inference_md + "\n"
    text += ("## Kernels: small_matmul and the elementwise form against torch.matmul, (B, 16, d) @ (B, d, d)\n\n"
             f"small_matmul's rule: the elementwise form where d <= SMALL_MATMUL_DIM = "
             f"{torch_groups.SMALL_MATMUL_DIM}, "
             f"B >= SMALL_MATMUL_BATCH = {torch_groups.SMALL_MATMUL_BATCH} and no gradient is recorded; "
             "torch.bmm otherwise (for 3-d factors of equal batch). Forward: no gradient (small_matmul's own choice). "
             "fwd+bwd: the gradient with respect to the left factor, with the elementwise form through autograd "
             "(why small_matmul keeps bmm when a gradient is recorded).\n\n"
             + kernels_md)
    text += ("\n## Haar samplers: closed forms against the QR path\n\n``haar_orthogonal``: a uniform unit quaternion "
             "for SO(3) (times a random sign for O(3)), a Gaussian direction for O(2); ``method=\"qr\"`` is the "
             "sign-fixed QR of a Gaussian matrix used before.\n\n" + samplers_md)
    if worst > TARGET:
        text += ("\n## Where the time goes: the Haar-symmetrised model\n\nBuilt up part by part (thread CPU time, "
                 "interleaved as above):\n\n" + ablation_table(haar, rounds, calls)
                 + "\nTop operators by self CPU time (torch.profiler, wall clock: inflated on a loaded machine, "
                 "the shares are what to read):\n\n" + profile_table(haar, 10 if args.quick else 50))
    print(text)
    out = Path(__file__).parent / "results" / "overhead.md"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text("# The overhead of symmetrisation over the bare backbone\n\n" + text)


if __name__ == "__main__":
    main()
