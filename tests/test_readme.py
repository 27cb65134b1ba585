"""The README's code runs as written, and its two set-up commands are the ones CI uses."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

ROOT = Path(__file__).parent.parent
README = (ROOT / "README.md").read_text()


def test_readme_python_blocks_run(tmp_path: Path) -> None:
    blocks = re.findall(r"```python\n(.*?)```", README, flags=re.S)
    assert len(blocks) >= 3
    cwd = os.getcwd()
    os.chdir(tmp_path)
    try:
        namespace: dict[str, object] = {}
        for block in blocks:
            exec(compile(block, "README.md", "exec"), namespace)
    finally:
        os.chdir(cwd)
    assert (tmp_path / "sym.svg").exists() and (tmp_path / "law.svg").exists()


def test_ci_runs_the_readme_test_command() -> None:
    commands = re.findall(r"```bash\n(.*?)\n```", README, flags=re.S)
    assert len(commands) == 2, "exactly two set-up commands"
    demo, tests = commands
    assert "markovcat demo" in demo
    assert tests in (ROOT / ".ci" / "run").read_text()


def _fake_ci(tmp_path: Path, pip: int, pytest_status: int, ruff: int = 0) -> subprocess.CompletedProcess[str]:
    """Run ``.ci/run`` in a copy of its folder with stand-ins for python3, pip, pytest, ruff and mypy."""
    root = tmp_path / "repo"
    (root / ".ci").mkdir(parents=True)
    shutil.copy(ROOT / ".ci" / "run", root / ".ci" / "run")
    fakes = tmp_path / "bin"
    fakes.mkdir()
    log = tmp_path / "log"
    scripts = {
        "python3": 'mkdir -p .venv/bin && : > .venv/bin/activate',
        "python": "exit 0",
        "pip": f"exit {pip}",
        "pytest": f"exit {pytest_status}",
        "ruff": f"exit {ruff}",
        "mypy": "exit 0",
    }
    for name, body in scripts.items():
        path = fakes / name
        path.write_text(f'#!/bin/sh\necho "{name} $*" >> "{log}"\n{body}\n')
        path.chmod(0o755)
    env = {"PATH": f"{fakes}:/usr/bin:/bin", "HOME": str(tmp_path)}
    result = subprocess.run(["bash", str(root / ".ci" / "run")], capture_output=True, text=True, env=env, timeout=60)
    result.stdout += log.read_text() if log.exists() else ""
    return result


def test_ci_fails_when_any_step_fails(tmp_path: Path) -> None:
    ok = _fake_ci(tmp_path / "ok", pip=0, pytest_status=0)
    assert ok.returncode == 0, ok.stderr
    assert "pytest" in ok.stdout and "ruff check ." in ok.stdout and "mypy markovcat" in ok.stdout
    install = _fake_ci(tmp_path / "install", pip=1, pytest_status=0)  # `set -e` alone ignores this one
    assert install.returncode != 0 and "test command failed (exit 1)" in install.stderr
    assert "ruff" not in install.stdout
    empty = _fake_ci(tmp_path / "empty", pip=0, pytest_status=5)
    assert empty.returncode != 0 and "collected no tests" in empty.stderr
    red = _fake_ci(tmp_path / "red", pip=0, pytest_status=1)
    assert red.returncode != 0 and "exit 1" in red.stderr
    lint = _fake_ci(tmp_path / "lint", pip=0, pytest_status=0, ruff=1)
    assert lint.returncode != 0 and "ruff check failed" in lint.stderr
