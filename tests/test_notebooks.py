"""Every notebook runs top to bottom, so the tours never rot.

A notebook that trains or times something takes its sizes from one cell tagged ``parameters``;
the test runs it with the small values of :data:`FAST` (a cell inserted right after that one),
so the file stays fast.  A pass proves that every cell runs and that the notebook's own
``assert`` s hold (exact invariance of the symmetrised models, for instance) at those sizes; it
does not reproduce the numbers printed in the committed outputs, which come from the defaults.
"""

from __future__ import annotations

import json
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

NOTEBOOKS = sorted((Path(__file__).parent.parent / "notebooks").glob("*.ipynb"))

#: Overrides of each notebook's ``parameters`` cell under test.
FAST = {
    "03-compile.ipynb": 'STEPS = 20\nBACKEND = "eager"\n',
    "04-procedures.ipynb": 'CHECK = {"samples": 60, "pairs": 2, "permutations": 300}\nREPEATS = 2\n',
    "05-images-and-sets.ipynb": "STEPS = 10\n",
}

#: The committed outputs stay small: no single output, and no notebook, above these sizes.
MAX_OUTPUT_BYTES = 100_000
MAX_NOTEBOOK_BYTES = 300_000


def _parameters(notebook: nbformat.NotebookNode) -> list[int]:
    return [i for i, c in enumerate(notebook.cells) if "parameters" in c.get("metadata", {}).get("tags", [])]


def _with_fast_parameters(notebook: nbformat.NotebookNode, name: str) -> nbformat.NotebookNode:
    if name not in FAST:
        return notebook
    cells = _parameters(notebook)
    assert len(cells) == 1, f"{name} needs exactly one cell tagged 'parameters' for the test's overrides"
    notebook.cells.insert(cells[0] + 1, nbformat.v4.new_code_cell(FAST[name]))
    return notebook


#: Notebooks whose run is behind the ``slow`` marker (10 to 20 s each on 2 cores, with a kernel start):
#: ``.ci/run`` runs them after the default suite, which keeps the tour (01) and the compile notebook (03).
SLOW = {"02-symmetrise.ipynb", "04-procedures.ipynb", "05-images-and-sets.ipynb"}


@pytest.mark.parametrize("path", [pytest.param(p, marks=pytest.mark.slow) if p.name in SLOW else p for p in NOTEBOOKS],
                         ids=[p.name for p in NOTEBOOKS])
def test_notebook_runs(path: Path, tmp_path: Path) -> None:
    notebook = _with_fast_parameters(nbformat.read(path, as_version=4), path.name)
    resources = {"metadata": {"path": str(tmp_path)}}
    NotebookClient(notebook, timeout=300, kernel_name="python3", resources=resources).execute()
    errors = [o for c in notebook.cells if c.cell_type == "code" for o in c.outputs if o.output_type == "error"]
    assert not errors


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.name for p in NOTEBOOKS])
def test_committed_outputs_are_small_and_complete(path: Path) -> None:
    assert path.stat().st_size <= MAX_NOTEBOOK_BYTES, f"{path.name}: strip or shrink its outputs"
    notebook = nbformat.read(path, as_version=4)
    code = [c for c in notebook.cells if c.cell_type == "code"]
    assert all(c.execution_count is not None for c in code), f"{path.name} is committed unexecuted"
    for cell in code:
        for output in cell.outputs:
            assert output.output_type != "error", f"{path.name} is committed with an error output"
            size = len(json.dumps(output))
            assert size <= MAX_OUTPUT_BYTES, f"{path.name}: an output of {size} bytes (limit {MAX_OUTPUT_BYTES})"


def test_fast_parameters_name_notebooks_that_exist() -> None:
    assert set(FAST) <= {p.name for p in NOTEBOOKS}


def test_there_is_a_tour() -> None:
    assert any(p.name == "01-tour.ipynb" for p in NOTEBOOKS)
