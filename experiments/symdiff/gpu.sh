#!/usr/bin/env bash
# SymDiff and DiT-Aug side by side on one GPU in ten minutes (configuration gpu-10min), one command.
#
#   experiments/symdiff/gpu.sh [FOLDER]      # everything into FOLDER (default: $OUT if set, else out/gpu-10min)
#
# What it does, within BUDGET seconds of wall time (default 600) and its own hard timeout:
#   1. checks the environment (markovcat importable, else installed from this checkout without
#      dependencies; the QM9 cache experiments/data/qm9/qm9.pt or qm9pack; RDKit optional);
#   2. a smoke run of both contenders on the device: configuration smoke, the same options as the
#      real run (bf16, torch.compile, --jobs 2 --lockstep, a time limit), so that a device or compile
#      error costs seconds, not the budget;
#   3. the real run: symdiff and dit-aug at once (--jobs 2), kept at the same step (--lockstep) and
#      stopped together by --time-limit, leaving FINAL_RESERVE seconds for the test bound (all
#      13,083 test molecules, as stored and rotated), 1,000 samples each, EDM's metrics and the
#      O(3) checks;
#      If the compiled run breaks early (not the timeout), what is left of the budget reruns it eager;
#   4. copies the selected weights into FOLDER when each file is under 16 MiB.
# FOLDER then holds the two records (<run>.json), their samples (<run>.xyz) and gpu.log.  Without
# RDKit on the machine the records mark validity and uniqueness "pending"; fill them in elsewhere with
#   python -m markovcat.experiments.symdiff.cli chemistry FOLDER/*.json
# and draw the table and figure with `markovcat experiment symdiff-plot --records FOLDER`.
#
# Environment: BUDGET (s, 600), FINAL_RESERVE (s, 180), TIME_LIMIT (s; default BUDGET less the time
# spent less FINAL_RESERVE), DEVICE (cuda), COMPILE (inductor; none for eager), PYTHON (python3),
# SEED (0), SKIP_SMOKE=1 (no step 2).  DRY_RUN=1: the same commands on the CPU
# with the smoke configuration as the real run and no step 2, in seconds (tests/applications/test_symdiff_gpu.py).
set -uo pipefail
cd "$(dirname "$0")/../.."
FOLDER=${1:-${OUT:-out/gpu-10min}}
BUDGET=${BUDGET:-600}
FINAL_RESERVE=${FINAL_RESERVE:-180}
PYTHON=${PYTHON:-python3}
SEED=${SEED:-0}
if [ "${DRY_RUN:-0}" = 1 ]; then
    DEVICE=${DEVICE:-cpu}; COMPILE=${COMPILE:-none}; CONFIG=smoke; SKIP_SMOKE=1
else
    DEVICE=${DEVICE:-cuda}; COMPILE=${COMPILE:-inductor}; CONFIG=gpu-10min
fi
mkdir -p "$FOLDER"
WORK=$(mktemp -d)
LOG="$FOLDER/gpu.log"
START=$(date +%s)
export PYTHONUNBUFFERED=1
say() { echo "[gpu.sh $(( $(date +%s) - START ))s] $*" | tee -a "$LOG"; }
left() { echo $(( BUDGET - ($(date +%s) - START) )); }
: > "$LOG"

say "folder $FOLDER, budget ${BUDGET}s, device $DEVICE, compile $COMPILE, configuration $CONFIG, seed $SEED"
if ! "$PYTHON" -c "import markovcat.experiments.symdiff.train" 2>/dev/null; then
    say "markovcat is not importable: installing this checkout (no dependencies, no index)"
    "$PYTHON" -m pip install -q --no-deps --no-build-isolation --no-index -e . >>"$LOG" 2>&1 \
        || { say "FAILED: cannot install markovcat here"; exit 2; }
fi
"$PYTHON" - >>"$LOG" 2>&1 <<'PY' || { say "FAILED: environment (see $LOG)"; exit 2; }
import importlib.util, platform, torch
from markovcat.experiments.symdiff.data import CACHE
print("python", platform.python_version(), "torch", torch.__version__, "cuda", torch.cuda.is_available(),
      torch.cuda.get_device_name() if torch.cuda.is_available() else "")
