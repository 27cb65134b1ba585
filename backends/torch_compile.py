"""Compile a diagram to a ``torch.nn.Module`` (the Stoch backend).

Objects are interpreted as :class:`Spec` s (a per-example shape and a dtype; every
tensor carries a leading batch dimension), boxes by callables:

* a **deterministic** box ``f : A1 @ ... @ An -> B1 @ ... @ Bm`` by a torch function or
  an ``nn.Module`` called as ``f(a1, ..., an)``;
* a **stochastic** box by a sampler called as ``k(a1, ..., an, generator=g)``, where ``g``
  is a ``torch.Generator`` or ``None`` (the global generator), so a seeded run is
  reproducible bit for bit;
* a box with no inputs (``unit : I -> G``, a prior ``I -> Z``) additionally receives
  ``like=t``, a tensor of shape ``(batch,)`` on the model's device with its floating
  dtype.

One output is returned as a tensor, several as a tuple.  :func:`compile` writes the
forward pass as straight-line Python (see ``model.code``): one line per box occurrence,
structural wiring resolved at compile time, boxes whose outputs are all discarded
dropped (the Markov law ``k >> del = del``).  Every ``nn.Module`` is registered once, so
a box used twice shares its parameters.  Before returning it checks that every box is
interpreted, runs the diagram once on meta tensors to check every wire against its
type's spec (naming the box at fault), and checks the axioms of every declared group
and action numerically.
"""

from __future__ import annotations

import builtins
import inspect
import linecache
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
from markovcat.backends.python import InterpretationError, box_name, resolve
from torch import Tensor, nn

from markovcat.syntax import Diagram, Generator, Ty

__all__ = [
    "Spec",
    "Interpretation",
    "CompiledDiagram",
    "Trace",
    "Gaussian",
    "Invariant",
    "compile",
    "InterpretationError",
    "relative_error",
]

Sampler = Callable[[int, "torch.Generator | None", torch.dtype, "torch.device | str"], Tensor]


def _gaussian(batch: int, shape: tuple[int, ...], generator: torch.Generator | None, dtype: torch.dtype,
              device: torch.device | str) -> Tensor:
    return torch.randn((batch, *shape), generator=generator, dtype=dtype, device=device)


@dataclass(frozen=True)
class Spec:
    """The interpretation of an atomic type: per-example ``shape`` and ``dtype``.

    ``dtype=None`` means the model's floating dtype (it follows ``model.to(dtype)``);
    a ``None`` entry in ``shape`` matches any size.  ``sample(batch, generator, dtype,
    device)`` draws random elements, used by the axiom and equivariance checks; it
    defaults to standard Gaussian entries for floating specs.
    """

    shape: tuple[int | None, ...] = ()
    dtype: torch.dtype | None = None
    sample: Callable[..., Tensor] | None = None

    def random(self, batch: int, generator: torch.Generator | None = None, dtype: torch.dtype | None = None,
               device: torch.device | str = "cpu") -> Tensor:
        """``batch`` random elements of this type."""
        dtype = self.dtype or dtype or torch.get_default_dtype()
        if self.sample is not None:
            return self.sample(batch, generator, dtype, device)
        if None in self.shape:
            raise InterpretationError(f"cannot draw random elements of a spec with a free dimension {self.shape}")
        if not dtype.is_floating_point:
            raise InterpretationError(f"a spec of dtype {dtype} needs a sample function to draw random elements")
        return _gaussian(batch, tuple(self.shape), generator, dtype, device)  # type: ignore[arg-type]

    def matches(self, per_example: tuple[int, ...]) -> bool:
        return len(per_example) == len(self.shape) and all(
            s is None or s == t for s, t in zip(self.shape, per_example, strict=False)
        )

    def __str__(self) -> str:
        dims = ", ".join("*" if s is None else str(s) for s in self.shape)
        return f"({dims})" + ("" if self.dtype is None else f" {self.dtype}")


def _atom(key: str | Ty) -> str:
    if isinstance(key, Ty):
        if len(key) != 1:
            raise TypeError(f"a spec interprets one atomic type, got {key}")
        return key.atoms[0]
    if not isinstance(key, str):
        raise TypeError(f"types are keyed by atom names or atomic Ty, got {type(key).__name__} {key!r}")
    return key


