"""Validity and uniqueness for samples drawn where RDKit was missing, from the run's XYZ file.

A GPU machine may lack RDKit; a run there records the stabilities (which need no RDKit) and marks
the chemistry ``pending`` (``metrics["sample_chemistry"]``).  :func:`complete` reads the run's
``<name>.xyz`` beside its record, recomputes EDM's four metrics with
:func:`~markovcat.experiments.symdiff.metrics.evaluate`, refuses if the recomputed stabilities
differ from the recorded ones by more than the XYZ file's rounding can explain (other samples,
other code), and only then writes validity and uniqueness into the record, noting the revision.

    python -m markovcat.experiments.symdiff.cli chemistry out/symdiff_*.json
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from markovcat.experiments.runner import git_revision, write_record
from markovcat.experiments.symdiff.data import ELEMENTS, MAX_ATOMS
from markovcat.experiments.symdiff.metrics import evaluate
from markovcat.experiments.symdiff.train import read_record

__all__ = ["read_xyz", "complete", "TOLERANCE"]

#: Percentage points by which a recomputed stability may differ from the recorded one: positions are
#: written to 1e-5 Å, which moves a bond decision only for a distance within 1e-5 Å of a threshold.
TOLERANCE = 0.2


def read_xyz(path: Path | str) -> tuple[torch.Tensor, torch.Tensor]:
    """``(positions (b, 29, 3) float64, types (b, 29))`` (``-1`` padding) of a multi-frame XYZ file."""
    lines = Path(path).read_text().splitlines()
    positions, types, i = [], [], 0
    while i < len(lines) and lines[i].strip():
        count = int(lines[i])
        if not 1 <= count <= MAX_ATOMS:
            raise ValueError(f"{path}:{i + 1}: a molecule of {count} atoms (QM9 has 1 to {MAX_ATOMS})")
        rows = [line.split() for line in lines[i + 2:i + 2 + count]]
        if len(rows) != count or any(len(r) != 4 or r[0] not in ELEMENTS for r in rows):
            raise ValueError(f"{path}:{i + 1}: expected {count} lines 'element x y z' after the comment")
        xyz = torch.zeros(MAX_ATOMS, 3, dtype=torch.float64)
        kinds = torch.full((MAX_ATOMS,), -1, dtype=torch.long)
        xyz[:count] = torch.tensor([[float(v) for v in r[1:]] for r in rows], dtype=torch.float64)
        kinds[:count] = torch.tensor([ELEMENTS.index(r[0]) for r in rows])
        positions.append(xyz)
        types.append(kinds)
        i += 2 + count
    if not positions:
        raise ValueError(f"{path} holds no molecules")
    return torch.stack(positions), torch.stack(types)


def complete(path: Path | str) -> dict[str, Any]:
    """Fill in the pending validity and uniqueness of the record at ``path``; returns the record.

    A record with no pending chemistry is returned unchanged.  Raises ``FileNotFoundError`` without
    the XYZ file and ``ValueError`` when it is not the record's samples.
    """
    path = Path(path)
    record = read_record(path)
    metrics = record["metrics"]
    if "sample_chemistry" not in metrics:
        return record
    xyz = path.with_suffix(".xyz")
    if not xyz.exists():
        raise FileNotFoundError(f"no samples file {xyz} beside the record")
    positions, types = read_xyz(xyz)
    scores = evaluate(positions, types).as_percent()
    if len(types) != metrics["samples"]:
        raise ValueError(f"{xyz} holds {len(types)} molecules, the record {metrics['samples']}")
    for key in ("atom_stability", "molecule_stability"):
        if abs(scores[key] - metrics[f"sample_{key}"]) > TOLERANCE:
            raise ValueError(f"{xyz}: {key} {scores[key]:.2f}% from the file, {metrics[f'sample_{key}']:.2f}% "
                             f"recorded: not this record's samples")
    metrics["sample_validity"], metrics["sample_uniqueness"] = scores["validity"], scores["uniqueness"]
    del metrics["sample_chemistry"]
    record["chemistry_added"] = {"git_revision": git_revision(), "from": xyz.name}
    write_record(path, record)
    return record
