"""The SymDiff contenders on QM9: a DiT over atoms, plain, augmented, and symmetrised by markovcat.

A noisy molecule ``z_t`` is ``(b, n, 3 + f)``: zero centre-of-mass positions, then the scaled
one-hot elements and charge (``f = 6``, :data:`FEATURES`).  The networks read one packed tensor
``(b, n, 3 + f + 2)`` (:func:`pack`): ``z_t``, the time ``t / T`` and the atom mask, one column
each, so that the denoiser is a single-input kernel ``X -> Y`` that ``sym`` can take.  ``O(3)``
acts on it by rotating the three position columns; the features, the time and the mask are
invariant (:func:`molecule_actions`).  The output is the predicted noise ``(b, n, 3 + f)``, on which
``O(3)`` rotates the positions only.

Networks:

* :class:`DiT`: a diffusion transformer (Peebles and Xie 2023) with atoms as tokens: a linear
  embedding of each atom's ``z_t`` row, ``depth`` blocks of multi-head self-attention and an MLP,
  each conditioned on the time by adaLN-Zero (shift, scale and gate from the time embedding), and
  an adaLN-modulated linear head.  Padded atoms are masked out as attention keys and their outputs
  set to zero; the position output is projected to zero centre of mass.  No positional encoding:
  it is permutation-equivariant, but not rotation-equivariant.
* :class:`GammaNet`: the recursive gamma's ``f``: a smaller DiT whose conditioning is the time and
  the noise ``eta`` (a ``3 x 3`` Gaussian), pooled over the real atoms (masked mean) to a ``3 x 3``
  matrix, projected to ``O(3)`` by the backend's one QR (:func:`~markovcat.backends.torch.gammas.project`).

Contenders (:data:`METHODS`):

==========  ================================================================================================
method      denoiser ``eps_hat(z_t)``
==========  ================================================================================================
symdiff     ``mc.symmetrise(DiT, gamma=recursive(GammaNet))``: ``R = R0 f(R0^T . z_t, eta)``, ``R0`` Haar on
            ``O(3)``; ``eps_hat = R . DiT(R^T . z_t)``, a fresh ``R`` at every call (the seed's SymDiff)
symdiff-h   ``mc.symmetrise(DiT, gamma="haar")``: ``R`` Haar on ``O(3)`` (SymDiff-H)
dit         the DiT alone
dit-aug     the DiT, trained on molecules rotated by a Haar ``O(3)`` element each (DiT-Aug)
==========  ================================================================================================

The two symmetrised denoisers are compiled markovcat diagrams (``model.module.morphism`` is the
``C^G`` morphism with its evidence; ``model.module.diagram`` draws it): stochastically
``O(3)``-equivariant given that the gamma is, which the recursive construction guarantees for any
``f`` (tests/applications/test_symdiff_models.py checks it with ``check_equivariance``).
"""

from __future__ import annotations

import copy
import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor, nn

from markovcat.backends.torch.compile import Spec
from markovcat.backends.torch.gammas import Gamma, project, raw_size, recursive
from markovcat.backends.torch.groups import Orthogonal, TorchAction, small_matmul
from markovcat.backends.torch.procedures import symmetrise
from markovcat.experiments.symdiff import diffusion
from markovcat.experiments.symdiff.data import ELEMENTS, MAX_ATOMS

__all__ = ["METHODS", "FEATURES", "WIDTH", "INPUT_WIDTH", "ModelConfig", "Model", "DiT", "GammaNet", "pack",
           "unpack", "molecule_actions", "recursive_gamma", "build", "parameters", "as_double", "rotate_positions",
           "PRECISIONS", "COMPILERS", "accelerate"]

