"""Finzi et al.'s EMLP (2021) from the ``emlp`` package, applied in torch: its bases computed once, at construction.

``emlp.nn.pytorch`` builds torch modules whose every forward and backward call JAX (the
bilinear layer's weights, and the projections of every linear layer) and copies the results
through numpy.  The modules here take the same structure from ``emlp`` once, when they are
built (each linear layer's equivariant projector, from ``emlp``'s per-type equivariant bases;
the bilinear layer's index structure, from ``emlp.reps.bilinear_weights``; the gates, from
``emlp.nn.gate_indices``) and apply it with torch operations only.  Parameters have the names,
shapes and initialisation of ``emlp.nn.pytorch``'s (``weight``, ``bias``, ``bi_params``), so a
state dict of one loads into the other; ``tests/test_matrix_emlp.py`` checks that both give the
same outputs on the same weights for every matrix task's representations.

What the equality proves: that these modules compute ``emlp.nn.pytorch``'s functions.  Their
equivariance is ``emlp``'s: exact up to the accuracy of its bases, which it solves for in
float32 (so a float64 model is equivariant to about ``1e-6`` relative, not to float64 rounding).

The bilinear layer, ``0.1 * W(x) x`` with ``W(x)`` linear in ``x``, is applied without forming
the ``(out, in)`` matrix ``W(x)`` per row: only the entries ``emlp`` can make non-zero (the
tensor types of ``W`` that occur in ``x``) are computed, then summed into their output rows.

``emlp`` is an optional dependency (``pip install -e ".[emlp]"``), imported only when a module
is built.
"""

from __future__ import annotations

import inspect
from collections.abc import Iterator
from contextlib import contextmanager
from types import ModuleType
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

__all__ = ["require_emlp", "Projector", "Linear", "BiLinear", "GatedNonlinearity", "EMLPBlock", "EMLP"]


def require_emlp() -> ModuleType:
    """The ``emlp`` package, or an ``ImportError`` that says how to install it."""
    try:
        import emlp
        import emlp.nn
        import emlp.reps
    except ImportError as error:  # pragma: no cover - depends on the environment
        raise ImportError("the emlp and kim-emlp methods need the emlp package (Finzi et al. 2021): "
                          "pip install -e \".[emlp]\"") from error
    return emlp


def _types(rep: Any) -> tuple[dict[Any, int], np.ndarray]:
    """``({tensor type: multiplicity}, perm)``: ``v[perm]`` lists ``rep``'s coordinates grouped by type."""
    from emlp.reps.product_sum_reps import SumRep

    canonical, perm = rep.canonicalize()
    if not isinstance(canonical, SumRep):  # a single tensor type (a ProductRep's .reps are its factors)
        return {canonical: 1}, np.asarray(perm)
    return dict(canonical.reps), np.asarray(perm)


def _basis(kind: Any) -> np.ndarray:
    return np.asarray(kind.equivariant_basis(), dtype=np.float64)


class Projector(nn.Module):
    """The orthogonal projection onto ``rep``'s equivariant vectors, ``v -> P v``, as ``emlp`` computes it.

    Per tensor type ``t`` of multiplicity ``m``: the ``m`` copies (after ``emlp``'s canonical
    permutation) are each projected by ``P_t = Q_t Q_t^T``, ``Q_t`` ``emlp``'s equivariant basis.
    """

    perm: Tensor
    inverse: Tensor

    def __init__(self, rep: Any) -> None:
        super().__init__()
        types, perm = _types(rep)
        self.size = int(rep.size())
        self.register_buffer("perm", torch.as_tensor(perm, dtype=torch.long), persistent=False)
        self.register_buffer("inverse", torch.as_tensor(np.argsort(perm), dtype=torch.long), persistent=False)
        self.counts: list[int] = []
        self.sizes: list[int] = []
        for index, (kind, count) in enumerate(types.items()):
            q = _basis(kind)
            self.counts.append(int(count))
            self.sizes.append(int(kind.size()))
            self.register_buffer(f"p{index}", torch.as_tensor(q @ q.T, dtype=torch.float32), persistent=False)

    def forward(self, v: Tensor) -> Tensor:
        """``P v`` for ``v`` of shape ``(size,)``."""
        grouped = v.index_select(0, self.perm)
        parts, start = [], 0
        for index, (count, size) in enumerate(zip(self.counts, self.sizes, strict=True)):
            p = getattr(self, f"p{index}").to(v.dtype)  # (non-persistent: a copy made from a state dict keeps float32)
            block = grouped[start:start + count * size].view(count, size)
            parts.append((block @ p.T).reshape(-1))
            start += count * size
        return torch.cat(parts).index_select(0, self.inverse)


