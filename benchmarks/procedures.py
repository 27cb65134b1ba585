"""Throughput of each named procedure (markovcat.backends.torch.procedures) against the same procedure written by hand.

Models (CPU, float32, one thread): a 2-layer MLP (width 64) on clouds of 16 points in
R^3 under O(3), or on sets of 5 points in R^2 under S_5 (Janossy).  For each
procedure: forward + backward at batch 256, the compiled module against a plain-PyTorch
version using the very same parameters and the same batched algorithm, with a
"hand-written / itself" row as the noise floor of a ratio.  Then the approach of the
public reference code where it differs: averaging in a Python loop over frame
elements, samples or permutations, against the one batched pass used here.

All variants of one procedure run interleaved in rounds in one process; each figure
is the median over rounds of the mean time per call within a round, timed by the CPU time
of the (single) benchmarking thread, so that other processes on a shared machine
disturb the figures less than they would wall-clock time.

Then the training demo (:mod:`markovcat.experiments.demo.training`, a fixed number of steps, about 10 s):
test errors of the plain MLP and of its stochastic symmetrisation on covariance estimation.

    python benchmarks/procedures.py [--quick] [--no-demo]

Prints Markdown tables and writes them to ``benchmarks/results/procedures.md``.
"""

from __future__ import annotations

import argparse
import itertools
import platform
import statistics
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import torch
from timing import timed_rounds as shared_timed_rounds  # benchmarks/ is the script's folder
from torch import Tensor, nn

from markovcat.backends import torch as mct
from markovcat.backends.torch import procedures as P
from markovcat.experiments.examples import PointMLP

N, D, HIDDEN, BATCH, SAMPLES = 16, 3, 64, 256, 8


def qr_fixed(m: Tensor) -> Tensor:
    """QR with ``diag(R) >= 0`` (a zero pivot keeps its column, as in the library)."""
    q, r = torch.linalg.qr(m)
    return q * torch.where(torch.diagonal(r, dim1=-2, dim2=-1) < 0, -1.0, 1.0).to(q.dtype).unsqueeze(-2)


def moment_frame(x: Tensor) -> Tensor:
    norms = (x * x).sum(-1, keepdim=True)
    return qr_fixed(torch.stack([(x * norms**k).sum(-2) for k in range(x.shape[-1])], dim=-1))


def pca_canonical(x: Tensor, check: bool = False) -> Tensor:
    """Kaba et al.'s PCA canonicalisation, written plainly: the centred covariance's eigenvectors by decreasing
    eigenvalue, each signed so that the third moment along it is positive.

    ``check=True`` adds the library's degeneracy check written plainly (the same bounds,
    ``markovcat.backends.torch.frames``): refuse where the eigenvalue gap is too small for
    the dtype or a third moment is within its rounding margin of zero.  No pre-scaling and
    no non-finite handling (the library's safeguards against overflow and NaN).
    """
    mean = x.mean(-2, keepdim=True)
    c = x - mean
    values, vectors = torch.linalg.eigh(c.transpose(-1, -2) @ c)
    p = c @ vectors
    third = (p**3).sum(-2)
    if check:
        n, eps = x.shape[-2], torch.finfo(x.dtype).eps
        rounding, tol = 2.0 * eps, eps**0.5
        trace, mu2 = values.sum(-1), (mean**2).sum((-2, -1))
        delta = rounding * (trace + trace.sqrt() * ((trace + n * mu2).sqrt() + (n * mu2).sqrt()))
        error = delta / (values[..., 1:] - values[..., :-1]).amin(-1)
        weight = torch.linalg.vector_norm(c, dim=-1) + mu2.sqrt().unsqueeze(-1)
        margin = 3 * (error + rounding).unsqueeze(-1) * (p**2 * weight.unsqueeze(-1)).sum(-2)
        refused = ~(error <= tol) | ~(third.abs() > margin).all(-1)
        if bool(refused.any()):
            raise ValueError(f"degenerate point cloud at batch index {int(refused.nonzero()[0, 0])}")
    return (vectors * torch.where(third < 0, -1.0, 1.0).unsqueeze(-2)).flip(-1)


SIGNS = torch.tensor(list(itertools.product((1.0, -1.0), repeat=D)))


def pca_frames(x: Tensor) -> Tensor:
    c = x - x.mean(-2, keepdim=True)
    _, v = torch.linalg.eigh(c.transpose(-1, -2) @ c)
    return v[:, None] * SIGNS.to(x.dtype)[None, :, None, :]