#: Feature columns of ``z``: the one-hot elements and the charge.
FEATURES = len(ELEMENTS) + 1
#: Columns of ``z`` and of the predicted noise: positions then features.
WIDTH = 3 + FEATURES
#: Columns of the packed network input: ``z``, the time ``t / T``, the mask.
INPUT_WIDTH = WIDTH + 2
_TIME, _MASK = WIDTH, WIDTH + 1
METHODS: tuple[str, ...] = ("symdiff", "symdiff-h", "dit", "dit-aug")
#: Precisions of the transformer trunks (:func:`accelerate`): float32, or bfloat16 autocast.
PRECISIONS: dict[str, torch.dtype | None] = {"fp32": None, "bf16": torch.bfloat16}
#: ``torch.compile`` backends of the trunks: ``inductor`` (generated kernels; for the GPU) and ``eager``
#: (dynamo's tracing alone: the same graph capture, no code generation; for tests).
COMPILERS: tuple[str, ...] = ("inductor", "eager")


# -- packing and the O(3) actions --------------------------------------------------------------------------------------
def pack(z: Tensor, time: Tensor, mask: Tensor) -> Tensor:
    """``(b, n, WIDTH + 2)``: ``z`` ``(b, n, WIDTH)``, the time ``(b,)`` in [0, 1], the mask ``(b, n)`` as columns."""
    if z.dim() != 3 or z.shape[-1] != WIDTH or mask.shape != z.shape[:2] or time.shape != z.shape[:1]:
        raise ValueError(f"need z (b, n, {WIDTH}), time (b,) and mask (b, n); got {tuple(z.shape)}, "
                         f"{tuple(time.shape)} and {tuple(mask.shape)}")
    m = mask.to(z.dtype)[..., None]
    t = time.to(z.dtype)[:, None, None].expand(-1, z.shape[1], 1)
    return torch.cat([z * m, t * m, m], dim=-1)


