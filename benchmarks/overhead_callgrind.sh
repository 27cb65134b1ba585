#!/usr/bin/env bash
# Instructions per forward + backward step of each model at overhead.py's README configuration (callgrind):
# ratios to the bare backbone that do not depend on the machine's load.  About 2 minutes per model.
#   bash benchmarks/overhead_callgrind.sh [models...]   (default: bare haar recursive canonical)
set -euo pipefail
cd "$(dirname "$0")"
STEPS="${STEPS:-5}"
models=("${@:-bare haar recursive canonical}")
scratch=$(mktemp -d)
out=results/overhead_callgrind.md
{
  echo "# Instructions per step (callgrind)"
  echo
  echo "valgrind $(valgrind --version | sed 's/valgrind-//'), torch $(python -c 'import torch; print(torch.__version__)'), one thread; the README's configuration (batch 256, forward + backward); instructions counted over $STEPS steps after 3 warm-up steps."
  echo
  echo "| model | instructions per step | ratio to bare |"
  echo "|---|---|---|"
} > "$out"
bare=""
for model in ${models[@]}; do
  OMP_NUM_THREADS=1 valgrind --tool=callgrind --collect-atstart=no --callgrind-out-file="$scratch/$model.out" \
    python callgrind_steps.py "$model" "$STEPS" > "$scratch/$model.log" 2>&1
  total=$(grep -E "^(summary|totals):" "$scratch/$model.out" | head -1 | awk '{print $2}')
  per=$((total / STEPS))
  [ -z "$bare" ] && bare=$per
  echo "| $model | $per | $(python -c "print(f'{$per / $bare:.3f}')") |" | tee -a "$out"
done
rm -rf "$scratch"