def accepted_clouds(batch: int) -> tuple[Tensor, int]:
    """Gaussian float32 clouds all accepted by the library's PCA check (so every variant runs on every cloud), and how
    many were redrawn because it refused them."""
    frame, x, redrawn = mct.PCACanonicaliser(), torch.randn(batch, N, D), 0
    while True:
        refused = [i for i in range(batch) if not _accepts(frame, x[i:i + 1])]
        if not refused:
            return x, redrawn
        redrawn += len(refused)
        x[refused] = torch.randn(len(refused), N, D)


def _accepts(frame: Callable[[Tensor], Tensor], x: Tensor) -> bool:
    try:
        frame(x)
    except ValueError:
        return False
    return True


def module(model: nn.Module, kind: type) -> Any:
    return next(m for m in model.modules() if isinstance(m, kind))


# -- the hand-written procedures (same parameters, same algorithm) ------------------------------------
def hand_canonicalise(mlp: nn.Module, check: bool = False) -> Callable[..., Tensor]:
    def run(x: Tensor, generator: torch.Generator | None = None) -> Tensor:
        h = pca_canonical(x, check)
        return torch.matmul(mlp(torch.matmul(x, h)), h.transpose(-1, -2))

    return run


def hand_frame_average(mlp: nn.Module, loop: bool = False) -> Callable[..., Tensor]:
    def run(x: Tensor, generator: torch.Generator | None = None) -> Tensor:
        g = pca_frames(x)
        if loop:  # one frame element at a time
            return torch.stack([mlp(x @ g[:, j]) @ g[:, j].transpose(-1, -2) for j in range(g.shape[1])]).mean(0)
        b, m = g.shape[:2]
        g = g.flatten(0, 1)
        y = torch.matmul(mlp(torch.matmul(x.repeat_interleave(m, 0), g)), g.transpose(-1, -2))
        return y.unflatten(0, (b, m)).mean(1)

    return run


def hand_kim(mlp: nn.Module, h: mct.gammas.GramNet, loop: bool = False) -> Callable[..., Tensor]:
    def gamma(x: Tensor, generator: torch.Generator | None) -> Tensor:
        eps = torch.randn(x.shape[0], 2, D, generator=generator, dtype=x.dtype)
        z = torch.cat([x, eps], dim=-2)
        w = h.layer2(torch.nn.functional.silu(h.layer1((z @ z.transpose(-1, -2)).flatten(1))))
        return qr_fixed(z.transpose(-1, -2) @ w.view(-1, z.shape[1], D))

    def run(x: Tensor, generator: torch.Generator | None = None) -> Tensor:
        if loop:  # one sample at a time
            outs = []
            for _ in range(SAMPLES):
                g = gamma(x, generator)
                outs.append(torch.matmul(mlp(torch.matmul(x, g)), g.transpose(-1, -2)))
            return torch.stack(outs).mean(0)
        xs = x.repeat_interleave(SAMPLES, 0)
        g = gamma(xs, generator)
        y = torch.matmul(mlp(torch.matmul(xs, g)), g.transpose(-1, -2))
        return y.unflatten(0, (-1, SAMPLES)).mean(1)

    return run


def hand_janossy(f: nn.Module, perms: Tensor, loop: bool = False, gather: bool = False) -> Callable[..., Tensor]:
    def run(x: Tensor, generator: torch.Generator | None = None) -> Tensor:
        if loop:  # one permutation at a time
            return torch.stack([f(x[:, p]) for p in perms]).mean(0)
        b, m = x.shape[0], perms.shape[0]
        if gather:  # the generic algorithm: repeat x, move each copy by its own sigma^-1
            p = perms.expand(b, m, -1).flatten(0, 1)
            moved = torch.gather(x.repeat_interleave(m, 0), -2, p.unsqueeze(-1).expand(*p.shape, x.shape[-1]))
            return f(moved).unflatten(0, (b, m)).mean(1)
        return f(x[:, perms].flatten(0, 1)).unflatten(0, (b, m)).mean(1)

    return run


def hand_haar(mlp: nn.Module) -> Callable[..., Tensor]:
    def run(x: Tensor, generator: torch.Generator | None = None) -> Tensor:
        r = mct.haar_orthogonal(x.shape[0], D, generator, x.dtype, x.device)
        return torch.matmul(mlp(torch.matmul(x, r)), r.transpose(-1, -2))

    return run


def hand_recursive(mlp: nn.Module, f: mct.gammas.GroupNet) -> Callable[..., Tensor]:
    def run(x: Tensor, generator: torch.Generator | None = None) -> Tensor:
        r0 = mct.haar_orthogonal(x.shape[0], D, generator, x.dtype, x.device)
        eps = torch.randn(x.shape[0], D, D, generator=generator, dtype=x.dtype)
        hidden = torch.nn.functional.silu(f.layer1(torch.cat([torch.matmul(x, r0).flatten(1), eps.flatten(1)], 1)))
        r = torch.matmul(r0, qr_fixed(f.layer2(hidden).view(-1, D, D)))
        return torch.matmul(mlp(torch.matmul(x, r)), r.transpose(-1, -2))

    return run


