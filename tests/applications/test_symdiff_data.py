"""QM9 data for SymDiff: CSV parsing and its errors, the cache round trip, the split, the zero-CoM helpers."""

from __future__ import annotations

import importlib.util
import pickle
from pathlib import Path

import pytest
import torch

from markovcat.experiments.symdiff import data

HEADER = "XYZ_file,Index,SMILES,InChi,N_atoms,Stoichiometry,Elements,XYZ_Ang,Mulliken_pop\n"
METHANE = ('"a.xyz",1,"C","x",5,"[4,1,0,0,0]","[\'C\',\'H\',\'H\',\'H\',\'H\']",'
           '"[[0.0,0.0,0.0],[0.63,0.63,0.63],[-0.63,-0.63,0.63],[-0.63,0.63,-0.63],[0.63,-0.63,-0.63]]","[0]"\n')
WATER = ('"b.xyz",3,"O","x",3,"[2,0,0,1,0]","[\'O\',\'H\',\'H\']",'
         '"[[0.0,0.0,0.1],[0.0,0.76,-0.5],[0.0,-0.76,-0.5]]","[0]"\n')


def _csv(tmp_path: Path, *rows: str, header: str = HEADER, name: str = "qm9_part1.csv") -> Path:
    path = tmp_path / name
    path.write_text(header + "".join(rows))
    return path


def test_read_csv_parses_rows(tmp_path: Path) -> None:
    rows = list(data.read_csv(_csv(tmp_path, METHANE, WATER)))
    assert [r[0] for r in rows] == [1, 3] and [r[1] for r in rows] == ["C", "O"]
    assert rows[0][2] == ["C", "H", "H", "H", "H"] and rows[0][3].shape == (5, 3)
    assert rows[1][3][1].tolist() == pytest.approx([0.0, 0.76, -0.5])


@pytest.mark.parametrize(("row", "message"), [
    (METHANE.replace("[\'C\',", "[\'S\',"), "elements \\['S'\\]"),
    (METHANE.replace(",5,", ",4,", 1), "N_atoms=4"),
    (METHANE.replace("0.63,0.63,0.63", "0.63,abc,0.63"), "non-number"),
    (METHANE.replace('"[0]"', '"[0]","extra"'), "fields"),
    (METHANE.replace(",5,", ",five,", 1), "integers"),
])
def test_read_csv_rejects_bad_rows(tmp_path: Path, row: str, message: str) -> None:
    with pytest.raises(data.QM9FormatError, match=message) as info:
        list(data.read_csv(_csv(tmp_path, WATER, row)))
    assert "line 3" in str(info.value)


def test_read_csv_rejects_bad_header(tmp_path: Path) -> None:
    with pytest.raises(data.QM9FormatError, match="XYZ_Ang"):
        list(data.read_csv(_csv(tmp_path, header="Index,SMILES,N_atoms,Elements\n")))


def test_missing_qm9pack_names_the_package(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None)
    with pytest.raises(ModuleNotFoundError, match="pip install .*qm9pack"):
        data.qm9pack_csvs()


def test_convert_and_load_round_trip(tmp_path: Path) -> None:
    rows = [METHANE.replace(",1,", f",{i},", 1) for i in range(1, 11)] + [WATER]
    csv_path = _csv(tmp_path, *rows)
    out = tmp_path / "cache" / "qm9.pt"
    built = data.convert([csv_path], out, seed=3)
    loaded = data.load(out, build=False, seed=3, files=[csv_path])
    for a, b in zip((built.train, built.valid, built.test), (loaded.train, loaded.valid, loaded.test)):
        assert torch.equal(a.positions, b.positions) and torch.equal(a.types, b.types)
        assert a.smiles == b.smiles and torch.equal(a.index, b.index)
    every = torch.cat([loaded.train.index, loaded.valid.index, loaded.test.index])
    assert sorted(every.tolist()) == sorted([*range(1, 11), 3])
    water = [m for m in (loaded.train, loaded.valid, loaded.test) if "O" in m.smiles][0]
    row = water.smiles.index("O")
    assert water.num_atoms[row] == 3 and water.types[row, :4].tolist() == [3, 0, 0, -1]
    assert water.one_hot[row, 0].tolist() == [0, 0, 0, 1, 0] and water.charges[row, :4].tolist() == [8, 1, 1, 0]
    with pytest.raises(FileNotFoundError, match="no current QM9 cache"):
        data.load(tmp_path / "absent.pt", build=False)
    with pytest.raises(FileNotFoundError, match="no current QM9 cache"):  # another seed: stale
        data.load(out, build=False, seed=4, files=[csv_path])


