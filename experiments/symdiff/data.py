"""QM9 for SymDiff: the ``qm9pack`` CSV files, converted once to a padded tensor cache, and the EDM split.

The ``qm9pack`` package (optional extra ``qm9``) ships 130,831 molecules, the QM9 set less the
3,054 molecules that failed the consistency check, the same count as EDM (Hoogeboom et al. 2022).
Each has up to 29 atoms of the elements H, C, N, O, F with 3D coordinates in Å and a SMILES string.
Its Python module needs ``pkg_resources``, so the CSV files it ships are read directly:
:func:`qm9pack_csvs` finds them without importing the package.

:func:`convert` parses them once into :class:`Molecules` (positions ``(n, 29, 3)`` float32, element
indices ``(n, 29)`` with ``-1`` for padding, SMILES) plus the seeded split of EDM's set-up:
100,000 train, ``n // 10`` test (13,083), the rest (17,748) validation.  :func:`load` reads the
cache (``experiments/data/qm9/qm9.pt``, :data:`CACHE`, not committed) and builds it when missing.

Coordinates live on the zero centre-of-mass subspace (:func:`remove_mean`), the unweighted mean of
the real atoms, as in EDM; :func:`zero_com_gaussian` samples the standard Gaussian on that subspace.
"""

from __future__ import annotations

import csv
import importlib.util
import json
import os
import sys
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

__all__ = [
    "ELEMENTS", "ATOMIC_NUMBERS", "MAX_ATOMS", "CACHE", "SPLIT_SEED", "QM9FormatError",
    "Molecules", "QM9", "qm9pack_csvs", "read_csv", "convert", "split_indices", "load",
    "remove_mean", "com_error", "zero_com_gaussian", "position_dof",
]

#: The element order of the one-hot features (EDM's QM9 set-up).
ELEMENTS: tuple[str, ...] = ("H", "C", "N", "O", "F")
#: Atomic number of each element of :data:`ELEMENTS` (the ``charges`` feature).
ATOMIC_NUMBERS: tuple[int, ...] = (1, 6, 7, 8, 9)
MAX_ATOMS = 29
CACHE = Path("experiments/data/qm9")
SPLIT_SEED = 0
#: The split sizes of the full set: EDM / Cormorant take 100,000 train and 10% test.
TRAIN_SIZE = 100_000
FULL_SIZE = 130_831
_COLUMNS = ("Index", "SMILES", "N_atoms", "Elements", "XYZ_Ang")
_FORMAT_VERSION = 1


class QM9FormatError(ValueError):
    """A QM9 CSV row that cannot be read: names the file, the line and the problem."""


