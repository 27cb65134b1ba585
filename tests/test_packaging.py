"""What gets installed: the import names under markovcat, the subpackages in the wheel, the console script."""

from __future__ import annotations

import shutil
import subprocess
import sys
import zipfile
from importlib.metadata import entry_points
from pathlib import Path

import pytest

import markovcat

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    tomllib = pytest.importorskip("tomli", reason="reading pyproject.toml on Python 3.10 needs tomli")

ROOT = Path(__file__).parent.parent
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())
SUBPACKAGES = ("markovcat.backends", "markovcat.backends.torch", "markovcat.diagrams", "markovcat.experiments")


def test_subpackages_are_installed_under_markovcat() -> None:
    # in a fresh interpreter outside the source tree: what an installed markovcat provides
    code = ("import importlib.util as u, sys\n"
            f"for name in {SUBPACKAGES!r}:\n"
            "    spec = u.find_spec(name)\n"
            "    print(name, spec is not None and spec.origin is not None and spec.origin.endswith('__init__.py'))")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd="/")
    assert result.stdout.split() == [word for name in SUBPACKAGES for word in (name, "True")]


def test_every_package_folder_is_listed_for_setuptools() -> None:
    """Each folder with an ``__init__.py`` under an installed root is a listed package (else the wheel lacks it)."""
    listed = set(PYPROJECT["tool"]["setuptools"]["packages"])
    roots = PYPROJECT["tool"]["setuptools"]["package-dir"]
    found = set()
    for package, folder in roots.items():
        for init in (ROOT / folder).rglob("__init__.py"):
            relative = init.parent.relative_to(ROOT / folder)
            found.add(".".join((package, *relative.parts)))
    assert found == listed
    assert set(SUBPACKAGES) <= listed


def test_no_bare_top_level_backends_or_diagrams() -> None:
    # in a fresh interpreter: collecting doctests from the source tree imports these paths here
    code = ("import importlib.util as u; "
            "print(*(u.find_spec(n) is None for n in ('backends', 'diagrams', 'experiments')))")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd="/")
    assert result.stdout.split() == ["True", "True", "True"]


def test_importing_markovcat_does_not_import_torch_or_discopy() -> None:
    code = "import sys, markovcat; print('torch' in sys.modules, 'discopy' in sys.modules)"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd="/")
    assert result.stdout.split() == ["False", "False"]
    assert markovcat.__version__


def test_star_import_leaves_torch_unimported_and_dir_lists_the_forwarded_names() -> None:
    code = ("import sys\nfrom markovcat import *\nimport markovcat\n"
            "print('torch' in sys.modules, 'Box' in dir(), 'symmetrise' in dir(markovcat), 'torch' in sys.modules)")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd="/")
    assert result.stdout.split() == ["False", "True", "True", "False"]
    assert set(markovcat._FORWARDED) <= set(dir(markovcat)) and not set(markovcat._FORWARDED) & set(markovcat.__all__)


def test_the_console_script_is_the_cli() -> None:
    declared = PYPROJECT["project"]["scripts"]["markovcat"]
    assert declared == "markovcat.experiments.cli:main"
    (installed,) = entry_points(group="console_scripts", name="markovcat")
    assert installed.value == declared
    from markovcat.experiments.cli import main

    assert installed.load() is main


def test_version_agrees_everywhere(capsys: pytest.CaptureFixture[str]) -> None:
    """``markovcat --version`` prints the installed version, which is pyproject's and ``markovcat.__version__``."""
    from markovcat.experiments.cli import main

    with pytest.raises(SystemExit) as exit_info:
        main(["--version"])
    assert exit_info.value.code == 0
    assert capsys.readouterr().out.strip() == f"markovcat {PYPROJECT['project']['version']}"
    assert markovcat.__version__ == PYPROJECT["project"]["version"]
    script = shutil.which("markovcat", path=str(Path(sys.executable).parent))
    if script is not None:  # the console script itself, as a user runs it
        result = subprocess.run([script, "--version"], capture_output=True, text=True, check=True, cwd="/")
        assert result.stdout.strip() == f"markovcat {markovcat.__version__}"


def test_the_wheel_holds_every_subpackage_and_the_console_script(tmp_path: Path) -> None:
    """``pip wheel`` from a copy of the source: every subpackage's modules and the entry point are in it."""
    source = tmp_path / "src"
    source.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, source / name)
    for folder in set(PYPROJECT["tool"]["setuptools"]["package-dir"].values()):
        shutil.copytree(ROOT / folder, source / folder, ignore=shutil.ignore_patterns("__pycache__", "*.png"))
    command = [sys.executable, "-m", "pip", "wheel", str(source), "--no-deps", "--no-build-isolation", "-q",
               "-w", str(tmp_path / "dist")]
    subprocess.run(command, check=True, capture_output=True, text=True, cwd=tmp_path, timeout=300)
    (wheel,) = (tmp_path / "dist").glob("markovcat-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    for package in SUBPACKAGES:
        folder = package.replace(".", "/")
        assert f"{folder}/__init__.py" in names, f"{package} is missing from the wheel"
    for module in ("markovcat/backends/torch/compile.py", "markovcat/experiments/cli.py",
                   "markovcat/experiments/demo/training.py", "markovcat/backends/torch/gammas/table.py",
                   "markovcat/backends/discopy.py", "markovcat/py.typed"):
        assert module in names, f"{module} is missing from the wheel"
    (entry_points_txt,) = [n for n in names if n.endswith(".dist-info/entry_points.txt")]
    text = zipfile.ZipFile(wheel).read(entry_points_txt).decode()
    assert "[console_scripts]" in text and "markovcat = markovcat.experiments.cli:main" in text
