"""GPU timing of Haar sampling (batched Gram-Schmidt vs torch.linalg.qr) and of a symmetrised step.

    python benchmarks/gpu_qr.py   (needs CUDA; figures in benchmarks/results/gpu_qr_h200.log)
"""

from __future__ import annotations

import time
from collections.abc import Callable

import torch

from markovcat.backends.torch.linalg import haar_orthogonal
from markovcat.experiments import examples as ex


def milliseconds(f: Callable[[], object], repeats: int = 50) -> float:
    for _ in range(5):
        f()
    torch.cuda.synchronize()
    start = time.perf_counter()
    for _ in range(repeats):
        f()
    torch.cuda.synchronize()
    return (time.perf_counter() - start) / repeats * 1e3


def main() -> None:
    device = torch.device("cuda")
    z = torch.randn(256, 3, 3, device=device)
    gram_schmidt = milliseconds(lambda: haar_orthogonal(256, 3, device=device))
    print(f"haar_orthogonal(256, 3) on GPU (batched Gram-Schmidt): {gram_schmidt:.3f} ms")
    print(f"torch.linalg.qr of 256 3x3 on GPU: {milliseconds(lambda: torch.linalg.qr(z)):.3f} ms")
    for batch in (256, 4096):
        model = ex.haar_sym(n=16, d=3, hidden=64).model.to(device)
        x = torch.randn(batch, 16, 3, device=device)

        def step(model: torch.nn.Module = model, x: torch.Tensor = x) -> None:
            model.zero_grad(set_to_none=True)
            model(x).square().mean().backward()

        print(f"sym_haar(MLP) forward+backward, batch {batch}: {milliseconds(step):.3f} ms")


if __name__ == "__main__":
    main()