@dataclass(frozen=True, eq=False)
class Molecules:
    """A padded batch of molecules.

    ``positions`` ``(n, w, 3)`` in Å (zero on padding; ``w = 29`` unless :meth:`trimmed`), ``types``
    ``(n, w)`` int64 indices into
    :data:`ELEMENTS` (``-1`` on padding), ``smiles`` one string per molecule, ``index`` the QM9 index.
    """

    positions: Tensor
    types: Tensor
    smiles: tuple[str, ...]
    index: Tensor

    def __post_init__(self) -> None:
        n, width = self.positions.shape[:2]
        if self.positions.shape != (n, width, 3) or self.types.shape != (n, width) or width > MAX_ATOMS:
            raise ValueError(f"positions must be (n, w, 3) and types (n, w) with w <= {MAX_ATOMS}; got "
                             f"{tuple(self.positions.shape)} and {tuple(self.types.shape)}")
        if len(self.smiles) != n or self.index.shape != (n,):
            raise ValueError(f"{n} molecules but {len(self.smiles)} SMILES and {tuple(self.index.shape)} indices")

    def __len__(self) -> int:
        return int(self.positions.shape[0])

    @property
    def mask(self) -> Tensor:
        """``(n, w)`` bool: which atom slots hold an atom."""
        return self.types >= 0

    @property
    def num_atoms(self) -> Tensor:
        """``(n,)`` int64: the number of atoms of each molecule."""
        return self.mask.sum(dim=1)

    @property
    def one_hot(self) -> Tensor:
        """``(n, w, 5)`` float32 one-hot element features (zero rows on padding)."""
        return torch.nn.functional.one_hot(self.types.clamp(min=0), len(ELEMENTS)).float() * self.mask[..., None]

    @property
    def charges(self) -> Tensor:
        """``(n, w)`` float32 atomic numbers (zero on padding)."""
        table = torch.tensor((0, *ATOMIC_NUMBERS), dtype=torch.float32)
        return table[self.types + 1]

    def subset(self, rows: Tensor | Sequence[int]) -> Molecules:
        """The molecules at ``rows`` (an index tensor or list), in that order."""
        rows = torch.as_tensor(rows, dtype=torch.long)
        smiles = tuple(self.smiles[i] for i in rows.tolist())
        return Molecules(self.positions[rows], self.types[rows], smiles, self.index[rows])

    def trimmed(self) -> Molecules:
        """The same molecules with only ``max(num_atoms)`` atom slots: less padding for a batch."""
        width = max(1, int(self.num_atoms.max())) if len(self) else 1
        return Molecules(self.positions[:, :width], self.types[:, :width], self.smiles, self.index)

    def histogram(self) -> Tensor:
        """``(30,)`` int64: how many molecules have ``k`` atoms, ``k = 0..29`` (the law of ``N`` for ``log p(N)``)."""
        return torch.bincount(self.num_atoms, minlength=MAX_ATOMS + 1)

    def centred(self) -> Molecules:
        """The same molecules moved to zero centre of mass (:func:`remove_mean`)."""
        return Molecules(remove_mean(self.positions, self.mask), self.types, self.smiles, self.index)


@dataclass(frozen=True, eq=False)
class QM9:
    """The three splits of QM9 (EDM's sizes on the full set)."""

    train: Molecules
    valid: Molecules
    test: Molecules


def qm9pack_csvs() -> list[Path]:
    """The molecule CSV files ``qm9_part*.csv`` shipped by ``qm9pack``, found without importing it.

    Raises :class:`ModuleNotFoundError` with the install command when ``qm9pack`` is absent.
    """
    spec = importlib.util.find_spec("qm9pack")
    if spec is None or not spec.submodule_search_locations:
        raise ModuleNotFoundError(
            "QM9 needs the optional package qm9pack: pip install torch==<your torch> qm9pack "
            "(or the project's [qm9] extra)", name="qm9pack")
    folder = Path(next(iter(spec.submodule_search_locations))) / "data"
    files = sorted(folder.glob("qm9_part*.csv"))
    if not files:
        raise FileNotFoundError(f"qm9pack is installed but {folder} holds no qm9_part*.csv file")
    return files


def _parse_list(text: str, where: str, field: str) -> list[str]:
    text = text.strip()
    if not (text.startswith("[") and text.endswith("]")):
        raise QM9FormatError(f"{where}: {field} must be a bracketed list, got {text[:60]!r}")
    inner = text[1:-1].replace("[", "").replace("]", "")
    return [item.strip().strip("'\"") for item in inner.split(",") if item.strip()]


