"""The N-body contenders: the same backbones, plain, augmented, symmetrised by markovcat, and the peers.

An input ``x`` is ``(b, 5, 7)`` (per particle: position, velocity, charge), an output ``(b, 5, 3)``
(positions ``horizon`` steps later).  Symmetry: ``E(3) x S_5``; rotations and reflections act on
positions and velocities, translations on positions only, permutations on the particles.

Backbones (every one predicts a displacement added to the input positions):

* ``mlp``: a SiLU MLP over the flattened system (35 inputs, hidden ``(256, 256, 256)``, 15 outputs);
  neither rotation- nor permutation-equivariant;
* ``transformer``: a pre-norm transformer encoder over the 5 particles (one token of 7 features each,
  width 64, 4 heads, feed-forward 128, 3 layers, no positional encoding): permutation-equivariant,
  not rotation-equivariant.

Contenders (:data:`METHODS`):

==================  ============================================================================================
method              model
==================  ============================================================================================
mlp, transformer    the backbone alone
mlp-aug,            the backbone trained on randomly moved examples: each training example moved by its own
transformer-aug     ``E(3)`` element (Haar ``O(3)``, standard normal translation)
egnn                ``egnn-pytorch``'s ``EGNN`` layers as in the EGNN paper (4 layers, width 64, message width
                    64; node features ``|v|`` and ``q``, edge feature ``q_i q_j``), with the paper's velocity term
                    (``x += phi_v(h) v`` after each layer, ``phi_v`` a small MLP: egnn-pytorch has no velocity input)
fa-peer             ``frame-averaging-pytorch``'s ``FrameAverage`` around the transformer
fa                  ``mc.frame_average`` of the transformer over the same frame
canon               ``mc.canonicalise`` of the transformer with the PCA canonicaliser of the same cloud
canon-peer          ``equiadapt`` (not runnable here; see :data:`PEER_STATUS`)
haar                ``mc.symmetrise(transformer, gamma="haar")`` (Cornish 2024), averaged at test time
recursive           ``mc.symmetrise(transformer, gamma=recursive(...))``: the recursive gamma of Cornish 2024
                    with a permutation-invariant network (:class:`ParticleGroupNet`), averaged at test time
==================  ============================================================================================

Translations are handled by centring (:class:`Centred`): the mean position is subtracted before,
and added after, an ``O(3)``-symmetrised model, so the result is ``E(3)``-equivariant.
Permutations: the transformer is permutation-equivariant, and every gamma and frame here is
permutation-invariant, so the symmetrised transformers are ``E(3) x S_5``-equivariant.  (The
library's named ``gamma="recursive"`` reads the flattened system with an MLP: ``O(3)``-equivariant
but not permutation-invariant, so its symmetrised transformer fails the ``S_5`` check; hence the
particle network here.)

Frames.  Both frame averagings use the point cloud ``[x_1..x_5, x_1 + v_1..x_5 + v_5]`` (10
points): the peer's ``FrameAverage`` computes its frame from the one point cloud it is given and
passes any other argument to the network unrotated, so the velocities enter as the second half of
the cloud; translating positions moves all 10 points alike, so the centred cloud is translation-
invariant and rotates with ``(x, v)``.  The frame is the cloud's PCA eigenvectors in *increasing*
eigenvalue order (the peer's ``eigh`` order; ``PCAFrames(descending=False)``) with all 8 sign
choices.  The peer centres by the cloud's mean, ``mean(x) + mean(v) / 2``; its wrapper below
re-centres the framed positions by their own mean and adds ``mean(x)`` back, so the backbone sees
exactly what it sees inside ``mc.frame_average``: the two agree to rounding on any input
(``tests/applications/test_nbody_models.py``).  Degenerate clouds (repeated covariance eigenvalues) are not
refused in training (``validate=False``, as the peer, which never checks).
"""

from __future__ import annotations

import copy
import warnings
from dataclasses import dataclass

import torch
from torch import Tensor, nn

from markovcat.backends.torch.compile import Spec
from markovcat.backends.torch.frames import PCACanonicaliser, PCAFrames
from markovcat.backends.torch.gammas import Gamma, project, raw_size, recursive
from markovcat.backends.torch.groups import Orthogonal, Symmetric, TorchAction, small_matmul
from markovcat.backends.torch.matrix_groups import Euclidean
from markovcat.backends.torch.procedures import canonicalise, frame_average, symmetrise

