"""The import contract: the core (``markovcat/``) imports no torch, no backend, no application.

Every core module is found with :mod:`pkgutil` (none is listed by hand) and imported alone
in a fresh interpreter; afterwards ``sys.modules`` must hold no torch, nothing under
``markovcat.backends`` or ``markovcat.experiments``, no discopy, and no hypothesis (except
for ``markovcat.strategies``, the strategies for users' own tests).  A static check reads
the source: no import statement of those packages anywhere in the core, not even inside a
function.  The one sanctioned way out is ``markovcat._FORWARDED``, the table by which
``mc.symmetrise`` and friends reach the torch procedures on first use.  The applications
(``experiments/``) import from the backends only public names: none starting with ``_``, and
only names in the module's ``__all__`` where it has one.
"""

from __future__ import annotations

import ast
import json
import os
import pkgutil
import subprocess
import sys
from pathlib import Path

import pytest

import markovcat

#: Packages installed under the ``markovcat`` name that are not the core.
NOT_CORE = ("markovcat.backends", "markovcat.experiments", "markovcat.diagrams")
#: What no core module may pull in.
FORBIDDEN = ("torch", "markovcat.backends", "markovcat.experiments", "discopy", "hypothesis")
#: The modules ``markovcat._FORWARDED`` may name, and nothing else.
FORWARD_TARGETS = {"markovcat.backends.torch.procedures", "markovcat.backends.torch.equivariance"}


def _is_core(name: str) -> bool:
    return not any(name == p or name.startswith(p + ".") for p in NOT_CORE)


def core_modules() -> list[str]:
    """``markovcat`` and every module below it, found by pkgutil, less the installed non-core packages."""
    found = ["markovcat"]
    for info in pkgutil.walk_packages(markovcat.__path__, "markovcat.", onerror=lambda name: None):
        if _is_core(info.name):
            found.append(info.name)
    return sorted(found)


def core_files() -> dict[str, Path]:
    files = {}
    for name in core_modules():
        spec = __import__("importlib.util").util.find_spec(name)
        assert spec is not None and spec.origin is not None, name
        files[name] = Path(spec.origin)
    return files


def _allowed(module: str) -> tuple[str, ...]:
    return ("hypothesis",) if module == "markovcat.strategies" else ()


def _offends(imported: str, module: str) -> bool:
    return any(
        (imported == bad or imported.startswith(bad + ".")) and bad not in _allowed(module) for bad in FORBIDDEN
    )


def test_the_core_modules_are_discovered() -> None:
    modules = core_modules()
    for expected in ("markovcat.syntax", "markovcat.markov", "markovcat.theorems", "markovcat.strategies"):
        assert expected in modules
    assert not [m for m in modules if not _is_core(m)]


_PROBE = """
import importlib, json, sys
importlib.import_module(sys.argv[1])
print(json.dumps(sorted(sys.modules)))
"""