class Linear(nn.Linear):
    """``emlp.nn.pytorch.Linear``: ``F.linear(x, P_W w, P_b b)``, weight and bias projected onto equivariant maps."""

    def __init__(self, repin: Any, repout: Any) -> None:
        super().__init__(repin.size(), repout.size())
        self.project_weight = Projector(repout * repin.T)
        self.project_bias = Projector(repout)

    def forward(self, x: Tensor) -> Tensor:
        weight = self.project_weight(self.weight.reshape(-1)).view_as(self.weight)
        return nn.functional.linear(x, weight, self.project_bias(self.bias))


@contextmanager
def _numpy_seed(seed: int | None) -> Iterator[None]:
    """With ``seed``: numpy's global random state seeded by it inside, restored after; ``None``: left alone."""
    if seed is None:
        yield
        return
    state = np.random.get_state()
    np.random.seed(seed)
    try:
        yield
    finally:
        np.random.set_state(state)


def _closure(function: Any) -> dict[str, Any]:
    """The variables a (possibly ``jax.jit``-wrapped) closure reads from its defining scope."""
    while hasattr(function, "__wrapped__"):
        function = function.__wrapped__
    return dict(inspect.getclosurevars(function).nonlocals)


class BiLinear(nn.Module):
    """``emlp.nn.pytorch.BiLinear``: ``0.1 * W(x) x``, ``W(x)`` the equivariant matrix ``emlp`` builds from ``x``.

    ``emlp.reps.bilinear_weights(repout, repin)`` fixes the structure (drawing, as ``emlp`` does,
    which copies of each tensor type of ``x`` feed ``W``: from numpy's global random state, or
    from ``seed`` when given, so that the same seed builds the same layer whatever ran before).
    ``W``'s entries of type ``t`` are ``params_t @ x_t`` (``x_t`` those copies of ``x``); each
    entry ``(o, i)`` of ``W`` contributes ``W_oi x_i`` to output ``o``.
    """

    rows: Tensor
    columns: Tensor

    def __init__(self, repin: Any, repout: Any, seed: int | None = None) -> None:
        super().__init__()
        emlp = require_emlp()
        with _numpy_seed(seed):
            size, projection = emlp.reps.bilinear_weights(repout, repin)
        scope = _closure(projection)
        out_size, in_size = scope["mat_shape"]
        self.out_size = int(out_size)
        position = np.argsort(np.asarray(scope["inv_perm"]))  # canonical entry p of W is entry position[p] of W
        self.bi_params = nn.Parameter(torch.randn(int(size)))
        self.blocks: list[tuple[int, int, int]] = []  # (parameters, copies n, type size) per active type
        sources, targets, offset = [], [], 0
        for kind, count in scope["W_multiplicities"].items():
            width = count * kind.size()
            if kind in scope["x_multiplicities"]:
                n = scope["nelems"](scope["x_multiplicities"][kind], kind)
                self.blocks.append((int(count), int(n), int(kind.size())))
                ids = np.asarray(scope["reduced_indices_dict"][kind])
                self.register_buffer(f"ids{len(self.blocks) - 1}", torch.as_tensor(ids, dtype=torch.long),
                                     persistent=False)
                entries = position[offset:offset + width]
                targets.append(entries // in_size)
                sources.append(entries % in_size)
            offset += width
        for name, parts in (("rows", targets), ("columns", sources)):
            indices = np.concatenate(parts) if parts else np.zeros(0, dtype=np.int64)
            self.register_buffer(name, torch.as_tensor(indices, dtype=torch.long), persistent=False)

    def forward(self, x: Tensor) -> Tensor:
        flat = x.reshape(-1, x.shape[-1])
        if not self.blocks:
            return x.new_zeros(*x.shape[:-1], self.out_size)
        # Rows in chunks: the per-entry intermediates of a whole batch do not fit in cache.
        out = torch.cat([self._rows(chunk) for chunk in flat.split(self.CHUNK)])
        return out.reshape(*x.shape[:-1], self.out_size)

    CHUNK = 32

    def _rows(self, flat: Tensor) -> Tensor:
        entries, start = [], 0
        for index, (count, n, size) in enumerate(self.blocks):
            params = self.bi_params[start:start + count * n].view(count, n)
            start += count * n
            copies = flat.index_select(1, getattr(self, f"ids{index}")).view(-1, n, size)
            entries.append(torch.einsum("wk,bkr->bwr", params, copies).reshape(flat.shape[0], -1))
        terms = torch.cat(entries, dim=1) * flat.index_select(1, self.columns)
        out = flat.new_zeros(self.out_size, flat.shape[0]).index_add_(0, self.rows, terms.T)
        return 0.1 * out.T


class GatedNonlinearity(nn.Module):
    """``emlp.nn.pytorch.GatedNonlinearity``: each value times the sigmoid of its gate (scalars: their own)."""

    gates: Tensor

    def __init__(self, rep: Any) -> None:
        super().__init__()
        emlp = require_emlp()
        self.size = int(rep.size())
        gates = np.asarray(emlp.nn.gate_indices(rep))
        self.register_buffer("gates", torch.as_tensor(gates, dtype=torch.long), persistent=False)

    def forward(self, values: Tensor) -> Tensor:
        return values.index_select(-1, self.gates).sigmoid() * values[..., : self.size]


class EMLPBlock(nn.Module):
    """``emlp.nn.pytorch.EMLPBlock``: equivariant linear, bilinear (added), gated nonlinearity."""

    def __init__(self, rep_in: Any, rep_out: Any, seed: int | None = None) -> None:
        super().__init__()
        gated = require_emlp().nn.gated
        self.linear = Linear(rep_in, gated(rep_out))
        self.bilinear = BiLinear(gated(rep_out), gated(rep_out), seed)
        self.nonlinearity = GatedNonlinearity(rep_out)

    def forward(self, x: Tensor) -> Tensor:
        lin = self.linear(x)
        return self.nonlinearity(self.bilinear(lin) + lin)  # type: ignore[no-any-return]


class EMLP(nn.Module):
    """``emlp.nn.pytorch.EMLP``: ``num_layers`` blocks on ``uniform_rep(ch, group)``, then an equivariant linear layer.

    ``rep_in`` and ``rep_out`` are ``emlp`` representations (e.g. ``26 * V``, ``T(2)``), not yet
    bound to ``group``; inputs and outputs are flat vectors in ``emlp``'s coordinate order.
    ``seed`` fixes the bilinear layers' structure (see :class:`BiLinear`); parameters are drawn
    from torch's random state, as ``emlp.nn.pytorch`` draws them.
    """

    def __init__(self, rep_in: Any, rep_out: Any, group: Any, ch: int = 384, num_layers: int = 3,
                 seed: int | None = None) -> None:
        super().__init__()
        emlp = require_emlp()
        middle = [emlp.nn.uniform_rep(ch, group)] * num_layers
        reps = [rep_in(group), *middle]
        blocks = [EMLPBlock(a, b, None if seed is None else seed + i) for i, (a, b) in enumerate(zip(reps, reps[1:]))]
        self.network = nn.Sequential(*blocks,
                                     Linear(reps[-1], rep_out(group)))

    def forward(self, x: Tensor) -> Tensor:
        return self.network(x)  # type: ignore[no-any-return]
