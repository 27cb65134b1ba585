"""N-body: each markovcat-symmetrised contender against the same construction by hand and the peer's wrapper.

1. Overhead (forward + backward at batch 100, float32, one thread): for each markovcat contender
   of :mod:`markovcat.experiments.nbody.models` (``fa``, ``canon``, ``haar``, ``recursive``), the
   model as the runner trains it (centring around the compiled ``mc`` procedure) against the same
   construction written in plain PyTorch with the very same parameters (checked to give the same
   output), and against the peer library's wrapper on the same backbone where one exists
   (``frame-averaging-pytorch``'s ``FrameAverage`` for frame averaging; ``equiadapt`` for
   canonicalisation cannot be imported here, see ``models.PEER_STATUS``; no peer implements
   stochastic symmetrisation).  A "hand-written / itself" row gives the noise floor of a ratio.
   Targets: compiled / hand-written at most 1.1, and compiled at most the peer.
2. ``--speeds``: training steps/s (forward, backward, Adam) of every runnable contender at
   batch 100 on one thread, and the CPU sweep's step budget derived from them
   (:func:`markovcat.experiments.nbody.sweep.budget`: contenders x 3 seeds in 90 minutes on 2
   single-threaded workers, allowing 60 s per run besides the timed steps: 300-step runs of every
   contender spent 1 to 13 s outside training on a loaded machine, and the validation curve of
   the slowest contender, every 100 steps, adds about 30 s over 4,500 steps).

Times are CPU time of the timing thread (``time.thread_time``), so other processes on a shared
machine count little; part 1 takes the minimum over interleaved rounds (the least disturbed round, as
``timeit`` advises), part 2 the mean over a
few steps after a warm-up.

    python benchmarks/nbody.py [--quick] [--speeds]

Prints Markdown and writes it to ``benchmarks/results/nbody.md`` (``nbody_speeds.md`` for part 2).
"""

from __future__ import annotations

import argparse
import platform
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from procedures import pca_canonical, pca_frames, qr_fixed  # benchmarks/ is the script's folder
from timing import paired_ratio, timed_samples
from torch import Tensor, nn

from markovcat.backends import torch as mct
from markovcat.experiments.nbody.models import (
    METHODS,
    Centred,
    ParticleGroupNet,
    PeerFrameAverage,
    available,
    build,
)

BATCH, D = 100, 3
HERE = Path(__file__).parent


def systems(batch: int, seed: int = 0) -> Tensor:
    g = torch.Generator().manual_seed(seed)
    q = torch.randint(0, 2, (batch, 5, 1), generator=g).float() * 2 - 1
    return torch.cat([torch.randn(batch, 5, 6, generator=g), q], dim=-1)


def centre(x: Tensor) -> tuple[Tensor, Tensor]:
    c = x[..., :3].mean(-2, keepdim=True)
    return torch.cat([x[..., :3] - c, x[..., 3:]], dim=-1), c


def rotate(x: Tensor, r: Tensor) -> Tensor:
    """``[pos r, vel r, q]`` (the backbone's view of ``r^-1 . x``) for ``r`` ``(b, 3, 3)``."""
    return torch.cat([x[..., :3] @ r, x[..., 3:6] @ r, x[..., 6:]], dim=-1)


def cloud(x: Tensor) -> Tensor:
    return torch.cat([x[..., :3], x[..., :3] + x[..., 3:6]], dim=-2)


# -- the same constructions by hand -------------------------------------------------------------------
def hand_frame_average(net: nn.Module) -> Callable[..., Tensor]:
    def run(x: Tensor, generator: torch.Generator | None = None) -> Tensor:
        xc, c = centre(x)
        g = pca_frames(cloud(xc))  # (b, 8, 3, 3): ascending eigenvectors, all signs
        b, m = g.shape[:2]
        g = g.flatten(0, 1)
        y = net(rotate(xc.repeat_interleave(m, 0), g)) @ g.transpose(-1, -2)
        return y.unflatten(0, (b, m)).mean(1) + c

    return run


def hand_canonicalise(net: nn.Module) -> Callable[..., Tensor]:
    def run(x: Tensor, generator: torch.Generator | None = None) -> Tensor:
        xc, c = centre(x)
        h = pca_canonical(cloud(xc))
        return net(rotate(xc, h)) @ h.transpose(-1, -2) + c

    return run