def test_each_core_module_imports_alone_without_torch_backends_or_hypothesis() -> None:
    env = {**os.environ, "PYTHONDONTWRITEBYTECODE": "1"}
    modules = core_modules()
    running = {
        m: subprocess.Popen([sys.executable, "-c", _PROBE, m], stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
        for m in modules
    }
    failures = []
    for module, process in running.items():
        out, err = process.communicate(timeout=120)
        assert process.returncode == 0, f"importing {module} alone fails:\n{err.decode()}"
        loaded = json.loads(out)
        bad = sorted(name for name in loaded if _offends(name, module))
        if bad:
            failures.append(f"{module} imports {', '.join(bad[:5])}")
    assert not failures, "; ".join(failures)


def _imports(tree: ast.AST, module: str) -> list[tuple[int, str]]:
    """Every module named by an import statement, anywhere in the tree (relative imports resolved)."""
    package = module if module == "markovcat" else module.rsplit(".", 1)[0]
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = package.split(".")
                base = ".".join(parts[: len(parts) - node.level + 1] + ([base] if base else []))
            found.append((node.lineno, base))
            found += [(node.lineno, f"{base}.{alias.name}") for alias in node.names]
    return found


def _dynamic_imports(tree: ast.AST) -> list[int]:
    """Lines that call ``importlib.import_module``, ``import_module`` or ``__import__``."""
    lines = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            f = node.func
            name = f.attr if isinstance(f, ast.Attribute) else f.id if isinstance(f, ast.Name) else ""
            if name in ("import_module", "__import__"):
                lines.append(node.lineno)
    return lines


def _strings_naming(tree: ast.AST, prefixes: tuple[str, ...]) -> list[ast.Constant]:
    return [
        node
        for node in ast.walk(tree)
        if isinstance(node, ast.Constant)
        and isinstance(node.value, str)
        and any(node.value == p or node.value.startswith(p + ".") for p in prefixes)
    ]


def test_no_core_source_imports_torch_a_backend_or_an_application() -> None:
    failures = []
    for module, path in core_files().items():
        tree = ast.parse(path.read_text(), str(path))
        for line, imported in _imports(tree, module):
            if _offends(imported, module):
                failures.append(f"{path.name}:{line} imports {imported}")
        if module != "markovcat":
            failures += [f"{path.name}:{line} imports dynamically" for line in _dynamic_imports(tree)]
            failures += [
                f"{path.name}:{node.lineno} names the module {node.value!r}"
                for node in _strings_naming(tree, ("torch", "markovcat.backends", "markovcat.experiments"))
            ]
    assert not failures, "; ".join(failures)


def test_no_core_module_imports_the_shipped_proofs() -> None:
    """``markovcat.theorems`` is the top layer of the core: it is built from the rest, never imported by it."""
    importers = [
        f"{path.name}:{line}"
        for module, path in core_files().items()
        for line, imported in _imports(ast.parse(path.read_text()), module)
        if module != "markovcat.theorems" and imported.split(".")[:2] == ["markovcat", "theorems"]
    ]
    assert not importers, importers


def _forwarding_table(tree: ast.Module) -> ast.Dict:
    tables = [
        node.value
        for node in tree.body
        if isinstance(node, ast.AnnAssign | ast.Assign)
        and isinstance(node.value, ast.Dict)
        and any(isinstance(t, ast.Name) and t.id == "_FORWARDED" for t in _targets(node))
    ]
    assert len(tables) == 1, "markovcat/__init__.py must define the forwarding table _FORWARDED once"
    return tables[0]


def _targets(node: ast.AnnAssign | ast.Assign) -> list[ast.expr]:
    return [node.target] if isinstance(node, ast.AnnAssign) else list(node.targets)


def test_the_top_level_forwards_to_the_torch_backend_only_through_its_one_table() -> None:
    path = core_files()["markovcat"]
    tree = ast.parse(path.read_text(), str(path))
    table = _forwarding_table(tree)
    targets = {v.value for v in table.values if isinstance(v, ast.Constant)}
    assert all(isinstance(v, ast.Constant) and isinstance(v.value, str) for v in table.values)
    assert targets == FORWARD_TARGETS
    # the module paths appear in the table and nowhere else, and only __getattr__ imports dynamically
    in_table = {id(v) for v in table.values}
    stray = [n for n in _strings_naming(tree, ("torch", "markovcat.backends", "markovcat.experiments"))
             if id(n) not in in_table]
    assert not stray, [n.value for n in stray]
    getattr_fns = [n for n in tree.body if isinstance(n, ast.FunctionDef) and n.name == "__getattr__"]
    assert len(getattr_fns) == 1
    inside = set(_dynamic_imports(getattr_fns[0]))
    assert set(_dynamic_imports(tree)) == inside and len(inside) == 1
    assert set(markovcat._FORWARDED.values()) == FORWARD_TARGETS


def test_the_static_check_catches_an_import_hidden_in_a_function(tmp_path: Path) -> None:
    source = "def f():\n    import torch\n    from markovcat.backends.torch import procedures\n    return 1\n"
    imported = [name for _, name in _imports(ast.parse(source), "markovcat.syntax")]
    assert _offends(imported[0], "markovcat.syntax") and _offends(imported[1], "markovcat.syntax")
    relative = "from .backends import torch\n"
    assert any(_offends(n, "markovcat.syntax") for _, n in _imports(ast.parse(relative), "markovcat.syntax"))
    assert _dynamic_imports(ast.parse("import importlib\nimportlib.import_module('torch')\n"))
    assert not _offends("hypothesis", "markovcat.strategies") and _offends("hypothesis", "markovcat.syntax")


def test_strategies_without_hypothesis_says_how_to_install_it() -> None:
    blocker = (
        "import sys\n"
        "class Block:\n"
        "    def find_spec(self, name, path=None, target=None):\n"
        "        if name == 'hypothesis' or name.startswith('hypothesis.'):\n"
        "            raise ImportError('No module named ' + repr(name))\n"
        "sys.meta_path.insert(0, Block())\n"
        "try:\n"
        "    import markovcat.strategies\n"
        "except ImportError as error:\n"
        "    print(error)\n"
    )
    out = subprocess.run([sys.executable, "-c", blocker], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert "pip install hypothesis" in out.stdout and "dev" in out.stdout


def test_mc_equivariance_equation_stays_the_function_after_the_torch_procedures_load() -> None:
    pytest.importorskip("torch")
    function = markovcat.equivariance_equation
    assert callable(markovcat.symmetrise)
    assert markovcat.equivariance_equation is function


def test_old_names_still_answer_with_a_deprecation_warning() -> None:
    for old, new in (("canonical", markovcat.NormalForm.of), ("equivariance", markovcat.equivariance_equation)):
        with pytest.warns(DeprecationWarning, match=f"markovcat.{old} is deprecated"):
            assert getattr(markovcat, old) == new
        assert old not in markovcat.__all__



def test_torch_old_names_still_answer_with_a_deprecation_warning() -> None:
    pytest.importorskip("torch")
    import importlib

    from markovcat.backends import torch as mct
    from markovcat.backends.torch import interpretation, procedures

    compile_module = importlib.import_module("markovcat.backends.torch.compile")  # mct.compile is the function

    olds = [(mct, "check", mct.check_model), (procedures, "check", mct.check_model),
            (mct, "Symmetry", mct.GroupActions), (compile_module, "Symmetry", mct.GroupActions),
            (interpretation, "Symmetry", mct.GroupActions), (mct.gammas, "haar_gamma", mct.gammas.from_haar),
            (importlib.import_module("markovcat.backends.torch.gammas.builders"), "haar_gamma", mct.gammas.from_haar)]
    for module, old, new in olds:
        with pytest.warns(DeprecationWarning, match=f"{module.__name__}.{old} is deprecated: use {new.__name__}"):
            assert getattr(module, old) is new
        assert old not in module.__all__ and old not in dir(module)
    assert mct.checks.__name__ == "markovcat.backends.torch.checks"  # the module keeps its name
    assert mct.Symmetric(3).name == "S3"  # the group keeps its name
    assert markovcat.haar_gamma is markovcat.symmetrisation.haar_gamma  # the C^G morphism keeps its name

# -- the applications use the backends' public names only -------------------------------------------------------------
APPLICATIONS = Path(__file__).parent.parent / "experiments"


def _private_backend_imports(tree: ast.AST, where: str) -> list[str]:
    """``where:line imports module.name`` for each backend name that is private (``_x``) or not in its ``__all__``."""
    import importlib

    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("markovcat.backends"):
            module = importlib.import_module(str(node.module))
            public = getattr(module, "__all__", None)
            for alias in node.names:
                is_module = isinstance(getattr(module, alias.name, None), type(module))
                if alias.name.startswith("_") or (public is not None and alias.name not in public and not is_module):
                    found.append(f"{where}:{node.lineno} imports {node.module}.{alias.name}")
        elif isinstance(node, ast.Attribute) and node.attr.startswith("_") and not node.attr.startswith("__"):
            base = node.value
            if isinstance(base, ast.Name) and base.id in ("mct", "gm", "gammas"):
                found.append(f"{where}:{node.lineno} uses {base.id}.{node.attr}")
    return found


def test_the_applications_import_no_private_backend_name() -> None:
    pytest.importorskip("torch")
    failures = []
    for path in sorted(APPLICATIONS.rglob("*.py")):
        where = str(path.relative_to(APPLICATIONS))
        failures += _private_backend_imports(ast.parse(path.read_text(), str(path)), where)
    assert not failures, "; ".join(failures)


def test_the_application_check_catches_private_and_unexported_names() -> None:
    pytest.importorskip("torch")
    source = ("from markovcat.backends.torch.compile import _check_callable, Spec\n"
              "from markovcat.backends.torch.groups import Orthogonal, check_layout\n"
              "from markovcat.backends.torch import gammas\n"
              "x = mct._FORWARDED\n")
    found = _private_backend_imports(ast.parse(source), "app.py")
    assert found == ["app.py:1 imports markovcat.backends.torch.compile._check_callable",
                     "app.py:2 imports markovcat.backends.torch.groups.check_layout", "app.py:4 uses mct._FORWARDED"]