def read_csv(path: Path | str) -> Iterator[tuple[int, str, list[str], np.ndarray]]:
    """Yield ``(qm9 index, SMILES, elements, positions (k, 3) in Å)`` for each row of one qm9pack CSV.

    Checks the header, the atom count against the element and coordinate lists, the atom limit
    and the elements; any violation raises :class:`QM9FormatError` naming the file and line.
    """
    path = Path(path)
    csv.field_size_limit(min(sys.maxsize, 2**31 - 1))
    with path.open(newline="") as handle:
        reader = csv.reader(handle)
        header = next(reader, None)
        if header is None:
            raise QM9FormatError(f"{path}: empty file")
        missing = [name for name in _COLUMNS if name not in header]
        if missing:
            raise QM9FormatError(f"{path}: header lacks the columns {missing}")
        cols = [header.index(name) for name in _COLUMNS]
        for line, row in enumerate(reader, start=2):
            where = f"{path.name} line {line}"
            if len(row) != len(header):
                raise QM9FormatError(f"{where}: {len(row)} fields, the header has {len(header)}")
            index, smiles, count, elements, xyz = (row[c] for c in cols)
            try:
                k = int(count)
                qm9_index = int(index)
            except ValueError as error:
                raise QM9FormatError(f"{where}: Index and N_atoms must be integers ({error})") from None
            atoms = _parse_list(elements, where, "Elements")
            unknown = sorted(set(atoms) - set(ELEMENTS))
            if unknown:
                raise QM9FormatError(f"{where}: molecule {qm9_index} has elements {unknown} outside {ELEMENTS}")
            try:
                coords = np.array(_parse_list(xyz, where, "XYZ_Ang"), dtype=np.float64)
            except ValueError as error:
                raise QM9FormatError(f"{where}: XYZ_Ang holds a non-number ({error})") from None
            if not 0 < k <= MAX_ATOMS or len(atoms) != k or coords.size != 3 * k:
                raise QM9FormatError(f"{where}: N_atoms={k} (limit {MAX_ATOMS}) but {len(atoms)} elements and "
                                     f"{coords.size} coordinates")
            if not np.isfinite(coords).all():
                raise QM9FormatError(f"{where}: XYZ_Ang holds a non-finite value")
            yield qm9_index, smiles, atoms, coords.reshape(k, 3)


def _molecules(rows: Iterable[tuple[int, str, list[str], np.ndarray]]) -> Molecules:
    positions, types, smiles, index = [], [], [], []
    code = {element: i for i, element in enumerate(ELEMENTS)}
    for qm9_index, smile, atoms, coords in rows:
        pos = np.zeros((MAX_ATOMS, 3), dtype=np.float32)
        pos[: len(atoms)] = coords
        typ = np.full(MAX_ATOMS, -1, dtype=np.int64)
        typ[: len(atoms)] = [code[a] for a in atoms]
        positions.append(pos)
        types.append(typ)
        smiles.append(smile)
        index.append(qm9_index)
    if not positions:
        raise QM9FormatError("no molecules were read")
    return Molecules(torch.from_numpy(np.stack(positions)), torch.from_numpy(np.stack(types)), tuple(smiles),
                     torch.tensor(index, dtype=torch.long))