def unpack(x: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    """``(z, time (b,), mask (b, n) bool)`` from a packed input (the time is read from the real atoms)."""
    if x.dim() != 3 or x.shape[-1] != INPUT_WIDTH:
        raise ValueError(f"a packed molecule is (b, n, {INPUT_WIDTH}), got {tuple(x.shape)}")
    m = x[..., _MASK]
    mask = m > 0.5
    if bool((~mask.any(dim=1)).any()):
        raise ValueError("every molecule needs at least one real atom (mask column all zero)")
    time = (x[..., _TIME] * m).sum(1) / m.sum(1)
    return x[..., :WIDTH], time, mask


def rotate_positions(g: Tensor, x: Tensor) -> Tensor:
    """``g`` ``(b, 3, 3)`` on the first three columns of ``x`` ``(b, n, c)`` (rows ``x g^T``); the rest unchanged."""
    return torch.cat([small_matmul(x[..., :3], g.transpose(-1, -2)), x[..., 3:]], dim=-1)


def _unrotate_positions(g: Tensor, x: Tensor) -> Tensor:
    return torch.cat([small_matmul(x[..., :3], g), x[..., 3:]], dim=-1)


class _RandomMolecules:
    """Random packed inputs: ``atoms`` slots, a random number of real atoms, zero-CoM Gaussian ``z``, uniform time."""

    def __init__(self, atoms: int) -> None:
        self.atoms = atoms

    def __call__(self, batch: int, generator: torch.Generator | None, dtype: torch.dtype,
                 device: torch.device | str) -> Tensor:
        z = torch.randn(batch, self.atoms, WIDTH, generator=generator, dtype=dtype, device=device)
        counts = torch.randint(1, self.atoms + 1, (batch,), generator=generator, device=device)
        mask = torch.arange(self.atoms, device=device)[None] < counts[:, None]
        time = torch.rand(batch, generator=generator, dtype=dtype, device=device)
        return pack(diffusion.project(z, mask), time, mask)


def molecule_actions(group: Orthogonal, atoms: int = MAX_ATOMS) -> tuple[TorchAction, TorchAction]:
    """``O(3)`` on packed inputs ``(atoms, WIDTH + 2)`` and on noise predictions ``(atoms, WIDTH)``: positions rotated.

    Features, time and mask are invariant.  The compiled diagrams check input shapes, so every batch
    is padded to ``atoms`` slots (29, QM9's largest molecule, by default); random points (for the
    action-law and equivariance checks) are molecules on the zero centre-of-mass subspace.
    """
    if not isinstance(group, Orthogonal) or group.d != 3:
        raise TypeError(f"the molecule actions are of O(3) or SO(3), got {group!r}")
    if not isinstance(atoms, int) or atoms < 1:
        raise ValueError(f"atoms must be a positive integer, got {atoms!r}")
    inputs = TorchAction("rotate positions", group,
                         Spec((atoms, INPUT_WIDTH), sample=_RandomMolecules(atoms)), rotate_positions,
                         _unrotate_positions)
    outputs = TorchAction("rotate position noise", group, Spec((atoms, WIDTH)),
                          rotate_positions, _unrotate_positions)
    return inputs, outputs


# -- the networks ------------------------------------------------------------------------------------------------------
def _timestep_embedding(time: Tensor, dim: int, scale: float = 1000.0) -> Tensor:
    """Sinusoidal features ``(b, dim)`` of ``scale * time`` (the DiT / ADM embedding)."""
    half = dim // 2
    freqs = torch.exp(-math.log(10_000.0) * torch.arange(half, dtype=time.dtype, device=time.device) / half)
    angles = scale * time[:, None] * freqs[None]
    embedding = torch.cat([torch.cos(angles), torch.sin(angles)], dim=-1)
    return embedding if dim % 2 == 0 else torch.cat([embedding, torch.zeros_like(embedding[:, :1])], dim=-1)


def _modulate(h: Tensor, shift: Tensor, scale: Tensor) -> Tensor:
    return h * (1 + scale) + shift


class _Block(nn.Module):
    """A DiT block: adaLN-Zero-conditioned self-attention over the real atoms, then an MLP."""

    def __init__(self, width: int, heads: int, mlp_ratio: float) -> None:
        super().__init__()
        if width % heads:
            raise ValueError(f"the width {width} must be a multiple of the number of heads {heads}")
        self.heads = heads
        self.norm1 = nn.LayerNorm(width, elementwise_affine=False, eps=1e-6)
        self.qkv = nn.Linear(width, 3 * width)
        self.out = nn.Linear(width, width)
        self.norm2 = nn.LayerNorm(width, elementwise_affine=False, eps=1e-6)
        hidden = int(width * mlp_ratio)
        self.mlp = nn.Sequential(nn.Linear(width, hidden), nn.GELU(approximate="tanh"), nn.Linear(hidden, width))
        modulation = nn.Linear(width, 6 * width)
        nn.init.zeros_(modulation.weight)
        nn.init.zeros_(modulation.bias)
        self.ada = nn.Sequential(nn.SiLU(), modulation)

    def forward(self, h: Tensor, c: Tensor, keys: Tensor) -> Tensor:
        b, n, w = h.shape
        shift1, scale1, gate1, shift2, scale2, gate2 = self.ada(c)[:, None].chunk(6, dim=-1)
        q, k, v = self.qkv(_modulate(self.norm1(h), shift1, scale1)).view(b, n, 3, self.heads, -1).permute(
            2, 0, 3, 1, 4)
        attended = nn.functional.scaled_dot_product_attention(q, k, v, attn_mask=keys)
        h = h + gate1 * self.out(attended.transpose(1, 2).reshape(b, n, w))
        return h + gate2 * self.mlp(_modulate(self.norm2(h), shift2, scale2))  # type: ignore[no-any-return]


class _Trunk(nn.Module):
    """Embedding, conditioning and blocks shared by :class:`DiT` and :class:`GammaNet`."""

    def __init__(self, width: int, depth: int, heads: int, mlp_ratio: float, extra_condition: int = 0) -> None:
        super().__init__()
        self.width = width
        self.embed = nn.Linear(WIDTH, width)
        self.time = nn.Sequential(nn.Linear(width, width), nn.SiLU(), nn.Linear(width, width))
        self.extra = nn.Linear(extra_condition, width) if extra_condition else None
        self.blocks = nn.ModuleList(_Block(width, heads, mlp_ratio) for _ in range(depth))
        #: Set by :func:`accelerate`: the autocast dtype (``None``: none) and the compiled ``_run`` (``None``: eager).
        self.autocast: torch.dtype | None = None
        self.compiled: Callable[..., tuple[Tensor, Tensor]] | None = None

    def __getstate__(self) -> dict[str, Any]:
        # a copy (deepcopy, pickle) is eager: a compiled function would still call this instance's _run
        state = dict(self.__dict__)
        state["compiled"] = None
        return state

    def forward(self, z: Tensor, time: Tensor, mask: Tensor, extra: Tensor | None = None) -> tuple[Tensor, Tensor]:
        run = self._run if self.compiled is None else self.compiled
        if self.autocast is None:
            return run(z, time, mask, extra)
        with torch.autocast(z.device.type, dtype=self.autocast):
            h, c = run(z, time, mask, extra)
        return h.to(z.dtype), c.to(z.dtype)  # the heads, the QR and the loss stay in the input's precision

    def _run(self, z: Tensor, time: Tensor, mask: Tensor, extra: Tensor | None) -> tuple[Tensor, Tensor]:
        c = self.time(_timestep_embedding(time, self.width).to(z.dtype))
        if self.extra is not None:
            if extra is None:
                raise ValueError("this trunk is conditioned on an extra input; none was given")
            c = c + self.extra(extra)
        keys = mask[:, None, None, :]  # padded atoms are never attended to
        h = self.embed(z)
        for block in self.blocks:
            h = block(h, c, keys)
        return h, c


class DiT(nn.Module):
    """``eps_hat`` ``(b, n, WIDTH)`` from a packed input ``(b, n, WIDTH + 2)``: see the module docstring.

    ``width`` tokens features, ``depth`` blocks of ``heads`` heads, MLP ``mlp_ratio * width``.
    adaLN-Zero initialisation: every block starts as the identity and the head outputs zero.
    """

    def __init__(self, width: int = 128, depth: int = 4, heads: int = 4, mlp_ratio: float = 4.0) -> None:
        super().__init__()
        self.trunk = _Trunk(width, depth, heads, mlp_ratio)
        self.norm = nn.LayerNorm(width, elementwise_affine=False, eps=1e-6)
        modulation = nn.Linear(width, 2 * width)
        self.head = nn.Linear(width, WIDTH)
        for layer in (modulation, self.head):
            nn.init.zeros_(layer.weight)
            nn.init.zeros_(layer.bias)
        self.ada = nn.Sequential(nn.SiLU(), modulation)

    def forward(self, x: Tensor) -> Tensor:
        z, time, mask = unpack(x)
        h, c = self.trunk(z, time, mask)
        shift, scale = self.ada(c)[:, None].chunk(2, dim=-1)
        return diffusion.project(self.head(_modulate(self.norm(h), shift, scale)), mask)


class GammaNet(nn.Module):
    """The recursive gamma's ``f(x, eta)``: a small DiT conditioned on the time and ``eta`` ``(b, 3, 3)``.

    The real atoms' features are averaged (masked mean), mapped to a ``3 x 3`` matrix and projected
    to ``O(3)`` by QR.  Unconstrained: the recursive construction makes the gamma equivariant in law.
    """

    def __init__(self, group: Orthogonal, width: int = 64, depth: int = 2, heads: int = 4,
                 mlp_ratio: float = 2.0) -> None:
        super().__init__()
        self.group = group
        self.trunk = _Trunk(width, depth, heads, mlp_ratio, extra_condition=group.d * group.d)
        self.norm = nn.LayerNorm(width)
        self.head = nn.Linear(width, raw_size(group))

    def forward(self, x: Tensor, eps: Tensor) -> Tensor:
        z, time, mask = unpack(x)
        h, _ = self.trunk(z, time, mask, eps.flatten(1).to(z.dtype))
        m = mask.to(h.dtype)[..., None]
        pooled = (self.norm(h) * m).sum(1) / m.sum(1)
        return project(self.group, self.head(pooled))


def recursive_gamma(group: Orthogonal, action: TorchAction, width: int = 64, depth: int = 2,
                    heads: int = 4) -> Gamma:
    """SymDiff's gamma: ``R0 ~ Haar(O(3)); R = R0 . GammaNet(R0^T . x, eta)``, ``eta ~ N(0, I_{3x3})``."""
    return recursive(GammaNet(group, width, depth, heads), group, action, (group.d, group.d))


# -- the contenders ----------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class ModelConfig:
    """Sizes of the DiT and of the gamma's network."""

    width: int = 128
    depth: int = 4
    heads: int = 4
    mlp_ratio: float = 4.0
    gamma_width: int = 64
    gamma_depth: int = 2
    gamma_heads: int = 4


@dataclass(frozen=True, eq=False)
class Model:
    """A built contender: ``module`` (every parameter), whether it draws noise, whether it trains on rotations."""

    method: str
    module: nn.Module
    stochastic: bool
    augment: bool
    group: Orthogonal
    input_action: TorchAction
    output_action: TorchAction

    def __call__(self, z: Tensor, time: Tensor, mask: Tensor, generator: torch.Generator | None = None) -> Tensor:
        """``eps_hat`` ``(b, n, WIDTH)`` for ``z_t`` at times ``time`` (``t / T``); one draw of the gamma."""
        x = pack(z, time, mask)
        if self.stochastic:
            return self.module(x, generator=generator)  # type: ignore[no-any-return]
        return self.module(x)  # type: ignore[no-any-return]


def build(method: str, config: ModelConfig = ModelConfig(), seed: int = 0, atoms: int = MAX_ATOMS) -> Model:
    """``method`` (one of :data:`METHODS`), initialised from ``seed`` (the global RNG is left alone).

    Inputs are padded to ``atoms`` slots (:func:`molecule_actions`).
    """
    if method not in METHODS:
        raise ValueError(f"unknown method {method!r}: use one of {', '.join(METHODS)}")
    group = Orthogonal(3)
    inputs, outputs = molecule_actions(group, atoms)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        net = DiT(config.width, config.depth, config.heads, config.mlp_ratio)
        module: nn.Module = net
        if method == "symdiff":
            gamma = recursive_gamma(group, inputs, config.gamma_width, config.gamma_depth, config.gamma_heads)
            module = symmetrise(net, group, inputs, outputs, gamma=gamma, name="symdiff")
        elif method == "symdiff-h":
            module = symmetrise(net, group, inputs, outputs, gamma="haar", name="symdiff_haar")
    return Model(method, module, method.startswith("symdiff"), method == "dit-aug", group, inputs, outputs)


def parameters(model: Model) -> int:
    """The number of trainable parameters."""
    return sum(p.numel() for p in model.module.parameters() if p.requires_grad)


def as_double(model: Model) -> Model:
    """A float64 copy (for the equivariance checks): eager, without autocast, whatever :func:`accelerate` set."""
    module = accelerate(copy.deepcopy(model.module), "fp32", None).double()
    return Model(model.method, module, model.stochastic, model.augment, model.group, model.input_action,
                 model.output_action)


def accelerate(module: nn.Module, precision: str = "fp32", compile: str | None = None) -> nn.Module:
    """``module`` (changed in place and returned) with every transformer trunk (the DiT's, the gamma's) in
    ``precision`` and, if ``compile`` names a backend of :data:`COMPILERS`, compiled with ``torch.compile``.

    Only the trunks change (embedding, time conditioning, attention blocks: almost all the FLOPs): with
    ``"bf16"`` they run under ``torch.autocast`` and return float32, so the heads, the gamma's QR,
    the symmetrisation and the loss stay in float32.  The weights and ``state_dict`` are untouched;
    a copy of the module (``copy.deepcopy``) is eager, with the precision kept.
    """
    if precision not in PRECISIONS:
        raise ValueError(f"unknown precision {precision!r}: use one of {', '.join(PRECISIONS)}")
    if compile is not None and compile not in COMPILERS:
        raise ValueError(f"unknown compile backend {compile!r}: use one of {', '.join(COMPILERS)} (or none)")
    for part in module.modules():
        if isinstance(part, _Trunk):
            part.autocast = PRECISIONS[precision]
            part.compiled = None if compile is None else torch.compile(part._run, backend=compile)
    return module
