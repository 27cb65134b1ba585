"""The SymDiff contenders: each builds; the symmetrised denoisers are O(3)-equivariant, the DiT is not.

Padding is inert: padded atoms do not change the real atoms' outputs.
"""

from __future__ import annotations

from typing import Any

import pytest
import torch

from markovcat.backends.torch import check_equivariance
from markovcat.backends.torch.compile import CompiledDiagram
from markovcat.experiments.symdiff import diffusion
from markovcat.experiments.symdiff.data import com_error
from markovcat.experiments.symdiff.models import (
    INPUT_WIDTH,
    METHODS,
    WIDTH,
    DiT,
    GammaNet,
    Model,
    ModelConfig,
    as_double,
    build,
    molecule_actions,
    pack,
    parameters,
    rotate_positions,
    unpack,
)

TINY = ModelConfig(width=16, depth=1, heads=2, mlp_ratio=2.0, gamma_width=16, gamma_depth=1, gamma_heads=2)
ATOMS = 8


pytestmark = pytest.mark.usefixtures("one_thread")  # conftest.py: torch on one thread in each test


def molecules(counts: tuple[int, ...] = (1, 3, 5, 8), atoms: int = ATOMS,
              seed: int = 0) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Random noisy molecules ``z`` (zero CoM, padding zero), times and masks, float64."""
    g = torch.Generator().manual_seed(seed)
    mask = torch.arange(atoms)[None] < torch.tensor(counts)[:, None]
    z = diffusion.project(torch.randn(len(counts), atoms, WIDTH, generator=g, dtype=torch.float64), mask)
    return z, torch.rand(len(counts), generator=g, dtype=torch.float64), mask


def scrambled(model: Model, seed: int = 1) -> Model:
    """A float64 copy with every parameter moved off its initialisation.

    adaLN-Zero starts the DiT at the zero function, which is trivially equivariant: a check of it
    would prove nothing, so the checks run on weights that make it an arbitrary function.
    """
    double = as_double(model)
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in double.module.parameters():
            p.add_(0.3 * torch.randn(p.shape, generator=g, dtype=p.dtype))
    return double


def check(model: Model, **options: Any) -> Any:
    z, t, mask = molecules()
    return check_equivariance(model.module, model.group, model.input_action, model.output_action,
                              inputs=pack(z, t, mask), stochastic=model.stochastic, dtype=torch.float64, **options)


@pytest.mark.parametrize("method", METHODS)
def test_every_contender_builds_and_predicts_noise_on_the_subspace(method: str) -> None:
    model = build(method, TINY, seed=0, atoms=ATOMS)
    assert parameters(model) > 0 and model.stochastic == method.startswith("symdiff")
    assert model.augment == (method == "dit-aug")
    if model.stochastic:  # built as a markovcat diagram and compiled, with its C^G evidence
        assert isinstance(model.module, CompiledDiagram) and model.module.morphism is not None
    z, t, mask = molecules()
    eps = scrambled(model)(z, t, mask, torch.Generator().manual_seed(0))
    assert eps.shape == z.shape and bool(torch.isfinite(eps).all())
    assert com_error(eps[..., :3], mask).max() < 1e-12 and eps[~mask].abs().max() == 0
    again = build(method, TINY, seed=0, atoms=ATOMS)
    assert all(torch.equal(a, b) for a, b in zip(model.module.state_dict().values(),
                                                 again.module.state_dict().values()))


@pytest.mark.parametrize("method", ["symdiff", "symdiff-h"])
def test_symmetrised_denoisers_are_o3_equivariant(method: str) -> None:
    """Pathwise (the Haar draw coupled as ``R0 -> g R0``): ``eps_hat(g . z) = g . eps_hat(z)``, positions only."""
    report = check(scrambled(build(method, TINY, seed=0, atoms=ATOMS)))
    assert report.method == "pathwise" and report.passed, report


def test_symdiff_passes_the_two_sample_check() -> None:
    report = check(scrambled(build("symdiff", TINY, seed=0, atoms=ATOMS)), method="two-sample", samples=100)
    assert report.method == "two-sample" and report.passed, report


@pytest.mark.parametrize("method", ["dit", "dit-aug"])
def test_the_plain_dit_fails_the_check(method: str) -> None:
    report = check(scrambled(build(method, TINY, seed=0, atoms=ATOMS)))
    assert report.method == "deterministic" and not report.passed, report


def test_features_are_invariant_under_the_symmetrised_denoiser() -> None:
    """With the draws coupled, rotating the input leaves the feature noise unchanged and rotates the position noise."""
    model = scrambled(build("symdiff", TINY, seed=0, atoms=ATOMS))
    z, t, mask = molecules()
    g = model.group.sample(len(t), torch.Generator().manual_seed(3), torch.float64)
    x = pack(z, t, mask)
    moved = model.input_action.act(g, x)
    assert torch.equal(moved[..., 3:], x[..., 3:]) and not torch.allclose(moved[..., :3], x[..., :3])
    assert torch.allclose(rotate_positions(g.transpose(-1, -2), moved), x)


@pytest.mark.parametrize("method", METHODS)
def test_padding_does_not_change_the_real_atoms(method: str) -> None:
    """The same molecules padded to more slots, with garbage in the padded rows: the real atoms' outputs agree."""
    small = scrambled(build(method, TINY, seed=0, atoms=ATOMS))
    large_model = build(method, TINY, seed=0, atoms=ATOMS + 4)
    large = scrambled(large_model)
    z, t, mask = molecules()
    wide_mask = torch.cat([mask, torch.zeros(len(t), 4, dtype=torch.bool)], dim=1)
    x = pack(z, t, mask)
    wide = torch.cat([x, torch.zeros(len(t), 4, INPUT_WIDTH, dtype=x.dtype)], dim=1)
    wide[:, ATOMS:, :WIDTH] = 7.0  # not masked by pack: the network must ignore padded rows itself
    out_small = small.module(x, generator=torch.Generator().manual_seed(5)) if small.stochastic else small.module(x)
    out_large = large.module(wide, generator=torch.Generator().manual_seed(5)) if large.stochastic \
        else large.module(wide)
    assert torch.allclose(out_large[:, :ATOMS], out_small, atol=1e-10)
    assert out_large[~wide_mask].abs().max() == 0


def test_pack_and_unpack_round_trip_and_refuse_bad_input() -> None:
    z, t, mask = molecules()
    back = unpack(pack(z, t, mask))
    assert torch.equal(back[0], z) and torch.allclose(back[1], t) and torch.equal(back[2], mask)
    with pytest.raises(ValueError, match="need z"):
        pack(z[..., :3], t, mask)
    with pytest.raises(ValueError, match="at least one real atom"):
        unpack(pack(z, t, torch.zeros_like(mask)))
    with pytest.raises(ValueError, match="unknown method"):
        build("egnn")
    with pytest.raises(TypeError, match="O\\(3\\)"):
        molecule_actions(build("dit", TINY, atoms=ATOMS).group.__class__(2))


def test_gamma_network_lands_in_o3() -> None:
    net = GammaNet(build("dit", TINY, atoms=ATOMS).group, width=16, depth=1, heads=2).double()
    z, t, mask = molecules()
    r = net(pack(z, t, mask), torch.randn(len(t), 3, 3, dtype=torch.float64))
    assert torch.allclose(r @ r.transpose(-1, -2), torch.eye(3, dtype=torch.float64).expand_as(r), atol=1e-12)
    assert isinstance(DiT(16, 1, 2), torch.nn.Module)
