"""The installed import names are exactly markovcat, markovcat.backends and markovcat.diagrams."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import markovcat


def test_subpackages_are_installed_under_markovcat() -> None:
    import markovcat.backends
    import markovcat.diagrams

    assert Path(markovcat.backends.__file__).parent.name == "backends"
    assert Path(markovcat.diagrams.__file__).parent.name == "diagrams"


def test_no_bare_top_level_backends_or_diagrams() -> None:
    # in a fresh interpreter: collecting doctests from the source tree imports these paths here
    code = "import importlib.util as u; print(u.find_spec('backends') is None, u.find_spec('diagrams') is None)"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd="/")
    assert result.stdout.split() == ["True", "True"]


def test_importing_markovcat_does_not_import_torch_or_discopy() -> None:
    code = "import sys, markovcat; print('torch' in sys.modules, 'discopy' in sys.modules)"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd="/")
    assert result.stdout.split() == ["False", "False"]
    assert markovcat.__version__