def test_split_sizes_match_edm_on_the_full_set() -> None:
    split = data.split_indices(data.FULL_SIZE)
    assert {k: len(v) for k, v in split.items()} == {"train": 100_000, "valid": 17_748, "test": 13_083}
    every = torch.cat(list(split.values()))
    assert torch.equal(every.sort().values, torch.arange(data.FULL_SIZE))
    assert torch.equal(data.split_indices(1000, seed=1)["test"], data.split_indices(1000, seed=1)["test"])
    assert not torch.equal(data.split_indices(1000, seed=1)["test"], data.split_indices(1000, seed=2)["test"])


def _mask(b: int = 4, n: int = 6) -> torch.Tensor:
    counts = torch.tensor([1, 2, 5, 6])[:b]
    return torch.arange(n)[None, :] < counts[:, None]


def test_remove_mean_is_the_orthogonal_projection() -> None:
    torch.manual_seed(0)
    mask = _mask()
    x, y = torch.randn(4, 6, 3, dtype=torch.float64), torch.randn(4, 6, 3, dtype=torch.float64)
    px, py = data.remove_mean(x, mask), data.remove_mean(y, mask)
    assert data.com_error(px, mask).max() < 1e-12
    assert torch.equal(px[~mask], torch.zeros_like(px[~mask]))
    assert torch.allclose(data.remove_mean(px, mask), px)  # idempotent
    inner = ((x * mask[..., None] - px) * py).sum(dim=(1, 2))  # x - Px is orthogonal to the subspace
    assert inner.abs().max() < 1e-12
    assert data.position_dof(mask).tolist() == [0, 3, 12, 15]
    with pytest.raises(ValueError, match="at least one atom"):
        data.remove_mean(x, torch.zeros(4, 6, dtype=torch.bool))


def test_zero_com_gaussian_has_the_projection_as_covariance() -> None:
    mask = torch.tensor([[True, True, True, False]])
    noise = data.zero_com_gaussian((20000, 4, 3), mask.expand(20000, 4), torch.Generator().manual_seed(1),
                                   dtype=torch.float64)
    first = noise[:, :3, 0]  # one coordinate of the three real atoms: covariance I - 11^T / 3
    cov = first.T @ first / len(first)
    expected = torch.eye(3, dtype=torch.float64) - 1 / 3
    assert (cov - expected).abs().max() < 0.03
    assert noise[:, 3].abs().max() == 0


def test_real_qm9_cache_loads() -> None:
    if importlib.util.find_spec("qm9pack") is None:  # its module cannot be imported; only its CSVs are read
        pytest.skip("qm9pack is not installed")
    qm9 = data.load()
    assert (len(qm9.train), len(qm9.valid), len(qm9.test)) == (100_000, 17_748, 13_083)
    assert int(qm9.train.num_atoms.max()) == 29 and int(qm9.train.num_atoms.min()) >= 1
    sample = qm9.test.subset(range(64))
    assert data.com_error(sample.centred().positions, sample.mask).max() < 1e-5
    assert pickle.loads(pickle.dumps(sample)).smiles == sample.smiles
    trimmed = sample.trimmed()
    assert trimmed.positions.shape[1] == int(sample.num_atoms.max()) < data.MAX_ATOMS
    assert torch.equal(trimmed.num_atoms, sample.num_atoms)
    assert torch.equal(trimmed.one_hot.sum(1), sample.one_hot.sum(1))
    hist = qm9.train.histogram()
    assert int(hist.sum()) == 100_000 and hist[0] == 0 and int(hist.argmax()) in range(15, 25)
