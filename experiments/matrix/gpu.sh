#!/usr/bin/env bash
# The paper's matrix configuration (d in {4, 8, 16, 32}, 100,000 steps) on one GPU, stopped after
# TIMEOUT seconds (default 570): calibrate, choose the runs that fit, run them as parallel processes.
# Everything goes to OUT (default experiments/results/matrix-gpu): calibration/, plan.json, records/,
# checkpoints/ (unfinished runs, resumed by the next call with the same OUT).  Extra arguments go to
# python -m markovcat.experiments.matrix.gpu (e.g. --jobs 12 --dims 4 8 --tiny --device cpu).
# The EMLP methods run when the emlp package is importable (carry its wheels to a machine without it).
set -uo pipefail
cd "$(dirname "$0")/../.."
OUT=${OUT:-experiments/results/matrix-gpu}
TIMEOUT=${TIMEOUT:-570}
PYTHON=${PYTHON:-python3}
if ! "$PYTHON" -c "import markovcat.experiments.matrix.gpu" 2>/dev/null; then
    "$PYTHON" -m pip install -q --no-deps --no-index --no-build-isolation -e . || exit 1
fi
mkdir -p "$OUT"
export PYTHONUNBUFFERED=1
timeout --kill-after=15 "$TIMEOUT" "$PYTHON" -m markovcat.experiments.matrix.gpu --out "$OUT" \
    --budget "$((TIMEOUT - 30))" "$@" 2>&1 | tee -a "$OUT/log.txt"
status=${PIPESTATUS[0]}
[ "$status" = 124 ] && echo "gpu.sh: stopped after $TIMEOUT s; finished records are in $OUT/records" | tee -a "$OUT/log.txt"
exit "$status"