def hand_along(mlp: nn.Module) -> Callable[..., Tensor]:
    def run(x: Tensor, generator: torch.Generator | None = None) -> Tensor:
        q = torch.sgn(torch.linalg.det(moment_frame(x)))
        r = torch.eye(D, dtype=x.dtype).repeat(x.shape[0], 1, 1)
        r[:, 0, 0] = q
        return torch.matmul(mlp(torch.matmul(x, r)), r.transpose(-1, -2))

    return run


# -- timing -----------------------------------------------------------------------------------------
def timed_rounds(variants: Mapping[str, Callable[[], None]], rounds: int, calls: int) -> dict[str, float]:
    """Median over rounds of the mean seconds per call; variants interleaved, order alternating."""
    return shared_timed_rounds(variants, rounds, calls, warmup=max(2, calls // 3), statistic=statistics.median)


def step(model: Callable[..., Tensor], x: Tensor, params: list[Tensor], generator: torch.Generator) -> None:
    model(x, generator=generator).square().mean().backward()
    for p in params:
        p.grad = None


def forward(model: Callable[..., Tensor], x: Tensor, generator: torch.Generator) -> None:
    with torch.no_grad():
        model(x, generator=generator)


def agree(a: Callable[..., Tensor], b: Callable[..., Tensor], x: Tensor, what: str) -> None:
    ya, yb = a(x, generator=torch.Generator().manual_seed(1)), b(x, generator=torch.Generator().manual_seed(1))
    assert torch.allclose(ya, yb, atol=1e-5, rtol=1e-4), f"{what}: the compiled and hand-written models differ"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer rounds (a smoke run)")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--rounds", type=int, default=31, help="interleaved rounds per procedure")
    parser.add_argument("--calls", type=int, default=10, help="calls per variant in a round")
    parser.add_argument("--no-demo", action="store_true", help="skip the training demo (about 10 s)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    rounds, calls = (3, 4) if args.quick else (args.rounds, args.calls)
    torch.manual_seed(0)
    o3, s5 = mct.Orthogonal(D), mct.Symmetric(5)
    points = o3.points(N)
    mlp = PointMLP(N, D, HIDDEN)
    set_mlp = nn.Sequential(nn.Flatten(1), nn.Linear(10, HIDDEN), nn.SiLU(), nn.Linear(HIDDEN, 1))
    perms = torch.tensor(list(itertools.permutations(range(5))))
    x, redrawn = accepted_clouds(BATCH)
    sets = torch.randn(BATCH // 4, 5, 2)

    kim = P.probabilistic_symmetrise(mlp, o3, points, samples=SAMPLES)
    recursive = P.stochastic_symmetrise(mlp, o3, points, gamma="recursive", hidden=HIDDEN)
    janossy = P.janossy(set_mlp, s5, s5.sets(2), s5.trivial(mct.Spec((1,))))
    procedures: list[tuple[str, nn.Module, Callable[..., Tensor], Tensor, Callable[..., Tensor] | None, str]] = [
        ("canonicalise (Kaba, PCA)", P.canonicalise(mlp, o3, points, validate=False), hand_canonicalise(mlp), x,
         None, ""),
        ("canonicalise (Kaba, PCA), degeneracy check on", P.canonicalise(mlp, o3, points),
         hand_canonicalise(mlp, check=True), x, None, ""),
        ("frame_average (Puny), 8 frame elements", P.frame_average(mlp, o3, points, validate=False),
         hand_frame_average(mlp), x, hand_frame_average(mlp, loop=True), "loop over frame elements"),
        ("probabilistic_symmetrise (Kim), 8 samples", kim, hand_kim(mlp, module(kim, mct.gammas.GramNet)), x,
         hand_kim(mlp, module(kim, mct.gammas.GramNet), loop=True), "loop over samples"),
        ("janossy (Murphy), S_5 exact, batch 64", janossy, hand_janossy(set_mlp, perms, gather=True), sets,
         hand_janossy(set_mlp, perms, loop=True), "loop over 120 permutations"),
        ("janossy (Murphy), S_5 exact, batch 64, hand-written with x[:, perms]", janossy,
         hand_janossy(set_mlp, perms), sets, None, ""),
        ("stochastic_symmetrise (Cornish), Haar", P.stochastic_symmetrise(mlp, o3, points, gamma="haar"),
         hand_haar(mlp), x, None, ""),
        ("stochastic_symmetrise (Cornish), recursive", recursive,
         hand_recursive(mlp, module(recursive, mct.gammas.GroupNet)), x, None, ""),
        ("symmetrise_along SO(3) -> O(3)", P.symmetrise_along(mlp, o3, points, validate=False), hand_along(mlp), x,
         None, ""),
    ]
    rows: list[tuple[str, str, float, float, str]] = []
    for what, model, hand, data, loop, loop_name in procedures:
        agree(model, hand, data[:8], what)
        params = list(model.parameters())
        again = lambda inputs, generator=None, hand=hand: hand(inputs, generator=generator)  # noqa: E731
        gens = [torch.Generator().manual_seed(i) for i in range(3)]
        t = timed_rounds({
            "compiled": lambda m=model, d=data, p=params, g=gens[0]: step(m, d, p, g),
            "hand": lambda m=hand, d=data, p=params, g=gens[1]: step(m, d, p, g),
            "hand again": lambda m=again, d=data, p=params, g=gens[2]: step(m, d, p, g),
        }, rounds, calls)
        rows.append((what, "hand-written / itself (noise floor)", t["hand again"], t["hand"], "~1"))
        rows.append((what, "compiled / hand-written", t["compiled"], t["hand"], "<= 1.05"))
        if loop is not None:
            t = timed_rounds({
                "batched": lambda m=model, d=data, g=gens[0]: forward(m, d, g),
                "loop": lambda m=loop, d=data, g=gens[1]: forward(m, d, g),
            }, rounds, calls)
            rows.append((f"{what}, forward", f"{loop_name} (reference approach) / compiled batched", t["loop"],
                         t["batched"], "reference"))
        print(f"done: {what}", flush=True)

    header = (
        f"torch {torch.__version__}, {platform.processor() or platform.machine()}, "
        f"{torch.get_num_threads()} thread(s), CPU time of that thread; 2-layer MLP (width {HIDDEN}) on {N} points "
        f"in R^{D} (O(3)) or "
        f"5 points in R^2 (S_5); forward+backward at batch {BATCH} unless stated; median of {rounds} "
        "interleaved rounds. The built-in frames' degeneracy checks are off (the hand-written "
        "versions have none) except in the row that says so, where the hand-written canonicalisation has the same "
        f"check written plainly. float32 Gaussian clouds, redrawn where the PCA check refuses them ({redrawn} of "
        f"{BATCH} redrawn), so that every variant runs on the same accepted inputs.\n\n"
    )
    table = ["| procedure | ratio | numerator (us) | denominator (us) | ratio value | target |",
             "|---|---|---|---|---|---|"]
    for what, ratio, a, b, target in rows:
        table.append(f"| {what} | {ratio} | {a * 1e6:.0f} | {b * 1e6:.0f} | {a / b:.3f} | {target} |")
    text = header + "\n".join(table) + "\n"
    if not args.no_demo:
        text += "\n" + demo_section(args.quick)
    print(text)
    out = Path(__file__).parent / "results" / "procedures.md"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text("# Procedures: compiled against hand-written\n\n" + text)


def demo_section(quick: bool) -> str:
    """Run the training demo (a fixed number of steps, as ``markovcat demo``) and tabulate its test errors."""
    from markovcat.experiments import covariance as cov
    from markovcat.experiments.demo.training import LR, STEPS, run

    steps = STEPS // 10 if quick else STEPS
    result = run(steps, progress=False)
    lines = [
        f"## Training demo (`markovcat demo`): covariance estimation, d = {cov.D}, n = {cov.SAMPLES}\n",
        f"10,000 training / 1,000 test examples, Adam lr {LR:g}, batch 100, width 250, {steps} steps for each model "
        f"(one thread, fixed seeds: the figures do not depend on the machine's load); {result['seconds']:.1f} s "
        "in all with the equivariance checks.\n",
        "| model | test relative squared error | steps | equivariance check |",
        "|---|---|---|---|",
        f"| MLP | {result['plain']:.4f} | {steps} | {_verdict(result['report plain'])} |",
        f"| sym(MLP), recursive gamma (one draw per example) | {result['sym']:.4f} | {steps} | "
        f"{_verdict(result['report sym'])} |",
        f"| sample covariance x x^T / {cov.SAMPLES} (reference, not trained) | {result['sample covariance']:.4f} "
        "| - | - |",
    ]
    return "\n".join(lines) + "\n"


def _verdict(report: Any) -> str:
    verdict = "passed" if report.passed else "failed"
    return f"{verdict} ({report.method}, max relative error {report.statistic:.2g})"


if __name__ == "__main__":
    main()
