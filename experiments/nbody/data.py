"""The N-body splits: 3,000 train, 2,000 validation and 2,000 test systems from a fixed seed, cached on disk.

Each example is one system of :mod:`~markovcat.experiments.nbody.simulate` after its burn-in:
the input ``x`` ``(5, 7)`` holds, per particle, its position (3), velocity (3) and charge (1);
the target ``y`` ``(5, 3)`` the positions ``horizon`` steps later.  Every split is drawn from its
own generator, seeded by ``(DATA_SEED, split name)``, so the splits do not depend on each
other's sizes.  Simulated in float64, all splits in one batch (about 30 s on one CPU core),
stored in float64 and cast when loaded.

The cache: ``experiments/data/nbody/<key>.pt`` (:data:`CACHE`, not committed), ``key`` a hash of
the simulator's parameters, the split sizes and the seed; a file whose stored parameters differ
is regenerated.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import Tensor

from markovcat.experiments.nbody.simulate import SimulationConfig, initial_state, simulate

__all__ = ["DATA_SEED", "SPLITS", "CACHE", "Split", "Splits", "generate", "load", "cache_path", "features"]

DATA_SEED = 0
#: Split sizes of the benchmark (EGNN paper, section 5.1).
SPLITS: dict[str, int] = {"train": 3000, "valid": 2000, "test": 2000}
CACHE = Path("experiments/data/nbody")
DEFAULT = SimulationConfig()


@dataclass(frozen=True, eq=False)
class Split:
    """One split: ``x`` ``(b, n, 7)`` (position, velocity, charge per particle) and ``y`` ``(b, n, 3)``."""

    x: Tensor
    y: Tensor

    def __len__(self) -> int:
        return int(self.x.shape[0])

    def to(self, dtype: torch.dtype | None = None, device: torch.device | str | None = None) -> Split:
        return Split(self.x.to(device=device, dtype=dtype), self.y.to(device=device, dtype=dtype))


@dataclass(frozen=True, eq=False)
class Splits:
    train: Split
    valid: Split
    test: Split


def features(x: Tensor, v: Tensor, charges: Tensor) -> Tensor:
    """The model input ``(b, n, 7)``: ``[position, velocity, charge]`` per particle."""
    return torch.cat([x, v, charges.unsqueeze(-1)], dim=-1)


def _seed(name: str, seed: int) -> int:
    digest = hashlib.sha256(f"{seed}/nbody/{name}".encode()).digest()
    return int.from_bytes(digest[:8], "little") >> 1


def generate(sizes: dict[str, int] | None = None, config: SimulationConfig = DEFAULT,
             seed: int = DATA_SEED) -> dict[str, Split]:
    """Simulate the splits (float64): initial states from the generator ``(seed, split name)``, one batched run."""
    sizes = dict(SPLITS if sizes is None else sizes)
    states = []
    for name, size in sizes.items():
        if not isinstance(size, int) or size < 1:
            raise ValueError(f"split {name!r} needs a positive number of systems, got {size!r}")
        states.append(initial_state(size, config, torch.Generator().manual_seed(_seed(name, seed))))
    x, v, q = (torch.cat(parts) for parts in zip(*states))
    x, v = simulate(x, v, q, config.burn_in, config)
    target, _ = simulate(x, v, q, config.horizon, config)
    inputs = features(x, v, q)
    bounds = torch.tensor([0, *sizes.values()]).cumsum(0).tolist()
    return {name: Split(inputs[a:b], target[a:b]) for name, a, b in zip(sizes, bounds, bounds[1:])}


def _key(sizes: dict[str, int], config: SimulationConfig, seed: int) -> dict[str, object]:
    return {"simulation": config.as_dict(), "sizes": dict(sizes), "seed": seed, "version": 1}


def cache_path(sizes: dict[str, int] | None = None, config: SimulationConfig = DEFAULT,
               seed: int = DATA_SEED, cache: Path | str = CACHE) -> Path:
    key = json.dumps(_key(dict(SPLITS if sizes is None else sizes), config, seed), sort_keys=True)
    return Path(cache) / f"nbody_{hashlib.sha256(key.encode()).hexdigest()[:10]}.pt"


def load(sizes: dict[str, int] | None = None, config: SimulationConfig = DEFAULT, seed: int = DATA_SEED,
         cache: Path | str | None = CACHE, dtype: torch.dtype = torch.float32) -> Splits:
    """The train / valid / test splits, from the cache (simulated and written there on the first call).

    ``cache=None`` simulates without touching the disk.  ``sizes`` must name exactly
    ``train``, ``valid`` and ``test``.
    """
    sizes = dict(SPLITS if sizes is None else sizes)
    if set(sizes) != set(SPLITS):
        raise ValueError(f"sizes must give exactly the splits {sorted(SPLITS)}, got {sorted(sizes)}")
    data: dict[str, Split] | None = None
    path = None if cache is None else cache_path(sizes, config, seed, cache)
    if path is not None and path.exists():
        stored = torch.load(path, weights_only=True)
        if stored.get("key") == json.dumps(_key(sizes, config, seed), sort_keys=True):
            data = {name: Split(stored[name + "_x"], stored[name + "_y"]) for name in sizes}
    if data is None:
        data = generate(sizes, config, seed)
        if path is not None:
            path.parent.mkdir(parents=True, exist_ok=True)
            state: dict[str, object] = {"key": json.dumps(_key(sizes, config, seed), sort_keys=True)}
            for name, split in data.items():
                state[name + "_x"], state[name + "_y"] = split.x, split.y
            partial = path.with_name(path.name + ".partial")
            torch.save(state, partial)
            os.replace(partial, path)
    return Splits(*(data[name].to(dtype) for name in ("train", "valid", "test")))
