"""The CPU tables behind ``overhead.py``'s "where the time goes": the Haar model part by part, kernels, samplers.

Times are the timing thread's CPU time, median over interleaved rounds (see ``timing.py``).
"""

from __future__ import annotations

import statistics
from collections.abc import Callable, Mapping

import torch
from timing import timed_samples  # benchmarks/ is the script's folder
from torch import Tensor, nn

import markovcat as mc
from markovcat.backends import torch as mct
from markovcat.backends.torch import groups as torch_groups
from markovcat.backends.torch.linalg import haar_orthogonal

N, D, BATCH = 16, 3, 256


def medians(variants: Mapping[str, Callable[[], None]], rounds: int, calls: int) -> dict[str, float]:
    return {k: statistics.median(v) for k, v in timed_samples(variants, rounds, calls, warmup=3).items()}


def ablation_table(net: nn.Module, rounds: int, calls: int) -> str:
    """The Haar model's step rebuilt part by part by hand; each row's increment is that part's cost."""
    torch.manual_seed(0)
    params = list(net.parameters())
    x = torch.randn(BATCH, N, D)
    o3 = mct.Orthogonal(D)
    haar = mc.symmetrise(net, o3, o3.points(N), gamma="haar")
    unchecked = mc.symmetrise(net, o3, o3.points(N), gamma="haar", validate=False)

    def finish(y: Tensor) -> None:
        y.square().mean().backward()
        for p in params:
            p.grad = None

    def sampled() -> None:
        o3.sample(BATCH, None, x.dtype)
        finish(net(x))

    def first_action() -> None:
        g = o3.sample(BATCH, None, x.dtype)
        finish(net(torch_groups.small_matmul(x, g)))

    def both_actions() -> None:
        g = o3.sample(BATCH, None, x.dtype)
        finish(torch_groups.small_matmul(net(torch_groups.small_matmul(x, g)), g.transpose(-1, -2)))

    parts = {"bare backbone": lambda: finish(net(x)), "+ Haar sample (O(3).sample)": sampled,
             "+ input action x g (no gradient: small_matmul's elementwise kernel)": first_action,
             "+ output action y g^T (with gradient: bmm, forward and backward)": both_actions,
             "the compiled Haar model, validate=False": lambda: finish(unchecked(x)),
             "the compiled Haar model (input checks on)": lambda: finish(haar(x))}
    t = medians(parts, rounds, calls)
    lines = ["| step | us per step | increment (us) | ratio to bare |", "|---|---|---|---|"]
    previous = None
    for name in parts:
        increment = "" if previous is None else f"{(t[name] - t[previous]) * 1e6:+.0f}"
        lines.append(f"| {name} | {t[name] * 1e6:.0f} | {increment} | {t[name] / t['bare backbone']:.3f} |")
        previous = name
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
    """small_matmul and the elementwise form through autograd against torch.matmul, (B, 16, d) @ (B, d, d)."""
    lines = ["| B | d | forward: matmul (us) | forward: small_matmul (us) | ratio | fwd+bwd: matmul (us) "
             "| fwd+bwd: elementwise through autograd (us) | ratio |", "|---|---|---|---|---|---|---|---|"]
    for batch, d in [(BATCH, d) for d in (2, 3, 4, 8)] + [(b, D) for b in (32, 64, 1024)]:
        a = torch.randn(batch, N, d, requires_grad=True)
        b = torch.randn(batch, d, d)
        grad = torch.randn(batch, N, d)
        t = medians({"mf": _forward(torch.matmul, a, b), "sf": _forward(torch_groups.small_matmul, a, b),
                     "mb": _both(torch.matmul, a, b, grad),
                     "sb": _both(torch_groups.elementwise_matmul, a, b, grad)}, rounds, calls)
        lines.append(f"| {batch} | {d} | {t['mf'] * 1e6:.0f} | {t['sf'] * 1e6:.0f} | {t['sf'] / t['mf']:.2f} "
                     f"| {t['mb'] * 1e6:.0f} | {t['sb'] * 1e6:.0f} | {t['sb'] / t['mb']:.2f} |")
    return "\n".join(lines) + "\n"


def sampler_table(rounds: int, calls: int) -> str:
    """Haar draws of a batch: the closed forms (d = 2, 3) against the sign-fixed QR path."""
    lines = ["| group | closed form (us) | QR path (us) | ratio |", "|---|---|---|---|"]
    for d, special in ((3, False), (3, True), (2, False)):
        t = medians({"new": lambda d=d, s=special: haar_orthogonal(BATCH, d, special=s),  # type: ignore[misc]
                     "qr": lambda d=d, s=special: haar_orthogonal(BATCH, d, special=s,  # type: ignore[misc]
                                                                  method="qr")}, rounds, calls)
        lines.append(f"| {'SO' if special else 'O'}({d}), batch {BATCH} | {t['new'] * 1e6:.0f} | {t['qr'] * 1e6:.0f} "
                     f"| {t['new'] / t['qr']:.2f} |")
    return "\n".join(lines) + "\n"


def gamma_table(net: nn.Module, rounds: int, calls: int) -> str:
    """What the recursive and the canonical gammas cost alone, against the bare backbone's step."""
    from markovcat.backends.torch.frames import PCACanonicaliser
    from markovcat.backends.torch.linalg import orthonormalise

    torch.manual_seed(0)
    params = list(net.parameters())
    x = torch.randn(BATCH, N, D)
    o3 = mct.Orthogonal(D)
    recursive = mc.symmetrise(net, o3, o3.points(N), gamma="recursive")
    network = next(m for m in recursive.children() if m is not net)  # the gamma's f: (x, eps) -> O(3)
    gamma_params = list(network.parameters())
    eps = torch.randn(BATCH, D, D)
    raw = torch.randn(BATCH, D, D, requires_grad=True)
    gram = x.mT @ x

    def backbone() -> None:
        net(x).square().mean().backward()
        for p in params:
            p.grad = None

    def gamma_network() -> None:
        network(x, eps).square().mean().backward()
        for p in gamma_params:
            p.grad = None

    def projection() -> None:
        orthonormalise(raw).square().mean().backward()
        raw.grad = None

    checked, unchecked = PCACanonicaliser(), PCACanonicaliser(validate=False)
    parts = {"bare backbone, forward + backward": backbone,
             "recursive gamma's network f(x, eps), forward + backward (QR projection included)": gamma_network,
             "its projection onto O(3) alone: orthonormalise (LAPACK QR, sign fix), forward + backward": projection,
             "canonical gamma: PCACanonicaliser, forward (checks on)": lambda: checked(x),
             "PCACanonicaliser, validate=False, forward": lambda: unchecked(x),
             "its core alone: torch.linalg.eigh of 256 3 x 3 Gram matrices": lambda: torch.linalg.eigh(gram)}
    t = medians(parts, rounds, calls)
    lines = ["| part | us per call | ratio to the bare backbone's step |", "|---|---|---|"]
    lines += [f"| {name} | {t[name] * 1e6:.0f} | {t[name] / t['bare backbone, forward + backward']:.2f} |"
              for name in parts]
    return "\n".join(lines) + "\n"
