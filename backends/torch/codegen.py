"""The generated ``forward`` of a compiled model: straight-line Python, one line per box occurrence.

:func:`generate` writes the source from a :class:`~markovcat.backends.torch.plan.Plan`
(structural wiring was resolved when the plan was made); :func:`make_class` executes it into
a subclass of the compiled-model class, with a ``linecache`` entry so that tracebacks show
the generated line.  The code holds only identifiers the compiler made (``x0``, ``w3``,
``f_net``, ``self.b_net``); a box's own name appears only ``ascii``-escaped, in a comment.
"""

from __future__ import annotations

import builtins
import itertools
import linecache
import weakref
from typing import Any

import torch

from markovcat.backends.torch.plan import Plan

__all__ = ["generate", "make_class"]


def _comment(name: str, limit: int = 60) -> str:
    """``name`` for a comment in generated code: ``ascii``-escaped, so no line break or odd character survives."""
    text = ascii(name)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def generate(plan: Plan, samples: int | None, reduce: str | None) -> str:
    """The source of ``forward`` for ``plan``; ``samples`` folded into the batch, ``reduce="mean"`` averaging them."""
    args = [f"x{i}" for i in range(len(plan.inputs))]
    signature = ", ".join(["self", *args, "*"] + ([] if args else ["batch_size: int = 1"]) + ["generator=None"])
    lines = [f"def forward({signature}):"]
    if args:
        lines.append(f"    self._validate_inputs({', '.join(args)})  # unless model.validate is False")
    names: dict[int, str] = {}
    for i, wire in enumerate(plan.inputs):
        name = names[wire] = args[i]
        if samples is not None:
            lines.append(f"    {name} = {name}.repeat_interleave({samples}, 0)")
    like = "like"
    if any(not s.ins for s in plan.steps):
        first = plan.specs.get(plan.input_atoms[0]) if args else None
        if first is not None and first.dtype is None:  # a floating input already carries batch, device, dtype
            like = args[0]
        else:
            batch = f"{args[0]}.shape[0]" if args else ("batch_size" if samples is None else f"batch_size * {samples}")
            lines.append(f"    like = self._ref.new_empty(({batch},))")
    for step in plan.steps:
        call_args = [names[w] for w in step.ins]
        if not step.deterministic:
            call_args.append("generator=generator")
        if not step.ins:
            call_args.append(f"like={like}")
        targets = [f"w{w}" for w in step.outs]
        for w, t in zip(step.outs, targets, strict=False):
            names[w] = t
        lines.append(f"    {', '.join(targets)} = {step.ref}({', '.join(call_args)})  # {_comment(step.name)}")
    results = []
    for w in plan.outputs:
        value = names[w]
        if samples is not None:
            value = f"{value}.unflatten(0, (-1, {samples}))"
            if reduce == "mean":
                value = f"{value}.mean(1)"
        results.append(value)
    if len(results) == 1:
        lines.append(f"    return {results[0]}")
    else:
        lines.append(f"    return ({', '.join(results)}{',' if len(results) == 1 else ''})")
    return "\n".join(lines) + "\n"


_classes = itertools.count()  # makes each generated class's file name unique (names only, no state)


def make_class(name: str, source: str, functions: tuple[tuple[str, Any], ...], base: type, module: str) -> type:
    """The subclass of ``base`` whose ``forward`` is ``source``; its ``linecache`` entry lives as long as it."""
    namespace: dict[str, Any] = dict(functions)
    namespace["torch"] = torch
    filename = f"<markovcat-compiled {name} {next(_classes)}>"
    linecache.cache[filename] = (len(source), None, source.splitlines(True), filename)
    exec(builtins.compile(source, filename, "exec"), namespace)
    cls = type(name, (base,), {"forward": namespace["forward"], "_source": source, "_functions": functions,
                               "__module__": module})
    weakref.finalize(cls, linecache.cache.pop, filename, None)
    return cls
