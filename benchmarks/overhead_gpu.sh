#!/usr/bin/env bash
# The GPU half of benchmarks/overhead.py, prepared to fit about 5 minutes on one H100:
# the README's configuration in eager mode, under torch.compile and with CUDA graphs
# (mode="reduce-overhead"), then the N-body configuration in eager mode.  Each table is
# written as soon as it is measured, so a command stopped by its time limit keeps its rows.
#
#   bash benchmarks/overhead_gpu.sh
#       writes benchmarks/results/overhead_gpu.md, overhead_gpu_nbody.md and overhead_gpu.log
#   DEVICE=cpu RESULTS=/tmp/somewhere LIMIT=900 bash benchmarks/overhead_gpu.sh --dry-run
#       the same commands on the CPU, every path once, nothing timed (run by the tests; LIMIT
#       replaces the GPU's time limits of 230 s and 50 s for each command)
set -uo pipefail
cd "$(dirname "$0")"
DEVICE="${DEVICE:-cuda}"
RESULTS="${RESULTS:-results}"
LIMIT="${LIMIT:-}"
mkdir -p "$RESULTS"
status=0
{
  nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv 2>/dev/null || echo "no nvidia-smi"
  timeout "${LIMIT:-230}" python overhead.py --device "$DEVICE" --configs readme --modes eager,compile,reduce-overhead \
    --rounds 15 --build-runs 3 --out "$RESULTS/overhead_gpu.md" "$@" || echo "README configuration: exit status $?"
  timeout "${LIMIT:-50}" python overhead.py --device "$DEVICE" --configs nbody --modes eager --rounds 15 --build-runs 0 \
    --out "$RESULTS/overhead_gpu_nbody.md" "$@" || echo "N-body configuration: exit status $?"
} 2>&1 | tee "$RESULTS/overhead_gpu.log"
grep -q "exit status" "$RESULTS/overhead_gpu.log" && status=1
exit $status