def split_indices(n: int, seed: int = SPLIT_SEED) -> dict[str, Tensor]:
    """A seeded random split of ``n`` molecules: ``n // 10`` test, ``round(n * 100000 / 130831)`` train, rest valid.

    On the full set (n = 130,831) this is EDM's 100,000 / 17,748 / 13,083.
    """
    if n < 3:
        raise ValueError(f"a split needs at least 3 molecules, got {n}")
    test = max(1, n // 10)
    train = min(n - test - 1, max(1, round(n * TRAIN_SIZE / FULL_SIZE)))
    perm = torch.randperm(n, generator=torch.Generator().manual_seed(seed))
    return {"train": perm[:train], "valid": perm[train: n - test], "test": perm[n - test:]}


def _key(files: Sequence[Path], seed: int) -> str:
    stats = [(f.name, f.stat().st_size) for f in files]
    return json.dumps({"files": stats, "seed": seed, "version": _FORMAT_VERSION}, sort_keys=True)


def convert(files: Sequence[Path | str] | None = None, out: Path | str | None = CACHE / "qm9.pt",
            seed: int = SPLIT_SEED) -> QM9:
    """Parse the CSV files (default: :func:`qm9pack_csvs`), split them, and write the cache to ``out``.

    ``out=None`` returns the splits without writing.  The cache stores positions float32, element
    indices int8, the SMILES joined by newlines, and the split as index tensors.
    """
    paths = [Path(f) for f in (qm9pack_csvs() if files is None else files)]
    everything = _molecules(row for path in paths for row in read_csv(path))
    split = split_indices(len(everything), seed)
    if out is not None:
        out = Path(out)
        out.parent.mkdir(parents=True, exist_ok=True)
        state = {"key": _key(paths, seed), "positions": everything.positions,
                 "types": everything.types.to(torch.int8), "smiles": "\n".join(everything.smiles),
                 "index": everything.index.to(torch.int32), **{f"split_{k}": v for k, v in split.items()}}
        partial = out.with_name(f"{out.name}.{os.getpid()}.partial")  # one per process: parallel builds do not clash
        torch.save(state, partial)
        os.replace(partial, out)
    return QM9(*(everything.subset(split[name]) for name in ("train", "valid", "test")))


def load(path: Path | str = CACHE / "qm9.pt", build: bool = True, seed: int = SPLIT_SEED,
         files: Sequence[Path | str] | None = None) -> QM9:
    """The QM9 splits from the cache at ``path``; with ``build`` it is (re)built when missing or stale.

    ``files`` are the CSV sources (default: the installed qm9pack's, when it is installed).  The
    cache is stale when it was built from other files (names and sizes) or another seed; with no
    source known, any cache is taken.  Without ``build`` a missing or stale cache raises
    :class:`FileNotFoundError`.
    """
    path = Path(path)
    sources = [Path(f) for f in files] if files is not None else (
        qm9pack_csvs() if importlib.util.find_spec("qm9pack") is not None else None)
    if path.exists():
        state = torch.load(path, weights_only=True)
        if sources is None or state.get("key") == _key(sources, seed):
            smiles = tuple(state["smiles"].split("\n"))
            everything = Molecules(state["positions"], state["types"].long(), smiles, state["index"].long())
            return QM9(*(everything.subset(state[f"split_{name}"]) for name in ("train", "valid", "test")))
    if not build:
        raise FileNotFoundError(f"no current QM9 cache at {path}; build it with convert() (needs qm9pack)")
    return convert(sources, path, seed)


def _weights(mask: Tensor) -> Tensor:
    if mask.dim() != 2:
        raise ValueError(f"mask must be (batch, atoms), got shape {tuple(mask.shape)}")
    weights = mask.to(torch.get_default_dtype() if not mask.is_floating_point() else mask.dtype)
    if bool((weights.sum(dim=1) == 0).any()):
        raise ValueError("every molecule needs at least one atom in the mask")
    return weights


def remove_mean(x: Tensor, mask: Tensor) -> Tensor:
    """Project ``x`` ``(b, n, 3)`` onto the zero centre-of-mass subspace of the masked atoms; padding set to zero.

    The centre is the unweighted mean of the real atoms (EDM's convention).  Idempotent.
    """
    w = _weights(mask).to(x.dtype)[..., None]
    mean = (x * w).sum(dim=1, keepdim=True) / w.sum(dim=1, keepdim=True)
    return (x - mean) * w


def com_error(x: Tensor, mask: Tensor) -> Tensor:
    """``(b,)``: the norm of the centre of mass of the masked atoms of ``x`` (zero on the subspace)."""
    w = _weights(mask).to(x.dtype)[..., None]
    return ((x * w).sum(dim=1) / w.sum(dim=1)).norm(dim=-1)


def position_dof(mask: Tensor) -> Tensor:
    """``(b,)``: the dimension ``3 (k - 1)`` of the zero centre-of-mass subspace of ``k`` atoms."""
    return 3 * (_weights(mask).sum(dim=1) - 1)


def zero_com_gaussian(shape: Sequence[int], mask: Tensor, generator: torch.Generator | None = None,
                      dtype: torch.dtype = torch.float32) -> Tensor:
    """A standard Gaussian ``shape`` ``(b, n, 3)`` restricted to the zero centre-of-mass subspace of ``mask``.

    The orthogonal projection of an isotropic Gaussian onto a subspace is the standard Gaussian of
    that subspace, so this is exact.
    """
    noise = torch.randn(tuple(shape), generator=generator, dtype=dtype, device=mask.device)
    return remove_mean(noise, mask)

