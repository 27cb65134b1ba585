"""Fill in the test bounds a finished SymDiff record lacks, from the weights its run saved.

Records written before :func:`~markovcat.experiments.symdiff.train.test_bounds` measured the bound
on randomly rotated test molecules have no ``test_nll_rotated``.  :func:`rescore` loads the run's
selected weights (``<checkpoints>/<name>.model.pt``), recomputes the test bound with the run's
own draws, refuses if it does not reproduce the recorded ``test_nll`` (other weights, other
data, other code), and only then adds the missing fields, noting the revision that added them
under ``rescored``.

    markovcat experiment symdiff-rescore      # every record in experiments/results/symdiff/ that lacks them
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import torch

from markovcat.experiments.runner import git_revision, write_record
from markovcat.experiments.symdiff.data import CACHE, load
from markovcat.experiments.symdiff.train import (
    CHECKPOINTS,
    RESULTS,
    SymDiffConfig,
    first_molecules,
    load_model,
    read_record,
    test_bounds,
    weights_path,
)

__all__ = ["MISSING", "needs_rescore", "rescore", "rescore_all"]

#: The fields :func:`rescore` adds.
MISSING = ("test_nll_rotated", "test_nll_rotated_sem")


def needs_rescore(record: dict[str, Any]) -> bool:
    """Whether the record lacks any of :data:`MISSING`."""
    return any(key not in record["metrics"] for key in MISSING)


def rescore(path: Path | str, checkpoints: Path | str = CHECKPOINTS, data: Path | str = CACHE / "qm9.pt",
            qm9: Any = None) -> dict[str, Any]:
    """Add the missing test bounds to the record at ``path``; returns the record (unchanged if nothing lacks).

    Raises ``FileNotFoundError`` when the run's weights are not in ``checkpoints``, and
    ``ValueError`` when they do not reproduce the recorded test bound to 1e-6 (relative).
    """
    path = Path(path)
    record = read_record(path)
    if not needs_rescore(record):
        return record
    config = SymDiffConfig.from_dict(record["config"])
    weights = weights_path(config, checkpoints)
    if not weights.exists():
        raise FileNotFoundError(f"{path.name}: no weights {weights}; rerun the run (delete its record) to measure "
                                f"the rotated test bound")
    stored_config, model = load_model(weights)
    if stored_config != config:
        raise ValueError(f"{weights} belongs to another configuration than {path.name}")
    qm9 = load(data) if qm9 is None else qm9
    test = first_molecules(qm9.test, config.test_size)  # the test molecules the run scored
    bounds = test_bounds(model, config, test, qm9.train.histogram(), torch.device("cpu"))
    recorded = record["metrics"]["test_nll"]
    if not math.isclose(bounds["test_nll"], recorded, rel_tol=1e-6):
        raise ValueError(f"{path.name}: the weights give a test bound of {bounds['test_nll']:.6f}, the record says "
                         f"{recorded:.6f}: not the run that wrote it (or other data or code); nothing changed")
    added = [key for key in MISSING if key not in record["metrics"]]
    record["metrics"].update({key: bounds[key] for key in added})
    record["rescored"] = {"fields": added, "git_revision": git_revision()}
    write_record(path, record)
    return record


def rescore_all(records: Path | str = RESULTS, checkpoints: Path | str = CHECKPOINTS,
                data: Path | str = CACHE / "qm9.pt", say: Any = print) -> int:
    """:func:`rescore` every record in ``records`` that needs it; returns how many could not be."""
    pending = [p for p in sorted(Path(records).glob("symdiff_*.json")) if needs_rescore(read_record(p))]
    say(f"rescore: {len(pending)} record(s) lack {', '.join(MISSING)}")
    qm9 = load(data) if pending else None
    failed = 0
    for path in pending:
        try:
            metrics = rescore(path, checkpoints, data, qm9)["metrics"]
        except (FileNotFoundError, ValueError) as error:
            say(f"rescore: {error}")
            failed += 1
            continue
        say(f"rescore: {path.name}: test bound {metrics['test_nll']:.2f}, on rotated molecules "
            f"{metrics['test_nll_rotated']:.2f} ± {metrics['test_nll_rotated_sem']:.2f}")
    return failed
