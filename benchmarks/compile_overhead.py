"""Overhead of compiling a diagram, against the same model written by hand in PyTorch.

Model: stochastic symmetrisation ``x |-> R . k(R^-1 . x)``, ``R ~ Haar(O(3))``, of a
2-layer MLP (hidden width 64) on point clouds of n = 16 points, CPU.  Timed:
forward + backward, batch 1 and 256, eager and under ``torch.compile``; the same
diagram through DisCoPy's Python-function functor (reference); and ``ave`` with
32 samples drawn in one batched pass against a loop of 32 calls.  The compiled model
validates its inputs by default (shape, dtype, batch size, finiteness); it is timed
beside the same model compiled with ``validate=False`` (the bare fast path), forward
only and forward + backward, so the cost of validation is one ratio.

All variants run in one process, interleaved in rounds so that load from other
processes affects them alike; each figure is the median over rounds of the mean
time per call within a round.

    python benchmarks/compile_overhead.py [--quick] [--no-torch-compile]

Prints a Markdown table and writes it to ``benchmarks/results/compile_overhead.md``.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import time
from collections.abc import Callable, Mapping
from pathlib import Path

import torch
from torch import Tensor, nn

from markovcat.backends.torch.linalg import haar_orthogonal
from markovcat.experiments import examples as ex

N, D, HIDDEN = 16, 3, 64


class HandWritten(nn.Module):
    """The same model written directly: ``R ~ Haar``, ``y = k(x R) R^T`` (rows are points)."""

    def __init__(self, mlp: nn.Module) -> None:
        super().__init__()
        self.mlp = mlp

    def forward(self, x: Tensor, generator: torch.Generator | None = None) -> Tensor:
        r = haar_orthogonal(x.shape[0], D, generator, x.dtype, x.device)
        return torch.matmul(self.mlp(torch.matmul(x, r)), r.transpose(-1, -2))


def discopy_function(setup: ex.Setup) -> Callable[[Tensor], Tensor]:
    """The diagram through DisCoPy: ``markov.Functor`` into ``python.Category`` with the same callables."""
    from markovcat.backends.discopy import python_function
    from markovcat.backends.python import resolve

    functions = resolve(setup.diagram, setup.interpretation.boxes)  # the same callables, box by box
    like: list[Tensor] = []
    wrapped = {
        name: (f if any(n.gen.name == name and n.gen.dom for n in setup.diagram.nodes)
               else (lambda f=f: f(like=like[0])))
        for name, f in functions.items()
    }
    function = python_function(setup.diagram, wrapped, Tensor)

    def run(x: Tensor) -> Tensor:
        like[:] = [x.new_empty(x.shape[0])]
        return function(x)

    return run


def step(model: Callable[[Tensor], Tensor], x: Tensor, params: list[Tensor]) -> None:
    out = model(x)
    out.square().mean().backward()
    for p in params:
        p.grad = None


def timed_rounds(variants: Mapping[str, Callable[..., None]], rounds: int, calls: int) -> dict[str, float]:
    """Median over rounds of the mean seconds per call; variants interleaved within each round."""
    for run in variants.values():  # warm up
        for _ in range(max(3, calls // 5)):
            run()
    samples: dict[str, list[float]] = {name: [] for name in variants}
    order = list(variants.items())
    for index in range(rounds):
        for name, run in order if index % 2 == 0 else order[::-1]:  # alternate the order: no position bias
            start = time.perf_counter()
            for _ in range(calls):
                run()
            samples[name].append((time.perf_counter() - start) / calls)
    return {name: statistics.median(values) for name, values in samples.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer rounds (a smoke run)")
    parser.add_argument("--no-torch-compile", action="store_true", help="skip the torch.compile rows")
    parser.add_argument("--threads", type=int, default=1, help="torch intra-op threads (default 1)")
    parser.add_argument("--output", type=Path, default=Path(__file__).parent / "results" / "compile_overhead.md",
                        help="where to write the table")
    args = parser.parse_args()
    load_before = os.getloadavg()[0]
    torch.set_num_threads(args.threads)
    rounds, calls = (5, 20) if args.quick else (21, 50)
    torch.manual_seed(0)
    setup = ex.haar_sym(n=N, d=D, hidden=HIDDEN)
    compiled = setup.model
    assert compiled.validate
    from markovcat.backends.torch.compile import compile as mc_compile

    bare = mc_compile(setup.diagram, setup.interpretation, validate=False)  # the same modules, no input checks
    hand = HandWritten(compiled.b_mlp)  # the very same parameters
    hand_again = HandWritten(compiled.b_mlp)  # timed as a separate variant: the noise floor of a ratio
    params = list(compiled.parameters())
    rows: list[tuple[str, str, float, float, str]] = []

    x0 = torch.randn(3, N, D)
    gen_a, gen_b = torch.Generator().manual_seed(1), torch.Generator().manual_seed(1)
    assert torch.equal(compiled(x0, generator=gen_a), hand(x0, generator=gen_b)), "the two models differ"

    def forward(model: Callable[..., Tensor], x: Tensor) -> None:
        with torch.no_grad():
            model(x)

    discopy = discopy_function(setup)
    for batch in (1, 256):
        x = torch.randn(batch, N, D)
        scale = max(1, calls // (8 if batch == 256 else 1))
        variants = {
            "compiled": lambda x=x: step(compiled, x, params),
            "bare": lambda x=x: step(bare, x, params),
            "hand": lambda x=x: step(hand, x, params),
            "hand again": lambda x=x: step(hand_again, x, params),
            "discopy": lambda x=x: step(discopy, x, params),
            "forward validated": lambda x=x: forward(compiled, x),
            "forward bare": lambda x=x: forward(bare, x),
            "checks alone": lambda x=x: compiled._validate_inputs(x),
        }
        t = timed_rounds(variants, rounds, scale)
        rows.append((f"forward+backward, batch {batch}, eager", "hand-written / itself (noise floor)",
                     t["hand again"], t["hand"], "~1"))
        rows.append((f"forward+backward, batch {batch}, eager", "compiled (validated) / hand-written", t["compiled"],
                     t["hand"], "<= 1.05"))
        rows.append((f"forward+backward, batch {batch}, eager", "compiled (validate=False) / hand-written", t["bare"],
                     t["hand"], "<= 1.05"))
        rows.append((f"forward+backward, batch {batch}, eager", "validated / validate=False", t["compiled"],
                     t["bare"], "cost of validation"))
        rows.append((f"forward only, batch {batch}, eager", "validated / validate=False", t["forward validated"],
                     t["forward bare"], "cost of validation"))
        rows.append((f"forward only, batch {batch}, eager", "the input checks alone / bare forward", t["checks alone"],
                     t["forward bare"], "cost of validation"))
        rows.append((f"forward+backward, batch {batch}, eager", "DisCoPy functor / hand-written", t["discopy"],
                     t["hand"], "reference"))

    if not args.no_torch_compile:
        torch._dynamo.reset()
        fast_compiled = torch.compile(compiled)
        fast_bare = torch.compile(bare)
        fast_hand = torch.compile(hand)
        fast_hand_again = torch.compile(hand_again)
        for batch in (1, 256):
            x = torch.randn(batch, N, D)
            scale = max(1, calls // (8 if batch == 256 else 1))
            variants = {
                "compiled": lambda x=x: step(fast_compiled, x, params),
                "bare": lambda x=x: step(fast_bare, x, params),
                "hand": lambda x=x: step(fast_hand, x, params),
                "hand again": lambda x=x: step(fast_hand_again, x, params),
            }
            t = timed_rounds(variants, rounds, scale)
            rows.append((f"forward+backward, batch {batch}, torch.compile", "hand-written / itself (noise floor)",
                         t["hand again"], t["hand"], "~1"))
            rows.append((f"forward+backward, batch {batch}, torch.compile", "compiled (validated) / hand-written",
                         t["compiled"], t["hand"], "<= 1.05"))
            rows.append((f"forward+backward, batch {batch}, torch.compile", "validated / validate=False",
                         t["compiled"], t["bare"], "cost of validation"))

    averaged = mc_compile(setup.diagram, setup.interpretation, samples=32, reduce="mean")
    for batch in (1, 16):
        x = torch.randn(batch, N, D)

        def batched(x: Tensor = x) -> None:
            with torch.no_grad():
                averaged(x)

        def loop(x: Tensor = x) -> None:
            with torch.no_grad():
                torch.stack([compiled(x) for _ in range(32)]).mean(0)

        t = timed_rounds({"batched": batched, "loop": loop}, rounds, max(1, calls // 5))
        rows.append((f"ave, 32 samples, batch {batch}, forward", "loop of 32 calls / batched", t["loop"],
                     t["batched"], ">= 10"))

    header = (
        f"torch {torch.__version__}, {platform.processor() or platform.machine()}, "
        f"{torch.get_num_threads()} thread(s); "
        f"O(3) Haar symmetrisation of a 2-layer MLP (width {HIDDEN}) on {N} points; "
        f"median of {rounds} interleaved rounds; load average {load_before:.1f} before, "
        f"{os.getloadavg()[0]:.1f} after, on {os.cpu_count()} cores.\n\n"
    )
    table = ["| measurement | ratio | numerator (us) | denominator (us) | ratio value | target |",
             "|---|---|---|---|---|---|"]
    for what, ratio, a, b, target in rows:
        table.append(f"| {what} | {ratio} | {a * 1e6:.1f} | {b * 1e6:.1f} | {a / b:.3f} | {target} |")
    text = header + "\n".join(table) + "\n"
    print(text)
    out = args.output
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text("# Compile overhead\n\n" + text)


if __name__ == "__main__":
    main()