__all__ = ["METHODS", "PEERS", "PEER_STATUS", "ModelConfig", "Model", "build", "available", "system_action",
           "euclidean_system_action", "MLPBackbone", "TransformerBackbone", "Centred", "EGNNModel", "PeerFrameAverage",
           "CloudFrames", "CloudCanonicaliser", "ParticleGroupNet", "particle_recursive_gamma", "Symmetry", "symmetry",
           "random_euclidean", "move", "parameters", "as_double"]

PARTICLES, DIM, FEATURES = 5, 3, 7

METHODS: tuple[str, ...] = ("mlp", "transformer", "mlp-aug", "transformer-aug", "egnn", "fa-peer", "fa", "canon",
                            "canon-peer", "haar", "recursive")
#: The method that needs each peer library (its import name).
PEERS: dict[str, str] = {"egnn": "egnn_pytorch", "fa-peer": "frame_averaging_pytorch", "canon-peer": "equiadapt"}
#: Why a peer contender may not run (shown by :func:`available`).
PEER_STATUS: dict[str, str] = {
    "canon-peer": "equiadapt 0.1.2 cannot be imported beside torch 2.13.0+cpu: its package __init__ imports its "
                  "image modules, which import kornia and torchvision; the torchvision wheel matching torch 2.13 "
                  "(0.28.0, from PyPI) fails to load its C++ operators against the CPU build of torch "
                  "(RuntimeError: operator torchvision::nms does not exist).  Its N-body canonicalisation "
                  "network (equiadapt.nbody.canonicalization_networks) also imports torch_scatter, a compiled "
                  "extension it does not declare as a dependency.",
}


# -- symmetry ----------------------------------------------------------------------------------------
class _RotateSystem:
    """``g`` on ``(n, 7)`` systems: positions and velocities rotated (rows ``x g^T``), charges fixed."""

    def __init__(self, inverse: bool = False) -> None:
        self.inverse = inverse

    def __call__(self, g: Tensor, x: Tensor) -> Tensor:
        r = g if self.inverse else g.transpose(-1, -2)
        moved = small_matmul(x[..., :6].reshape(x.shape[0], -1, DIM), r).reshape(*x.shape[:-1], 6)
        return torch.cat([moved, x[..., 6:]], dim=-1)


def system_action(group: Orthogonal, particles: int = PARTICLES) -> TorchAction:
    """``O(3)`` on systems ``(n, 7)``: positions and velocities rotated, charges fixed."""
    return TorchAction("rotate positions and velocities", group, Spec((particles, FEATURES)), _RotateSystem(),
                       _RotateSystem(inverse=True))


class _MoveSystem:
    def __init__(self, group: Euclidean) -> None:
        self.group = group

    def __call__(self, g: Tensor, x: Tensor) -> Tensor:
        r, t = self.group.rotation(g), self.group.translation(g)
        moved = _RotateSystem()(r, x)
        return torch.cat([moved[..., :3] + t.unsqueeze(-2), moved[..., 3:]], dim=-1)


def euclidean_system_action(group: Euclidean, particles: int = PARTICLES) -> TorchAction:
    """``E(3)`` on systems ``(n, 7)``: ``x -> R x + t``, ``v -> R v``, charges fixed."""
    return TorchAction("move positions, rotate velocities", group, Spec((particles, FEATURES)), _MoveSystem(group))


@dataclass(frozen=True, eq=False)
class Symmetry:
    """The groups and actions of the task: ``O(3)`` (symmetrised), ``E(3)`` and ``S_5`` (checked)."""

    rotations: Orthogonal
    system: TorchAction
    points: TorchAction
    euclidean: Euclidean
    euclidean_system: TorchAction
    euclidean_points: TorchAction
    permutations: Symmetric
    permuted_system: TorchAction
    permuted_points: TorchAction


def symmetry(particles: int = PARTICLES) -> Symmetry:
    """Fresh group and action objects for systems of ``particles`` particles."""
    o3, e3, sn = Orthogonal(DIM), Euclidean(DIM), Symmetric(particles)
    return Symmetry(o3, system_action(o3, particles), o3.points(particles), e3, euclidean_system_action(e3, particles),
                    e3.points(particles), sn, sn.sets(FEATURES), sn.sets(DIM))


