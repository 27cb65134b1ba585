"""How the frames refuse degenerate input: one host sync when nothing is refused, reasons worked out only after.

The policy (see :mod:`~markovcat.backends.torch.frames`): where the canonical element is not
unique the construction is not equivariant at that input, so with ``validate=True`` it raises a
``ValueError`` naming the batch index and the reason.  :data:`ROUNDING` and :func:`default_tol`
set the error bounds the frames judge degeneracy by; the helpers here compute the working dtype,
prescale clouds and raise for the first refused batch element.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor

__all__ = ["ROUNDING", "default_tol"]

#: The rounding constant ``c`` of the error bounds: a computed covariance or moment vector is within
#: ``c * eps`` (relative to its natural scale) of the exact one for the input, and of the one for the
#: rotated input.  Calibrated with a safety factor of about 4 over the largest error observed in
#: float32 and float64 on near-degenerate clouds (``tests/backends/test_frames.py`` checks the bound holds).
ROUNDING = 2.0

_HALF = (torch.float16, torch.bfloat16)

_ADVICE = ("To proceed: compute in float64 (cast the input and the model) if the input is not float64 already; "
           "pass validate=False to accept a frame that may be that far off at such inputs; or use another gamma "
           '(gamma="haar", or frame averaging).')


def default_tol(dtype: torch.dtype) -> float:
    """The default tolerance on a computed frame's error: ``sqrt(eps)`` of ``dtype`` (half the digits)."""
    return float(torch.finfo(dtype).eps) ** 0.5


def _working(x: Tensor, what: str) -> Tensor:
    """``x`` in the dtype the frame is computed in: float32 for half precision (no half eigh/QR), else ``x``'s own."""
    if not x.is_floating_point():
        raise TypeError(f"{what} needs floating-point input, got {x.dtype}: cast it to float32 or float64")
    return x.float() if x.dtype in _HALF else x


def _prescale(x: Tensor) -> tuple[Tensor, Tensor]:
    """``x / s`` with ``s = max |x_ij|`` per batch element (``x`` itself where ``x = 0``), and ``s`` ``(batch, 1, 1)``.

    Frames do not depend on the scale, and the scaled cloud's squares and fifth powers
    neither overflow nor underflow.  ``s`` is NaN or inf exactly where ``x`` is not finite,
    and then the scaled cloud is NaN throughout (``x / inf`` is 0 or NaN, and the centring
    spreads the NaN), which is what carries non-finite input to the outputs.  Powers of two
    scale exactly, so ``x`` and ``2^k x`` give the same scaled cloud, bit for bit.
    """
    s = x.abs().amax((-2, -1), keepdim=True)
    return x / s.clamp_min(torch.finfo(x.dtype).tiny), s


def _first(mask: Tensor) -> int:
    return int(mask.nonzero()[0, 0])


def _raise_nonfinite(x: Tensor, what: str) -> None:
    nonfinite = ~torch.isfinite(x.flatten(1)).all(-1)
    if bool(nonfinite.any()):
        raise ValueError(f"non-finite input (NaN or inf) at batch index {_first(nonfinite)} of {what}: the input "
                         "itself is malformed, not its geometry; find where the NaN or inf comes from")


Failure = tuple[Callable[[], Tensor], Callable[[int], str]]


def _verdict(x: Tensor, what: str, refused: Tensor, failures: list[Failure]) -> None:
    """Raise for the first refused batch element, with one host sync and nothing else when none is refused.

    ``refused``: ``(batch,)``, True where the input is refused (NaN in the quantities
    behind it must make it True, so non-finite input is refused without a check of its
    own).  Only then are the reasons worked out: non-finite input first, then the first
    of ``failures`` (a mask, computed lazily, and the message for a batch index) that
    holds at the first refused index.
    """
    if not bool(refused.any()):  # the one host sync
        return
    _raise_nonfinite(x, what)
    index = _first(refused)
    for mask, message in failures:
        if bool(mask()[index]):
            raise ValueError(message(index))
    raise ValueError(failures[-1][1](index))


def _nonfinite(x: Tensor) -> tuple[Tensor, Callable[[int], str]]:
    return ~torch.isfinite(x.flatten(1)).all(-1), lambda i: f"non-finite input (NaN or inf) at batch index {i}"


def _verdict_of(x: Tensor, what: str, failures: list[tuple[Tensor, Callable[[int], str]]]) -> None:
    """:func:`_verdict` for masks already computed (cheap ones): refused where any of them holds."""
    refused = failures[0][0]
    for mask, _ in failures[1:]:
        refused = refused | mask
    _verdict(x, what, refused, [(_constant(mask), message) for mask, message in failures])


def _constant(mask: Tensor) -> Callable[[], Tensor]:
    """A thunk returning ``mask`` (a mask already computed, in :func:`_verdict`'s lazy form)."""
    return lambda: mask
