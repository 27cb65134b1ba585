"""Checks run by :func:`~markovcat.backends.torch.compile.compile` before it returns a model.

* :func:`dry_run` - the diagram once on a copy of the model (two random examples, or meta
  tensors for a large model): every wire's per-example shape and dtype against its type's
  :class:`Spec`, naming the box at fault;
* :func:`check_laws` - the axioms of each declared group and action, in float64 on random
  elements, naming the failing axiom;
* :func:`check_fusions` - each fused kernel against the composite it replaces.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterable, Mapping
from typing import Any

import torch
from torch import Tensor, nn

from markovcat.backends.torch.compile import CompiledDiagram, Interpretation, InterpretationError, Spec, Trace, compile
from markovcat.syntax import Diagram

__all__ = ["dry_run", "check_laws", "check_fusions", "relative_error", "REAL_DRY_RUN_ENTRIES"]


def _input_spec(model: CompiledDiagram, atom: str) -> Spec:
    spec = model.specs.get(atom)
    if spec is None or None in spec.shape:
        raise InterpretationError(
            f"type {atom!r} is an input of the diagram but has no concrete Spec: give types={{'{atom}': Spec(shape)}}"
        )
    return spec


def _copy(model: CompiledDiagram, tensor: Callable[[Tensor], Tensor]) -> CompiledDiagram:
    """A copy of ``model`` whose parameters and buffers are ``tensor(original)``: the originals are never touched.

    Only the module structure is copied (the diagram, morphism, symmetry and plan are shared).
    """
    memo: dict[int, Any] = {}
    for parameter in model.parameters():
        memo[id(parameter)] = nn.Parameter(tensor(parameter), requires_grad=parameter.requires_grad)
    for buffer in model.buffers():
        memo[id(buffer)] = tensor(buffer)
    try:
        return copy.deepcopy(model, memo)
    except Exception as error:
        raise InterpretationError(
            f"the dry run runs a copy of the model (so that the interpretation's modules are never modified), but "
            f"copy.deepcopy failed: {type(error).__name__}: {error}; make the modules deep-copyable, or compile "
            "with check=False to skip the dry run and the axiom checks"
        ) from error


#: Models with at most this many parameter and buffer entries get a real dry run (two random
#: examples, no gradient); larger ones run on meta tensors (no data, no compute).
REAL_DRY_RUN_ENTRIES = 10_000_000


def _meta_trace(model: CompiledDiagram, batch: int) -> Trace:
    """The diagram on meta tensors: a copy whose parameters live on the meta device (no data, no compute)."""
    floating = model._ref.dtype  # type: ignore[union-attr]
    inputs = [torch.empty((batch, *spec.shape), dtype=spec.dtype or floating, device="meta")  # type: ignore[arg-type]
              for spec in (_input_spec(model, atom) for atom in model.input_atoms)]
    return _copy(model, lambda t: torch.empty_like(t, device="meta")).trace(*inputs, batch_size=batch)


def _real_trace(model: CompiledDiagram, batch: int) -> Trace:
    """The diagram on ``batch`` random inputs, no gradient, on a copy (parameters shared read-only, buffers cloned).

    Seeded, and inside ``torch.random.fork_rng``: the caller's random streams are left as they were.
    """
    reference: Tensor = model._ref  # type: ignore[assignment]
    real = _copy(model, lambda t: t.detach() if isinstance(t, nn.Parameter) else t.detach().clone())
    devices = [reference.device] if reference.device.type != "cpu" else []
    with torch.no_grad(), torch.random.fork_rng(devices=devices, device_type=reference.device.type):
        generator = torch.Generator(device=reference.device).manual_seed(0)
        inputs = [_input_spec(model, atom).random(batch, generator, reference.dtype, reference.device)
                  for atom in model.input_atoms]
        return real.trace(*inputs, batch_size=batch, generator=generator)


def _entries(model: nn.Module) -> int:
    return sum(t.numel() for t in model.parameters()) + sum(t.numel() for t in model.buffers())


def dry_run(model: CompiledDiagram, diagram: Diagram, batch: int = 2) -> None:
    """Run the diagram once and check every wire's per-example shape and dtype against its type's spec.

    It runs a copy of ``model`` (the interpretation's modules are never called or modified, so
    concurrent compiles sharing a module are safe).  A model of at most
    :data:`REAL_DRY_RUN_ENTRIES` parameter and buffer entries runs for real on ``batch`` random
    inputs (drawn from the input Specs, seeded, without gradients, the caller's random streams
    restored): milliseconds for such a model, where the first use of torch's meta-tensor
    machinery in a process costs about a second.  A larger model runs on meta tensors (no data,
    no compute).  If the real run fails, the meta run decides: a box that runs on meta tensors
    but failed on the random values is accepted (the run proves the wiring, not the values), and
    a box that fails on both is reported by the meta run's error (the real run's, where the meta
    run could not run the box at all, e.g. ``.item()``).  A meta run that cannot run a box falls
    back to the real run.  Inputs get their Spec's dtype, else the model's floating dtype (its
    parameters').  It proves the wiring's shapes and dtypes for this batch size, nothing about values.
    """
    def meta_specific(error: InterpretationError) -> bool:
        return "meta" in str(error).lower() or "item()" in str(error)

    trace: Trace | None = None
    failure: InterpretationError | None = None
    if _entries(model) <= REAL_DRY_RUN_ENTRIES:
        try:
            trace = _real_trace(model, batch)
        except InterpretationError as error:
            failure = error
    if trace is None:
        try:
            trace = _meta_trace(model, batch)
        except InterpretationError as error:
            if not meta_specific(error):
                raise
            if failure is not None:
                raise failure from None
            trace = _real_trace(model, batch)
    specs = model.specs
    seen: dict[str, tuple[tuple[int, ...], str]] = {}
    for wire, atom in zip(model.plan.inputs, model.input_atoms, strict=False):
        seen.setdefault(atom, (tuple(trace.wires[wire].shape[1:]), f"input of type {atom}"))
    for step in model.plan.steps:
        for port, (wire, atom) in enumerate(zip(step.outs, step.out_atoms, strict=False)):
            value = trace.wires[wire]
            where = f"output {port} of box {step.name!r}" if len(step.outs) > 1 else f"box {step.name!r}"
            if not isinstance(value, Tensor):
                raise InterpretationError(f"{where} returned {type(value).__name__}, not a tensor (type {atom})")
            if value.dim() == 0 or value.shape[0] != batch:
                raise InterpretationError(
                    f"{where} returned shape {tuple(value.shape)} without the batch dimension {batch} in front"
                )
            shape = tuple(value.shape[1:])
            known = specs.get(atom)
            if known is not None:
                if not known.matches(shape):
                    raise InterpretationError(
                        f"{where} returned per-example shape {shape} but its type {atom} is specified as {known}"
                    )
                if known.dtype is not None and value.dtype != known.dtype:
                    raise InterpretationError(f"{where} returned dtype {value.dtype} but type {atom} is {known}")
            elif atom in seen and seen[atom][0] != shape:
                raise InterpretationError(
                    f"{where} returned per-example shape {shape} for type {atom}, but the {seen[atom][1]} "
                    f"has shape {seen[atom][0]}"
                )
            seen.setdefault(atom, (shape, where))


def check_fusions(uses: Iterable[tuple[tuple[str, str], tuple[str, ...]]], table: Mapping[str, Any],
                  interpretation: Interpretation, batch: int = 16, seed: int = 0, tolerance: float = 1e-9) -> None:
    """Check ``fused(a, *rest) == outer(inner(a), *rest)`` in float64 on random inputs for each fusion used.

    ``uses`` lists ``((inner, outer), input atoms of the fused call)``.
    """
    generator = torch.Generator().manual_seed(seed)
    for (inner, outer), dom in uses:
        fused = interpretation.fusions[(inner, outer)]
        missing = [a for a in dom if a not in interpretation.types]
        if missing:
            raise InterpretationError(
                f"checking the fusion of {outer!r} after {inner!r} needs a Spec for {missing[0]!r}"
            )
        inputs = [interpretation.types[a].random(batch, generator, torch.float64) for a in dom]
        expected = table[outer](table[inner](inputs[0]), *inputs[1:])
        got = fused(*inputs)
        error = float(relative_error(got, expected).max()) if got.shape == expected.shape else float("inf")
        if not error <= tolerance:
            raise InterpretationError(
                f"the fusion of {outer!r} after {inner!r} does not compute {outer}({inner}(a), ...): max relative "
                f"error {error:.3g} on {batch} random inputs"
            )


def relative_error(a: Tensor, b: Tensor) -> Tensor:
    """Per-example ``max|a - b| / max(max|b|, 1e-12)`` over all but the batch dimension (in float64)."""
    a64, b64 = a.detach().double().reshape(len(a), -1), b.detach().double().reshape(len(b), -1)
    scale = b64.abs().amax(1).clamp_min(1e-12)
    return (a64 - b64).abs().amax(1) / scale


def _law_boxes(law: Any) -> Iterable[str]:
    for attr in ("act", "mul", "unit", "inv"):
        part = getattr(law, attr, None)
        if isinstance(part, Diagram):
            yield from part.signature


def check_laws(diagram: Diagram | None, interpretation: Interpretation, batch: int = 16, seed: int = 0,
               tolerance: float = 1e-9) -> None:
    """Check the axioms of each declared group/action whose boxes the diagram uses (all, if ``diagram`` is None).

    Each side of each axiom is compiled with the same interpretation and evaluated in
    float64 on ``batch`` random elements; a failing axiom raises ``InterpretationError``
    naming the group or action, the axiom and the error.
    """
    generator = torch.Generator().manual_seed(seed)
    for law in interpretation.laws:
        if diagram is not None and not any(b in diagram.signature for b in _law_boxes(law)):
            continue
        for equation in law.axioms:
            inputs = []
            for atom in equation.dom.atoms:
                spec = interpretation.types.get(atom)
                if spec is None:
                    raise InterpretationError(f"checking {law!r} needs a Spec for type {atom!r}")
                inputs.append(spec.random(batch, generator, torch.float64))
            outs = []
            for side in equation.sides:
                model = compile(side, interpretation, check=False)
                # float64 states (units) without casting the interpretation's own modules
                model.register_buffer("_ref", torch.zeros(0, dtype=torch.float64), persistent=False)
                outs.append(model.trace(*inputs, generator=generator).outputs)
            for left, right in zip(outs[0], outs[1], strict=False):
                error = float(relative_error(left, right).max()) if left.shape == right.shape else float("inf")
                if not error <= tolerance:
                    raise InterpretationError(
                        f"the interpretation of {law!r} fails its axiom {equation.name!r}: max relative error "
                        f"{error:.3g} on {batch} random elements (tolerance {tolerance:g})"
                    )