def random_euclidean(batch: int, generator: torch.Generator | None, dtype: torch.dtype,
                     device: torch.device | str = "cpu") -> tuple[Tensor, Tensor]:
    """``batch`` random ``(R, t)``: ``R`` Haar in ``O(3)``, ``t`` standard normal."""
    group = Euclidean(DIM)
    g = group.sample(batch, generator, dtype, device)
    return group.rotation(g), group.translation(g)


def move(r: Tensor, t: Tensor, x: Tensor, y: Tensor) -> tuple[Tensor, Tensor]:
    """``(R, t)`` applied to inputs ``x`` ``(b, n, 7)`` and targets ``y`` ``(b, n, 3)``."""
    rt = r.transpose(-1, -2)
    moved = torch.cat([x[..., :3] @ rt + t.unsqueeze(-2), x[..., 3:6] @ rt, x[..., 6:]], dim=-1)
    return moved, y @ rt + t.unsqueeze(-2)


# -- backbones ---------------------------------------------------------------------------------------
class MLPBackbone(nn.Module):
    """A SiLU MLP over the flattened system; returns input positions plus its ``(n, 3)`` output."""

    def __init__(self, particles: int = PARTICLES, hidden: tuple[int, ...] = (256, 256, 256)) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        width = particles * FEATURES
        for h in hidden:
            layers += [nn.Linear(width, h), nn.SiLU()]
            width = h
        self.net = nn.Sequential(*layers, nn.Linear(width, particles * DIM))

    def forward(self, x: Tensor) -> Tensor:
        return x[..., :3] + self.net(x.flatten(1)).view(x.shape[0], -1, DIM)  # type: ignore[no-any-return]


class TransformerBackbone(nn.Module):
    """A pre-norm transformer encoder over particles (no positional encoding); input positions plus its output."""

    def __init__(self, width: int = 64, heads: int = 4, feedforward: int = 128, layers: int = 3) -> None:
        super().__init__()
        self.embed = nn.Linear(FEATURES, width)
        layer = nn.TransformerEncoderLayer(width, heads, feedforward, dropout=0.0, activation="gelu",
                                           batch_first=True, norm_first=True)
        self.encoder = nn.TransformerEncoder(layer, layers, enable_nested_tensor=False)
        self.head = nn.Sequential(nn.LayerNorm(width), nn.Linear(width, DIM))

    def forward(self, x: Tensor) -> Tensor:
        return x[..., :3] + self.head(self.encoder(self.embed(x)))  # type: ignore[no-any-return]


# -- wrappers ----------------------------------------------------------------------------------------
class Centred(nn.Module):
    """``x |-> inner(x - c) + c``, ``c`` the mean position: translation-equivariance by centring.

    ``inner`` is called with ``generator=`` when ``stochastic``.
    """

    def __init__(self, inner: nn.Module, stochastic: bool) -> None:
        super().__init__()
        self.inner, self.stochastic = inner, stochastic

    def forward(self, x: Tensor, generator: torch.Generator | None = None) -> Tensor:
        centre = x[..., :3].mean(-2, keepdim=True)
        centred = torch.cat([x[..., :3] - centre, x[..., 3:]], dim=-1)
        y = self.inner(centred, generator=generator) if self.stochastic else self.inner(centred)
        return y + centre  # type: ignore[no-any-return]


def _cloud(x: Tensor) -> Tensor:
    """The 10-point cloud ``[x_i, x_i + v_i]`` of systems ``(b, n, 7)``."""
    return torch.cat([x[..., :3], x[..., :3] + x[..., 3:6]], dim=-2)


class CloudFrames:
    """The 8 PCA frames ``(b, 8, 3, 3)`` of the cloud ``[x, x + v]``, eigenvectors by increasing eigenvalue."""

    reason = "PCA frames of the cloud [x, x + v] rotate with (x, v) as a set, and ignore translations"

    def __init__(self, validate: bool = False) -> None:
        self.validate = validate
        self.frames = PCAFrames(validate=validate, descending=False)

    def __call__(self, x: Tensor) -> Tensor:
        return self.frames(_cloud(x))


class CloudCanonicaliser:
    """The PCA canonicaliser of the cloud ``[x, x + v]`` (decreasing eigenvalues, third-moment signs)."""

    reason = "the PCA canonicaliser of the cloud [x, x + v] rotates with (x, v) and ignores translations"

    def __init__(self, validate: bool = False) -> None:
        self.validate = validate
        self.frame = PCACanonicaliser(validate=validate)

    def __call__(self, x: Tensor) -> Tensor:
        return self.frame(_cloud(x))


