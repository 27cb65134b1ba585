#!/usr/bin/env bash
# The GPU half of benchmarks/overhead.py, prepared to fit about 5 minutes on one H100:
# the README's configuration in eager mode, under torch.compile and with CUDA graphs
# (mode="reduce-overhead"), then the N-body configuration in eager mode.
#
#   bash benchmarks/overhead_gpu.sh
#       writes benchmarks/results/overhead_gpu.md, overhead_gpu_nbody.md and overhead_gpu.log
#   DEVICE=cpu RESULTS=/tmp/somewhere bash benchmarks/overhead_gpu.sh --dry-run
#       the same commands on the CPU, every path once, nothing timed (run by the tests)
set -euo pipefail
cd "$(dirname "$0")"
DEVICE="${DEVICE:-cuda}"
RESULTS="${RESULTS:-results}"
mkdir -p "$RESULTS"
{
  nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv 2>/dev/null || echo "no nvidia-smi"
  timeout 200 python overhead.py --device "$DEVICE" --configs readme --modes eager,compile,reduce-overhead \
    --rounds 15 --build-runs 3 --out "$RESULTS/overhead_gpu.md" "$@"
  timeout 80 python overhead.py --device "$DEVICE" --configs nbody --modes eager --rounds 15 --build-runs 0 \
    --out "$RESULTS/overhead_gpu_nbody.md" "$@"
} 2>&1 | tee "$RESULTS/overhead_gpu.log"