@dataclass
class Interpretation:
    """What the boxes and types of a diagram mean in PyTorch.

    ``boxes`` maps box names (or Boxes) to callables; ``types`` maps atom names (or atomic
    ``Ty``) to :class:`Spec`; ``laws`` lists the :class:`~markovcat.groups.Group` and
    :class:`~markovcat.groups.Action` objects whose axioms the boxes must satisfy;
    ``couplings`` maps stochastic box names to ``coupling(g, *draws) -> draws``, the
    law-preserving map that :func:`markovcat.check_equivariance` uses to replay a
    box's draw when the input is moved by ``g`` (e.g. ``R0 -> g R0`` for a Haar draw).
    Combine interpretations with ``|``.
    """

    boxes: Mapping[Any, Any] = field(default_factory=dict)
    types: Mapping[Any, Spec] = field(default_factory=dict)
    laws: Sequence[Any] = ()
    couplings: Mapping[Any, Callable[..., Any]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.boxes = {box_name(k): v for k, v in self.boxes.items()}
        self.types = {_atom(k): v for k, v in self.types.items()}
        self.couplings = {box_name(k): v for k, v in self.couplings.items()}
        self.laws = tuple(self.laws)
        for atom, spec in self.types.items():
            if not isinstance(spec, Spec):
                raise TypeError(f"type {atom!r} is interpreted by {type(spec).__name__} {spec!r}, not a Spec")

    def override(self, boxes: Mapping[Any, Any]) -> Interpretation:
        """A copy in which ``boxes`` replace the meanings of the boxes they name."""
        return Interpretation({**self.boxes, **{box_name(k): v for k, v in boxes.items()}}, self.types, self.laws,
                              self.couplings)

    def __or__(self, other: Interpretation) -> Interpretation:
        if not isinstance(other, Interpretation):
            return NotImplemented
        for mine, theirs, what in ((self.boxes, other.boxes, "box"), (self.types, other.types, "type")):
            for key in mine.keys() & theirs.keys():
                if mine[key] is not theirs[key] and mine[key] != theirs[key]:
                    raise InterpretationError(f"two interpretations give {what} {key!r} different meanings")
        laws = list(self.laws) + [law for law in other.laws if law not in self.laws]
        return Interpretation({**self.boxes, **other.boxes}, {**self.types, **other.types}, laws,
                              {**self.couplings, **other.couplings})


# --------------------------------------------------------------------------------------
# The plan: the diagram reduced to what the compiled module needs (picklable).


@dataclass(frozen=True)
class _Step:
    name: str
    ins: tuple[int, ...]
    outs: tuple[int, ...]
    out_atoms: tuple[str, ...]
    deterministic: bool
    ref: str  # "self.<attr>" or "_f<k>"


def _accepts(function: Any, keyword: str) -> bool:
    target = function.forward if isinstance(function, nn.Module) else function
    try:
        parameters = inspect.signature(target).parameters.values()
    except (TypeError, ValueError):  # builtins without a signature
        return False
    return any(p.name == keyword or p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters)


def _live_nodes(diagram: Diagram) -> list[int]:
    live = set(diagram.outputs)
    keep: list[int] = []
    for i in range(len(diagram.nodes) - 1, -1, -1):
        node = diagram.nodes[i]
        if any(w in live for w in node.outs):
            keep.append(i)
            live.update(node.ins)
    return keep[::-1]


def _identifier(name: str, taken: set[str]) -> str:
    base = "b_" + (re.sub(r"\W", "_", name) or "box")
    candidate, k = base, 1
    while candidate in taken:
        k += 1
        candidate = f"{base}_{k}"
    taken.add(candidate)
    return candidate


class Invariant:
    """The coupling ``(g, *draws) -> draws``, for noise whose law ignores the input and ``g``."""

    def __call__(self, g: Tensor, *draws: Tensor) -> Any:
        return draws[0] if len(draws) == 1 else draws

    def __repr__(self) -> str:
        return "Invariant()"


class Gaussian:
    """A sampler of standard Gaussian noise of per-example ``shape`` (for boxes ``I -> E`` or ``X -> E``).

    Its law ignores the inputs, so its :attr:`coupling` leaves draws unchanged.
    """

    def __init__(self, shape: Sequence[int]) -> None:
        self.shape = tuple(shape)

    def __call__(self, *inputs: Tensor, generator: torch.Generator | None = None, like: Tensor | None = None) -> Tensor:
        reference = inputs[0] if inputs else like
        if reference is None:
            raise InterpretationError("Gaussian noise with no inputs needs like=... for the batch size")
        dtype = reference.dtype if reference.is_floating_point() else torch.get_default_dtype()
        return torch.randn((reference.shape[0], *self.shape), generator=generator, dtype=dtype,
                           device=reference.device)

    coupling = Invariant()


class Trace:
    """The value of every wire of one run, and the draws of every stochastic box occurrence."""

    def __init__(self, outputs: tuple[Tensor, ...], wires: dict[int, Tensor], draws: dict[int, tuple[Tensor, ...]]):
        self.outputs, self.wires, self.draws = outputs, wires, draws

    @property
    def output(self) -> Any:
        return self.outputs[0] if len(self.outputs) == 1 else self.outputs


class CompiledDiagram(nn.Module):
    """A diagram compiled to straight-line PyTorch; ``forward`` is generated per diagram.

    Attributes: ``code`` (the generated source), ``deterministic``, ``samples``,
    ``input_atoms`` / ``output_atoms`` and ``specs``.  :meth:`trace` evaluates the same
    boxes node by node (for debugging and for coupled equivariance checks).
    """

    _source: str = ""
    _functions: tuple[Any, ...] = ()

    def __init__(self, plan: dict[str, Any], modules: Mapping[str, nn.Module]) -> None:
        super().__init__()
        for attr, module in modules.items():
            self.add_module(attr, module)
        self.register_buffer("_ref", torch.zeros(0), persistent=False)
        self._plan = plan

    # -- public description -----------------------------------------------------------
    @property
    def code(self) -> str:
        return self._source

    @property
    def deterministic(self) -> bool:
        return bool(self._plan["deterministic"])

    @property
    def samples(self) -> int | None:
        samples = self._plan["samples"]
        return None if samples is None else int(samples)

    @property
    def input_atoms(self) -> tuple[str, ...]:
        return tuple(self._plan["input_atoms"])

    @property
    def output_atoms(self) -> tuple[str, ...]:
        return tuple(self._plan["output_atoms"])

    @property
    def specs(self) -> dict[str, Spec]:
        return dict(self._plan["specs"])

    @property
    def couplings(self) -> dict[str, Callable[..., Any]]:
        return dict(self._plan["couplings"])

    @property
    def stochastic_boxes(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(s.name for s in self._plan["steps"] if not s.deterministic))

    def extra_repr(self) -> str:
        return self._plan["signature"]

    # -- pickling: the class is regenerated from its source ------------------------------
    def __reduce__(self) -> Any:
        return (_restore, (type(self).__name__, self._source, self._functions), self.__dict__.copy())

    # -- node-by-node evaluation ---------------------------------------------------------
    def _callable(self, step: _Step) -> Any:
        if step.ref.startswith("self."):
            return getattr(self, step.ref[5:])
        return self._functions[int(step.ref[2:])]

    def trace(
        self,
        *inputs: Tensor,
        generator: torch.Generator | None = None,
        batch_size: int | None = None,
        replay: Mapping[int, tuple[Tensor, ...]] | None = None,
        check_finite: bool = False,
    ) -> Trace:
        """Evaluate box by box (no sample folding); returns every wire and every draw.

        ``replay`` maps the index of a stochastic step to the outputs it should produce
        instead of sampling.  With ``check_finite`` the first box producing a NaN or an
        infinity is named in a ``FloatingPointError``.
        """
        plan = self._plan
        if len(inputs) != len(plan["inputs"]):
            raise TypeError(f"the diagram takes {len(plan['inputs'])} inputs ({plan['signature']}), got {len(inputs)}")
        wires: dict[int, Tensor] = {}
        for position, (wire, value) in enumerate(zip(plan["inputs"], inputs, strict=False)):
            if not isinstance(value, Tensor):
                raise TypeError(f"input {position} is {type(value).__name__}, not a tensor")
            if check_finite and value.is_floating_point() and not torch.isfinite(value).all():
                raise FloatingPointError(f"input {position} (type {plan['input_atoms'][position]}) contains NaN or inf")
            wires[wire] = value
        batch = inputs[0].shape[0] if inputs else (batch_size or 1)
        like = self._ref.new_empty((batch,))
        draws: dict[int, tuple[Tensor, ...]] = {}
        for index, step in enumerate(plan["steps"]):
            args = [wires[w] for w in step.ins]
            if replay is not None and index in replay:
                outs = tuple(replay[index])
            else:
                kwargs: dict[str, Any] = {}
                if not step.deterministic:
                    kwargs["generator"] = generator
                if not step.ins:
                    kwargs["like"] = like
                try:
                    result = self._callable(step)(*args, **kwargs)
                except Exception as error:
                    shapes = ", ".join(str(tuple(getattr(a, "shape", ()))) for a in args) or "no inputs"
                    raise InterpretationError(
                        f"box {step.name!r} failed on inputs of shapes {shapes}: {type(error).__name__}: {error}"
                    ) from error
                outs = _as_outputs(step, result)
            if not step.deterministic:
                draws[index] = outs
            for wire, value in zip(step.outs, outs, strict=False):
                if check_finite and isinstance(value, Tensor) and value.is_floating_point():
                    if not torch.isfinite(value).all():
                        raise FloatingPointError(f"box {step.name!r} produced NaN or inf (it is the first to do so)")
                wires[wire] = value
        return Trace(tuple(wires[w] for w in plan["outputs"]), wires, draws)


def _as_outputs(step: _Step, result: Any) -> tuple[Any, ...]:
    m = len(step.outs)
    if m == 1:
        return (result,)
    if not isinstance(result, (tuple, list)) or len(result) != m:
        raise InterpretationError(f"box {step.name!r} must return a tuple of {m} tensors, got {type(result).__name__}")
    return tuple(result)


def _make_class(name: str, source: str, functions: tuple[Any, ...]) -> type[CompiledDiagram]:
    namespace: dict[str, Any] = {f"_f{i}": f for i, f in enumerate(functions)}
    namespace["torch"] = torch
    filename = f"<markovcat-compiled {name} {abs(hash(source)):x}>"
    linecache.cache[filename] = (len(source), None, source.splitlines(True), filename)
    exec(builtins.compile(source, filename, "exec"), namespace)
    cls = type(name, (CompiledDiagram,), {"forward": namespace["forward"], "_source": source,
                                          "_functions": functions, "__module__": __name__})
    return cls


def _restore(name: str, source: str, functions: tuple[Any, ...]) -> CompiledDiagram:
    cls = _make_class(name, source, functions)
    return cls.__new__(cls)


# --------------------------------------------------------------------------------------
# Code generation


def _generate(plan: dict[str, Any], samples: int | None, reduce: str | None) -> str:
    args = [f"x{i}" for i in range(len(plan["inputs"]))]
    signature = ", ".join(["self", *args, "*"] + ([] if args else ["batch_size: int = 1"]) + ["generator=None"])
    lines = [f"def forward({signature}):"]
    names: dict[int, str] = {}
    for i, wire in enumerate(plan["inputs"]):
        name = args[i] if wire not in names else args[i]
        if samples is not None:
            lines.append(f"    {name} = {name}.repeat_interleave({samples}, 0)")
        names.setdefault(wire, name)
    steps: list[_Step] = plan["steps"]
    if any(not s.ins for s in steps):
        batch = f"{args[0]}.shape[0]" if args else ("batch_size" if samples is None else f"batch_size * {samples}")
        lines.append(f"    like = self._ref.new_empty(({batch},))")
    for step in steps:
        call_args = [names[w] for w in step.ins]
        if not step.deterministic:
            call_args.append("generator=generator")
        if not step.ins:
            call_args.append("like=like")
        targets = [f"w{w}" for w in step.outs]
        for w, t in zip(step.outs, targets, strict=False):
            names[w] = t
        lines.append(f"    {', '.join(targets)}{',' if len(targets) == 1 and len(step.outs) > 1 else ''} = "
                     f"{step.ref}({', '.join(call_args)})  # {step.name}")
    results = []
    for w in plan["outputs"]:
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


def compile(  # noqa: A001 - the backend's verb
    diagram: Diagram,
    interpretation: Interpretation | Mapping[Any, Any],
    *,
    types: Mapping[Any, Spec] | None = None,
    samples: int | None = None,
    reduce: str | None = None,
    check: bool = True,
    name: str | None = None,
    ave_samples: int = 32,
) -> CompiledDiagram:
    """Compile ``diagram`` under ``interpretation`` to an ``nn.Module``.

    ``samples=n`` folds ``n`` independent samples into the batch: the inputs are repeated,
    the diagram runs once on ``batch * n`` rows, and each output gets shape
    ``(batch, n, ...)`` (``reduce="mean"`` averages them: Monte-Carlo ``ave``).
    ``check=False`` skips the dry run and the axiom checks (missing boxes are always refused).
    A box made by :func:`markovcat.symmetrise.ave` and not interpreted otherwise becomes
    the Monte-Carlo mean of its body over ``ave_samples`` samples, drawn in one batched pass.
    """
    if not isinstance(diagram, Diagram):
        raise TypeError(f"compile takes a Diagram, got {type(diagram).__name__} {diagram!r}")
    if not isinstance(interpretation, Interpretation):
        interpretation = Interpretation(boxes=interpretation)
    if types:
        interpretation = interpretation | Interpretation(types=types)
    if samples is not None and (not isinstance(samples, int) or samples < 1):
        raise ValueError(f"samples must be a positive integer, got {samples!r}")
    if reduce not in (None, "mean"):
        raise ValueError(f"reduce must be None or 'mean', got {reduce!r}")
    if reduce is not None and samples is None:
        raise ValueError("reduce='mean' averages over samples: give samples=n as well")
    interpretation = _with_averages(diagram, interpretation, ave_samples, check)
    table = resolve(diagram, interpretation.boxes)
    modules: dict[str, nn.Module] = {}
    module_attr: dict[int, str] = {}
    functions: list[Any] = []
    function_index: dict[int, int] = {}
    taken: set[str] = {"_ref", "_plan"}
    refs: dict[str, str] = {}
    stochastic_calls: set[str] = set()
    for box, gen in diagram.signature.items():
        value = table[box]
        _check_callable(gen, value)
        if isinstance(value, CompiledDiagram) and not value.deterministic:
            stochastic_calls.add(box)
        if isinstance(value, nn.Module):
            attr = module_attr.get(id(value))
            if attr is None:
                attr = module_attr[id(value)] = _identifier(box, taken)
                modules[attr] = value
            refs[box] = f"self.{attr}"
        else:
            k = function_index.setdefault(id(value), len(functions))
            if k == len(functions):
                functions.append(value)
            refs[box] = f"_f{k}"
    steps = [
        _Step(n.gen.name, n.ins, n.outs, n.gen.cod.atoms, n.gen.deterministic and n.gen.name not in stochastic_calls,
              refs[n.gen.name])
        for n in (diagram.nodes[i] for i in _live_nodes(diagram))
    ]
    couplings = {b: table[b].coupling for b in diagram.signature if hasattr(table[b], "coupling")}
    couplings.update({b: c for b, c in interpretation.couplings.items() if b in diagram.signature})
    plan = {
        "inputs": diagram.inputs,
        "outputs": diagram.outputs,
        "input_atoms": diagram.dom.atoms,
        "output_atoms": diagram.cod.atoms,
        "steps": steps,
        "deterministic": all(s.deterministic for s in steps),
        "samples": samples,
        "specs": dict(interpretation.types),
        "couplings": couplings,
        "signature": f"{diagram.label()} : {diagram.dom} -> {diagram.cod}",
    }
    source = _generate(plan, samples, reduce)
    class_name = "Compiled_" + re.sub(r"\W", "_", name or diagram.label().replace("the diagram", "diagram"))
    cls = _make_class(class_name, source, tuple(functions))
    model = cls(plan, modules)
    if check:
        dry_run(model, diagram)
        check_laws(diagram, interpretation)
    return model


def _with_averages(diagram: Diagram, interpretation: Interpretation, samples: int, check: bool) -> Interpretation:
    from markovcat.symmetrise import averaged

    extra: dict[str, Any] = {}
    for name, gen in diagram.signature.items():
        body = None if name in interpretation.boxes else averaged(gen)
        if body is not None:
            extra[name] = compile(body, interpretation, samples=samples, reduce="mean", check=check,
                                  name=f"ave_{name}")
    return interpretation | Interpretation(extra) if extra else interpretation


def _check_callable(gen: Generator, value: Any) -> None:
    if not callable(value):
        raise InterpretationError(f"box {gen.name!r} is interpreted by {type(value).__name__}, not a function")
    if not gen.deterministic and not _accepts(value, "generator"):
        raise InterpretationError(
            f"box {gen.name!r} is stochastic, so its interpretation must be a sampler taking a keyword "
            "generator=... (a torch.Generator or None); declare the box deterministic=True if it is a function"
        )
    if not len(gen.dom) and not _accepts(value, "like"):
        raise InterpretationError(
            f"box {gen.name!r} has no inputs, so its interpretation must take a keyword like=... "
            "(a tensor of shape (batch,) on the model's device and dtype)"
        )


# --------------------------------------------------------------------------------------
# Checks before compiling


class _Probe(nn.Module):
    def __init__(self, model: CompiledDiagram) -> None:
        super().__init__()
        self.model = model

    def forward(self, *inputs: Tensor, batch_size: int | None = None) -> Trace:
        return self.model.trace(*inputs, batch_size=batch_size)


def _input_spec(model: CompiledDiagram, atom: str) -> Spec:
    spec = model.specs.get(atom)
    if spec is None or None in spec.shape:
        raise InterpretationError(
            f"type {atom!r} is an input of the diagram but has no concrete Spec: give types={{'{atom}': Spec(shape)}}"
        )
    return spec


def dry_run(model: CompiledDiagram, diagram: Diagram, batch: int = 2) -> None:
    """Run the diagram once on meta tensors and check every wire against its type's spec."""
    specs = model.specs
    inputs = []
    for atom in model.input_atoms:
        spec = _input_spec(model, atom)
        dtype = spec.dtype or torch.get_default_dtype()
        inputs.append(torch.empty((batch, *spec.shape), dtype=dtype, device="meta"))  # type: ignore[misc]
    probe = _Probe(model)
    state = {k: torch.empty_like(v, device="meta") for k, v in probe.state_dict(keep_vars=True).items()}
    state.update({f"model.{k}": torch.empty_like(v, device="meta") for k, v in model.named_buffers()})
    try:
        trace = torch.func.functional_call(probe, state, tuple(inputs), {"batch_size": batch})
    except InterpretationError as error:
        if "meta" not in str(error).lower() and "item()" not in str(error):
            raise
        with torch.no_grad():
            trace = model.trace(*[_input_spec(model, a).random(batch) for a in model.input_atoms], batch_size=batch)
    seen: dict[str, tuple[tuple[int, ...], str]] = {}
    for wire, atom in zip(model._plan["inputs"], model.input_atoms, strict=False):
        seen.setdefault(atom, (tuple(trace.wires[wire].shape[1:]), f"input of type {atom}"))
    for step in model._plan["steps"]:
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
            spec = specs.get(atom)
            if spec is not None:
                if not spec.matches(shape):
                    raise InterpretationError(
                        f"{where} returned per-example shape {shape} but its type {atom} is specified as {spec}"
                    )
                if spec.dtype is not None and value.dtype != spec.dtype:
                    raise InterpretationError(f"{where} returned dtype {value.dtype} but type {atom} is {spec}")
            elif atom in seen and seen[atom][0] != shape:
                raise InterpretationError(
                    f"{where} returned per-example shape {shape} for type {atom}, but the {seen[atom][1]} "
                    f"has shape {seen[atom][0]}"
                )
            seen.setdefault(atom, (shape, where))


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
            sides = [compile(side, interpretation, check=False).double() for side in equation.sides]
            outs = [side.trace(*inputs, generator=generator).outputs for side in sides]
            for left, right in zip(outs[0], outs[1], strict=False):
                error = float(relative_error(left, right).max()) if left.shape == right.shape else float("inf")
                if not error <= tolerance:
                    raise InterpretationError(
                        f"the interpretation of {law!r} fails its axiom {equation.name!r}: max relative error "
                        f"{error:.3g} on {batch} random elements (tolerance {tolerance:g})"
                    )