def hand_haar(net: nn.Module) -> Callable[..., Tensor]:
    def run(x: Tensor, generator: torch.Generator | None = None) -> Tensor:
        xc, c = centre(x)
        r = mct.haar_orthogonal(x.shape[0], D, generator, x.dtype, x.device)
        return net(rotate(xc, r)) @ r.transpose(-1, -2) + c

    return run


def hand_recursive(net: nn.Module, f: Any) -> Callable[..., Tensor]:
    def run(x: Tensor, generator: torch.Generator | None = None) -> Tensor:
        xc, c = centre(x)
        r0 = mct.haar_orthogonal(x.shape[0], D, generator, x.dtype, x.device)
        eps = torch.randn(x.shape[0], D, D, generator=generator, dtype=x.dtype)
        pooled = f.phi(rotate(xc, r0)).sum(-2)
        r = r0 @ qr_fixed(f.rho(torch.cat([pooled, eps.flatten(1)], dim=-1)).view(-1, D, D))
        return net(rotate(xc, r)) @ r.transpose(-1, -2) + c

    return run


# -- part 1 ----------------------------------------------------------------------------------------------------------
def _step(model: Callable[..., Tensor], x: Tensor, params: list[Tensor], seed: int) -> Callable[[], None]:
    def run() -> None:
        model(x, generator=torch.Generator().manual_seed(seed)).square().mean().backward()
        for p in params:
            p.grad = None

    return run


def _plain(module: nn.Module) -> Callable[..., Tensor]:
    """``module`` called as a model that ignores ``generator=``."""

    def run(x: Tensor, generator: torch.Generator | None = None) -> Tensor:
        return module(x)  # type: ignore[no-any-return]

    return run


def _agree(a: Callable[..., Tensor], b: Callable[..., Tensor], x: Tensor, what: str) -> None:
    with torch.no_grad():
        ya, yb = a(x, generator=torch.Generator().manual_seed(1)), b(x, generator=torch.Generator().manual_seed(1))
    assert torch.allclose(ya, yb, atol=1e-4, rtol=1e-4), f"{what}: the compiled and hand-written models differ"


Row = tuple[str, str, float, float, tuple[float, float, float] | None]


def _row(method: str, what: str, samples: dict[str, list[float]], top: str, bottom: str) -> Row:
    """One ratio row: the minimum times (us) and the paired per-round ratio's median and quartiles."""
    return (method, what, 1e6 * min(samples[top]), 1e6 * min(samples[bottom]), paired_ratio(samples, top, bottom))


