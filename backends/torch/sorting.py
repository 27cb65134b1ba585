"""Canonicalisers for permutations and other finite groups: sort the rows, or take the best orbit element.

* :class:`Lexsort` - ``S_n`` on sets ``(n, d)``: the permutation sorting the rows lexicographically;
  :class:`RandomTiesLexsort` breaks ties between equal rows uniformly at random (equivariant in law);
* :class:`SortCanonicaliser` - ``S_n``: sort by a score of each row;
* :class:`OrbitArgmax` - a finite group (``C_n``, ``D_n`` on images, ``S_n`` on sets...): the element ``h``
  maximising a fixed score of ``h^-1 . x``.

Ties are refused with ``validate=True`` (``ties="allow"`` accepts them where the output is
invariant), as :mod:`~markovcat.backends.torch.frames` describes.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor

from markovcat.backends.torch.finite_groups import elements
from markovcat.backends.torch.groups import TorchAction
from markovcat.backends.torch.linalg import rand
from markovcat.backends.torch.refusals import ROUNDING, _nonfinite, _verdict_of

__all__ = ["Lexsort", "RandomTiesLexsort", "OrbitArgmax", "SortCanonicaliser"]


_TIES = ("refuse", "allow")


def _check_ties(ties: str) -> str:
    if ties not in _TIES:
        raise ValueError(f"ties must be 'refuse' or 'allow', got {ties!r}")
    return ties


def _identical_rows_message(what: str) -> Callable[[int], str]:
    return lambda i: (
        f"two rows of the set at batch index {i} are identical, so {what} has no unique canonical element: the set's "
        "stabiliser is non-trivial and no deterministic canonicalisation is equivariant at it. If the output is "
        "invariant, pass ties=\"allow\" (every tie-break gives the same canonical input, so the same output). For an "
        "equivariant output, use gamma=\"canonical-random-ties\" (RandomTiesLexsort: ties broken uniformly at random, "
        "exactly equivariant in distribution), average over the tie-breaking permutations (frame averaging), or "
        "gamma=\"haar\".")


def _lexsort(x: Tensor, order: Tensor) -> Tensor:
    """Stable lexicographic sort of the rows of ``x (b, n, d)``, ties kept in the order ``order`` lists them."""
    for k in reversed(range(x.shape[-1])):  # stable sorts, least significant column first
        keys = torch.gather(x[..., k], -1, order)
        order = torch.gather(order, -1, torch.sort(keys, dim=-1, stable=True).indices)
    return order


class Lexsort:
    """``S_n`` canonicalisation of sets ``(n, d)``: the permutation ``p`` listing the rows in lexicographic order.

    ``p[i]`` is the index of the ``i``-th row in order (as ``argsort``), so
    ``gamma(p'.x) = p' o gamma(x)`` and ``gamma(x)^-1 . x`` is the sorted set.  Exact (no
    rounding is involved), so equivariant exactly where the rows are distinct.

    Two identical rows (every zero-padded set has them) make the stabiliser
    non-trivial.  ``ties="refuse"`` (the default, with ``validate=True``) raises there.
    ``ties="allow"`` accepts them, ties kept in input order: every tie-break gives the
    same sorted set, so an *invariant* output ``f(gamma(x)^-1 . x)`` is exactly
    invariant; an *equivariant* output is then not equivariant at that input (use
    :class:`RandomTiesLexsort`).  ``validate=True`` also refuses NaN or inf (one host
    sync); ``validate=False`` checks nothing.
    """

    vouched = True  # its equivariance is the library's claim, tested in its suite (see Gamma.from_callable)

    reason = "lexicographic order does not depend on the order the rows come in"
    """Why it is equivariant, in one sentence: the reason recorded in the evidence of a gamma built from it."""

    def __init__(self, validate: bool = True, ties: str = "refuse") -> None:
        self.validate, self.ties = validate, _check_ties(ties)

    def __call__(self, x: Tensor) -> Tensor:
        batch, n, d = x.shape
        order = _lexsort(x, torch.arange(n, device=x.device).expand(batch, n))
        if self.validate:
            failures = [_nonfinite(x)]
            if self.ties == "refuse" and n > 1:
                rows = torch.gather(x, -2, order.unsqueeze(-1).expand(batch, n, d))
                failures.append(((rows[:, 1:] == rows[:, :-1]).all(-1).any(-1), _identical_rows_message("Lexsort")))
            _verdict_of(x, "Lexsort", failures)
        return order


class RandomTiesLexsort:
    """Stochastic ``S_n`` gamma on sets ``(n, d)``: lexicographic order, ties between identical rows broken at random.

    ``gamma(x)`` is uniform over the permutations that sort ``x`` (index vectors, as
    :class:`Lexsort`): a random permutation is drawn first (``generator=``), then a
    stable lexicographic sort keeps identical rows in its order.  Sorting permutations of
    ``p.x`` are ``p o`` those of ``x``, so ``gamma(p.x) = p o gamma(x)`` in law: an
    equivariant Markov kernel everywhere, ties included, and ``sym`` with it is exactly
    equivariant in distribution.  Without ties it equals :class:`Lexsort`.
    ``validate=True`` refuses NaN or inf (one host sync).
    """

    vouched = True  # its equivariance is the library's claim, tested in its suite (see Gamma.from_callable)

    reason = "ties broken uniformly at random among the sorting permutations: p o gamma(x) has the law of gamma(p.x)"
    """Why it is equivariant, in one sentence: the reason recorded in the evidence of a gamma built from it."""
    deterministic = False
    """``False``: ties are broken by a random draw."""
    validate: bool
    """Whether non-finite inputs are refused."""

    def __init__(self, validate: bool = True) -> None:
        self.validate = validate

    def __call__(self, x: Tensor, generator: torch.Generator | None = None) -> Tensor:
        batch, n, _ = x.shape
        if self.validate:
            _verdict_of(x, "RandomTiesLexsort", [_nonfinite(x)])
        shuffle = torch.argsort(rand((batch, n), generator, torch.float64, x.device), dim=-1)
        return _lexsort(x, shuffle)


class OrbitArgmax:
    """Finite-group canonicalisation: ``gamma(x) = argmax_h score(h^-1 . x)`` over all ``h`` in ``G``.

    ``gamma(g.x) = g gamma(x)`` because ``h |-> g h`` permutes the orbit.  ``score``
    defaults to a fixed random linear functional (``seed``) on the action's space.
    The group is enumerated once (at most ``limit`` elements; a group may provide its
    own ``elements()``).  Equivariant exactly where the best score is unique.

    With ``validate=True`` it refuses non-finite input, and ties for the best score
    (within ``rtol`` times the largest score magnitude; default ``ROUNDING * eps`` of the
    scores' dtype).  A tie between elements ``h, h'`` with ``h^-1.x = h'^-1.x`` means the
    input has a symmetry: ``ties="allow"`` accepts it (every choice gives the same
    canonical input, so an invariant output is exact; an equivariant one is then not
    equivariant at that input), ``ties="refuse"`` (the default) raises.  A tie between
    different canonical inputs is always refused: choose another ``score`` or ``seed``.
    """

    vouched = True  # its equivariance is the library's claim, tested in its suite (see Gamma.from_callable)

    reason = "h |-> g h permutes the orbit, so the argmax moves by g"
    """Why it is equivariant, in one sentence: the reason recorded in the evidence of a gamma built from it."""

    def __init__(self, action: TorchAction, score: Callable[[Tensor], Tensor] | None = None,
                 validate: bool = True, rtol: float | None = None, seed: int = 0, limit: int = 5040,
                 ties: str = "refuse") -> None:
        self.action, self.validate, self.rtol, self.ties = action, validate, rtol, _check_ties(ties)
        if score is None:
            shape = tuple(int(s) for s in action.spec.shape)  # type: ignore[arg-type]
            score = _Linear(torch.randn(shape, generator=torch.Generator().manual_seed(seed), dtype=torch.float64))
        self.score = score
        self.candidates = elements(action.group, limit=limit)  # (m, ...)

    def __call__(self, x: Tensor) -> Tensor:
        group = self.action.group
        candidates = self.candidates.to(x.device)
        batch, m = x.shape[0], candidates.shape[0]
        hs = candidates.repeat(batch, *([1] * (candidates.dim() - 1)))
        moved = self.action.act(group.inv(hs), x.repeat_interleave(m, 0))
        scores = self.score(moved).reshape(batch, m)
        best = scores.argmax(-1)
        if self.validate:
            failures = [_nonfinite(x)]
            if m > 1:
                rtol = self.rtol if self.rtol is not None else ROUNDING * float(torch.finfo(scores.dtype).eps)
                top = scores.gather(-1, best.unsqueeze(-1))
                near = top - scores <= rtol * scores.abs().amax(-1, keepdim=True)  # (batch, m), best included
                flat = moved.reshape(batch, m, -1)
                same = (flat == flat.gather(1, best[:, None, None].expand(batch, 1, flat.shape[-1]))).all(-1)
                failures.append(((near & ~same).any(-1), lambda i: (
                    f"two elements of the orbit of the input at batch index {i} tie for the best score but give "
                    "different canonical inputs, so the choice is a matter of rounding: choose another score (or "
                    "seed), or another gamma (gamma=\"haar\", or frame averaging)")))
                if self.ties == "refuse":
                    failures.append(((near & same).sum(-1) > 1, lambda i: (
                        f"the input at batch index {i} has a symmetry (two elements of the group map it to the same "
                        "canonical input), so it has no unique canonical element and no deterministic "
                        "canonicalisation is equivariant at it. If the output is invariant, pass ties=\"allow\" "
                        "(every choice gives the same canonical input). For an equivariant output, average over "
                        "the tied elements (frame averaging, or gamma=\"haar\" for a finite group), or for S_n "
                        "use gamma=\"canonical-random-ties\".")))
            _verdict_of(x, "OrbitArgmax", failures)
        return candidates[best]


class _Linear:
    def __init__(self, weights: Tensor) -> None:
        self.weights = weights

    def __call__(self, x: Tensor) -> Tensor:
        return (x * self.weights.to(x.dtype)).flatten(1).sum(-1)


class SortCanonicaliser:
    """Deterministic S_n-equivariant ``gamma : (n, d) -> S_n``: the permutation sorting a per-row score.

    ``gamma(x) = argsort(x @ weights)``, so ``gamma(p.x) = p o gamma(x)``, exactly where the
    scores are distinct.  With ``validate=True`` (one host sync) it refuses non-finite
    input and equal scores of different rows (choose other weights, or :class:`Lexsort`).
    Equal scores of identical rows (a zero-padded set) are refused with
    ``ties="refuse"`` (the default) and accepted with ``ties="allow"``: every tie-break
    gives the same sorted set, so an invariant output is exact, an equivariant one is
    then not equivariant at that input.
    """

    vouched = True  # its equivariance is the library's claim, tested in its suite (see Gamma.from_callable)

    reason = "sorting by a per-row score does not depend on the order the rows come in"
    """Why it is equivariant, in one sentence: the reason recorded in the evidence of a gamma built from it."""

    def __init__(self, weights: Tensor, validate: bool = True, ties: str = "refuse") -> None:
        self.weights, self.validate, self.ties = weights, validate, _check_ties(ties)

    def __call__(self, x: Tensor) -> Tensor:
        score = torch.matmul(x, self.weights.to(x.dtype))
        order = torch.argsort(score, dim=-1, stable=True)
        if self.validate:
            batch, n, d = x.shape
            ordered = torch.gather(score, -1, order)
            rows = torch.gather(x, -2, order.unsqueeze(-1).expand(batch, n, d))
            tied = ordered[..., 1:] == ordered[..., :-1]
            identical = (rows[:, 1:] == rows[:, :-1]).all(-1)
            failures = [_nonfinite(x), ((tied & ~identical).any(-1), lambda i: (
                f"tied sorting scores: two different rows of the set at batch index {i} have equal sorting scores, "
                "so its ordering is ambiguous: choose other weights, or use Lexsort"))]
            if self.ties == "refuse":
                identical_rows = _identical_rows_message("SortCanonicaliser")
                failures.append(((tied & identical).any(-1), lambda i: "tied sorting scores: " + identical_rows(i)))
            _verdict_of(x, "SortCanonicaliser", failures)
        return order
