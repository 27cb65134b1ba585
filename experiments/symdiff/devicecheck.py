"""A second device simulated on the CPU, to find device mismatches before GPU time is spent.

On a CUDA machine an operation that mixes a CUDA tensor with a CPU tensor (other than a 0-dim
"CPU scalar"), or that draws from a generator of the other device, raises; on a CPU-only machine
every tensor is on the CPU and such bugs stay hidden.  :func:`simulated_device` makes them visible:
inside it, :data:`SIMULATED` (``torch.device("lazy")``: a device type whose tensors reach Python's
dispatch without a backend of their own here, so a tensor there can only come from the simulation;
``meta`` stays free for the dry runs of ``compile``) plays the part of the accelerator.  A tensor
moved or created there is a CPU tensor wrapped in :class:`OnDevice` (its ``.device`` says ``lazy``,
its values are real), every ATen operation is checked against CUDA's rules, then run on the CPU,
and its results are wrapped again when they live on the simulated device.  A generator made for that device
(``torch.Generator(device=SIMULATED)``, e.g. by :func:`~markovcat.experiments.runner.generator`)
is a CPU generator marked as the device's.

The rules, as CUDA applies them:

* the tensor arguments of an operation (0-dim CPU tensors aside) are all on one device;
* ``index`` / ``index_put`` may index a device tensor with CPU indices, not a CPU tensor with
  device indices; ``copy_`` and ``_to_copy`` move data between the devices;
* a random operation's generator is on the device its result is made on.

What it proves: the code path run inside it keeps its tensors apart as a CUDA machine would
require, for the shapes and branches that ran.  What it does not: anything that reads
``device.type == "cuda"`` takes the other branch; autocast, ``torch.compile``, CUDA kernels and
NCCL are not simulated; a generator is recognised by its seed (two generators seeded alike, one
on each device, would be confused).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import torch
from torch import Tensor
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_leaves, tree_map

__all__ = ["SIMULATED", "DeviceMismatch", "OnDevice", "simulated_device"]

#: The device that stands for the accelerator.
SIMULATED = torch.device("lazy")

_aten = torch.ops.aten
_MOVES = {_aten._to_copy.default, _aten.copy_.default, _aten.copy.default, _aten._copy_from.default,
          _aten._copy_from_and_resize.default}
_INDEXING = {_aten.index.Tensor, _aten.index_put.default, _aten.index_put_.default, _aten._index_put_impl_.default,
             _aten._unsafe_index.Tensor}


class DeviceMismatch(RuntimeError):
    """An operation that a CUDA machine would refuse: it names the operation and the devices involved."""


class OnDevice(torch.Tensor):
    """A CPU tensor (``data``) that lives on the simulated device: only :func:`simulated_device` computes with it."""

    data_: Tensor

    @staticmethod
    def __new__(cls, data: Tensor) -> OnDevice:
        wrapped = torch.Tensor._make_wrapper_subclass(  # type: ignore[attr-defined]
            cls, data.shape, strides=data.stride(), storage_offset=data.storage_offset(), dtype=data.dtype,
            device=SIMULATED, requires_grad=data.requires_grad, layout=data.layout)
        wrapped.data_ = data
        return wrapped  # type: ignore[no-any-return]

    __torch_function__ = torch._C._disabled_torch_function_impl  # type: ignore[assignment]

    @classmethod
    def __torch_dispatch__(cls, func: Any, types: Any, args: Any = (), kwargs: Any = None) -> Any:  # type: ignore[override]
        raise DeviceMismatch(f"{func} reached a tensor of the simulated device outside simulated_device()")

    def __repr__(self) -> str:  # type: ignore[override]
        return f"OnDevice({self.data_!r})"


def _place(value: Any) -> str | None:
    if isinstance(value, OnDevice):
        return "device"
    if isinstance(value, Tensor):
        return "cpu scalar" if value.dim() == 0 else "cpu"
    return None


class _Check(TorchDispatchMode):
    def __init__(self, seeds: set[int]) -> None:
        super().__init__()
        self.seeds = seeds
        self.operations = 0

    def _generator_place(self, generator: Any) -> str:
        return "device" if generator.initial_seed() in self.seeds else "cpu"

    def __torch_dispatch__(self, func: Any, types: Any, args: Any = (), kwargs: Any = None) -> Any:
        kwargs = dict(kwargs or {})
        self.operations += 1
        places: list[str] = []
        tree_map(lambda v: places.append(p) if (p := _place(v)) is not None else None, (args, kwargs))
        target = kwargs.get("device")
        made_on = None if target is None else ("device" if torch.device(target) == SIMULATED else
                                               "cpu" if torch.device(target).type == "cpu" else None)
        if func in _INDEXING and args and isinstance(args[0], Tensor):
            indexed = _place(args[0])
            indices: list[str] = []
            tree_map(lambda v: indices.append(p) if (p := _place(v)) is not None else None, args[1])
            if indexed != "device" and "device" in indices:
                raise DeviceMismatch(f"{func}: a CPU tensor indexed by tensors of the device")
        elif func not in _MOVES:
            real = {p for p in places if p != "cpu scalar"}
            if len(real) > 1:
                shapes = [tuple(v.shape) for v in tree_leaves((args, kwargs)) if isinstance(v, Tensor)]
                raise DeviceMismatch(f"{func} mixes tensors of the device and of the CPU (shapes {shapes}); on a GPU "
                                     f"this raises")
        on = made_on or ("device" if "device" in places and func not in _MOVES else "cpu")
        if func is _aten._to_copy.default:
            on = made_on or ("device" if places and places[0] == "device" else "cpu")
        generator = kwargs.get("generator")
        if generator is not None:
            drawn_on = made_on or ("device" if "device" in places else "cpu")
            if self._generator_place(generator) != drawn_on:
                raise DeviceMismatch(f"{func} draws on the {drawn_on} from a generator of the "
                                     f"{self._generator_place(generator)}; on a GPU this raises")
        if made_on == "device":
            kwargs["device"] = torch.device("cpu")
        unwrapped_args = tree_map(lambda v: v.data_ if isinstance(v, OnDevice) else v, args)
        unwrapped_kwargs = tree_map(lambda v: v.data_ if isinstance(v, OnDevice) else v, kwargs)
        result = func(*unwrapped_args, **unwrapped_kwargs)
        if func in (_aten.copy_.default,) and isinstance(args[0], OnDevice):
            return args[0]
        if on != "device":
            return result
        return tree_map(lambda v: OnDevice(v) if isinstance(v, Tensor) and not isinstance(v, OnDevice) else v,
                        result)


@contextmanager
def simulated_device() -> Iterator[torch.device]:
    """Within: :data:`SIMULATED` (returned) is a checked stand-in for a GPU; see the module docstring.

    Raises :class:`DeviceMismatch` at the first operation a CUDA machine would refuse.
    """
    seeds: set[int] = set()
    original = torch.Generator

    class _Generator(original):  # type: ignore[misc, valid-type]
        """A CPU generator standing for one of the simulated device when made for it."""

        def __new__(cls, device: Any = "cpu") -> Any:
            simulated = torch.device(device) == SIMULATED
            made = super().__new__(cls, device="cpu" if simulated else device)
            made._simulated = simulated
            return made

        def __init__(self, device: Any = "cpu") -> None:
            pass

        @property
        def device(self) -> torch.device:  # type: ignore[override]
            return SIMULATED if self._simulated else super().device

        def manual_seed(self, seed: int) -> Any:
            if self._simulated:
                seeds.add(int(seed))
            return super().manual_seed(seed)

    torch.Generator = _Generator  # type: ignore[misc]
    try:
        with _Check(seeds):
            yield SIMULATED
    finally:
        torch.Generator = original  # type: ignore[misc]
