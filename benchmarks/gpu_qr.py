"""GPU timing of Haar sampling (batched Gram-Schmidt vs torch.linalg.qr) and of a symmetrised step.

    python benchmarks/gpu_qr.py   (needs CUDA)
"""
import time

import torch

from markovcat.backends import examples as ex
from markovcat.backends.torch_groups import haar_orthogonal

dev = torch.device("cuda")
def t(f, n=50):
    for _ in range(5): f()
    torch.cuda.synchronize(); s = time.perf_counter()
    for _ in range(n): f()
    torch.cuda.synchronize(); return (time.perf_counter() - s) / n * 1e3
z = torch.randn(256, 3, 3, device=dev)
print(f"haar_orthogonal(256, 3) on GPU (batched Gram-Schmidt): {t(lambda: haar_orthogonal(256, 3, device=dev)):.3f} ms")
print(f"torch.linalg.qr of 256 3x3 on GPU: {t(lambda: torch.linalg.qr(z)):.3f} ms")
for batch in (256, 4096):
    m = ex.haar_sym(n=16, d=3, hidden=64).model.to(dev)
    x = torch.randn(batch, 16, 3, device=dev)
    def fb():
        m.zero_grad(set_to_none=True); m(x).square().mean().backward()
    print(f"sym_haar(MLP) forward+backward, batch {batch}: {t(fb):.3f} ms")
