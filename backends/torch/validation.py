"""The input checks of a compiled model's validating ``forward`` (and of ``model.check_inputs``).

By default the generated ``forward`` first checks its inputs and raises
``TypeError``/``ValueError`` naming the input, its type and the box that reads it: the
number of inputs, that each is a tensor with a batch dimension in front of its type's
per-example shape (an unbatched input is refused, not broadcast), one batch size for all
inputs, the dtype (a Spec's dtype, or else the model's floating dtype: that of its
parameters, following ``model.to(dtype)``; a model without parameters takes any floating
dtype), and that floating inputs are finite.  The metadata checks cost no tensor work; the
finiteness check is one fused reduction, read back on the CPU and asserted on the device
elsewhere (``torch._assert_async``: no synchronisation, but a failure on CUDA is a
device-side assertion that ends the CUDA context, so call ``model.check_inputs`` first on
data you do not trust there).  What the checks prove: the inputs are well formed; nothing
about the outputs.  Everything the checks print is prepared at compile time
(:class:`InputCheck`), so they do no formatting unless they fail.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor

from markovcat.backends.torch.interpretation import Spec

__all__ = ["InputCheck", "check_inputs", "assert_finite", "finite_on_host"]


@dataclass(frozen=True)
class InputCheck:
    """What the validating ``forward`` checks of one input, prepared at compile time (strings included, so
    that the checks do no formatting unless they fail, and read as constants under ``torch.compile``)."""

    name: str  # "input 0 (type X, read by box 'net')"
    spec: Spec | None
    rank: int  # with the batch dimension (0: unknown, only a batch dimension is required)
    shape: tuple[int, ...] | None  # the per-example shape when it has no free dimension
    expected: str  # "(batch, 16, 3)"
    described: str  # str(spec)

    @classmethod
    def of(cls, name: str, spec: Spec | None) -> InputCheck:
        if spec is None:
            return cls(name, None, 0, None, "(batch, ...)", "unspecified")
        shape = None if None in spec.shape else tuple(int(s) for s in spec.shape if s is not None)
        expected = "(batch" + "".join(f", {'*' if s is None else s}" for s in spec.shape) + ")"
        return cls(name, spec, len(spec.shape) + 1, shape, expected, str(spec))


def check_inputs(model: Any, inputs: Sequence[Any], synchronise: bool) -> None:
    """The input checks of the validating ``forward`` (see the module docstring for what they prove)."""
    checks = model.plan.input_checks
    if len(inputs) != len(checks):
        raise TypeError(f"the diagram takes {len(checks)} inputs ({model.plan.signature}), got {len(inputs)}")
    reference: Tensor = model._ref  # type: ignore[assignment]
    floating: torch.dtype | None = reference.dtype if model._typed else None
    compiling = torch.compiler.is_compiling()
    batch = None
    for position, (value, check) in enumerate(zip(inputs, checks, strict=True)):
        name, spec = check.name, check.spec
        if not isinstance(value, Tensor):
            raise TypeError(f"{name} is {type(value).__name__}, not a tensor")
        rank = value.dim()
        if rank == 0 or (check.rank and rank != check.rank):
            hint = ""
            if spec is not None and rank == check.rank - 1 and spec.matches(tuple(value.shape)):
                hint = ": it lacks the batch dimension; for one example use x.unsqueeze(0)"
            raise ValueError(f"{name} has shape {tuple(value.shape)}; expected {check.expected}{hint}")
        if spec is not None:
            if not (value.shape[1:] == check.shape if check.shape is not None else spec.matches(value.shape[1:])):
                raise ValueError(f"{name} has per-example shape {tuple(value.shape[1:])}, expected {check.described} "
                                 f"(with the batch dimension in front)")
            if spec.dtype is not None:
                if value.dtype != spec.dtype:
                    raise ValueError(f"{name} has dtype {value.dtype}, but its type is {check.described}: convert "
                                     f"it with x.to({spec.dtype})")
            elif not value.is_floating_point():
                raise ValueError(f"{name} has dtype {value.dtype}, but its type is floating (Spec dtype None): "
                                 f"convert it with x.to({floating or torch.get_default_dtype()}), or declare the "
                                 f"type's dtype in its Spec")
        if floating is not None and (spec is None or spec.dtype is None) and value.is_floating_point() \
                and value.dtype != floating:
            raise ValueError(f"{name} has dtype {value.dtype}, but the model's parameters are {floating}: convert "
                             f"the input with x.to({floating}) or the model with model.to({value.dtype})")
        if batch is None:
            batch = value.shape[0]
        elif value.shape[0] != batch:
            sizes = ", ".join(f"input {i} has {x.shape[0]}" for i, x in enumerate(inputs[: position + 1]))
            raise ValueError(f"the inputs have different batch sizes: {sizes}")
        if value.is_floating_point() or value.is_complex():
            if compiling or not (value.is_cpu or synchronise):
                assert_finite(value, f"{name} contains NaN or inf")  # traceable, no host synchronisation
            elif not value.is_meta and not finite_on_host(value):
                raise ValueError(f"{name} contains NaN or inf")


def finite_on_host(value: Tensor) -> bool:
    """Whether ``value`` is all finite, read back to the host: one sum, exact check only if the sum is not finite.

    (A NaN or inf entry always makes the sum NaN or inf; a non-finite sum of finite entries is an overflow.)
    """
    if not value.is_complex() and math.isfinite(value.sum().item()):
        return True
    return bool(torch.isfinite(value).all())



def assert_finite(value: Tensor, message: str) -> None:
    """Assert on ``value``'s device that it holds no NaN or inf: one reduction (fused under ``torch.compile``),
    no host synchronisation.

    A failure raises ``RuntimeError(message)`` on the CPU and under ``torch.compile``; on CUDA it is a
    device-side assertion, reported at the next synchronisation.
    """
    torch._assert_async(torch.isfinite(value).all(), message)
