"""Test-run settings shared by every test folder (tests/, and the doctests of each package).

* pyproject's ``addopts`` run the suite on pytest-xdist workers (``--numprocesses=auto``).
  The number of workers is the number of CPUs this process may use (its affinity and, in a
  container, its cgroup CPU quota), at most 8; ``PYTEST_XDIST_AUTO_NUM_WORKERS`` overrides it.
  ``-n 0`` runs in one process; ``-p no:xdist`` works too: the xdist options in ``addopts``
  are then accepted and ignored.
* torch runs on one intra-op thread per test process (``OMP_NUM_THREADS=1`` unless set):
  with one worker per CPU, more threads only oversubscribe the cores, and on a loaded
  2-core machine two threads made a small training test 17 times slower than one.
"""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Any

import pytest

MAX_WORKERS = 8

for _variable in ("OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_variable, "1")  # read by torch when it is first imported, in this process and its children

# xdist options that pyproject's addopts use: when xdist is not loaded (-p no:xdist) they are accepted and ignored.
_XDIST_OPTIONS = ("--numprocesses", "--dist")


def pytest_addoption(parser: pytest.Parser, pluginmanager: pytest.PytestPluginManager) -> None:
    if pluginmanager.has_plugin("xdist"):
        return
    group = parser.getgroup("xdist (not loaded)")
    for option in _XDIST_OPTIONS:
        group.addoption(option, dest=f"_ignored_{option.strip('-')}", default=None,
                        help="ignored: pytest-xdist is not loaded")


def _cgroup_cpus() -> float | None:
    """The CPU quota of this process's cgroup (v2 ``cpu.max`` or v1 ``cfs_quota_us``), if any."""
    candidates = [(Path("/sys/fs/cgroup/cpu.max"), None),
                  (Path("/sys/fs/cgroup/cpu/cpu.cfs_quota_us"), Path("/sys/fs/cgroup/cpu/cpu.cfs_period_us"))]
    for quota_path, period_path in candidates:
        try:
            if period_path is None:
                quota, period = quota_path.read_text().split()[:2]
            else:
                quota, period = quota_path.read_text().strip(), period_path.read_text().strip()
        except (OSError, ValueError):
            continue
        if quota in ("max", "-1"):
            return None
        try:
            return int(quota) / int(period)
        except (ValueError, ZeroDivisionError):
            return None
    return None


def usable_cpus() -> int:
    """CPUs this process may run on: its affinity mask, bounded by a cgroup quota."""
    try:
        count = len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        count = os.cpu_count() or 1
    quota = _cgroup_cpus()
    if quota is not None:
        count = min(count, max(1, math.floor(quota)))
    return max(1, count)


@pytest.hookimpl(optionalhook=True)
def pytest_xdist_auto_num_workers(config: Any) -> int | None:
    if os.environ.get("PYTEST_XDIST_AUTO_NUM_WORKERS"):
        return None  # xdist's own hook reads it
    return min(usable_cpus(), MAX_WORKERS)


@pytest.fixture
def one_thread() -> Any:
    """torch on one intra-op thread for the test (as in a sweep's worker), the previous count restored after."""
    import torch  # here, not at the top: the core's doctests run without torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
