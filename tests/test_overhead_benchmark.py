"""The prepared GPU benchmark (``benchmarks/overhead_gpu.sh``) runs its very commands on the CPU as a dry run.

Every configuration and mode it times on a GPU runs once here (compiled modes traced by dynamo
alone), nothing is timed, and the tables it would write come out whole: a row per model, no
model that failed, the build-time row.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.skipif(shutil.which("bash") is None, reason="needs bash")
def test_the_gpu_script_dry_runs_on_the_cpu(tmp_path: Path) -> None:
    environment = {**os.environ, "DEVICE": "cpu", "RESULTS": str(tmp_path), "LIMIT": "1200", "OMP_NUM_THREADS": "1"}
    done = subprocess.run(["bash", str(ROOT / "benchmarks" / "overhead_gpu.sh"), "--dry-run"], env=environment,
                          capture_output=True, text=True, timeout=2400)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    readme = (tmp_path / "overhead_gpu.md").read_text()
    nbody = (tmp_path / "overhead_gpu_nbody.md").read_text()
    assert "failed:" not in readme + nbody
    for mode in ("eager", "compile", "reduce-overhead"):
        assert f"| readme | {mode} | Haar-symmetrised |" in readme
    for model in ("recursive-symmetrised", "canonicalised", "frame-averaged (exact frame)"):
        assert f"| readme | eager | {model} |" in readme
        assert f"| nbody | eager | {model} |" in nbody
    assert "| two random examples (now) |" in readme  # the build time, in a fresh process
    assert (tmp_path / "overhead_gpu.log").read_text().count("## Ratios to the bare backbone") == 2