class _FramedBackbone(nn.Module):
    """The network the peer's ``FrameAverage`` calls: framed cloud ``(b f, 2n, 3)`` and charges ``(b f, n)``.

    Splits the cloud into framed positions and velocities, re-centres the positions by their
    own mean, and calls the backbone; returns ``(b f, n, 3)`` in frame coordinates.
    """

    def __init__(self, backbone: nn.Module) -> None:
        super().__init__()
        self.backbone = backbone

    def forward(self, points: Tensor, charges: Tensor) -> Tensor:
        n = charges.shape[-1]
        x, moved = points[:, :n], points[:, n:]
        x = x - x.mean(-2, keepdim=True)
        return self.backbone(torch.cat([x, moved - points[:, :n], charges.unsqueeze(-1)], dim=-1))  # type: ignore


class PeerFrameAverage(nn.Module):
    """``frame_averaging_pytorch.FrameAverage`` around ``backbone``, on the cloud ``[x, x + v]``; ``+ mean(x)``."""

    def __init__(self, backbone: nn.Module) -> None:
        super().__init__()
        from frame_averaging_pytorch import FrameAverage

        with warnings.catch_warnings():  # the peer's constructor indexes with a list (a torch deprecation warning)
            warnings.filterwarnings("ignore", "Using a non-tuple sequence", UserWarning)
            self.average = FrameAverage(_FramedBackbone(backbone), dim=DIM)

    def forward(self, x: Tensor) -> Tensor:
        return self.average(_cloud(x), x[..., 6]) + x[..., :3].mean(-2, keepdim=True)  # type: ignore[no-any-return]


class EGNNModel(nn.Module):
    """The EGNN paper's N-body model from ``egnn-pytorch`` layers, with its velocity term added between layers.

    Node features ``[|v|, q]`` embedded to ``width``; edge features ``q_i q_j``; ``layers``
    ``egnn_pytorch.EGNN`` layers (``m_dim = width``), each followed by ``x += phi_v(h) v``.
    """

    def __init__(self, width: int = 64, layers: int = 4) -> None:
        super().__init__()
        from egnn_pytorch import EGNN

        self.embed = nn.Linear(2, width)
        self.layers = nn.ModuleList(EGNN(dim=width, edge_dim=1, m_dim=width) for _ in range(layers))
        self.velocity = nn.ModuleList(nn.Sequential(nn.Linear(width, width), nn.SiLU(), nn.Linear(width, 1))
                                      for _ in range(layers))

    def forward(self, x: Tensor) -> Tensor:
        coors, v, q = x[..., :3], x[..., 3:6], x[..., 6]
        h = self.embed(torch.stack([v.norm(dim=-1), q], dim=-1))
        edges = (q.unsqueeze(-1) * q.unsqueeze(-2)).unsqueeze(-1)
        for layer, velocity in zip(self.layers, self.velocity):
            h, coors = layer(h, coors, edges)
            coors = coors + velocity(h) * v
        return coors  # type: ignore[no-any-return]


class ParticleGroupNet(nn.Module):
    """The recursive gamma's network, permutation-invariant: ``(x, eps) |-> QR(rho([sum_i phi(x_i), eps]))``.

    ``phi`` (per particle) and ``rho`` are SiLU MLPs of width ``hidden``; summing over particles
    makes the gamma, hence the symmetrised transformer, invariant under permuting them (the
    library's default ``GroupNet`` reads the flattened system, which is not).  Any network works
    for ``O(3)``-equivariance in law: the recursive gamma symmetrises it with a Haar draw.
    """

    def __init__(self, group: Orthogonal, hidden: int = 64) -> None:
        super().__init__()
        self.group = group
        self.phi = nn.Sequential(nn.Linear(FEATURES, hidden), nn.SiLU(), nn.Linear(hidden, hidden))
        self.rho = nn.Sequential(nn.Linear(hidden + group.d * group.d, hidden), nn.SiLU(),
                                 nn.Linear(hidden, raw_size(group)))

    def forward(self, x: Tensor, eps: Tensor) -> Tensor:
        pooled = self.phi(x).sum(-2)
        return project(self.group, self.rho(torch.cat([pooled, eps.flatten(1)], dim=-1)))


def particle_recursive_gamma(group: Orthogonal, action: TorchAction, hidden: int = 64) -> Gamma:
    """Cornish's recursive gamma ``R0 . f(R0^-1 . x, eps)`` with the permutation-invariant ``f`` above."""
    return recursive(ParticleGroupNet(group, hidden), group, action, (group.d, group.d))