def overhead(rounds: int, calls: int) -> list[Row]:
    """Rows ``(contender, ratio, numerator us, denominator us, (median, q25, q75) of the per-round ratios)``.

    The times are the minimum over rounds; the paired per-round ratios are what the verdicts read.
    """
    rows = []
    x = systems(BATCH)
    for method in ("fa", "canon", "haar", "recursive"):
        model = build(method, seed=0)
        module = model.module
        assert isinstance(module, Centred)
        net = next(m for m in module.modules() if m.__class__.__name__ == "TransformerBackbone")
        params = list(module.parameters())
        compiled: Callable[..., Tensor] = model.forward
        hand: Callable[..., Tensor]
        if method == "fa":
            hand = hand_frame_average(net)
        elif method == "canon":
            hand = hand_canonicalise(net)
        elif method == "haar":
            hand = hand_haar(net)
        else:
            hand = hand_recursive(net, next(m for m in module.modules() if isinstance(m, ParticleGroupNet)))
        _agree(compiled, hand, x, method)
        variants: dict[str, Callable[[], None]] = {
            "compiled": _step(compiled, x, params, 0), "hand": _step(hand, x, params, 0),
            "hand again": _step(hand, x, params, 0), "backbone": _step(_plain(net), x, params, 0)}
        peer_name = {"fa": "fa-peer", "canon": "canon-peer"}.get(method)
        if peer_name == "fa-peer" and available("fa-peer") is None:
            peer = _plain(PeerFrameAverage(net))
            _agree(compiled, peer, x, "the peer")
            variants["peer"] = _step(peer, x, params, 0)
        samples = timed_samples(variants, rounds, calls, warmup=max(2, calls // 3))
        pairs = [("hand-written / itself (noise floor)", "hand again", "hand"),
                 ("compiled / hand-written", "compiled", "hand"), ("compiled / backbone alone", "compiled", "backbone")]
        if "peer" in samples:
            pairs += [("peer wrapper / hand-written", "peer", "hand"), ("compiled / peer wrapper", "compiled", "peer")]
        rows += [_row(method, what, samples, top, bottom) for what, top, bottom in pairs]
        if "peer" not in samples:
            why = "none (no peer library implements it)" if peer_name is None else f"not runnable ({peer_name})"
            rows.append((method, f"peer wrapper: {why}", float("nan"), float("nan"), None))
    return rows


# -- part 2 ----------------------------------------------------------------------------------------------------------
def speeds(steps: int) -> dict[str, float]:
    """Training steps/s (forward, backward, Adam) at batch 100 on one thread, per runnable contender."""
    x, y = systems(BATCH), systems(BATCH, 1)[..., :3]
    out = {}
    for method in METHODS:
        if available(method) is not None:
            continue
        model = build(method, seed=0)
        optimizer = torch.optim.Adam(model.module.parameters(), lr=5e-4)

        def step(index: int, model: Any = model, optimizer: Any = optimizer) -> None:
            loss = model.loss(x, y, torch.Generator().manual_seed(index))
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()

        for i in range(3):
            step(i)
        start = time.thread_time()
        for i in range(steps):
            step(i)
        out[method] = steps / (time.thread_time() - start)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer rounds (a smoke run)")
    parser.add_argument("--speeds", action="store_true", help="part 2: steps/s per contender and the CPU budget")
    parser.add_argument("--rounds", type=int, default=15, help="interleaved rounds per contender")
    args = parser.parse_args()
    torch.set_num_threads(1)
    header = (f"torch {torch.__version__}, {platform.machine()}, 1 thread, CPU time of that thread; batch {BATCH}, "
              f"float32; the contenders' transformer backbone (width 64, 3 layers).")
    if args.speeds:
        from markovcat.experiments.nbody.sweep import CPU_SEEDS, budget

        measured = speeds(5 if args.quick else 30)
        lines = ["# N-body: training speed per contender", "", header, "",
                 "| contender | steps/s (one thread) |", "|---|---:|"]
        lines += [f"| {m} | {s:.2f} |" for m, s in measured.items()]
        steps = budget(measured, len(CPU_SEEDS), cores=2, minutes=90, overhead_seconds=60)
        lines += ["", f"Budget for {len(measured)} contenders x {len(CPU_SEEDS)} seeds in 90 minutes on 2 "
                      f"single-threaded workers (60 s per run besides training steps: data loading, the validation "
                      f"curve, the test, the equivariance checks): {steps} steps."]
        name = "nbody_speeds.md"
    else:
        rows = overhead(3 if args.quick else args.rounds, 3 if args.quick else 10)
        lines = ["# N-body: markovcat-symmetrised contenders against hand-written and the peers", "", header,
                 f" Forward + backward; times are the minimum over {3 if args.quick else args.rounds} interleaved "
                 f"rounds; a ratio is the median of the per-round ratios (the two variants timed side by side in "
                 f"each round), with the quartiles of those ratios: how far it can be trusted.  The noise floor row "
                 f"times the same code twice.", "",
                 "| contender | ratio | numerator (us) | denominator (us) | ratio (median) | quartiles | target |",
                 "|---|---|---:|---:|---:|---|---|"]
        targets = {"compiled / hand-written": "<= 1.1", "compiled / peer wrapper": "<= 1",
                   "hand-written / itself (noise floor)": "~1"}
        for method, what, num, den, ratio in rows:
            value, spread = ("", "") if ratio is None else (f"{ratio[0]:.3f}", f"{ratio[1]:.3f} to {ratio[2]:.3f}")
            lines.append(f"| {method} | {what} | {'' if num != num else f'{num:.0f}'} | "
                         f"{'' if den != den else f'{den:.0f}'} | {value} | {spread} | "
                         f"{targets.get(what, 'reference')} |")
        name = "nbody.md"
    text = "\n".join(lines) + "\n"
    print(text)
    if not args.quick:
        (HERE / "results").mkdir(exist_ok=True)
        (HERE / "results" / name).write_text(text)


if __name__ == "__main__":
    main()