if not (CACHE / "qm9.pt").exists() and importlib.util.find_spec("qm9pack") is None:
    raise SystemExit(f"no QM9: carry {CACHE / 'qm9.pt'} (built by any run elsewhere) or install qm9pack")
print("rdkit:", "yes" if importlib.util.find_spec("rdkit") else "no (validity and uniqueness pending)")
PY
if [ "$DEVICE" = cuda ]; then nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv >>"$LOG" 2>&1; fi

contenders() {  # contenders CONFIG RECORDS CHECKPOINTS TIME_LIMIT TIMEOUT
    local compile=() limit=$5
    [ "$COMPILE" != none ] && compile=(--compile "$COMPILE")
    [ "$limit" -lt 1 ] && limit=1  # timeout 0 would mean no limit
    rm -rf "$WORK/pace-$1"
    timeout --signal=TERM --kill-after=10 "$limit" "$PYTHON" -m markovcat.experiments.symdiff.cli --all \
        --models symdiff dit-aug --config "$1" --seed "$SEED" --jobs 2 --lockstep "$WORK/pace-$1" \
        --time-limit "$4" --device "$DEVICE" "${compile[@]}" --out "$2" --checkpoints "$3" \
        --checkpoint-every 100000 --no-progress >>"$LOG" 2>&1
}

if [ "${SKIP_SMOKE:-0}" != 1 ]; then
    say "smoke run of both contenders on $DEVICE"
    if ! contenders smoke "$WORK/smoke" "$WORK/smoke-ck" 1 240; then
        say "FAILED: the smoke run (see $LOG); the real run was not started"; exit 3
    fi
    say "smoke run passed"
fi

LIMIT=${TIME_LIMIT:-$(( $(left) - FINAL_RESERVE ))}
[ "$LIMIT" -lt 0 ] && LIMIT=0
say "real run: $CONFIG, training stops after ${LIMIT}s, whole run within $(( $(left) - 15 ))s"
contenders "$CONFIG" "$FOLDER" "$WORK/checkpoints" "$LIMIT" "$(( $(left) - 15 ))"
STATUS=$?
[ $STATUS -ne 0 ] && say "the real run ended with status $STATUS (124: the timeout)"
if [ $STATUS -ne 0 ] && [ $STATUS -ne 124 ] && [ "$COMPILE" != none ] && [ "$(left)" -gt 240 ]; then
    COMPILE=none  # a compiled run that broke early: what is left of the budget runs eager (finished runs are kept)
    LIMIT=$(( $(left) - FINAL_RESERVE ))
    say "rerun eager: training stops after ${LIMIT}s"
    contenders "$CONFIG" "$FOLDER" "$WORK/checkpoints" "$LIMIT" "$(( $(left) - 15 ))"
    STATUS=$?
fi

for weights in "$WORK"/checkpoints/*.model.pt; do
    [ -e "$weights" ] || continue
    if [ "$(stat -c %s "$weights")" -lt $(( 16 * 1024 * 1024 )) ]; then
        cp "$weights" "$FOLDER/" && say "kept $(basename "$weights")"
    else
        say "not kept (over 16 MiB): $(basename "$weights"), $(( $(stat -c %s "$weights") / 1048576 )) MiB"
    fi
done
"$PYTHON" - "$FOLDER" 2>&1 <<'PY' | tee -a "$LOG"
import json, sys
from pathlib import Path
for path in sorted(Path(sys.argv[1]).glob("symdiff_*.json")):
    r = json.loads(path.read_text()); m = r["metrics"]
    print(path.name, {k: m.get(k) for k in ("test_nll", "test_nll_sem", "test_nll_rotated", "test_nll_rotated_sem",
          "sample_atom_stability", "sample_molecule_stability", "sample_validity", "samples")},
          "stopped at", r.get("stopped_at_step"), "step s", r.get("step_seconds"), "wall s", r.get("wall_seconds"))
PY
say "done (status $STATUS); records: $(ls "$FOLDER"/*.json 2>/dev/null | wc -l)"
rm -rf "$WORK"
exit $STATUS