# -- models ------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class ModelConfig:
    """Sizes and draw counts: ``test_samples`` draws are averaged at test time by the stochastic models."""

    test_samples: int = 16
    gamma_hidden: int = 64
    mlp_hidden: tuple[int, ...] = (256, 256, 256)
    width: int = 64
    layers: int = 3


@dataclass(frozen=True, eq=False)
class Model:
    """A built contender: ``module`` (all parameters), its uses, and what it is."""

    method: str
    module: nn.Module
    stochastic: bool
    augment: bool
    symmetry: Symmetry

    def forward(self, x: Tensor, generator: torch.Generator | None = None) -> Tensor:
        """One draw (a deterministic model: its value)."""
        return self.module(x, generator=generator) if self.stochastic else self.module(x)  # type: ignore

    def predict(self, x: Tensor, samples: int = 1, generator: torch.Generator | None = None) -> Tensor:
        """The mean of ``samples`` draws, in one batched pass (a deterministic model: its value)."""
        if not self.stochastic or samples == 1:
            return self.forward(x, generator)
        y = self.forward(x.repeat_interleave(samples, 0), generator)
        return y.view(x.shape[0], samples, *y.shape[1:]).mean(1)

    def loss(self, x: Tensor, y: Tensor, generator: torch.Generator | None = None) -> Tensor:
        """Mean squared error over coordinates; the augmented methods first move each example at random."""
        if self.augment:
            r, t = random_euclidean(x.shape[0], generator, x.dtype, x.device)
            x, y = move(r, t, x, y)
        return (self.forward(x, generator) - y).square().mean()


def available(method: str) -> str | None:
    """``None`` if ``method`` can run here, else why not (a peer that is not installed or cannot be imported)."""
    if method not in METHODS:
        raise ValueError(f"unknown method {method!r}: use one of {', '.join(METHODS)}")
    module = PEERS.get(method)
    if module is None:
        return None
    import importlib

    try:
        importlib.import_module(module)
    except Exception as error:  # noqa: BLE001 - any import failure makes the peer unavailable; report it
        known = PEER_STATUS.get(method, "")
        return f"{module} cannot be imported ({type(error).__name__}: {error}). {known}".strip()
    return None


def _backbone(name: str, config: ModelConfig) -> nn.Module:
    if name == "mlp":
        return MLPBackbone(PARTICLES, config.mlp_hidden)
    return TransformerBackbone(config.width, 4, 2 * config.width, config.layers)


def build(method: str, config: ModelConfig = ModelConfig(), seed: int = 0) -> Model:
    """``method`` (one of :data:`METHODS`), its parameters initialised from ``seed`` (the global RNG is left alone)."""
    why = available(method)
    if why is not None:
        raise RuntimeError(f"method {method!r} cannot run: {why}")
    sym = symmetry()
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        stochastic = method in ("haar", "recursive")
        module: nn.Module
        if method in ("mlp", "transformer", "mlp-aug", "transformer-aug"):
            module = _backbone(method.removesuffix("-aug"), config)
        elif method == "egnn":
            module = EGNNModel(config.width, 4)
        elif method == "fa-peer":
            module = PeerFrameAverage(_backbone("transformer", config))
        else:
            net = _backbone("transformer", config)
            inner: nn.Module
            if method == "fa":
                inner = frame_average(net, sym.rotations, sym.system, sym.points, frame=CloudFrames())
            elif method == "canon":
                inner = canonicalise(net, sym.rotations, sym.system, sym.points, frame=CloudCanonicaliser())
            else:
                gamma = "haar" if method == "haar" else particle_recursive_gamma(sym.rotations, sym.system,
                                                                                 config.gamma_hidden)
                inner = symmetrise(net, sym.rotations, sym.system, sym.points, gamma=gamma, name=f"{method}_nbody")
            module = Centred(inner, stochastic)
    return Model(method, module, stochastic, method.endswith("-aug"), sym)


def parameters(model: Model) -> int:
    """The number of trainable parameters."""
    return sum(p.numel() for p in model.module.parameters() if p.requires_grad)


def as_double(model: Model) -> Model:
    """A float64 copy (for the equivariance checks)."""
    return Model(model.method, copy.deepcopy(model.module).double(), model.stochastic, model.augment, model.symmetry)

